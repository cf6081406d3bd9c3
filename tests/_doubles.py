"""Small test doubles shared by the tests: settable clocks, a counting provider wrapper."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.types import ASGIApp, Receive, Scope, Send

T0 = 1_700_000_000.0


@dataclass
class Clock:
    """A clock the test sets (``clock.now += 30``) instead of sleeping."""

    now: float = T0

    def __call__(self) -> float:
        return self.now


class StepClock:
    """A settable clock: ``clock.advance(seconds)`` instead of sleeping."""

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self.value = start

    def __call__(self) -> float:
        return self.value

    def advance(self, seconds: float) -> None:
        self.value += seconds


class CountingApp:
    """Passes requests to the provider, counting those that reach its token endpoint."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.token_requests = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == "/token":
            self.token_requests += 1
        await self.app(scope, receive, send)
