"""RedisTokenStore against a real redis-server: encryption at rest, TTL, rotation, outages."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Generator, Iterator
from dataclasses import dataclass

import pytest
from redis.asyncio import Redis

from _services import free_port, run_redis_server
from oidc_asgi.client import TokenResponse
from oidc_asgi.errors import ConfigurationError
from oidc_asgi.token_cache import CacheEntry, TokenCache, token_cache_key
from oidc_asgi.token_stores import RedisTokenStore

T0 = 1_700_000_000.0
SECRET = "a-token-store-secret-that-is-long-enough-0001"
NEW_SECRET = "a-token-store-secret-that-is-long-enough-0002"
KEY = token_cache_key(client_id="daemon", issuer="https://idp.example", scopes=["read"])


@dataclass
class Clock:
    now: float = T0

    def __call__(self) -> float:
        return self.now


def token(value: str = "at-secret-value", life: float = 3600) -> TokenResponse:
    return TokenResponse(
        access_token=value, token_type="Bearer", expires_at=T0 + life, scope="read"
    )


@pytest.fixture
async def raw(redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url)
    await client.flushdb()
    yield client
    await client.aclose()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def store(redis_url: str, raw: Redis, clock: Clock) -> AsyncIterator[RedisTokenStore]:
    made = RedisTokenStore(redis_url, secrets=[SECRET], now=clock)
    yield made
    await made.aclose()


async def test_roundtrip_is_encrypted_at_rest_with_ttl(store: RedisTokenStore, raw: Redis) -> None:
    entry = CacheEntry(token(), T0 + 3540)
    await store.set(KEY, entry, ttl=3540)
    stored = await raw.get(store.prefix + KEY)
    assert stored is not None
    assert b"at-secret-value" not in stored
    assert b"read" not in stored  # nothing readable, not even the scope
    assert 3539_000 < await raw.pttl(store.prefix + KEY) <= 3540_000
    assert await store.get(KEY) == entry
    await store.delete(KEY)
    assert await store.get(KEY) is None
    assert SECRET not in repr(store)


async def test_expired_entry_is_a_miss(store: RedisTokenStore, clock: Clock) -> None:
    await store.set(KEY, CacheEntry(token(), T0 + 100), ttl=100)
    clock.now = T0 + 101  # Redis has not evicted yet; the envelope's ceiling has passed
    assert await store.get(KEY) is None


async def test_two_instances_share_one_fetch(store: RedisTokenStore, redis_url: str) -> None:
    fetches = 0

    async def fetch() -> TokenResponse:
        nonlocal fetches
        fetches += 1
        return token(f"at-{fetches}")

    other = RedisTokenStore(redis_url, secrets=[SECRET], now=lambda: T0)
    try:
        first: TokenCache[TokenResponse] = TokenCache(store=store, now=lambda: T0)
        second: TokenCache[TokenResponse] = TokenCache(store=other, now=lambda: T0)
        a = await first.get_or_fetch(KEY, fetch)
        b = await second.get_or_fetch(KEY, fetch)
    finally:
        await other.aclose()
    assert a.access_token == b.access_token == "at-1"
    assert fetches == 1


@pytest.mark.parametrize(
    ("reader_secrets", "found"),
    [
        pytest.param([NEW_SECRET, SECRET], True, id="rotated-old-secret-still-reads"),
        pytest.param([NEW_SECRET], False, id="retired-secret-is-a-miss"),
    ],
)
async def test_secret_rotation(
    store: RedisTokenStore, redis_url: str, reader_secrets: list[str], found: bool
) -> None:
    await store.set(KEY, CacheEntry(token(), T0 + 60), ttl=60)
    reader = RedisTokenStore(redis_url, secrets=reader_secrets, now=lambda: T0)
    try:
        assert (await reader.get(KEY) is not None) is found
    finally:
        await reader.aclose()


@pytest.mark.parametrize("tamper", ["moved-to-another-key", "bit-flipped", "not-an-envelope"])
async def test_foreign_or_tampered_values_are_misses(
    store: RedisTokenStore, raw: Redis, tamper: str
) -> None:
    await store.set(KEY, CacheEntry(token(), T0 + 60), ttl=60)
    stored = await raw.get(store.prefix + KEY)
    assert isinstance(stored, bytes)
    other = token_cache_key(client_id="other", issuer="https://idp.example")
    if tamper == "moved-to-another-key":
        await raw.set(store.prefix + other, stored)
    elif tamper == "bit-flipped":
        flipped = stored[:-5] + (b"A" if stored[-5:-4] != b"A" else b"B") + stored[-4:]
        await raw.set(store.prefix + other, flipped)
    else:
        await raw.set(store.prefix + other, b"plain text")
    assert await store.get(other) is None


async def test_given_client_is_used_and_left_open(raw: Redis) -> None:
    shared = RedisTokenStore(raw, secrets=[SECRET], prefix="app-a:", now=lambda: T0)
    await shared.set(KEY, CacheEntry(token(), T0 + 60), ttl=60)
    await shared.aclose()
    assert await raw.exists("app-a:" + KEY) == 1  # the caller's client still works


async def _exercise_outage(store: RedisTokenStore) -> int:
    fetches = 0

    async def fetch() -> TokenResponse:
        nonlocal fetches
        fetches += 1
        return token()

    cache: TokenCache[TokenResponse] = TokenCache(store=store, now=lambda: T0)
    for _ in range(3):
        assert (await cache.get_or_fetch(KEY, fetch)).access_token == "at-secret-value"
    await cache.invalidate(KEY)
    return fetches


async def test_unreachable_redis_degrades_to_fetching(caplog: pytest.LogCaptureFixture) -> None:
    store = RedisTokenStore(
        f"redis://127.0.0.1:{free_port()}/0", secrets=[SECRET], timeout=0.5, now=lambda: T0
    )
    with caplog.at_level(logging.WARNING, logger="oidc_asgi.token_stores"):
        fetches = await _exercise_outage(store)
    await store.aclose()
    assert fetches == 3  # every call fetched; none crashed
    assert store.failures == 7  # 3 GET + 3 SET + 1 DEL
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1  # rate limited
    assert "at-secret-value" not in caplog.text
    assert KEY not in caplog.text


@pytest.fixture
def own_redis() -> Iterator[tuple[str, Generator[str, None, None]]]:
    server = run_redis_server()
    assert isinstance(server, Generator)
    url = next(server)
    yield url, server
    server.close()


async def test_redis_stopped_mid_life_degrades(
    own_redis: tuple[str, Generator[str, None, None]], caplog: pytest.LogCaptureFixture
) -> None:
    url, server = own_redis
    store = RedisTokenStore(url, secrets=[SECRET], timeout=0.5, now=lambda: T0)
    await store.set(KEY, CacheEntry(token(), T0 + 60), ttl=60)
    assert await store.get(KEY) is not None
    next(server, None)  # the generator's cleanup terminates redis-server
    with caplog.at_level(logging.WARNING, logger="oidc_asgi.token_stores"):
        fetches = await _exercise_outage(store)
    await store.aclose()
    assert fetches == 3
    assert store.failures >= 7
    assert "falling back to fetching" in caplog.text


@pytest.mark.parametrize(
    ("secrets_", "code"),
    [
        pytest.param(["short"], "weak_secret", id="short-secret"),
        pytest.param([], "no_secrets", id="no-secrets"),
        pytest.param(SECRET, "invalid_secret", id="bare-string"),
    ],
)
def test_configuration_errors(secrets_: list[str], code: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        RedisTokenStore("redis://127.0.0.1:1/0", secrets=secrets_)
    assert caught.value.code == code
