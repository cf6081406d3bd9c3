"""The Redis DPoP replay store against a real redis-server (RFC 9449 section 11.1)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from _services import free_port
from oidc_asgi.bearer import (
    BearerConfig,
    BearerValidator,
    DPoPSettings,
    DPoPVerifier,
    RedisReplayStore,
)
from oidc_asgi.errors import ConfigurationError, ProviderUnavailable, TokenError
from oidc_asgi.testing._keys import SigningKey

from ._support import API, Clock
from .conftest import MintToken
from .test_dpop import DPoPClient, bound, request


@pytest.fixture
async def raw(redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url)
    await client.flushdb()
    yield client
    await client.aclose()


@pytest.fixture(scope="module")
def dpop_client() -> DPoPClient:
    return DPoPClient(SigningKey.generate("ES256"))


Replica = Callable[[RedisReplayStore], BearerValidator]


@pytest.fixture
def replica(dev: Any, http: httpx.AsyncClient, clock: Clock) -> Replica:
    """One API instance: its own validator and verifier, sharing only the given store."""

    def make(store: RedisReplayStore) -> BearerValidator:
        settings = DPoPSettings()
        return BearerValidator(
            BearerConfig(issuer=dev.issuer, audience=API, dpop=settings),
            http_client=http,
            now=clock,
            dpop_verifier=DPoPVerifier(settings, replay_store=store, now=clock),
        )

    return make


@pytest.fixture
async def stores(redis_url: str, raw: Redis, clock: Clock) -> AsyncIterator[list[RedisReplayStore]]:
    made = [RedisReplayStore(redis_url, now=clock) for _ in range(2)]
    yield made
    for store in made:
        await store.aclose()


async def test_proof_replayed_to_another_replica_is_rejected_rfc9449_11_1(
    replica: Replica, stores: list[RedisReplayStore], mint: MintToken, dpop_client: DPoPClient
) -> None:
    first, second = replica(stores[0]), replica(stores[1])
    token = bound(mint, dpop_client)
    proof = dpop_client.proof(token)
    principal = await first.authenticate(request(token, proof))
    assert principal.token_type == "DPoP"
    with pytest.raises(TokenError) as info:
        await second.authenticate(request(token, proof))
    assert (info.value.code, info.value.claim) == ("invalid_dpop_proof", "jti")
    # A fresh proof for the same token is fine on either replica.
    await second.authenticate(request(token, dpop_client.proof(token)))


async def test_entry_expires_with_the_proof_window(
    stores: list[RedisReplayStore], raw: Redis, clock: Clock
) -> None:
    store = stores[0]
    assert await store.seen("jkt:jti-1", clock() + 310) is False
    assert await store.seen("jkt:jti-1", clock() + 310) is True
    keys = await raw.keys(store.prefix + "*")
    assert len(keys) == 1
    # Keys are fixed-size digests: the client-chosen jti is not stored as such.
    assert b"jti-1" not in keys[0]
    assert 300_000 < await raw.pttl(keys[0]) <= 310_000


async def test_proof_at_the_edge_of_its_window_is_still_recorded(
    stores: list[RedisReplayStore], raw: Redis, clock: Clock
) -> None:
    assert await stores[0].seen("jkt:late", clock() - 5) is False
    assert await stores[0].seen("jkt:late", clock() - 5) is True


async def test_redis_outage_fails_closed_with_503(
    replica: Replica, mint: MintToken, dpop_client: DPoPClient, clock: Clock
) -> None:
    store = RedisReplayStore(
        f"redis://127.0.0.1:{free_port()}/0", timeout=0.2, retry_after=9, now=clock
    )
    validator = replica(store)
    token = bound(mint, dpop_client)
    scope = request(token, dpop_client.proof(token))
    try:
        with pytest.raises(ProviderUnavailable) as info:
            await validator.authenticate(scope)
    finally:
        await store.aclose()
    assert info.value.code == "replay_store_unavailable"
    assert store.failures == 1
    challenge = validator.challenge(info.value, scope)
    assert challenge.status == 503
    assert ("Retry-After", "9") in challenge.headers


async def test_injected_client_is_left_open(redis_url: str, raw: Redis, clock: Clock) -> None:
    store = RedisReplayStore(raw, now=clock)
    assert await store.seen("k", clock() + 60) is False
    await store.aclose()
    assert await raw.ping()


@pytest.mark.parametrize(
    "settings",
    [
        pytest.param({"timeout": 0}, id="zero-timeout"),
        pytest.param({"retry_after": 0}, id="zero-retry-after"),
        pytest.param({"prefix": 5}, id="prefix-not-a-string"),
    ],
)
def test_configuration_errors(settings: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError) as info:
        RedisReplayStore("redis://127.0.0.1:6379/0", **settings)
    assert info.value.code == "invalid_setting"
