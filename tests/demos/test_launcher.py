"""``python -m demo_apps``: starts on real ports, answers, and stops cleanly on SIGINT."""

from __future__ import annotations

import contextlib
import os
import random
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
from demo_apps.launcher import provider_config

from oidc_asgi.testing import DevProvider

ROOT = Path(__file__).resolve().parents[2]
BASES = (9000, 8000, 8001, 8002, 8003)


def _free(port: int) -> bool:
    """Nobody listens on ``port`` (connections in TIME_WAIT do not count)."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _free_offset() -> int:
    for _ in range(200):
        offset = random.randrange(100, 20000)
        if all(_free(base + offset) for base in BASES):
            return offset
    raise RuntimeError("no free port range")


def _start(offset: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "demo_apps", "--port-offset", str(offset)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_starts_answers_and_stops_on_sigint() -> None:
    offset = _free_offset()
    issuer = f"http://127.0.0.1:{9000 + offset}"
    process = _start(offset)
    try:
        deadline = time.monotonic() + 12
        discovery: httpx.Response | None = None
        with httpx.Client(trust_env=False, timeout=2) as http:
            while time.monotonic() < deadline and process.poll() is None:
                with contextlib.suppress(httpx.TransportError):
                    discovery = http.get(f"{issuer}/.well-known/openid-configuration")
                    break
                time.sleep(0.1)
            assert discovery is not None, "the provider never answered"
            assert discovery.json()["issuer"] == issuer
            home = http.get(f"http://127.0.0.1:{8000 + offset}/")
            assert home.status_code == 200
            assert "Nobody is signed in" in home.text
            login = http.get(f"http://127.0.0.1:{8000 + offset}/login")
            assert login.headers["location"].startswith(f"{issuer}/authorize?")
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, err
    assert f"webapp    http://127.0.0.1:{8000 + offset}" in out
    assert "Users: alice and bob" in out
    assert "python -m demo_apps.daemon" in out
    assert "oidc-asgi demos stopped." in out
    assert "Traceback" not in err
    assert all(_free(base + offset) for base in BASES)


def test_a_busy_port_is_one_clear_line() -> None:
    offset = _free_offset()
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 8002 + offset))
        busy.listen()
        process = _start(offset)
        _, err = process.communicate(timeout=30)
    assert process.returncode == 2
    assert err == (
        f"demo_apps: port {8002 + offset} (gateway) is in use; stop what uses it or pass "
        "--port-offset N\n"
    )
    assert all(_free(base + offset) for base in BASES)


def test_provider_config_follows_the_offset() -> None:
    config = provider_config(5)
    assert config.issuer == "http://127.0.0.1:9005"
    webapp = config.client("webapp")
    assert webapp is not None
    assert webapp.redirect_uris == ("http://127.0.0.1:8005/callback",)
    assert "http://127.0.0.1:8005/logged-out" in webapp.post_logout_redirect_uris
    assert webapp.backchannel_logout_uri == "http://127.0.0.1:8005/backchannel-logout"
    spa = config.client("spa")
    assert spa is not None
    assert spa.redirect_uris == ("http://127.0.0.1:8008/",)
    assert DevProvider(config).cors_origins() == ["http://127.0.0.1:8008"]  # the SPA, moved
    assert [api.identifier for api in config.apis][:2] == [
        "http://127.0.0.1:8006/api",
        "http://127.0.0.1:8007/api",
    ]
