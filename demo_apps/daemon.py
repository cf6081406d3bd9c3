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

from demo_apps._settings import DemoSettings, print_answer, run_cli
from oidc_asgi import ClientCredentialsAuth, ConfigurationError, OAuthClient, OIDCError, Provider

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
    out = out or sys.stdout
    url = settings.api(settings.api_path)
    async with (
        Provider(settings.issuer, http_client=http_client) as provider,
        httpx.AsyncClient(timeout=10) as own_api,
    ):
        try:
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
                response = await (api_client or own_api).get(url, auth=auth)
        except ConfigurationError:
            raise
        except OIDCError as exc:
            print(f"daemon: no token: {exc.code}: {exc}", file=sys.stderr)
            return 1
        except httpx.TransportError as exc:
            print(f"daemon: the API is unreachable: {exc!r}", file=sys.stderr)
            return 1
    print_answer(f"GET {url}", response, out)
    return 0 if response.is_success else 1


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m demo_apps.daemon [--oidc-client-id ID] ...``."""
    return run_cli("daemon", run, argv)


if __name__ == "__main__":
    sys.exit(main())
