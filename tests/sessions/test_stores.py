"""Session backends: one contract class run over every store (cookie, memory, Redis).

The Redis store runs against a real ``redis-server`` started on a free 127.0.0.1 port. Without
the binary the Redis cases are skipped with a reason on a laptop and fail when ``CI`` is set.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from _services import free_port
from oidc_asgi.errors import ConfigurationError, ProviderUnavailable
from oidc_asgi.sessions import (
    ChunkedCookie,
    CookieSessions,
    MemoryStore,
    ServerSessions,
    SessionBackend,
    SessionCodec,
    index_key,
)

SECRET = "store-secret-0123456789-abcdefghijklmnopqrstuvwxyz"
NEW_SECRET = "store-secret-2-0123456789-abcdefghijklmnopqrstuvw"
T0 = 1_800_000_000.0


class Clock:
    def __init__(self) -> None:
        self.value = T0

    def __call__(self) -> float:
        return self.value


def jar_after(jar: dict[str, str], headers: list[str]) -> dict[str, str]:
    """The browser's cookies after these Set-Cookie values (one host, one path)."""
    result = dict(jar)
    for header in headers:
        pair, _, attributes = header.partition("; ")
        name, _, value = pair.partition("=")
        if "Max-Age=0" in attributes.split("; "):
            result.pop(name, None)
        else:
            result[name] = value
    return result


# `redis_url` (a real redis-server for the test session) comes from tests/conftest.py.


def _redis_store(url: str, prefix: str) -> Any:
    from oidc_asgi.sessions.redis import RedisStore

    return RedisStore(url=url, prefix=prefix)


@pytest.fixture(params=["cookie", "memory", "redis"])
async def backend(request: pytest.FixtureRequest, clock: Clock) -> AsyncIterator[SessionBackend]:
    kind = request.param
    if kind == "cookie":
        codec = SessionCodec(secrets=[SECRET], absolute_ttl=7200, rolling_ttl=3600, now=clock)
        yield CookieSessions(codec=codec, jar=ChunkedCookie(name="s"), now=clock)
        return
    if kind == "memory":
        store: Any = MemoryStore(now=clock)
    else:
        url = request.getfixturevalue("redis_url")
        store = _redis_store(url, f"t{time.monotonic_ns()}:")
    yield ServerSessions(
        store=store, secrets=[SECRET], cookie_name="s", absolute_ttl=7200, rolling_ttl=3600,
        now=clock,
    )  # fmt: skip
    if kind == "redis":
        await store.aclose()


@pytest.fixture
def clock() -> Clock:
    return Clock()


class TestSessionBackendContract:
    """What every backend guarantees (DESIGN convention 11)."""

    async def test_round_trip(self, backend: SessionBackend) -> None:
        headers = await backend.save({"u": {"sub": "alice"}}, previous=None, cookies={}, https=True)
        loaded = await backend.load(jar_after({}, headers))
        assert loaded is not None
        assert loaded.data == {"u": {"sub": "alice"}}

    async def test_cookie_attributes(self, backend: SessionBackend) -> None:
        headers = await backend.save({"k": 1}, previous=None, cookies={}, https=True)
        assert headers[0].startswith("s=")
        assert "; Secure; HttpOnly; SameSite=Lax" in headers[0]
        assert "Max-Age=3600" in headers[0]
        plain = await backend.save({"k": 1}, previous=None, cookies={}, https=False)
        assert "Secure" not in plain[0]

    @pytest.mark.parametrize(
        "cookies",
        [
            pytest.param({}, id="absent"),
            pytest.param({"s": "1~garbage"}, id="garbage"),
            pytest.param({"s": "1~v1.AAAAAAAA.AAAA"}, id="foreign-key-id"),
            pytest.param({"s": "9~x"}, id="bad-chunk-count"),
            pytest.param({"s": "1~" + "A" * 5000}, id="oversized"),
        ],
    )
    async def test_bad_cookies_mean_no_session(
        self, backend: SessionBackend, cookies: dict[str, str]
    ) -> None:
        assert await backend.load(cookies) is None

    async def test_tampered_and_truncated_cookie(self, backend: SessionBackend) -> None:
        jar = jar_after({}, await backend.save({"k": 1}, previous=None, cookies={}, https=True))
        value = jar["s"]
        flipped = value[:-3] + ("A" if value[-3] != "A" else "B") + value[-2:]
        assert await backend.load({"s": flipped}) is None
        assert await backend.load({"s": value[:-5]}) is None

    async def test_update_keeps_the_identity_and_the_creation_time(
        self, backend: SessionBackend, clock: Clock
    ) -> None:
        jar = jar_after({}, await backend.save({"n": 1}, previous=None, cookies={}, https=True))
        first = await backend.load(jar)
        assert first is not None
        clock.value += 100
        jar = jar_after(jar, await backend.save({"n": 2}, previous=first, cookies=jar, https=True))
        second = await backend.load(jar)
        assert second is not None
        assert second.data == {"n": 2}
        assert second.created_at == first.created_at

    async def test_rotation_issues_a_new_identity(
        self, backend: SessionBackend, clock: Clock
    ) -> None:
        jar = jar_after({}, await backend.save({"n": 1}, previous=None, cookies={}, https=True))
        old_jar = dict(jar)
        first = await backend.load(jar)
        clock.value += 10
        headers = await backend.save({"n": 2}, previous=first, cookies=jar, https=True, rotate=True)
        jar = jar_after(jar, headers)
        assert jar["s"] != old_jar["s"]
        second = await backend.load(jar)
        assert second is not None
        assert second.created_at == T0 + 10
        if isinstance(backend, ServerSessions):
            assert await backend.load(old_jar) is None  # fixation: the old id is dead

    async def test_rolling_expiry(self, backend: SessionBackend, clock: Clock) -> None:
        jar = jar_after({}, await backend.save({"n": 1}, previous=None, cookies={}, https=True))
        clock.value += 3599
        assert await backend.load(jar) is not None
        clock.value += 2
        assert await backend.load(jar) is None

    async def test_touch_moves_the_rolling_window_until_the_absolute_limit(
        self, backend: SessionBackend, clock: Clock
    ) -> None:
        jar = jar_after({}, await backend.save({"n": 1}, previous=None, cookies={}, https=True))
        for _ in range(3):
            clock.value += 3000
            loaded = await backend.load(jar)
            if clock.value - T0 >= 7200:
                assert loaded is None
                break
            assert loaded is not None
            assert loaded.needs_touch
            jar = jar_after(
                jar, await backend.save(loaded.data, previous=loaded, cookies=jar, https=True)
            )
        else:
            pytest.fail("absolute lifetime not enforced")

    async def test_ceiling_caps_the_session(self, backend: SessionBackend, clock: Clock) -> None:
        headers = await backend.save(
            {"n": 1}, previous=None, cookies={}, https=True, ceiling=T0 + 60
        )
        assert "Max-Age=60" in headers[0]
        jar = jar_after({}, headers)
        clock.value += 61
        assert await backend.load(jar) is None

    async def test_clear_ends_the_session(self, backend: SessionBackend) -> None:
        jar = jar_after({}, await backend.save({"n": 1}, previous=None, cookies={}, https=True))
        stolen = dict(jar)
        loaded = await backend.load(jar)
        jar = jar_after(jar, await backend.clear(loaded, cookies=jar, https=True))
        assert jar == {}
        if isinstance(backend, ServerSessions):
            assert await backend.load(stolen) is None  # a copied cookie is dead too

    async def test_secret_rotation(self, backend: SessionBackend, clock: Clock) -> None:
        jar = jar_after({}, await backend.save({"n": 1}, previous=None, cookies={}, https=True))
        if isinstance(backend, CookieSessions):
            rotated: SessionBackend = CookieSessions(
                codec=SessionCodec(secrets=[NEW_SECRET, SECRET], now=clock),
                jar=ChunkedCookie(name="s"),
                now=clock,
            )
        else:
            assert isinstance(backend, ServerSessions)
            rotated = ServerSessions(
                store=backend.store, secrets=[NEW_SECRET, SECRET], cookie_name="s", now=clock
            )
        loaded = await rotated.load(jar)
        assert loaded is not None
        assert loaded.needs_touch  # made with the older secret: re-issue

    async def test_large_session(self, backend: SessionBackend) -> None:
        data = {"blob": "x" * 6000}
        headers = await backend.save(data, previous=None, cookies={}, https=True)
        jar = jar_after({}, headers)
        loaded = await backend.load(jar)
        assert loaded is not None
        assert loaded.data == data
        if isinstance(backend, CookieSessions):
            assert len(jar) == 3  # chunked: s, s.1, s.2
            shrunk = await backend.save({"n": 1}, previous=loaded, cookies=jar, https=True)
            assert jar_after(jar, shrunk).keys() == {"s"}  # every stale chunk expired
        else:
            assert len(jar) == 1  # only the signed id travels


class TestServerStores:
    """Server-side specifics, over memory and Redis."""

    @pytest.fixture(params=["memory", "redis"])
    async def sessions(
        self, request: pytest.FixtureRequest, clock: Clock
    ) -> AsyncIterator[ServerSessions]:
        if request.param == "memory":
            store: Any = MemoryStore(now=clock)
        else:
            store = _redis_store(request.getfixturevalue("redis_url"), f"s{time.monotonic_ns()}:")
        yield ServerSessions(store=store, secrets=[SECRET], cookie_name="s", now=clock)
        if request.param == "redis":
            await store.aclose()

    async def test_store_key_is_a_hash_and_value_is_encrypted(
        self, sessions: ServerSessions
    ) -> None:
        jar = jar_after({}, await sessions.save({"tok": "secret-token"}, previous=None,
                                                cookies={}, https=True))  # fmt: skip
        loaded = await sessions.load(jar)
        assert loaded is not None
        assert loaded.handle is not None
        session_id = jar["s"].split("~", 1)[1].rsplit(".", 1)[0]
        assert session_id not in loaded.handle
        record = await sessions.store.get(loaded.handle)
        assert record is not None
        assert "secret-token" not in record.value

    async def test_forged_id_is_refused_before_the_store(self, sessions: ServerSessions) -> None:
        assert await sessions.load({"s": "1~forged-id.AAAA"}) is None

    async def test_concurrent_writes_merge_instead_of_losing_updates(
        self, sessions: ServerSessions
    ) -> None:
        jar = jar_after({}, await sessions.save({"a": 0, "b": 0}, previous=None, cookies={},
                                                https=True))  # fmt: skip
        first = await sessions.load(jar)
        second = await sessions.load(jar)
        assert first is not None
        assert second is not None
        await sessions.save({"a": 1, "b": 0}, previous=first, cookies=jar, https=True)

        def merge(current: dict[str, Any]) -> dict[str, Any]:
            return {**current, "b": 2}

        await sessions.save({"a": 0, "b": 2}, previous=second, cookies=jar, https=True,
                            merge=merge)  # fmt: skip
        final = await sessions.load(jar)
        assert final is not None
        assert final.data == {"a": 1, "b": 2}

    async def test_a_slow_request_does_not_bring_back_a_logged_out_session(
        self, sessions: ServerSessions
    ) -> None:
        jar = jar_after({}, await sessions.save({"n": 1}, previous=None, cookies={}, https=True))
        slow = await sessions.load(jar)
        await sessions.clear(await sessions.load(jar), cookies=jar, https=True)
        headers = await sessions.save({"n": 2}, previous=slow, cookies=jar, https=True,
                                      merge=lambda current: current)  # fmt: skip
        assert headers == []
        assert await sessions.load(jar) is None

    async def test_end_sessions_by_index(self, sessions: ServerSessions) -> None:
        by_sid = index_key("sid", "https://idp", "sid-1")
        by_sub = index_key("sub", "https://idp", "alice")
        jars = []
        for sid_index in (by_sid, index_key("sid", "https://idp", "sid-2")):
            headers = await sessions.save({"n": 1}, previous=None, cookies={}, https=True,
                                          indexes=[sid_index, by_sub])  # fmt: skip
            jars.append(jar_after({}, headers))
        assert await sessions.end_sessions(by_sid) == 1
        assert await sessions.load(jars[0]) is None
        assert await sessions.load(jars[1]) is not None
        assert await sessions.end_sessions(by_sub) == 2
        assert await sessions.load(jars[1]) is None

    async def test_many_concurrent_creations(self, sessions: ServerSessions) -> None:
        results = await asyncio.gather(
            *(sessions.save({"i": i}, previous=None, cookies={}, https=True) for i in range(50))
        )
        values = {jar_after({}, headers)["s"] for headers in results}
        assert len(values) == 50


async def test_redis_store_down_raises_provider_unavailable() -> None:
    store = _redis_store(f"redis://127.0.0.1:{free_port()}/0", "x:")
    with pytest.raises(ProviderUnavailable) as caught:
        await store.get("k")
    assert caught.value.code == "session_store_unavailable"
    await store.aclose()


@pytest.mark.parametrize(
    ("kwargs", "code"),
    [
        pytest.param({"store": object()}, "invalid_store", id="not-a-store"),
        pytest.param({"store": MemoryStore(), "secrets": ["short"]}, "weak_secret", id="weak"),
    ],
)
def test_server_sessions_configuration(kwargs: dict[str, Any], code: str) -> None:
    settings: dict[str, Any] = {"secrets": [SECRET], **kwargs}
    with pytest.raises(ConfigurationError) as caught:
        ServerSessions(**settings)
    assert caught.value.code == code


async def test_memory_store_is_bounded() -> None:
    clock = Clock()
    store = MemoryStore(max_entries=3, now=clock)
    for i in range(5):
        clock.value += 1
        assert await store.put(f"k{i}", "v", ttl=100 + i, version=None)
    assert len(store) == 3
    assert await store.get("k0") is None  # closest to expiry went first
    assert await store.get("k4") is not None
