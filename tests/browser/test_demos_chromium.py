"""The demos in headless Chromium, against the development provider and node-oidc-provider.

``webapp`` (query and form_post): a protected page sends the browser to the provider, the user
signs in, ``/messages`` shows the API's answer, "Sign out" ends both sessions. The app is served
on ``http://localhost:<port>`` while the providers are on ``127.0.0.1``: another site, so the
form_post is a cross-site POST. ``spa``: the page's own JavaScript signs in with PKCE and calls
the API (CORS at the provider and the API). Every server is uvicorn on a free port, in a thread.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any, Literal

import pytest
from demo_apps import api, spa, webapp
from demo_apps._settings import DemoSettings

from _services import free_port
from interop._demos import serve
from interop._node_op import NodeOP, start_node_op
from oidc_asgi.testing import DevClient, DevProvider, DevProviderConfig

from .test_chromium import CHROMIUM, CHROMIUM_ARGS, _browser

pytestmark = pytest.mark.service("chromium")

ProviderName = Literal["dev", "node"]
USER = "alice"


@dataclasses.dataclass(frozen=True)
class OP:
    """A running provider and the ports its demo clients are registered for."""

    issuer: str
    webapp_port: int
    spa_port: int


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    sync_playwright = _browser()
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture(scope="module")
def dev_op() -> Iterator[OP]:
    port, webapp_port, spa_port = free_port(), free_port(), free_port()
    issuer = f"http://127.0.0.1:{port}"
    base = DevProviderConfig.default(issuer)
    app = f"http://localhost:{webapp_port}"
    clients = (
        *(c for c in base.clients if c.client_id not in ("webapp", "spa")),
        DevClient(
            client_id="webapp",
            client_secret="webapp-secret",
            redirect_uris=(f"{app}/callback",),
            post_logout_redirect_uris=(f"{app}/logged-out",),
        ),
        DevClient(
            client_id="spa",
            token_endpoint_auth_method="none",
            redirect_uris=(f"http://127.0.0.1:{spa_port}/",),
            post_logout_redirect_uris=(f"http://127.0.0.1:{spa_port}/",),
        ),
    )
    provider = DevProvider(dataclasses.replace(base, clients=clients))
    with serve(provider, port, lifespan="off"):
        yield OP(issuer, webapp_port, spa_port)


@pytest.fixture(scope="module")
def node() -> Iterator[NodeOP]:
    yield from start_node_op()


@pytest.fixture(params=["dev", "node"])
def op(request: pytest.FixtureRequest) -> OP:
    if request.param == "dev":
        return request.getfixturevalue("dev_op")  # type: ignore[no-any-return]
    node_op: NodeOP = request.getfixturevalue("node")
    return OP(node_op.issuer, node_op.webapp_port, node_op.spa_port)


def _through_provider(page: Any, op: OP, until: str) -> None:
    """Answer the provider's pages (login, consent, logout confirmation) until ``until``."""
    for _ in range(6):
        page.wait_for_load_state()
        if page.url.startswith(until):
            return
        assert page.url.startswith(op.issuer), page.url
        with page.expect_navigation(wait_until="commit"):
            if page.locator("input[name=username]").count():  # development provider
                page.fill("input[name=username]", USER)
                page.click("button[value=login]")
            elif page.locator("input[name=login]").count():  # node devInteractions login
                page.fill("input[name=login]", USER)
                page.fill("input[name=password]", "any")
                page.click("button[type=submit]")
            elif page.locator("button[name=logout]").count():  # RP-initiated logout
                page.click("button[name=logout]")
            else:  # consent
                page.click("button[type=submit]")
    raise AssertionError(f"still at {page.url}")


def _api(op: OP, *, spa_origin: str = "http://127.0.0.1:8003") -> Any:
    return api.create_app(DemoSettings.for_demo("api", issuer=op.issuer, spa_origin=spa_origin))


@pytest.mark.parametrize("mode", ["query", "form_post"])
def test_webapp_in_chromium(
    chromium: Any, op: OP, mode: Literal["query", "form_post"], tmp_path: Path
) -> None:
    base = f"http://localhost:{op.webapp_port}"
    with ExitStack() as stack:
        api_url = stack.enter_context(serve(_api(op), free_port()))
        settings = DemoSettings.for_demo(
            "webapp",
            issuer=op.issuer,
            port=op.webapp_port,
            app_base_url=base,
            api_url=api_url,
            response_mode=mode,
        )
        stack.enter_context(serve(webapp.create_app(settings), op.webapp_port))
        context = chromium.new_context()
        stack.callback(context.close)
        page = context.new_page()
        page.set_default_timeout(8000)
        page.goto(f"{base}/messages")
        _through_provider(page, op, base)
        page.wait_for_url(f"{base}/messages")
        assert "The API answered 200" in page.inner_text("main")
        assert '"sub": "alice"' in page.inner_text("main")
        page.click("text=Sign out")
        _through_provider(page, op, base)
        page.wait_for_url(f"{base}/")
        assert "Nobody is signed in" in page.inner_text("main")
        # The provider session ended too: a protected page asks for credentials again.
        page.goto(f"{base}/profile")
        page.wait_for_load_state()
        assert page.url.startswith(op.issuer)
        assert page.locator("input[name=username], input[name=login]").count() == 1


def test_spa_in_chromium(chromium: Any, op: OP) -> None:
    spa_origin = f"http://127.0.0.1:{op.spa_port}"
    with ExitStack() as stack:
        api_url = stack.enter_context(serve(_api(op, spa_origin=spa_origin), free_port()))
        settings = DemoSettings.for_demo("spa", issuer=op.issuer, port=op.spa_port, api_url=api_url)
        stack.enter_context(serve(spa.create_app(settings), op.spa_port))
        context = chromium.new_context()
        stack.callback(context.close)
        page = context.new_page()
        page.set_default_timeout(8000)
        page.goto(f"{spa_origin}/")
        page.click("#login")
        page.wait_for_url(lambda url: url.startswith(op.issuer))
        _through_provider(page, op, spa_origin)
        page.locator("#status", has_text="Signed in as").wait_for()
        # Development provider: the name claim; node-oidc-provider's ID token has none (note 6).
        assert page.inner_text("#status") in ("Signed in as Alice Liddell.", "Signed in as alice.")
        assert page.is_hidden("#error")
        page.click("button[data-call='GET /api/messages']")
        page.locator("#answer", has_text="->").wait_for()
        answer = page.inner_text("#answer")
        assert answer.startswith("GET /api/messages -> 200"), answer
        assert '"client_id": "spa"' in answer
        assert '"sub": "alice"' in answer
