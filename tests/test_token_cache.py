"""TokenCache: single flight, expiry (margin, not_after), LRU bound, hashed keys, store seam."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from cryptography.fernet import Fernet

from oidc_asgi.client import TokenResponse
from oidc_asgi.errors import ConfigurationError, OAuthError, ProviderUnavailable
from oidc_asgi.token_cache import (
    CacheEntry,
    MemoryTokenStore,
    TokenCache,
    TokenStore,
    token_cache_key,
)

T0 = 1_700_000_000.0


@dataclass
class Clock:
    now: float = T0

    def __call__(self) -> float:
        return self.now


@dataclass
class Fetcher:
    """Counts token requests; each answer lives ``life`` seconds from the clock (None: unknown)."""

    clock: Clock
    life: float | None = 3600.0
    calls: int = 0
    gate: asyncio.Event | None = None
    error: Exception | None = None

    async def __call__(self) -> TokenResponse:
        self.calls += 1
        if self.gate is not None:
            await self.gate.wait()
        if self.error is not None:
            raise self.error
        expires_at = None if self.life is None else self.clock.now + self.life
        return TokenResponse(
            access_token=f"token-{self.calls}", token_type="Bearer", expires_at=expires_at
        )


def make_cache(clock: Clock, **settings: Any) -> TokenCache[TokenResponse]:
    return TokenCache(now=clock, **settings)


KEY = token_cache_key(client_id="daemon", issuer="https://idp.example", scopes="read")


async def _settle() -> None:
    # Let every started task run up to its first real suspension (no wall-clock sleep).
    for _ in range(5):
        await asyncio.sleep(0)


# --------------------------------------------------------------------------- single flight


async def test_a_thousand_concurrent_callers_cause_one_fetch() -> None:
    clock = Clock()
    fetch = Fetcher(clock, gate=asyncio.Event())
    cache = make_cache(clock)
    waiters = asyncio.gather(*(cache.get_or_fetch(KEY, fetch) for _ in range(1000)))
    await _settle()
    assert fetch.calls == 1
    assert fetch.gate is not None
    fetch.gate.set()
    results = await waiters
    assert {r.access_token for r in results} == {"token-1"}
    assert (await cache.get_or_fetch(KEY, fetch)).access_token == "token-1"
    assert fetch.calls == 1


async def test_a_failed_flight_reaches_every_waiter_and_is_not_cached() -> None:
    clock = Clock()
    fetch = Fetcher(clock, gate=asyncio.Event(), error=OAuthError("invalid_client"))
    cache = make_cache(clock)
    waiters = asyncio.gather(
        *(cache.get_or_fetch(KEY, fetch) for _ in range(50)), return_exceptions=True
    )
    await _settle()
    assert fetch.gate is not None
    fetch.gate.set()
    results = await waiters
    assert all(isinstance(r, OAuthError) and r.error == "invalid_client" for r in results)
    assert fetch.calls == 1
    fetch.error, fetch.gate = None, None
    assert (await cache.get_or_fetch(KEY, fetch)).access_token == "token-2"
    assert fetch.calls == 2


async def test_cancelling_one_waiter_does_not_cancel_the_flight() -> None:
    clock = Clock()
    fetch = Fetcher(clock, gate=asyncio.Event())
    cache = make_cache(clock)
    first = asyncio.ensure_future(cache.get_or_fetch(KEY, fetch))
    second = asyncio.ensure_future(cache.get_or_fetch(KEY, fetch))
    await _settle()
    first.cancel()
    await _settle()
    assert fetch.gate is not None
    fetch.gate.set()
    assert (await second).access_token == "token-1"
    assert first.cancelled()
    assert fetch.calls == 1


async def test_a_flight_whose_waiters_all_left_still_fills_the_cache() -> None:
    clock = Clock()
    fetch = Fetcher(clock, gate=asyncio.Event())
    cache = make_cache(clock)
    only = asyncio.ensure_future(cache.get_or_fetch(KEY, fetch))
    await _settle()
    only.cancel()
    assert fetch.gate is not None
    fetch.gate.set()
    await _settle()
    assert (await cache.get(KEY)) is not None
    assert fetch.calls == 1


async def test_different_keys_fly_separately() -> None:
    clock = Clock()
    fetch = Fetcher(clock)
    cache = make_cache(clock)
    other = token_cache_key(client_id="daemon", issuer="https://idp.example", scopes="write")
    await asyncio.gather(cache.get_or_fetch(KEY, fetch), cache.get_or_fetch(other, fetch))
    assert fetch.calls == 2


# --------------------------------------------------------------------------- expiry


async def test_entry_lives_token_life_minus_margin() -> None:
    clock = Clock()
    fetch = Fetcher(clock, life=3600)
    cache = make_cache(clock, margin=60)
    await cache.get_or_fetch(KEY, fetch)
    clock.now = T0 + 3539
    assert (await cache.get_or_fetch(KEY, fetch)).access_token == "token-1"
    clock.now = T0 + 3540
    assert (await cache.get_or_fetch(KEY, fetch)).access_token == "token-2"


async def test_entry_never_outlives_not_after() -> None:
    clock = Clock()
    fetch = Fetcher(clock, life=3600)
    cache = make_cache(clock, margin=60)
    subject_exp = T0 + 100
    await cache.get_or_fetch(KEY, fetch, not_after=subject_exp)
    clock.now = T0 + 99
    assert (await cache.get_or_fetch(KEY, fetch, not_after=subject_exp)).access_token == "token-1"
    clock.now = T0 + 100
    assert (await cache.get_or_fetch(KEY, fetch, not_after=subject_exp)).access_token == "token-2"


async def test_token_without_expiry_uses_default_lifetime() -> None:
    clock = Clock()
    fetch = Fetcher(clock, life=None)
    cache = make_cache(clock, margin=10, default_lifetime=300)
    await cache.get_or_fetch(KEY, fetch)
    clock.now = T0 + 289
    assert (await cache.get_or_fetch(KEY, fetch)).access_token == "token-1"
    clock.now = T0 + 290
    assert (await cache.get_or_fetch(KEY, fetch)).access_token == "token-2"


async def test_token_shorter_than_margin_is_returned_but_not_cached() -> None:
    clock = Clock()
    fetch = Fetcher(clock, life=30)
    cache = make_cache(clock, margin=60)
    assert (await cache.get_or_fetch(KEY, fetch)).access_token == "token-1"
    assert (await cache.get_or_fetch(KEY, fetch)).access_token == "token-2"
    assert isinstance(cache.store, MemoryTokenStore)
    assert len(cache.store) == 0


async def test_not_after_in_the_past_is_not_cached() -> None:
    clock = Clock()
    fetch = Fetcher(clock)
    cache = make_cache(clock)
    await cache.get_or_fetch(KEY, fetch, not_after=T0 - 1)
    assert await cache.get(KEY) is None


async def test_invalidate_forces_the_next_fetch() -> None:
    clock = Clock()
    fetch = Fetcher(clock)
    cache = make_cache(clock)
    await cache.get_or_fetch(KEY, fetch)
    await cache.invalidate(KEY)
    assert (await cache.get_or_fetch(KEY, fetch)).access_token == "token-2"


# --------------------------------------------------------------------------- bound


async def test_memory_store_evicts_least_recently_used() -> None:
    clock = Clock()
    fetch = Fetcher(clock)
    cache = make_cache(clock, max_entries=2)
    keys = [token_cache_key(client_id="c", issuer="https://i", scopes=s) for s in "abc"]
    await cache.get_or_fetch(keys[0], fetch)
    await cache.get_or_fetch(keys[1], fetch)
    await cache.get_or_fetch(keys[0], fetch)  # a is now the most recently used
    await cache.get_or_fetch(keys[2], fetch)
    assert isinstance(cache.store, MemoryTokenStore)
    assert len(cache.store) == 2
    assert await cache.get(keys[0]) is not None
    assert await cache.get(keys[1]) is None
    assert await cache.get(keys[2]) is not None
    assert fetch.calls == 3


@pytest.mark.parametrize(
    ("build", "code"),
    [
        pytest.param(lambda: TokenCache(margin=-1), "invalid_margin", id="negative-margin"),
        pytest.param(
            lambda: TokenCache(default_lifetime=-1), "invalid_default_lifetime", id="neg-lifetime"
        ),
        pytest.param(lambda: TokenCache(max_entries=0), "invalid_max_entries", id="zero-entries"),
        pytest.param(
            lambda: MemoryTokenStore(max_entries=True), "invalid_max_entries", id="bool-entries"
        ),
        pytest.param(
            lambda: TokenCache(store=MemoryTokenStore(), max_entries=5),
            "conflicting_cache_settings",
            id="store-and-max-entries",
        ),
    ],
)
def test_bad_cache_settings(build: Callable[[], object], code: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        build()
    assert info.value.code == code


# --------------------------------------------------------------------------- keys


def _key(**changes: Any) -> str:
    base: dict[str, Any] = {
        "client_id": "api",
        "issuer": "https://idp.example",
        "grant": "on_behalf_of",
        "audience": "https://orders.example",
        "scopes": ["read", "write"],
        "subject_token": "alice-token",
    }
    base.update(changes)
    return token_cache_key(**base)


def test_key_ignores_scope_and_audience_order() -> None:
    assert _key(scopes="write read") == _key(scopes=["read", "write"])
    assert _key(audience=["b", "a"]) == _key(audience=["a", "b"])
    assert _key(audience="a") == _key(audience=["a"])


@pytest.mark.parametrize(
    "change",
    [
        pytest.param({"client_id": "other"}, id="client"),
        pytest.param({"issuer": "https://other.example"}, id="issuer"),
        pytest.param({"grant": "token_exchange"}, id="grant"),
        pytest.param({"audience": "https://billing.example"}, id="audience"),
        pytest.param({"resource": "https://orders.example"}, id="resource"),
        pytest.param({"scopes": ["read"]}, id="scopes"),
        pytest.param({"subject_token": "bob-token"}, id="two-users-never-share"),
        pytest.param({"actor_token": "actor"}, id="actor"),
        pytest.param({"requested_token_type": "urn:x"}, id="requested-type"),
    ],
)
def test_key_changes_with_every_input(change: dict[str, Any]) -> None:
    assert _key(**change) != _key()


_ACCESS = "urn:ietf:params:oauth:token-type:access_token"
_JWT = "urn:ietf:params:oauth:token-type:jwt"


@pytest.mark.parametrize(
    ("one", "other"),
    [
        pytest.param(
            {"subject_token_type": _ACCESS}, {"subject_token_type": _JWT}, id="subject-token-type"
        ),
        pytest.param(
            {"actor_token": "actor", "actor_token_type": _ACCESS},
            {"actor_token": "actor", "actor_token_type": _JWT},
            id="actor-token-type",
        ),
    ],
)
def test_key_changes_with_declared_token_types_rfc8693_s2_1(
    one: dict[str, Any], other: dict[str, Any]
) -> None:
    # The same token exchanged under another declared type may get another answer.
    assert _key(grant="token_exchange", **one) != _key(grant="token_exchange", **other)


async def test_max_ttl_caps_an_entry_from_when_the_result_arrives() -> None:
    clock = Clock()
    fetch = Fetcher(clock, life=3600.0)
    cache = make_cache(clock, margin=60)
    await cache.get_or_fetch(KEY, fetch, max_ttl=300)
    entry = await cache.store.get(KEY)
    assert entry is not None
    assert entry.expires_at == T0 + 300
    clock.now += 299
    await cache.get_or_fetch(KEY, fetch, max_ttl=300)
    assert fetch.calls == 1
    clock.now += 1
    await cache.get_or_fetch(KEY, fetch, max_ttl=300)
    assert fetch.calls == 2
    # The token's own life (minus the margin) still wins when it is shorter.
    assert cache.expiry_for(await fetch(), max_ttl=7200) == clock.now + 3600 - 60


def test_key_is_a_hash_without_raw_tokens() -> None:
    key = _key(subject_token="alice-secret-token", actor_token="actor-secret")
    assert len(key) == 64
    assert int(key, 16) >= 0
    assert "alice" not in key


def test_key_needs_client_and_issuer() -> None:
    with pytest.raises(ConfigurationError) as info:
        token_cache_key(client_id="", issuer="https://i")
    assert info.value.code == "invalid_cache_key"


# --------------------------------------------------------------------------- store seam


@dataclass
class EncryptingStore:
    """A stand-in for a shared store: values leave the process only as ciphertext."""

    cipher: Fernet
    data: dict[str, bytes] = field(default_factory=dict)
    down: bool = False

    async def get(self, key: str) -> CacheEntry[TokenResponse] | None:
        if self.down:
            return None  # the protocol: an outage reads as a miss
        blob = self.data.get(key)
        if blob is None:
            return None
        doc = json.loads(self.cipher.decrypt(blob))
        return CacheEntry(TokenResponse.from_dict(doc["value"]), doc["expires_at"])

    async def set(self, key: str, entry: CacheEntry[TokenResponse], *, ttl: float) -> None:
        if self.down:
            return
        doc = {"value": entry.value.to_dict(), "expires_at": entry.expires_at}
        self.data[key] = self.cipher.encrypt(json.dumps(doc).encode())

    async def delete(self, key: str) -> None:
        self.data.pop(key, None)


async def test_a_custom_store_plugs_in_and_sees_only_ciphertext() -> None:
    clock = Clock()
    fetch = Fetcher(clock)
    store = EncryptingStore(Fernet(Fernet.generate_key()))
    checked: TokenStore[TokenResponse] = store
    cache: TokenCache[TokenResponse] = TokenCache(store=checked, now=clock)
    await cache.get_or_fetch(KEY, fetch)
    assert b"token-1" not in store.data[KEY]
    again = await cache.get_or_fetch(KEY, fetch)
    assert again.access_token == "token-1"
    assert fetch.calls == 1


async def test_a_store_outage_degrades_to_fetching() -> None:
    clock = Clock()
    fetch = Fetcher(clock)
    store = EncryptingStore(Fernet(Fernet.generate_key()), down=True)
    cache: TokenCache[TokenResponse] = TokenCache(store=store, now=clock)
    assert (await cache.get_or_fetch(KEY, fetch)).access_token == "token-1"
    assert (await cache.get_or_fetch(KEY, fetch)).access_token == "token-2"


async def test_expired_entry_from_a_lax_store_is_not_served() -> None:
    clock = Clock()
    fetch = Fetcher(clock)
    store = EncryptingStore(Fernet(Fernet.generate_key()))  # never evicts on its own
    cache: TokenCache[TokenResponse] = TokenCache(store=store, now=clock, margin=0)
    await cache.get_or_fetch(KEY, fetch)
    clock.now = T0 + 3600
    assert (await cache.get_or_fetch(KEY, fetch)).access_token == "token-2"


async def test_provider_unavailable_is_not_cached_either() -> None:
    clock = Clock()
    fetch = Fetcher(clock, error=ProviderUnavailable("down", code="provider_timeout"))
    cache = make_cache(clock)
    for _ in range(2):
        with pytest.raises(ProviderUnavailable):
            await cache.get_or_fetch(KEY, fetch)
    assert fetch.calls == 2
