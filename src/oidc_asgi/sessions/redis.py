"""``RedisStore``: the ``SessionStore`` protocol on Redis (``redis.asyncio``), for many workers.

``redis`` is imported only when a store is built from a URL, so the package works without the
``redis`` extra. Each record is a hash ``{v: version, d: value}`` written by a Lua script that
compares the version first (atomic compare-and-set, no WATCH round trips) and sets the TTL in
the same step; indexes are sets whose TTL is extended to cover their longest member.

Example::

    from oidc_asgi.sessions.redis import RedisStore

    store = RedisStore(url="redis://localhost:6379/0")
    app.add_middleware(OIDCAuth, ..., session_store=store)
"""

from __future__ import annotations

from typing import Any

from oidc_asgi._redis import (
    RedisClientHolder,
    call_or_unavailable,
    one_of_url_and_client,
    ttl_ms,
)
from oidc_asgi.sessions.stores import StoredRecord

__all__ = ["RedisStore"]

# KEYS[1] record; ARGV[1] expected version ("" = create), ARGV[2] value, ARGV[3] ttl in ms.
_PUT = """
local current = redis.call('HGET', KEYS[1], 'v')
if ARGV[1] == '' then
  if current then return 0 end
elseif current ~= ARGV[1] then
  return 0
end
local version = (tonumber(current) or 0) + 1
redis.call('HSET', KEYS[1], 'v', version, 'd', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return version
"""

# KEYS[1] index set; ARGV[1] member, ARGV[2] ttl in ms (only ever extended).
_INDEX_ADD = """
redis.call('SADD', KEYS[1], ARGV[1])
local left = redis.call('PTTL', KEYS[1])
if left < tonumber(ARGV[2]) then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 1
"""


class RedisStore(RedisClientHolder):
    """A ``SessionStore`` on Redis: shared by every worker, survives restarts.

    Pass ``url`` (``redis://`` or ``rediss://``) or a ready ``redis.asyncio.Redis`` as
    ``client`` (the caller then owns it). ``prefix`` namespaces every key. Connection failures
    raise ``ProviderUnavailable(code="session_store_unavailable")``, which the middleware
    answers with 503.

    Example::

        store = RedisStore(url=os.environ["REDIS_URL"], prefix="myapp:")
    """

    def __init__(
        self, *, url: str | None = None, client: Any = None, prefix: str = "oidc-asgi:"
    ) -> None:
        self._attach("RedisStore", one_of_url_and_client("RedisStore", url, client))
        self._prefix = prefix
        self._put = self._redis.register_script(_PUT)
        self._index_add = self._redis.register_script(_INDEX_ADD)

    def __repr__(self) -> str:
        return f"RedisStore(prefix={self._prefix!r})"

    @property
    def client(self) -> Any:
        """The ``redis.asyncio.Redis`` client, for sharing its pool with other Redis state.

        Example::

            state = RedisSharedState(client=store.client, prefix=store.prefix + "x:")
        """
        return self._redis

    @property
    def prefix(self) -> str:
        """The prefix every key of this store starts with.

        Example::

            assert store.prefix == "oidc-asgi:"
        """
        return self._prefix

    async def _call(self, coro: Any) -> Any:
        return await call_or_unavailable(
            coro, what="session store", code="session_store_unavailable"
        )

    async def get(self, key: str) -> StoredRecord | None:
        """The record under ``key``, or ``None``."""
        raw = await self._call(self._redis.hmget(self._prefix + key, "v", "d"))
        version, value = raw
        if version is None or value is None:
            return None
        return StoredRecord(value.decode("utf-8"), int(version))

    async def put(self, key: str, value: str, *, ttl: float, version: int | None) -> bool:
        """Create or compare-and-set atomically (one Lua script); see ``SessionStore``."""
        expected = "" if version is None else str(version)
        result = await self._call(
            self._put(keys=[self._prefix + key], args=[expected, value, ttl_ms(ttl)])
        )
        return bool(result)

    async def delete(self, key: str) -> None:
        """Remove ``key``."""
        await self._call(self._redis.delete(self._prefix + key))

    async def index_add(self, index: str, member: str, *, ttl: float) -> None:
        """Add ``member`` to the set ``index`` and keep the set at least ``ttl`` seconds."""
        await self._call(self._index_add(keys=[self._prefix + index], args=[member, ttl_ms(ttl)]))

    async def index_members(self, index: str) -> list[str]:
        """Members of ``index`` (members whose record expired are dropped lazily)."""
        raw = await self._call(self._redis.smembers(self._prefix + index))
        return sorted(item.decode("utf-8") for item in raw)

    async def index_remove(self, index: str, member: str) -> None:
        """Remove ``member`` from ``index``."""
        await self._call(self._redis.srem(self._prefix + index, member))
