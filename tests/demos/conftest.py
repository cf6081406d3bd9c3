"""Fixtures for the demo tests: the launcher's provider in-process and the demos wired to it.

Every demo is built by its factory with injected ``httpx.AsyncClient``s that reach the provider
and the API through ``httpx.ASGITransport``: no sockets, no ports (except the launcher test).
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

# The demos live at the repository root, next to src/ (they are not part of the package).
ROOT = str(Path(__file__).resolve().parents[2])
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from demo_apps import api  # noqa: E402
from demo_apps._settings import DemoSettings  # noqa: E402
from demo_apps.launcher import provider_config  # noqa: E402

from oidc_asgi.testing import DevProvider, KeyRing  # noqa: E402

from ._support import API, Demo  # noqa: E402


@pytest.fixture
def provider(shared_keys: KeyRing) -> DevProvider:
    return DevProvider(provider_config(), keys=shared_keys.copy())


@pytest.fixture
async def op_http(provider: DevProvider) -> AsyncIterator[httpx.AsyncClient]:
    async with provider.asgi_client() as client:
        yield client


@pytest.fixture
async def api_http(op_http: httpx.AsyncClient) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the ``api`` demo (in-process), itself wired to the provider."""
    app = api.create_app(DemoSettings.for_demo("api"), http_client=op_http)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=API) as client:
        yield client


@pytest.fixture
def demo(provider: DevProvider, op_http: httpx.AsyncClient, api_http: httpx.AsyncClient) -> Demo:
    return Demo(provider=provider, op_http=op_http, api_http=api_http)
