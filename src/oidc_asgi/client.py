"""The OAuth 2.0 client: who this application is, and every grant at the token endpoint.

``OAuthClient`` authenticates to the token endpoint (RFC 6749 section 2.3, RFC 7523 section 2.2)
and speaks each grant the pillars need: authorization code (RFC 6749 section 4.1.3, with PKCE,
RFC 7636 section 4.5), refresh (section 6), client credentials (section 4.4), device
authorization (RFC 8628 sections 3.1-3.5), token exchange (RFC 8693) and Microsoft Entra ID's
on-behalf-of dialect of the JWT bearer grant (RFC 7523 section 2.1 plus
``requested_token_use=on_behalf_of``). Every successful grant returns a frozen ``TokenResponse``
whose ``repr`` never shows a token.

Why not authlib's OAuth client: its ``client_secret_basic`` helper joins the raw id and secret
and encodes them as latin-1, which breaks secrets containing ``:``, ``%`` or characters outside
Latin-1 (RFC 6749 section 2.3.1 wants both form-urlencoded first); its clients are untyped (mypy
``--strict`` sees ``Any`` everywhere), build their own ``httpx`` clients, and check neither
``expires_in``, ``token_type`` nor ``issued_token_type``. So each request is a plain form POST
through ``oidc_asgi._http.fetch_json`` (https rule, one deadline, size cap, strict JSON, no
redirects) on the application's injectable ``httpx.AsyncClient``; JWT client assertions are
signed with ``joserfc``.

Errors:
  * the endpoint answered with an OAuth error (RFC 6749 section 5.2): ``OAuthError`` carrying
    ``error``, ``error_description``, ``status_code`` and any ``claims`` challenge;
  * timeouts, connection failures, 5xx, 429, oversize or malformed answers:
    ``ProviderUnavailable`` (``code`` says which);
  * a setting that can never work: ``ConfigurationError``, raised by the constructor.
No message ever contains a token, an authorization code, a device code or a secret.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import time
import warnings
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal, Protocol, TypeGuard, cast, get_args
from urllib.parse import quote_plus

import httpx
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from joserfc import jwk as _jwk
from joserfc import jwt as _jwt
from joserfc.errors import SecurityWarning

from oidc_asgi._http import (
    DEFAULT_MAX_BYTES,
    DEFAULT_TIMEOUT,
    ProviderStatusError,
    fetch_json,
    require_https,
    safe_url,
    warn_insecure_http,
)
from oidc_asgi._jwks import MIN_RSA_BITS, b64url_decode
from oidc_asgi.errors import ConfigurationError, OAuthError, ProviderUnavailable

__all__ = [
    "DeviceAuthorization",
    "OAuthClient",
    "TokenResponse",
    "TokenType",
]

AuthMethod = Literal[
    "client_secret_basic", "client_secret_post", "private_key_jwt", "client_secret_jwt", "none"
]
AssertionAudience = Literal["token_endpoint", "issuer"]

DEVICE_CODE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
TOKEN_EXCHANGE_GRANT = "urn:ietf:params:oauth:grant-type:token-exchange"
JWT_BEARER_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
CLIENT_ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


class TokenType:
    """Token type identifiers for token exchange (RFC 8693 section 3).

    Example::

        tokens = await client.token_exchange(
            subject_token=incoming, subject_token_type=TokenType.ACCESS_TOKEN,
            requested_token_type=TokenType.JWT, audience="https://orders.example",
        )
    """

    ACCESS_TOKEN = "urn:ietf:params:oauth:token-type:access_token"
    REFRESH_TOKEN = "urn:ietf:params:oauth:token-type:refresh_token"
    ID_TOKEN = "urn:ietf:params:oauth:token-type:id_token"
    JWT = "urn:ietf:params:oauth:token-type:jwt"
    SAML1 = "urn:ietf:params:oauth:token-type:saml1"
    SAML2 = "urn:ietf:params:oauth:token-type:saml2"


#: Lifetime of a client assertion we sign: short, so a leaked one is soon useless.
ASSERTION_LIFETIME = 60
#: HS256 needs a key of at least 256 bits (RFC 7518 section 3.2).
MIN_JWT_SECRET_BYTES = 32
_ACCEPTED_STATUSES = (200, 400, 401, 403)  # 4xx bodies may hold RFC 6749 5.2 errors
#: RFC 8628 section 3.2: poll every 5 seconds when the server names no interval.
DEFAULT_DEVICE_INTERVAL = 5

_TOKEN_TYPES = {"bearer": "Bearer", "dpop": "DPoP", "n_a": "N_A"}
# RFC 6749 section 5.2: error codes use %x20-21 / %x23-5B / %x5D-7E.
_ERROR_CODE = re.compile(r"[\x20\x21\x23-\x5b\x5d-\x7e]{1,128}")
_PRINTABLE = re.compile(r"[^\x20-\x7e]")
_MAX_DESCRIPTION = 300
_MAX_CLAIMS = 8192
_MAX_INT = 10**10
_SIGNING_ALGS = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA",
     "Ed25519", "Ed448"}
)  # fmt: skip
_EC_ALG = {"P-256": "ES256", "P-384": "ES384", "P-521": "ES512"}


# --------------------------------------------------------------------------- results


@dataclass(frozen=True, kw_only=True, repr=False)
class TokenResponse:
    """A successful token endpoint answer (RFC 6749 section 5.1, RFC 8693 section 2.2.1).

    ``expires_at`` is absolute (seconds since the epoch, from the client's clock at receipt) or
    None when the server sent no ``expires_in``. ``token_type`` is normalised to ``Bearer``,
    ``DPoP`` or ``N_A``. ``extras`` holds every other member of the response. ``repr`` names
    which tokens are present but never shows one.

    Example::

        tokens = await client.client_credentials(scope="read:messages")
        headers = {"Authorization": f"{tokens.token_type} {tokens.access_token}"}
    """

    access_token: str
    token_type: str
    expires_at: float | None = None
    refresh_token: str | None = None
    id_token: str | None = None
    scope: str | None = None
    issued_token_type: str | None = None
    extras: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))

    @property
    def scopes(self) -> frozenset[str]:
        """The granted scopes as a set (empty when the server did not list them)."""
        return frozenset(self.scope.split()) if self.scope else frozenset()

    def expires_in(self, now: float) -> float | None:
        """Seconds left at ``now`` (negative once expired), or None when the life is unknown."""
        return None if self.expires_at is None else self.expires_at - now

    def to_dict(self) -> dict[str, Any]:
        """Plain data for a cache store; contains the tokens, so encrypt it at rest."""
        return {
            "access_token": self.access_token,
            "token_type": self.token_type,
            "expires_at": self.expires_at,
            "refresh_token": self.refresh_token,
            "id_token": self.id_token,
            "scope": self.scope,
            "issued_token_type": self.issued_token_type,
            "extras": dict(self.extras),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TokenResponse:
        """Rebuild from ``to_dict()`` output (for cache stores)."""
        return cls(
            access_token=str(data["access_token"]),
            token_type=str(data["token_type"]),
            expires_at=None if data.get("expires_at") is None else float(data["expires_at"]),
            refresh_token=data.get("refresh_token"),
            id_token=data.get("id_token"),
            scope=data.get("scope"),
            issued_token_type=data.get("issued_token_type"),
            extras=MappingProxyType(dict(data.get("extras") or {})),
        )

    def __repr__(self) -> str:
        return (
            f"TokenResponse(token_type={self.token_type!r}, expires_at={self.expires_at!r}, "
            f"scope={self.scope!r}, issued_token_type={self.issued_token_type!r}, "
            f"access_token=<hidden>, refresh_token={_presence(self.refresh_token)}, "
            f"id_token={_presence(self.id_token)}, extras={sorted(self.extras)!r})"
        )

    __str__ = __repr__


@dataclass(frozen=True, kw_only=True, repr=False)
class DeviceAuthorization:
    """The device authorization response (RFC 8628 section 3.2).

    Show ``user_code`` and ``verification_uri`` to the user (``verification_uri_complete`` may be
    shown as a QR code); never show ``device_code``. ``expires_at`` is absolute; ``interval`` is
    the minimum number of seconds between polls (5 when the server names none).

    Example::

        flow = await client.device_authorization(scope="openid offline_access")
        print(f"Visit {flow.verification_uri} and enter {flow.user_code}")
    """

    device_code: str
    user_code: str
    verification_uri: str
    expires_at: float
    interval: int = DEFAULT_DEVICE_INTERVAL
    verification_uri_complete: str | None = None
    extras: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))

    def __repr__(self) -> str:
        return (
            f"DeviceAuthorization(verification_uri={self.verification_uri!r}, "
            f"expires_at={self.expires_at!r}, interval={self.interval!r}, "
            "device_code=<hidden>, user_code=<hidden>)"
        )

    __str__ = __repr__


def _presence(value: str | None) -> str:
    return "<hidden>" if value is not None else "None"


# --------------------------------------------------------------------------- provider seam


class _Metadata(Protocol):
    @property
    def issuer(self) -> str: ...
    @property
    def token_endpoint(self) -> str | None: ...


class _MetadataSource(Protocol):
    async def metadata(self) -> _Metadata: ...


# --------------------------------------------------------------------------- the client


class OAuthClient:
    """This application as an OAuth 2.0 client of one authorization server.

    Holds the client's identity and credentials and performs every token-endpoint grant. All
    settings are keyword-only and checked here, so a wrong setting fails at startup.

    ``auth_method`` (RFC 6749 section 2.3, RFC 7523 section 2.2, OIDC Core section 9):

    * ``client_secret_basic``: HTTP Basic with the id and secret form-urlencoded first;
    * ``client_secret_post``: id and secret in the form body;
    * ``private_key_jwt``: a JWT signed with ``private_key`` (JWK dict or PEM), or a ready
      assertion from ``assertion_provider`` (workload identity: a Kubernetes service-account
      token, a GitHub Actions OIDC token, ...);
    * ``client_secret_jwt``: a JWT signed with HS256 over ``client_secret`` (>= 32 bytes);
    * ``none``: a public client that only sends its ``client_id``.

    Signed assertions carry ``iss`` = ``sub`` = ``client_id``, ``aud`` = the token endpoint (or
    the issuer when ``assertion_audience="issuer"``), ``iat``, a 60-second ``exp`` and a fresh
    ``jti`` each time.

    Endpoints must be ``https``; plain ``http`` is accepted for loopback hosts (the development
    provider) and, with a warning, when ``allow_insecure_http=True``.

    ``now`` is the clock (seconds since the epoch) that stamps ``expires_at`` and signs
    assertions; it stays public as ``client.now`` so helpers built on the client
    (``device_login``, ``CliSession``) judge expiry on the same clock.

    Example::

        client = OAuthClient(
            client_id="daemon",
            client_secret=os.environ["CLIENT_SECRET"],
            token_endpoint="https://login.example.com/oauth/token",
        )
        tokens = await client.client_credentials(scope="read:messages")
    """

    def __init__(
        self,
        *,
        client_id: str,
        token_endpoint: str,
        client_secret: str | None = None,
        auth_method: AuthMethod = "client_secret_basic",
        private_key: Mapping[str, Any] | str | bytes | None = None,
        key_id: str | None = None,
        signing_alg: str | None = None,
        assertion_provider: Callable[[], Awaitable[str]] | None = None,
        assertion_audience: AssertionAudience = "token_endpoint",
        issuer: str | None = None,
        device_authorization_endpoint: str | None = None,
        revocation_endpoint: str | None = None,
        http_client: httpx.AsyncClient | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        max_response_bytes: int = DEFAULT_MAX_BYTES,
        allow_insecure_http: bool = False,
        now: Callable[[], float] = time.time,
    ) -> None:
        if not isinstance(client_id, str) or not client_id:
            raise ConfigurationError(
                "client_id must be a non-empty string", code="invalid_client_id"
            )
        if auth_method not in get_args(AuthMethod):
            raise ConfigurationError(
                f"unknown auth_method {auth_method!r}; expected one of {get_args(AuthMethod)}",
                code="invalid_auth_method",
            )
        if assertion_audience not in get_args(AssertionAudience):
            raise ConfigurationError(
                "assertion_audience must be 'token_endpoint' or 'issuer'",
                code="invalid_assertion_audience",
            )
        if not timeout > 0:
            raise ConfigurationError("timeout must be positive", code="invalid_timeout")
        if max_response_bytes < 1024:
            raise ConfigurationError(
                "max_response_bytes must be at least 1024", code="invalid_max_response_bytes"
            )
        self.client_id = client_id
        self.auth_method: AuthMethod = auth_method
        require_https(
            token_endpoint, allow_insecure_http=allow_insecure_http, what="token_endpoint"
        )
        if device_authorization_endpoint is not None:
            require_https(
                device_authorization_endpoint,
                allow_insecure_http=allow_insecure_http,
                what="device_authorization_endpoint",
            )
        if revocation_endpoint is not None:
            require_https(
                revocation_endpoint,
                allow_insecure_http=allow_insecure_http,
                what="revocation_endpoint",
            )
        self.token_endpoint = token_endpoint
        self.device_authorization_endpoint = device_authorization_endpoint
        self.revocation_endpoint = revocation_endpoint
        self._allow_insecure_http = allow_insecure_http
        self.issuer = issuer
        self.timeout = timeout
        self.max_response_bytes = max_response_bytes
        self._secret = client_secret
        self._assertion_provider = assertion_provider
        self._assertion_audience: AssertionAudience = assertion_audience
        self.now: Callable[[], float] = now
        self._http = http_client
        self._owns_http = http_client is None
        self._signing_key: Any = None
        self._signing_alg: str | None = None
        self._kid: str | None = None
        self._check_credentials(private_key, key_id, signing_alg)
        if allow_insecure_http:
            warn_insecure_http("OAuthClient")

    def _check_credentials(
        self,
        private_key: Mapping[str, Any] | str | bytes | None,
        key_id: str | None,
        signing_alg: str | None,
    ) -> None:
        method, secret = self.auth_method, self._secret
        if secret is not None and not isinstance(secret, str):
            raise ConfigurationError("client_secret must be a string", code="invalid_secret")
        if method in ("client_secret_basic", "client_secret_post", "client_secret_jwt"):
            if not secret:
                raise ConfigurationError(
                    f"auth_method {method} needs client_secret", code="missing_client_secret"
                )
        elif secret is not None:
            raise ConfigurationError(
                f"client_secret is unused with auth_method {method}; remove it",
                code="unexpected_client_secret",
            )
        if method == "client_secret_jwt":
            assert secret is not None
            if len(secret.encode("utf-8")) < MIN_JWT_SECRET_BYTES:
                raise ConfigurationError(
                    f"client_secret_jwt needs a secret of at least {MIN_JWT_SECRET_BYTES} bytes "
                    "(RFC 7518 section 3.2)",
                    code="weak_client_secret",
                )
            if signing_alg not in (None, "HS256", "HS384", "HS512"):
                raise ConfigurationError(
                    "client_secret_jwt signs with HS256, HS384 or HS512",
                    code="invalid_signing_alg",
                )
            self._signing_key = _jwk.import_key(secret.encode("utf-8"), "oct")
            self._signing_alg = signing_alg or "HS256"
        if method == "private_key_jwt":
            if (private_key is None) == (self._assertion_provider is None):
                raise ConfigurationError(
                    "private_key_jwt needs exactly one of private_key and assertion_provider",
                    code="missing_private_key"
                    if private_key is None
                    else "conflicting_key_sources",
                )
            if private_key is not None:
                key, alg, kid = _load_private_key(private_key, key_id, signing_alg)
                self._signing_key, self._signing_alg, self._kid = key, alg, kid
        else:
            if private_key is not None or self._assertion_provider is not None:
                raise ConfigurationError(
                    f"private_key and assertion_provider are unused with auth_method {method}",
                    code="unexpected_key_source",
                )
        if self._assertion_audience == "issuer" and not self.issuer:
            raise ConfigurationError(
                "assertion_audience='issuer' needs issuer", code="missing_issuer"
            )

    @classmethod
    async def from_provider(
        cls, provider: _MetadataSource, *, client_id: str, **settings: Any
    ) -> OAuthClient:
        """Build a client whose endpoints and issuer come from the provider's discovery document.

        ``settings`` are the constructor's other keyword arguments.

        Example::

            client = await OAuthClient.from_provider(provider, client_id="daemon",
                                                     client_secret=secret)
        """
        metadata = await provider.metadata()
        token_endpoint = metadata.token_endpoint
        if not token_endpoint:
            raise ConfigurationError(
                "the provider's metadata has no token_endpoint", code="missing_token_endpoint"
            )
        settings.setdefault("issuer", metadata.issuer)
        device = getattr(metadata, "device_authorization_endpoint", None)
        if isinstance(device, str):
            settings.setdefault("device_authorization_endpoint", device)
        revocation = getattr(metadata, "revocation_endpoint", None)
        if isinstance(revocation, str):
            settings.setdefault("revocation_endpoint", revocation)
        return cls(client_id=client_id, token_endpoint=token_endpoint, **settings)

    def __repr__(self) -> str:
        return (
            f"OAuthClient(client_id={self.client_id!r}, auth_method={self.auth_method!r}, "
            f"token_endpoint={self.token_endpoint!r})"
        )

    async def aclose(self) -> None:
        """Close the HTTP client if this object created it (an injected one is left open)."""
        if self._owns_http and self._http is not None:
            await self._http.aclose()
            self._http = None

    async def __aenter__(self) -> OAuthClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def post_form(
        self, url: str, form: Mapping[str, str] | Sequence[tuple[str, str]]
    ) -> Mapping[str, Any]:
        """POST a form to one of the server's endpoints, authenticated as this client.

        For endpoints that are not grants but take the same client authentication: token
        introspection (RFC 7662 section 2.1), revocation (RFC 7009 section 2.1), pushed
        authorization requests (RFC 9126). The configured ``auth_method`` is applied (a
        ``private_key_jwt`` assertion's ``aud`` is ``url``, or the issuer). Returns the JSON
        object of a 200 answer; an answer carrying an OAuth ``error`` raises ``OAuthError``, any
        other failure ``ProviderUnavailable``; the same transport guards as the grants apply
        (deadline, size cap, strict JSON, no redirects, https).

        Example::

            answer = await client.post_form(
                introspection_endpoint, {"token": token, "token_type_hint": "access_token"}
            )
        """
        items = list(form.items()) if isinstance(form, Mapping) else list(form)
        for item in items:
            if not (isinstance(item, tuple) and len(item) == 2 and all(_is_str(v) for v in item)):
                raise ConfigurationError(
                    "form must hold (name, value) string pairs", code="invalid_form"
                )
        return await self._post(url, items)

    async def revoke(
        self,
        token: str,
        *,
        token_type_hint: str | None = None,
        endpoint: str | None = None,
    ) -> None:
        """Revoke a token at the revocation endpoint (RFC 7009 section 2.1), as this client.

        ``token_type_hint`` is ``"access_token"``, ``"refresh_token"`` or a registered
        extension (section 4.1.2); a server that does not support it answers
        ``unsupported_token_type``. Revoking a refresh token normally revokes the access tokens
        of the same grant too (section 2.1). Any 200 answer is success, whatever its body
        (section 2.2): also for a token the server does not know or that already expired.
        An error object
        (``unsupported_token_type``, ``invalid_client``, ...; section 2.2.1) raises
        ``OAuthError``; timeouts, 5xx (503 asks to retry later) and garbage raise
        ``ProviderUnavailable``. ``endpoint`` overrides ``revocation_endpoint``, which
        ``from_provider`` takes from discovery; with neither, ``ConfigurationError``
        (``missing_revocation_endpoint``).

        Example::

            await client.revoke(tokens.refresh_token, token_type_hint="refresh_token")
        """
        url = endpoint if endpoint is not None else self.revocation_endpoint
        if url is None:
            raise ConfigurationError(
                "this client has no revocation_endpoint", code="missing_revocation_endpoint"
            )
        if not _is_str(token):
            raise ConfigurationError("revoke needs a token", code="missing_token")
        if token_type_hint is not None and not _is_str(token_type_hint):
            raise ConfigurationError(
                "token_type_hint must be a non-empty string", code="invalid_token_type_hint"
            )
        form = {"token": token}
        if token_type_hint is not None:
            form["token_type_hint"] = token_type_hint
        auth_form, headers = await self._client_auth(url)
        form.update(auth_form)
        try:
            # A 200 needs no body (section 2.2), so it is not parsed: fetch_json reports any
            # status outside ``accept`` before reading the body, and 200 is handled there.
            answer = await fetch_json(
                self._client(),
                url,
                form=form,
                headers=headers,
                timeout=self.timeout,
                max_bytes=self.max_response_bytes,
                accept=(400, 401, 403),
                allow_insecure_http=self._allow_insecure_http,
            )
        except ProviderStatusError as exc:
            if exc.status_code == 200:
                return
            if exc.status_code == 429:
                exc.code = "provider_rate_limited"
            raise
        if _is_str(answer.data.get("error")):
            raise _oauth_error(answer.data, answer.status)
        raise ProviderUnavailable(
            f"{safe_url(url)} answered HTTP {answer.status} without an OAuth error",
            code="provider_bad_response",
        )

    # ----------------------------------------------------------------------- grants

    async def authorization_code(
        self,
        *,
        code: str,
        redirect_uri: str,
        code_verifier: str | None = None,
        resource: str | Sequence[str] | None = None,
        audience: str | Sequence[str] | None = None,
    ) -> TokenResponse:
        """Redeem an authorization code (RFC 6749 section 4.1.3, PKCE RFC 7636 section 4.5).

        ``resource`` (RFC 8707 section 2.2) names the API the access token is for: providers such
        as node-oidc-provider decide the token's audience and format at the token endpoint, so
        without it the access token is opaque even when the authorization request named the API.

        Example::

            tokens = await client.authorization_code(
                code=code, redirect_uri="https://app.example/callback", code_verifier=verifier
            )
        """
        form = [("grant_type", "authorization_code"), ("code", code)]
        form.append(("redirect_uri", redirect_uri))
        if code_verifier is not None:
            form.append(("code_verifier", code_verifier))
        form += _targets(scope=None, resource=resource, audience=audience)
        return await self._grant(form)

    async def refresh(
        self,
        *,
        refresh_token: str,
        scope: str | Sequence[str] | None = None,
        resource: str | Sequence[str] | None = None,
        audience: str | Sequence[str] | None = None,
    ) -> TokenResponse:
        """Use a refresh token (RFC 6749 section 6; ``resource`` RFC 8707 section 2).

        The server may rotate the refresh token: keep the new one when ``refresh_token`` is set.

        Example::

            tokens = await client.refresh(refresh_token=stored.refresh_token)
        """
        form = [("grant_type", "refresh_token"), ("refresh_token", refresh_token)]
        form += _targets(scope=scope, resource=resource, audience=audience)
        return await self._grant(form)

    async def client_credentials(
        self,
        *,
        scope: str | Sequence[str] | None = None,
        resource: str | Sequence[str] | None = None,
        audience: str | Sequence[str] | None = None,
    ) -> TokenResponse:
        """Get a token for this application itself (RFC 6749 section 4.4).

        Example::

            tokens = await client.client_credentials(audience="https://api.example")
        """
        form = [("grant_type", "client_credentials")]
        form += _targets(scope=scope, resource=resource, audience=audience)
        return await self._grant(form)

    async def device_authorization(
        self, *, scope: str | Sequence[str] | None = None, **extra: str
    ) -> DeviceAuthorization:
        """Start a device-code login (RFC 8628 section 3.1); poll with ``device_code()``.

        Example::

            flow = await client.device_authorization(scope="openid offline_access")
        """
        if self.device_authorization_endpoint is None:
            raise ConfigurationError(
                "this client has no device_authorization_endpoint",
                code="missing_device_authorization_endpoint",
            )
        form = _targets(scope=scope) + sorted(extra.items())
        data = await self._post(self.device_authorization_endpoint, form)
        return self._device_response(data)

    async def device_code(
        self,
        *,
        device_code: str,
        resource: str | Sequence[str] | None = None,
        audience: str | Sequence[str] | None = None,
    ) -> TokenResponse:
        """Poll the token endpoint once for a device-code login (RFC 8628 section 3.4).

        Pending and slow-down answers raise ``OAuthError`` with ``error`` set to
        ``authorization_pending`` or ``slow_down`` (section 3.5); the caller owns the loop.
        ``resource`` (RFC 8707 section 2.2) names the API again, as for ``authorization_code``.

        Example::

            tokens = await client.device_code(device_code=flow.device_code)
        """
        form = [("grant_type", DEVICE_CODE_GRANT), ("device_code", device_code)]
        form += _targets(scope=None, resource=resource, audience=audience)
        return await self._grant(form)

    async def token_exchange(
        self,
        *,
        subject_token: str,
        subject_token_type: str,
        actor_token: str | None = None,
        actor_token_type: str | None = None,
        audience: str | Sequence[str] | None = None,
        resource: str | Sequence[str] | None = None,
        scope: str | Sequence[str] | None = None,
        requested_token_type: str | None = None,
    ) -> TokenResponse:
        """Exchange a token for another (RFC 8693 section 2.1).

        The answer must carry ``issued_token_type`` (section 2.2.1) and, when
        ``requested_token_type`` was given, it must be that type; otherwise
        ``ProviderUnavailable`` with code ``missing_issued_token_type`` or
        ``issued_token_type_mismatch``. ``token_type`` may be ``N_A`` here.

        Example::

            tokens = await client.token_exchange(
                subject_token=incoming, subject_token_type=TokenType.ACCESS_TOKEN,
                audience="https://orders.example",
            )
        """
        if not subject_token or not subject_token_type:
            raise ConfigurationError(
                "token exchange needs subject_token and subject_token_type",
                code="missing_subject_token",
            )
        if (actor_token is None) != (actor_token_type is None):
            # Section 2.1: actor_token_type is REQUIRED with actor_token and MUST NOT be sent
            # without it.
            raise ConfigurationError(
                "actor_token and actor_token_type go together", code="actor_token_type_mismatch"
            )
        form = [
            ("grant_type", TOKEN_EXCHANGE_GRANT),
            ("subject_token", subject_token),
            ("subject_token_type", subject_token_type),
        ]
        if actor_token is not None and actor_token_type is not None:
            form += [("actor_token", actor_token), ("actor_token_type", actor_token_type)]
        if requested_token_type is not None:
            form.append(("requested_token_type", requested_token_type))
        form += _targets(scope=scope, resource=resource, audience=audience)
        tokens = await self._grant(form, allow_na=True)
        if tokens.issued_token_type is None:
            raise ProviderUnavailable(
                "token exchange response has no issued_token_type (RFC 8693 section 2.2.1)",
                code="missing_issued_token_type",
            )
        if requested_token_type is not None and tokens.issued_token_type != requested_token_type:
            raise ProviderUnavailable(
                f"token exchange issued {tokens.issued_token_type!r}, "
                f"not the requested {requested_token_type!r}",
                code="issued_token_type_mismatch",
            )
        return tokens

    async def on_behalf_of(self, *, assertion: str, scope: str | Sequence[str]) -> TokenResponse:
        """Microsoft Entra ID's on-behalf-of flow: trade the incoming user token for one to call
        a downstream API as that user.

        This is the JWT bearer grant (RFC 7523 section 2.1) with ``requested_token_use`` set to
        ``on_behalf_of``, not RFC 8693; use ``token_exchange()`` for servers that speak RFC 8693.
        A Conditional Access or MFA requirement comes back as ``OAuthError`` (usually
        ``interaction_required``) with ``claims`` set: pass it to the caller.

        Example::

            tokens = await client.on_behalf_of(
                assertion=incoming, scope="api://orders/.default"
            )
        """
        if not assertion:
            raise ConfigurationError("on_behalf_of needs an assertion", code="missing_assertion")
        form = [
            ("grant_type", JWT_BEARER_GRANT),
            ("assertion", assertion),
            ("requested_token_use", "on_behalf_of"),
        ]
        targets = _targets(scope=scope)
        if not targets:
            raise ConfigurationError("on_behalf_of needs a scope", code="missing_scope")
        return await self._grant(form + targets)

    # ----------------------------------------------------------------------- machinery

    async def _grant(self, form: list[tuple[str, str]], *, allow_na: bool = False) -> TokenResponse:
        now = self.now()
        data = await self._post(self.token_endpoint, form)
        return _token_response(data, received_at=now, allow_na=allow_na)

    async def _client_auth(self, audience_url: str) -> tuple[list[tuple[str, str]], dict[str, str]]:
        method = self.auth_method
        if method == "client_secret_basic":
            assert self._secret is not None
            return [], {"Authorization": _basic_authorization(self.client_id, self._secret)}
        if method == "client_secret_post":
            assert self._secret is not None
            return [("client_id", self.client_id), ("client_secret", self._secret)], {}
        if method == "none":
            return [("client_id", self.client_id)], {}
        if self._assertion_provider is not None:
            assertion = await self._assertion_provider()
            if not isinstance(assertion, str) or not assertion:
                raise ConfigurationError(
                    "assertion_provider returned no assertion", code="invalid_client_assertion"
                )
        else:
            assertion = self._sign_assertion(audience_url)
        return [
            ("client_id", self.client_id),
            ("client_assertion_type", CLIENT_ASSERTION_TYPE),
            ("client_assertion", assertion),
        ], {}

    def _sign_assertion(self, endpoint: str) -> str:
        # RFC 7523 section 3 and OIDC Core section 9.
        issued = int(self.now())
        audience = self.issuer if self._assertion_audience == "issuer" else endpoint
        claims = {
            "iss": self.client_id,
            "sub": self.client_id,
            "aud": audience,
            "jti": secrets.token_urlsafe(24),
            "iat": issued,
            "exp": issued + ASSERTION_LIFETIME,
        }
        alg = self._signing_alg
        assert alg is not None
        header: dict[str, Any] = {"alg": alg, "typ": "JWT"}
        if self._kid is not None:
            header["kid"] = self._kid
        if alg == "EdDSA":
            # joserfc flags the polymorphic "EdDSA" name (RFC 9864); it is still what most
            # servers register, so it stays available as an explicit choice.
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", SecurityWarning)
                return _jwt.encode(header, claims, self._signing_key, algorithms=[alg])
        return _jwt.encode(header, claims, self._signing_key, algorithms=[alg])

    def _client(self) -> httpx.AsyncClient:
        if self._http is None:
            self._http = httpx.AsyncClient()
        return self._http

    async def _post(self, url: str, form: list[tuple[str, str]]) -> Mapping[str, Any]:
        """POST a form with client authentication; return the JSON object of a 200 answer.

        Transport guards (deadline, size cap, strict JSON, no redirects) are ``_http``'s.
        """
        auth_form, headers = await self._client_auth(url)
        fields: dict[str, list[str]] = {}
        for name, value in form + auth_form:
            fields.setdefault(name, []).append(value)
        # resource and audience may repeat (RFC 8707 section 2, RFC 8693 section 2.1); httpx
        # encodes a list value as repeated fields.
        body = {name: values[0] if len(values) == 1 else values for name, values in fields.items()}
        try:
            answer = await fetch_json(
                self._client(),
                url,
                form=cast("Mapping[str, str]", body),
                headers=headers,
                timeout=self.timeout,
                max_bytes=self.max_response_bytes,
                accept=_ACCEPTED_STATUSES,
                allow_insecure_http=self._allow_insecure_http,
            )
        except ProviderStatusError as exc:
            if exc.status_code == 429:
                exc.code = "provider_rate_limited"
            raise
        if answer.status != 200:
            if _is_str(answer.data.get("error")):
                raise _oauth_error(answer.data, answer.status)
            raise ProviderUnavailable(
                f"{safe_url(url)} answered HTTP {answer.status} without an OAuth error",
                code="provider_bad_response",
            )
        return answer.data

    def _device_response(self, data: Mapping[str, Any]) -> DeviceAuthorization:
        now = self.now()
        device_code, user_code = data.get("device_code"), data.get("user_code")
        # Google still sends the draft name verification_url.
        uri = data.get("verification_uri", data.get("verification_url"))
        complete = data.get("verification_uri_complete")
        if not (_is_str(device_code) and _is_str(user_code) and _is_str(uri)):
            raise _bad_response("device authorization response lacks device_code, user_code "
                                "or verification_uri")  # fmt: skip
        if complete is not None and not _is_str(complete):
            raise _bad_response("verification_uri_complete is not a string")
        expires_in = _non_negative_int(data.get("expires_in"), "expires_in")
        if expires_in is None:
            raise _bad_response("device authorization response lacks expires_in")
        interval = _non_negative_int(data.get("interval"), "interval")
        known = {"device_code", "user_code", "verification_uri", "verification_url",
                 "verification_uri_complete", "expires_in", "interval"}  # fmt: skip
        return DeviceAuthorization(
            device_code=device_code,
            user_code=user_code,
            verification_uri=uri,
            verification_uri_complete=complete,
            expires_at=now + expires_in,
            interval=DEFAULT_DEVICE_INTERVAL if interval is None else max(interval, 1),
            extras=MappingProxyType({k: v for k, v in data.items() if k not in known}),
        )


# --------------------------------------------------------------------------- helpers


def _load_private_key(
    key: Mapping[str, Any] | str | bytes, key_id: str | None, signing_alg: str | None
) -> tuple[Any, str, str | None]:
    """Import a private JWK or PEM key and pick its algorithm and ``kid``."""
    try:
        if isinstance(key, Mapping):
            kty = key.get("kty")
            if kty not in ("RSA", "EC", "OKP"):
                raise ValueError("private_key must be an RSA, EC or OKP key")
            if kty == "RSA":
                n = key.get("n")
                _check_rsa_size(len(b64url_decode(n)) * 8 if isinstance(n, str) else 0)
            imported: Any = _import_typed(dict(key), kty)
        else:
            pem = key.encode("ascii") if isinstance(key, str) else key
            loaded = serialization.load_pem_private_key(pem, password=None)
            if isinstance(loaded, rsa.RSAPrivateKey):
                _check_rsa_size(loaded.key_size)
                imported = _import_typed(pem, "RSA")
            elif isinstance(loaded, ec.EllipticCurvePrivateKey):
                imported = _import_typed(pem, "EC")
            elif isinstance(loaded, (ed25519.Ed25519PrivateKey, ed448.Ed448PrivateKey)):
                imported = _import_typed(pem, "OKP")
            else:
                raise ValueError("unsupported PEM key type")
    except ConfigurationError:
        raise
    except Exception as exc:  # joserfc and cryptography raise many types; none are recoverable
        raise ConfigurationError(
            f"private_key could not be loaded: {type(exc).__name__}", code="invalid_private_key"
        ) from None
    if not imported.is_private:
        raise ConfigurationError("private_key holds no private key", code="invalid_private_key")
    kty = imported.key_type
    public = imported.as_dict(private=False)
    if kty == "RSA":
        natural = "RS256"
    elif kty == "EC":
        natural = _EC_ALG.get(str(public.get("crv")), "")
    else:
        natural = "EdDSA"
    alg = signing_alg or natural
    if alg not in _SIGNING_ALGS or not _alg_fits(alg, kty, str(public.get("crv"))):
        raise ConfigurationError(
            f"signing_alg {alg!r} does not fit a {kty} key", code="invalid_signing_alg"
        )
    kid = key_id or imported.kid or _jwk.thumbprint(public)
    return imported, alg, kid


def _check_rsa_size(bits: int) -> None:
    # Checked before joserfc sees the key: it only warns (RFC 7518 section 3.3 says 2048).
    if bits < MIN_RSA_BITS:
        raise ConfigurationError("RSA keys need 2048 bits or more", code="weak_private_key")


def _import_typed(data: Any, kty: str) -> Any:
    # An explicit key type: joserfc warns when it has to guess.
    if kty == "RSA":
        return _jwk.import_key(data, "RSA")
    if kty == "EC":
        return _jwk.import_key(data, "EC")
    return _jwk.import_key(data, "OKP")


def _alg_fits(alg: str, kty: str, crv: str) -> bool:
    if kty == "RSA":
        return alg[:2] in ("RS", "PS")
    if kty == "EC":
        return _EC_ALG.get(crv) == alg
    return alg == "EdDSA" or alg == crv


def _basic_authorization(client_id: str, secret: str) -> str:
    # RFC 6749 section 2.3.1: id and secret are encoded with application/x-www-form-urlencoded
    # (Appendix B) before being joined with ":" and base64-encoded.
    text = f"{quote_plus(client_id, safe='')}:{quote_plus(secret, safe='')}"
    return "Basic " + base64.b64encode(text.encode("ascii")).decode("ascii")


def _listed(value: str | Sequence[str] | None) -> list[str]:
    if value is None:
        return []
    items = [value] if isinstance(value, str) else list(value)
    if not all(isinstance(item, str) and item for item in items):
        raise ConfigurationError("targets must be non-empty strings", code="invalid_target")
    return items


def _targets(
    *,
    scope: str | Sequence[str] | None = None,
    resource: str | Sequence[str] | None = None,
    audience: str | Sequence[str] | None = None,
) -> list[tuple[str, str]]:
    """Form fields naming what a token is for: ``scope`` is one space-separated value
    (RFC 6749 section 3.3), ``resource`` (RFC 8707) and ``audience`` (RFC 8693) repeat."""
    form: list[tuple[str, str]] = []
    scopes = _listed(scope)
    if scopes:
        form.append(("scope", " ".join(scopes)))
    form += [("resource", r) for r in _listed(resource)]
    form += [("audience", a) for a in _listed(audience)]
    return form


def _oauth_error(data: Mapping[str, Any], status: int) -> OAuthError:
    error = data["error"]
    if not _ERROR_CODE.fullmatch(error):
        error = "invalid_error_code"
    description = data.get("error_description")
    if isinstance(description, str):
        description = _PRINTABLE.sub("?", description)[:_MAX_DESCRIPTION]
    else:
        description = None
    claims = data.get("claims")
    if isinstance(claims, Mapping):
        claims = json.dumps(claims, separators=(",", ":"))
    if not isinstance(claims, str) or len(claims) > _MAX_CLAIMS:
        claims = None
    return OAuthError(error, error_description=description, status_code=status, claims=claims)


def _bad_response(message: str) -> ProviderUnavailable:
    return ProviderUnavailable(message, code="invalid_token_response")


def _is_str(value: object) -> TypeGuard[str]:
    return isinstance(value, str) and bool(value)


def _non_negative_int(value: object, name: str) -> int | None:
    """An integer member such as ``expires_in``: absent is None; booleans, floats and negatives
    are refused. A string of digits is accepted because some servers (Entra ID v1, ADFS) send
    ``"3599"``."""
    if value is None:
        return None
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 10:
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < _MAX_INT:
        raise _bad_response(f"{name} is not a non-negative integer")
    return value


_KNOWN_MEMBERS = frozenset(
    {"access_token", "token_type", "expires_in", "refresh_token", "id_token", "scope",
     "issued_token_type"}
)  # fmt: skip


def _token_response(
    data: Mapping[str, Any], *, received_at: float, allow_na: bool
) -> TokenResponse:
    """Check a token response (RFC 6749 section 5.1, RFC 8693 section 2.2.1) member by member."""
    access_token = data.get("access_token")
    if not _is_str(access_token):
        raise _bad_response("token response has no access_token string")
    raw_type = data.get("token_type")
    token_type = _TOKEN_TYPES.get(raw_type.lower()) if isinstance(raw_type, str) else None
    if token_type is None or (token_type == "N_A" and not allow_na):
        shown = raw_type if isinstance(raw_type, str) and len(raw_type) < 20 else "?"
        raise _bad_response(f"token response has an unsupported token_type {shown!r}")
    expires_in = _non_negative_int(data.get("expires_in"), "expires_in")
    optional: dict[str, str | None] = {}
    for name in ("refresh_token", "id_token", "scope", "issued_token_type"):
        value = data.get(name)
        if name == "scope" and value == "":
            # RFC 6749 section 5.1 makes scope optional; some servers send "" for "none".
            value = None
        if value is not None and not _is_str(value):
            raise _bad_response(f"token response member {name} is not a string")
        optional[name] = value
    return TokenResponse(
        access_token=access_token,
        token_type=token_type,
        expires_at=None if expires_in is None else received_at + expires_in,
        refresh_token=optional["refresh_token"],
        id_token=optional["id_token"],
        scope=optional["scope"],
        issued_token_type=optional["issued_token_type"],
        extras=MappingProxyType({k: v for k, v in data.items() if k not in _KNOWN_MEMBERS}),
    )
