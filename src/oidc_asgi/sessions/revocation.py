"""State shared by every instance of an app: logout revocations, replay cache, refresh locks.

Cookie sessions live in the browser, so a back-channel logout (OpenID Connect Back-Channel
Logout 1.0 section 2.7) cannot delete them: the app instead remembers "sessions of this provider
``sid`` (or ``sub``) that began before time *t* are over" and checks every request against that
list, the idea of express-openid-connect generalised. The same small key-value service also
holds the ``jti`` replay cache of logout tokens, refresh locks and the refresh-token rotation
grace entries of the access-token helper.

``SharedState`` is the protocol (five small operations with TTLs); ``MemorySharedState`` keeps
it in the process (the default: right for one instance), ``RedisSharedState`` in Redis (needed
as soon as several instances serve the same users). ``RevocationList`` is the logout logic on
top. Keys are hashed, so the service never holds a provider session id, subject or token.

Example::

    from oidc_asgi.sessions.revocation import RedisSharedState

    app.add_middleware(OIDCAuth, ..., shared_state=RedisSharedState(url=os.environ["REDIS_URL"]))
"""

from __future__ import annotations

import base64
import hashlib
import math
import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol, runtime_checkable

from oidc_asgi._redis import RedisClientHolder, call_or_unavailable, one_of_url_and_client, ttl_ms
from oidc_asgi.errors import ConfigurationError

__all__ = [
    "MemorySharedState",
    "RedisSharedState",
    "RevocationList",
    "SharedState",
    "default_shared_state",
    "shared_key",
]


def shared_key(kind: str, *parts: str) -> str:
    """A bounded, hashed key for ``SharedState``: ``kind`` plus a SHA-256 of ``parts``.

    Example::

        key = shared_key("jti", issuer, claims["jti"])
    """
    digest = hashlib.sha256("\x00".join((kind, *parts)).encode("utf-8", "surrogatepass")).digest()
    return f"{kind}:" + base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


@runtime_checkable
class SharedState(Protocol):
    """A small key-value service with TTLs, shared by every instance of an app.

    ``add`` writes only if the key is absent (a lock, a first-seen check) and says whether it
    wrote; ``delete_if`` deletes only while the key still holds ``value`` (releasing one's own
    lock); ``set_max`` keeps the larger of the stored and the given number. ``ttl`` is in
    seconds. A service that cannot be reached raises ``ProviderUnavailable``.

    Example::

        if await state.add(shared_key("jti", iss, jti), "1", ttl=120):
            ...  # first time this logout token is seen
    """

    async def get(self, key: str) -> str | None: ...

    async def get_many(self, keys: Sequence[str]) -> list[str | None]: ...

    async def set(self, key: str, value: str, *, ttl: float) -> None: ...

    async def add(self, key: str, value: str, *, ttl: float) -> bool: ...

    async def delete_if(self, key: str, value: str) -> bool: ...

    async def set_max(self, key: str, value: float, *, ttl: float) -> None: ...


class MemorySharedState:
    """``SharedState`` in the process: the default, right for a single instance.

    ``max_entries`` bounds memory: when full, expired entries go first, then those closest to
    expiry. ``now`` is the clock (TTLs follow it, so tests move time without sleeping).

    Example::

        state = MemorySharedState(max_entries=50_000)
    """

    def __init__(self, *, max_entries: int = 100_000, now: Callable[[], float] = time.time) -> None:
        if isinstance(max_entries, bool) or not isinstance(max_entries, int) or max_entries < 1:
            raise ConfigurationError("max_entries must be an int >= 1", code="invalid_setting")
        self._entries: dict[str, tuple[str, float]] = {}
        self._max = max_entries
        self._now = now
        # Bumped by every write: a reader that found nothing at generation g knows nothing
        # new can be there while the generation is still g (expiry only ever removes).
        self._generation = 0

    def __repr__(self) -> str:
        return f"MemorySharedState(max_entries={self._max})"

    def __len__(self) -> int:
        now = self._now()
        return sum(1 for _, exp in self._entries.values() if exp > now)

    async def get(self, key: str) -> str | None:
        """The live value under ``key``, or ``None``."""
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry[1] <= self._now():
            del self._entries[key]
            return None
        return entry[0]

    async def get_many(self, keys: Sequence[str]) -> list[str | None]:
        """``get`` for several keys at once."""
        return [await self.get(key) for key in keys]

    async def set(self, key: str, value: str, *, ttl: float) -> None:
        """Store ``value`` under ``key`` for ``ttl`` seconds."""
        if key not in self._entries and len(self._entries) >= self._max:
            self._make_room()
        self._entries[key] = (value, self._now() + max(ttl, 0.0))
        self._generation += 1

    async def add(self, key: str, value: str, *, ttl: float) -> bool:
        """Store only if ``key`` is absent; whether it stored."""
        if await self.get(key) is not None:
            return False
        await self.set(key, value, ttl=ttl)
        return True

    async def delete_if(self, key: str, value: str) -> bool:
        """Delete ``key`` only while it holds ``value``."""
        if await self.get(key) != value:
            return False
        del self._entries[key]
        return True

    async def set_max(self, key: str, value: float, *, ttl: float) -> None:
        """Keep the larger of the stored number and ``value``, for ``ttl`` seconds."""
        current = _number(await self.get(key))
        await self.set(key, repr(max(value, current) if current is not None else value), ttl=ttl)

    def _make_room(self) -> None:
        now = self._now()
        for key in [k for k, (_, exp) in self._entries.items() if exp <= now]:
            del self._entries[key]
        overflow = len(self._entries) - self._max + 1
        if overflow > 0:
            for key in sorted(self._entries, key=lambda k: self._entries[k][1])[:overflow]:
                del self._entries[key]


def _number(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


# KEYS[1]; ARGV[1] value.
_DELETE_IF = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

# KEYS[1]; ARGV[1] number, ARGV[2] ttl in ms. The stored text is kept when it is larger.
_SET_MAX = """
local value = ARGV[1]
local raw = redis.call('GET', KEYS[1])
if raw and tonumber(raw) and tonumber(raw) > tonumber(ARGV[1]) then value = raw end
redis.call('SET', KEYS[1], value, 'PX', ARGV[2])
return 1
"""


class RedisSharedState(RedisClientHolder):
    """``SharedState`` on Redis (``redis.asyncio``): for several instances of one app.

    Pass ``url`` or a ready ``redis.asyncio.Redis`` as ``client`` (the caller then owns it).
    ``prefix`` namespaces every key. TTLs are Redis's own (``PX``), on Redis's clock. Failures
    raise ``ProviderUnavailable(code="shared_state_unavailable")``.

    Example::

        state = RedisSharedState(url=os.environ["REDIS_URL"], prefix="myapp:")
    """

    def __init__(
        self, *, url: str | None = None, client: Any = None, prefix: str = "oidc-asgi:x:"
    ) -> None:
        self._attach("RedisSharedState", one_of_url_and_client("RedisSharedState", url, client))
        self._prefix = prefix
        self._delete_if = self._redis.register_script(_DELETE_IF)
        self._set_max = self._redis.register_script(_SET_MAX)

    def __repr__(self) -> str:
        return f"RedisSharedState(prefix={self._prefix!r})"

    async def _call(self, coro: Any) -> Any:
        return await call_or_unavailable(coro, what="shared state", code="shared_state_unavailable")

    async def get(self, key: str) -> str | None:
        """The value under ``key``, or ``None``."""
        raw = await self._call(self._redis.get(self._prefix + key))
        return None if raw is None else bytes(raw).decode("utf-8")

    async def get_many(self, keys: Sequence[str]) -> list[str | None]:
        """Values of several keys in one round trip (``MGET``)."""
        if not keys:
            return []
        raw = await self._call(self._redis.mget([self._prefix + key for key in keys]))
        return [None if item is None else bytes(item).decode("utf-8") for item in raw]

    async def set(self, key: str, value: str, *, ttl: float) -> None:
        """``SET key value PX ttl``."""
        await self._call(self._redis.set(self._prefix + key, value, px=ttl_ms(ttl)))

    async def add(self, key: str, value: str, *, ttl: float) -> bool:
        """``SET key value NX PX ttl``; whether it stored."""
        return bool(
            await self._call(self._redis.set(self._prefix + key, value, px=ttl_ms(ttl), nx=True))
        )

    async def delete_if(self, key: str, value: str) -> bool:
        """Delete ``key`` only while it holds ``value`` (atomic, one Lua script)."""
        return bool(await self._call(self._delete_if(keys=[self._prefix + key], args=[value])))

    async def set_max(self, key: str, value: float, *, ttl: float) -> None:
        """Keep the larger number, atomically (one Lua script)."""
        await self._call(self._set_max(keys=[self._prefix + key], args=[repr(value), ttl_ms(ttl)]))


class RevocationList:
    """Cookie sessions ended by back-channel logout, checked on every request.

    ``revoke`` records that the provider ended the session ``sid`` (or every session of ``sub``)
    of ``issuer`` at ``event_time`` (the logout token's ``iat``); ``is_revoked`` says whether a
    session that signed in at ``signed_in_at`` (its ID token's ``iat``, on the provider's
    clock like the logout token's; not ``auth_time``, which a single sign-on keeps) is one of
    them. A later sign-in is not affected, so replaying an old logout token cannot end a newer
    session.
    Entries live ``ttl`` seconds: the longest a session can live.

    ``end_session`` records one session ended by the app's own logout, by its random id (the
    ``session_id`` passed to ``is_revoked``), so a copy of its cookie, or one re-sent by a
    request that was still running, is refused until the session would have expired anyway.

    Every request asks, and almost every answer is "no", so a "no" is remembered per
    (issuer, ``sid``, ``sub``, ``signed_in_at``, ``session_id``): with ``MemorySharedState``
    until the state's next write (exact: a logout recorded in this process is seen by the very
    next request); with any other state (Redis) for ``cache_ttl`` seconds of ``now``, so a
    logout delivered to *another* instance takes effect here at most ``cache_ttl`` seconds
    later (0 turns this off; a logout through this list is seen at once). At most
    ``cache_size`` answers are kept.

    Example::

        revocations = RevocationList(MemorySharedState(), ttl=7 * 24 * 3600)
        await revocations.revoke(issuer, sid="08a5019c", sub=None, event_time=claims["iat"])
    """

    def __init__(
        self,
        state: SharedState,
        *,
        ttl: float,
        cache_ttl: float = 0.0,
        cache_size: int = 10_000,
        now: Callable[[], float] = time.time,
    ) -> None:
        if not isinstance(state, SharedState):
            raise ConfigurationError("state must implement SharedState", code="invalid_store")
        if (
            isinstance(cache_ttl, bool)
            or not isinstance(cache_ttl, (int, float))
            or not math.isfinite(cache_ttl)
            or cache_ttl < 0
        ):
            raise ConfigurationError("cache_ttl must be >= 0 seconds", code="invalid_ttl")
        if isinstance(cache_size, bool) or not isinstance(cache_size, int) or cache_size < 0:
            raise ConfigurationError("cache_size must be an int >= 0", code="invalid_size")
        self.state = state
        self.ttl = float(ttl)
        self.cache_ttl = float(cache_ttl)
        self._local = state if isinstance(state, MemorySharedState) else None
        self._cache_size = cache_size if self._local is not None or cache_ttl > 0 else 0
        # (issuer, sid, sub, signed_in_at, session_id) -> memory: the generation; else: valid
        # until.
        self._clean: dict[tuple[str, str | None, str | None, float, str | None], float] = {}
        self._revokes = 0  # revoke() calls, so a read racing with one is not remembered
        self._now = now

    def known_clean(
        self,
        issuer: str,
        *,
        sid: str | None,
        sub: str | None,
        signed_in_at: float,
        session_id: str | None = None,
    ) -> bool:
        """Whether a remembered answer says this session is not revoked (no I/O, no await).

        ``False`` means "ask ``is_revoked``", not "revoked".

        Example::

            if not revocations.known_clean(iss, sid=sid, sub=sub, signed_in_at=at):
                revoked = await revocations.is_revoked(iss, sid=sid, sub=sub, signed_in_at=at)
        """
        mark = self._clean.get((issuer, sid, sub, signed_in_at, session_id))
        if mark is None:
            return False
        if self._local is not None:
            return mark == self._local._generation
        return self._now() < mark

    async def revoke(
        self, issuer: str, *, sid: str | None, sub: str | None, event_time: float
    ) -> None:
        """End the sessions of ``sid``, or of ``sub`` when there is no ``sid`` (section 2.7)."""
        if sid is not None:
            key = shared_key("rv-sid", issuer, sid)
        elif sub is not None:
            key = shared_key("rv-sub", issuer, sub)
        else:
            raise ConfigurationError("revoke needs sid or sub", code="missing_sub_and_sid")
        self._revokes += 1
        self._clean.clear()  # no "no" from before this write survives it
        await self.state.set_max(key, float(event_time), ttl=self.ttl)

    async def end_session(self, issuer: str, session_id: str, *, ttl: float) -> None:
        """End the one session whose random id is ``session_id``, for ``ttl`` seconds.

        For the app's own logout of a cookie session (the cookie cannot be deleted from every
        copy): pass the time the session could still live, so the entry expires with it.

        Example::

            await revocations.end_session(issuer, session_id, ttl=expires_at - now)
        """
        if ttl <= 0:
            return  # expired already: nothing can open it
        self._revokes += 1
        self._clean.clear()
        await self.state.set(shared_key("rv-x", issuer, session_id), "1", ttl=ttl)

    async def is_revoked(
        self,
        issuer: str,
        *,
        sid: str | None,
        sub: str | None,
        signed_in_at: float,
        session_id: str | None = None,
    ) -> bool:
        """Whether a logout event at or after ``signed_in_at`` matches this session, or the
        session ``session_id`` was ended by ``end_session``."""
        if self.known_clean(
            issuer, sid=sid, sub=sub, signed_in_at=signed_in_at, session_id=session_id
        ):
            return False
        # Taken before the read: a write racing with it makes the answer stale at once.
        mark = self._local._generation if self._local is not None else self._now() + self.cache_ttl
        revokes = self._revokes
        keys: list[str] = []
        if sid is not None:
            keys.append(shared_key("rv-sid", issuer, sid))
        if sub is not None:
            keys.append(shared_key("rv-sub", issuer, sub))
        if session_id is not None:
            keys.append(shared_key("rv-x", issuer, session_id))
        values = await self.state.get_many(keys)
        if session_id is not None and values.pop() is not None:
            return True
        for value in values:
            event_time = _number(value)
            if event_time is not None and signed_in_at <= event_time:
                return True
        if self._cache_size and revokes == self._revokes:
            clean = self._clean
            if len(clean) >= self._cache_size:
                del clean[next(iter(clean))]  # oldest first
            clean[(issuer, sid, sub, signed_in_at, session_id)] = mark
        return False


def default_shared_state(store: object, *, now: Callable[[], float] = time.time) -> SharedState:
    """The shared state to use when none is configured: the Redis of a ``RedisStore`` session
    store (so several instances agree), else memory.

    Example::

        state = default_shared_state(config.session_store, now=config.now)
    """
    if store is not None and type(store).__name__ == "RedisStore":
        from oidc_asgi.sessions.redis import RedisStore

        if isinstance(store, RedisStore):
            # Same connection pool and namespace as the sessions (a sub-prefix of it).
            return RedisSharedState(client=store.client, prefix=store.prefix + "x:")
    return MemorySharedState(now=now)
