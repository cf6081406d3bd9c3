"""The request path's shared session: app changes found at any depth, sign-in data read-only."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from oidc_asgi.sessions import MemoryStore
from oidc_asgi.signin import get_context

from ._support import Harness, me, put, set_cookies


async def nest(request: Request) -> Response:
    cart = request.session.setdefault("cart", {"items": []})
    cart["items"].append(request.query_params["item"])
    return PlainTextResponse("ok")


async def flag(request: Request) -> Response:
    request.session["flag"] = {"int": 1, "true": True, "float": 1.0}[request.query_params["v"]]
    return PlainTextResponse("ok")


async def touch_nothing(request: Request) -> Response:
    return PlainTextResponse(str(len(request.session)))


async def tamper(request: Request) -> Response:
    ctx = get_context(request)
    auth: Any = ctx._auth
    attempts: dict[str, Callable[[], object]] = {
        "sub": lambda: auth.__setitem__("sub", "mallory"),
        "claims": lambda: auth["idc"].__setitem__("sub", "mallory"),
        "tokens": lambda: auth["tok"].clear(),
        "token-set": lambda: next(iter(auth["tok"].values())).update(access_token="forged"),
    }
    refused = []
    for name, attempt in attempts.items():
        try:
            attempt()
        except TypeError:
            refused.append(name)
    return JSONResponse(refused)


def _app() -> Starlette:
    return Starlette(
        routes=[
            Route("/me", me),
            Route("/put", put),
            Route("/nest", nest),
            Route("/flag", flag),
            Route("/idle", touch_nothing),
            Route("/tamper", tamper),
        ]
    )


@pytest.fixture(params=["cookie-store", "memory-store"])
def store(request: pytest.FixtureRequest, harness: Harness) -> dict[str, Any]:
    return {} if request.param == "cookie-store" else {"session_store": MemoryStore()}


async def test_a_change_inside_a_nested_structure_is_saved(
    harness: Harness, store: dict[str, Any]
) -> None:
    app = harness.wrap(_app(), **store)
    async with harness.client(app) as client:
        await harness.sign_in(client)
        for item in ("a", "b"):
            response = await client.get(f"/nest?item={item}")
            assert "oidc_session" in set_cookies(response)
        body = (await client.get("/me")).json()
        assert body["session"] == {"cart": {"items": ["a", "b"]}}
        assert body["sub"] == "alice"


@pytest.mark.parametrize(
    ("before", "after"),
    [
        pytest.param("int", "true", id="1-becomes-true"),
        pytest.param("true", "int", id="true-becomes-1"),
        pytest.param("int", "float", id="1-becomes-1.0"),
    ],
)
async def test_an_equal_value_of_another_json_type_is_a_change(
    harness: Harness, before: str, after: str
) -> None:
    app = harness.wrap(_app())
    async with harness.client(app) as client:
        await harness.sign_in(client)
        await client.get(f"/flag?v={before}")
        response = await client.get(f"/flag?v={after}")
        assert "oidc_session" in set_cookies(response)
        assert (await client.get("/me")).json()["session"]["flag"] == {
            "int": 1, "true": True, "float": 1.0
        }[after]  # fmt: skip


async def test_a_request_that_only_reads_sends_no_cookie(
    harness: Harness, store: dict[str, Any]
) -> None:
    app = harness.wrap(_app(), **store)
    async with harness.client(app) as client:
        await harness.sign_in(client)
        await client.get("/nest?item=a")
        for _ in range(3):
            response = await client.get("/idle")
            assert response.text == "1"
            assert set_cookies(response) == {}


async def test_app_code_cannot_alter_the_sign_in_data(harness: Harness) -> None:
    app = harness.wrap(_app())
    async with harness.client(app) as client:
        await harness.sign_in(client)
        assert (await client.get("/tamper")).json() == ["sub", "claims", "tokens", "token-set"]
        await client.get("/put?n=1")  # a write re-issues the (unaltered) sign-in part
        body = (await client.get("/me")).json()
        assert (body["sub"], body["session"]) == ("alice", {"n": "1"})
