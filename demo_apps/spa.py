"""Single-page app: a static page whose plain JavaScript signs in and calls the API itself.

The server only hands out files and ``/config.json``; the browser does everything: the
authorization code flow with PKCE as the public client ``spa`` (no secret can live in a
browser), then ``fetch`` calls to the API with the access token (the API allows this origin by
CORS). No library, no CDN, no build step: read ``spa_static/app.js``.

Run it: ``python -m demo_apps.spa`` (port 8003).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import urlsplit

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Route

from demo_apps._pages import STYLE
from demo_apps._settings import DemoSettings, load, serve

__all__ = ["create_app", "main"]

STATIC = Path(__file__).with_name("spa_static")


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def create_app(settings: DemoSettings | None = None) -> Starlette:
    """The SPA's static server.

    Example::

        app = create_app(load("spa"))
    """
    settings = settings or load("spa", [])
    config = {
        "issuer": settings.issuer,
        "client_id": settings.client_id,
        "redirect_uri": settings.app_base_url + "/",
        "scope": " ".join(("openid", "profile", *settings.api_scopes)),
        "api_audience": settings.api_audience,
        "api_url": settings.api_url.rstrip("/"),
    }
    headers = {
        # Only this origin's scripts; fetch only to the provider and the API.
        "Content-Security-Policy": (
            "default-src 'self'; "
            f"connect-src 'self' {_origin(settings.issuer)} {_origin(settings.api_url)}; "
            "frame-ancestors 'none'"
        ),
        "Referrer-Policy": "no-referrer",  # the code in the URL must not leak to other sites
        "X-Content-Type-Options": "nosniff",
    }

    async def index(request: Request) -> Response:
        return FileResponse(STATIC / "index.html", headers={**headers, "Cache-Control": "no-store"})

    async def script(request: Request) -> Response:
        return FileResponse(STATIC / "app.js", media_type="text/javascript", headers=headers)

    async def style(request: Request) -> Response:
        return Response(STYLE, media_type="text/css", headers=headers)

    async def config_json(request: Request) -> Response:
        return JSONResponse(config, headers=headers)

    return Starlette(
        routes=[
            Route("/", index),
            Route("/app.js", script),
            Route("/style.css", style),
            Route("/config.json", config_json),
        ]
    )


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m demo_apps.spa [--port 8003] ...``."""
    return serve("spa", create_app, argv)


if __name__ == "__main__":
    sys.exit(main())
