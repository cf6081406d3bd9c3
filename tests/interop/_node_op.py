"""Starting node-oidc-provider (npm ``oidc-provider``, OpenID Certified) for the interop tests.

``node_op`` starts ``tests/interop/node_op/server.mjs`` once per test session on a free
127.0.0.1 port, with the settings the tests need (the exact redirect URIs, a back-channel logout
receiver, the ``private_key_jwt`` client's public key) and stops it at the end. Without ``node``
or ``npm ci --prefix tests/interop/node_op`` the tests skip with the reason on a laptop and fail
in CI (``missing()``).
"""

from __future__ import annotations

import json
import queue
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from cryptography.hazmat.primitives.asymmetric import ec
from joserfc.jwk import ECKey

from _services import free_port, missing

NODE_OP_DIR = Path(__file__).parent / "node_op"
READY_TIMEOUT = 20.0
# Printable ASCII only (VSCHAR, RFC 6749 Appendix A.2), but every character that form-urlencoding
# (RFC 6749 2.3.1) changes: a client that skips it is refused ("%~" is no valid escape).
WEB_SECRET = 's3cret: with/special+chars&=%~"?#'

API = "http://127.0.0.1:8001/api"
GATEWAY = "http://127.0.0.1:8002/api"
OPAQUE_API = "http://127.0.0.1:8004/api"  # opaque access tokens (introspection)


class LogoutReceiver:
    """A real back-channel logout endpoint on 127.0.0.1: keeps every ``logout_token`` posted."""

    def __init__(self) -> None:
        self.tokens: queue.Queue[str] = queue.Queue()
        received = self.tokens

        class _Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                form = parse_qs(self.rfile.read(length).decode("ascii"))
                for token in form.get("logout_token", []):
                    received.put(token)
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass  # keep pytest output clean

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/backchannel-logout"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@dataclass(frozen=True, kw_only=True)
class NodeOP:
    """A running node-oidc-provider and what the tests registered in it.

    Clients: ``web`` (``client_secret_basic`` with ``web_secret``, exact ``redirect_uris``,
    back-channel logout to ``logout_receiver``), ``pkjwt`` (``private_key_jwt`` with
    ``pkjwt_key``, client credentials), ``native`` (public, loopback any port, device flow),
    ``daemon`` / ``daemon-secret`` (client credentials), ``gateway`` / ``gateway-secret``
    (RFC 8693 token exchange), ``messages-api`` / ``messages-api-secret`` (introspection).
    The demos' clients (``demo_apps``): ``webapp`` (redirects to ``127.0.0.1`` and
    ``localhost`` on ``webapp_port``, back-channel logout to ``127.0.0.1:webapp_port``),
    ``spa`` (public, redirect ``http://127.0.0.1:<spa_port>/``), ``cli`` (device code); the
    ``native``, ``daemon`` and ``gateway`` clients above. Resource servers: ``API`` and
    ``GATEWAY``, JWT access tokens.
    """

    issuer: str
    web_secret: str
    redirect_uris: tuple[str, ...]
    signin_port: int
    post_logout_redirect_uri: str
    pkjwt_key: dict[str, Any]
    logout_receiver: LogoutReceiver
    webapp_port: int
    spa_port: int


def _wait_ready(proc: subprocess.Popen[str], timeout: float) -> str:
    stdout = proc.stdout
    assert stdout is not None
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: lines.put(stdout.readline()), daemon=True).start()
    try:
        line = lines.get(timeout=timeout)
    except queue.Empty:
        line = ""
    return line.strip()


def start_node_op() -> Iterator[NodeOP]:
    """Start node-oidc-provider on a free 127.0.0.1 port; yield it; stop it."""
    node = shutil.which("node")
    if node is None:
        missing("node", "install Node.js >= 20.18")
    if not (NODE_OP_DIR / "node_modules" / "oidc-provider").is_dir():
        missing("node-oidc-provider", "run `npm ci --prefix tests/interop/node_op`")
    port = free_port()
    issuer = f"http://127.0.0.1:{port}"
    callback_port, signin_port = free_port(), free_port()
    webapp_port, spa_port = free_port(), free_port()
    webapps = [f"http://{host}:{webapp_port}" for host in ("127.0.0.1", "localhost")]
    redirect_uris = (
        f"http://127.0.0.1:{callback_port}/callback",
        f"http://127.0.0.1:{signin_port}/callback",
    )
    post_logout = f"http://127.0.0.1:{callback_port}/signed-out"
    pkjwt_key = ECKey.import_key(ec.generate_private_key(ec.SECP256R1())).as_dict(
        private=True, kid="pkjwt-1", alg="ES256", use="sig"
    )
    public_jwk = {k: v for k, v in pkjwt_key.items() if k != "d"}
    receiver = LogoutReceiver()
    settings = {
        "web_secret": WEB_SECRET,
        "web_redirect_uris": list(redirect_uris),
        "web_post_logout_redirect_uris": [
            post_logout,
            f"http://127.0.0.1:{signin_port}/logged-out",
        ],
        "web_backchannel_logout_uri": receiver.url,
        "pkjwt_jwks": {"keys": [public_jwk]},
        "webapp_redirect_uris": [f"{base}/callback" for base in webapps],
        "webapp_post_logout_redirect_uris": [f"{base}/logged-out" for base in webapps],
        "webapp_backchannel_logout_uri": f"{webapps[0]}/backchannel-logout",
        "spa_redirect_uris": [f"http://127.0.0.1:{spa_port}/"],
    }
    stderr = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115 (closed below)
    proc = subprocess.Popen(
        [node, "server.mjs", str(port), json.dumps(settings)],
        cwd=NODE_OP_DIR,
        stdout=subprocess.PIPE,
        stderr=stderr,
        text=True,
    )
    try:
        line = _wait_ready(proc, READY_TIMEOUT)
        if line != f"READY {issuer}":
            proc.kill()
            proc.wait()
            stderr.seek(0)
            raise RuntimeError(
                f"node-oidc-provider did not start within {READY_TIMEOUT} s "
                f"(stdout {line!r}); stderr:\n{stderr.read()[-3000:]}"
            )
        yield NodeOP(
            issuer=issuer,
            web_secret=WEB_SECRET,
            redirect_uris=redirect_uris,
            signin_port=signin_port,
            post_logout_redirect_uri=post_logout,
            pkjwt_key=pkjwt_key,
            logout_receiver=receiver,
            webapp_port=webapp_port,
            spa_port=spa_port,
        )
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
        stderr.close()
        receiver.close()
