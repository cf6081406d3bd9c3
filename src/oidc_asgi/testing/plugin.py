"""pytest plugin for oidc-asgi (registered through the ``pytest11`` entry point).

Importing this module is cheap and harmless: fixtures import the development provider lazily.

Fixtures:

- ``dev_provider_config``: the ``DevProviderConfig`` (override it in your conftest);
- ``dev_provider``: a ``DevProvider`` built from it (in-process, no sockets);
- ``dev_provider_http``: an ``httpx.AsyncClient`` reaching ``dev_provider`` through
  ``httpx.ASGITransport``;
- ``dev_provider_server``: the provider on a real 127.0.0.1 port (uvicorn in a thread); yields
  its base URL, which is also its issuer;
- ``token_factory``: a ``TokenFactory`` minting access tokens from ``dev_provider``;
- ``dev_sign_in``: ``await dev_sign_in(app_client, start="/login", username="alice")`` signs an
  httpx client into an app that logs in through ``dev_provider``.

Example::

    async def test_messages(token_factory, app_client):
        token = token_factory(scopes=["read:messages"])
        response = await app_client.get("/messages", headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 200
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import TYPE_CHECKING, Any, TypeVar, cast

import pytest

if TYPE_CHECKING:
    import httpx

    from oidc_asgi.testing import DevProvider, DevProviderConfig, TokenFactory

_F = TypeVar("_F", bound=Callable[..., Any])


def _async_fixture(func: _F) -> _F:
    """pytest-asyncio's fixture decorator when installed (works in its strict mode too)."""
    try:
        import pytest_asyncio
    except ImportError:  # pragma: no cover - another async plugin must then run it
        return cast(_F, pytest.fixture(func))
    return cast(_F, pytest_asyncio.fixture(func))


@pytest.fixture
def dev_provider_config() -> DevProviderConfig:
    """The development provider's configuration; override to change clients, users or APIs."""
    from oidc_asgi.testing import DevProviderConfig

    return DevProviderConfig.default()


@pytest.fixture
def dev_provider(dev_provider_config: DevProviderConfig) -> DevProvider:
    """A fresh in-process ``DevProvider``."""
    from oidc_asgi.testing import DevProvider

    return DevProvider(dev_provider_config)


@_async_fixture
async def dev_provider_http(dev_provider: DevProvider) -> AsyncIterator[httpx.AsyncClient]:
    """An ``httpx.AsyncClient`` wired to ``dev_provider`` through ``httpx.ASGITransport``."""
    async with dev_provider.asgi_client() as client:
        yield client


@pytest.fixture
def token_factory(dev_provider: DevProvider) -> TokenFactory:
    """Mint access tokens signed by ``dev_provider`` (``token_factory(scopes=[...])``)."""
    from oidc_asgi.testing import TokenFactory

    return TokenFactory(dev_provider)


@pytest.fixture
def dev_sign_in(
    dev_provider: DevProvider,
) -> Callable[..., Awaitable[httpx.Response]]:
    """``await dev_sign_in(app_client, start="/login", username="alice")``."""
    from oidc_asgi.testing import sign_in

    async def run(app_client: httpx.AsyncClient, **kwargs: Any) -> httpx.Response:
        return await sign_in(app_client, dev_provider, **kwargs)

    return run


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def dev_provider_server(dev_provider_config: DevProviderConfig) -> Iterator[str]:
    """A ``DevProvider`` served by uvicorn on a free 127.0.0.1 port; yields its issuer URL."""
    import dataclasses

    import uvicorn

    from oidc_asgi.testing import DevProvider

    port = _free_port()
    issuer = f"http://127.0.0.1:{port}"
    provider = DevProvider(dataclasses.replace(dev_provider_config, issuer=issuer))
    config = uvicorn.Config(
        provider, host="127.0.0.1", port=port, log_level="warning", lifespan="off"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="dev-provider-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("dev provider server did not start")
        time.sleep(0.01)
    try:
        yield issuer
    finally:
        server.should_exit = True
        thread.join(timeout=10)
