"""Headless daemon: no user at all. The program gets a token for itself and calls the API.

Client credentials (RFC 6749 section 4.4) as an ``httpx.Auth``: the token is fetched on the
first request, cached until shortly before it expires, and renewed once when the API answers
``401 invalid_token``. Prints the API's answer.

Run it: ``python -m demo_apps.daemon``.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import TextIO

import httpx

from demo_apps._cli import call_api
from demo_apps._settings import DemoSettings, run_cli
from oidc_asgi import ClientCredentialsAuth, OAuthClient, Provider

__all__ = ["main", "run"]


async def run(
    settings: DemoSettings,
    *,
    http_client: httpx.AsyncClient | None = None,
    api_client: httpx.AsyncClient | None = None,
    out: TextIO | None = None,
) -> int:
    """Call ``GET API_URL + API_PATH`` as the daemon, print the answer; 0 on success.

    ``http_client`` reaches the provider and ``api_client`` the API (tests wire both in-process).

    Example::

        exit_code = await run(load("daemon"))
    """

    async def request(provider: Provider, api: httpx.AsyncClient, url: str) -> httpx.Response:
        client = await OAuthClient.from_provider(
            provider,
            client_id=settings.client_id,
            client_secret=settings.client_secret,
            http_client=http_client,
        )
        async with client:
            auth = ClientCredentialsAuth(
                client,
                audience=settings.api_audience,  # Auth0 style
                resource=settings.api_audience,  # RFC 8707
                scope=settings.api_scopes,
            )
            return await api.get(url, auth=auth)

    return await call_api(
        "daemon",
        settings,
        request,
        http_client=http_client,
        api_client=api_client,
        out=out,
        failure="no token",
    )


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m demo_apps.daemon [--oidc-client-id ID] ...``."""
    return run_cli("daemon", run, argv)


if __name__ == "__main__":
    sys.exit(main())
