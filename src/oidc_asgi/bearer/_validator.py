"""The framework-free resource-server validator: configuration, presets, token to ``Principal``.

``BearerConfig`` says once per API what a valid access token is; ``BearerValidator`` applies
it to requests. The work per request, in order:

1. find the credentials: ``Authorization`` only by default (RFC 6750 2.1), the form body when
   opted in (2.2), never the query (2.3); two methods, two headers or a malformed header are
   400 ``invalid_request``; sizes are capped before any parsing;
2. a verified-token cache (bounded, oldest entry evicted first, keyed by the exact token
   string, each entry valid until the token's ``exp`` plus leeway) answers tokens seen before
   without verifying again;
3. with several issuers, the **unverified** ``iss`` picks one from the allow-list before any
   network call: an unknown issuer costs no fetch at all (attack catalogue row 20);
4. ``tokens.TokenValidator.access_token`` runs the RFC 9068 pipeline (structure, alg
   allow-list, key, signature, ``typ``, claims, ``iss``, ``aud``, times);
5. the configured extra checks (``required_values``, ``allowed_client_ids``); then the
   sender-constraint (a DPoP-bound token sent as Bearer is rejected, RFC 9449 7.2);
6. the route's rules (scopes, claims, step-up): failures are 403 (or 401 step-up), never
   ``invalid_token``.

Errors are ``TokenError`` with a stable ``code`` (``missing_token``, ``multiple_tokens``,
``malformed_authorization``, ``authorization_too_large``, ``invalid_claim_value``,
``client_not_allowed``, ``dpop_bound_token``, ``unsupported_token_binding``,
``missing_dpop_binding`` (an introspected ``token_type: DPoP`` without ``cnf.jkt``) plus every
code of ``tokens.py``) or ``ProviderUnavailable``; ``_challenge.challenge_for`` turns them into the
HTTP answer.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import os
import re
import time
from collections import OrderedDict
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any, Literal, get_args
from urllib.parse import parse_qs, urlsplit

import httpx

from oidc_asgi._jwks import ALGORITHM_KEYS, KeySource
from oidc_asgi.bearer._challenge import Challenge, challenge_for
from oidc_asgi.bearer._dpop import DPoPSettings, DPoPVerifier
from oidc_asgi.bearer._introspection import Introspector
from oidc_asgi.bearer._principal import ClaimPath, Principal
from oidc_asgi.bearer._scopes import Rule, check_rules
from oidc_asgi.errors import ConfigurationError, OIDCError, TokenError
from oidc_asgi.provider import Provider
from oidc_asgi.tokens import (
    DEFAULT_ALGORITHMS,
    AccessTokenExpectations,
    Claims,
    TokenValidator,
)

__all__ = ["BearerConfig", "BearerValidator", "Credentials", "TokenSource", "TypPolicy"]

TypPolicy = Literal["strict", "untyped"]
TokenSource = Literal["header", "form"]

# RFC 6750 section 2.1: b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
_B64TOKEN = re.compile(r"[A-Za-z0-9\-._~+/]+=*")
_B64TOKEN_CHARS = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~+/"
# RFC 9110 11.1: auth-scheme is a token; then 1*SP and the credentials (RFC 6750 2.1).
_SCHEME = re.compile(r"([!#$%&'*+\-.^_`|~0-9A-Za-z]+)(.*)", re.DOTALL)
_AFTER_SCHEME = re.compile(r" +(.*)", re.DOTALL)
_FORM_TYPE = "application/x-www-form-urlencoded"
_HEADER_ONLY: tuple[TokenSource, ...] = ("header",)
_REALM = re.compile(r"[\x20\x21\x23-\x5b\x5d-\x7e]{1,128}")
# Quotable in a challenge (RFC 6750 3) and no spaces: %x21 / %x23-5B / %x5D-7E.
_METADATA_URL = re.compile(r"https?://[\x21\x23-\x5b\x5d-\x7e]{1,2000}")
# Introspection members that are NumericDates (RFC 7662 section 2.2), and their sanity bound
# (9999-12-31T23:59:59Z, as tokens.py: a larger value would never expire).
_TIME_MEMBERS = ("exp", "iat", "nbf", "auth_time")
_MAX_NUMERIC_DATE = 253_402_300_799


def _tuple_of_strings(value: Any, what: str, *, allow_empty: bool = True) -> tuple[str, ...]:
    items = (value,) if isinstance(value, str) else tuple(value)
    if not allow_empty and not items:
        raise ConfigurationError(f"{what} is empty", code="invalid_setting")
    for item in items:
        if not isinstance(item, str) or not item:
            raise ConfigurationError(f"{what} must hold non-empty strings", code="invalid_setting")
    return items


def _paths(value: Any, what: str) -> tuple[ClaimPath, ...]:
    items = (value,) if isinstance(value, str) else tuple(value)
    for item in items:
        ok = (isinstance(item, str) and item) or (
            isinstance(item, tuple) and item and all(isinstance(s, str) and s for s in item)
        )
        if not ok:
            raise ConfigurationError(
                f"{what} must hold claim names or tuples of them", code="invalid_setting"
            )
    return items


def _number(value: Any, what: str, *, low: float, high: float) -> None:
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or not low <= value <= high
    ):
        raise ConfigurationError(
            f"{what} must be a number in [{low}, {high}]", code="invalid_setting"
        )


@dataclass(frozen=True, kw_only=True)
class BearerConfig:
    """What a valid access token for this API is, decided once at startup (RFC 9068 section 4).

    * ``issuer``: the issuer identifier, compared exactly (trailing slash included), or a list
      of them: the allow-list, checked on the token's unverified ``iss`` before any network
      call, with one ``Provider`` per issuer.
    * ``audience``: this API's identifier(s); the token's ``aud`` must contain one. ``None`` is
      accepted only with ``allowed_client_ids`` (Cognito access tokens carry no ``aud``): tokens
      are then validated with ``allow_missing_audience=True`` and bound to the API by client.
    * ``algorithms``, ``leeway`` (seconds of clock skew, default 30), ``max_token_age``.
    * ``required_claims`` besides ``iss``/``aud``/``exp`` (RFC 9068 2.2 by default);
      ``required_values`` maps claims to the exact value they must have (401 otherwise).
    * ``typ_policy``: ``"strict"`` requires ``typ: at+jwt``; ``"untyped"`` also accepts no
      ``typ`` or ``JWT`` and then rejects tokens carrying ID-token claims (RFC 8725 3.12).
    * ``scope_claims`` / ``role_claims``: where scopes and app roles come from (``scope``,
      ``scp``, ``permissions``, ``roles``, or a path into nested objects);
      ``client_id_claims``: where the client id comes from (first present wins).
    * ``token_sources``: ``("header",)`` by default; add ``"form"`` for RFC 6750 2.2
      (``("form",)`` alone: the ``Authorization`` header is not read).
    * ``realm`` for challenges; ``json_body`` adds a JSON error body; ``debug`` logs the
      precise reason for each rejection (claim, expected, actual; never the token).
    * ``cache_size``: verified tokens remembered (0 disables the cache).
    * ``jwks_uris``: per issuer, a JWKS URL to use without discovery;
      ``issuer_aliases``: other ``iss`` spellings verified with a listed issuer's keys.
    * ``dpop``: ``DPoPSettings`` to accept (or require) DPoP-bound tokens (RFC 9449).
    * ``resource_metadata``: the URL of this API's protected resource metadata (RFC 9728,
      usually ``https://api.example.com/.well-known/oauth-protected-resource``), sent as the
      ``resource_metadata`` parameter of every ``WWW-Authenticate`` challenge (section 5.1).

    Example::

        config = BearerConfig(issuer="https://login.example.com/", audience="https://api.example.com")
        config = BearerConfig.auth0(domain="example.eu.auth0.com", audience="https://api.example.com")
    """

    issuer: str | Sequence[str]
    audience: str | Collection[str] | None
    algorithms: Collection[str] = DEFAULT_ALGORITHMS
    leeway: float = 30.0
    max_token_age: float | None = None
    required_claims: Collection[str] = ("sub", "client_id", "iat", "jti")
    required_values: Mapping[str, Any] = field(default_factory=dict)
    allowed_client_ids: Collection[str] | None = None
    typ_policy: TypPolicy = "strict"
    scope_claims: Sequence[ClaimPath] = ("scope",)
    role_claims: Sequence[ClaimPath] = ("roles",)
    client_id_claims: Sequence[str] = ("client_id", "azp")
    token_sources: Collection[TokenSource] = _HEADER_ONLY
    realm: str = "api"
    json_body: bool = False
    debug: bool = False
    cache_size: int = 1024
    max_token_bytes: int = 8192
    jwks_uris: Mapping[str, str] = field(default_factory=dict)
    issuer_aliases: Mapping[str, str] = field(default_factory=dict)
    dpop: DPoPSettings | None = None
    resource_metadata: str | None = None

    def __post_init__(self) -> None:
        issuers = _tuple_of_strings(self.issuer, "issuer", allow_empty=False)
        if len(set(issuers)) != len(issuers):
            raise ConfigurationError("issuer lists a value twice", code="invalid_setting")
        object.__setattr__(self, "issuer", issuers[0] if len(issuers) == 1 else issuers)
        if self.audience is not None:
            object.__setattr__(
                self,
                "audience",
                frozenset(_tuple_of_strings(self.audience, "audience", allow_empty=False)),
            )
        if self.allowed_client_ids is not None:
            object.__setattr__(
                self,
                "allowed_client_ids",
                frozenset(
                    _tuple_of_strings(
                        self.allowed_client_ids, "allowed_client_ids", allow_empty=False
                    )
                ),
            )
        if self.audience is None and self.allowed_client_ids is None:
            raise ConfigurationError(
                "audience is required (RFC 9068 section 4); audience=None is accepted only with "
                "allowed_client_ids, for providers whose access tokens carry no aud",
                code="missing_audience",
            )
        algs = _tuple_of_strings(self.algorithms, "algorithms", allow_empty=False)
        for alg in algs:
            if alg not in ALGORITHM_KEYS:
                raise ConfigurationError(
                    f"algorithm {alg!r} is not an asymmetric signature algorithm we verify "
                    "(none and HMAC are never accepted with published keys, RFC 8725 3.1-3.2)",
                    code="invalid_algorithms",
                )
        object.__setattr__(self, "algorithms", frozenset(algs))
        _number(self.leeway, "leeway", low=0, high=600)
        if self.max_token_age is not None:
            _number(self.max_token_age, "max_token_age", low=0, high=10**9)
        object.__setattr__(
            self,
            "required_claims",
            frozenset(_tuple_of_strings(self.required_claims, "required_claims")),
        )
        if not isinstance(self.required_values, Mapping):
            raise ConfigurationError("required_values must be a mapping", code="invalid_setting")
        object.__setattr__(self, "required_values", MappingProxyType(dict(self.required_values)))
        if self.typ_policy not in get_args(TypPolicy):
            raise ConfigurationError(
                "typ_policy must be 'strict' or 'untyped'", code="invalid_setting"
            )
        object.__setattr__(self, "scope_claims", _paths(self.scope_claims, "scope_claims"))
        object.__setattr__(self, "role_claims", _paths(self.role_claims, "role_claims"))
        object.__setattr__(
            self, "client_id_claims", _tuple_of_strings(self.client_id_claims, "client_id_claims")
        )
        sources = _tuple_of_strings(self.token_sources, "token_sources", allow_empty=False)
        if any(s not in get_args(TokenSource) for s in sources):
            raise ConfigurationError(
                "token_sources may hold 'header' and 'form' (tokens in the query string are "
                "not supported: RFC 6750 2.3 advises against them)",
                code="invalid_setting",
            )
        object.__setattr__(self, "token_sources", frozenset(sources))
        if not isinstance(self.realm, str) or not _REALM.fullmatch(self.realm):
            raise ConfigurationError(
                "realm must be 1-128 printable characters without quote or backslash",
                code="invalid_setting",
            )
        if isinstance(self.cache_size, bool) or not isinstance(self.cache_size, int):
            raise ConfigurationError("cache_size must be an int", code="invalid_setting")
        _number(self.cache_size, "cache_size", low=0, high=10**7)
        if isinstance(self.max_token_bytes, bool) or not isinstance(self.max_token_bytes, int):
            raise ConfigurationError("max_token_bytes must be an int", code="invalid_setting")
        _number(self.max_token_bytes, "max_token_bytes", low=256, high=1 << 20)
        for iss, uri in self.jwks_uris.items():
            if iss not in issuers or not isinstance(uri, str):
                raise ConfigurationError(
                    "jwks_uris keys must be configured issuers", code="invalid_setting"
                )
        object.__setattr__(self, "jwks_uris", MappingProxyType(dict(self.jwks_uris)))
        for alias, target in self.issuer_aliases.items():
            if target not in issuers or not isinstance(alias, str) or not alias:
                raise ConfigurationError(
                    "issuer_aliases must map a spelling to a configured issuer",
                    code="invalid_setting",
                )
            if alias in issuers:
                raise ConfigurationError(
                    "an issuer alias must not also be an issuer", code="invalid_setting"
                )
        object.__setattr__(self, "issuer_aliases", MappingProxyType(dict(self.issuer_aliases)))
        if self.resource_metadata is not None and not _metadata_url_ok(self.resource_metadata):
            raise ConfigurationError(
                "resource_metadata must be an absolute https URL (http only for loopback) "
                "without quotes, backslashes, spaces or a fragment (RFC 9728 section 3)",
                code="invalid_setting",
            )

    @property
    def issuers(self) -> tuple[str, ...]:
        """The configured issuers, as a tuple (one element for a single issuer)."""
        return (self.issuer,) if isinstance(self.issuer, str) else tuple(self.issuer)

    # -- environment --------------------------------------------------------------------------

    @classmethod
    def from_env(
        cls, prefix: str = "OIDC_", environ: Mapping[str, str] | None = None, **overrides: Any
    ) -> BearerConfig:
        """Read ``{prefix}ISSUER`` and ``{prefix}AUDIENCE`` (space-separated lists allowed),
        and optionally ``{prefix}ALGORITHMS`` and ``{prefix}LEEWAY``.

        Example::

            config = BearerConfig.from_env()  # OIDC_ISSUER=... OIDC_AUDIENCE=...
        """
        env = os.environ if environ is None else environ
        issuer = env.get(f"{prefix}ISSUER", "").split()
        audience = env.get(f"{prefix}AUDIENCE", "").split()
        if not issuer:
            raise ConfigurationError(f"{prefix}ISSUER is not set", code="missing_issuer")
        values: dict[str, Any] = {"issuer": issuer, "audience": audience or None}
        if env.get(f"{prefix}ALGORITHMS"):
            values["algorithms"] = env[f"{prefix}ALGORITHMS"].split()
        if env.get(f"{prefix}LEEWAY"):
            try:
                values["leeway"] = float(env[f"{prefix}LEEWAY"])
            except ValueError:
                raise ConfigurationError(
                    f"{prefix}LEEWAY is not a number", code="invalid_setting"
                ) from None
        values.update(overrides)
        return cls(**values)

    # -- presets ------------------------------------------------------------------------------

    @classmethod
    def auth0(
        cls,
        *,
        domain: str,
        audience: str | Collection[str],
        permissions: bool = False,
        **overrides: Any,
    ) -> BearerConfig:
        """Auth0 (default access token profile).

        Relaxed, and why: the issuer is ``https://{domain}/`` **with** the trailing slash Auth0
        puts in ``iss`` (exact comparison stays on); ``typ`` is ``JWT`` not ``at+jwt``
        (``typ_policy="untyped"``, so ID-token claims are rejected instead); ``client_id`` and
        ``jti`` are absent (the client is in ``azp``), so only ``sub`` and ``iat`` are required.
        ``permissions=True`` also reads the ``permissions`` claim that Auth0's RBAC setting "Add
        Permissions in the Access Token" emits.

        Example::

            BearerConfig.auth0(domain="example.eu.auth0.com", audience="https://api.example.com")
        """
        values: dict[str, Any] = {
            "issuer": f"https://{domain}/",
            "audience": audience,
            "typ_policy": "untyped",
            "required_claims": ("sub", "iat"),
            "scope_claims": ("scope", "permissions") if permissions else ("scope",),
            "role_claims": (),
            "client_id_claims": ("client_id", "azp"),
        }
        return cls(**{**values, **overrides})

    @classmethod
    def entra_id_v2(cls, *, tenant_id: str, client_id: str, **overrides: Any) -> BearerConfig:
        """Microsoft Entra ID, v2.0 access tokens (``accessTokenAcceptedVersion: 2``).

        Relaxed, and why: ``typ`` is ``JWT`` (``typ_policy="untyped"``); there is no
        ``client_id`` or ``jti`` (the caller is ``azp``, the id is ``uti``), so ``sub`` and
        ``iat`` are required; ``aud`` is the API's client id. Delegated permissions arrive in
        ``scp`` (space-separated) and application permissions in ``roles``: use
        ``ScopesOrRoles`` on routes serving both users and daemons.

        Example::

            BearerConfig.entra_id_v2(tenant_id=TENANT, client_id=API_CLIENT_ID)
        """
        values: dict[str, Any] = {
            "issuer": f"https://login.microsoftonline.com/{tenant_id}/v2.0",
            "audience": client_id,
            "typ_policy": "untyped",
            "required_claims": ("sub", "iat"),
            "scope_claims": ("scp",),
            "role_claims": ("roles",),
            "client_id_claims": ("azp",),
        }
        return cls(**{**values, **overrides})

    @classmethod
    def entra_id_v1(
        cls, *, tenant_id: str, client_id: str, app_id_uri: str | None = None, **overrides: Any
    ) -> BearerConfig:
        """Microsoft Entra ID, v1.0 access tokens (the default for new app registrations).

        Relaxed, and why: v1 tokens are issued by ``https://sts.windows.net/{tenant}/``, a host
        that does not serve the discovery document, so the keys come from the tenant's
        ``/discovery/keys`` directly; ``aud`` is the App ID URI (``api://{client_id}`` unless
        given) or the client id; ``typ`` is ``JWT``; the client is ``appid``; there is no
        ``client_id`` or ``jti``. Scopes in ``scp``, application permissions in ``roles``.

        Example::

            BearerConfig.entra_id_v1(tenant_id=TENANT, client_id=API_CLIENT_ID)
        """
        issuer = f"https://sts.windows.net/{tenant_id}/"
        values: dict[str, Any] = {
            "issuer": issuer,
            "audience": (app_id_uri or f"api://{client_id}", client_id),
            "typ_policy": "untyped",
            "required_claims": ("sub", "iat"),
            "scope_claims": ("scp",),
            "role_claims": ("roles",),
            "client_id_claims": ("appid",),
            "jwks_uris": {issuer: f"https://login.microsoftonline.com/{tenant_id}/discovery/keys"},
        }
        return cls(**{**values, **overrides})

    @classmethod
    def okta(
        cls,
        *,
        domain: str,
        authorization_server: str = "default",
        audience: str | Collection[str] = "api://default",
        **overrides: Any,
    ) -> BearerConfig:
        """Okta custom authorization server.

        Relaxed, and why: Okta access tokens carry no ``typ`` header (``untyped``); the client
        is ``cid`` (no ``client_id``); scopes are the **array** ``scp`` (each item one scope).
        ``sub``, ``iat`` and ``jti`` are present and required.

        Example::

            BearerConfig.okta(domain="example.okta.com", audience="api://default")
        """
        values: dict[str, Any] = {
            "issuer": f"https://{domain}/oauth2/{authorization_server}",
            "audience": audience,
            "typ_policy": "untyped",
            "required_claims": ("sub", "iat", "jti"),
            "scope_claims": ("scp",),
            "role_claims": (),
            "client_id_claims": ("cid",),
        }
        return cls(**{**values, **overrides})

    @classmethod
    def keycloak(
        cls, *, base_url: str, realm: str, audience: str | Collection[str], **overrides: Any
    ) -> BearerConfig:
        """Keycloak realm.

        Relaxed, and why: the header ``typ`` is ``JWT`` (``untyped``); the client is ``azp``
        (``client_id`` only on service-account tokens); realm roles live in
        ``realm_access.roles``. Keycloak puts ``account`` in ``aud`` unless an *audience
        mapper* adds your API: add one, the audience check is not relaxed.

        Example::

            BearerConfig.keycloak(base_url="https://sso.example.com", realm="acme",
                                  audience="messages-api")
        """
        values: dict[str, Any] = {
            "issuer": f"{base_url.rstrip('/')}/realms/{realm}",
            "audience": audience,
            "typ_policy": "untyped",
            "required_claims": ("sub", "iat", "jti"),
            "scope_claims": ("scope",),
            "role_claims": (("realm_access", "roles"),),
            "client_id_claims": ("client_id", "azp"),
        }
        return cls(**{**values, **overrides})

    @classmethod
    def cognito(
        cls, *, region: str, user_pool_id: str, client_ids: Collection[str], **overrides: Any
    ) -> BearerConfig:
        """Amazon Cognito user pool access tokens.

        Relaxed, and why: Cognito access tokens have **no** ``aud`` and no ``typ``; AWS's own
        guidance is to check ``client_id`` against the app clients and ``token_use ==
        "access"`` (which also rejects Cognito ID tokens), so ``audience=None`` with
        ``allowed_client_ids`` and ``required_values={"token_use": "access"}``: the token is
        validated with ``AccessTokenExpectations(allow_missing_audience=True)`` and bound to
        this API by its ``client_id`` instead; a token that does carry an ``aud`` is rejected.
        Groups come from ``cognito:groups``.

        Example::

            BearerConfig.cognito(region="eu-west-1", user_pool_id="eu-west-1_AbC",
                                 client_ids=["5abc..."])
        """
        values: dict[str, Any] = {
            "issuer": f"https://cognito-idp.{region}.amazonaws.com/{user_pool_id}",
            "audience": None,
            "allowed_client_ids": client_ids,
            "required_values": {"token_use": "access"},
            "typ_policy": "untyped",
            "required_claims": ("sub", "iat", "jti", "client_id"),
            "scope_claims": ("scope",),
            "role_claims": ("cognito:groups",),
            "client_id_claims": ("client_id",),
        }
        return cls(**{**values, **overrides})

    @classmethod
    def google(cls, *, audience: str | Collection[str], **overrides: Any) -> BearerConfig:
        """Google-signed identity tokens used as bearer tokens (Cloud Run, IAP, Pub/Sub push).

        Relaxed, and why: Google's OAuth access tokens are opaque; what Google signs as a JWT
        for service-to-service calls is an ID token whose ``aud`` is the receiving service, so
        ``typ`` is ``JWT`` (``untyped``: tokens with ``nonce``/``at_hash`` from browser sign-ins
        are still rejected), there is no ``client_id``/``jti``/scope (authorize with claim rules
        on ``email``), and ``iss`` may be spelled ``accounts.google.com`` without the scheme,
        verified with the keys of ``https://accounts.google.com``.

        Example::

            BearerConfig.google(audience="https://my-service-abc.a.run.app")
        """
        values: dict[str, Any] = {
            "issuer": "https://accounts.google.com",
            "issuer_aliases": {"accounts.google.com": "https://accounts.google.com"},
            "audience": audience,
            "typ_policy": "untyped",
            "required_claims": ("sub", "iat"),
            "scope_claims": (),
            "role_claims": (),
            "client_id_claims": ("azp",),
        }
        return cls(**{**values, **overrides})

    def with_changes(self, **changes: Any) -> BearerConfig:
        """A copy with some settings changed (validated again).

        Example::

            strict = config.with_changes(max_token_age=600)
        """
        return replace(self, **changes)


@dataclass(frozen=True, slots=True)
class Credentials:
    """The token found in a request and how it came (``scheme``, ``source``).

    Example::

        credentials = validator.credentials(scope)  # None when the request carries no token
        if credentials is not None and credentials.scheme == "DPoP":
            ...
    """

    scheme: Literal["Bearer", "DPoP"]
    token: str
    source: TokenSource = "header"


def _metadata_url_ok(url: object) -> bool:
    if not isinstance(url, str) or not _METADATA_URL.fullmatch(url):
        return False
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        return False
    if parts.fragment or not host:
        return False
    return parts.scheme == "https" or host in ("localhost", "127.0.0.1", "::1")


def _error(code: str, message: str) -> TokenError:
    return TokenError(message, code=code)


def _unverified_issuer(token: str) -> str | None:
    # Routing only (the issuer is checked again on the verified claims): read the payload's
    # iss with strict base64url and JSON, no key and no network involved.
    parts = token.split(".")
    if len(parts) != 3:
        return None
    payload = parts[1]
    try:
        raw = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
        data = json.loads(raw.decode("utf-8"))
    except (binascii.Error, ValueError, RecursionError):
        return None
    iss = data.get("iss") if isinstance(data, dict) else None
    return iss if isinstance(iss, str) else None


@dataclass(slots=True)
class _Entry:
    principal: Principal
    valid_until: float


class BearerValidator:
    """Validates the access tokens of requests to one API, as configured by ``BearerConfig``.

    Framework-free: ``authenticate(scope)`` takes an ASGI scope (HTTP or WebSocket);
    ``validate(token)`` takes a token. The FastAPI and Starlette glue in
    ``oidc_asgi.bearer.fastapi`` / ``.starlette`` wrap it. ``http_client`` is used for every
    discovery, JWKS and introspection call; ``keys`` replaces the fetched keys (one
    ``KeySource`` for all issuers, or a mapping per issuer); ``now`` is the clock;
    ``introspection`` accepts opaque tokens through an ``Introspector`` (RFC 7662).

    Example::

        validator = BearerValidator(
            BearerConfig(issuer="https://login.example.com/", audience="https://api.example.com")
        )
        principal = await validator.validate(token)
    """

    def __init__(
        self,
        config: BearerConfig,
        *,
        http_client: httpx.AsyncClient | None = None,
        keys: KeySource | Mapping[str, KeySource] | None = None,
        now: Callable[[], float] = time.time,
        allow_insecure_http: bool = False,
        introspection: Introspector | None = None,
        dpop_verifier: DPoPVerifier | None = None,
    ) -> None:
        if not isinstance(config, BearerConfig):
            raise ConfigurationError("config must be a BearerConfig", code="invalid_setting")
        self.config = config
        self.now = now
        self.providers: dict[str, Provider] = {}
        self._validators: dict[str, TokenValidator] = {}
        for issuer in config.issuers:
            source: KeySource
            if keys is not None and not isinstance(keys, Mapping):
                source = keys
            elif isinstance(keys, Mapping) and issuer in keys:
                source = keys[issuer]
            else:
                jwks_uri = config.jwks_uris.get(issuer)
                provider = Provider(
                    issuer,
                    http_client=http_client,
                    now=now,
                    allow_insecure_http=allow_insecure_http,
                    metadata={"issuer": issuer, "jwks_uri": jwks_uri} if jwks_uri else None,
                )
                self.providers[issuer] = provider
                source = provider
            self._validators[issuer] = self._token_validator(issuer, source)
        for alias, target in config.issuer_aliases.items():
            self._validators[alias] = self._token_validator(alias, self._validators[target].keys)
        self._single = self._validators[config.issuers[0]] if len(self._validators) == 1 else None
        self._expect = AccessTokenExpectations(
            audience=config.audience,
            required_claims=config.required_claims,
            allow_untyped=config.typ_policy == "untyped",
            max_token_age=config.max_token_age,
            # audience=None is accepted by BearerConfig only with allowed_client_ids, which
            # _extra_checks enforces on every token: that is the caller's check the switch asks for.
            allow_missing_audience=config.audience is None,
        )
        # Keyed by the token itself (its ASCII bytes, as they arrive in the header): a dict
        # lookup compares the whole token, so only the very same token can ever hit (cheaper
        # than hashing it with SHA-256 first, and exact).
        self._cache: OrderedDict[bytes, _Entry] = OrderedDict()
        # authenticate() reads the cache itself unless a subclass changed validate().
        self._inline_cache = type(self).validate is BearerValidator.validate
        # token_sources=("form",) means the Authorization header carries no token here.
        self._header_source = "header" in config.token_sources
        self.introspection = introspection
        if (
            introspection is not None
            and introspection.endpoint is None
            and introspection.provider is None
        ):
            introspection.provider = self.providers.get(config.issuers[0])
        self.dpop: DPoPVerifier | None = dpop_verifier
        if self.dpop is None and config.dpop is not None:
            self.dpop = DPoPVerifier(config.dpop, now=now)

    def _token_validator(self, issuer: str, keys: KeySource) -> TokenValidator:
        return TokenValidator(
            issuer=issuer,
            keys=keys,
            algorithms=self.config.algorithms,
            leeway=self.config.leeway,
            max_token_bytes=self.config.max_token_bytes,
            now=self.now,
        )

    def __repr__(self) -> str:
        return f"BearerValidator(issuers={self.config.issuers!r})"

    # -- lifecycle ----------------------------------------------------------------------------

    async def prefetch(self) -> None:
        """Fetch every issuer's metadata and keys now (call it in the ASGI lifespan startup).

        Example::

            @asynccontextmanager
            async def lifespan(app):
                await validator.prefetch()
                yield
                await validator.aclose()
        """
        for provider in self.providers.values():
            await provider.prefetch()

    async def aclose(self) -> None:
        """Close the providers (an injected ``http_client`` is left open)."""
        for provider in self.providers.values():
            await provider.aclose()

    # -- credentials --------------------------------------------------------------------------

    def wants_form(self, scope: Mapping[str, Any]) -> bool:
        """True when the glue should read the form body for a token (RFC 6750 section 2.2):
        form tokens are enabled, the method has a body (not GET/HEAD) and the content type is
        ``application/x-www-form-urlencoded``.

        Example::

            form = await request.form() if validator.wants_form(request.scope) else None
        """
        if "form" not in self.config.token_sources or scope.get("type") != "http":
            return False
        if scope.get("method") in ("GET", "HEAD"):
            return False
        for name, value in scope.get("headers", ()):
            if name == b"content-type":
                media = value.split(b";", 1)[0].strip().lower()
                return bool(media == _FORM_TYPE.encode())
        return False

    @staticmethod
    def form_tokens(body: bytes) -> list[str]:
        """The ``access_token`` fields of an ``application/x-www-form-urlencoded`` body.

        Parsed here (no ``python-multipart`` needed); malformed bodies yield no token.

        Example::

            tokens = validator.form_tokens(await request.body())
        """
        try:
            fields = parse_qs(
                body.decode("utf-8"),
                keep_blank_values=True,
                strict_parsing=False,
                max_num_fields=1000,
            )
        except (UnicodeDecodeError, ValueError):
            return []
        return fields.get("access_token", [])

    def credentials(
        self, scope: Mapping[str, Any], form_tokens: Sequence[str] | None = None
    ) -> Credentials | None:
        """The token in a request, or ``None`` when it carries none (RFC 6750 section 2).

        Raises ``TokenError`` for a malformed request: two ``Authorization`` headers or two
        token methods (``multiple_authorization_headers``, ``multiple_tokens``), a header over
        the size cap (``authorization_too_large``) or not of the form ``Scheme token``
        (``malformed_authorization``). Schemes other than Bearer (and DPoP when enabled) count
        as no credentials.

        Example::

            creds = validator.credentials(request.scope)
        """
        found = self._find(scope, form_tokens)
        return None if found is None else Credentials(*found)

    def _find(
        self, scope: Mapping[str, Any], form_tokens: Sequence[str] | None
    ) -> tuple[Literal["Bearer", "DPoP"], str, TokenSource] | None:
        # credentials() without building a Credentials object (authenticate's hot path).
        header: bytes | None = None
        for name, value in scope.get("headers", ()):
            if name == b"authorization":
                if header is not None:
                    raise _error(
                        "multiple_authorization_headers", "more than one Authorization header"
                    )
                header = value
        cap = self.config.max_token_bytes
        found: tuple[Literal["Bearer", "DPoP"], str, TokenSource] | None = None
        if header is not None and self._header_source:
            if len(header) > cap + 16:
                raise _error("authorization_too_large", "the Authorization header is too large")
            value = header[7:]
            body = value.rstrip(b"=")
            if (
                header[:7] in (b"Bearer ", b"bearer ")
                and body
                and not body.translate(None, _B64TOKEN_CHARS)
            ):
                # The common case: _B64TOKEN decided at C speed (deleting every allowed
                # character leaves nothing; "=" only as trailing padding).
                found = ("Bearer", value.decode("ascii"), "header")
            else:
                text = header.decode("latin-1")
                match = _SCHEME.fullmatch(text)
                scheme = match.group(1).lower() if match else ""
                if scheme == "bearer" or (scheme == "dpop" and self.dpop is not None):
                    assert match is not None
                    rest = _AFTER_SCHEME.fullmatch(match.group(2))
                    token = rest.group(1) if rest else ""
                    if not _B64TOKEN.fullmatch(token):
                        raise _error(
                            "malformed_authorization", "the Authorization header is malformed"
                        )
                    found = ("Bearer" if scheme == "bearer" else "DPoP", token, "header")
        if form_tokens:
            if found is not None or len(form_tokens) > 1:
                # RFC 6750 section 2: clients MUST NOT use more than one method per request.
                raise _error("multiple_tokens", "more than one access token in the request")
            token = form_tokens[0]
            if len(token) > cap:
                raise _error("authorization_too_large", "the access token is too large")
            if not _B64TOKEN.fullmatch(token):
                raise _error("malformed_authorization", "the form access_token is malformed")
            found = ("Bearer", token, "form")
        return found

    # -- validation ---------------------------------------------------------------------------

    async def authenticate(
        self,
        scope: Mapping[str, Any],
        *,
        form_tokens: Sequence[str] | None = None,
        rules: Sequence[Rule] = (),
    ) -> Principal:
        """Authenticate one request and apply ``rules``; return the ``Principal``.

        Raises ``TokenError`` (``missing_token`` when there are no credentials) or
        ``ProviderUnavailable``; turn either into an answer with :meth:`challenge`.

        Example::

            principal = await validator.authenticate(request.scope, rules=[Scopes("read")])
        """
        if not form_tokens:
            cached = self._authenticate_cached(scope, rules)
            if cached is not None:
                return cached
        return await self._authenticate(scope, form_tokens, rules)

    async def _authenticate(
        self, scope: Mapping[str, Any], form_tokens: Sequence[str] | None, rules: Sequence[Rule]
    ) -> Principal:
        # authenticate() after _authenticate_cached() answered None (or was not applicable).
        found = self._find(scope, form_tokens)
        if found is None:
            raise TokenError("the request carries no access token", code="missing_token")
        scheme, token, _source = found
        dpop = self.dpop
        if scheme == "Bearer" and dpop is not None and dpop.settings.required:
            raise TokenError("this API accepts DPoP-bound tokens only", code="dpop_required")
        principal = await self.validate(token)
        if scheme == "DPoP":
            assert dpop is not None  # credentials() accepts DPoP only when enabled
            if principal.jkt is None:
                raise TokenError(
                    "the DPoP scheme was used with a token not bound to a key",
                    code="unbound_token",
                    claim="cnf",
                )
            await dpop.verify(scope, token, principal)
        else:
            _check_plain_bearer(principal)
        if rules:
            check_rules(principal, rules, self.now())
        return principal

    def _authenticate_cached(
        self, scope: Mapping[str, Any], rules: Sequence[Rule]
    ) -> Principal | None:
        """authenticate() without awaiting, for a ``Bearer`` header whose token was verified
        before; ``None`` means "take the long way" (the answer is then decided there).

        Sound because only tokens that are valid RFC 6750 b64tokens within the size cap are
        ever cached (see validate), so a cache hit on the raw header bytes is exactly a header
        _find would accept; the checks that follow are the ones authenticate() makes.
        """
        if not self._inline_cache or self.dpop is not None or not self._header_source:
            return None
        header: bytes | None = None
        for name, value in scope.get("headers", ()):
            if name == b"authorization":
                if header is not None:
                    raise _error(
                        "multiple_authorization_headers", "more than one Authorization header"
                    )
                header = value
        if header is None or header[:7] not in (b"Bearer ", b"bearer "):
            return None
        entry = self._cache.get(header[7:])
        if entry is None:
            return None
        now = self.now()
        if now >= entry.valid_until:
            return None  # validate() drops it
        principal = entry.principal
        _check_plain_bearer(principal)
        if rules:
            check_rules(principal, rules, now)
        return principal

    def authorize(self, principal: Principal, rules: Sequence[Rule]) -> None:
        """Apply ``rules`` to an authenticated principal (403 / step-up 401 on failure).

        Example::

            validator.authorize(principal, [Scopes("write:messages")])
        """
        check_rules(principal, rules, self.now())

    async def validate(self, token: str) -> Principal:
        """Validate an access token (JWT, or opaque through introspection) into a ``Principal``.

        Tokens verified before are answered from the cache until they expire. The request's
        sender constraint is not judged here (see :meth:`authenticate`).

        Example::

            principal = await validator.validate(token)
        """
        if len(token) > self.config.max_token_bytes:
            raise TokenError(
                "token is larger than the configured limit",
                code="token_too_large",
                expected=self.config.max_token_bytes,
                actual=len(token),
            )
        cache_size = self.config.cache_size
        key: bytes | None = None
        if cache_size and token.isascii():
            key = token.encode("ascii")
            entry = self._cache.get(key)
            if entry is not None:
                if self.now() < entry.valid_until:
                    return entry.principal
                del self._cache[key]
        if self.introspection is not None and token.count(".") != 2:
            # Hybrid dispatch: a JWS has exactly two dots; anything else is opaque. A bearer
            # token is an RFC 6750 b64token: anything else (validate() called directly with
            # arbitrary text) is malformed, and never sent to the authorization server.
            if not _B64TOKEN.fullmatch(token):
                raise TokenError("the access token is not a b64token", code="malformed_token")
            principal, valid_until = await self._introspected(self.introspection, token)
            if key is not None and not _B64TOKEN.fullmatch(token):
                # Only RFC 6750 b64tokens are cached, so that a cache hit on a header's raw
                # bytes (_authenticate_cached) never accepts what _find would reject.
                key = None
        else:
            # A JWS that verified is base64url segments and dots: always a b64token.
            validator = self._single or self._route(token)
            claims = await validator.access_token(token, self._expect)
            self._extra_checks(claims)
            principal = self._principal(claims)
            valid_until = self._valid_until(claims)
        if key is not None:
            cache = self._cache
            cache[key] = _Entry(principal, valid_until)
            if len(cache) > cache_size:
                cache.popitem(last=False)
        return principal

    async def _introspected(
        self, introspector: Introspector, token: str
    ) -> tuple[Principal, float]:
        # RFC 7662 section 4: the answer is judged like the claims of a JWT.
        data = dict(await introspector.introspect(token))
        config = self.config
        now = self.now()
        token_type = data.get("token_type")
        if token_type is not None and (
            not isinstance(token_type, str) or token_type.lower() not in ("bearer", "dpop")
        ):
            # A refresh token (or anything else) is not an access token.
            raise TokenError(
                "the introspected token is not an access token",
                code="token_kind_mismatch",
                claim="token_type",
                expected=["Bearer", "DPoP"],
                actual=token_type if isinstance(token_type, str) else None,
            )
        if isinstance(token_type, str) and token_type.lower() == "dpop":
            # RFC 9449 section 6.2: a DPoP-bound token is introspected with cnf.jkt. Without
            # it the token claims a binding this API cannot check: never a plain bearer token.
            cnf = data.get("cnf")
            jkt = cnf.get("jkt") if isinstance(cnf, Mapping) else None
            if not isinstance(jkt, str) or not jkt:
                raise TokenError(
                    "the introspected DPoP token has no cnf.jkt",
                    code="missing_dpop_binding",
                    claim="cnf",
                    expected="jkt",
                )
        iss = data.get("iss")
        if iss is None:
            data["iss"] = config.issuers[0]  # the server we asked
        elif not isinstance(iss, str) or iss not in self._validators:
            raise TokenError(
                "issuer is not the configured issuer",
                code="invalid_issuer",
                claim="iss",
                expected=list(config.issuers),
                actual=iss,
            )
        audience = config.audience
        if audience is not None:
            aud = data.get("aud")
            values = [aud] if isinstance(aud, str) else aud if isinstance(aud, list) else []
            if not any(isinstance(a, str) and a in audience for a in values):
                raise TokenError(
                    "token is not meant for this API",
                    code="invalid_audience",
                    claim="aud",
                    expected=sorted(audience),
                    actual=aud if isinstance(aud, (str, list)) else None,
                )
        for name in _TIME_MEMBERS:
            # Typed like a JWT's NumericDates (tokens.py): a value beyond float range, an
            # infinite or negative one, or a bool is a broken answer (401), never a 500 later.
            value = data.get(name)
            if value is not None and (
                (type(value) is not int and type(value) is not float)
                or not 0 <= value <= _MAX_NUMERIC_DATE
            ):
                raise TokenError(
                    "claim has the wrong type",
                    code="invalid_claim_type",
                    claim=name,
                    expected="NumericDate",
                    actual=type(value).__name__,
                )
        exp = data.get("exp")
        valid_until = now + introspector.max_cache_ttl
        if exp is not None:
            if now - config.leeway >= exp:
                raise TokenError(
                    "token has expired", code="token_expired", claim="exp", expected=exp, actual=now
                )
            valid_until = min(valid_until, float(exp))
        nbf = data.get("nbf")
        if nbf is not None and nbf > now + config.leeway:
            # RFC 7662 section 2.2 nbf, judged as RFC 7519 4.1.5 (anchors part b, check 25).
            raise TokenError(
                "token is not valid yet",
                code="token_not_yet_valid",
                claim="nbf",
                expected=nbf,
                actual=now,
            )
        self._extra_checks(data)
        return self._principal(data), valid_until

    def _valid_until(self, claims: Mapping[str, Any]) -> float:
        leeway = self.config.leeway
        until = float(claims["exp"]) + leeway
        max_age = self.config.max_token_age
        iat = claims.get("iat")
        if max_age is not None and isinstance(iat, (int, float)):
            until = min(until, float(iat) + max_age + leeway)
        return until

    def _route(self, token: str) -> TokenValidator:
        # Several issuers: the unverified iss picks the validator (checked again after).
        iss = _unverified_issuer(token)
        validator = self._validators.get(iss) if iss is not None else None
        if validator is None:
            # Attack catalogue row 20: the allow-list is consulted before any network I/O.
            raise TokenError(
                "issuer is not on the allow-list",
                code="invalid_issuer",
                claim="iss",
                expected=sorted(self._validators),
                actual=iss,
            )
        return validator

    def _extra_checks(self, claims: Mapping[str, Any]) -> None:
        for name, value in self.config.required_values.items():
            actual = claims.get(name)
            if type(actual) is not type(value) or actual != value:
                raise TokenError(
                    "claim does not have the required value",
                    code="invalid_claim_value",
                    claim=name,
                    expected=value,
                    actual=actual,
                )
        allowed = self.config.allowed_client_ids
        if allowed is not None:
            client = next(
                (claims[n] for n in self.config.client_id_claims if isinstance(claims.get(n), str)),
                None,
            )
            if client not in allowed:
                raise TokenError(
                    "the token was issued to a client this API does not accept",
                    code="client_not_allowed",
                    claim="client_id",
                    expected=sorted(allowed),
                    actual=client,
                )

    def _principal(self, claims: Mapping[str, Any]) -> Principal:
        config = self.config
        return Principal.from_claims(
            claims,
            scope_claims=config.scope_claims,
            role_claims=config.role_claims,
            client_id_claims=config.client_id_claims,
        )

    # -- answers ------------------------------------------------------------------------------

    def challenge(self, error: OIDCError, scope: Mapping[str, Any] | None = None) -> Challenge:
        """The HTTP answer for an error from :meth:`authenticate` (see ``challenge_for``).

        With the request's ``scope``, error parameters go on the challenge of the scheme the
        client used (``Bearer`` or ``DPoP``, RFC 9449 section 7.1).

        Example::

            except (TokenError, ProviderUnavailable) as exc:
                c = validator.challenge(exc, request.scope)
                return Response(c.body, c.status, headers=c.header_dict())
        """
        dpop = self.dpop
        nonce = None
        if dpop is not None and isinstance(error, TokenError) and error.code == "use_dpop_nonce":
            nonce = dpop.new_nonce()
        return challenge_for(
            error,
            realm=self.config.realm,
            scheme=_scheme_used(scope) if scope is not None and dpop is not None else "Bearer",
            bearer=dpop is None or not dpop.settings.required,
            dpop_algs=dpop.settings.algorithms if dpop is not None else None,
            dpop_nonce=nonce,
            json_body=self.config.json_body,
            debug=self.config.debug,
            resource_metadata=self.config.resource_metadata,
        )


def _check_plain_bearer(principal: Principal) -> None:
    # The token came with the Bearer scheme: it must not be sender-constrained.
    if principal.jkt is not None:
        # RFC 9449 section 7.2: a DPoP-bound token is not a bearer token.
        raise TokenError(
            "a DPoP-bound token was sent as a bearer token",
            code="dpop_bound_token",
            claim="cnf",
        )
    if _has_cnf(principal.claims):
        # A binding we cannot enforce (e.g. RFC 8705 x5t#S256): never plain bearer.
        raise TokenError(
            "the token is bound in a way this API does not verify",
            code="unsupported_token_binding",
            claim="cnf",
        )


def _has_cnf(claims: Mapping[str, Any]) -> bool:
    # Claims' own __contains__ runs in Python; its dict view answers at C speed.
    if type(claims) is Claims or isinstance(claims, Claims):
        return "cnf" in claims.as_mapping()
    return "cnf" in claims


def _scheme_used(scope: Mapping[str, Any]) -> Literal["Bearer", "DPoP"]:
    for name, value in scope.get("headers", ()):
        if name == b"authorization" and value[:5].lower() == b"dpop ":
            return "DPoP"
    return "Bearer"
