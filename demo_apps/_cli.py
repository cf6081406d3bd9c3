"""The plumbing of the command-line demos (``daemon``, ``device``, ``native``).

Each opens the provider, gets a token its own way, calls ``GET API_URL + API_PATH`` and prints
the answer: 0 on a 2xx, 1 when sign-in fails or the API cannot be reached (one line on stderr,
no traceback), a ``ConfigurationError`` passed up so ``run_cli`` exits 2.

Example::

    return await call_api("daemon", settings, request, http_client=None, api_client=None, out=None)
"""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable
from typing import TextIO

import httpx

from demo_apps._settings import DemoSettings, print_answer
from oidc_asgi import (
    CliSession,
    ConfigurationError,
    FileTokenStorage,
    OAuthClient,
    OIDCError,
    Provider,
    TokenResponse,
    TokenStorage,
)

__all__ = ["APP", "bearer", "call_api", "stored_token"]

#: Where ``FileTokenStorage`` keeps the demos' tokens (``~/.config/oidc-asgi-demo/``).
APP = "oidc-asgi-demo"

#: ``request(provider, api, url)``: get a token and send the API call.
Request = Callable[[Provider, httpx.AsyncClient, str], Awaitable[httpx.Response]]


async def call_api(
    name: str,
    settings: DemoSettings,
    request: Request,
    *,
    http_client: httpx.AsyncClient | None,
    api_client: httpx.AsyncClient | None,
    out: TextIO | None,
    failure: str = "sign-in failed",
) -> int:
    """Open the provider, run ``request`` against the API and print its answer; the exit code.

    ``failure`` names what went wrong when the provider refuses (``daemon``: "no token").

    Example::

        return await call_api("daemon", settings, request, http_client=None, api_client=None,
                              out=None, failure="no token")
    """
    out = out or sys.stdout
    url = settings.api(settings.api_path)
    async with (
        Provider(settings.issuer, http_client=http_client) as provider,
        httpx.AsyncClient(timeout=10) as own_api,
    ):
        try:
            response = await request(provider, api_client or own_api, url)
        except ConfigurationError:
            raise
        except OIDCError as exc:
            print(f"{name}: {failure}: {exc.code}: {exc}", file=sys.stderr)
            return 1
        except httpx.TransportError as exc:
            print(f"{name}: the API is unreachable: {exc!r}", file=sys.stderr)
            return 1
    print_answer(f"GET {url}", response, out)
    return 0 if response.is_success else 1


async def stored_token(
    client: OAuthClient,
    settings: DemoSettings,
    *,
    storage: TokenStorage | None,
    login: Callable[[], Awaitable[TokenResponse]],
) -> str:
    """The access token for the demo API: stored, refreshed, or from ``login`` (then stored).

    Example::

        token = await stored_token(client, settings, storage=None, login=login)
    """
    session = CliSession(
        client,
        storage=storage or FileTokenStorage.for_app(APP),
        login=login,
        profile=settings.api_audience,  # one entry per API
        resource=settings.api_audience,  # refreshes keep asking for this API (RFC 8707)
    )
    return await session.access_token()


def bearer(token: str) -> dict[str, str]:
    """The ``Authorization`` header for ``token`` (RFC 6750 section 2.1)."""
    return {"Authorization": f"Bearer {token}"}
