"""The ``webapp`` demo: sign-in (query and form_post), pages, logout."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest

from demo_apps import webapp
from demo_apps._settings import DemoSettings
from oidc_asgi.testing import sign_in

from ._support import ISSUER, WEBAPP, Demo

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
    assert "<script" not in response.text and "http" not in response.text.split("<main>")[0]


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
