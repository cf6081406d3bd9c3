"""Fixtures for the development provider's tests: a fake clock and keys generated once."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from _doubles import StepClock
from oidc_asgi.testing import DevProvider, DevProviderConfig, KeyRing

Clock = StepClock  # the settable clock these tests call ``Clock``


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
