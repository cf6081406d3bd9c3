"""Fixtures for sign-in tests: the development provider in-process, a fake clock, app builders."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from oidc_asgi.testing import DevProvider, KeyRing

from ._support import Clock, Harness, provider_config


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def dev(clock: Clock, shared_keys: KeyRing) -> DevProvider:
    return DevProvider(provider_config(), now=clock, keys=shared_keys.copy())


@pytest.fixture
async def harness(dev: DevProvider, clock: Clock) -> AsyncIterator[Harness]:
    async with dev.asgi_client() as op_http:
        yield Harness(provider=dev, op_http=op_http, clock=clock)


@pytest.fixture
async def op_http(harness: Harness) -> httpx.AsyncClient:
    return harness.op_http
