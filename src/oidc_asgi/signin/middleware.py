"""``OIDCAuth``: web sign-in with OpenID Connect as one pure ASGI middleware.

Shaped like Starlette's ``SessionMiddleware``: ``__init__`` validates and stores settings;
``__call__`` passes other scope types through, serves its own routes (login, callback, logout,
post-logout landing), loads the session for everything else, and writes session cookies at
``http.response.start`` by *appending* ``Set-Cookie`` headers, only when the session changed
or its rolling window needs it.

The flow (OpenID Connect Core 1.0 section 3.1, OAuth 2.0 Security BCP): authorization code
with PKCE S256 (RFC 7636), ``state`` and ``nonce`` always; the response by query or form_post;
the RFC 9207 ``iss`` parameter compared with the issuer when present and required when the
provider advertises it; the code redeemed by ``OAuthClient`` with the ``redirect_uri`` stored in
the transaction (never taken from the request); the ID token validated by
``TokenValidator.id_token`` against this login's nonce, ``max_age`` and ``acr_values``, with
``at_hash`` checked when present; optional userinfo with the ``sub`` check (OIDC Core 5.3.2).
Userinfo wants a token for userinfo: with an API named by ``resource`` and ``offline_access``
granted, the code is redeemed without ``resource``, userinfo is read, and the API's token comes
from the refresh token (RFC 8707 section 2.2; see ``SignInConfig``). A 4xx from userinfo is
``userinfo_refused`` (the token, not an outage); timeouts and 5xx answer 503.

Every callback failure answers 4xx (HTML for browsers, JSON otherwise) with a stable ``code``
and a hint, removes the transaction cookie and writes no session; a provider that cannot be
reached answers 503. No message, page or log line contains a code, token or cookie value.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import html
import logging
import re
import secrets as _secrets
import warnings
from collections.abc import Awaitable, Callable, Mapping
from typing import Any
from urllib.parse import parse_qsl, urlencode

import httpx
from starlette.authentication import AuthCredentials, UnauthenticatedUser
from starlette.datastructures import Headers
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from oidc_asgi._http import InsecureTransportWarning, ProviderStatusError, fetch_json
from oidc_asgi.client import OAuthClient, TokenResponse
from oidc_asgi.errors import (
    ConfigurationError,
    OAuthError,
    OIDCError,
    ProviderUnavailable,
    TokenError,
)
from oidc_asgi.provider import Provider, ProviderMetadata
from oidc_asgi.sessions import ChunkedCookie, CookieOptions, SessionCodec, derive_keys
from oidc_asgi.sessions._codec import _copy_json
from oidc_asgi.sessions.revocation import MemorySharedState, default_shared_state
from oidc_asgi.sessions.stores import (
    CookieSessions,
    LoadedSession,
    ServerSessions,
    SessionBackend,
    index_key,
)
from oidc_asgi.signin._api_tokens import TOKENS_KEY, ApiTokens
from oidc_asgi.signin._backchannel import BackchannelLogout
from oidc_asgi.signin._config import SignInConfig, _userinfo_plan
from oidc_asgi.signin._context import SCOPE_KEY, AppSession, SignedInUser, SignInContext
from oidc_asgi.signin._guards import GUARD_KEY, AccessDenied, LoginRequired
from oidc_asgi.signin._proxies import ProxyTrust
from oidc_asgi.signin._return_to import normalize_return_to
from oidc_asgi.signin._transactions import Transactions, state_hash
from oidc_asgi.tokens import DEFAULT_ALGORITHMS, IDTokenExpectations, TokenValidator

__all__ = ["OIDCAuth"]

log = logging.getLogger("oidc_asgi.signin")

_MAX_CALLBACK_BODY = 64 * 1024
_SAFE_ERROR = re.compile(r"[A-Za-z0-9_.\-]{1,64}")
_LOGOUT_COOKIE_TTL = 600
_MAX_COOKIE_BYTES = 4096
_NO_STORE = {"Cache-Control": "no-store"}
# Opened session cookies kept in memory: a browser repeats its cookie until it changes.
_SESSION_CACHE = 256

#: Hints shown with each callback error code: the likely cause, never the request's values.
_HINTS: Mapping[str, str] = {
    "missing_state": "The sign-in response has no state. Start the sign-in again.",
    "unknown_state": (
        "No sign-in was started in this browser for this response. Usual causes: the callback "
        "was opened from history or a bookmark, cookies are blocked, the sign-in was started on "
        "another host name, or more than the allowed number of sign-ins were started at once."
    ),
    "login_expired": "The sign-in took too long. Start it again.",
    "login_request_too_large": (
        "The sign-in request carries too much (return address, acr_values) to fit in a cookie."
    ),
    "duplicate_parameter": "The sign-in response repeats a parameter (RFC 6749 section 3.1).",
    "response_mode_mismatch": "The sign-in response arrived in a different way than requested.",
    "iss_missing": "The provider did not name itself in the response (RFC 9207).",
    "iss_mismatch": "The response names another issuer than the one asked (RFC 9207 mix-up).",
    "provider_error": "The identity provider refused or cancelled the sign-in.",
    "missing_code": "The sign-in response has no authorization code.",
    "token_error": "The identity provider refused to redeem the authorization code.",
    "missing_id_token": "The token response has no ID token; is the openid scope granted?",
    "invalid_id_token": "The ID token failed validation (see the claim named).",
    "userinfo_sub_mismatch": "Userinfo describes another user than the ID token.",
    "userinfo_refused": (
        "The provider refused the access token at its userinfo endpoint (for example a token "
        "meant for an API rather than for userinfo)."
    ),
    "refresh_token_missing": (
        "The provider issued no refresh token, which is needed to get the API's access token "
        "after reading userinfo: grant offline_access (node-oidc-provider keeps it only with "
        "prompt=consent) or turn fetch_userinfo off."
    ),
    "session_expired_at_login": "The provider's session ceiling is already in the past.",
    "provider_unavailable": "The identity provider cannot be reached. Try again shortly.",
    "session_write_failed": "The session could not be saved. Try again.",
    "csrf_failed": "The logout request did not come from this site.",
    "method_not_allowed": "This sign-in route does not accept this method.",
    "configuration_error": "The sign-in is misconfigured; the server log names the setting.",
}


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _parse_cookies(scope: Scope) -> dict[str, str]:
    # The first Cookie header, as Headers(scope=scope).get("cookie") would give it (ASGI
    # header names are lowercase), without building a Headers object on every request.
    raw = ""
    for key, value in scope.get("headers", ()):
        if key == b"cookie":
            raw = value.decode("latin-1")
            break
    if not raw:
        return {}
    cookies: dict[str, str] = {}
    for chunk in raw.split(";"):
        name, sep, value = chunk.partition("=")
        if not sep:
            continue
        name = name.strip()
        if name and name not in cookies:
            cookies[name] = value.strip()
    return cookies


def _revocable(auth: Mapping[str, Any] | None) -> list[tuple[str, str]]:
    """The session's tokens to revoke at logout: the refresh token first (RFC 7009 2.1)."""
    if not auth:
        return []
    found: list[tuple[str, str]] = []
    refresh = auth.get("rt")
    if isinstance(refresh, str) and refresh:
        found.append((refresh, "refresh_token"))
    sets = auth.get("tok")
    for token_set in sets.values() if isinstance(sets, dict) else ():
        access = token_set.get("access_token") if isinstance(token_set, dict) else None
        if isinstance(access, str) and access and (access, "access_token") not in found:
            found.append((access, "access_token"))
    return found


def _is_navigation(scope: Scope) -> bool:
    """A top-level browser navigation (Fetch Metadata first, then classic headers)."""
    headers = Headers(scope=scope)
    if scope.get("method", "GET") not in ("GET", "HEAD"):
        return False
    mode = headers.get("sec-fetch-mode")
    if mode is not None:
        return mode == "navigate" and headers.get("sec-fetch-dest", "document") in (
            "document",
            "iframe",
        )
    if headers.get("x-requested-with") or headers.get("hx-request"):
        return False
    accept = headers.get("accept", "")
    return "text/html" in accept


def _wants_html(scope: Scope) -> bool:
    headers = Headers(scope=scope)
    mode = headers.get("sec-fetch-mode")
    if mode is not None:
        return mode == "navigate"
    return "text/html" in headers.get("accept", "") or (
        "application/json" not in headers.get("accept", "") and not headers.get("x-requested-with")
    )


def _same_types(a: Any, b: Any) -> bool:
    """For values already equal: whether they are also the same JSON (types match all down)."""
    kind = type(a)
    if kind is not type(b):
        return False
    if kind is dict:
        return all(_same_types(value, b[key]) for key, value in a.items())
    if kind is list:
        return all(map(_same_types, a, b))
    if kind is float:
        return repr(a) == repr(b)  # 0.0 and -0.0
    return True


class _RequestState:
    """The session as loaded for one request, and what the request changed."""

    __slots__ = (
        "app",
        "auth",
        "auth_changed",
        "ceiling",
        "clear",
        "cookies",
        "https",
        "loaded",
        "original",
        "rotate",
    )

    def __init__(self, cookies: dict[str, str], loaded: LoadedSession | None) -> None:
        self.cookies = cookies
        self.loaded = loaded
        data = loaded.data if loaded is not None else {}
        auth = data.get("u")
        self.auth: dict[str, Any] | None = auth if isinstance(auth, dict) else None
        app = data.get("d")
        # The loaded app data is this request's own copy (the codec hands out copies): it is
        # the baseline, and the app gets a deep copy of it, so a change anywhere inside, nested
        # too, shows against it without serialising anything.
        self.original: dict[str, Any] = app if isinstance(app, dict) else {}
        self.app = AppSession(_copy_json(self.original))
        self.auth_changed = False
        self.rotate = False
        self.clear = False
        self.ceiling: float | None = None
        self.https = False  # how the browser reached us: set by OIDCAuth.__call__

    def app_changed(self) -> bool:
        app, base = self.app, self.original
        if app != base:
            return True
        # Equal but stored differently (True and 1, 1 and 1.0) is a change too.
        return not all(_same_types(value, base[key]) for key, value in app.items())

    def data(self) -> dict[str, Any]:
        data: dict[str, Any] = {}
        if self.auth is not None:
            data["u"] = self.auth
        if self.app:
            data["d"] = dict(self.app)
        return data

    def merge(self, current: dict[str, Any]) -> dict[str, Any]:
        """Re-apply this request's changes on top of a newer stored version (no lost updates)."""
        result = dict(current)
        if self.auth_changed:
            if self.auth is None:
                result.pop("u", None)
            else:
                result["u"] = self.auth
        base = current.get("d")
        app = dict(base) if isinstance(base, dict) else {}
        dump = AppSession._snapshot
        for key in set(self.original) | set(self.app):
            if key not in self.app:
                if key in self.original:
                    app.pop(key, None)
            elif key not in self.original or dump(AppSession(v=self.app[key])) != dump(
                AppSession(v=self.original[key])
            ):
                app[key] = self.app[key]
        if app:
            result["d"] = app
        else:
            result.pop("d", None)
        return result


class _Failure(Exception):
    """A sign-in step failed: answered with ``status``, ``code`` and no secret."""

    def __init__(
        self,
        code: str,
        *,
        status: int = 400,
        detail: Mapping[str, str] | None = None,
        retry_after: int | None = None,
    ) -> None:
        super().__init__(code)
        self.code = code
        self.status = status
        self.detail = dict(detail or {})
        self.retry_after = retry_after


def _token_failure(exc: OAuthError | ProviderUnavailable) -> _Failure:
    """The callback's answer to a refused or failed token request (no token in it)."""
    if isinstance(exc, OAuthError):
        shown = exc.error if _SAFE_ERROR.fullmatch(exc.error) else "invalid_error_code"
        return _Failure("token_error", detail={"provider_error": shown})
    log.warning("token endpoint unavailable: %s", exc.code)
    return _Failure("provider_unavailable", status=503, retry_after=exc.retry_after or 5)


class OIDCAuth:
    """Sign users in with OpenID Connect and keep them signed in: a pure ASGI middleware.

    Pass a ``SignInConfig`` as ``config`` or its fields as keyword arguments (so
    ``app.add_middleware(OIDCAuth, issuer=..., ...)`` works). Everything is validated here, so
    a wrong setting fails at startup. The app sees ``scope["oidc"]`` (``SignInContext``: use
    ``get_user(request)`` / ``get_context(request)``), ``request.session`` (its own data,
    encrypted with the rest), and ``request.user`` / ``request.auth`` like Starlette's
    ``AuthenticationMiddleware``.

    Example::

        app = Starlette(routes=routes)
        app.add_middleware(
            OIDCAuth,
            issuer="https://login.example.com/",
            client_id="webapp",
            client_secret=os.environ["OIDC_CLIENT_SECRET"],
            secrets=[os.environ["OIDC_SECRET"]],
            base_url="https://app.example.com",
            protect=["/account"],
        )
    """

    def __init__(
        self, app: ASGIApp, /, config: SignInConfig | None = None, **settings: Any
    ) -> None:
        if config is None:
            config = SignInConfig(**settings)
        elif settings:
            raise ConfigurationError(
                "pass either config or keyword settings, not both", code="invalid_setting"
            )
        self.app = app
        self.config = config
        self._now = config.now
        self._http = config.http_client
        self.provider = Provider(
            config.issuer,
            http_client=config.http_client,
            allow_insecure_http=config.allow_insecure_http,
            now=config.now,
        )
        # ID tokens accept the default allow-list; logout tokens are narrowed per call to
        # ``logout_token_algorithms``, so the validator must allow those too.
        self.validator = TokenValidator(
            issuer=config.issuer,
            keys=self.provider,
            algorithms=tuple(dict.fromkeys((*DEFAULT_ALGORITHMS, *config.logout_token_algorithms))),
            leeway=config.leeway,
            now=config.now,
        )
        self._client: OAuthClient | None = None
        # Build a throwaway client now so credential mistakes fail at startup, not at login.
        self._client_settings: dict[str, Any] = {
            "client_secret": config.client_secret,
            "auth_method": config.auth_method,
            "private_key": config.private_key,
            "key_id": config.key_id,
            "http_client": config.http_client,
            "allow_insecure_http": config.allow_insecure_http,
            "now": config.now,
        }
        if config.auth_method == "none":
            self._client_settings.pop("client_secret")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", InsecureTransportWarning)
            OAuthClient(
                client_id=config.client_id, token_endpoint=config.issuer, **self._client_settings
            )
        cookie = CookieOptions(
            path=config.base_path or "/", domain=config.cookie_domain, secure=config.cookie_secure
        )
        self.sessions: SessionBackend
        if config.session_store is None:
            self.sessions = CookieSessions(
                codec=SessionCodec(
                    secrets=config.secrets,
                    purpose="session",
                    absolute_ttl=config.absolute_ttl,
                    rolling_ttl=config.rolling_ttl,
                    touch_after=config.touch_after,
                    cache_size=_SESSION_CACHE,
                    # The sign-in part is shared read-only between requests and re-issued
                    # from its kept JSON text: only the app's part is copied and re-encoded.
                    frozen_keys=("u",),
                    now=config.now,
                ),
                jar=ChunkedCookie(name=config.session_cookie_name, options=cookie),
                now=config.now,
            )
        else:
            self.sessions = ServerSessions(
                store=config.session_store,
                secrets=config.secrets,
                cookie_name=config.session_cookie_name,
                cookie=cookie,
                absolute_ttl=config.absolute_ttl,
                rolling_ttl=config.rolling_ttl,
                touch_after=config.touch_after,
                now=config.now,
            )
        self._tx = Transactions(config, now=config.now)
        self._logout_codec = SessionCodec(
            secrets=config.secrets,
            purpose="logout",
            absolute_ttl=_LOGOUT_COOKIE_TTL,
            rolling_ttl=None,
            touch_after=0,
            max_bytes=4096,
            now=config.now,
        )
        self._logout_cookie = f"{config.transaction_cookie}_logout"
        self._logout_options = CookieOptions(
            path=config.base_path + (config.post_logout_path or "/"),
            domain=config.cookie_domain,
            secure=config.cookie_secure,
        )
        self._csrf_key = derive_keys(config.secrets, purpose="csrf")[0]
        self._proxies = ProxyTrust(config.trusted_proxies)
        # Issue 5: API tokens and back-channel logout live in their own modules.
        shared = config.shared_state
        if shared is None:
            shared = default_shared_state(config.session_store, now=config.now)
        self.tokens = ApiTokens(
            config=config, provider=self.provider, sessions=self.sessions, shared=shared,
            distributed=not isinstance(shared, MemorySharedState),
        )  # fmt: skip
        self.backchannel = BackchannelLogout(
            config=config, validator=self.validator, sessions=self.sessions, shared=shared
        )
        self._csrf_cache: dict[str, str] = {}  # per-session binding -> token (hot path)
        base = config.base_path
        routes: dict[str, Callable[[Scope, Receive, _RequestState], Awaitable[Response]]] = {}
        if config.login_path is not None:
            routes[base + config.login_path] = self._login_route
        if config.callback_path is not None:
            routes[base + config.callback_path] = self._callback_route
        if config.logout_path is not None:
            routes[base + config.logout_path] = self._logout_route
        if config.post_logout_path is not None:
            routes[base + config.post_logout_path] = self._post_logout_route
        if config.backchannel_logout_path is not None:
            routes[base + config.backchannel_logout_path] = self.backchannel.route
        self._routes = routes
        self._login_url = None if config.login_path is None else config.url(config.login_path)

    @classmethod
    def from_env(cls, app: ASGIApp, **overrides: Any) -> OIDCAuth:
        """Wrap ``app`` with settings from the ``OIDC_*`` environment variables.

        See ``SignInConfig.from_env`` for the variables; ``overrides`` win over them.

        Example::

            app = OIDCAuth.from_env(app, protect=["/"])
        """
        return cls(app, SignInConfig.from_env(**overrides))

    def __repr__(self) -> str:
        return f"OIDCAuth(issuer={self.config.issuer!r}, client_id={self.config.client_id!r})"

    async def aclose(self) -> None:
        """Release the provider's and client's own HTTP clients (injected ones stay open)."""
        await self.provider.aclose()
        await self.tokens.aclose()
        if self._client is not None:
            await self._client.aclose()

    # ------------------------------------------------------------------------ ASGI entry

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        cookies = _parse_cookies(scope)
        try:
            loaded = await self.backchannel.screen(await self.sessions.load(cookies))
        except ProviderUnavailable as exc:
            log.warning("session store unavailable: %s", exc.code)
            if scope["type"] == "http":
                await self._error(scope, _Failure("session_store_unavailable", status=503))(
                    scope, receive, send
                )
            else:
                await send({"type": "websocket.close", "code": 1011})
            return
        state = _RequestState(cookies, loaded)
        state.https = self._request_https(scope)
        route = self._routes.get(scope["path"]) if scope["type"] == "http" else None
        if route is not None:
            response = await route(scope, receive, state)
            await response(scope, receive, send)
            return
        self._fill_scope(scope, state)
        if self._protected(scope["path"]) and state.auth is None:
            if scope["type"] == "websocket":
                await send({"type": "websocket.close", "code": 1008})
                return
            response = await self._challenge(scope, state, None)
            await response(scope, receive, send)
            return
        if scope["type"] == "websocket":
            await self.app(scope, receive, send)
            return

        started = False
        replaced = False

        async def send_with_cookies(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                headers = await self._finish(state, strict=False)
                if headers:
                    raw = list(message.get("headers", []))
                    raw.extend((b"set-cookie", value.encode("latin-1")) for value in headers)
                    message = {**message, "headers": raw}
            await send(message)

        async def send_wrapper(message: Message) -> None:
            nonlocal replaced
            if replaced:
                return  # the framework's answer to a guard, replaced by ours
            if message["type"] == "http.response.start":
                guard = scope.get(GUARD_KEY)
                if isinstance(guard, (LoginRequired, AccessDenied)):
                    replaced = True
                    response = await self._guard_response(scope, state, guard)
                    await response(scope, receive, send_with_cookies)
                    return
            await send_with_cookies(message)

        try:
            await self.app(scope, receive, send_wrapper)
        except (LoginRequired, AccessDenied) as exc:
            if started or replaced:
                raise
            response = await self._guard_response(scope, state, exc)
            await response(scope, receive, send_with_cookies)

    async def _guard_response(
        self, scope: Scope, state: _RequestState, exc: LoginRequired | AccessDenied
    ) -> Response:
        if isinstance(exc, AccessDenied):
            failure = _Failure("insufficient_claims", status=403, detail={"claim": exc.claim})
            return self._error(scope, failure)
        return await self._challenge(scope, state, exc)

    # ------------------------------------------------------------------------ session

    def _user(self, auth: Mapping[str, Any] | None) -> SignedInUser | None:
        if not auth:
            return None
        claims = {**(auth.get("ui") or {}), **(auth.get("idc") or {})}
        return SignedInUser(issuer=str(auth.get("iss", "")), claims=claims)

    def _csrf_token(self, state: _RequestState) -> str:
        # Bound to a random value minted at sign-in, so it differs for every session.
        binding = str((state.auth or {}).get("x") or "anonymous")
        token = self._csrf_cache.get(binding)
        if token is None:
            mac = hmac.new(self._csrf_key, binding.encode("utf-8"), hashlib.sha256).digest()
            token = _b64(mac[:18])
            if len(self._csrf_cache) >= _SESSION_CACHE:
                del self._csrf_cache[next(iter(self._csrf_cache))]
            self._csrf_cache[binding] = token
        return token

    def _fill_scope(self, scope: Scope, state: _RequestState) -> None:
        user = self._user(state.auth)
        scope[SCOPE_KEY] = SignInContext(
            user=user,
            session=state.app,
            auth=state.auth,
            login_url=self._login_url,
            csrf_token=self._csrf_token(state),
        )
        scope[TOKENS_KEY] = self.tokens.bind(state, scope)
        if self.config.session_scope_key is not None:
            scope[self.config.session_scope_key] = state.app
        if self.config.set_user:
            if user is None:
                scope["user"] = UnauthenticatedUser()
                scope["auth"] = AuthCredentials()
            else:
                scope["user"] = user
                scope["auth"] = AuthCredentials(["authenticated"])

    def _protected(self, path: str) -> bool:
        base = self.config.base_path

        def under(prefix: str) -> bool:
            full = base + prefix
            return path == full or path.startswith(full.rstrip("/") + "/")

        if not any(under(prefix) for prefix in self.config.protect):
            return False
        return not any(under(prefix) for prefix in self.config.public_paths)

    def _request_https(self, scope: Scope) -> bool:
        """Whether the browser's request came over https (cookies then get ``Secure``).

        ``base_url`` decides, and a trusted proxy's ``https`` can only add ``Secure``: a
        forwarded ``http`` never removes it from an https site.
        """
        if self.config.https or not self._proxies:
            return self.config.https
        forwarded = self._proxies.forwarded(scope)
        return forwarded is not None and forwarded.proto == "https"

    async def _finish(self, state: _RequestState, *, strict: bool) -> list[str]:
        """``Set-Cookie`` values for the session after this request (nothing if unchanged).

        With ``strict`` a failure raises ``_Failure``; otherwise it is logged and the stored
        session is left as it was (never half-written).
        """
        sessions = self.sessions
        https = state.https
        try:
            if state.clear:
                return await sessions.clear(state.loaded, cookies=state.cookies, https=https)
            changed = state.auth_changed or state.rotate or state.app_changed()
            if not changed and not (state.loaded is not None and state.loaded.needs_touch):
                return []
            data = state.data()
            if not data:
                if state.loaded is None:
                    return []
                return await sessions.clear(state.loaded, cookies=state.cookies, https=https)
            indexes: list[str] = []
            auth = state.auth
            if auth is not None and (state.rotate or state.auth_changed):
                iss = str(auth.get("iss"))
                indexes.append(index_key("sub", iss, str(auth.get("sub"))))
                if isinstance(auth.get("sid"), str):
                    indexes.append(index_key("sid", iss, auth["sid"]))
            return await sessions.save(
                data,
                previous=state.loaded,
                cookies=state.cookies,
                https=https,
                rotate=state.rotate,
                ceiling=state.ceiling,
                indexes=indexes,
                merge=state.merge,
            )
        except ProviderUnavailable as exc:
            log.warning("session not saved: %s", exc.code)
            if strict:
                raise _Failure("session_store_unavailable", status=503, retry_after=1) from None
            return []
        except OIDCError as exc:
            log.error("session not saved: %s", exc.code)
            if strict:
                raise _Failure("session_write_failed", status=500) from None
            return []

    # ------------------------------------------------------------------------ responses

    def _error(
        self,
        scope: Scope,
        failure: _Failure,
        *,
        set_cookies: list[str] | None = None,
        sign_in: bool = False,
    ) -> Response:
        hint = _HINTS.get(failure.code, "")
        login_url = self._login_url if sign_in else None
        headers = dict(_NO_STORE)
        if failure.retry_after is not None:
            headers["Retry-After"] = str(failure.retry_after)
        response: Response
        if _wants_html(scope):
            details = "".join(
                f"<li>{html.escape(k)}: <code>{html.escape(v)}</code></li>"
                for k, v in sorted(failure.detail.items())
            )
            body = (
                "<!doctype html><meta charset=utf-8><title>Sign-in error</title>"
                f"<h1>Sign-in error</h1><p>{html.escape(hint)}</p>"
                f"<p>Error code: <code>{html.escape(failure.code)}</code></p>"
                f"{'<ul>' + details + '</ul>' if details else ''}"
                f'<p><a href="{html.escape(self.config.url(self.config.default_return_to))}">'
                "Continue</a></p>"
            )
            if login_url:
                body += f'<p><a href="{html.escape(login_url)}">Sign in again</a></p>'
            response = Response(
                body, status_code=failure.status, media_type="text/html", headers=headers
            )
        else:
            content: dict[str, Any] = {"error": failure.code, "hint": hint, **failure.detail}
            if login_url:
                content["login_url"] = login_url
            response = JSONResponse(content, status_code=failure.status, headers=headers)
        for value in set_cookies or ():
            response.raw_headers.append((b"set-cookie", value.encode("latin-1")))
        return response

    async def _challenge(
        self, scope: Scope, state: _RequestState, exc: LoginRequired | None
    ) -> Response:
        path = scope.get("path", "/")
        base = self.config.base_path
        if base and (path == base or path.startswith(base + "/")):
            path = path[len(base) :] or "/"  # a return address is an app path (config.url)
        query = scope.get("query_string", b"").decode("latin-1")
        here = normalize_return_to(
            f"{path}?{query}" if query else path, default=self.config.default_return_to
        )
        acr = exc.acr_values if exc is not None else None
        max_age = exc.max_age if exc is not None else None
        reason = exc.reason if exc is not None else "login_required"
        if _is_navigation(scope) and self.config.callback_path is not None:
            try:
                return await self._start_login(
                    state, return_to=here, extra={}, acr_values=acr, max_age=max_age
                )
            except _Failure as failure:
                return self._error(scope, failure)
        body: dict[str, Any] = {"error": reason}
        challenge = 'OIDC realm="sign-in"'
        if self._login_url is not None:
            params: dict[str, str] = {"return_to": here}
            if acr:
                params["acr_values"] = " ".join(acr)
            if max_age is not None:
                params["max_age"] = str(max_age)
            login_url = f"{self._login_url}?{urlencode(params)}"
            body["login_url"] = login_url
            challenge += f', login_url="{login_url}"'
        return JSONResponse(
            body, status_code=401, headers={**_NO_STORE, "WWW-Authenticate": challenge}
        )

    # ------------------------------------------------------------------------ provider access

    async def _metadata(self) -> ProviderMetadata:
        try:
            return await self.provider.metadata()
        except ProviderUnavailable as exc:
            log.warning("provider unavailable: %s", exc.code)
            raise _Failure(
                "provider_unavailable", status=503, retry_after=exc.retry_after or 5
            ) from None
        except ConfigurationError as exc:
            log.error("provider configuration error: %s", exc.code)
            raise _Failure("configuration_error", status=500) from None

    async def _oauth_client(self) -> OAuthClient:
        if self._client is None:
            metadata = await self._metadata()
            if not metadata.token_endpoint:
                log.error("provider has no token_endpoint")
                raise _Failure("configuration_error", status=500)
            self._client = OAuthClient(
                client_id=self.config.client_id,
                token_endpoint=metadata.token_endpoint,
                issuer=metadata.issuer,
                **self._client_settings,
            )
        return self._client

    # ------------------------------------------------------------------------ login

    async def _login_route(self, scope: Scope, receive: Receive, state: _RequestState) -> Response:
        if scope["method"] not in ("GET", "HEAD"):
            return self._error(scope, _Failure("method_not_allowed", status=405))
        query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1")))
        return_to = normalize_return_to(
            query.get("return_to"),
            default=self.config.default_return_to,
            base_url=self.config.base_url,
        )
        extra = {k: v for k, v in query.items() if k in self.config.login_params}
        acr: tuple[str, ...] | None = None
        max_age: int | None = None
        if "acr_values" in extra:
            acr = tuple(extra.pop("acr_values").split()) or None
        if "max_age" in extra:
            text = extra.pop("max_age")
            # ASCII digits only: str.isdigit() is also true for "²", which int() refuses.
            max_age = int(text) if text.isascii() and text.isdigit() and len(text) < 10 else None
        try:
            return await self._start_login(
                state, return_to=return_to, extra=extra, acr_values=acr, max_age=max_age
            )
        except _Failure as failure:
            return self._error(scope, failure)

    async def _start_login(
        self,
        state: _RequestState,
        *,
        return_to: str,
        extra: Mapping[str, str],
        acr_values: tuple[str, ...] | None,
        max_age: int | None,
    ) -> Response:
        config = self.config
        metadata = await self._metadata()
        if not metadata.authorization_endpoint:
            log.error("provider has no authorization_endpoint")
            raise _Failure("configuration_error", status=500)
        acr = acr_values if acr_values is not None else config.acr_values
        age = max_age if max_age is not None else config.max_age
        state_value = _secrets.token_urlsafe(32)
        nonce = _secrets.token_urlsafe(32)
        verifier = _secrets.token_urlsafe(48)
        challenge = _b64(hashlib.sha256(verifier.encode("ascii")).digest())
        params: dict[str, str] = dict(config.authorization_params)
        params.update(extra)
        params.update(
            {
                "response_type": "code",
                "client_id": config.client_id,
                "redirect_uri": config.redirect_uri,
                "scope": " ".join(config.scope),
                "state": state_value,
                "nonce": nonce,
                "code_challenge": challenge,
                "code_challenge_method": "S256",
            }
        )
        if config.response_mode == "form_post":
            params["response_mode"] = "form_post"
        if acr:
            params["acr_values"] = " ".join(acr)
        if age is not None:
            params["max_age"] = str(age)
        transaction: dict[str, Any] = {
            "s": state_value,
            "iss": metadata.issuer,
            "ru": config.redirect_uri,
            "v": verifier,
            "n": nonce,
            "rm": config.response_mode,
            "rt": return_to,
        }
        if age is not None:
            transaction["ma"] = age
        if acr:
            transaction["acr"] = list(acr)
        try:
            headers = self._tx.start(state_value, transaction, state.cookies, https=state.https)
        except OIDCError:
            headers = []  # over the transaction codec's size limit
        # A cookie over ~4 KB is dropped by browsers (RFC 6265 section 6.1): the callback
        # would fail with unknown_state, so refuse the login now, with a clear code.
        if not headers or len(headers[0]) > _MAX_COOKIE_BYTES:
            log.info("login refused: login_request_too_large")
            raise _Failure("login_request_too_large")
        endpoint = metadata.authorization_endpoint
        # RFC 8707 section 2: every API named at sign-in, as repeated resource parameters.
        pairs = list(params.items())
        pairs += [("resource", a) for a in config.audiences[1:] if a != params.get("resource")]
        location = endpoint + ("&" if "?" in endpoint else "?") + urlencode(pairs)
        response = RedirectResponse(location, status_code=302, headers=_NO_STORE)
        for value in headers:
            response.raw_headers.append((b"set-cookie", value.encode("latin-1")))
        return response

    # ------------------------------------------------------------------------ callback

    async def _read_params(self, scope: Scope, receive: Receive) -> dict[str, str]:
        if scope["method"] == "POST":
            content_type = Headers(scope=scope).get("content-type", "")
            if content_type.split(";")[0].strip().lower() != "application/x-www-form-urlencoded":
                raise _Failure("invalid_request")
            body = bytearray()
            more = True
            while more:
                message = await receive()
                if message["type"] != "http.request":
                    raise _Failure("invalid_request")
                body += message.get("body", b"")
                if len(body) > _MAX_CALLBACK_BODY:
                    raise _Failure("invalid_request", status=413)
                more = bool(message.get("more_body", False))
            text = body.decode("latin-1")
        else:
            text = scope.get("query_string", b"").decode("latin-1")
        pairs = parse_qsl(text, keep_blank_values=False)
        params: dict[str, str] = {}
        for name, value in pairs:
            if name in params:
                raise _Failure("duplicate_parameter", detail={"parameter": name[:32]})
            params[name] = value
        return params

    def _already_signed_in(self, state: _RequestState, state_param: str | None) -> Response | None:
        """Stale, repeated or back-button callback of a signed-in user: go on, no error page."""
        if state.auth is None:
            return None
        target = self.config.default_return_to
        done = state.auth.get("done")
        if (
            state_param is not None
            and isinstance(done, list)
            and len(done) in (2, 3)
            and hmac.compare_digest(str(done[0]), state_hash(state_param))
        ):
            target = str(done[1])
        target = normalize_return_to(target, default=self.config.default_return_to)
        return RedirectResponse(self.config.url(target), status_code=303, headers=_NO_STORE)

    def _cookieless_replay(
        self, scope: Scope, state: _RequestState, code: str, state_param: str
    ) -> bool:
        """A form_post callback of unknown state that carries neither session nor transaction.

        A provider's form_post is a cross-site POST, on which browsers withhold ``SameSite=Lax``
        cookies: a signed-in user replaying it (back button, a second submit) would see
        ``unknown_state``. Such a request is answered with a redirect to a GET of the callback
        (``?resume=1``: no code, no state in the URL), which carries the Lax session cookie.
        """
        if scope["method"] != "POST" or code != "unknown_state" or state.loaded is not None:
            return False
        cookies = state.cookies
        name = self.config.session_cookie_name
        if any(c == name or c.startswith(name + ".") for c in cookies):
            return False  # the session cookie came along: today's answer stands
        return self._tx.name(state_param) not in cookies

    def _resume(self, scope: Scope, state: _RequestState) -> Response:
        """The GET hop after a cookieless form_post replay: never redeems a code.

        Signed in: the return address of the login finished within the transaction TTL (the
        session's ``done`` marker), else the default one; nothing is taken from the request,
        so this is no open redirect. Not signed in: ``unknown_state`` with a sign-in link.
        """
        if state.auth is not None:
            target = self.config.default_return_to
            done = state.auth.get("done")
            if (
                isinstance(done, list)
                and len(done) == 3
                and isinstance(done[2], int)
                and 0 <= self._now() - done[2] < self.config.transaction_ttl
            ):
                target = str(done[1])
            target = normalize_return_to(target, default=self.config.default_return_to)
            return RedirectResponse(self.config.url(target), status_code=303, headers=_NO_STORE)
        log.info("sign-in callback failed: %s", "unknown_state")
        return self._error(scope, _Failure("unknown_state"), sign_in=True)

    async def _callback_route(
        self, scope: Scope, receive: Receive, state: _RequestState
    ) -> Response:
        if scope["method"] not in ("GET", "POST"):
            return self._error(scope, _Failure("method_not_allowed", status=405))
        state_param: str | None = None
        tx_known = False
        try:
            params = await self._read_params(scope, receive)
            if scope["method"] == "GET" and "resume" in params:
                return self._resume(scope, state)
            state_param = params.get("state")
            if not state_param:
                signed_in = self._already_signed_in(state, None)
                if signed_in is not None:
                    return signed_in
                raise _Failure("missing_state")
            try:
                tx = self._tx.open(state_param, state.cookies)
            except OIDCError as exc:
                signed_in = self._already_signed_in(state, state_param)
                if signed_in is not None:
                    return signed_in
                if self._cookieless_replay(scope, state, exc.code, state_param):
                    log.info("sign-in callback without cookies: resuming by GET")
                    location = self.config.url(self.config.callback_path or "/callback")
                    return RedirectResponse(
                        f"{location}?resume=1", status_code=303, headers=_NO_STORE
                    )
                tx_known = exc.code == "login_expired"
                raise _Failure(exc.code) from None
            tx_known = True
            if not hmac.compare_digest(
                str(tx.get("s", "")).encode("utf-8", "surrogatepass"),
                state_param.encode("utf-8", "surrogatepass"),
            ):
                raise _Failure("unknown_state")
            expected_method = "POST" if tx.get("rm") == "form_post" else "GET"
            if scope["method"] != expected_method:
                raise _Failure("response_mode_mismatch")
            headers = await self._complete(state, params, tx)
        except _Failure as failure:
            log.info("sign-in callback failed: %s", failure.code)
            cleanup = (
                self._tx.finish(state_param, state.cookies, https=state.https) if tx_known else []
            )
            if (
                not tx_known
                and state_param is not None
                and self._tx.name(state_param) in (state.cookies)
            ):
                cleanup = self._tx.finish(state_param, state.cookies, https=state.https)
            return self._error(scope, failure, set_cookies=cleanup)
        target = normalize_return_to(
            str(tx.get("rt") or ""),
            default=self.config.default_return_to,
            base_url=self.config.base_url,
        )
        response = RedirectResponse(self.config.url(target), status_code=303, headers=_NO_STORE)
        cleanup = self._tx.finish(state_param, state.cookies, https=state.https)
        for value in [*headers, *cleanup]:
            response.raw_headers.append((b"set-cookie", value.encode("latin-1")))
        return response

    async def _complete(
        self, state: _RequestState, params: Mapping[str, str], tx: Mapping[str, Any]
    ) -> list[str]:
        config = self.config
        metadata = await self._metadata()
        issuer = str(tx.get("iss"))
        # RFC 9207 section 2.4: compare iss whenever present (error responses too), and
        # require it when the provider advertises it.
        iss = params.get("iss")
        if iss is not None:
            if not hmac.compare_digest(iss.encode("utf-8", "surrogatepass"), issuer.encode()):
                raise _Failure("iss_mismatch")
        elif metadata.authorization_response_iss_parameter_supported:
            raise _Failure("iss_missing")
        error = params.get("error")
        if error is not None:
            shown = error if _SAFE_ERROR.fullmatch(error) else "invalid_error_code"
            raise _Failure("provider_error", detail={"provider_error": shown})
        code = params.get("code")
        if not code:
            raise _Failure("missing_code")
        client = await self._oauth_client()
        plan = _userinfo_plan(config)
        # "split": redeem for userinfo first, the API's token comes by refresh (SignInConfig).
        target = None if plan == "split" else config.audience
        try:
            # RFC 8707 section 2.2: name the API again, or some providers (node-oidc-provider)
            # issue an opaque token good only at userinfo instead of a JWT for the API.
            by_resource = config.audience_parameter == "resource"
            tokens = await client.authorization_code(
                code=code,
                redirect_uri=str(tx.get("ru")),
                code_verifier=str(tx.get("v")),
                resource=target if by_resource else None,
                audience=None if by_resource else target,
            )
        except (OAuthError, ProviderUnavailable) as exc:
            raise _token_failure(exc) from None
        if not tokens.id_token:
            raise _Failure("missing_id_token")
        max_age = tx.get("ma")
        acr = tx.get("acr")
        expect = IDTokenExpectations(
            client_id=config.client_id,
            nonce=str(tx.get("n")),
            max_age=float(max_age) if isinstance(max_age, int) else None,
            acr_values=tuple(acr) if isinstance(acr, list) and acr else None,
            access_token=tokens.access_token,
        )
        try:
            claims = await self.validator.id_token(tokens.id_token, expect)
        except TokenError as exc:
            detail = {"reason": exc.code}
            if exc.claim:
                detail["claim"] = exc.claim
            raise _Failure("invalid_id_token", detail=detail) from None
        except ProviderUnavailable as exc:
            log.warning("provider keys unavailable: %s", exc.code)
            raise _Failure("provider_unavailable", status=503, retry_after=5) from None
        id_claims = dict(claims)
        userinfo: dict[str, Any] = {}
        if plan in ("direct", "split") and metadata.userinfo_endpoint:
            userinfo = await self._userinfo(metadata.userinfo_endpoint, tokens.access_token)
            if userinfo.get("sub") != id_claims.get("sub"):
                raise _Failure("userinfo_sub_mismatch")
            userinfo = {k: v for k, v in userinfo.items() if k not in id_claims}
        if plan == "split":
            tokens = await self._api_token_by_refresh(client, tokens)
        now = self._now()
        ceiling: float | None = None
        session_expiry = id_claims.get("session_expiry")
        if isinstance(session_expiry, (int, float)) and not isinstance(session_expiry, bool):
            if session_expiry <= now:
                raise _Failure("session_expired_at_login")
            ceiling = float(session_expiry)
        previous = state.auth
        same_user = previous is not None and (previous.get("iss"), previous.get("sub")) == (
            issuer,
            id_claims.get("sub"),
        )
        if previous is not None and not same_user:
            # Another user: nothing of the previous user's session may leak into this one.
            state.app.clear()
        auth_time = id_claims.get("auth_time")
        token_set: dict[str, Any] = {
            "access_token": tokens.access_token,
            "token_type": tokens.token_type,
            "expires_at": tokens.expires_at,
            "scope": tokens.scope,
        }
        auth: dict[str, Any] = {
            "iss": issuer,
            "sub": id_claims.get("sub"),
            "idc": id_claims,
            "it": tokens.id_token,
            "at": auth_time if isinstance(auth_time, (int, float)) else now,
            # Token sets per audience ("" = the login's own); refresh is shared (issue 5 seam).
            "tok": {config.audience or "": token_set},
            "done": [state_hash(str(tx.get("s"))), str(tx.get("rt") or "/"), int(now)],
            "x": _secrets.token_urlsafe(12),
        }
        if isinstance(id_claims.get("sid"), str):
            auth["sid"] = id_claims["sid"]
        if userinfo:
            auth["ui"] = userinfo
        if tokens.refresh_token:
            auth["rt"] = tokens.refresh_token
        state.auth = auth
        state.auth_changed = True
        state.rotate = True
        state.ceiling = ceiling
        return await self._finish(state, strict=True)

    async def _api_token_by_refresh(
        self, client: OAuthClient, tokens: TokenResponse
    ) -> TokenResponse:
        """The "split" plan's second step: the API's token from the refresh token just issued,
        with ``resource`` (RFC 8707 section 2.2), after userinfo was read with the first token.

        The ID token stays the one validated at redemption; a rotated refresh token replaces
        the spent one (RFC 6749 section 6).
        """
        if not tokens.refresh_token:
            raise _Failure("refresh_token_missing")
        try:
            fresh = await client.refresh(
                refresh_token=tokens.refresh_token, resource=self.config.audience
            )
        except (OAuthError, ProviderUnavailable) as exc:
            raise _token_failure(exc) from None
        return dataclasses.replace(
            fresh,
            refresh_token=fresh.refresh_token or tokens.refresh_token,
            id_token=tokens.id_token,
        )

    async def _userinfo(self, endpoint: str, access_token: str) -> dict[str, Any]:
        client = self._http
        own = client is None
        http = client or httpx.AsyncClient()
        try:
            answer = await fetch_json(
                http,
                endpoint,
                headers={"Authorization": f"Bearer {access_token}"},
                allow_insecure_http=self.config.allow_insecure_http,
            )
        except ProviderStatusError as exc:
            # A 4xx is the provider's answer about the token (RFC 6750 section 3.1), not an
            # outage: retrying cannot help. Timeouts, 5xx and 429 stay 503.
            if 400 <= exc.status_code < 500 and exc.status_code not in (408, 429):
                log.warning("userinfo refused the access token: HTTP %d", exc.status_code)
                raise _Failure(
                    "userinfo_refused", detail={"status": str(exc.status_code)}
                ) from None
            log.warning("userinfo unavailable: %s", exc.code)
            raise _Failure(
                "provider_unavailable", status=503, retry_after=exc.retry_after or 5
            ) from None
        except ProviderUnavailable as exc:
            log.warning("userinfo unavailable: %s", exc.code)
            raise _Failure("provider_unavailable", status=503, retry_after=5) from None
        finally:
            if own:
                await http.aclose()
        return dict(answer.data)

    # ------------------------------------------------------------------------ logout

    def _csrf_ok(self, scope: Scope, form: Mapping[str, str], state: _RequestState) -> bool:
        headers = Headers(scope=scope)
        token = form.get("csrf_token")
        if token is not None and hmac.compare_digest(
            token.encode("utf-8", "surrogatepass"), self._csrf_token(state).encode()
        ):
            return True
        origin = headers.get("origin")
        if origin is not None:
            origin = origin.lower()
            if origin == self.config.origin:
                return True
            # Another name of this site, as a trusted proxy saw the browser's request.
            forwarded = self._proxies.forwarded(scope)
            return (
                forwarded is not None
                and forwarded.proto is not None
                and forwarded.host is not None
                and origin == f"{forwarded.proto}://{forwarded.host}"
            )
        site = headers.get("sec-fetch-site")
        return site == "same-origin"

    async def _logout_route(self, scope: Scope, receive: Receive, state: _RequestState) -> Response:
        method = scope["method"]
        if method not in self.config.logout_methods:
            return self._error(scope, _Failure("method_not_allowed", status=405))
        form: dict[str, str] = {}
        if method == "POST":
            content_type = Headers(scope=scope).get("content-type", "")
            if content_type.split(";")[0].strip().lower() == "application/x-www-form-urlencoded":
                try:
                    form = await self._read_params(scope, receive)
                except _Failure as failure:
                    return self._error(scope, failure)
            if not self._csrf_ok(scope, form, state):
                log.info("logout refused: csrf_failed")
                return self._error(scope, _Failure("csrf_failed", status=403))
        query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1")))
        return_to = normalize_return_to(
            form.get("return_to") or query.get("return_to"),
            default=self.config.default_return_to,
            base_url=self.config.base_url,
        )
        id_token = (state.auth or {}).get("it")
        revocable = _revocable(state.auth) if self.config.revoke_tokens_on_logout else []
        try:
            # Copies of the cookie (or a slow request's re-sent one) must not outlive logout.
            await self.backchannel.end_session(state.loaded)
        except ProviderUnavailable as exc:
            log.warning("logout not recorded in the shared state: %s", exc.code)
        state.clear = True
        headers = await self._finish(state, strict=False)
        if revocable:
            await self._revoke(revocable)
        response: Response | None = None
        if self.config.idp_logout and isinstance(id_token, str):
            response = await self._provider_logout(id_token, return_to, https=state.https)
        if response is None:
            response = RedirectResponse(
                self.config.url(return_to), status_code=303, headers=_NO_STORE
            )
        for value in headers:
            response.raw_headers.append((b"set-cookie", value.encode("latin-1")))
        return response

    async def _revoke(self, tokens: list[tuple[str, str]]) -> None:
        """Revoke the session's tokens (RFC 7009); never fails logout, never logs a token."""
        try:
            metadata = await self._metadata()
            endpoint = metadata.revocation_endpoint
            if not endpoint:
                log.warning("token revocation skipped: provider has no revocation_endpoint")
                return
            client = await self._oauth_client()
        except _Failure as failure:
            log.warning("token revocation skipped: %s", failure.code)
            return
        for token, hint in tokens:
            try:
                await client.revoke(token, token_type_hint=hint, endpoint=endpoint)
            except OAuthError as exc:
                # e.g. unsupported_token_type for access tokens (section 2.2.1): go on.
                shown = exc.error if _SAFE_ERROR.fullmatch(exc.error) else "invalid_error_code"
                log.warning("token revocation refused (%s): %s", hint, shown)
            except (ProviderUnavailable, ConfigurationError) as exc:
                log.warning("token revocation failed (%s): %s", hint, exc.code)
                return  # the provider is down: do not wait for it once per token

    async def _provider_logout(
        self, id_token: str, return_to: str, *, https: bool
    ) -> Response | None:
        """RP-Initiated Logout 1.0 section 2, or ``None`` to log out locally only."""
        try:
            metadata = await self.provider.metadata()
        except (ProviderUnavailable, ConfigurationError) as exc:
            # Never keep a user signed in because the provider is down: local logout.
            log.warning("provider logout skipped: %s", exc.code)
            return None
        endpoint = metadata.end_session_endpoint
        if not endpoint:
            return None
        config = self.config
        params = {"id_token_hint": id_token, "client_id": config.client_id}
        cookie_header: str | None = None
        if config.post_logout_path is not None:
            logout_state = _secrets.token_urlsafe(24)
            params["post_logout_redirect_uri"] = config.url(config.post_logout_path)
            params["state"] = logout_state
            value = self._logout_codec.encode(
                {"s": logout_state, "rt": return_to}, cookie_name=self._logout_cookie
            )
            cookie_header = self._logout_options.set_cookie(
                self._logout_cookie, value, https=https, max_age=_LOGOUT_COOKIE_TTL
            )
        location = endpoint + ("&" if "?" in endpoint else "?") + urlencode(params)
        response = RedirectResponse(location, status_code=303, headers=_NO_STORE)
        if cookie_header is not None:
            response.raw_headers.append((b"set-cookie", cookie_header.encode("latin-1")))
        return response

    async def _post_logout_route(
        self, scope: Scope, receive: Receive, state: _RequestState
    ) -> Response:
        if scope["method"] not in ("GET", "HEAD"):
            return self._error(scope, _Failure("method_not_allowed", status=405))
        query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1")))
        target = self.config.default_return_to
        opened = self._logout_codec.decode(
            state.cookies.get(self._logout_cookie), cookie_name=self._logout_cookie
        )
        returned = query.get("state")
        if opened is not None and returned is not None:
            expected = str(opened.data.get("s", ""))
            if hmac.compare_digest(returned.encode("utf-8", "surrogatepass"), expected.encode()):
                target = str(opened.data.get("rt") or target)
            else:
                log.info("post-logout landing: logout_state_mismatch")
        target = normalize_return_to(target, default=self.config.default_return_to)
        response = RedirectResponse(self.config.url(target), status_code=303, headers=_NO_STORE)
        if self._logout_cookie in state.cookies:
            expire = self._logout_options.expire_cookie(self._logout_cookie, https=state.https)
            response.raw_headers.append((b"set-cookie", expire.encode("latin-1")))
        return response
