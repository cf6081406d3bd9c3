"""API protection: validate access tokens, check scopes, answer with exact RFC 6750 challenges."""

from oidc_asgi.bearer._challenge import Challenge as Challenge
from oidc_asgi.bearer._challenge import challenge_for as challenge_for
from oidc_asgi.bearer._dpop import DPoPSettings as DPoPSettings
from oidc_asgi.bearer._dpop import DPoPVerifier as DPoPVerifier
from oidc_asgi.bearer._dpop import MemoryReplayStore as MemoryReplayStore
from oidc_asgi.bearer._dpop import ReplayStore as ReplayStore
from oidc_asgi.bearer._introspection import Introspector as Introspector
from oidc_asgi.bearer._principal import Principal as Principal
from oidc_asgi.bearer._redis import RedisReplayStore as RedisReplayStore
from oidc_asgi.bearer._scopes import AnyOf as AnyOf
from oidc_asgi.bearer._scopes import ClaimCheck as ClaimCheck
from oidc_asgi.bearer._scopes import ClaimEquals as ClaimEquals
from oidc_asgi.bearer._scopes import ClaimIncludes as ClaimIncludes
from oidc_asgi.bearer._scopes import Rule as Rule
from oidc_asgi.bearer._scopes import Scopes as Scopes
from oidc_asgi.bearer._scopes import ScopesOrRoles as ScopesOrRoles
from oidc_asgi.bearer._scopes import StepUp as StepUp
from oidc_asgi.bearer._validator import BearerConfig as BearerConfig
from oidc_asgi.bearer._validator import BearerValidator as BearerValidator
from oidc_asgi.bearer._validator import Credentials as Credentials

__all__ = [
    "AnyOf",
    "BearerConfig",
    "BearerValidator",
    "Challenge",
    "ClaimCheck",
    "ClaimEquals",
    "ClaimIncludes",
    "Credentials",
    "DPoPSettings",
    "DPoPVerifier",
    "Introspector",
    "MemoryReplayStore",
    "Principal",
    "RedisReplayStore",
    "ReplayStore",
    "Rule",
    "Scopes",
    "ScopesOrRoles",
    "StepUp",
    "challenge_for",
]
