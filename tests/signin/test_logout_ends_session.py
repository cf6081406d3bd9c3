"""Logout ends the session on the server too: a cookie copied before logout (or re-sent by a
request that was still running) is anonymous afterwards, for cookie and server sessions."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from oidc_asgi.sessions import MemoryStore, RedisSharedState
from oidc_asgi.sessions.redis import RedisStore
from oidc_asgi.sessions.revocation import MemorySharedState

from ._support import APP, Harness

SAME_ORIGIN = {"origin": APP}
LOGOUTS = [
    pytest.param({"idp_logout": False}, id="local-logout"),
    pytest.param({}, id="rp-initiated-logout"),
]


@pytest.fixture(params=["cookie-memory-state", "cookie-redis-state", "memory-store", "redis-store"])
async def backend(request: pytest.FixtureRequest) -> AsyncIterator[dict[str, Any]]:
    """Settings for one session backend (cookie sessions with each shared state, or a store)."""
    if request.param == "cookie-memory-state":
        yield {"shared_state": MemorySharedState(now=request.getfixturevalue("clock"))}
        return
    if request.param == "memory-store":
        yield {"session_store": MemoryStore(now=request.getfixturevalue("clock"))}
        return
    redis_url: str = request.getfixturevalue("redis_url")
    prefix = f"t{time.monotonic_ns()}:"
    closer: RedisSharedState | RedisStore
    if request.param == "cookie-redis-state":
        closer = RedisSharedState(url=redis_url, prefix=prefix)
        yield {"shared_state": closer}
    else:
        closer = RedisStore(url=redis_url, prefix=prefix)
        yield {"session_store": closer}
    await closer.aclose()


def _copy(client: httpx.AsyncClient, harness: Harness, app: Any) -> httpx.AsyncClient:
    other = harness.client(app)
    other.cookies.update(client.cookies)
    return other


@pytest.mark.parametrize("logout", LOGOUTS)
async def test_a_cookie_captured_before_logout_is_anonymous_after_it(
    harness: Harness, backend: dict[str, Any], logout: dict[str, Any]
) -> None:
    app = harness.wrap(**backend, **logout)
    async with harness.client(app) as browser:
        await harness.sign_in(browser)
        async with _copy(browser, harness, app) as thief:
            assert (await thief.get("/me")).json()["sub"] == "alice"
            response = await browser.post("/logout", headers=SAME_ORIGIN)
            assert response.status_code == 303
            assert (await thief.get("/me")).json()["sub"] is None
            # A request that changes the session cannot bring it back either.
            assert (await thief.get("/put?k=v")).status_code == 200
            assert (await thief.get("/me")).json()["sub"] is None
        # Signing in again afterwards works, in the same browser.
        await harness.sign_in(browser)
        assert (await browser.get("/me")).json()["sub"] == "alice"
        assert (await browser.get("/me")).json()["sub"] == "alice"


async def test_logout_ends_only_the_session_logged_out_of(
    harness: Harness, backend: dict[str, Any]
) -> None:
    app = harness.wrap(**backend, idp_logout=False)
    async with harness.client(app) as laptop, harness.client(app) as phone:
        await harness.sign_in(laptop)
        await harness.sign_in(phone)
        await laptop.post("/logout", headers=SAME_ORIGIN)
        assert (await laptop.get("/me")).json()["sub"] is None
        assert (await phone.get("/me")).json()["sub"] == "alice"


async def test_a_logged_out_cookie_session_is_remembered_for_its_remaining_lifetime(
    harness: Harness,
) -> None:
    shared = MemorySharedState(now=harness.clock)
    absolute, leeway = 3600.0, 30.0
    app = harness.wrap(
        shared_state=shared,
        idp_logout=False,
        absolute_ttl=absolute,
        rolling_ttl=None,
        leeway=leeway,
    )
    async with harness.client(app) as browser:
        await harness.sign_in(browser)
        assert len(shared) == 0
        harness.clock.advance(1000)
        async with _copy(browser, harness, app) as thief:
            await browser.post("/logout", headers=SAME_ORIGIN)
            assert len(shared) == 1
            # Kept while the cookie could still open (and the leeway for a shared clock) ...
            harness.clock.advance(absolute - 1000 + leeway - 1)
            assert len(shared) == 1
            # ... and no longer: the cookie has expired on its own by then.
            harness.clock.advance(2)
            assert len(shared) == 0
            assert (await thief.get("/me")).json()["sub"] is None
