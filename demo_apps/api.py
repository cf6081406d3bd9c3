"""The resource server: a FastAPI app whose routes need access tokens with the right scopes.

``GET /api/public`` needs no token; ``GET /api/private`` any valid token; ``GET /api/messages``
the scope ``read:messages``; ``POST /api/messages`` the scope ``write:messages``. Every protected
answer says who called (``sub``, ``client_id``, ``act`` when someone acts for the user) and with
which ``scopes``. CORS lets the SPA's origin (and only it) call the API from a browser.

Run it: ``python -m demo_apps.api`` (port 8001).
"""

# No "from __future__ import annotations": FastAPI reads the routes' annotations at runtime,
# and they name objects local to create_app.
import contextlib
import sys
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Annotated, Any

import httpx
from fastapi import Body, FastAPI, Security
from fastapi.middleware.cors import CORSMiddleware

from demo_apps._settings import DemoSettings, load, serve
from oidc_asgi import ProviderUnavailable
from oidc_asgi.bearer import BearerConfig, BearerValidator, Principal
from oidc_asgi.bearer.fastapi import BearerAuth

__all__ = ["caller", "create_app", "main"]

SCOPES = {"read:messages": "Read the messages", "write:messages": "Post a message"}


def caller(principal: Principal) -> dict[str, Any]:
    """Who called, as every protected answer reports it."""
    return {
        "sub": principal.subject,
        "client_id": principal.client_id,
        "scopes": sorted(principal.scopes),
        "act": dict(principal.actor) if principal.actor else None,
    }


def create_app(
    settings: DemoSettings | None = None, *, http_client: httpx.AsyncClient | None = None
) -> FastAPI:
    """The API app; ``http_client`` reaches the provider (discovery and keys).

    Example::

        app = create_app(load("api"), http_client=provider.asgi_client())
    """
    settings = settings or load("api", [])
    validator = BearerValidator(
        BearerConfig(issuer=settings.issuer, audience=settings.api_audience),
        http_client=http_client,
    )
    auth = BearerAuth(validator, scopes=SCOPES)
    messages: list[dict[str, str]] = [
        {"from": "oidc-asgi", "text": "Welcome! This answer needed the read:messages scope."},
    ]

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Keys ready before the first request; if the provider is not up yet, on demand.
        with contextlib.suppress(ProviderUnavailable):
            await auth.prefetch()
        yield
        await validator.aclose()

    app = FastAPI(title="oidc-asgi demo: Messages API", lifespan=lifespan)
    app.add_middleware(
        CORSMiddleware,
        allow_origins=[settings.spa_origin],
        allow_methods=["GET", "POST"],
        allow_headers=["Authorization", "Content-Type"],
    )

    @app.get("/api/public")
    async def public() -> dict[str, Any]:
        return {"message": "Public: no token needed."}

    @app.get("/api/private")
    async def private(user: Annotated[Principal, Security(auth)]) -> dict[str, Any]:
        return {"message": "Private: any valid access token.", **caller(user)}

    @app.get("/api/messages")
    async def read(
        user: Annotated[Principal, Security(auth, scopes=["read:messages"])],
    ) -> dict[str, Any]:
        return {"messages": messages, **caller(user)}

    @app.post("/api/messages", status_code=201)
    async def write(
        user: Annotated[Principal, Security(auth, scopes=["write:messages"])],
        text: Annotated[str, Body(embed=True, min_length=1, max_length=500)],
    ) -> dict[str, Any]:
        message = {"from": user.subject or "?", "text": text}
        messages.append(message)
        del messages[:-50]  # a demo keeps the last 50
        return {"message": message, **caller(user)}

    return app


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m demo_apps.api [--port 8001] [--oidc-issuer URL] ...``."""
    return serve("api", create_app, argv)


if __name__ == "__main__":
    sys.exit(main())
