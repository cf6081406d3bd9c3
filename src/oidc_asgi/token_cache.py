"""A cache for tokens this application acquires: bounded, keyed by hash, single-flight per key.

``TokenCache`` sits in front of a token request. ``get_or_fetch(key, fetch)`` returns the cached
token while it is fresh; otherwise exactly one ``fetch`` runs for that key however many callers
ask at once (a thousand concurrent requests for a downstream API cost one token request), and
every waiter gets its result or its error. Failures are never cached.

An entry lives for the token's life minus ``margin`` (so a token is not handed out seconds before
it expires) and never beyond ``not_after``: an on-behalf-of token is cached under the hash of the
user's incoming token, and must not outlive it.

Keys come from ``token_cache_key()``: a SHA-256 over the client, the issuer or token endpoint,
the audience/resource, the sorted scopes and, for on-behalf-of and token exchange, the SHA-256 of
the subject and actor tokens (with their declared types), so two users never share an entry and
no raw token is ever a key.

Storage is a small async protocol, ``TokenStore``. ``MemoryTokenStore`` (an LRU bounded by
``max_entries``) is the default; a shared store (Redis, with values encrypted at rest) plugs in
through the same three methods.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

from oidc_asgi.errors import ConfigurationError

__all__ = [
    "CacheEntry",
    "Expiring",
    "MemoryTokenStore",
    "TokenCache",
    "TokenStore",
    "token_cache_key",
]

DEFAULT_MARGIN = 60.0
DEFAULT_LIFETIME = 300.0
DEFAULT_MAX_ENTRIES = 10_000
_KEY_VERSION = "oidc-asgi/token-cache/v2"


class Expiring(Protocol):
    """What the cache needs from a cached value: its absolute expiry, or None when unknown.

    ``oidc_asgi.client.TokenResponse`` is one.

    Example::

        @dataclass(frozen=True)
        class MyToken:
            value: str
            expires_at: float | None
    """

    @property
    def expires_at(self) -> float | None: ...


V = TypeVar("V", bound=Expiring)


@dataclass(frozen=True)
class CacheEntry(Generic[V]):
    """A cached value and the absolute time (seconds since the epoch) the cache stops serving it.

    ``expires_at`` is already reduced by the margin and capped by ``not_after``; stores keep
    entries as they are given.

    Example::

        entry = await store.get(key)
        if entry is not None and entry.expires_at > time.time():
            use(entry.value)
    """

    value: V
    expires_at: float


class TokenStore(Protocol[V]):
    """Where a ``TokenCache`` keeps its entries.

    Keys are opaque hex strings from ``token_cache_key()``. ``ttl`` (seconds, > 0) lets a store
    evict on its own (Redis ``PX``); the cache also checks ``CacheEntry.expires_at`` on every read,
    so a store may keep an entry longer. A store backed by a network service must not raise for
    an outage: log it, return None from ``get`` and drop the write, so the cache degrades to
    fetching instead of failing. A store that persists values outside the process must encrypt
    them: they hold bearer tokens.

    Example::

        class MyStore:
            async def get(self, key): ...
            async def set(self, key, entry, *, ttl): ...
            async def delete(self, key): ...
    """

    async def get(self, key: str) -> CacheEntry[V] | None:
        """The entry stored under ``key``, or None."""
        ...

    async def set(self, key: str, entry: CacheEntry[V], *, ttl: float) -> None:
        """Store ``entry`` under ``key`` for at most ``ttl`` seconds."""
        ...

    async def delete(self, key: str) -> None:
        """Forget ``key`` (no error when absent)."""
        ...


class MemoryTokenStore(Generic[V]):
    """An in-process store: a least-recently-used map bounded by ``max_entries``.

    The bound keeps memory flat however many users an on-behalf-of API serves; expired entries
    are dropped when read and pushed out by newer ones.

    Example::

        store: MemoryTokenStore[TokenResponse] = MemoryTokenStore(max_entries=1000)
        cache = TokenCache(store=store)
    """

    def __init__(
        self, *, max_entries: int = DEFAULT_MAX_ENTRIES, now: Callable[[], float] = time.time
    ) -> None:
        if isinstance(max_entries, bool) or not isinstance(max_entries, int) or max_entries < 1:
            raise ConfigurationError(
                "max_entries must be a positive integer", code="invalid_max_entries"
            )
        self.max_entries = max_entries
        self._now = now
        self._entries: OrderedDict[str, CacheEntry[V]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    async def get(self, key: str) -> CacheEntry[V] | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry.expires_at <= self._now():
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return entry

    async def set(self, key: str, entry: CacheEntry[V], *, ttl: float) -> None:
        self._entries[key] = entry
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    async def delete(self, key: str) -> None:
        self._entries.pop(key, None)


class TokenCache(Generic[V]):
    """Single-flight token cache in front of any token request.

    ``margin`` seconds are taken off each token's life; a token without an expiry is kept
    ``default_lifetime`` seconds. ``now`` is the clock (injectable for tests).

    Example::

        cache: TokenCache[TokenResponse] = TokenCache(margin=60)
        key = token_cache_key(client_id="daemon", issuer=issuer, scopes=["read:messages"])
        tokens = await cache.get_or_fetch(
            key, lambda: client.client_credentials(scope="read:messages")
        )
    """

    def __init__(
        self,
        *,
        store: TokenStore[V] | None = None,
        max_entries: int = DEFAULT_MAX_ENTRIES,
        margin: float = DEFAULT_MARGIN,
        default_lifetime: float = DEFAULT_LIFETIME,
        now: Callable[[], float] = time.time,
    ) -> None:
        if margin < 0:
            raise ConfigurationError("margin must not be negative", code="invalid_margin")
        if default_lifetime < 0:
            raise ConfigurationError(
                "default_lifetime must not be negative", code="invalid_default_lifetime"
            )
        if store is not None and max_entries != DEFAULT_MAX_ENTRIES:
            raise ConfigurationError(
                "max_entries applies to the default memory store; set it on your store",
                code="conflicting_cache_settings",
            )
        self.margin = margin
        self.default_lifetime = default_lifetime
        self._now = now
        self.store: TokenStore[V] = (
            store if store is not None else MemoryTokenStore(max_entries=max_entries, now=now)
        )
        self._flights: dict[str, asyncio.Task[V]] = {}

    async def get(self, key: str) -> V | None:
        """The fresh cached value for ``key``, or None (no fetch)."""
        entry = await self.store.get(key)
        if entry is None or entry.expires_at <= self._now():
            return None
        return entry.value

    async def get_or_fetch(
        self,
        key: str,
        fetch: Callable[[], Awaitable[V]],
        *,
        not_after: float | None = None,
        max_ttl: float | None = None,
    ) -> V:
        """The cached value for ``key``, or the result of one shared ``fetch``.

        Concurrent callers with the same key share one flight; if it fails, each of them gets
        the error and nothing is cached. Cancelling one caller does not cancel the flight the
        others wait for. ``not_after`` (absolute seconds, e.g. the subject token's ``exp``) caps
        how long the result is cached; ``max_ttl`` (seconds from when the result arrives) caps
        it too, for a result whose inputs have no known expiry (an opaque subject token).

        Example::

            tokens = await cache.get_or_fetch(key, fetch, not_after=subject_claims["exp"])
        """
        flight = self._flights.get(key)
        if flight is None:
            cached = await self.get(key)
            if cached is not None:
                return cached
            # The store read may have suspended: another caller may have started a flight.
            flight = self._flights.get(key)
        if flight is None:
            flight = asyncio.ensure_future(self._fly(key, fetch, not_after, max_ttl))
            self._flights[key] = flight
            flight.add_done_callback(lambda done: self._land(key, done))
        return await asyncio.shield(flight)

    async def invalidate(self, key: str) -> None:
        """Forget ``key``: the next ``get_or_fetch`` fetches (used after a 401 from an API)."""
        await self.store.delete(key)

    def expiry_for(
        self, value: V, *, not_after: float | None = None, max_ttl: float | None = None
    ) -> float:
        """When the cache stops serving ``value``: life minus margin, capped by ``not_after``
        and by ``max_ttl`` seconds from now."""
        now = self._now()
        expires_at = value.expires_at
        until = (now + self.default_lifetime if expires_at is None else expires_at) - self.margin
        if not_after is not None:
            until = min(until, not_after)
        if max_ttl is not None:
            until = min(until, now + max_ttl)
        return until

    async def _fly(
        self,
        key: str,
        fetch: Callable[[], Awaitable[V]],
        not_after: float | None,
        max_ttl: float | None,
    ) -> V:
        value = await fetch()
        until = self.expiry_for(value, not_after=not_after, max_ttl=max_ttl)
        ttl = until - self._now()
        if ttl > 0:
            await self.store.set(key, CacheEntry(value, until), ttl=ttl)
        return value

    def _land(self, key: str, flight: asyncio.Task[V]) -> None:
        if self._flights.get(key) is flight:
            del self._flights[key]
        if not flight.cancelled():
            # Mark the error as retrieved: when every waiter was cancelled nobody else will.
            flight.exception()


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


def _names(value: str | Sequence[str] | None, *, split: bool = False) -> list[str]:
    # Order-insensitive; a scope string is space-separated (RFC 6749 section 3.3).
    if value is None:
        return []
    if isinstance(value, str):
        return sorted(set(value.split() if split else [value]))
    return sorted(set(value))


def token_cache_key(
    *,
    client_id: str,
    issuer: str,
    grant: str = "client_credentials",
    audience: str | Sequence[str] | None = None,
    resource: str | Sequence[str] | None = None,
    scopes: str | Sequence[str] | None = None,
    subject_token: str | None = None,
    actor_token: str | None = None,
    requested_token_type: str | None = None,
    subject_token_type: str | None = None,
    actor_token_type: str | None = None,
) -> str:
    """A cache key: SHA-256 (hex) over everything that decides which token the server issues.

    ``issuer`` is the issuer identifier (or the token endpoint when that is what you have);
    ``scopes`` and audiences are order-insensitive; ``subject_token`` and ``actor_token`` (for
    on-behalf-of and token exchange) enter only as their own SHA-256, so no raw token is kept
    in a key and two users never share an entry. ``subject_token_type`` and
    ``actor_token_type`` (RFC 8693 section 2.1) enter too: the same token exchanged under
    another declared type may be judged differently by the server, so it never shares an entry.

    Example::

        key = token_cache_key(client_id="api", issuer=issuer, grant="on_behalf_of",
                              scopes=["api://orders/.default"], subject_token=incoming)
    """
    if not client_id or not issuer:
        raise ConfigurationError(
            "a token cache key needs client_id and issuer", code="invalid_cache_key"
        )
    material = {
        "v": _KEY_VERSION,
        "client_id": client_id,
        "issuer": issuer,
        "grant": grant,
        "audience": _names(audience),
        "resource": _names(resource),
        "scopes": _names(scopes, split=True),
        "subject": None if subject_token is None else _digest(subject_token),
        "actor": None if actor_token is None else _digest(actor_token),
        "requested_token_type": requested_token_type,
        "subject_token_type": subject_token_type,
        "actor_token_type": actor_token_type,
    }
    return _digest(json.dumps(material, sort_keys=True, separators=(",", ":")))
