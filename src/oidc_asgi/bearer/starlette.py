"""Starlette glue: middleware and backend for ``request.user`` / ``@requires``, and a decorator.

Three ways in, all answering with the exact challenges of ``_challenge.py``:

* ``BearerMiddleware``: a pure ASGI middleware (like Starlette's ``AuthenticationMiddleware``,
  which it replaces) that sets ``scope["user"]`` / ``scope["auth"]``, so Starlette's own
  ``@requires("read:messages")`` works; a bad token is answered 401 at once, a WebSocket is
  closed with 1008 (policy violation) instead of Starlette's 1000; a request without a token
  passes through unauthenticated. Since ``@requires`` can only answer a bare 403, the
  middleware completes those answers: 401 with ``WWW-Authenticate: Bearer realm=...`` when no
  token was sent, ``error="insufficient_scope"`` added when one was.
* ``BearerBackend``: an ``AuthenticationBackend`` for Starlette's ``AuthenticationMiddleware``
  (pass ``on_error=backend.on_error``).
* ``requires_token``: a decorator for routes that want the check without any middleware.

Form-body tokens (RFC 6750 2.2) are read by the decorator only: middleware does not consume
request bodies.
"""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar, cast

from starlette.authentication import (
    AuthCredentials,
    AuthenticationBackend,
    AuthenticationError,
    BaseUser,
    UnauthenticatedUser,
)
from starlette.concurrency import run_in_threadpool
from starlette.requests import HTTPConnection, Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from starlette.websockets import WebSocket

from oidc_asgi.bearer._challenge import Challenge
from oidc_asgi.bearer._principal import Principal
from oidc_asgi.bearer._scopes import Match, Rule, Scopes
from oidc_asgi.bearer._validator import BearerValidator
from oidc_asgi.errors import ConfigurationError, OIDCError, ProviderUnavailable, TokenError

log = logging.getLogger("oidc_asgi.bearer")

__all__ = [
    "BearerAuthenticationError",
    "BearerBackend",
    "BearerMiddleware",
    "BearerUser",
    "requires_token",
]

WS_POLICY_VIOLATION = 1008
_Errors = (TokenError, ProviderUnavailable, ConfigurationError)
_F = TypeVar("_F", bound=Callable[..., Any])


class BearerUser(BaseUser):
    """``request.user`` for a validated token; ``principal`` holds everything known.

    Example::

        @requires("read:messages")
        async def messages(request):
            return JSONResponse({"sub": request.user.principal.subject})
    """

    def __init__(self, principal: Principal) -> None:
        self.principal = principal
        # The validator that produced the principal (set by this module's glue): the decorator
        # trusts a user only from its own validator, not from another API's middleware.
        self._validator: BearerValidator | None = None

    @property
    def is_authenticated(self) -> bool:
        return True

    @property
    def display_name(self) -> str:
        return self.principal.subject or self.principal.client_id or ""

    @property
    def identity(self) -> str:
        return self.principal.subject or self.principal.client_id or ""


class BearerAuthenticationError(AuthenticationError):
    """Carries the library error from ``BearerBackend`` to its ``on_error``.

    Example::

        def on_error(conn: HTTPConnection, exc: AuthenticationError) -> Response:
            if isinstance(exc, BearerAuthenticationError):
                log.info("bearer refused: %s", exc.error.code)
            return backend.on_error(conn, exc)  # the RFC 6750 challenge
    """

    def __init__(self, error: OIDCError) -> None:
        super().__init__(error.code)
        self.error = error


def _credentials(
    principal: Principal, validator: BearerValidator
) -> tuple[AuthCredentials, BearerUser]:
    user = BearerUser(principal)
    user._validator = validator
    return AuthCredentials(sorted(principal.scopes)), user


def _response(challenge: Challenge) -> Response:
    response = Response(
        challenge.body, status_code=challenge.status, media_type=challenge.media_type
    )
    for name, value in challenge.headers:
        response.headers.append(name, value)
    return response


class BearerBackend(AuthenticationBackend):
    """Starlette ``AuthenticationBackend`` validating the bearer token of each request.

    No token: unauthenticated (``None``); a bad token: ``BearerAuthenticationError``, which
    ``on_error`` turns into the RFC 6750 challenge. Note that Starlette's middleware closes
    WebSockets with 1000 on errors; ``BearerMiddleware`` uses 1008.

    Example::

        backend = BearerBackend(validator)
        app = Starlette(routes=routes, middleware=[
            Middleware(AuthenticationMiddleware, backend=backend, on_error=backend.on_error)])
    """

    def __init__(self, validator: BearerValidator) -> None:
        self.validator = validator

    async def authenticate(self, conn: HTTPConnection) -> tuple[AuthCredentials, BaseUser] | None:
        try:
            principal = await self.validator.authenticate(conn.scope)
        except TokenError as exc:
            if exc.code == "missing_token":
                return None
            raise BearerAuthenticationError(exc) from None
        except (ProviderUnavailable, ConfigurationError) as exc:
            raise BearerAuthenticationError(exc) from None
        return _credentials(principal, self.validator)

    def on_error(self, conn: HTTPConnection, exc: AuthenticationError) -> Response:
        """The challenge response for an authentication failure."""
        if isinstance(exc, BearerAuthenticationError):
            return _response(self.validator.challenge(exc.error, conn.scope))
        return _response(
            self.validator.challenge(TokenError("rejected", code="invalid_token"), conn.scope)
        )


class BearerMiddleware:
    """Pure ASGI middleware: validate the bearer token, set ``request.user`` / ``request.auth``.

    ``challenge_forbidden`` (default on) completes bare 403 answers from the app (Starlette's
    ``@requires``): 401 plus ``WWW-Authenticate: Bearer realm="..."`` when the request had no
    token (RFC 6750 3.1), ``WWW-Authenticate`` with ``error="insufficient_scope"`` when it did.

    ``prefetch=True`` fetches every issuer's metadata and keys when the ASGI lifespan starts, so
    the first request does not wait for them; a provider that is down then is logged and the keys
    are fetched on first use instead (the app still starts).

    Example::

        app = Starlette(
            routes=routes, middleware=[Middleware(BearerMiddleware, validator=v, prefetch=True)]
        )

        @requires("read:messages")
        async def messages(request): ...
    """

    def __init__(
        self,
        app: ASGIApp,
        validator: BearerValidator,
        *,
        challenge_forbidden: bool = True,
        prefetch: bool = False,
    ) -> None:
        self.app = app
        self.validator = validator
        self.challenge_forbidden = challenge_forbidden
        self.prefetch = prefetch

    def _prefetching(self, receive: Receive) -> Receive:
        async def wrapped() -> Message:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self.validator.prefetch()
                except (ProviderUnavailable, ConfigurationError) as exc:
                    log.warning(
                        "bearer: prefetch at startup failed (%s); keys load on use", exc.code
                    )
            return message

        return wrapped

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "lifespan" and self.prefetch:
            await self.app(scope, self._prefetching(receive), send)
            return
        if kind not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        validator = self.validator
        authenticated = False
        try:
            principal = await validator.authenticate(scope)
        except TokenError as exc:
            if exc.code != "missing_token":
                await _reject(validator, exc, scope, receive, send)
                return
            scope["auth"], scope["user"] = AuthCredentials(), UnauthenticatedUser()
        except (ProviderUnavailable, ConfigurationError) as exc:
            await _reject(validator, exc, scope, receive, send)
            return
        else:
            authenticated = True
            scope["auth"], scope["user"] = _credentials(principal, validator)
        if kind != "http" or not self.challenge_forbidden:
            await self.app(scope, receive, send)
            return

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] == 403:
                headers = list(message.get("headers", ()))
                if not any(n.lower() == b"www-authenticate" for n, _ in headers):
                    code = "claim_rule_failed" if authenticated else "missing_token"
                    challenge = validator.challenge(TokenError("forbidden", code=code), scope)
                    extra = [
                        (n.lower().encode("latin-1"), v.encode("latin-1"))
                        for n, v in challenge.headers
                    ]
                    message = {
                        **message,
                        "status": 403 if authenticated else 401,
                        "headers": headers + extra,
                    }
            await send(message)

        await self.app(scope, receive, send_wrapper)


async def _reject(
    validator: BearerValidator, error: OIDCError, scope: Scope, receive: Receive, send: Send
) -> None:
    challenge = validator.challenge(error, scope)
    if scope["type"] == "websocket":
        # Before accept, a close is answered 403 by the server; 1008 names the policy breach.
        await send(
            {
                "type": "websocket.close",
                "code": WS_POLICY_VIOLATION,
                "reason": challenge.error or "",
            }
        )
        return
    await send(
        {
            "type": "http.response.start",
            "status": challenge.status,
            "headers": challenge.raw_headers(),
        }
    )
    await send({"type": "http.response.body", "body": challenge.body})


def requires_token(
    validator: BearerValidator,
    *scopes: str,
    match: Match = "all",
    rules: Sequence[Rule] = (),
) -> Callable[[_F], _F]:
    """Protect one Starlette endpoint (HTTP or WebSocket) without middleware.

    The token is validated (unless ``BearerMiddleware`` or ``BearerBackend`` with the *same*
    validator already did: a user set by another API's validator is not trusted), then
    ``scopes`` (all, or any with ``match="any"``) and ``rules`` are checked. Failures answer
    with the exact challenge; WebSockets are closed with 1008. ``request.user`` /
    ``request.auth`` are set as the middleware would.

    Example::

        @requires_token(validator, "read:messages")
        async def messages(request: Request) -> Response:
            return JSONResponse({"sub": request.user.principal.subject})
    """
    all_rules: list[Rule] = [Scopes(*scopes, match=match)] if scopes else []
    all_rules.extend(rules)

    def decorator(func: _F) -> _F:
        is_async = inspect.iscoroutinefunction(func)

        @functools.wraps(func)
        async def wrapper(conn: HTTPConnection, *args: Any, **kwargs: Any) -> Any:
            try:
                user = conn.scope.get("user")
                if isinstance(user, BearerUser) and user._validator is validator:
                    principal = user.principal
                    validator.authorize(principal, all_rules)
                else:
                    form_tokens = None
                    if isinstance(conn, Request) and validator.wants_form(conn.scope):
                        form_tokens = validator.form_tokens(await conn.body())
                    principal = await validator.authenticate(
                        conn.scope, form_tokens=form_tokens, rules=all_rules
                    )
                    conn.scope["auth"], conn.scope["user"] = _credentials(principal, validator)
            except _Errors as exc:
                challenge = validator.challenge(exc, conn.scope)
                if isinstance(conn, WebSocket):
                    await conn.close(WS_POLICY_VIOLATION, reason=challenge.error or "")
                    return None
                return _response(challenge)
            if is_async:
                return await cast("Callable[..., Awaitable[Any]]", func)(conn, *args, **kwargs)
            return await run_in_threadpool(func, conn, *args, **kwargs)

        return cast("_F", wrapper)

    return decorator
