"""Helpers shared by the bearer tests."""

from __future__ import annotations

from collections import Counter
from collections.abc import MutableMapping, Sequence
from typing import Any

import httpx

from _doubles import StepClock

API = "http://127.0.0.1:8001/api"
OTHER_API = "http://127.0.0.1:8002/api"
START = 1_800_000_000.0
Clock = StepClock  # the settable clock these tests call ``Clock``


class CountingTransport(httpx.AsyncBaseTransport):
    """Forwards to the provider in-process, counting requests per path; ``down`` fails them.

    Fault injection only: ``down = "503"`` answers 503, ``down = "connect"`` raises a connect
    error, like a provider that is unreachable.
    """

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.calls: Counter[str] = Counter()
        self.down: str | None = None

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.calls[request.url.path] += 1
        if self.down == "503":
            return httpx.Response(503, headers={"Retry-After": "7"})
        if self.down == "connect":
            raise httpx.ConnectError("down", request=request)
        return await self.inner.handle_async_request(request)

    @property
    def total(self) -> int:
        return sum(self.calls.values())


def http_scope(
    headers: Sequence[tuple[str, str]] = (), *, method: str = "GET", path: str = "/"
) -> dict[str, Any]:
    """A minimal ASGI HTTP scope with these headers."""
    return {
        "type": "http",
        "method": method,
        "scheme": "https",
        "server": ("api.example.com", 443),
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(n.lower().encode("latin-1"), v.encode("latin-1")) for n, v in headers],
    }


def bearer(token: str) -> list[tuple[str, str]]:
    return [("Authorization", f"Bearer {token}")]


async def ws_session(app: Any, headers: dict[str, str]) -> list[MutableMapping[str, Any]]:
    """Drive one WebSocket connection in-process; return what the app sent."""
    scope = {
        "type": "websocket",
        "asgi": {"version": "3.0"},
        "scheme": "wss",
        "server": ("api.example.com", 443),
        "path": "/ws",
        "raw_path": b"/ws",
        "query_string": b"",
        "root_path": "",
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        "subprotocols": [],
    }
    inbox: list[MutableMapping[str, Any]] = [{"type": "websocket.connect"}]
    sent: list[MutableMapping[str, Any]] = []

    async def receive() -> MutableMapping[str, Any]:
        return inbox.pop(0) if inbox else {"type": "websocket.disconnect", "code": 1000}

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    return sent
