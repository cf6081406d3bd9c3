"""RevocationList: remembered "not revoked" answers (Back-Channel Logout 1.0 section 2.7)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import pytest

from oidc_asgi.errors import ConfigurationError
from oidc_asgi.sessions.revocation import MemorySharedState, RevocationList

ISS = "https://op.example"
T0 = 1_800_000_000.0
WEEK = 7 * 24 * 3600.0


class Clock:
    def __init__(self) -> None:
        self.t = T0

    def __call__(self) -> float:
        return self.t


class RemoteState:
    """A non-memory SharedState (like Redis) over one MemorySharedState, counting reads."""

    def __init__(self, backing: MemorySharedState) -> None:
        self.backing = backing
        self.reads = 0
        self.during_read: Callable[[], Awaitable[None]] | None = None

    async def get(self, key: str) -> str | None:
        return await self.backing.get(key)

    async def get_many(self, keys: Sequence[str]) -> list[str | None]:
        self.reads += 1
        if self.during_read is not None:
            hook, self.during_read = self.during_read, None
            await hook()
        return await self.backing.get_many(keys)

    async def set(self, key: str, value: str, *, ttl: float) -> None:
        await self.backing.set(key, value, ttl=ttl)

    async def add(self, key: str, value: str, *, ttl: float) -> bool:
        return await self.backing.add(key, value, ttl=ttl)

    async def delete_if(self, key: str, value: str) -> bool:
        return await self.backing.delete_if(key, value)

    async def set_max(self, key: str, value: float, *, ttl: float) -> None:
        await self.backing.set_max(key, value, ttl=ttl)


async def _revoked(revocations: RevocationList, sid: str = "s1") -> bool:
    return await revocations.is_revoked(ISS, sid=sid, sub="alice", signed_in_at=T0 - 60)


def _clean(revocations: RevocationList, sid: str = "s1") -> bool:
    return revocations.known_clean(ISS, sid=sid, sub="alice", signed_in_at=T0 - 60)


async def test_memory_a_no_is_remembered_until_the_next_write() -> None:
    clock = Clock()
    state = MemorySharedState(now=clock)
    revocations = RevocationList(state, ttl=WEEK, now=clock)
    assert not _clean(revocations)
    assert not await _revoked(revocations)
    assert _clean(revocations)
    clock.t += 10 * WEEK  # in memory the answer is exact: time alone does not stale it
    assert _clean(revocations)
    await state.set("unrelated", "1", ttl=60)  # any write: asked again, still no
    assert not _clean(revocations)
    assert not await _revoked(revocations)


async def test_memory_a_logout_by_another_list_on_the_same_state_is_seen_at_once() -> None:
    clock = Clock()
    state = MemorySharedState(now=clock)
    screening = RevocationList(state, ttl=WEEK, now=clock)
    receiving = RevocationList(state, ttl=WEEK, now=clock)
    assert not await _revoked(screening)
    assert _clean(screening)
    await receiving.revoke(ISS, sid="s1", sub=None, event_time=T0)
    assert not _clean(screening)
    assert await _revoked(screening)
    assert not await _revoked(screening, sid="s2")  # other sessions of the user: sid-scoped


async def test_memory_a_session_signed_in_after_the_logout_is_not_revoked() -> None:
    state = MemorySharedState()
    revocations = RevocationList(state, ttl=WEEK)
    await revocations.revoke(ISS, sid="s1", sub=None, event_time=T0 - 120)
    assert not await _revoked(revocations)  # signed in at T0 - 60: after the event
    assert _clean(revocations)


async def test_remote_a_no_is_reused_for_cache_ttl_then_asked_again() -> None:
    clock = Clock()
    backing = MemorySharedState(now=clock)
    here = RevocationList(RemoteState(backing), ttl=WEEK, cache_ttl=1.0, now=clock)
    elsewhere = RevocationList(RemoteState(backing), ttl=WEEK, now=clock)  # another instance
    assert not await _revoked(here)
    assert isinstance(here.state, RemoteState)
    assert here.state.reads == 1
    await elsewhere.revoke(ISS, sid="s1", sub=None, event_time=T0)
    clock.t += 0.5
    assert not await _revoked(here)  # stale, within the documented bound
    assert here.state.reads == 1
    clock.t += 0.5
    assert await _revoked(here)  # the bound has passed: asked, and revoked
    assert here.state.reads == 2


async def test_remote_a_logout_through_this_list_is_seen_at_once() -> None:
    clock = Clock()
    here = RevocationList(RemoteState(MemorySharedState(now=clock)), ttl=WEEK, cache_ttl=60,
                          now=clock)  # fmt: skip
    assert not await _revoked(here)
    await here.revoke(ISS, sid=None, sub="alice", event_time=T0)
    assert await _revoked(here)


async def test_remote_a_logout_racing_with_a_read_is_not_remembered_as_clean() -> None:
    clock = Clock()
    state = RemoteState(MemorySharedState(now=clock))
    here = RevocationList(state, ttl=WEEK, cache_ttl=60, now=clock)

    async def logout_meanwhile() -> None:
        await here.revoke(ISS, sid="s1", sub=None, event_time=T0)

    state.during_read = logout_meanwhile
    await _revoked(here)  # the read itself may or may not see the write
    assert not _clean(here)
    assert await _revoked(here)


@pytest.mark.parametrize("remote", [False, True], ids=["memory", "remote"])
async def test_end_session_revokes_that_session_only_for_its_ttl(remote: bool) -> None:
    clock = Clock()
    backing = MemorySharedState(now=clock)
    state: Any = RemoteState(backing) if remote else backing
    here = RevocationList(state, ttl=WEEK, cache_ttl=60, now=clock)

    async def revoked(session_id: str) -> bool:
        return await here.is_revoked(
            ISS, sid="s1", sub="alice", signed_in_at=T0 - 60, session_id=session_id
        )

    assert not await revoked("x1")
    assert here.known_clean(ISS, sid="s1", sub="alice", signed_in_at=T0 - 60, session_id="x1")
    await here.end_session(ISS, "x1", ttl=100)
    assert await revoked("x1")  # seen at once, remembered "no" or not
    assert not await revoked("x2")  # another sign-in of the same provider session
    assert not await _revoked(here)  # a session without an id: sid and sub only
    await here.end_session(ISS, "x2", ttl=0)  # already expired: nothing recorded
    assert not await revoked("x2")
    clock.t += 101
    assert not await revoked("x1")


async def test_remote_without_cache_ttl_every_check_reads() -> None:
    state = RemoteState(MemorySharedState())
    here = RevocationList(state, ttl=WEEK)
    for _ in range(3):
        assert not await _revoked(here)
        assert not _clean(here)
    assert state.reads == 3


async def test_remembered_answers_are_bounded() -> None:
    revocations = RevocationList(MemorySharedState(), ttl=WEEK, cache_size=2)
    for sid in ("a", "b", "c"):
        assert not await _revoked(revocations, sid=sid)
    assert [_clean(revocations, sid) for sid in ("a", "b", "c")] == [False, True, True]


@pytest.mark.parametrize(
    ("kwargs", "code"),
    [
        pytest.param({"cache_ttl": -1}, "invalid_ttl", id="negative-cache-ttl"),
        pytest.param({"cache_ttl": float("inf")}, "invalid_ttl", id="infinite-cache-ttl"),
        pytest.param({"cache_ttl": True}, "invalid_ttl", id="bool-cache-ttl"),
        pytest.param({"cache_size": -1}, "invalid_size", id="negative-cache-size"),
    ],
)
def test_cache_settings_are_validated(kwargs: dict[str, Any], code: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        RevocationList(MemorySharedState(), ttl=WEEK, **kwargs)
    assert caught.value.code == code
