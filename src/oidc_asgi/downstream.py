"""Outbound tokens as ``httpx.Auth``: call another API as this application or for the user.

``ClientCredentialsAuth`` attaches a token for this application itself (RFC 6749 section 4.4);
``OnBehalfOfAuth`` trades the user's incoming access token for one aimed at the downstream API,
by RFC 8693 token exchange or by Microsoft Entra ID's on-behalf-of dialect of the JWT bearer
grant (RFC 7523 section 2.1). Both follow httpx's ``DigestAuth`` shape:

1. take the token from a ``TokenCache`` (single-flight: a thousand concurrent requests cost one
   token request), attach it as ``Authorization: Bearer`` (RFC 6750 section 2.1) and send;
2. on ``401`` whose ``WWW-Authenticate: Bearer`` challenge says ``invalid_token`` or names no
   error (RFC 6750 section 3.1), forget the cached token, fetch a new one and resend **once**;
3. on ``401`` carrying a step-up challenge, ``error="insufficient_claims"`` with ``claims``
   (Microsoft's Continuous Access Evaluation) or ``error="insufficient_user_authentication"``
   (RFC 9470 section 3), do not retry (a new token from the same grant would not satisfy it):
   raise ``DownstreamChallenge`` so the API can answer its own caller with
   ``exc.www_authenticate()``;
4. any other response is returned untouched.

Request bodies. A body given as ``bytes``, ``str``, ``json=`` or ``data=`` is replayable and is
resent as is. A streaming body (an iterator or async iterator) can be sent once only: the auth
does not buffer it by default (a large upload must not be held in memory just in case), so on a
``401`` it forgets the cached token and returns the ``401`` to the caller, whose own retry gets
a fresh token. ``buffer_body=True`` reads such a body into memory first (what httpx's
``requires_request_body`` does) so it can be resent.

These classes are async only (an ``httpx.AsyncClient``): fetching a token is network I/O and
must not block an event loop. Using one with a sync ``httpx.Client`` raises
``ConfigurationError(code="sync_client_unsupported")``.

Nothing here logs or repeats a token: reprs name the target, never the subject token or the
issued one, and errors carry only OAuth error codes and server descriptions.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import AsyncGenerator, Generator, Mapping, Sequence
from types import MappingProxyType
from typing import Any, Literal, Protocol, get_args

import httpx

from oidc_asgi._jose import parse_compact
from oidc_asgi.client import OAuthClient, TokenResponse, TokenType
from oidc_asgi.errors import ConfigurationError, OAuthError, OIDCError
from oidc_asgi.token_cache import TokenCache, token_cache_key

__all__ = [
    "ClientCredentialsAuth",
    "DownstreamChallenge",
    "OnBehalfOfAuth",
    "parse_www_authenticate",
]

OnBehalfOfMode = Literal["token-exchange", "entra"]

#: Step-up errors passed back to the caller instead of retried.
STEP_UP_ERRORS = frozenset({"insufficient_claims", "insufficient_user_authentication"})
#: How long (seconds) an on-behalf-of result is cached at most when the subject token's expiry
#: is unknown (an opaque token without ``subject_expires_at``).
DEFAULT_MAX_OBO_TTL = 300.0
_MAX_PARAM = 8192
_MAX_HEADER = 16384
_PRINTABLE = re.compile(r"[^\x20-\x7e]")
# RFC 6750 section 3: error and error_description values use %x20-21 / %x23-5B / %x5D-7E only
# (no quote, no backslash: nothing to escape); other characters become "?".
_NOT_RFC6750 = re.compile(r"[^\x20\x21\x23-\x5b\x5d-\x7e]")
_TOKEN = r"[!#$%&'*+.^_`|~0-9A-Za-z-]+"
_SCHEME_RE = re.compile(rf"\s*({_TOKEN})")
_PARAM_RE = re.compile(rf"\s*({_TOKEN})\s*=\s*(?:({_TOKEN})|\"((?:[^\"\\]|\\.)*)\")")
_TOKEN68_RE = re.compile(r"\s+([A-Za-z0-9._~+/-]+=*)\s*(?=,|$)")


# --------------------------------------------------------------------------- challenges


def parse_www_authenticate(values: Sequence[str]) -> list[tuple[str, dict[str, str]]]:
    """Parse ``WWW-Authenticate`` header values into ``(scheme, params)`` pairs (RFC 9110 11.6.1).

    Schemes are lower-cased, as are parameter names (both are case-insensitive); quoted values
    are unescaped. Several challenges in one header value and several header values are both
    handled; a ``token68`` credential is ignored; anything unparsable ends that header value.

    Example::

        parse_www_authenticate(['Bearer realm="api", error="invalid_token"'])
        # [("bearer", {"realm": "api", "error": "invalid_token"})]
    """
    challenges: list[tuple[str, dict[str, str]]] = []
    for value in values:
        text = value[:_MAX_HEADER]
        pos = 0
        while pos < len(text):
            while pos < len(text) and text[pos] in " \t,":
                pos += 1
            scheme = _SCHEME_RE.match(text, pos)
            if scheme is None:
                break
            pos = scheme.end()
            params: dict[str, str] = {}
            token68 = _TOKEN68_RE.match(text, pos)
            if token68 is not None and "=" not in token68.group(1).rstrip("="):
                pos = token68.end()
            else:
                while True:
                    param = _PARAM_RE.match(text, pos)
                    if param is None:
                        break
                    name, bare, quoted = param.groups()
                    raw = bare if bare is not None else re.sub(r"\\(.)", r"\1", quoted)
                    params.setdefault(name.lower(), raw[:_MAX_PARAM])
                    pos = param.end()
                    comma = re.match(r"\s*,", text[pos:])
                    if comma is None:
                        break
                    # A comma may separate params or challenges: peek for "name =".
                    if _PARAM_RE.match(text, pos + comma.end()) is None:
                        pos += comma.end()
                        break
                    pos += comma.end()
            challenges.append((scheme.group(1).lower(), params))
            rest = text[pos:].lstrip(" \t")
            if rest and not rest.startswith(",") and text[pos - 1] != ",":
                break  # not a list of challenges: stop rather than guess
    return challenges


def _bearer_challenge(response: httpx.Response) -> dict[str, str] | None:
    for scheme, params in parse_www_authenticate(response.headers.get_list("www-authenticate")):
        if scheme == "bearer":
            return params
    return None


def _refresh_may_help(response: httpx.Response) -> bool:
    """Whether a fresh token may get ``response`` a different answer (RFC 6750 section 3.1).

    Only a ``401`` whose ``Bearer`` challenge says ``invalid_token`` or names no error; a
    step-up challenge is raised as ``DownstreamChallenge`` (a new token from the same grant
    would not satisfy it); ``invalid_request``, ``insufficient_scope`` and the like: no.
    """
    if response.status_code != 401:
        return False
    challenge = _bearer_challenge(response)
    error = None if challenge is None else challenge.get("error")
    if challenge is not None and error in STEP_UP_ERRORS:
        raise DownstreamChallenge.from_params(challenge, status_code=response.status_code)
    return error in (None, "invalid_token")


def _sync_unsupported(name: str, does: str) -> ConfigurationError:
    # Getting a token is network I/O: it must not block an event loop from a sync client.
    return ConfigurationError(
        f"{name} {does} over the network and works with httpx.AsyncClient only",
        code="sync_client_unsupported",
    )


def _decoded_claims(value: str) -> str:
    """Microsoft sends ``claims`` base64-encoded; RFC-style servers may send the JSON itself."""
    if value.lstrip().startswith("{"):
        return value
    try:
        padded = value + "=" * (-len(value) % 4)
        raw = base64.b64decode(padded.replace("-", "+").replace("_", "/"), validate=True)
        text = raw.decode("utf-8")
        if isinstance(json.loads(text), dict):
            return text
    except (binascii.Error, ValueError):
        pass
    return value


def _quote(value: str) -> str:
    return '"' + _NOT_RFC6750.sub("?", value) + '"'


class DownstreamChallenge(OAuthError):
    """A downstream API (or the token endpoint, for on-behalf-of) asked for a stronger token.

    Raised instead of retrying when a ``401`` carries ``error="insufficient_claims"`` with a
    ``claims`` challenge (Microsoft Entra ID Continuous Access Evaluation) or
    ``error="insufficient_user_authentication"`` with ``acr_values`` / ``max_age``
    (RFC 9470 section 3), and when an on-behalf-of or token exchange request fails with a
    ``claims`` challenge (Conditional Access, MFA). Only the user can satisfy it, so the API
    passes it back: ``www_authenticate()`` renders the header for the API's own ``401``.

    ``claims`` is the JSON text of the claims request (decoded when the server sent base64);
    ``params`` holds every challenge parameter as received; ``status_code`` is the downstream
    status. Nothing here is a token.

    Example::

        try:
            response = await http.get("https://orders.example/api/orders", auth=auth)
        except DownstreamChallenge as exc:
            return Response(status_code=401,
                            headers={"WWW-Authenticate": exc.www_authenticate()})
    """

    code = "downstream_challenge"

    def __init__(
        self,
        error: str,
        *,
        error_description: str | None = None,
        status_code: int | None = None,
        claims: str | None = None,
        acr_values: str | None = None,
        max_age: int | None = None,
        scope: str | None = None,
        params: Mapping[str, str] | None = None,
    ) -> None:
        if error_description is not None:
            error_description = _PRINTABLE.sub("?", error_description)[:300]
        super().__init__(
            error, error_description=error_description, status_code=status_code, claims=claims
        )
        self.acr_values = acr_values
        self.max_age = max_age
        self.scope = scope
        self.params: Mapping[str, str] = MappingProxyType(dict(params or {}))

    @classmethod
    def from_params(cls, params: Mapping[str, str], *, status_code: int) -> DownstreamChallenge:
        """Build from a parsed ``Bearer`` challenge (see ``parse_www_authenticate``).

        Example::

            exc = DownstreamChallenge.from_params(
                {"error": "insufficient_user_authentication", "acr_values": "mfa"},
                status_code=401,
            )
        """
        max_age_text = params.get("max_age")
        max_age = (
            int(max_age_text)
            # At most 10 digits: int() of a longer one may raise (the int digit limit).
            if max_age_text is not None
            and max_age_text.isascii()
            and max_age_text.isdigit()
            and len(max_age_text) <= 10
            else None
        )
        raw_claims = params.get("claims")
        return cls(
            params.get("error", "insufficient_claims"),
            error_description=params.get("error_description"),
            status_code=status_code,
            claims=None if raw_claims is None else _decoded_claims(raw_claims),
            acr_values=params.get("acr_values"),
            max_age=max_age,
            scope=params.get("scope"),
            params=params,
        )

    def www_authenticate(self, *, realm: str | None = None) -> str:
        """The ``WWW-Authenticate`` value for the API's own ``401`` to its caller.

        A claims challenge becomes ``error="insufficient_claims", claims="<base64>"`` (the form
        MSAL and Microsoft's client libraries read); an RFC 9470 challenge keeps its
        ``acr_values`` and ``max_age``.

        Example::

            headers = {"WWW-Authenticate": exc.www_authenticate(realm="orders")}
        """
        parts: list[str] = []
        if realm is not None:
            parts.append(f"realm={_quote(realm)}")
        if self.claims is not None:
            parts.append('error="insufficient_claims"')
            encoded = base64.b64encode(self.claims.encode("utf-8")).decode("ascii")
            parts.append(f'claims="{encoded}"')
        else:
            parts.append(f"error={_quote(self.error)}")
        if self.error_description:
            parts.append(f"error_description={_quote(self.error_description)}")
        if self.acr_values is not None:
            parts.append(f"acr_values={_quote(self.acr_values)}")
        if self.max_age is not None:
            parts.append(f'max_age="{self.max_age}"')
        return "Bearer " + ", ".join(parts)


# --------------------------------------------------------------------------- the auth flow


class _TokenAuth(httpx.Auth):
    """Attach a cached token; on ``401 invalid_token`` refresh once and resend."""

    def __init__(
        self,
        client: OAuthClient,
        cache: TokenCache[TokenResponse] | None,
        buffer_body: bool,
    ) -> None:
        if not isinstance(client, OAuthClient):
            raise ConfigurationError("client must be an OAuthClient", code="invalid_client")
        self.client = client
        self.cache: TokenCache[TokenResponse] = cache if cache is not None else TokenCache()
        self.buffer_body = buffer_body

    # Subclasses say what they want.
    def _key(self) -> str:
        raise NotImplementedError

    async def _fetch(self) -> TokenResponse:
        raise NotImplementedError

    def _not_after(self) -> float | None:
        return None

    def _max_ttl(self) -> float | None:
        return None

    def _issuer(self) -> str:
        return self.client.issuer or self.client.token_endpoint

    async def token(self) -> TokenResponse:
        """The token this auth attaches: from the cache, or one shared fetch.

        Example::

            tokens = await auth.token()
        """
        return await self.cache.get_or_fetch(
            self._key(), self._fetch, not_after=self._not_after(), max_ttl=self._max_ttl()
        )

    async def invalidate(self, failed: TokenResponse | None = None) -> None:
        """Forget the cached token (only if it is still ``failed``, when given).

        A token that several concurrent requests saw refused is invalidated by the first of
        them; the others find the replacement already cached and keep it.

        Example::

            await auth.invalidate()
        """
        key = self._key()
        if failed is not None:
            current = await self.cache.get(key)
            if current is None or current.access_token != failed.access_token:
                return
        await self.cache.invalidate(key)

    def sync_auth_flow(
        self, request: httpx.Request
    ) -> Generator[httpx.Request, httpx.Response, None]:
        raise _sync_unsupported(type(self).__name__, "fetches tokens")

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        if self.buffer_body:
            await request.aread()
        tokens = await self.token()
        _attach(request, tokens)
        response = yield request
        if not _refresh_may_help(response):
            return
        await self.invalidate(tokens)
        if not isinstance(request.stream, httpx.ByteStream):
            return  # a streamed body cannot be sent twice: the caller's retry gets a new token
        tokens = await self.token()
        _attach(request, tokens)
        yield request


def _attach(request: httpx.Request, tokens: TokenResponse) -> None:
    if tokens.token_type != "Bearer":
        # DPoP needs a proof per request; N_A (RFC 8693) is not an access token at all.
        raise ConfigurationError(
            f"the token endpoint issued a {tokens.token_type} token; only Bearer tokens can be "
            "attached",
            code="unsupported_token_type",
        )
    request.headers["Authorization"] = f"Bearer {tokens.access_token}"


def _check_targets(
    scope: str | Sequence[str] | None,
    audience: str | Sequence[str] | None,
    resource: str | Sequence[str] | None,
) -> None:
    for name, value in (("scope", scope), ("audience", audience), ("resource", resource)):
        if value is None:
            continue
        items = [value] if isinstance(value, str) else list(value)
        if not items or not all(isinstance(item, str) and item for item in items):
            raise ConfigurationError(f"{name} must be non-empty strings", code="invalid_target")


class ClientCredentialsAuth(_TokenAuth):
    """Call an API as this application: a client credentials token (RFC 6749 section 4.4).

    The token is cached under the client, issuer and target (``scope``, ``audience`` and/or
    ``resource``, RFC 8707) for its life minus the cache's margin; concurrent requests share
    one token request. On ``401 invalid_token`` the token is refreshed once and the request
    resent. Share one instance (or one ``cache``) across requests.

    Example::

        auth = ClientCredentialsAuth(client, audience="https://orders.example/api")
        async with httpx.AsyncClient(auth=auth) as http:
            response = await http.get("https://orders.example/api/orders")
    """

    def __init__(
        self,
        client: OAuthClient,
        *,
        scope: str | Sequence[str] | None = None,
        audience: str | Sequence[str] | None = None,
        resource: str | Sequence[str] | None = None,
        cache: TokenCache[TokenResponse] | None = None,
        buffer_body: bool = False,
    ) -> None:
        super().__init__(client, cache, buffer_body)
        _check_targets(scope, audience, resource)
        self.scope = scope
        self.audience = audience
        self.resource = resource
        self._cache_key = token_cache_key(
            client_id=client.client_id,
            issuer=self._issuer(),
            grant="client_credentials",
            audience=audience,
            resource=resource,
            scopes=scope,
        )

    def __repr__(self) -> str:
        return (
            f"ClientCredentialsAuth(client_id={self.client.client_id!r}, scope={self.scope!r}, "
            f"audience={self.audience!r}, resource={self.resource!r})"
        )

    def _key(self) -> str:
        return self._cache_key

    async def _fetch(self) -> TokenResponse:
        return await self.client.client_credentials(
            scope=self.scope, audience=self.audience, resource=self.resource
        )


class _HasTokenAndClaims(Protocol):
    @property
    def token(self) -> str: ...
    @property
    def claims(self) -> Mapping[str, Any]: ...


def _jwt_exp(token: str) -> float | None:
    """The ``exp`` of a JWT, read without verification.

    Used only to shorten how long an exchanged token is cached (it never grants anything); the
    API validated the token before handing it over.
    """
    if token.count(".") != 2:
        return None
    try:
        exp = parse_compact(token, 64 * 1024).payload.get("exp")
    except OIDCError:
        return None
    if isinstance(exp, bool) or not isinstance(exp, (int, float)):
        return None
    return float(exp)


class OnBehalfOfAuth(_TokenAuth):
    """Call a downstream API as the user of the incoming request (on-behalf-of).

    ``subject_token`` is the incoming access token (already validated by this API).
    ``mode="token-exchange"`` uses RFC 8693 (``audience``, ``resource``, ``scope``, optional
    ``actor_token``); ``mode="entra"`` uses Microsoft Entra ID's JWT bearer grant with
    ``requested_token_use=on_behalf_of`` and needs ``scope`` (e.g. ``api://orders/.default``).

    The result is cached under the SHA-256 of the subject (and actor) token plus the target, so
    two users never share an entry (the declared ``subject_token_type`` and ``actor_token_type``
    are part of the key too); the entry never outlives the subject token
    (``subject_expires_at``, or the ``exp`` read from a JWT subject token). When that expiry is
    unknown (an opaque subject token without ``subject_expires_at``), the entry lives at most
    ``max_obo_ttl`` seconds (5 minutes by default), so a revoked or expired subject token stops
    yielding downstream tokens soon after. Pass one shared
    ``cache`` to every instance: an instance is usually built per incoming request. A
    Conditional Access or MFA requirement from the token endpoint (an OAuth error carrying
    ``claims``) is raised as ``DownstreamChallenge``, like a downstream step-up challenge.

    Example::

        cache: TokenCache[TokenResponse] = TokenCache()  # shared, built at startup

        auth = OnBehalfOfAuth(client, subject_token=incoming, mode="entra",
                              scope="api://orders/.default", cache=cache)
        response = await http.get("https://orders.example/api/orders", auth=auth)
    """

    def __init__(
        self,
        client: OAuthClient,
        *,
        subject_token: str,
        mode: OnBehalfOfMode = "token-exchange",
        scope: str | Sequence[str] | None = None,
        audience: str | Sequence[str] | None = None,
        resource: str | Sequence[str] | None = None,
        subject_expires_at: float | None = None,
        subject_token_type: str = TokenType.ACCESS_TOKEN,
        actor_token: str | None = None,
        actor_token_type: str | None = None,
        requested_token_type: str | None = None,
        cache: TokenCache[TokenResponse] | None = None,
        buffer_body: bool = False,
        max_obo_ttl: float = DEFAULT_MAX_OBO_TTL,
    ) -> None:
        super().__init__(client, cache, buffer_body)
        if mode not in get_args(OnBehalfOfMode):
            raise ConfigurationError(
                f"mode must be one of {get_args(OnBehalfOfMode)}", code="invalid_mode"
            )
        if not isinstance(subject_token, str) or not subject_token:
            raise ConfigurationError(
                "subject_token must be the incoming access token", code="missing_subject_token"
            )
        _check_targets(scope, audience, resource)
        if mode == "entra":
            if scope is None:
                raise ConfigurationError("mode='entra' needs a scope", code="missing_scope")
            extras = (audience, resource, actor_token, requested_token_type)
            if any(value is not None for value in extras):
                raise ConfigurationError(
                    "mode='entra' takes only scope (Entra's on-behalf-of has no audience, "
                    "resource, actor_token or requested_token_type)",
                    code="unsupported_parameter",
                )
        elif actor_token is not None and actor_token_type is None:
            actor_token_type = TokenType.ACCESS_TOKEN
        if (
            isinstance(max_obo_ttl, bool)
            or not isinstance(max_obo_ttl, (int, float))
            or not 0 < max_obo_ttl < float("inf")
        ):
            raise ConfigurationError(
                "max_obo_ttl must be a positive number of seconds", code="invalid_setting"
            )
        self.max_obo_ttl = float(max_obo_ttl)
        self.mode: OnBehalfOfMode = mode
        self.scope = scope
        self.audience = audience
        self.resource = resource
        self.requested_token_type = requested_token_type
        self._subject = subject_token
        self._subject_type = subject_token_type
        self._actor = actor_token
        self._actor_type = actor_token_type
        self._subject_exp = (
            subject_expires_at if subject_expires_at is not None else _jwt_exp(subject_token)
        )
        self._cache_key = token_cache_key(
            client_id=client.client_id,
            issuer=self._issuer(),
            grant="on_behalf_of" if mode == "entra" else "token_exchange",
            audience=audience,
            resource=resource,
            scopes=scope,
            subject_token=subject_token,
            actor_token=actor_token,
            requested_token_type=requested_token_type,
            # Entra's jwt-bearer grant sends no token types: they decide nothing there.
            subject_token_type=None if mode == "entra" else subject_token_type,
            actor_token_type=None if mode == "entra" else actor_token_type,
        )

    @classmethod
    def from_principal(
        cls, client: OAuthClient, principal: _HasTokenAndClaims, **settings: Any
    ) -> OnBehalfOfAuth:
        """Build from any validated principal with ``.token`` (the raw incoming token) and
        ``.claims`` (its claims; ``exp`` caps the cache entry).

        Example::

            auth = OnBehalfOfAuth.from_principal(client, principal, mode="entra",
                                                 scope="api://orders/.default", cache=cache)
        """
        exp = principal.claims.get("exp")
        if isinstance(exp, (int, float)) and not isinstance(exp, bool):
            settings.setdefault("subject_expires_at", float(exp))
        return cls(client, subject_token=principal.token, **settings)

    def __repr__(self) -> str:
        return (
            f"OnBehalfOfAuth(client_id={self.client.client_id!r}, mode={self.mode!r}, "
            f"scope={self.scope!r}, audience={self.audience!r}, resource={self.resource!r}, "
            "subject_token=<hidden>)"
        )

    def _key(self) -> str:
        return self._cache_key

    def _not_after(self) -> float | None:
        return self._subject_exp

    def _max_ttl(self) -> float | None:
        # No known end for the subject token: bound the entry instead of trusting it forever.
        return self.max_obo_ttl if self._subject_exp is None else None

    async def _fetch(self) -> TokenResponse:
        try:
            if self.mode == "entra":
                assert self.scope is not None
                return await self.client.on_behalf_of(assertion=self._subject, scope=self.scope)
            return await self.client.token_exchange(
                subject_token=self._subject,
                subject_token_type=self._subject_type,
                actor_token=self._actor,
                actor_token_type=self._actor_type,
                audience=self.audience,
                resource=self.resource,
                scope=self.scope,
                requested_token_type=self.requested_token_type,
            )
        except OAuthError as exc:
            if exc.claims is None or isinstance(exc, DownstreamChallenge):
                raise
            raise DownstreamChallenge(
                exc.error,
                error_description=exc.error_description,
                status_code=exc.status_code,
                claims=_decoded_claims(exc.claims),
            ) from exc
