"""oidc-asgi: OpenID Connect and OAuth 2.0 for ASGI applications.

The names below are the public API; everything in a module whose name starts with ``_`` is not.

Example::

    from oidc_asgi import Provider

    provider = Provider("https://login.example.com/")
"""

from oidc_asgi._http import InsecureTransportWarning as InsecureTransportWarning
from oidc_asgi.client import DeviceAuthorization as DeviceAuthorization
from oidc_asgi.client import OAuthClient as OAuthClient
from oidc_asgi.client import TokenResponse as TokenResponse
from oidc_asgi.client import TokenType as TokenType
from oidc_asgi.errors import ConfigurationError as ConfigurationError
from oidc_asgi.errors import OAuthError as OAuthError
from oidc_asgi.errors import OIDCError as OIDCError
from oidc_asgi.errors import ProviderUnavailable as ProviderUnavailable
from oidc_asgi.errors import TokenError as TokenError
from oidc_asgi.provider import Provider as Provider
from oidc_asgi.provider import ProviderMetadata as ProviderMetadata
from oidc_asgi.provider import ProviderStats as ProviderStats
from oidc_asgi.sessions import SessionCodec as SessionCodec
from oidc_asgi.signin import normalize_return_to as normalize_return_to
from oidc_asgi.token_cache import CacheEntry as CacheEntry
from oidc_asgi.token_cache import Expiring as Expiring
from oidc_asgi.token_cache import MemoryTokenStore as MemoryTokenStore
from oidc_asgi.token_cache import TokenCache as TokenCache
from oidc_asgi.token_cache import TokenStore as TokenStore
from oidc_asgi.token_cache import token_cache_key as token_cache_key
from oidc_asgi.tokens import DEFAULT_ALGORITHMS as DEFAULT_ALGORITHMS
from oidc_asgi.tokens import AccessTokenExpectations as AccessTokenExpectations
from oidc_asgi.tokens import Claims as Claims
from oidc_asgi.tokens import IDTokenExpectations as IDTokenExpectations
from oidc_asgi.tokens import LogoutTokenExpectations as LogoutTokenExpectations
from oidc_asgi.tokens import TokenValidator as TokenValidator

__version__ = "0.1.0"

__all__ = [
    "AccessTokenExpectations",
    "CacheEntry",
    "Claims",
    "ConfigurationError",
    "DEFAULT_ALGORITHMS",
    "DeviceAuthorization",
    "Expiring",
    "IDTokenExpectations",
    "InsecureTransportWarning",
    "LogoutTokenExpectations",
    "MemoryTokenStore",
    "OAuthClient",
    "OAuthError",
    "OIDCError",
    "Provider",
    "ProviderMetadata",
    "ProviderStats",
    "ProviderUnavailable",
    "SessionCodec",
    "TokenCache",
    "TokenError",
    "TokenResponse",
    "TokenStore",
    "TokenType",
    "TokenValidator",
    "normalize_return_to",
    "token_cache_key",
]
