"""Fixtures for the bearer pillar: a development provider in-process, a clock, counted fetches."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

import httpx
import pytest

from oidc_asgi.bearer import BearerConfig, BearerValidator
from oidc_asgi.testing import DevProvider, DevProviderConfig, KeyRing

from ._support import API, Clock, CountingTransport


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def dev(shared_keys: KeyRing, clock: Clock) -> DevProvider:
    return DevProvider(DevProviderConfig.default(), now=clock, keys=shared_keys.copy())


@pytest.fixture
def transport(dev: DevProvider) -> CountingTransport:
    return CountingTransport(httpx.ASGITransport(app=dev))


@pytest.fixture
async def http(transport: CountingTransport) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=transport) as client:
        yield client


MakeValidator = Callable[..., BearerValidator]


@pytest.fixture
def make_validator(dev: DevProvider, http: httpx.AsyncClient, clock: Clock) -> MakeValidator:
    """``make_validator(**config_overrides)``: a validator for ``API`` wired to ``dev``."""

    def make(**overrides: Any) -> BearerValidator:
        values: dict[str, Any] = {"issuer": dev.issuer, "audience": API}
        values.update(overrides)
        return BearerValidator(BearerConfig(**values), http_client=http, now=clock)

    return make


@pytest.fixture
def validator(make_validator: MakeValidator) -> BearerValidator:
    return make_validator()


MintToken = Callable[..., str]


@pytest.fixture
def mint(dev: DevProvider) -> MintToken:
    """``mint(scopes=[...], claims={...})``: a valid access token for ``API``."""

    def make(scopes: Sequence[str] = ("read:messages",), **kwargs: Any) -> str:
        kwargs.setdefault("audience", API)
        return dev.mint_access_token(scopes=scopes, **kwargs)

    return make
