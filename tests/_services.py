"""Real services for tests (redis-server, node, chromium, uvicorn serving an app).

On a developer laptop a missing service skips the test with the reason printed; in CI (the
``CI`` environment variable is set) a missing service fails it, because ``.ci/run`` installs
every service the suite needs.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Literal, NoReturn

import pytest

if TYPE_CHECKING:
    from starlette.types import ASGIApp


def missing(service: str, why: str) -> NoReturn:
    """Skip on a laptop, fail in CI: a service the tests need must exist there."""
    message = f"{service} is not available: {why}"
    if os.environ.get("CI"):
        pytest.fail(f"{message} (required in CI; .ci/run installs it)")
    pytest.skip(message)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for_port(port: int, *, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {timeout} s")


def run_redis_server() -> Iterator[str]:
    """Start a throw-away ``redis-server`` on a free loopback port; yield its URL."""
    binary = shutil.which("redis-server")
    if binary is None:
        missing("redis-server", "install Debian's redis-server package")
    port = free_port()
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@contextmanager
def serve(app: ASGIApp, port: int, *, lifespan: Literal["on", "off"] = "on") -> Iterator[str]:
    """Serve ``app`` with uvicorn on ``127.0.0.1:port`` in a thread; yield its base URL.

    Waits only for readiness (uvicorn's ``started``); stops the server on exit.
    """
    import uvicorn

    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan=lifespan)
    )
    thread = threading.Thread(target=server.run, name=f"uvicorn-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"server on port {port} did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
