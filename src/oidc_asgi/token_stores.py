"""Shared token stores: ``RedisTokenStore`` lets several instances share acquired tokens.

Plugs into ``TokenCache(store=...)``. Values are bearer tokens, so they are encrypted at rest
with the session codec (AES-256-GCM, keys derived by HKDF from a list of secrets under their own
purpose, so a session secret reused here opens nothing else), and each value is bound to its
Redis key (a value copied under another key does not open). Redis evicts entries itself (``PX``
set from the entry's life); the envelope also carries the expiry.

Redis is a cache here, never a dependency: any Redis failure (down, timeout, wrong password)
is logged at WARNING (at most once per ``warn_every`` seconds, without key or value) and turns
into a miss or a dropped write, so callers fetch a token instead of failing. Install the
``redis`` extra: ``pip install oidc-asgi[redis]``.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from oidc_asgi._redis import RedisClientHolder, redis_module, ttl_ms
from oidc_asgi.client import TokenResponse
from oidc_asgi.errors import ConfigurationError, OIDCError
from oidc_asgi.sessions import SessionCodec
from oidc_asgi.token_cache import CacheEntry

if TYPE_CHECKING:
    from redis.asyncio import Redis

__all__ = ["RedisTokenStore"]

logger = logging.getLogger("oidc_asgi.token_stores")

#: Purpose for key derivation: unrelated to the session and transaction keys.
PURPOSE = "token-store"
_MAX_VALUE_BYTES = 64 * 1024
_ENVELOPE_TTL = 366 * 24 * 3600.0  # the entry's own expiry is the real limit (the ceiling)


class RedisTokenStore(RedisClientHolder):
    """A ``TokenStore`` in Redis for ``TokenResponse`` values, encrypted at rest.

    ``redis`` is a URL (``redis://host:6379/0``, ``rediss://`` for TLS) or a ready
    ``redis.asyncio.Redis`` client (which the caller keeps and closes). ``secrets`` is a list,
    newest first, each at least 32 bytes: the first encrypts, all decrypt, so rotate by putting
    a new secret in front. ``prefix`` namespaces the keys. ``timeout`` bounds each Redis call
    when this store builds the client (a slow Redis must not hold up token acquisition).

    Example::

        store = RedisTokenStore("redis://localhost:6379/0", secrets=[os.environ["TOKEN_KEY"]])
        cache: TokenCache[TokenResponse] = TokenCache(store=store)
        auth = ClientCredentialsAuth(client, audience="https://orders.example/api", cache=cache)
    """

    def __init__(
        self,
        redis: str | Redis,
        *,
        secrets: Sequence[str | bytes],
        prefix: str = "oidc-asgi:token:",
        timeout: float = 1.0,
        warn_every: float = 60.0,
        now: Callable[[], float] = time.time,
    ) -> None:
        self._codec = SessionCodec(
            secrets=secrets,
            purpose=PURPOSE,
            absolute_ttl=_ENVELOPE_TTL,
            rolling_ttl=None,
            touch_after=0,
            max_bytes=_MAX_VALUE_BYTES,
            now=now,
        )
        if not isinstance(prefix, str):
            raise ConfigurationError("prefix must be a string", code="invalid_prefix")
        if not timeout > 0:
            raise ConfigurationError("timeout must be positive", code="invalid_timeout")
        _, self._errors = redis_module("RedisTokenStore")
        self._attach("RedisTokenStore", redis, timeout=timeout)
        self.prefix = prefix
        self.warn_every = warn_every
        self.failures = 0
        self._now = now
        self._last_warning = -math.inf

    def __repr__(self) -> str:
        return f"RedisTokenStore(prefix={self.prefix!r}, secrets=<hidden>)"

    def _failed(self, operation: str, exc: BaseException) -> None:
        self.failures += 1
        now = self._now()
        if now - self._last_warning >= self.warn_every:
            self._last_warning = now
            logger.warning(
                "token store: Redis %s failed (%s); falling back to fetching tokens "
                "(%d failures so far)",
                operation,
                type(exc).__name__,
                self.failures,
            )

    async def get(self, key: str) -> CacheEntry[TokenResponse] | None:
        """The entry under ``key``, or None when absent, unreadable or Redis is unavailable."""
        name = self.prefix + key
        try:
            raw = await self._redis.get(name)
        except self._errors as exc:
            self._failed("GET", exc)
            return None
        if raw is None:
            return None
        text = raw.decode("ascii", "replace") if isinstance(raw, bytes) else str(raw)
        try:
            opened = self._codec.load(text, cookie_name=name)
            data = opened.data
            value = TokenResponse.from_dict(data["v"])
            return CacheEntry(value, float(data["e"]))
        except OIDCError as exc:
            # Expired, written under a retired secret, or tampered: a miss either way.
            logger.debug("token store: entry refused (%s)", exc.code)
            return None
        except (KeyError, TypeError, ValueError):
            logger.debug("token store: entry has an unexpected shape")
            return None

    async def set(self, key: str, entry: CacheEntry[TokenResponse], *, ttl: float) -> None:
        """Store ``entry`` encrypted under ``key`` for ``ttl`` seconds (no-op on Redis errors)."""
        if not ttl > 0:
            return
        name = self.prefix + key
        payload = {"v": entry.value.to_dict(), "e": entry.expires_at}
        try:
            envelope = self._codec.encode(payload, cookie_name=name, ceiling=entry.expires_at)
        except OIDCError as exc:
            logger.warning("token store: entry not stored (%s)", exc.code)
            return
        try:
            await self._redis.set(name, envelope, px=ttl_ms(ttl))
        except self._errors as exc:
            self._failed("SET", exc)

    async def delete(self, key: str) -> None:
        """Forget ``key`` (no-op on Redis errors)."""
        try:
            await self._redis.delete(self.prefix + key)
        except self._errors as exc:
            self._failed("DEL", exc)
