"""The ``webapp`` demo: sign-in (query and form_post), pages, logout."""

from __future__ import annotations

import json
import re
import warnings
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from demo_apps import webapp
from demo_apps._settings import DemoSettings

from oidc_asgi.signin import SignInWarning
from oidc_asgi.testing import sign_in

from ._support import API_AUDIENCE, ISSUER, WEBAPP, Demo

BROWSER = {"accept": "text/html", "sec-fetch-mode": "navigate", "sec-fetch-dest": "document"}


@asynccontextmanager
async def browser(demo: Demo, **settings: Any) -> AsyncIterator[httpx.AsyncClient]:
    """A cookie-keeping client of a fresh webapp wired to the provider and the API."""
    app = webapp.create_app(
        DemoSettings.for_demo("webapp", **settings),
        http_client=demo.op_http,
        api_client=demo.api_http,
    )
    transport = httpx.ASGITransport(app=app)
    async with (
        httpx.AsyncClient(transport=transport, base_url=WEBAPP) as client,
        httpx.AsyncClient(transport=transport, base_url=WEBAPP) as backchannel,
    ):
        demo.provider.backchannel_client = backchannel  # logout tokens reach this app
        yield client


async def test_home_is_public(demo: Demo) -> None:
    async with browser(demo) as client:
        response = await client.get("/", headers=BROWSER)
    assert response.status_code == 200
    assert "Nobody is signed in" in response.text
    assert 'href="/login"' in response.text
    assert "<script" not in response.text
    assert "http" not in response.text.split("<main>")[0]


@pytest.mark.parametrize(
    "mode", [pytest.param("query", id="query"), pytest.param("form_post", id="form-post")]
)
async def test_sign_in_then_pages(demo: Demo, mode: str) -> None:
    async with browser(demo, response_mode=mode) as client:
        landed = await sign_in(client, demo.provider, start="/login?return_to=/profile")
        assert landed.status_code == 200, landed.text
        assert landed.url.path == "/profile"
        home = await client.get("/", headers=BROWSER)
        assert "Signed in as <b>Alice Liddell</b>" in home.text
        assert 'action="/logout"' in home.text
        page = await client.get("/profile", headers=BROWSER)
        claims = (await client.get("/profile", headers={"accept": "application/json"})).json()
    assert "Alice Liddell" in page.text
    assert page.headers["content-type"].startswith("text/html")
    assert claims["sub"] == "alice"
    assert claims["iss"] == ISSUER
    assert claims["aud"] == "webapp"
    assert claims["email"] == "alice@example.com"


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        pytest.param(BROWSER, 302, id="browser-is-sent-to-sign-in"),
        pytest.param({"accept": "application/json"}, 401, id="api-client-gets-401"),
    ],
)
async def test_profile_needs_sign_in(demo: Demo, headers: dict[str, str], status: int) -> None:
    async with browser(demo) as client:
        response = await client.get("/profile", headers=headers)
    assert response.status_code == status
    if status == 302:
        assert response.headers["location"].startswith(f"{ISSUER}/authorize?")


async def test_logout_ends_both_sessions(demo: Demo) -> None:
    async with browser(demo) as client, demo.provider.asgi_client() as op_browser:
        await sign_in(client, demo.provider, provider_client=op_browser)
        home = await client.get("/", headers=BROWSER)
        match = re.search(r'name="csrf_token" value="([^"]+)"', home.text)
        assert match is not None
        bye = await client.post("/logout", data={"csrf_token": match.group(1)})
        assert bye.status_code == 303
        location = bye.headers["location"]
        assert location.startswith(f"{ISSUER}/logout?")  # RP-Initiated Logout 1.0
        back = await op_browser.get(location)
        assert back.status_code == 303
        assert back.headers["location"].startswith(f"{WEBAPP}/logged-out?state=")
        landing = await client.get(back.headers["location"])
        assert landing.headers["location"] == f"{WEBAPP}/"
        after = await client.get("/", headers=BROWSER)
    assert "Nobody is signed in" in after.text
    assert not demo.provider.state.sessions


async def test_logout_without_csrf_token_is_refused(demo: Demo) -> None:
    async with browser(demo) as client:
        await sign_in(client, demo.provider)
        response = await client.post("/logout", data={})
        still = await client.get("/", headers=BROWSER)
    assert response.status_code == 403
    assert "Signed in as" in still.text


@pytest.mark.parametrize(
    "store", [pytest.param("memory", id="memory-store"), pytest.param("cookie", id="cookie-store")]
)
async def test_messages_calls_the_api_with_the_users_token(demo: Demo, store: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SignInWarning)  # cookie sessions may span two cookies
        async with browser(demo, session_store=store) as client:
            await sign_in(client, demo.provider, username="bob")
            data = (await client.get("/messages", headers={"accept": "application/json"})).json()
            page = await client.get("/messages", headers=BROWSER)
    assert data["sub"] == "bob"
    assert data["client_id"] == "webapp"
    assert data["scopes"] == ["read:messages", "write:messages"]
    assert data["messages"][0]["from"] == "oidc-asgi"
    assert page.status_code == 200
    assert "The API answered <b>200</b>" in page.text


async def test_sign_in_asks_for_offline_access_and_the_api(demo: Demo) -> None:
    """A refresh token (to renew the API token) bound to the API as resource (RFC 8707)."""
    async with browser(demo) as client:
        await sign_in(client, demo.provider)
    grants = [g for g in demo.provider.state.grants.values() if g.client_id == "webapp"]
    assert len(grants) == 1
    assert "offline_access" in grants[0].scope
    assert grants[0].resources == ("http://127.0.0.1:8001/api",)
    assert any(
        t.kind == "refresh_token" and t.grant_id == grants[0].id
        for t in demo.provider.state.tokens.values()
    )


@pytest.mark.parametrize(
    "store", [pytest.param("memory", id="memory-store"), pytest.param("cookie", id="cookie-store")]
)
async def test_backchannel_logout_ends_the_session(demo: Demo, store: str) -> None:
    """Back-Channel Logout 1.0 section 2.7: the provider's logout token ends the session."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SignInWarning)  # cookie sessions may span two cookies
        async with browser(demo, session_store=store) as client:
            await sign_in(client, demo.provider)
            assert "Signed in as" in (await client.get("/", headers=BROWSER)).text
            deliveries = await demo.provider.backchannel_logout(sub="alice")
            after = await client.get("/", headers=BROWSER)
            profile = await client.get("/profile", headers={"accept": "application/json"})
    assert [d.status_code for d in deliveries] == [200]
    assert deliveries[0].uri == f"{WEBAPP}/backchannel-logout"
    assert "Nobody is signed in" in after.text
    assert profile.status_code == 401


async def test_backchannel_logout_refuses_garbage(demo: Demo) -> None:
    async with browser(demo) as client:
        response = await client.post("/backchannel-logout", data={"logout_token": "x.y.z"})
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


async def test_sign_in_names_the_api_at_both_endpoints_rfc8707_2_2(demo: Demo) -> None:
    """The API is named as ``resource`` at /authorize and again when the code is redeemed, so
    the first access token (no refresh) is a JWT whose ``aud`` is the API."""
    token_requests: list[dict[str, list[str]]] = []
    token_answers: list[dict[str, Any]] = []

    async def on_request(request: httpx.Request) -> None:
        if request.url.path == "/token":
            token_requests.append(parse_qs((await request.aread()).decode()))

    async def on_response(response: httpx.Response) -> None:
        if response.request.url.path == "/token":
            token_answers.append(json.loads(await response.aread()))

    hooks = {"request": [on_request], "response": [on_response]}
    async with (
        demo.provider.asgi_client(event_hooks=hooks) as watched,
        demo.provider.asgi_client() as op_browser,
    ):
        app = webapp.create_app(
            DemoSettings.for_demo("webapp"), http_client=watched, api_client=demo.api_http
        )
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=WEBAPP) as client:
            start = await client.get("/login")
            authorize = parse_qs(urlsplit(start.headers["location"]).query)
            await sign_in(client, demo.provider, provider_client=op_browser)
            data = (await client.get("/messages", headers={"accept": "application/json"})).json()
    assert authorize["resource"] == [API_AUDIENCE]
    assert "audience" not in authorize
    assert [r["grant_type"] for r in token_requests] == [["authorization_code"]]  # no refresh
    assert token_requests[0]["resource"] == [API_AUDIENCE]
    claims = demo.provider.verify_jwt(token_answers[0]["access_token"], typ="at+jwt")
    assert claims["aud"] == API_AUDIENCE
    assert claims["scope"] == "read:messages write:messages"
    assert data["sub"] == "alice"
