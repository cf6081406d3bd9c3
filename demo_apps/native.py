"""Native app: sign in through the system browser with a loopback redirect, then call the API.

RFC 8252: the program listens on ``http://127.0.0.1:<free port>/callback``, opens the browser at
the provider with PKCE, ``state`` and ``nonce``, receives the code once, redeems it and validates
the ID token. Tokens are kept in a private file like the ``device`` demo, so the next run reuses
or refreshes them. Prints the API's answer.

Run it: ``python -m demo_apps.native`` (``--port`` fixes the loopback port; 0 picks a free one).
"""

from __future__ import annotations

import sys
import webbrowser
from collections.abc import Awaitable, Callable, Sequence
from typing import TextIO

import httpx

from demo_apps._cli import bearer, call_api, stored_token
from demo_apps._settings import DemoSettings, run_cli
from oidc_asgi import (
    ConfigurationError,
    OAuthClient,
    Provider,
    TokenResponse,
    TokenStorage,
    TokenValidator,
    loopback_login,
)

__all__ = ["main", "run"]


async def run(
    settings: DemoSettings,
    *,
    http_client: httpx.AsyncClient | None = None,
    api_client: httpx.AsyncClient | None = None,
    storage: TokenStorage | None = None,
    open_browser: Callable[[str], object] = webbrowser.open,
    out: TextIO | None = None,
) -> int:
    """Sign in (or reuse stored tokens), call ``GET API_URL + API_PATH``, print the answer.

    ``open_browser`` receives the authorization URL (tests drive the provider's login page
    there and then call the loopback redirect).

    Example::

        exit_code = await run(load("native"))
    """
    out = out or sys.stdout

    async def request(provider: Provider, api: httpx.AsyncClient, url: str) -> httpx.Response:
        metadata = await provider.metadata()
        if metadata.authorization_endpoint is None:
            raise ConfigurationError(
                "the provider has no authorization_endpoint", code="missing_endpoint"
            )
        authorize = metadata.authorization_endpoint
        client = await OAuthClient.from_provider(
            provider, client_id=settings.client_id, auth_method="none", http_client=http_client
        )
        validator = TokenValidator(issuer=settings.issuer, keys=provider)
        async with client:

            def login() -> Awaitable[TokenResponse]:
                print("Opening the browser to sign in...", file=out, flush=True)
                return loopback_login(
                    client,
                    authorization_endpoint=authorize,
                    scope=("openid", "profile", "offline_access", *settings.api_scopes),
                    open_browser=open_browser,
                    port=settings.port,
                    validator=validator,  # checks the ID token: signature, aud, nonce
                    require_iss=metadata.authorization_response_iss_parameter_supported,
                    extra_params={
                        "audience": settings.api_audience,  # Auth0 style
                        "resource": settings.api_audience,  # RFC 8707
                    },
                )

            token = await stored_token(client, settings, storage=storage, login=login)
        return await api.get(url, headers=bearer(token))

    return await call_api(
        "native", settings, request, http_client=http_client, api_client=api_client, out=out
    )


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m demo_apps.native [--port 0] ...``."""
    return run_cli("native", run, argv)


if __name__ == "__main__":
    sys.exit(main())
