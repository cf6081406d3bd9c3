"""Shared fixtures. Real services come from ``tests/_services.py``."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from _services import run_redis_server
from oidc_asgi.testing import KeyRing


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """URL of a real ``redis-server`` started for this test session (flush it per test)."""
    yield from run_redis_server()


@pytest.fixture(scope="session")
def shared_keys() -> KeyRing:
    """Signing keys generated once per session; tests take ``shared_keys.copy()``."""
    return KeyRing()
