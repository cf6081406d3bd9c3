"""API calling an API: the gateway trades its caller's token for one aimed at the messages API.

``GET /api/summary`` (scope ``read:summary``) validates the caller's access token, gets a token
for the downstream API on behalf of that user (RFC 8693 token exchange, or Microsoft Entra ID's
on-behalf-of flow with ``OBO_MODE=entra``), calls ``/api/messages`` with it and answers with
both identities: ``sub`` (the user) and ``act`` (who acts for the user: this gateway).

Run it: ``python -m demo_apps.gateway`` (port 8002).
"""

# No "from __future__ import annotations": FastAPI reads the routes' annotations at runtime,
# and they name objects local to create_app.
import asyncio
import contextlib
import sys
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Annotated, Any

import httpx
from fastapi import FastAPI, HTTPException, Request, Security

from demo_apps._settings import DemoSettings, load, serve
from oidc_asgi import (
    DownstreamChallenge,
    OAuthClient,
    OAuthError,
    OnBehalfOfAuth,
    ProviderUnavailable,
    TokenCache,
    TokenResponse,
)
from oidc_asgi.bearer import BearerConfig, BearerValidator, Principal
from oidc_asgi.bearer.fastapi import BearerAuth

__all__ = ["create_app", "main"]


def create_app(
    settings: DemoSettings | None = None,
    *,
    http_client: httpx.AsyncClient | None = None,
    api_client: httpx.AsyncClient | None = None,
) -> FastAPI:
    """The gateway app; ``http_client`` reaches the provider, ``api_client`` the downstream API.

    Example::

        app = create_app(load("gateway"), http_client=op_http, api_client=api_http)
    """
    settings = settings or load("gateway", [])
    validator = BearerValidator(
        BearerConfig(issuer=settings.issuer, audience=settings.api_audience),
        http_client=http_client,
    )
    auth = BearerAuth(validator, scopes={"read:summary": "Read a summary of your messages"})
    provider = validator.providers[settings.issuer]
    cache: TokenCache[TokenResponse] = TokenCache()  # exchanged tokens, shared by all requests
    downstream = api_client or httpx.AsyncClient(timeout=10)
    lock = asyncio.Lock()
    clients: list[OAuthClient] = []

    async def oauth_client() -> OAuthClient:
        async with lock:  # built once, from the provider's discovery document
            if not clients:
                clients.append(
                    await OAuthClient.from_provider(
                        provider,
                        client_id=settings.client_id,
                        client_secret=settings.client_secret,
                        http_client=http_client,
                    )
                )
            return clients[0]

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        with contextlib.suppress(ProviderUnavailable):
            await auth.prefetch()
        yield
        if api_client is None:
            await downstream.aclose()
        for client in clients:
            await client.aclose()
        await validator.aclose()

    app = FastAPI(title="oidc-asgi demo: Summary API (gateway)", lifespan=lifespan)

    def on_behalf_of(client: OAuthClient, token: str, user: Principal) -> OnBehalfOfAuth:
        if settings.obo_mode == "entra":  # Entra ID names the API and scope in one string
            return OnBehalfOfAuth(
                client,
                subject_token=token,
                subject_expires_at=user.expires_at,
                mode="entra",
                scope=f"{settings.downstream_audience}/read:messages",
                cache=cache,
            )
        return OnBehalfOfAuth(
            client,
            subject_token=token,
            subject_expires_at=user.expires_at,
            audience=settings.downstream_audience,
            scope="read:messages",
            cache=cache,
        )

    @app.get("/api/summary")
    async def summary(
        request: Request,
        user: Annotated[Principal, Security(auth, scopes=["read:summary"])],
    ) -> dict[str, Any]:
        credentials = validator.credentials(request.scope)
        assert credentials is not None  # the Security dependency validated this very token
        try:
            obo = on_behalf_of(await oauth_client(), credentials.token, user)
            response = await downstream.get(
                settings.downstream_api_url.rstrip("/") + "/api/messages", auth=obo
            )
        except DownstreamChallenge as exc:  # the caller must sign in again, more strongly
            raise HTTPException(
                401, "step-up required", headers={"WWW-Authenticate": exc.www_authenticate()}
            ) from None
        except OAuthError as exc:
            raise HTTPException(502, f"token exchange refused: {exc.error}") from None
        except (ProviderUnavailable, httpx.TransportError):
            raise HTTPException(503, "the provider or the downstream API is unreachable") from None
        if response.status_code != 200:
            raise HTTPException(502, f"the downstream API answered {response.status_code}")
        answer = response.json()
        return {
            "sub": user.subject,
            "act": answer.get("act") or {"sub": answer.get("client_id")},
            "obo_mode": settings.obo_mode,
            "caller": {
                "sub": user.subject,
                "client_id": user.client_id,
                "scopes": sorted(user.scopes),
            },
            "downstream": answer,
            "summary": f"{len(answer.get('messages', []))} message(s) for {user.subject}",
        }

    return app


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m demo_apps.gateway [--obo-mode entra] ...``."""
    return serve("gateway", create_app, argv)


if __name__ == "__main__":
    sys.exit(main())
