"""Web sign-in, and a web app calling an API with the signed-in user's token.

A Starlette app wrapped in ``OIDCAuth``: the middleware serves ``/login``, ``/callback`` and
``/logout`` (POST) and keeps the user in an encrypted session (cookie, memory or Redis). The
app's own routes: ``/`` (public: says who is signed in), ``/profile`` (sign-in required; HTML,
or the ID token's claims as JSON for ``Accept: application/json``), ``/messages`` (sign-in
required; calls the API's ``/api/messages`` with the user's access token, refreshed when it is
about to expire). The middleware also serves ``/backchannel-logout``: when the user signs out
at the provider, the provider tells this app, which ends the session.

Run it: ``python -m demo_apps.webapp`` (port 8000).
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from urllib.parse import urlsplit

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from demo_apps._pages import escape, json_block, page
from demo_apps._settings import DemoSettings, load, serve
from oidc_asgi import DownstreamChallenge, ProviderUnavailable
from oidc_asgi.sessions import MemoryStore, SessionStore
from oidc_asgi.signin import (
    LoginRequired,
    OIDCAuth,
    SignInConfig,
    UserTokenAuth,
    get_context,
    get_user,
    login_required,
)

__all__ = ["create_app", "main"]


def session_store(settings: DemoSettings) -> SessionStore | None:
    """``SESSION_STORE``: ``cookie`` (None: the session lives in the cookie), ``memory``, Redis."""
    if settings.session_store == "memory":
        return MemoryStore()
    if settings.session_store.startswith(("redis://", "rediss://")):
        from oidc_asgi.sessions.redis import RedisStore

        return RedisStore(url=settings.session_store, prefix="oidc-asgi-demo:")
    return None


def _nav(request: Request) -> str:
    links = '<a href="/">Home</a><a href="/profile">Profile</a><a href="/messages">Messages</a>'
    ctx = get_context(request)
    if ctx.user is None:
        return links + '<a class="button" href="/login">Sign in</a>'
    return links + (
        '<form class="inline" method="post" action="/logout">'
        f'<input type="hidden" name="csrf_token" value="{escape(ctx.csrf_token)}">'
        '<button type="submit" class="secondary">Sign out</button></form>'
    )


async def home(request: Request) -> Response:
    user = get_user(request)
    if user is None:
        body = (
            "<p>Nobody is signed in.</p>"
            '<p><a class="button" href="/login">Sign in</a> '
            '<span class="muted">(users <b>alice</b> and <b>bob</b>, any password, '
            "on the development provider)</span></p>"
        )
    else:
        body = (
            f"<p>Signed in as <b>{escape(user.display_name)}</b> "
            f'<span class="muted">(sub {escape(user.sub)})</span>.</p>'
            '<p>See your <a href="/profile">profile</a> or the '
            '<a href="/messages">messages</a> the API has for you.</p>'
        )
    return HTMLResponse(page("Web app", body, nav=_nav(request)))


@login_required
async def profile(request: Request) -> Response:
    claims = dict(get_context(request).id_token_claims)
    if "application/json" in request.headers.get("accept", ""):
        return JSONResponse(claims)
    user = get_user(request)
    assert user is not None
    body = (
        f"<p>Hello {escape(user.display_name)}. The claims of your ID token, "
        "validated at sign-in:</p>" + json_block(claims)
    )
    return HTMLResponse(page("Profile", body, nav=_nav(request)))


def create_app(
    settings: DemoSettings | None = None,
    *,
    http_client: httpx.AsyncClient | None = None,
    api_client: httpx.AsyncClient | None = None,
) -> Starlette:
    """The web app; ``http_client`` reaches the provider, ``api_client`` the API.

    Example::

        app = create_app(load("webapp"), http_client=provider.asgi_client())
    """
    settings = settings or load("webapp", [])
    api = api_client or httpx.AsyncClient(timeout=10)
    provider_http = http_client or httpx.AsyncClient(timeout=10)  # closed at shutdown

    @login_required
    async def messages(request: Request) -> Response:
        # The user's access token for the API, from the session; refreshed if about to expire.
        auth = UserTokenAuth(request, audience=settings.api_audience)
        try:
            answer = await api.get(settings.api("/api/messages"), auth=auth)
        except DownstreamChallenge:  # the API wants a stronger or fresher sign-in
            raise LoginRequired(reason="step_up_required") from None
        except (ProviderUnavailable, httpx.TransportError):
            body = '<p class="error">The API or the provider cannot be reached. Try again.</p>'
            return HTMLResponse(page("Messages", body, nav=_nav(request)), status_code=503)
        data = answer.json()
        if "application/json" in request.headers.get("accept", ""):
            return JSONResponse(data, status_code=answer.status_code)
        body = (
            f"<p>The API answered <b>{answer.status_code}</b> to "
            f"<code>GET {escape(settings.api('/api/messages'))}</code>, called with your "
            "access token:</p>" + json_block(data)
        )
        return HTMLResponse(page("Messages", body, nav=_nav(request)))

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        if api_client is None:
            await api.aclose()
        if http_client is None:
            await provider_http.aclose()

    # form_post from a provider on another site over plain http (http://localhost against
    # 127.0.0.1): the login cookie must be SameSite=None, hence Secure, which browsers accept
    # from localhost. Everywhere else "auto": Secure exactly when the app is served over https.
    base = urlsplit(settings.app_base_url)
    cross_site_form_post = (
        settings.response_mode == "form_post"
        and base.scheme == "http"
        and base.hostname == "localhost"
        and urlsplit(settings.issuer).hostname != "localhost"
    )
    routes = [Route("/", home), Route("/profile", profile), Route("/messages", messages)]
    app = Starlette(routes=routes, lifespan=lifespan)
    # Built here, not on the first request, so a bad setting stops the demo at startup.
    config = SignInConfig(
        issuer=settings.issuer,
        client_id=settings.client_id,
        client_secret=settings.client_secret,
        base_url=settings.app_base_url,
        secrets=[settings.session_secret],
        response_mode=settings.response_mode,
        # offline_access: a refresh token, so the API token can be renewed without the user.
        scope=("openid", "profile", "email", "offline_access", *settings.api_scopes),
        audience=settings.api_audience,  # the access token is for the API
        session_store=session_store(settings),
        cookie_secure=True if cross_site_form_post else "auto",
        http_client=provider_http,
    )
    # /login, /callback, /logout (POST) and /backchannel-logout are served by OIDCAuth.
    app.add_middleware(OIDCAuth, config=config)
    return app


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m demo_apps.webapp [--oidc-response-mode form_post] ...``."""
    return serve("webapp", create_app, argv)


if __name__ == "__main__":
    sys.exit(main())
