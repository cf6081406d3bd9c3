"""Two ``webapp`` processes sharing one real Redis (``SESSION_STORE=redis://...``).

Real processes (``python -m demo_apps.webapp`` with its environment variables) on free ports,
against a development provider served by uvicorn on a free port, and a throw-away
``redis-server``. The browser is one cookie jar (cookies do not depend on the port): it signs
in on one process and continues on the other; the provider's back-channel logout, delivered to
either process, ends the session on both (Back-Channel Logout 1.0 section 2.7).
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx
import pytest
import redis

from _services import free_port, wait_for_port
from interop._demos import serve
from oidc_asgi.testing import DevClient, DevProvider, DevProviderConfig, sign_in

pytestmark = pytest.mark.service("redis")

ROOT = Path(__file__).resolve().parents[2]
SECRET = "two-processes-share-this-session-secret-0123456789"
BROWSER = {"accept": "text/html", "sec-fetch-mode": "navigate", "sec-fetch-dest": "document"}


@contextmanager
def _webapp(port: int, issuer: str, redis_url: str) -> Iterator[str]:
    env = {
        **os.environ,
        "OIDC_ISSUER": issuer,
        "PORT": str(port),
        "SESSION_STORE": redis_url,
        "SESSION_SECRET": SECRET,
        "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "src")]),
    }
    log = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115 (closed below)
    proc = subprocess.Popen(
        [sys.executable, "-m", "demo_apps.webapp"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        try:
            wait_for_port(port, timeout=20)
        except RuntimeError:
            log.seek(0)
            raise RuntimeError(f"webapp on {port} did not start:\n{log.read()[-2000:]}") from None
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


@pytest.mark.parametrize("receiver", [0, 1], ids=["logout-via-first", "logout-via-second"])
async def test_two_processes_share_sessions_and_backchannel_logout(
    redis_url: str, receiver: int
) -> None:
    redis.Redis.from_url(redis_url).flushdb()
    ports = (free_port(), free_port())
    op_port = free_port()
    issuer = f"http://127.0.0.1:{op_port}"
    bases = tuple(f"http://127.0.0.1:{p}" for p in ports)
    base = DevProviderConfig.default(issuer)
    webapp_client = DevClient(
        client_id="webapp",
        client_secret="webapp-secret",
        redirect_uris=tuple(f"{b}/callback" for b in bases),
        post_logout_redirect_uris=tuple(f"{b}/logged-out" for b in bases),
        backchannel_logout_uri=f"{bases[receiver]}/backchannel-logout",
    )
    clients = (*(c for c in base.clients if c.client_id != "webapp"), webapp_client)
    provider = DevProvider(dataclasses.replace(base, clients=clients))
    with ExitStack() as stack:
        stack.enter_context(serve(provider, op_port, lifespan="off"))
        first = stack.enter_context(_webapp(ports[0], issuer, redis_url))
        second = stack.enter_context(_webapp(ports[1], issuer, redis_url))
        async with (
            # One browser: one cookie jar for both processes (cookies ignore the port).
            httpx.AsyncClient(base_url=first, timeout=10) as browser,
            httpx.AsyncClient(base_url=issuer, timeout=10) as op_browser,
        ):
            landed = await sign_in(browser, provider, provider_client=op_browser)
            assert landed.status_code == 200, landed.text
            # The same browser continues on the other process.
            json_accept = {"accept": "application/json"}
            profile = await browser.get(f"{second}/profile", headers=json_accept)
            assert profile.status_code == 200, profile.text
            assert profile.json()["sub"] == "alice"
            assert "Signed in as" in (await browser.get(f"{first}/", headers=BROWSER)).text

            deliveries = await provider.backchannel_logout(sub="alice")
            assert [(d.uri, d.status_code) for d in deliveries] == [
                (f"{bases[receiver]}/backchannel-logout", 200)
            ]
            for app in (first, second):
                after = await browser.get(f"{app}/", headers=BROWSER)
                assert "Nobody is signed in" in after.text, app
                gone = await browser.get(f"{app}/profile", headers=json_accept)
                assert gone.status_code == 401, app
