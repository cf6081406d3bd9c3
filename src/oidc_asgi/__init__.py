"""oidc-asgi: OpenID Connect and OAuth 2.0 for ASGI applications.

The names below are the public API; everything in a module whose name starts with ``_`` is not.

Example::

    from oidc_asgi import Provider, TokenValidator

    provider = Provider("https://login.example.com/")
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from oidc_asgi._lazy import lazy_exports

if TYPE_CHECKING:
    from oidc_asgi._http import InsecureTransportWarning as InsecureTransportWarning
    from oidc_asgi.bearer import BearerConfig as BearerConfig
    from oidc_asgi.bearer import BearerValidator as BearerValidator
    from oidc_asgi.bearer import ClaimEquals as ClaimEquals
    from oidc_asgi.bearer import ClaimIncludes as ClaimIncludes
    from oidc_asgi.bearer import DPoPSettings as DPoPSettings
    from oidc_asgi.bearer import Principal as Principal
    from oidc_asgi.bearer import RedisReplayStore as RedisReplayStore
    from oidc_asgi.bearer import Scopes as Scopes
    from oidc_asgi.bearer import ScopesOrRoles as ScopesOrRoles
    from oidc_asgi.bearer import StepUp as StepUp
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
    from oidc_asgi.sessions import MemorySharedState as MemorySharedState
    from oidc_asgi.sessions import MemoryStore as MemoryStore
    from oidc_asgi.sessions import RedisSharedState as RedisSharedState
    from oidc_asgi.sessions import SessionCodec as SessionCodec
    from oidc_asgi.sessions.redis import RedisStore as RedisStore
    from oidc_asgi.signin import AccessTokenUnavailable as AccessTokenUnavailable
    from oidc_asgi.signin import LoginRequired as LoginRequired
    from oidc_asgi.signin import OIDCAuth as OIDCAuth
    from oidc_asgi.signin import SignedInUser as SignedInUser
    from oidc_asgi.signin import SignInConfig as SignInConfig
    from oidc_asgi.signin import UserTokenAuth as UserTokenAuth
    from oidc_asgi.signin import get_access_token as get_access_token
    from oidc_asgi.signin import get_user as get_user
    from oidc_asgi.signin import login_required as login_required
    from oidc_asgi.signin import normalize_return_to as normalize_return_to
    from oidc_asgi.signin import require_login as require_login
    from oidc_asgi.signin import require_user as require_user
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
    "AccessTokenUnavailable": "oidc_asgi.signin",
    "BearerConfig": "oidc_asgi.bearer",
    "BearerValidator": "oidc_asgi.bearer",
    "CacheEntry": "oidc_asgi.token_cache",
    "ClaimEquals": "oidc_asgi.bearer",
    "ClaimIncludes": "oidc_asgi.bearer",
    "Claims": "oidc_asgi.tokens",
    "CliSession": "oidc_asgi.native",
    "ClientCredentialsAuth": "oidc_asgi.downstream",
    "ConfigurationError": "oidc_asgi.errors",
    "DEFAULT_ALGORITHMS": "oidc_asgi.tokens",
    "DPoPSettings": "oidc_asgi.bearer",
    "DeviceAuthorization": "oidc_asgi.client",
    "DeviceLoginPrompt": "oidc_asgi.native",
    "DownstreamChallenge": "oidc_asgi.downstream",
    "Expiring": "oidc_asgi.token_cache",
    "FileTokenStorage": "oidc_asgi.native",
    "IDTokenExpectations": "oidc_asgi.tokens",
    "InsecureTransportWarning": "oidc_asgi._http",
    "LoginRequired": "oidc_asgi.signin",
    "LogoutTokenExpectations": "oidc_asgi.tokens",
    "MemorySharedState": "oidc_asgi.sessions",
    "MemoryStore": "oidc_asgi.sessions",
    "MemoryTokenStore": "oidc_asgi.token_cache",
    "OAuthClient": "oidc_asgi.client",
    "OAuthError": "oidc_asgi.errors",
    "OIDCAuth": "oidc_asgi.signin",
    "OIDCError": "oidc_asgi.errors",
    "OnBehalfOfAuth": "oidc_asgi.downstream",
    "Principal": "oidc_asgi.bearer",
    "Provider": "oidc_asgi.provider",
    "ProviderMetadata": "oidc_asgi.provider",
    "ProviderStats": "oidc_asgi.provider",
    "ProviderUnavailable": "oidc_asgi.errors",
    "RedisReplayStore": "oidc_asgi.bearer",
    "RedisSharedState": "oidc_asgi.sessions",
    "RedisStore": "oidc_asgi.sessions.redis",
    "RedisTokenStore": "oidc_asgi.token_stores",
    "Scopes": "oidc_asgi.bearer",
    "ScopesOrRoles": "oidc_asgi.bearer",
    "SessionCodec": "oidc_asgi.sessions",
    "SignInConfig": "oidc_asgi.signin",
    "SignedInUser": "oidc_asgi.signin",
    "StepUp": "oidc_asgi.bearer",
    "TokenCache": "oidc_asgi.token_cache",
    "TokenCipher": "oidc_asgi.native",
    "TokenError": "oidc_asgi.errors",
    "TokenResponse": "oidc_asgi.client",
    "TokenStorage": "oidc_asgi.native",
    "TokenStore": "oidc_asgi.token_cache",
    "TokenType": "oidc_asgi.client",
    "TokenValidator": "oidc_asgi.tokens",
    "UserTokenAuth": "oidc_asgi.signin",
    "cached_login": "oidc_asgi.native",
    "default_token_path": "oidc_asgi.native",
    "device_login": "oidc_asgi.native",
    "get_access_token": "oidc_asgi.signin",
    "get_user": "oidc_asgi.signin",
    "login_required": "oidc_asgi.signin",
    "loopback_login": "oidc_asgi.native",
    "normalize_return_to": "oidc_asgi.signin",
    "parse_www_authenticate": "oidc_asgi.downstream",
    "require_login": "oidc_asgi.signin",
    "require_user": "oidc_asgi.signin",
    "token_cache_key": "oidc_asgi.token_cache",
}

__all__ = [
    "AccessTokenExpectations",
    "AccessTokenUnavailable",
    "BearerConfig",
    "BearerValidator",
    "CacheEntry",
    "ClaimEquals",
    "ClaimIncludes",
    "Claims",
    "CliSession",
    "ClientCredentialsAuth",
    "ConfigurationError",
    "DEFAULT_ALGORITHMS",
    "DPoPSettings",
    "DeviceAuthorization",
    "DeviceLoginPrompt",
    "DownstreamChallenge",
    "Expiring",
    "FileTokenStorage",
    "IDTokenExpectations",
    "InsecureTransportWarning",
    "LoginRequired",
    "LogoutTokenExpectations",
    "MemorySharedState",
    "MemoryStore",
    "MemoryTokenStore",
    "OAuthClient",
    "OAuthError",
    "OIDCAuth",
    "OIDCError",
    "OnBehalfOfAuth",
    "Principal",
    "Provider",
    "ProviderMetadata",
    "ProviderStats",
    "ProviderUnavailable",
    "RedisReplayStore",
    "RedisSharedState",
    "RedisStore",
    "RedisTokenStore",
    "Scopes",
    "ScopesOrRoles",
    "SessionCodec",
    "SignInConfig",
    "SignedInUser",
    "StepUp",
    "TokenCache",
    "TokenCipher",
    "TokenError",
    "TokenResponse",
    "TokenStorage",
    "TokenStore",
    "TokenType",
    "TokenValidator",
    "UserTokenAuth",
    "cached_login",
    "default_token_path",
    "device_login",
    "get_access_token",
    "get_user",
    "login_required",
    "loopback_login",
    "normalize_return_to",
    "parse_www_authenticate",
    "require_login",
    "require_user",
    "token_cache_key",
]

__getattr__, __dir__ = lazy_exports(globals(), _EXPORTS)
