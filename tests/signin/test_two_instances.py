"""Two app instances sharing one real ``redis-server``: sessions, refreshes and back-channel
logouts agree across them (the Redis session store, and cookie sessions with the Redis
revocation list)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from oidc_asgi.sessions import RedisSharedState
from oidc_asgi.sessions.redis import RedisStore
from oidc_asgi.signin import OIDCAuth
from oidc_asgi.testing import DevProvider, KeyRing

from ._api_support import (
    OFFLINE_SCOPE,
    TokenEndpointCounter,
    bcl_provider_config,
    claims_for,
    counted_client,
    sid_of,
    signed,
    token_app,
)
from ._support import Clock, Harness


@pytest.fixture
def counter(clock: Clock, shared_keys: KeyRing) -> TokenEndpointCounter:
    provider = DevProvider(bcl_provider_config(), now=clock, keys=shared_keys.copy())
    return TokenEndpointCounter(provider)


@pytest.fixture
async def h(counter: TokenEndpointCounter, clock: Clock) -> AsyncIterator[Harness]:
    assert isinstance(counter.app, DevProvider)
    async with counted_client(counter) as op_http:
        yield Harness(provider=counter.app, op_http=op_http, clock=clock)


@pytest.fixture(params=["redis-store", "cookie-redis-revocations"])
async def instances(
    request: pytest.FixtureRequest, h: Harness, redis_url: str
) -> AsyncIterator[tuple[OIDCAuth, OIDCAuth]]:
    prefix = f"t{time.monotonic_ns()}:"
    closers: list[Any] = []
    if request.param == "redis-store":
        store = RedisStore(url=redis_url, prefix=prefix)
        closers.append(store)
        settings: dict[str, Any] = {"session_store": store}
    else:
        shared = RedisSharedState(url=redis_url, prefix=prefix)
        closers.append(shared)
        settings = {"shared_state": shared}
    one = h.wrap(token_app(), scope=OFFLINE_SCOPE, **settings)
    two = h.wrap(token_app(), scope=OFFLINE_SCOPE, **settings)
    yield one, two
    for closer in closers:
        await closer.aclose()


def sharing(h: Harness, app: OIDCAuth, other: httpx.AsyncClient) -> httpx.AsyncClient:
    client = h.client(app)
    client.cookies.update(other.cookies)
    return client


async def test_a_session_made_on_one_instance_is_used_on_the_other(
    h: Harness, instances: tuple[OIDCAuth, OIDCAuth]
) -> None:
    one, two = instances
    async with h.client(one) as browser:
        await h.sign_in(browser)
        async with sharing(h, two, browser) as same_browser:
            assert (await same_browser.get("/whoami")).text == "alice"


async def test_back_channel_logout_on_one_instance_ends_the_session_on_both(
    h: Harness, instances: tuple[OIDCAuth, OIDCAuth]
) -> None:
    one, two = instances
    async with h.client(one) as browser, h.client(one) as op:
        await h.sign_in(browser)
        token = signed(h.provider, claims_for(h.provider, sid_of(h.provider)))
        response = await op.post("/backchannel-logout", data={"logout_token": token})
        assert response.status_code == 200
        async with sharing(h, two, browser) as on_two, sharing(h, one, browser) as on_one:
            assert (await on_two.get("/whoami")).text == "anonymous"
            assert (await on_one.get("/whoami")).text == "anonymous"
        async with h.client(two) as op_two:  # the jti is shared too: a replay to two fails
            replay = await op_two.post("/backchannel-logout", data={"logout_token": token})
            assert replay.status_code == 400


async def test_parallel_refreshes_on_both_instances_make_one_token_request(
    h: Harness, counter: TokenEndpointCounter, instances: tuple[OIDCAuth, OIDCAuth]
) -> None:
    one, two = instances
    async with h.client(one) as browser:
        await h.sign_in(browser)
        h.clock.advance(3600)
        async with sharing(h, one, browser) as a, sharing(h, two, browser) as b:
            answers = await asyncio.gather(*(c.get("/token") for c in [a, b] * 10))
        assert {r.status_code for r in answers} == {200}
        assert len({r.json()["token"] for r in answers}) == 1
        assert len(counter.refreshes()) == 1
