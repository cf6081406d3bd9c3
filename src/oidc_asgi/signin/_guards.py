"""Per-route sign-in requirements: a Starlette decorator and a FastAPI dependency.

Both raise ``LoginRequired`` (or ``AccessDenied``) and leave it in the scope. They are
Starlette ``HTTPException`` subclasses, so the framework's exception middleware answers them
(401/403) instead of logging a server error; ``OIDCAuth`` then replaces that answer, before
anything is sent, with its own: a browser navigation goes to the provider (with
``acr_values``/``max_age`` for step-up), anything else gets 401 JSON with a login URL. In a
plain ASGI app the exception reaches ``OIDCAuth`` directly, with the same result. Neither
imports FastAPI: a dependency is a plain function taking a Starlette ``Request``.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Awaitable, Callable, Collection, Mapping
from typing import Any, TypeVar, overload

from starlette.exceptions import HTTPException
from starlette.requests import HTTPConnection, Request
from starlette.responses import Response

from oidc_asgi.signin._context import SignedInUser, get_context

__all__ = ["AccessDenied", "LoginRequired", "login_required", "require_login", "require_user"]

#: Scope key where a guard leaves the exception it raised, for ``OIDCAuth`` to answer.
GUARD_KEY = "oidc.guard"

_Endpoint = TypeVar("_Endpoint", bound=Callable[..., Awaitable[Response]])


class LoginRequired(HTTPException):
    """Raised by a guard: this request needs a (fresher, stronger) sign-in.

    ``acr_values`` and ``max_age`` are sent to the provider and checked in the new ID token
    (OIDC Core 3.1.2.1 and 3.1.3.7 steps 11-12). ``reason`` is a stable code for the 401 body.

    Example::

        raise LoginRequired(acr_values=("urn:mfa",), reason="step_up_required")
    """

    def __init__(
        self,
        *,
        acr_values: Collection[str] | None = None,
        max_age: int | None = None,
        reason: str = "login_required",
    ) -> None:
        super().__init__(401, reason)
        self.acr_values = tuple(acr_values) if acr_values is not None else None
        self.max_age = max_age
        self.reason = reason


class AccessDenied(HTTPException):
    """Raised by a guard: signed in, but the claims do not satisfy the route (403).

    Example::

        raise AccessDenied(claim="groups")
    """

    def __init__(self, *, claim: str) -> None:
        super().__init__(403, "insufficient_claims")
        self.claim = claim


def _check(
    conn: HTTPConnection,
    *,
    acr_values: Collection[str] | None,
    max_age: int | None,
    claims: Mapping[str, Any] | None,
    includes: Mapping[str, Any] | None,
    now: Callable[[], float],
) -> SignedInUser:
    try:
        return _verdict(
            conn, acr_values=acr_values, max_age=max_age, claims=claims, includes=includes,
            now=now,
        )  # fmt: skip
    except (LoginRequired, AccessDenied) as exc:
        conn.scope[GUARD_KEY] = exc
        raise


def _verdict(
    conn: HTTPConnection,
    *,
    acr_values: Collection[str] | None,
    max_age: int | None,
    claims: Mapping[str, Any] | None,
    includes: Mapping[str, Any] | None,
    now: Callable[[], float],
) -> SignedInUser:
    ctx = get_context(conn)
    user = ctx.user
    if user is None:
        raise LoginRequired(acr_values=acr_values, max_age=max_age)
    if acr_values is not None and user.get("acr") not in acr_values:
        raise LoginRequired(acr_values=acr_values, max_age=max_age, reason="step_up_required")
    if max_age is not None:
        at = ctx.authenticated_at
        if at is None or now() - at > max_age:
            raise LoginRequired(acr_values=acr_values, max_age=max_age, reason="login_too_old")
    for name, expected in (claims or {}).items():
        if user.get(name) != expected:
            raise AccessDenied(claim=name)
    for name, wanted in (includes or {}).items():
        value = user.get(name)
        values = value if isinstance(value, (list, tuple)) else (value,)
        if wanted not in values:
            raise AccessDenied(claim=name)
    return user


def require_login(
    *,
    acr_values: Collection[str] | None = None,
    max_age: int | None = None,
    claims: Mapping[str, Any] | None = None,
    includes: Mapping[str, Any] | None = None,
    now: Callable[[], float] = time.time,
) -> Callable[[Request], SignedInUser]:
    """A FastAPI dependency returning the ``SignedInUser`` that satisfies the requirements.

    ``acr_values``: the ID token's ``acr`` must be one of them (step-up otherwise);
    ``max_age``: the sign-in must be at most this many seconds old (re-authentication
    otherwise); ``claims``: claim equals value; ``includes``: a list claim contains the value
    (403 ``insufficient_claims`` when either fails).

    Example::

        admins = require_login(includes={"groups": "admin"})

        @app.get("/admin")
        async def admin(user: Annotated[SignedInUser, Depends(admins)]):
            return {"hello": user.sub}
    """

    def dependency(request: Request) -> SignedInUser:
        return _check(
            request, acr_values=acr_values, max_age=max_age, claims=claims, includes=includes,
            now=now,
        )  # fmt: skip

    return dependency


def require_user(request: Request) -> SignedInUser:
    """A FastAPI dependency: the signed-in user, or a login challenge.

    Example::

        @app.get("/me")
        async def me(user: Annotated[SignedInUser, Depends(require_user)]):
            return {"sub": user.sub}
    """
    return _check(request, acr_values=None, max_age=None, claims=None, includes=None, now=time.time)


@overload
def login_required(endpoint: _Endpoint) -> _Endpoint: ...


@overload
def login_required(
    *,
    acr_values: Collection[str] | None = None,
    max_age: int | None = None,
    claims: Mapping[str, Any] | None = None,
    includes: Mapping[str, Any] | None = None,
) -> Callable[[_Endpoint], _Endpoint]: ...


def login_required(
    endpoint: _Endpoint | None = None,
    *,
    acr_values: Collection[str] | None = None,
    max_age: int | None = None,
    claims: Mapping[str, Any] | None = None,
    includes: Mapping[str, Any] | None = None,
) -> Any:
    """Decorate a Starlette endpoint ``async def endpoint(request)`` to require sign-in.

    Usable bare (``@login_required``) or with requirements
    (``@login_required(acr_values=["urn:mfa"])``), like ``require_login``.

    Example::

        @login_required
        async def dashboard(request):
            return PlainTextResponse(f"hi {request.user.display_name}")
    """

    def decorate(func: _Endpoint) -> _Endpoint:
        @functools.wraps(func)
        async def wrapper(request: Request, *args: Any, **kwargs: Any) -> Response:
            _check(
                request, acr_values=acr_values, max_age=max_age, claims=claims,
                includes=includes, now=time.time,
            )  # fmt: skip
            return await func(request, *args, **kwargs)

        return wrapper  # type: ignore[return-value]

    if endpoint is not None:
        return decorate(endpoint)
    return decorate
