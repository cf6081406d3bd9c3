"""What the application sees of sign-in: ``scope["oidc"]``, the user view and the app session."""

from __future__ import annotations

import json
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from starlette.authentication import BaseUser
from starlette.requests import HTTPConnection

# One encoder for every snapshot: json.dumps with keyword arguments builds one per call.
_SNAPSHOT = json.JSONEncoder(sort_keys=True, separators=(",", ":"), default=repr)

__all__ = ["SCOPE_KEY", "SignInContext", "SignedInUser", "get_context", "get_user"]

#: The ASGI scope key holding the ``SignInContext``.
SCOPE_KEY = "oidc"


class SignedInUser(BaseUser):
    """The signed-in user: the ID token's (and userinfo's) claims, read-only.

    Compatible with Starlette's ``BaseUser`` (``request.user.is_authenticated``,
    ``display_name``, ``identity``), and a mapping of claims by item access.

    Example::

        user = get_user(request)
        if user is not None:
            greeting = f"Hello {user.display_name} ({user['email']})"
    """

    __slots__ = ("_claims", "issuer")

    def __init__(self, *, issuer: str, claims: Mapping[str, Any]) -> None:
        self.issuer = issuer
        self._claims = MappingProxyType(dict(claims))

    def __repr__(self) -> str:
        return f"SignedInUser(issuer={self.issuer!r}, sub={self.sub!r})"

    @property
    def is_authenticated(self) -> bool:
        """Always ``True``."""
        return True

    @property
    def sub(self) -> str:
        """The subject identifier (unique per issuer: OIDC Core 2)."""
        return str(self._claims.get("sub", ""))

    @property
    def display_name(self) -> str:
        """``name``, else ``preferred_username``, else ``email``, else ``sub``."""
        for name in ("name", "preferred_username", "email"):
            value = self._claims.get(name)
            if isinstance(value, str) and value:
                return value
        return self.sub

    @property
    def identity(self) -> str:
        """``sub``: what identifies the user at this issuer."""
        return self.sub

    @property
    def claims(self) -> Mapping[str, Any]:
        """Every claim, read-only."""
        return self._claims

    def __getitem__(self, name: str) -> Any:
        return self._claims[name]

    def get(self, name: str, default: Any = None) -> Any:
        """A claim, or ``default``."""
        return self._claims.get(name, default)


class AppSession(dict[str, Any]):
    """The application's own session data (``request.session``): a plain JSON-able dict.

    Stored encrypted next to the sign-in data; written back only when its content changed.
    Signing in keeps it when the user was anonymous or is the same user, and empties it when
    another user signs in.

    Example::

        request.session["cart"] = ["sku-1"]
    """

    def _snapshot(self) -> str:
        return _SNAPSHOT.encode(self)


class SignInContext:
    """Per-request sign-in state, at ``scope["oidc"]``: who is signed in and the session.

    ``user`` is the ``SignedInUser`` or ``None``; ``session`` is the app's ``AppSession``;
    ``login_url(return_to)`` is where to send a user to sign in; ``csrf_token`` goes in a
    logout form as ``csrf_token`` for browsers that send neither ``Origin`` nor Fetch Metadata.
    ``id_token_claims`` are the verified ID token's claims only (without userinfo).

    Example::

        ctx = get_context(request)
        if ctx.user is None:
            return RedirectResponse(ctx.login_url("/reports"))
    """

    __slots__ = ("_auth", "_login_url", "csrf_token", "session", "user")

    def __init__(
        self,
        *,
        user: SignedInUser | None,
        session: AppSession,
        auth: Mapping[str, Any] | None,
        login_url: str | None,
        csrf_token: str,
    ) -> None:
        self.user = user
        self.session = session
        self._auth = auth
        self._login_url = login_url
        self.csrf_token = csrf_token

    def __repr__(self) -> str:
        return f"SignInContext(user={self.user!r})"

    @property
    def id_token_claims(self) -> Mapping[str, Any]:
        """The ID token's claims (empty when nobody is signed in)."""
        claims = (self._auth or {}).get("idc") or {}
        return MappingProxyType(dict(claims))

    @property
    def authenticated_at(self) -> float | None:
        """``auth_time`` of the sign-in (or its completion time when the provider sent none)."""
        value = (self._auth or {}).get("at")
        return float(value) if isinstance(value, (int, float)) else None

    def login_url(self, return_to: str | None = None) -> str | None:
        """The login route's URL with ``return_to`` (``None`` when the route is off).

        Example::

            url = get_context(request).login_url("/orders")
        """
        if self._login_url is None:
            return None
        if return_to is None:
            return self._login_url
        from urllib.parse import urlencode

        return f"{self._login_url}?{urlencode({'return_to': return_to})}"


def get_context(conn: HTTPConnection) -> SignInContext:
    """The ``SignInContext`` of a request (``OIDCAuth`` must wrap the app).

    Raises ``RuntimeError`` when the middleware is missing, which is a wiring mistake.

    Example::

        ctx = get_context(request)
    """
    ctx = conn.scope.get(SCOPE_KEY)
    if not isinstance(ctx, SignInContext):
        raise RuntimeError("OIDCAuth middleware is not installed around this app")
    return ctx


def get_user(conn: HTTPConnection) -> SignedInUser | None:
    """The signed-in user of a request, or ``None``.

    Example::

        async def profile(request):
            user = get_user(request)
            return JSONResponse({"sub": user.sub} if user else {})
    """
    return get_context(conn).user
