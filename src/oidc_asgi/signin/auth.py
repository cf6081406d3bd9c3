"""``UserTokenAuth``: call an API from a route with the signed-in user's access token.

An ``httpx.Auth`` in the shape of httpx's ``DigestAuth`` (and of ``oidc_asgi.downstream``):
take the session's token for the audience (``get_access_token``: refreshed early, single-flight,
written back to the session), attach it as ``Authorization: Bearer`` (RFC 6750 section 2.1) and
send; on a ``401`` whose ``Bearer`` challenge says ``invalid_token`` or names no error
(RFC 6750 section 3.1), refresh once (only if no other request already replaced the refused
token) and resend. A step-up challenge (``insufficient_claims`` with ``claims``, or RFC 9470
``insufficient_user_authentication``) is raised as ``DownstreamChallenge``; anything else is
returned untouched. A streamed request body cannot be resent unless ``buffer_body=True``.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Collection, Generator, Mapping
from typing import Any

import httpx
from starlette.requests import HTTPConnection

from oidc_asgi.downstream import _refresh_may_help, _sync_unsupported
from oidc_asgi.errors import ConfigurationError
from oidc_asgi.signin._api_tokens import _token_set

__all__ = ["UserTokenAuth"]


def _attach(request: httpx.Request, token_set: Mapping[str, Any]) -> str:
    token_type = str(token_set.get("token_type") or "Bearer")
    if token_type.lower() != "bearer":
        raise ConfigurationError(
            f"the session holds a {token_type} token; only Bearer tokens can be attached",
            code="unsupported_token_type",
        )
    access_token = str(token_set["access_token"])
    request.headers["Authorization"] = f"Bearer {access_token}"
    return access_token


class UserTokenAuth(httpx.Auth):
    """Attach the signed-in user's access token for ``audience``; refresh once on a 401.

    Build one per request (it holds the request); ``audience``, ``scopes`` and ``min_ttl`` are
    those of ``get_access_token``. Needs an ``httpx.AsyncClient``. Raises
    ``AccessTokenUnavailable`` (a ``LoginRequired``) when the user must sign in again and
    ``DownstreamChallenge`` when the API asks for step-up.

    Example::

        async def orders(request):
            auth = UserTokenAuth(request, audience="https://orders.example/api")
            async with httpx.AsyncClient(auth=auth) as http:
                answer = await http.get("https://orders.example/api/orders")
            return JSONResponse(answer.json())
    """

    def __init__(
        self,
        conn: HTTPConnection,
        *,
        audience: str | None = None,
        scopes: Collection[str] | None = None,
        min_ttl: float | None = None,
        buffer_body: bool = False,
    ) -> None:
        if not isinstance(conn, HTTPConnection):
            raise ConfigurationError(
                "UserTokenAuth needs the incoming request", code="invalid_request_object"
            )
        if isinstance(scopes, str):
            scopes = tuple(scopes.split())
        self._conn = conn
        self.audience = audience
        self.scopes = None if scopes is None else tuple(scopes)
        self.min_ttl = min_ttl
        self.buffer_body = buffer_body

    def __repr__(self) -> str:
        return f"UserTokenAuth(audience={self.audience!r}, scopes={self.scopes!r})"

    async def _tokens(self, reject: str | None) -> Mapping[str, Any]:
        return await _token_set(
            self._conn,
            audience=self.audience,
            scopes=self.scopes,
            min_ttl=self.min_ttl,
            reject=reject,
        )

    def sync_auth_flow(
        self, request: httpx.Request
    ) -> Generator[httpx.Request, httpx.Response, None]:
        raise _sync_unsupported("UserTokenAuth", "may refresh tokens")

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        if self.buffer_body:
            await request.aread()
        sent = _attach(request, await self._tokens(None))
        response = yield request
        if not _refresh_may_help(response):  # raises DownstreamChallenge on step-up
            return
        replacement = await self._tokens(sent)  # refreshed now, so a caller's retry works
        if not isinstance(request.stream, httpx.ByteStream):
            return  # a streamed body cannot be sent twice
        _attach(request, replacement)
        yield request
