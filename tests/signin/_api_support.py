"""Helpers for the API-token and back-channel tests: a token-call counter, apps, a config."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qs

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from oidc_asgi.signin import UserTokenAuth, get_access_token, get_user
from oidc_asgi.testing import DevClient, DevProvider, DevProviderConfig

from ._support import APP, ISSUER, provider_config

API1 = "http://127.0.0.1:8001/api"
API2 = "http://127.0.0.1:8002/api"
OFFLINE_SCOPE = ("openid", "profile", "email", "offline_access")
DOWNSTREAM = "http://downstream.test"
EVENT = "http://schemas.openid.net/event/backchannel-logout"


def bcl_provider_config() -> DevProviderConfig:
    """The sign-in test provider, with ``rp`` registered for back-channel logout."""
    base = provider_config()
    clients = tuple(
        dataclasses.replace(c, backchannel_logout_uri=f"{APP}/backchannel-logout")
        if c.client_id == "rp"
        else c
        for c in base.clients
    )
    extra = DevClient(
        client_id="rp-other",
        client_secret="rp-other-secret",
        redirect_uris=(f"{APP}/callback",),
    )
    return dataclasses.replace(base, clients=(*clients, extra))


class TokenEndpointCounter:
    """Wraps the development provider and records every token request's form (no tokens
    leave the test)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.forms: list[dict[str, list[str]]] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].endswith("/token"):
            await self.app(scope, receive, send)
            return
        body = b""
        more = True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = bool(message.get("more_body", False))
        self.forms.append(parse_qs(body.decode("ascii")))
        delivered = False

        async def replay() -> Message:
            nonlocal delivered
            if delivered:
                return {"type": "http.disconnect"}
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)

    def refreshes(self) -> list[dict[str, list[str]]]:
        return [f for f in self.forms if f.get("grant_type") == ["refresh_token"]]


def counted_client(counter: TokenEndpointCounter) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=counter), base_url=ISSUER)


async def token_route(request: Request) -> Response:
    aud = request.query_params.get("aud")
    scopes = request.query_params.get("scopes")
    token = await get_access_token(request, audience=aud, scopes=scopes.split() if scopes else None)
    return JSONResponse({"token": token})


async def whoami(request: Request) -> Response:
    user = get_user(request)
    return PlainTextResponse(user.sub if user else "anonymous")


Downstream = Callable[[Request], Awaitable[Response]]


def api_app(handler: Downstream) -> Starlette:
    return Starlette(routes=[Route("/orders", handler, methods=["GET", "POST"])])


def token_app(downstream: ASGIApp | None = None, **auth_settings: Any) -> Starlette:
    """The relying party's routes: a token route, whoami, and a route calling ``downstream``."""

    async def call(request: Request) -> Response:
        assert downstream is not None
        auth = UserTokenAuth(request, audience=request.query_params.get("aud"), **auth_settings)
        transport = httpx.ASGITransport(app=downstream)
        async with httpx.AsyncClient(transport=transport, auth=auth, base_url=DOWNSTREAM) as http:
            answer = await http.get("/orders")
        return JSONResponse({"status": answer.status_code, "body": answer.text})

    return Starlette(
        routes=[
            Route("/token", token_route),
            Route("/whoami", whoami),
            Route("/call", call),
            Route("/private", whoami),
        ]
    )


def claims_for(provider: DevProvider, sid: str | None, **changes: Any) -> dict[str, Any]:
    """The valid logout token the conformance suite builds (oidf-rp-tests.md)."""
    now = int(provider.now())
    claims: dict[str, Any] = {
        "iss": ISSUER,
        "sub": "alice",
        "aud": "rp",
        "iat": now,
        "exp": now + 120,
        "jti": str(uuid.uuid4()),
        "events": {EVENT: {}},
    }
    if sid is not None:
        claims["sid"] = sid
    for name, value in changes.items():
        if value is None:
            claims.pop(name, None)
        else:
            claims[name] = value
    return claims


def signed(provider: DevProvider, claims: dict[str, Any], alg: str = "RS256") -> str:
    return provider.signing_key(alg).sign(claims, typ="logout+jwt")


def sid_of(provider: DevProvider) -> str:
    [session] = provider.state.sessions.values()
    return session.sid
