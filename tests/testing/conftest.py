"""Fixtures for the development provider's tests: a fake clock and keys generated once."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from oidc_asgi.testing import DevProvider, DevProviderConfig, KeyRing


class Clock:
    """A settable clock: ``clock.advance(seconds)`` instead of sleeping."""

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self.value = start

    def __call__(self) -> float:
        return self.value

    def advance(self, seconds: float) -> None:
        self.value += seconds


@pytest.fixture(scope="session")
def shared_keys() -> KeyRing:
    return KeyRing()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def config() -> DevProviderConfig:
    return DevProviderConfig.default()


@pytest.fixture
def provider(config: DevProviderConfig, clock: Clock, shared_keys: KeyRing) -> DevProvider:
    return DevProvider(config, now=clock, keys=shared_keys.copy())


@pytest.fixture
async def http(provider: DevProvider) -> AsyncIterator[httpx.AsyncClient]:
    async with provider.asgi_client() as client:
        yield client
