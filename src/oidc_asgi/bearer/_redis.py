"""A DPoP replay store in Redis, shared by every replica of an API (RFC 9449 section 11.1).

One ``SET key 1 NX PX ttl`` per proof: atomic, so two replicas receiving the same proof at the
same moment cannot both accept it, and Redis forgets the entry when the proof could no longer
pass the ``iat`` window anyway. ``redis`` is imported when a store is built, so the package
works without the ``redis`` extra.

Outage policy: **fail closed**. When Redis cannot answer, a proof cannot be shown to be fresh;
accepting it would let a stolen proof be replayed for as long as the outage lasts, so the
store raises ``ProviderUnavailable(code="replay_store_unavailable")``, which the glue answers
with 503 and ``Retry-After`` (the client's credentials were not judged, so never 401).
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from oidc_asgi._redis import RedisClientHolder, redis_module, ttl_ms
from oidc_asgi.errors import ConfigurationError, ProviderUnavailable

if TYPE_CHECKING:  # pragma: no cover - typing only
    from redis.asyncio import Redis

__all__ = ["RedisReplayStore"]

log = logging.getLogger("oidc_asgi.bearer")


class RedisReplayStore(RedisClientHolder):
    """A ``ReplayStore`` in Redis: share one across replicas so a proof replayed to another
    instance is rejected too (RFC 9449 section 11.1).

    ``redis`` is a URL (``redis://host:6379/0``, ``rediss://`` for TLS) or a ready
    ``redis.asyncio.Redis`` client (which the caller keeps and closes). Keys are
    ``prefix`` + SHA-256 of the key thumbprint and ``jti`` (fixed size, whatever the client
    sent). ``timeout`` bounds each Redis call when this store builds the client. When Redis
    cannot answer, :meth:`seen` raises ``ProviderUnavailable`` (code
    ``replay_store_unavailable``, answered 503 with ``Retry-After: retry_after``): fail closed.

    Example::

        store = RedisReplayStore("redis://localhost:6379/0")
        verifier = DPoPVerifier(DPoPSettings(required=True), replay_store=store)
        validator = BearerValidator(config, dpop_verifier=verifier)
    """

    def __init__(
        self,
        redis: str | Redis,
        *,
        prefix: str = "oidc-asgi:dpop:",
        timeout: float = 0.5,
        retry_after: int = 5,
        now: Callable[[], float] = time.time,
    ) -> None:
        if not isinstance(prefix, str):
            raise ConfigurationError("prefix must be a string", code="invalid_setting")
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout > 0:
            raise ConfigurationError("timeout must be positive", code="invalid_setting")
        if isinstance(retry_after, bool) or not isinstance(retry_after, int) or retry_after < 1:
            raise ConfigurationError("retry_after must be an int >= 1", code="invalid_setting")
        _, self._errors = redis_module("RedisReplayStore")
        self._attach("RedisReplayStore", redis, timeout=timeout)
        self.prefix = prefix
        self.retry_after = retry_after
        self.failures = 0
        self._now = now

    def __repr__(self) -> str:
        return f"RedisReplayStore(prefix={self.prefix!r})"

    async def seen(self, key: str, expires_at: float) -> bool:
        """Record ``key`` until ``expires_at``; ``True`` when it was already recorded.

        Raises ``ProviderUnavailable`` (``replay_store_unavailable``) when Redis cannot answer.

        Example::

            if await store.seen(f"{jkt}:{jti}", iat + window):
                raise TokenError("replayed proof", code="invalid_dpop_proof", claim="jti")
        """
        # Whole milliseconds, at least one: a proof at the edge of its window is still stored.
        px = ttl_ms(expires_at - self._now())
        name = self.prefix + hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()
        try:
            created = await self._redis.set(name, b"1", nx=True, px=px)
        except self._errors as exc:
            self.failures += 1
            # The exception text may name the Redis host; the proof key is never logged.
            log.warning("bearer: DPoP replay store unavailable (%s)", type(exc).__name__)
            raise ProviderUnavailable(
                "the DPoP replay store cannot be reached",
                code="replay_store_unavailable",
                retry_after=self.retry_after,
            ) from None
        return not created
