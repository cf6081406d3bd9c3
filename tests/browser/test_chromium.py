"""A full login and logout in headless Chromium, with ``query`` and with ``form_post``.

The provider (``http://127.0.0.1:<port>``) and the app (``http://localhost:<port>``) are
different *sites*, so the provider's auto-submitting form_post is a cross-site POST: the
per-login transaction cookie must be ``SameSite=None; Secure`` to come along (browsers take
``Secure`` cookies from ``localhost``). Logout is a real form POST (Origin checked), then
RP-Initiated Logout at the provider and the post-logout landing with its ``state``.
"""

from __future__ import annotations

import dataclasses
import html
import os
import shutil
from pathlib import Path
from typing import Any, Literal

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from _services import free_port, missing, serve
from oidc_asgi.signin import OIDCAuth, get_context, get_user
from oidc_asgi.testing import DevClient, DevProvider, DevProviderConfig

CHROMIUM = os.environ.get("OIDC_ASGI_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SECRET = "browser-secret-0123456789-abcdefghijklmnopqrstuvwxyz"


async def _home(request: Request) -> Response:
    ctx = get_context(request)
    who = ctx.user.sub if ctx.user else "anonymous"
    return HTMLResponse(
        f"<!doctype html><title>home</title><p id=who>{html.escape(who)}</p>"
        '<form method="post" action="/logout">'
        f'<input type="hidden" name="csrf_token" value="{html.escape(ctx.csrf_token)}">'
        '<button id="logout" type="submit">Sign out</button></form>'
    )


async def _private(request: Request) -> Response:
    user = get_user(request)
    return PlainTextResponse(f"private for {user.sub if user else '?'}")


def _app(issuer: str, base_url: str, mode: Literal["query", "form_post"]) -> ASGIApp:
    app = Starlette(routes=[Route("/", _home), Route("/private", _private)])
    auth = OIDCAuth(
        app,
        issuer=issuer,
        client_id="browser-rp",
        client_secret="browser-rp-secret",
        secrets=[SECRET],
        base_url=base_url,
        response_mode=mode,
        cookie_secure=True,
        protect=["/private"],
    )

    async def serve(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "lifespan":
            await auth(scope, receive, send)
            return
        while True:  # close the middleware's own HTTP clients on the server's loop
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            else:
                await auth.aclose()
                await send({"type": "lifespan.shutdown.complete"})
                return

    return serve


def _browser() -> Any:
    if not Path(CHROMIUM).exists() and shutil.which("chromium") is None:
        missing("chromium", "install Debian's chromium package")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        missing("playwright", "pip install playwright (the browser itself comes from Debian)")
    return sync_playwright


@pytest.mark.parametrize("mode", ["query", "form_post"])
def test_login_and_logout_in_chromium(mode: Literal["query", "form_post"], tmp_path: Path) -> None:
    sync_playwright = _browser()
    op_port, app_port = free_port(), free_port()
    issuer = f"http://127.0.0.1:{op_port}"
    base_url = f"http://localhost:{app_port}"
    base = DevProviderConfig.default(issuer)
    client = DevClient(
        client_id="browser-rp",
        client_secret="browser-rp-secret",
        redirect_uris=(f"{base_url}/callback",),
        post_logout_redirect_uris=(f"{base_url}/logged-out",),
    )
    provider = DevProvider(dataclasses.replace(base, clients=(*base.clients, client)))
    with (
        serve(provider, op_port, lifespan="off"),
        serve(_app(issuer, base_url, mode), app_port),
        sync_playwright() as pw,
    ):
        context = pw.chromium.launch_persistent_context(
            str(tmp_path / "profile"),
            executable_path=CHROMIUM,
            headless=True,
            args=CHROMIUM_ARGS,
        )
        try:
            page = context.new_page()
            page.set_default_timeout(8000)
            # A protected page sends the browser to the provider's login form.
            page.goto(f"{base_url}/private")
            assert page.url.startswith(f"{issuer}/"), page.url
            page.fill("input[name=username]", "alice")
            with page.expect_navigation(url=f"{base_url}/private"):
                page.click("button[value=login]")
            assert page.inner_text("body") == "private for alice"
            names = {c["name"] for c in context.cookies(base_url)}
            assert "oidc_session" in names
            assert not any(n.startswith("oidc_tx.") for n in names)  # removed at the callback

            # Logout: a form POST, RP-Initiated Logout at the provider, back to the app.
            page.goto(f"{base_url}/")
            assert page.inner_text("#who") == "alice"
            with page.expect_navigation(url=f"{base_url}/"):
                page.click("#logout")
            assert page.inner_text("#who") == "anonymous"
            names = {c["name"] for c in context.cookies(base_url)}
            assert not any(n.startswith("oidc_session") for n in names)
            # The provider session ended too: signing in again asks for credentials.
            page.goto(f"{base_url}/private")
            assert page.url.startswith(f"{issuer}/"), page.url
            assert page.locator("input[name=username]").count() == 1
        finally:
            context.close()
