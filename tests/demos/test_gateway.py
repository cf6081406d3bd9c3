"""The ``gateway`` demo end to end: caller token -> on-behalf-of (both modes) -> ``api``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest
from demo_apps import gateway
from demo_apps._settings import DemoSettings, OboMode

from ._support import GATEWAY, GATEWAY_AUDIENCE, Demo, bearer


@asynccontextmanager
async def gateway_client(demo: Demo, mode: OboMode) -> AsyncIterator[httpx.AsyncClient]:
    app = gateway.create_app(
        DemoSettings.for_demo("gateway", obo_mode=mode),
        http_client=demo.op_http,
        api_client=demo.api_http,
    )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=GATEWAY) as client:
        yield client


@pytest.mark.parametrize(
    "mode",
    [
        pytest.param("token-exchange", id="rfc8693-token-exchange"),
        pytest.param("entra", id="entra-on-behalf-of"),
    ],
)
async def test_summary_answers_both_identities(demo: Demo, mode: OboMode) -> None:
    token = demo.token("read:summary", sub="bob", audience=GATEWAY_AUDIENCE)
    async with gateway_client(demo, mode) as client:
        response = await client.get("/api/summary", headers=bearer(token))
        again = await client.get("/api/summary", headers=bearer(token))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["sub"] == "bob"
    assert body["act"] == {"sub": "gateway"}
    assert body["obo_mode"] == mode
    assert body["caller"] == {"sub": "bob", "client_id": "webapp", "scopes": ["read:summary"]}
    downstream = body["downstream"]
    assert downstream["sub"] == "bob"  # the API sees the user...
    assert downstream["client_id"] == "gateway"  # ...through the gateway
    assert downstream["scopes"] == ["read:messages"]
    assert downstream["messages"]
    if mode == "token-exchange":
        assert downstream["act"] == {"sub": "gateway"}  # RFC 8693 section 4.1
    else:
        assert downstream["act"] is None  # Entra's OBO tokens carry no act claim
    assert again.json()["downstream"]["sub"] == "bob"


@pytest.mark.parametrize(
    ("scopes", "audience", "status", "error"),
    [
        pytest.param(None, None, 401, None, id="no-token"),
        pytest.param(["read:messages"], GATEWAY_AUDIENCE, 403, "insufficient_scope", id="no-scope"),
        pytest.param(
            ["read:summary"], "http://127.0.0.1:8001/api", 401, "invalid_token",
            id="token-for-the-api-not-the-gateway",
        ),
    ],
)  # fmt: skip
async def test_caller_token_is_checked_first(
    demo: Demo, scopes: list[str] | None, audience: str | None, status: int, error: str | None
) -> None:
    headers = bearer(demo.token(*scopes, audience=audience or "")) if scopes is not None else {}
    async with gateway_client(demo, "token-exchange") as client:
        response = await client.get("/api/summary", headers=headers)
    assert response.status_code == status
    challenge = response.headers["www-authenticate"]
    assert (error is None and "error=" not in challenge) or f'error="{error}"' in challenge


async def test_unknown_subject_token_is_a_502(demo: Demo) -> None:
    """A token the provider no longer knows cannot be exchanged (RFC 8693 section 2.2.2)."""
    token = demo.token("read:summary", audience=GATEWAY_AUDIENCE)
    demo.provider.state.tokens.clear()  # the provider forgot every token (e.g. restarted)
    async with gateway_client(demo, "token-exchange") as client:
        response = await client.get("/api/summary", headers=bearer(token))
    assert response.status_code == 502
    assert response.json() == {"detail": "token exchange refused: invalid_request"}
