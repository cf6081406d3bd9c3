"""The command-line demos: ``daemon`` (client credentials), ``device`` (RFC 8628) and ``native``
(RFC 8252 loopback), each printing the API's answer. Device polls sleep through an injected
function (no real waiting); the loopback redirect goes over a real socket on 127.0.0.1.
"""

from __future__ import annotations

import io
import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from demo_apps import daemon, device, native
from demo_apps._settings import DemoSettings

from oidc_asgi import FileTokenStorage

from ._support import GATEWAY_AUDIENCE, Demo


def answer(out: io.StringIO) -> tuple[str, dict[str, Any]]:
    """The first line the demo printed and the JSON after it."""
    text = out.getvalue()
    start = text.index("GET ")
    first, _, rest = text[start:].partition("\n")
    return first, json.loads(rest)


async def test_daemon_calls_the_api_as_itself(demo: Demo) -> None:
    out = io.StringIO()
    code = await daemon.run(
        DemoSettings.for_demo("daemon"), http_client=demo.op_http, api_client=demo.api_http, out=out
    )
    first, body = answer(out)
    assert code == 0
    assert first == "GET http://127.0.0.1:8001/api/messages -> 200"
    assert body["sub"] == "daemon"  # RFC 6749 4.4: the client acts on its own behalf
    assert body["client_id"] == "daemon"
    assert body["scopes"] == ["read:messages", "write:messages"]


async def test_daemon_with_a_wrong_secret_fails_cleanly(
    demo: Demo, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = DemoSettings.for_demo("daemon", client_secret="not-the-secret")
    code = await daemon.run(settings, http_client=demo.op_http, api_client=demo.api_http)
    assert code == 1
    err = capsys.readouterr().err
    assert err.startswith("daemon: no token: invalid_client")
    assert "not-the-secret" not in err


class Approver:
    """Stands in for the user: on the first poll, approves the printed code at the provider."""

    def __init__(self, demo: Demo, out: io.StringIO) -> None:
        self.demo = demo
        self.out = out
        self.sleeps: list[float] = []

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        if len(self.sleeps) == 1:
            code = re.search(r"enter the code (\S+)", self.out.getvalue())
            assert code is not None, self.out.getvalue()
            data = {
                "user_code": code.group(1),
                "username": "bob",
                "password": "",
                "action": "approve",
            }
            response = await self.demo.op_http.post("/device", data=data)
            assert response.status_code == 200


async def test_device_signs_in_then_reuses_the_stored_tokens(demo: Demo, tmp_path: Path) -> None:
    storage = FileTokenStorage(tmp_path / "tokens.json")
    settings = DemoSettings.for_demo("device")
    out = io.StringIO()
    approver = Approver(demo, out)
    code = await device.run(
        settings, http_client=demo.op_http, api_client=demo.api_http, storage=storage,
        sleep=approver.sleep, out=out,
    )  # fmt: skip
    assert code == 0
    assert "To sign in, open http://127.0.0.1:9000/device" in out.getvalue()
    first, body = answer(out)
    assert first == "GET http://127.0.0.1:8001/api/messages -> 200"
    assert body["sub"] == "bob"
    assert body["client_id"] == "cli"
    assert approver.sleeps == [5]
    second = io.StringIO()
    code = await device.run(
        settings, http_client=demo.op_http, api_client=demo.api_http, storage=storage,
        sleep=approver.sleep, out=second,
    )  # fmt: skip
    assert code == 0
    assert "To sign in" not in second.getvalue()  # the stored token was reused
    assert answer(second)[1]["sub"] == "bob"


async def test_device_calls_the_gateway_with_its_settings(demo: Demo, tmp_path: Path) -> None:
    """The banner's gateway command: another audience, scope and path (a token per API)."""
    from demo_apps import gateway

    app = gateway.create_app(
        DemoSettings.for_demo("gateway"), http_client=demo.op_http, api_client=demo.api_http
    )
    settings = DemoSettings.for_demo(
        "device", api_url="http://127.0.0.1:8002", api_audience=GATEWAY_AUDIENCE,
        api_scopes=("read:summary",), api_path="/api/summary",
    )  # fmt: skip
    out = io.StringIO()
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport) as gateway_http:
        code = await device.run(
            settings, http_client=demo.op_http, api_client=gateway_http,
            storage=FileTokenStorage(tmp_path / "t.json"), sleep=Approver(demo, out).sleep, out=out,
        )  # fmt: skip
    assert code == 0, out.getvalue()
    first, body = answer(out)
    assert first == "GET http://127.0.0.1:8002/api/summary -> 200"
    assert (body["sub"], body["act"]) == ("bob", {"sub": "gateway"})


class LoopbackBrowser:
    """Drives the provider's login page in-process, then calls the loopback redirect."""

    def __init__(self, demo: Demo) -> None:
        self.demo = demo
        self.redirect_uri = ""
        self.final: httpx.Response | None = None

    async def __call__(self, url: str) -> bool:
        self.redirect_uri = parse_qs(urlsplit(url).query)["redirect_uri"][0]
        async with self.demo.provider.asgi_client() as op:
            page = await op.get(url)
            tx = re.search(r'name="tx" value="([^"]+)"', page.text)
            assert tx is not None, page.text
            data = {"tx": tx.group(1), "username": "alice", "password": "", "action": "login"}
            redirect = await op.post("/login", data=data)
        assert redirect.status_code == 303
        async with httpx.AsyncClient(trust_env=False) as real:
            self.final = await real.get(redirect.headers["location"])
        return True


async def test_native_signs_in_through_the_loopback(demo: Demo, tmp_path: Path) -> None:
    browser = LoopbackBrowser(demo)
    out = io.StringIO()
    code = await native.run(
        DemoSettings.for_demo("native"), http_client=demo.op_http, api_client=demo.api_http,
        storage=FileTokenStorage(tmp_path / "tokens.json"), open_browser=browser, out=out,
    )  # fmt: skip
    assert code == 0, out.getvalue()
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+/callback", browser.redirect_uri)
    assert browser.final is not None
    assert browser.final.status_code == 200
    first, body = answer(out)
    assert first == "GET http://127.0.0.1:8001/api/messages -> 200"
    assert body["sub"] == "alice"
    assert body["client_id"] == "native"
    assert body["scopes"] == ["read:messages", "write:messages"]


async def test_native_cancelled_sign_in_fails_cleanly(
    demo: Demo, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    async def cancel(url: str) -> bool:
        async with demo.provider.asgi_client() as op:
            page = await op.get(url)
            tx = re.search(r'name="tx" value="([^"]+)"', page.text)
            assert tx is not None
            data = {"tx": tx.group(1), "username": "alice", "password": "", "action": "cancel"}
            redirect = await op.post("/login", data=data)
        async with httpx.AsyncClient(trust_env=False) as real:
            await real.get(redirect.headers["location"])
        return True

    code = await native.run(
        DemoSettings.for_demo("native"), http_client=demo.op_http, api_client=demo.api_http,
        storage=FileTokenStorage(tmp_path / "tokens.json"), open_browser=cancel,
    )  # fmt: skip
    assert code == 1
    assert capsys.readouterr().err.startswith("native: sign-in failed: access_denied")
