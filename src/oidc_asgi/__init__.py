"""oidc-asgi: OpenID Connect and OAuth 2.0 for ASGI applications.

The names below are the public API; everything in a module whose name starts with ``_`` is not.

Example::

    from oidc_asgi import Provider, TokenValidator

    provider = Provider("https://login.example.com/")
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from oidc_asgi._http import InsecureTransportWarning as InsecureTransportWarning
    from oidc_asgi.client import DeviceAuthorization as DeviceAuthorization
    from oidc_asgi.client import OAuthClient as OAuthClient
    from oidc_asgi.client import TokenResponse as TokenResponse
    from oidc_asgi.client import TokenType as TokenType
    from oidc_asgi.downstream import ClientCredentialsAuth as ClientCredentialsAuth
    from oidc_asgi.downstream import DownstreamChallenge as DownstreamChallenge
    from oidc_asgi.downstream import OnBehalfOfAuth as OnBehalfOfAuth
    from oidc_asgi.downstream import parse_www_authenticate as parse_www_authenticate
    from oidc_asgi.errors import ConfigurationError as ConfigurationError
    from oidc_asgi.errors import OAuthError as OAuthError
    from oidc_asgi.errors import OIDCError as OIDCError
    from oidc_asgi.errors import ProviderUnavailable as ProviderUnavailable
    from oidc_asgi.errors import TokenError as TokenError
    from oidc_asgi.native import CliSession as CliSession
    from oidc_asgi.native import DeviceLoginPrompt as DeviceLoginPrompt
    from oidc_asgi.native import FileTokenStorage as FileTokenStorage
    from oidc_asgi.native import TokenCipher as TokenCipher
    from oidc_asgi.native import TokenStorage as TokenStorage
    from oidc_asgi.native import cached_login as cached_login
    from oidc_asgi.native import default_token_path as default_token_path
    from oidc_asgi.native import device_login as device_login
    from oidc_asgi.native import loopback_login as loopback_login
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
    from oidc_asgi.token_stores import RedisTokenStore as RedisTokenStore
    from oidc_asgi.tokens import DEFAULT_ALGORITHMS as DEFAULT_ALGORITHMS
    from oidc_asgi.tokens import AccessTokenExpectations as AccessTokenExpectations
    from oidc_asgi.tokens import Claims as Claims
    from oidc_asgi.tokens import IDTokenExpectations as IDTokenExpectations
    from oidc_asgi.tokens import LogoutTokenExpectations as LogoutTokenExpectations
    from oidc_asgi.tokens import TokenValidator as TokenValidator

__version__ = "0.1.0"

# Names load on first use (PEP 562): `import oidc_asgi`, and so our pytest plugin, stays cheap
# for programs that never touch the heavier parts (httpx, cryptography, joserfc).
_EXPORTS: dict[str, str] = {
    "AccessTokenExpectations": "oidc_asgi.tokens",
    "CacheEntry": "oidc_asgi.token_cache",
    "Claims": "oidc_asgi.tokens",
    "CliSession": "oidc_asgi.native",
    "ClientCredentialsAuth": "oidc_asgi.downstream",
    "ConfigurationError": "oidc_asgi.errors",
    "DEFAULT_ALGORITHMS": "oidc_asgi.tokens",
    "DeviceAuthorization": "oidc_asgi.client",
    "DeviceLoginPrompt": "oidc_asgi.native",
    "DownstreamChallenge": "oidc_asgi.downstream",
    "Expiring": "oidc_asgi.token_cache",
    "FileTokenStorage": "oidc_asgi.native",
    "IDTokenExpectations": "oidc_asgi.tokens",
    "InsecureTransportWarning": "oidc_asgi._http",
    "LogoutTokenExpectations": "oidc_asgi.tokens",
    "MemoryTokenStore": "oidc_asgi.token_cache",
    "OAuthClient": "oidc_asgi.client",
    "OAuthError": "oidc_asgi.errors",
    "OIDCError": "oidc_asgi.errors",
    "OnBehalfOfAuth": "oidc_asgi.downstream",
    "Provider": "oidc_asgi.provider",
    "ProviderMetadata": "oidc_asgi.provider",
    "ProviderStats": "oidc_asgi.provider",
    "ProviderUnavailable": "oidc_asgi.errors",
    "RedisTokenStore": "oidc_asgi.token_stores",
    "SessionCodec": "oidc_asgi.sessions",
    "TokenCache": "oidc_asgi.token_cache",
    "TokenCipher": "oidc_asgi.native",
    "TokenError": "oidc_asgi.errors",
    "TokenResponse": "oidc_asgi.client",
    "TokenStorage": "oidc_asgi.native",
    "TokenStore": "oidc_asgi.token_cache",
    "TokenType": "oidc_asgi.client",
    "TokenValidator": "oidc_asgi.tokens",
    "cached_login": "oidc_asgi.native",
    "default_token_path": "oidc_asgi.native",
    "device_login": "oidc_asgi.native",
    "loopback_login": "oidc_asgi.native",
    "normalize_return_to": "oidc_asgi.signin",
    "parse_www_authenticate": "oidc_asgi.downstream",
    "token_cache_key": "oidc_asgi.token_cache",
}

__all__ = [
    "AccessTokenExpectations",
    "CacheEntry",
    "Claims",
    "CliSession",
    "ClientCredentialsAuth",
    "ConfigurationError",
    "DEFAULT_ALGORITHMS",
    "DeviceAuthorization",
    "DeviceLoginPrompt",
    "DownstreamChallenge",
    "Expiring",
    "FileTokenStorage",
    "IDTokenExpectations",
    "InsecureTransportWarning",
    "LogoutTokenExpectations",
    "MemoryTokenStore",
    "OAuthClient",
    "OAuthError",
    "OIDCError",
    "OnBehalfOfAuth",
    "Provider",
    "ProviderMetadata",
    "ProviderStats",
    "ProviderUnavailable",
    "RedisTokenStore",
    "SessionCodec",
    "TokenCache",
    "TokenCipher",
    "TokenError",
    "TokenResponse",
    "TokenStorage",
    "TokenStore",
    "TokenType",
    "TokenValidator",
    "cached_login",
    "default_token_path",
    "device_login",
    "loopback_login",
    "normalize_return_to",
    "parse_www_authenticate",
    "token_cache_key",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'oidc_asgi' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
