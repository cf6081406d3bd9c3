"""Redis plumbing shared by the Redis-backed stores (sessions, shared state, DPoP replay, tokens).

Each store keeps its own outage policy (fail closed with 503, or degrade to a cache miss) and
its own error codes; what they share lives here: the lazy ``redis.asyncio`` import (so the
package works without the ``redis`` extra), building a client from a URL or taking a ready one
(the caller then owns it), closing only what was built here, turning any failure into a 503
without the URL in the message, and TTLs in whole milliseconds.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Awaitable
from typing import Any

from oidc_asgi.errors import ConfigurationError, ProviderUnavailable


def redis_module(owner: str) -> tuple[Any, tuple[type[BaseException], ...]]:
    """``redis.asyncio`` and the errors a Redis call raises when the server cannot answer.

    ``owner`` names the class that needs it, for the ``missing_dependency`` message.
    """
    try:
        module: Any = importlib.import_module("redis.asyncio")
        errors: tuple[type[BaseException], ...] = (
            importlib.import_module("redis.exceptions").RedisError,
            OSError,
            TimeoutError,
        )
    except ImportError as exc:  # pragma: no cover - the extra is installed in tests
        raise ConfigurationError(
            f"{owner} needs the redis package: pip install 'oidc-asgi[redis]'",
            code="missing_dependency",
        ) from exc
    return module, errors


def client_from_url(owner: str, url: str, *, timeout: float | None = None) -> Any:
    """A ``redis.asyncio.Redis`` for ``url``; ``timeout`` bounds connecting and each call."""
    module, _ = redis_module(owner)
    if timeout is None:
        return module.Redis.from_url(url, decode_responses=False)
    return module.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)


def ttl_ms(seconds: float) -> int:
    """A TTL in whole milliseconds, at least one (an entry at the edge of its life is kept)."""
    return max(1, math.ceil(seconds * 1000))


class RedisClientHolder:
    """Holds ``_redis`` and whether it was built here; ``aclose`` closes only what was.

    Subclasses call ``_attach`` (one ready client, or a URL to build one from).
    """

    _redis: Any
    _owns_client: bool

    def _attach(self, owner: str, redis: Any, *, timeout: float | None = None) -> None:
        if isinstance(redis, str):
            self._redis = client_from_url(owner, redis, timeout=timeout)
            self._owns_client = True
        else:
            self._redis = redis
            self._owns_client = False

    async def aclose(self) -> None:
        """Close the Redis client if this object created it (one passed in is the caller's).

        Example::

            await store.aclose()
        """
        if self._owns_client:
            await self._redis.aclose()


def one_of_url_and_client(owner: str, url: str | None, client: Any) -> Any:
    """The ``redis`` argument of ``_attach`` from a ``url=`` / ``client=`` pair (exactly one)."""
    if (url is None) == (client is None):
        raise ConfigurationError(
            f"{owner} needs exactly one of url and client", code="invalid_store"
        )
    return str(url) if client is None else client


async def call_or_unavailable(coro: Awaitable[Any], *, what: str, code: str) -> Any:
    """Await a Redis call; any failure becomes ``ProviderUnavailable(code=code)`` (a 503).

    The exception text may hold the URL with a password, so only its class name is kept.
    """
    try:
        return await coro
    except Exception as exc:
        raise ProviderUnavailable(
            f"{what} failed ({type(exc).__name__})", code=code, retry_after=1
        ) from None
