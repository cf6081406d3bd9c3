"""Headless command-line tool: sign in with a code typed on another device, then call the API.

The device authorization grant (RFC 8628): the program prints a URL and a short code, the user
approves in any browser, the program polls until the tokens arrive. ``CliSession`` keeps them in
a private file (``~/.config/oidc-asgi-demo/``), so the next run reuses or refreshes them without
asking again. Prints the API's answer.

Run it: ``python -m demo_apps.device``.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable, Sequence
from typing import TextIO

import httpx

from demo_apps._cli import bearer, call_api, stored_token
from demo_apps._settings import DemoSettings, run_cli
from oidc_asgi import (
    DeviceLoginPrompt,
    OAuthClient,
    Provider,
    TokenResponse,
    TokenStorage,
    device_login,
)

__all__ = ["main", "run"]


async def run(
    settings: DemoSettings,
    *,
    http_client: httpx.AsyncClient | None = None,
    api_client: httpx.AsyncClient | None = None,
    storage: TokenStorage | None = None,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    out: TextIO | None = None,
) -> int:
    """Sign in (or reuse stored tokens), call ``GET API_URL + API_PATH``, print the answer.

    ``http_client`` reaches the provider, ``api_client`` the API, ``storage`` keeps the tokens
    (default: a private file), ``sleep`` waits between polls (tests approve the code there).

    Example::

        exit_code = await run(load("device"))
    """
    out = out or sys.stdout

    def show(prompt: DeviceLoginPrompt) -> None:
        print(prompt.message, file=out, flush=True)
        print(f"Check that the page is on {prompt.verification_host}.", file=out, flush=True)

    async def request(provider: Provider, api: httpx.AsyncClient, url: str) -> httpx.Response:
        client = await OAuthClient.from_provider(
            provider, client_id=settings.client_id, auth_method="none", http_client=http_client
        )
        async with client:

            def login() -> Awaitable[TokenResponse]:
                return device_login(
                    client,
                    scope=("openid", "profile", "offline_access", *settings.api_scopes),
                    on_code=show,
                    sleep=sleep,
                    audience=settings.api_audience,  # Auth0 style
                    resource=settings.api_audience,  # RFC 8707
                )

            token = await stored_token(client, settings, storage=storage, login=login)
        return await api.get(url, headers=bearer(token))

    return await call_api(
        "device", settings, request, http_client=http_client, api_client=api_client, out=out
    )


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m demo_apps.device [--oidc-client-id ID] ...``."""
    return run_cli("device", run, argv)


if __name__ == "__main__":
    sys.exit(main())
