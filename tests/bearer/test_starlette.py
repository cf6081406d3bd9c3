"""Starlette glue: ``BearerMiddleware`` with Starlette's own ``@requires``, the backend, the
decorator, and WebSockets closed with 1008."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, MutableMapping
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.authentication import requires
from starlette.middleware import Middleware
from starlette.middleware.authentication import AuthenticationMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket

from oidc_asgi.bearer import BearerValidator, ClaimEquals
from oidc_asgi.bearer.starlette import BearerBackend, BearerMiddleware, BearerUser, requires_token

from ._support import CountingTransport, ws_session
from .conftest import MakeValidator, MintToken


@requires("read:messages")
async def messages(request: Request) -> Response:
    user = request.user
    assert isinstance(user, BearerUser)
    return JSONResponse(
        {"sub": user.identity, "name": user.display_name, "scopes": request.auth.scopes}
    )


async def public(request: Request) -> Response:
    return JSONResponse({"authenticated": request.user.is_authenticated})


@requires("read:messages")
async def ws_endpoint(websocket: WebSocket) -> None:
    await websocket.accept()
    await websocket.send_json({"sub": websocket.user.identity})
    await websocket.close()


def middleware_app(validator: BearerValidator) -> Starlette:
    return Starlette(
        routes=[
            Route("/messages", messages),
            Route("/public", public),
            WebSocketRoute("/ws", ws_endpoint),
        ],
        middleware=[Middleware(BearerMiddleware, validator=validator)],
    )


def decorated_app(validator: BearerValidator) -> Starlette:
    @requires_token(validator, "read:messages")
    async def read(request: Request) -> Response:
        return JSONResponse({"sub": request.user.identity, "scopes": request.auth.scopes})

    @requires_token(validator, "write:messages", rules=[ClaimEquals("tenant", "t1")])
    def write(request: Request) -> Response:  # sync endpoints run in the threadpool
        return JSONResponse({"sub": request.user.identity})

    @requires_token(validator, "read:messages")
    async def ws(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_json({"sub": websocket.user.identity})
        await websocket.close()

    return Starlette(
        routes=[
            Route("/messages", read),
            Route("/messages", write, methods=["POST"]),
            WebSocketRoute("/ws", ws),
        ]
    )


@pytest.fixture
async def client(validator: BearerValidator) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=middleware_app(validator))
    async with httpx.AsyncClient(transport=transport, base_url="https://api.example.com") as c:
        yield c


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_requires_with_valid_token(client: httpx.AsyncClient, mint: MintToken) -> None:
    response = await client.get("/messages", headers=auth(mint()))
    assert response.status_code == 200
    assert response.json() == {"sub": "alice", "name": "alice", "scopes": ["read:messages"]}


async def test_public_route_passes_unauthenticated(client: httpx.AsyncClient) -> None:
    response = await client.get("/public")
    assert response.json() == {"authenticated": False}


@pytest.mark.parametrize(
    ("headers", "status", "challenge"),
    [
        pytest.param(lambda m: {}, 401, 'Bearer realm="api"', id="no-token-requires-becomes-401"),
        pytest.param(
            lambda m: auth(m(scopes=[])),
            403,
            'Bearer realm="api", error="insufficient_scope", '
            'error_description="the access token does not grant access to this resource"',
            id="no-scope-requires-403-with-challenge",
        ),
        pytest.param(
            lambda m: auth("abc.def.ghi"),
            401,
            'Bearer realm="api", error="invalid_token", '
            'error_description="the access token is malformed"',
            id="bad-token-middleware-401",
        ),
        pytest.param(
            lambda m: {"Authorization": "Bearer a b"},
            400,
            'Bearer realm="api", error="invalid_request", '
            'error_description="the Authorization header is malformed"',
            id="malformed-400",
        ),
    ],
)
async def test_middleware_challenges(
    client: httpx.AsyncClient, mint: MintToken, headers: Any, status: int, challenge: str
) -> None:
    sent = headers(mint)
    response = await client.get("/messages", headers=sent)
    assert response.status_code == status
    assert response.headers.get_list("www-authenticate") == [challenge]
    token = sent.get("Authorization", " ").split(" ", 1)[1]
    if token:
        assert token not in response.text


async def test_challenge_forbidden_can_be_switched_off(
    validator: BearerValidator, mint: MintToken
) -> None:
    app = Starlette(
        routes=[Route("/messages", messages)],
        middleware=[Middleware(BearerMiddleware, validator=validator, challenge_forbidden=False)],
    )
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="https://a") as c:
        response = await c.get("/messages")
    assert response.status_code == 403
    assert "www-authenticate" not in response.headers


async def test_backend_with_starlette_middleware(
    validator: BearerValidator, mint: MintToken
) -> None:
    backend = BearerBackend(validator)
    app = Starlette(
        routes=[Route("/messages", messages), Route("/public", public)],
        middleware=[
            Middleware(AuthenticationMiddleware, backend=backend, on_error=backend.on_error)
        ],
    )
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="https://a") as c:
        ok = await c.get("/messages", headers=auth(mint()))
        assert ok.status_code == 200
        assert (await c.get("/public")).json() == {"authenticated": False}
        bad = await c.get("/messages", headers=auth("abc.def.ghi"))
        assert bad.status_code == 401
        assert bad.headers["www-authenticate"].startswith(
            'Bearer realm="api", error="invalid_token"'
        )


@pytest.mark.parametrize(
    ("method", "headers", "status", "error"),
    [
        pytest.param("GET", lambda m: auth(m()), 200, None, id="get-ok"),
        pytest.param("GET", lambda m: {}, 401, None, id="get-no-token"),
        pytest.param(
            "GET",
            lambda m: auth(m(scopes=["write:messages"])),
            403,
            "insufficient_scope",
            id="get-no-scope",
        ),
        pytest.param(
            "POST",
            lambda m: auth(m(scopes=["write:messages"], claims={"tenant": "t1"})),
            200,
            None,
            id="post-sync-ok",
        ),
        pytest.param(
            "POST",
            lambda m: auth(m(scopes=["write:messages"], claims={"tenant": "t2"})),
            403,
            "insufficient_scope",
            id="post-claim-rule-403",
        ),
    ],
)
async def test_decorator_without_middleware(
    validator: BearerValidator,
    mint: MintToken,
    method: str,
    headers: Any,
    status: int,
    error: str | None,
) -> None:
    app = decorated_app(validator)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="https://a") as c:
        response = await c.request(method, "/messages", headers=headers(mint))
    assert response.status_code == status
    challenge = response.headers.get("www-authenticate")
    if status == 200:
        assert challenge is None
        assert response.json()["sub"] == "alice"
    elif error is None:
        assert challenge == 'Bearer realm="api"'
    else:
        assert f'error="{error}"' in (challenge or "")


async def test_decorator_form_token(make_validator: MakeValidator, mint: MintToken) -> None:
    app = decorated_app(make_validator(token_sources=("header", "form")))
    token = mint(scopes=["write:messages"], claims={"tenant": "t1"})
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="https://a") as c:
        response = await c.post("/messages", data={"access_token": token})
    assert response.status_code == 200


@pytest.mark.parametrize("build", [middleware_app, decorated_app], ids=["middleware", "decorator"])
async def test_websocket_accept(build: Any, validator: BearerValidator, mint: MintToken) -> None:
    sent = await ws_session(build(validator), auth(mint()))
    assert [m["type"] for m in sent] == ["websocket.accept", "websocket.send", "websocket.close"]
    assert json.loads(sent[1]["text"]) == {"sub": "alice"}


@pytest.mark.parametrize(
    ("build", "headers", "reason"),
    [
        pytest.param(
            middleware_app,
            lambda m: auth("abc.def.ghi"),
            "invalid_token",
            id="middleware-bad-token",
        ),
        pytest.param(
            decorated_app, lambda m: auth("abc.def.ghi"), "invalid_token", id="decorator-bad-token"
        ),
        pytest.param(decorated_app, lambda m: {}, "", id="decorator-no-token"),
        pytest.param(
            decorated_app,
            lambda m: auth(m(scopes=[])),
            "insufficient_scope",
            id="decorator-no-scope",
        ),
    ],
)
async def test_websocket_rejected_with_1008(
    build: Any, headers: Any, reason: str, validator: BearerValidator, mint: MintToken
) -> None:
    sent = await ws_session(build(validator), headers(mint))
    assert sent == [{"type": "websocket.close", "code": 1008, "reason": reason}]


async def _lifespan_startup(app: Any) -> list[MutableMapping[str, Any]]:
    sent: list[MutableMapping[str, Any]] = []
    messages = iter([{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}])

    async def receive() -> MutableMapping[str, Any]:
        return next(messages)

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)

    await app({"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}, receive, send)
    return sent


@pytest.mark.parametrize("prefetch", [True, False], ids=["prefetch", "lazy"])
async def test_keys_prefetched_at_lifespan_startup_when_asked(
    validator: BearerValidator, transport: CountingTransport, prefetch: bool
) -> None:
    app = Starlette(
        routes=[Route("/messages", messages)],
        middleware=[Middleware(BearerMiddleware, validator=validator, prefetch=prefetch)],
    )
    sent = await _lifespan_startup(app)
    assert sent[0]["type"] == "lifespan.startup.complete"
    assert (transport.total > 0) is prefetch  # discovery and JWKS fetched before any request


async def test_prefetch_with_the_provider_down_still_starts_the_app(
    validator: BearerValidator, transport: CountingTransport
) -> None:
    transport.down = "connect"
    app = Starlette(middleware=[Middleware(BearerMiddleware, validator=validator, prefetch=True)])
    sent = await _lifespan_startup(app)
    assert sent[0]["type"] == "lifespan.startup.complete"
