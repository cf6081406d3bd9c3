"""Where a signed-in session lives: in the cookie itself, or in a server-side store.

Two layers:

* ``SessionStore`` is the small protocol a key-value service implements: versioned records
  (compare-and-set, so a slow request cannot overwrite a newer write or bring back a session
  that was logged out, tj/connect-redis #328) and set-valued indexes for finding every session
  of a provider session id or subject (the seam back-channel logout uses). ``MemoryStore``
  implements it in-process; ``oidc_asgi.sessions.redis.RedisStore`` implements it on Redis.
* ``SessionBackend`` is what the sign-in middleware talks to: it turns the request's cookies
  into a ``LoadedSession`` and a new session payload into ``Set-Cookie`` values.
  ``CookieSessions`` keeps the whole session in the cookie (``SessionCodec`` encryption plus
  ``ChunkedCookie`` chunking); ``ServerSessions`` keeps only a random 256-bit id in the cookie,
  signed with ``ValueSigner``, and stores the session under a *hash* of that id (a leaked store
  dump does not hold usable cookies), encrypted at rest with the same ``SessionCodec`` and bound
  to its key.

Lifetimes are the codec's: absolute from sign-in, rolling since the last write, and an optional
ceiling (the provider's ``session_expiry``). A server record expires in the store when the
session would (store TTL), so nothing outlives its session.

Example::

    from oidc_asgi.sessions import MemoryStore, ServerSessions, SessionCodec

    backend = ServerSessions(store=MemoryStore(), secrets=[secret])
    headers = await backend.save({"u": {"sub": "alice"}}, previous=None, cookies={}, https=True)
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import math
import secrets as _secrets
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from oidc_asgi.errors import ConfigurationError, OIDCError
from oidc_asgi.sessions._codec import DecodedSession, SessionCodec, ValueSigner
from oidc_asgi.sessions.cookies import ChunkedCookie, CookieOptions

__all__ = [
    "CookieSessions",
    "LoadedSession",
    "MemoryStore",
    "ServerSessions",
    "SessionBackend",
    "SessionStore",
    "StoredRecord",
    "index_key",
]

_MAX_MERGE_ATTEMPTS = 3


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _hash(text: str) -> str:
    return _b64(hashlib.sha256(text.encode("utf-8")).digest())


def index_key(kind: str, issuer: str, value: str) -> str:
    """The store name of a session index: ``kind`` (``"sid"`` or ``"sub"``) of ``issuer``.

    Hashed, so the store never holds a provider session id or subject in clear, and bounded in
    length whatever the issuer's URL.

    Example::

        members = await store.index_members(index_key("sid", issuer, sid))
    """
    return f"idx:{kind}:" + _hash(f"{kind}\x00{issuer}\x00{value}")


# --------------------------------------------------------------------------- the store protocol


@dataclass(frozen=True)
class StoredRecord:
    """One record of a ``SessionStore``: an opaque value and its version (1 after creation).

    Example::

        record = await store.get(key)
        if record is not None:
            ok = await store.put(key, new_value, ttl=3600, version=record.version)
    """

    value: str
    version: int


@runtime_checkable
class SessionStore(Protocol):
    """A key-value service for server-side sessions, with versioned writes and indexes.

    ``put(version=None)`` creates and fails if the key exists; ``put(version=n)`` replaces only
    if the current version is ``n`` and fails if the record changed or is gone (a logged-out
    session is never written back). Both return whether they wrote. ``ttl`` is in seconds.
    Index operations keep a set of store keys per index key (used to end every session of a
    provider ``sid`` or ``sub``).

    Example::

        class MyStore:
            async def get(self, key): ...
            async def put(self, key, value, *, ttl, version): ...
            async def delete(self, key): ...
            async def index_add(self, index, member, *, ttl): ...
            async def index_members(self, index): ...
            async def index_remove(self, index, member): ...
    """

    async def get(self, key: str) -> StoredRecord | None: ...

    async def put(self, key: str, value: str, *, ttl: float, version: int | None) -> bool: ...

    async def delete(self, key: str) -> None: ...

    async def index_add(self, index: str, member: str, *, ttl: float) -> None: ...

    async def index_members(self, index: str) -> list[str]: ...

    async def index_remove(self, index: str, member: str) -> None: ...


class MemoryStore:
    """An in-process ``SessionStore``: for tests, demos and single-process apps.

    Sessions are lost on restart and not shared between workers; use ``RedisStore`` for those.
    ``max_entries`` bounds memory: when full, expired records are swept and then the records
    closest to expiry are dropped. ``now`` is the clock.

    Example::

        backend = ServerSessions(store=MemoryStore(), secrets=[secret])
    """

    def __init__(self, *, max_entries: int = 100_000, now: Callable[[], float] = time.time) -> None:
        if isinstance(max_entries, bool) or not isinstance(max_entries, int) or max_entries < 1:
            raise ConfigurationError("max_entries must be an int >= 1", code="invalid_setting")
        self._records: dict[str, tuple[str, int, float]] = {}
        self._indexes: dict[str, dict[str, float]] = {}
        self._max = max_entries
        self._now = now

    def __len__(self) -> int:
        now = self._now()
        return sum(1 for _, _, exp in self._records.values() if exp > now)

    async def get(self, key: str) -> StoredRecord | None:
        """The live record under ``key``, or ``None``."""
        entry = self._records.get(key)
        if entry is None:
            return None
        value, version, expires = entry
        if expires <= self._now():
            del self._records[key]
            return None
        return StoredRecord(value, version)

    async def put(self, key: str, value: str, *, ttl: float, version: int | None) -> bool:
        """Create (``version=None``) or compare-and-set; see ``SessionStore``."""
        current = await self.get(key)
        if (version is None) != (current is None):
            return False
        if current is not None and current.version != version:
            return False
        if current is None and len(self._records) >= self._max:
            self._make_room()
        new_version = 1 if current is None else current.version + 1
        self._records[key] = (value, new_version, self._now() + max(ttl, 0.0))
        return True

    async def delete(self, key: str) -> None:
        """Remove ``key`` (no error when absent)."""
        self._records.pop(key, None)

    async def index_add(self, index: str, member: str, *, ttl: float) -> None:
        """Add ``member`` to the set ``index``, kept at least ``ttl`` seconds."""
        members = self._indexes.setdefault(index, {})
        members[member] = max(members.get(member, 0.0), self._now() + max(ttl, 0.0))

    async def index_members(self, index: str) -> list[str]:
        """The live members of ``index``."""
        now = self._now()
        members = self._indexes.get(index, {})
        return sorted(m for m, exp in members.items() if exp > now)

    async def index_remove(self, index: str, member: str) -> None:
        """Remove ``member`` from ``index``."""
        members = self._indexes.get(index)
        if members is not None:
            members.pop(member, None)
            if not members:
                del self._indexes[index]

    def _make_room(self) -> None:
        now = self._now()
        for key in [k for k, (_, _, exp) in self._records.items() if exp <= now]:
            del self._records[key]
        for index in list(self._indexes):
            live = {m: e for m, e in self._indexes[index].items() if e > now}
            if live:
                self._indexes[index] = live
            else:
                del self._indexes[index]
        overflow = len(self._records) - self._max + 1
        if overflow > 0:
            by_expiry = sorted(self._records, key=lambda k: self._records[k][2])
            for key in by_expiry[:overflow]:
                del self._records[key]


# --------------------------------------------------------------------------- backends


@dataclass(frozen=True, kw_only=True)
class LoadedSession:
    """A session read from a request: its data and the bookkeeping needed to write it back.

    ``data`` is the stored JSON object; ``created_at``/``expires_at``/``ceiling`` are the
    codec's lifetimes; ``needs_touch`` says an unchanged session should still be re-written
    (rolling window, or made with an older secret); ``handle`` and ``version`` identify the
    server-side record (``None`` for cookie sessions).

    Example::

        loaded = await backend.load(request.cookies)
        user = None if loaded is None else loaded.data.get("u")
    """

    # Not in repr: it holds tokens, and error trackers record frame locals by repr.
    data: dict[str, Any] = field(repr=False)
    created_at: float
    expires_at: float
    ceiling: float | None = None
    needs_touch: bool = False
    handle: str | None = None
    version: int | None = None
    size: int = field(default=0, compare=False)


Merge = Callable[[dict[str, Any]], dict[str, Any]]


@runtime_checkable
class SessionBackend(Protocol):
    """Reads a session from request cookies and writes one as ``Set-Cookie`` header values.

    ``save(rotate=True)`` issues a new session identity (at sign-in, against fixation) and
    retires ``previous``; ``merge``, when given, is called with the newest stored data if a
    concurrent request wrote first, and returns what to store instead (server stores only).
    ``indexes`` are index keys (``index_key(...)``) to file the session under.
    ``clear`` ends the session. Every method returns header values to append, never raises for
    bad cookies, and writes nothing when it raises.

    Example::

        loaded = await backend.load(cookies)
        headers = await backend.save(data, previous=loaded, cookies=cookies, https=True)
    """

    cookie_name: str

    async def load(self, cookies: Mapping[str, str]) -> LoadedSession | None: ...

    async def save(
        self,
        data: dict[str, Any],
        *,
        previous: LoadedSession | None,
        cookies: Mapping[str, str],
        https: bool,
        rotate: bool = False,
        ceiling: float | None = None,
        indexes: Sequence[str] = (),
        merge: Merge | None = None,
    ) -> list[str]: ...

    async def clear(
        self, previous: LoadedSession | None, *, cookies: Mapping[str, str], https: bool
    ) -> list[str]: ...


def _max_age(expires_at: float, now: float) -> int:
    return max(0, math.floor(expires_at - now))


def _expiry(codec: SessionCodec, created: float, now: float, ceiling: float | None) -> float:
    expires = created + codec.absolute_ttl
    if codec.rolling_ttl is not None:
        expires = min(expires, now + codec.rolling_ttl)
    if ceiling is not None:
        expires = min(expires, ceiling)
    return expires


class CookieSessions:
    """Sessions kept entirely in an encrypted, chunked cookie (the default backend).

    Stateless: nothing to run, nothing to lose on restart; the price is request size (the
    session travels with every request) and that a copied cookie stays valid until it expires.
    Stale chunks are always expired when the session shrinks or ends.

    Example::

        backend = CookieSessions(codec=SessionCodec(secrets=[secret]),
                                 jar=ChunkedCookie(name="oidc_session"))
    """

    def __init__(
        self, *, codec: SessionCodec, jar: ChunkedCookie, now: Callable[[], float] = time.time
    ) -> None:
        self.codec = codec
        self.jar = jar
        self.cookie_name = jar.name
        self._now = now

    def __repr__(self) -> str:
        return f"CookieSessions(cookie_name={self.cookie_name!r})"

    async def load(self, cookies: Mapping[str, str]) -> LoadedSession | None:
        """The session in ``cookies``, or ``None`` (absent, tampered, foreign or expired)."""
        decoded = self.codec.decode(self.jar.read(cookies), cookie_name=self.cookie_name)
        if decoded is None:
            return None
        return _loaded(decoded, self.codec, handle=None, version=None)

    async def save(
        self,
        data: dict[str, Any],
        *,
        previous: LoadedSession | None,
        cookies: Mapping[str, str],
        https: bool,
        rotate: bool = False,
        ceiling: float | None = None,
        indexes: Sequence[str] = (),
        merge: Merge | None = None,
    ) -> list[str]:
        """Encrypt ``data`` into the cookie; a rotated session starts its absolute lifetime."""
        created = None if rotate or previous is None else previous.created_at
        if not rotate and previous is not None and ceiling is None:
            ceiling = previous.ceiling
        value = self.codec.encode(
            data, cookie_name=self.cookie_name, created_at=created, ceiling=ceiling
        )
        now = self._now()
        expires = _expiry(self.codec, now if created is None else created, now, ceiling)
        # The codec's envelope is base64url and dots: always cookie-safe, no need to re-check.
        return self.jar._write(value, cookies=cookies, https=https, max_age=_max_age(expires, now))

    async def clear(
        self, previous: LoadedSession | None, *, cookies: Mapping[str, str], https: bool
    ) -> list[str]:
        """Expire the cookie and every chunk the request carries."""
        if not self.jar.present(cookies):
            return []
        return self.jar.clear(cookies, https=https)


def _loaded(
    decoded: DecodedSession, codec: SessionCodec, *, handle: str | None, version: int | None
) -> LoadedSession:
    return LoadedSession(
        data=decoded.data,
        created_at=decoded.created_at,
        expires_at=decoded.expires_at,
        ceiling=decoded.ceiling,
        needs_touch=codec.needs_reissue(decoded),
        handle=handle,
        version=version,
        size=decoded.size,
    )


class ServerSessions:
    """Sessions kept in a ``SessionStore``; the cookie holds only a signed random id.

    The id is 256 random bits, signed with ``ValueSigner`` (purpose ``session-id``) so forged ids
    are refused before any store lookup; the store key is ``prefix`` + SHA-256 of the id; the
    value is encrypted with ``SessionCodec`` (purpose ``store``) and bound to that key. Writes
    are compare-and-set: when a concurrent request of the same session wrote first, ``merge``
    re-applies this request's change to the newer data (no lost updates), and a session ended
    in the meantime is not brought back.

    Example::

        backend = ServerSessions(store=RedisStore(url="redis://localhost:6379/0"),
                                 secrets=[secret], cookie=CookieOptions())
    """

    def __init__(
        self,
        *,
        store: SessionStore,
        secrets: Sequence[str | bytes],
        cookie_name: str = "oidc_session",
        cookie: CookieOptions | None = None,
        absolute_ttl: float = 7 * 24 * 3600,
        rolling_ttl: float | None = 24 * 3600,
        touch_after: float = 60,
        max_bytes: int = 64 * 1024,
        prefix: str = "oidc:s:",
        now: Callable[[], float] = time.time,
    ) -> None:
        if not isinstance(store, SessionStore):
            raise ConfigurationError(
                "store must implement SessionStore (get, put, delete, index_*)",
                code="invalid_store",
            )
        self.store = store
        self.codec = SessionCodec(
            secrets=secrets,
            purpose="store",
            absolute_ttl=absolute_ttl,
            rolling_ttl=rolling_ttl,
            touch_after=touch_after,
            max_bytes=max_bytes,
            now=now,
        )
        self._signer = ValueSigner(secrets=secrets, purpose="session-id", max_length=256)
        # A single small cookie; ChunkedCookie only for its attribute handling and clearing.
        self.jar = ChunkedCookie(name=cookie_name, options=cookie or CookieOptions(), max_chunks=1)
        self.cookie_name = cookie_name
        self._prefix = prefix
        self._now = now

    def __repr__(self) -> str:
        return f"ServerSessions(store={type(self.store).__name__}, cookie={self.cookie_name!r})"

    def _key(self, session_id: str) -> str:
        return self._prefix + _hash(session_id)

    async def load(self, cookies: Mapping[str, str]) -> LoadedSession | None:
        """The session whose signed id is in ``cookies``, or ``None``."""
        session_id = self._signer.unsign(self.jar.read(cookies))
        if session_id is None:
            return None
        key = self._key(session_id)
        record = await self.store.get(key)
        if record is None:
            return None
        decoded = self.codec.decode(record.value, cookie_name=key)
        if decoded is None:
            return None
        return _loaded(decoded, self.codec, handle=key, version=record.version)

    async def save(
        self,
        data: dict[str, Any],
        *,
        previous: LoadedSession | None,
        cookies: Mapping[str, str],
        https: bool,
        rotate: bool = False,
        ceiling: float | None = None,
        indexes: Sequence[str] = (),
        merge: Merge | None = None,
    ) -> list[str]:
        """Write ``data`` (compare-and-set) and return the cookie to send, if any."""
        now = self._now()
        if rotate or previous is None or previous.handle is None:
            session_id = _secrets.token_urlsafe(32)
            key = self._key(session_id)
            value = self.codec.encode(data, cookie_name=key, ceiling=ceiling)
            expires = _expiry(self.codec, now, now, ceiling)
            if not await self.store.put(key, value, ttl=expires - now, version=None):
                raise OIDCError("session id collision", code="session_store_conflict")
            await self._index(indexes, key, expires - now)
            if previous is not None and previous.handle is not None:
                await self.store.delete(previous.handle)
            return self.jar.write(
                self._signer.sign(session_id),
                cookies=cookies,
                https=https,
                max_age=_max_age(expires, now),
            )
        key = previous.handle
        version = previous.version
        ceiling = previous.ceiling if ceiling is None else ceiling
        for _ in range(_MAX_MERGE_ATTEMPTS):
            value = self.codec.encode(
                data, cookie_name=key, created_at=previous.created_at, ceiling=ceiling
            )
            expires = _expiry(self.codec, previous.created_at, now, ceiling)
            if await self.store.put(key, value, ttl=expires - now, version=version):
                await self._index(indexes, key, expires - now)
                # The cookie carries the same id; re-send it only to move its Max-Age along.
                signed = self.jar.read(cookies)
                if signed is None:  # pragma: no cover - load() needed it
                    return []
                return self.jar.write(
                    signed, cookies=cookies, https=https, max_age=_max_age(expires, now)
                )
            current = await self.store.get(key)
            decoded = None if current is None else self.codec.decode(current.value, cookie_name=key)
            if current is None or decoded is None or merge is None:
                # Ended (logged out, expired) while this request ran, or nothing to merge
                # with: the newer state wins and nothing is written.
                return []
            data = merge(decoded.data)
            version = current.version
        raise OIDCError(
            "session kept changing under concurrent writes", code="session_store_conflict"
        )

    async def clear(
        self, previous: LoadedSession | None, *, cookies: Mapping[str, str], https: bool
    ) -> list[str]:
        """Delete the stored session and expire its cookie."""
        if previous is not None and previous.handle is not None:
            await self.store.delete(previous.handle)
        if not self.jar.present(cookies):
            return []
        return self.jar.clear(cookies, https=https)

    async def end_sessions(
        self, index: str, *, only: Callable[[LoadedSession], bool] | None = None
    ) -> int:
        """Delete every session filed under ``index`` (see ``index_key``); returns how many.

        The seam for back-channel logout (OpenID Connect Back-Channel Logout 1.0 section 2.7):
        one index lookup, no scan over all sessions. With ``only``, a live session is deleted
        only when ``only(session)`` is true (the others stay, and stay in the index), for
        example only sessions signed in before the logout event.

        Example::

            ended = await backend.end_sessions(index_key("sid", issuer, claims["sid"]))
        """
        members = await self.store.index_members(index)
        if only is not None and members:
            records = await asyncio.gather(*(self.store.get(member) for member in members))
            chosen: list[str] = []
            for member, record in zip(members, records, strict=True):
                if record is not None:
                    decoded = self.codec.decode(record.value, cookie_name=member)
                    if decoded is not None and not only(
                        _loaded(decoded, self.codec, handle=member, version=record.version)
                    ):
                        continue  # a live session to keep
                # Ended, or gone, expired or unreadable (then only its index entry goes).
                chosen.append(member)
            members = chosen
        await asyncio.gather(*(self.store.delete(member) for member in members))
        for member in members:
            await self.store.index_remove(index, member)
        return len(members)

    async def _index(self, indexes: Sequence[str], key: str, ttl: float) -> None:
        jobs: list[Awaitable[None]] = [
            self.store.index_add(index, key, ttl=ttl) for index in indexes
        ]
        if jobs:
            await asyncio.gather(*jobs)
