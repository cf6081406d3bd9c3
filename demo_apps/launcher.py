"""``python -m demo_apps``: the development provider and every web demo in one process.

Binds every port first (a busy port is one clear line, exit code 2), then serves all apps with
uvicorn on one event loop. Ctrl-C or SIGTERM stops every server; nothing is left running.
``--port-offset N`` moves every port by N (the provider's clients follow), for a machine where
8000-8003 or 9000 are taken.

This is the only module of ``demo_apps`` that imports ``oidc_asgi.testing``: the demos
themselves use the public API only and run against any provider.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import signal
import socket
import sys
from collections.abc import Generator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from starlette.types import ASGIApp

from demo_apps import api, gateway, spa, webapp
from demo_apps._settings import DemoName, fail, load
from oidc_asgi import ConfigurationError
from oidc_asgi.testing import DevProvider, DevProviderConfig

__all__ = ["Service", "build", "demo_environ", "main", "provider_config"]

HOST = "127.0.0.1"
PROVIDER_PORT = 9000
PORTS: Mapping[str, int] = {"webapp": 8000, "api": 8001, "gateway": 8002, "spa": 8003}
_DEMO_PORT = re.compile(r"127\.0\.0\.1:(9000|800[0-4])\b")
# Settings that name the provider's clients: the launcher's provider has its own.
_PROVIDER_SPECIFIC = ("OIDC_CLIENT_ID", "OIDC_CLIENT_SECRET")


@dataclass(frozen=True)
class Service:
    """One server of the launcher: a name, a port, the app and what it shows."""

    name: str
    port: int
    app: ASGIApp
    url: str
    what: str


def _shift(text: str, offset: int) -> str:
    return _DEMO_PORT.sub(lambda m: f"{HOST}:{int(m.group(1)) + offset}", text)


def provider_config(offset: int = 0) -> DevProviderConfig:
    """The development provider's default configuration, for ports moved by ``offset``.

    The provider answers CORS for its public clients' origins (the SPA's) by itself.

    Example::

        provider = DevProvider(provider_config())
    """
    data = DevProviderConfig.default().to_mapping()
    return DevProviderConfig.from_mapping(json.loads(_shift(json.dumps(data), offset)))


def demo_environ(
    name: DemoName, offset: int = 0, environ: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The environment demo ``name`` runs with under the launcher: URLs and ports of this run,
    the user's other settings (session store, response mode, OBO mode, ...) kept.
    """
    env = dict(os.environ if environ is None else environ)
    for variable in _PROVIDER_SPECIFIC:
        env.pop(variable, None)

    def url(port: int) -> str:
        return f"http://{HOST}:{port + offset}"

    env["OIDC_ISSUER"] = url(PROVIDER_PORT)
    env["API_URL"] = url(PORTS["api"])
    env["API_AUDIENCE"] = url(PORTS["gateway" if name == "gateway" else "api"]) + "/api"
    env["DOWNSTREAM_AUDIENCE"] = url(PORTS["api"]) + "/api"
    env["DOWNSTREAM_API_URL"] = url(PORTS["api"])
    env["SPA_ORIGIN"] = url(PORTS["spa"])
    if name in PORTS:
        env["PORT"] = str(PORTS[name] + offset)
        env["APP_BASE_URL"] = url(PORTS[name])
    return env


def build(offset: int = 0, environ: Mapping[str, str] | None = None) -> list[Service]:
    """Every service of the one-command demo (raises ``ConfigurationError`` for a bad setting).

    Example::

        services = build(offset=0)
    """
    config = provider_config(offset)
    provider = DevProvider(config)
    services = [Service("provider", PROVIDER_PORT + offset, provider, config.issuer, "provider")]
    factories: dict[DemoName, Any] = {
        "webapp": webapp.create_app,
        "api": api.create_app,
        "gateway": gateway.create_app,
        "spa": spa.create_app,
    }
    texts = {
        "webapp": "web sign-in; web app calling the API   <- start here",
        "api": "the protected API (resource server)",
        "gateway": "API calling an API (on-behalf-of)",
        "spa": "single-page app calling the API",
    }
    for name, factory in factories.items():
        settings = load(name, [], demo_environ(name, offset, environ))
        port = settings.port
        url = f"http://{HOST}:{port}" + {"api": "/api/public", "gateway": "/api/summary"}.get(
            name, ""
        )
        services.append(Service(name, port, factory(settings), url, texts[name]))
    return services


def _bind(port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((HOST, port))
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


def _banner(services: Sequence[Service], offset: int) -> str:
    lines = ["", "oidc-asgi demos are running. Ctrl-C stops them all.", ""]
    lines.append(f"  {'demo':9} {'URL':36} scenario")
    for service in services:
        what = "development OpenID Provider" if service.name == "provider" else service.what
        lines.append(f"  {service.name:9} {service.url:36} {what}")
    lines += ["", "Users: alice and bob (any password).", ""]
    flags = ""
    if offset:
        flags = (
            f" --oidc-issuer http://{HOST}:{PROVIDER_PORT + offset}"
            f" --api-url http://{HOST}:{PORTS['api'] + offset}"
            f" --api-audience http://{HOST}:{PORTS['api'] + offset}/api"
        )
    lines.append("Command-line demos (in another terminal, while these run):")
    lines.append(f"  python -m demo_apps.daemon{flags}   # client credentials, no user")
    lines.append(f"  python -m demo_apps.device{flags}   # device code: approve in a browser")
    lines.append(f"  python -m demo_apps.native{flags}   # loopback: sign in with your browser")
    gw = f"http://{HOST}:{PORTS['gateway'] + offset}"
    lines.append("  The gateway, with a token for it:")
    lines.append(
        f"  python -m demo_apps.device{flags.split(' --api-url')[0]} --api-url {gw}"
        f" --api-audience {gw}/api --api-scopes read:summary --api-path /api/summary"
    )
    return "\n".join(lines) + "\n"


async def _serve(services: Sequence[Service], sockets: Sequence[socket.socket], log: str) -> None:
    import uvicorn

    class Server(uvicorn.Server):
        # One handler for all servers (below); uvicorn's would keep only the last server's.
        def install_signal_handlers(self) -> None:
            return None

        @contextlib.contextmanager
        def capture_signals(self) -> Generator[None, None, None]:
            yield

    servers = [
        Server(uvicorn.Config(s.app, log_level=log, access_log=log == "info", lifespan="on"))
        for s in services
    ]
    loop = asyncio.get_running_loop()

    def stop() -> None:
        for server in servers:
            if server.should_exit:
                server.force_exit = True  # a second Ctrl-C: do not wait for open connections
            server.should_exit = True

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop)
    tasks = [
        asyncio.ensure_future(server.serve(sockets=[sock]))
        for server, sock in zip(servers, sockets, strict=True)
    ]
    while not all(server.started for server in servers):
        if any(task.done() for task in tasks):
            stop()
            break
        await asyncio.sleep(0.05)
    else:
        print(_banner(services, _offset(services)), flush=True)
    try:
        await asyncio.gather(*tasks)
    finally:
        stop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
    print("oidc-asgi demos stopped.", flush=True)


def _offset(services: Sequence[Service]) -> int:
    return services[0].port - PROVIDER_PORT


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m demo_apps [--port-offset N] [--verbose]``."""
    parser = argparse.ArgumentParser(
        prog="python -m demo_apps",
        description="Start the development OpenID Provider and every web demo.",
    )
    parser.add_argument("--port-offset", type=int, default=0, help="move every port by N")
    parser.add_argument("--verbose", action="store_true", help="log every request")
    args = parser.parse_args(argv)
    if not 0 <= args.port_offset <= 50000:
        fail("launcher", ConfigurationError("--port-offset must be 0..50000", code="bad_offset"))
    try:
        services = build(args.port_offset)
    except ConfigurationError as exc:
        fail("launcher", exc)
    sockets: list[socket.socket] = []
    try:
        for service in services:
            try:
                sockets.append(_bind(service.port))
            except OSError:
                print(
                    f"demo_apps: port {service.port} ({service.name}) is in use; stop what uses "
                    "it or pass --port-offset N",
                    file=sys.stderr,
                )
                return 2
        asyncio.run(_serve(services, sockets, "info" if args.verbose else "warning"))
    finally:
        for sock in sockets:
            sock.close()
    return 0
