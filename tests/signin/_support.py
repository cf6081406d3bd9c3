"""Helpers for sign-in tests: a provider registration, sample apps, a cookie reader."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp

from _doubles import StepClock
from oidc_asgi.signin import OIDCAuth, SignInConfig, get_context, get_user, login_required
from oidc_asgi.testing import DevClient, DevProvider, DevProviderConfig, sign_in

Clock = StepClock  # the settable clock these tests call ``Clock``

APP = "http://127.0.0.1:8000"
HTTPS_APP = "https://app.example"
ISSUER = "http://127.0.0.1:9000"
SECRET = "test-secret-0123456789-abcdefghijklmnopqrstuvwxyz"
OLD_SECRET = "old-secret-0123456789-abcdefghijklmnopqrstuvwxyz!"
LOA2 = "urn:oidc-asgi:loa:2"
BROWSER_HEADERS = {
    "accept": "text/html,application/xhtml+xml,*/*;q=0.8",
    "sec-fetch-mode": "navigate",
    "sec-fetch-dest": "document",
}


def _uris(path: str) -> tuple[str, ...]:
    return (f"{APP}{path}", f"{HTTPS_APP}{path}")


def provider_config() -> DevProviderConfig:
    """The default development provider plus the clients these tests sign in with."""
    base = DevProviderConfig.default()
    clients = (
        DevClient(
            client_id="rp",
            client_secret="rp-secret",
            redirect_uris=_uris("/callback"),
            post_logout_redirect_uris=_uris("/logged-out"),
        ),
        DevClient(
            client_id="rp-post",
            client_secret="rp-post-secret",
            token_endpoint_auth_method="client_secret_post",
            redirect_uris=_uris("/callback"),
        ),
        DevClient(
            client_id="rp-public",
            token_endpoint_auth_method="none",
            redirect_uris=_uris("/callback"),
        ),
        DevClient(
            client_id="rp-es256",
            client_secret="rp-secret",
            redirect_uris=_uris("/callback"),
            id_token_signed_response_alg="ES256",
        ),
    )
    return dataclasses.replace(base, clients=base.clients + clients)


async def home(request: Request) -> Response:
    user = get_user(request)
    return PlainTextResponse(f"hello {user.sub}" if user else "hello anonymous")


async def me(request: Request) -> Response:
    ctx = get_context(request)
    user = ctx.user
    return JSONResponse(
        {
            "sub": user.sub if user else None,
            "name": user.display_name if user else None,
            "session": dict(request.session),
            "is_authenticated": request.user.is_authenticated,
            "scopes": list(request.auth.scopes),
            "csrf_token": ctx.csrf_token,
            "acr": ctx.id_token_claims.get("acr"),
        }
    )


async def put(request: Request) -> Response:
    for key, value in request.query_params.items():
        request.session[key] = value
    return PlainTextResponse("ok")


async def grow(request: Request) -> Response:
    size = int(request.query_params["size"])
    request.session["blob"] = "x" * size
    return PlainTextResponse("ok")


async def page(request: Request) -> Response:
    return PlainTextResponse(f"page {request.url.path}")


@login_required
async def guarded(request: Request) -> Response:
    return PlainTextResponse(f"guarded {request.user.display_name}")


@login_required(acr_values=[LOA2])
async def strong(request: Request) -> Response:
    return PlainTextResponse("strong")


@login_required(claims={"email": "bob@example.com"})
async def bob_only(request: Request) -> Response:
    return PlainTextResponse("bob")


def starlette_app() -> Starlette:
    return Starlette(
        routes=[
            Route("/", home),
            Route("/me", me),
            Route("/put", put),
            Route("/grow", grow),
            Route("/guarded", guarded),
            Route("/strong", strong),
            Route("/bob", bob_only),
            Route("/private/{rest:path}", page),
            Route("/private", page),
            Route("/public/{rest:path}", page),
        ]
    )


@dataclass
class Harness:
    """The development provider, its in-process HTTP client, the clock, and app builders."""

    provider: DevProvider
    op_http: httpx.AsyncClient
    clock: Clock

    def config(self, **overrides: Any) -> SignInConfig:
        settings: dict[str, Any] = {
            "issuer": ISSUER,
            "client_id": "rp",
            "client_secret": "rp-secret",
            "secrets": [SECRET],
            "base_url": APP,
            "http_client": self.op_http,
            "now": self.clock,
            "protect": ["/private"],
        }
        settings.update(overrides)
        return SignInConfig(**settings)

    def wrap(self, app: ASGIApp | None = None, **overrides: Any) -> OIDCAuth:
        return OIDCAuth(app or starlette_app(), self.config(**overrides))

    def client(
        self, app: ASGIApp, base_url: str = APP, *, browser: bool = False
    ) -> httpx.AsyncClient:
        """An in-process client of ``app``; ``browser`` adds navigation headers to requests."""
        headers = BROWSER_HEADERS if browser else {}
        return httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url=base_url, headers=headers
        )

    async def sign_in(
        self, client: httpx.AsyncClient, start: str = "/login", username: str = "alice"
    ) -> httpx.Response:
        return await sign_in(
            client, self.provider, start=start, username=username, provider_client=self.op_http
        )

    async def authorize(self, client: httpx.AsyncClient, start: str = "/login") -> httpx.Response:
        """Start a login at the app; return the app's redirect to the provider."""
        response = await client.get(start)
        assert response.status_code == 302, response.text
        return response

    async def provider_login(self, authorize_url: str, username: str = "alice") -> dict[str, str]:
        """Sign in at the provider for ``authorize_url``; the authorization response params."""
        response = await self.op_http.get(authorize_url)
        if response.status_code == 200:
            tx = _hidden(response.text, "tx")
            response = await self.op_http.post(
                "/login", data={"tx": tx, "username": username, "action": "login"}
            )
        if response.status_code == 303:
            return {
                k: v[0] for k, v in parse_qs(urlsplit(response.headers["location"]).query).items()
            }
        # form_post: hidden inputs of the auto-submitting form
        return _inputs(response.text)


def _hidden(text: str, name: str) -> str:
    return _inputs(text)[name]


def _inputs(text: str) -> dict[str, str]:
    from html.parser import HTMLParser

    found: dict[str, str] = {}

    class Parser(HTMLParser):
        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            values = dict(attrs)
            if tag == "input" and values.get("name"):
                found[str(values["name"])] = values.get("value") or ""

    Parser().feed(text)
    return found


def set_cookies(response: httpx.Response) -> dict[str, str]:
    """Every Set-Cookie header of a response, name -> full header value."""
    result: dict[str, str] = {}
    for header in response.headers.get_list("set-cookie"):
        name = header.split("=", 1)[0]
        result[name] = header
    return result


def attributes(header: str) -> dict[str, str]:
    """The attributes of one Set-Cookie header value, lower-cased names."""
    parts = [p.strip() for p in header.split(";")[1:]]
    attrs: dict[str, str] = {}
    for part in parts:
        key, _, value = part.partition("=")
        attrs[key.lower()] = value
    return attrs


def cookie_value(header: str) -> str:
    cookie: SimpleCookie = SimpleCookie()
    cookie.load(header.split(";")[0])
    return next(iter(cookie.values())).value


def location(response: httpx.Response) -> str:
    return response.headers["location"]


def query_of(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


Check = Callable[[httpx.Response], None]
