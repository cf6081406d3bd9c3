"""Every demo (``demo_apps``) against node-oidc-provider, an OpenID Certified provider.

Issue 8: "Every demo works against both providers". The demos are built by their factories with
node-oidc-provider as the issuer; the API and the gateway run in-process (``httpx.ASGITransport``)
with real HTTP to the provider; the webapp runs under uvicorn on the port registered for it, so
the provider's back-channel logout reaches it. The user's side is ``Browser``.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlencode

import httpx
import pytest
from demo_apps import api, daemon, device, gateway, native, webapp

from _services import free_port
from oidc_asgi import FileTokenStorage
from oidc_asgi.client import OAuthClient

from ._browser import Browser
from ._demos import node_settings, serve, user_token
from ._node_op import API, GATEWAY, NodeOP

pytestmark = pytest.mark.service("node")

API_URL = "http://127.0.0.1:8001"
GATEWAY_URL = "http://127.0.0.1:8002"
BROWSER = {"accept": "text/html", "sec-fetch-mode": "navigate", "sec-fetch-dest": "document"}


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=10) as client:
        yield client


@pytest.fixture
async def api_http(node_op: NodeOP, http: httpx.AsyncClient) -> AsyncIterator[httpx.AsyncClient]:
    """The ``api`` demo in-process, validating node-oidc-provider's tokens."""
    app = api.create_app(node_settings(node_op, "api"), http_client=http)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=API_URL) as client:
        yield client


def _answer(out: io.StringIO) -> tuple[str, dict[str, Any]]:
    text = out.getvalue()
    first, _, rest = text[text.index("GET ") :].partition("\n")
    return first, json.loads(rest)


async def _daemon_token(http: httpx.AsyncClient, node_op: NodeOP, **targets: str) -> str:
    client = OAuthClient(
        client_id="daemon",
        client_secret="daemon-secret",
        token_endpoint=f"{node_op.issuer}/token",
        http_client=http,
    )
    return (await client.client_credentials(scope="read:messages", **targets)).access_token


# --------------------------------------------------------------------------- api


@pytest.mark.parametrize(
    ("targets", "status"),
    [
        pytest.param({"resource": API}, 200, id="jwt-for-the-api"),
        pytest.param({}, 401, id="opaque-token-without-resource"),
        pytest.param({"resource": GATEWAY}, 401, id="jwt-for-another-api"),
    ],
)
async def test_api_demo_accepts_only_jwts_for_itself_rfc9068_4(
    node_op: NodeOP,
    http: httpx.AsyncClient,
    api_http: httpx.AsyncClient,
    targets: dict[str, str],
    status: int,
) -> None:
    token = await _daemon_token(http, node_op, **targets)
    answer = await api_http.get("/api/private", headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == status, answer.text
    if status == 200:
        assert answer.json()["sub"] == "daemon"
        assert answer.json()["client_id"] == "daemon"
    else:
        assert 'error="invalid_token"' in answer.headers["www-authenticate"]


# --------------------------------------------------------------------------- daemon, gateway


async def test_daemon_demo_calls_the_api(
    node_op: NodeOP, http: httpx.AsyncClient, api_http: httpx.AsyncClient
) -> None:
    out = io.StringIO()
    code = await daemon.run(
        node_settings(node_op, "daemon"), http_client=http, api_client=api_http, out=out
    )
    first, body = _answer(out)
    assert code == 0, out.getvalue()
    assert first == f"GET {API_URL}/api/messages -> 200"
    assert body["sub"] == "daemon"
    assert body["scopes"] == ["read:messages", "write:messages"]


async def test_gateway_demo_exchanges_the_users_token_rfc8693(
    node_op: NodeOP, http: httpx.AsyncClient, api_http: httpx.AsyncClient
) -> None:
    token = await user_token(node_op, http, user="mona", resource=GATEWAY, scope="read:summary")
    app = gateway.create_app(
        node_settings(node_op, "gateway"), http_client=http, api_client=api_http
    )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=GATEWAY_URL) as client:
        answer = await client.get("/api/summary", headers={"Authorization": f"Bearer {token}"})
        refused = await client.get(
            "/api/summary",
            headers={"Authorization": f"Bearer {await _daemon_token(http, node_op, resource=API)}"},
        )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["sub"] == "mona"
    assert body["act"] == {"sub": "gateway"}  # RFC 8693 section 4.1
    assert body["caller"]["scopes"] == ["read:summary"]
    assert body["downstream"]["sub"] == "mona"
    assert body["downstream"]["scopes"] == ["read:messages"]
    assert refused.status_code == 401  # a token for the API is not one for the gateway


# --------------------------------------------------------------------------- CLI demos


async def test_device_demo_signs_in_on_the_device_pages_rfc8628(
    node_op: NodeOP, http: httpx.AsyncClient, api_http: httpx.AsyncClient, tmp_path: Path
) -> None:
    out = io.StringIO()
    waits: list[float] = []

    async def approve_on_first_wait(seconds: float) -> None:
        waits.append(seconds)
        if len(waits) == 1:
            printed = out.getvalue()
            code = re.search(r"enter the code (\S+)", printed)
            url = re.search(r"(http://\S+/device)\b", printed)
            assert code is not None, printed
            assert url is not None, printed
            browser = Browser(http, user="nina", user_code=code.group(1))
            outcome = await browser.run(url.group(1))
            assert outcome.title == "Sign-in Success", browser.pages

    code = await device.run(
        node_settings(node_op, "device"),
        http_client=http,
        api_client=api_http,
        storage=FileTokenStorage(tmp_path / "tokens.json"),
        sleep=approve_on_first_wait,
        out=out,
    )
    assert code == 0, out.getvalue()
    assert waits == [5.0]  # RFC 8628 3.5 default interval (note 13)
    first, body = _answer(out)
    assert first == f"GET {API_URL}/api/messages -> 200"
    assert body["sub"] == "nina"
    assert body["client_id"] == "cli"


async def test_native_demo_signs_in_with_a_loopback_redirect_rfc8252(
    node_op: NodeOP, http: httpx.AsyncClient, api_http: httpx.AsyncClient, tmp_path: Path
) -> None:
    out = io.StringIO()
    browsers: list[Browser] = []

    async def open_browser(url: str) -> bool:
        browsers.append(Browser(http, user="omar"))
        outcome = await browsers[0].run(url)  # ends at the demo's own loopback listener
        return outcome.params is None

    code = await native.run(
        node_settings(node_op, "native", port=0),
        http_client=http,
        api_client=api_http,
        storage=FileTokenStorage(tmp_path / "tokens.json"),
        open_browser=open_browser,
        out=out,
    )
    assert code == 0, out.getvalue()
    first, body = _answer(out)
    assert first == f"GET {API_URL}/api/messages -> 200"
    assert body["sub"] == "omar"
    assert body["client_id"] == "native"


# --------------------------------------------------------------------------- webapp


def _csrf(page: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert match is not None, page
    return match.group(1)


async def _webapp_sign_in(http: httpx.AsyncClient, base: str, user: str) -> Browser:
    start = await http.get(f"{base}/login?return_to=/messages", headers=BROWSER)
    assert start.status_code in (302, 303), start.text
    browser = Browser(http, user=user)
    answer = await browser.run(start.headers["location"], until=f"{base}/callback")
    assert answer.params is not None, browser.pages
    assert answer.params["iss"] == start.headers["location"].split("/auth?")[0]  # RFC 9207
    if answer.method == "POST":
        callback = await http.post(f"{base}/callback", data=answer.params)
    else:
        callback = await http.get(f"{base}/callback?{urlencode(answer.params)}")
    assert callback.status_code == 303, callback.text
    assert callback.headers["location"] == f"{base}/messages"
    return browser


@pytest.mark.parametrize("mode", ["query", "form_post"])
async def test_webapp_demo_signs_in_calls_the_api_and_logs_out(
    node_op: NodeOP, mode: Literal["query", "form_post"]
) -> None:
    api_app = api.create_app(node_settings(node_op, "api"))
    base = f"http://127.0.0.1:{node_op.webapp_port}"
    with serve(api_app, free_port()) as api_url:
        settings = node_settings(
            node_op, "webapp", port=node_op.webapp_port, api_url=api_url, response_mode=mode
        )
        with serve(webapp.create_app(settings), node_op.webapp_port):
            async with httpx.AsyncClient(timeout=10) as http:
                browser = await _webapp_sign_in(http, base, "pia")
                messages = await http.get(
                    f"{base}/messages", headers={"accept": "application/json"}
                )
                home = await http.get(f"{base}/", headers=BROWSER)
                bye = await http.post(f"{base}/logout", data={"csrf_token": _csrf(home.text)})
                assert bye.status_code == 303
                assert bye.headers["location"].startswith(f"{node_op.issuer}/session/end?")
                landing = await browser.run(bye.headers["location"], until=f"{base}/logged-out")
                assert landing.params is not None, browser.pages
                assert "200 Logout Request" in browser.pages  # confirmed at the provider
                back = await http.get(f"{base}/logged-out?{urlencode(landing.params)}")
                after = await http.get(f"{base}/", headers=BROWSER)
    assert messages.status_code == 200, messages.text
    body = messages.json()
    assert body["sub"] == "pia"
    assert body["client_id"] == "webapp"
    assert body["scopes"] == ["read:messages", "write:messages"]
    assert "Signed in as" in home.text
    assert back.status_code == 303
    assert "Nobody is signed in" in after.text


async def test_webapp_demo_backchannel_logout_ends_the_session(node_op: NodeOP) -> None:
    """Back-Channel Logout 1.0 section 2.5: signing out at the provider (not through the app)
    makes it post a logout token to the webapp, which ends the session (note 10)."""
    base = f"http://127.0.0.1:{node_op.webapp_port}"
    settings = node_settings(node_op, "webapp", port=node_op.webapp_port)
    with serve(webapp.create_app(settings), node_op.webapp_port):
        async with httpx.AsyncClient(timeout=10) as http:
            browser = await _webapp_sign_in(http, base, "quinn")
            before = await http.get(f"{base}/", headers=BROWSER)
            # The user ends the provider session directly (another tab, another app).
            outcome = await browser.run(f"{node_op.issuer}/session/end")
            assert outcome.params is None, browser.pages
            after = await http.get(f"{base}/", headers=BROWSER)
            profile = await http.get(f"{base}/profile", headers={"accept": "application/json"})
    assert "Signed in as" in before.text
    assert "Nobody is signed in" in after.text
    assert profile.status_code == 401
