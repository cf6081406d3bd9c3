"""The pytest plugin's fixtures and ``sign_in``, against a tiny relying party written here.

The relying party uses only httpx, starlette and joserfc, so ``sign_in`` is shown to be generic.
"""

from __future__ import annotations

import secrets
import subprocess
import sys
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any
from urllib.parse import parse_qsl, urlencode

import httpx
import pytest
from joserfc import jwt
from joserfc.errors import SecurityWarning
from joserfc.jwk import KeySet
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from oidc_asgi.testing import DevProvider, TokenFactory, sign_in

from ._support import API1, pkce

APP = "http://127.0.0.1:8000"


class TinyRP:
    """A minimal confidential relying party: /login, /callback (GET or POST), /me."""

    def __init__(self, provider: DevProvider, op_http: httpx.AsyncClient, mode: str) -> None:
        self.provider = provider
        self.op_http = op_http
        self.mode = mode
        self.pending: dict[str, dict[str, str]] = {}
        self.sessions: dict[str, dict[str, Any]] = {}
        self.app = Starlette(
            routes=[
                Route("/login", self.login),
                Route("/callback", self.callback, methods=["GET", "POST"]),
                Route("/me", self.me),
            ]
        )

    async def login(self, request: Request) -> Response:
        state, nonce = secrets.token_urlsafe(8), secrets.token_urlsafe(8)
        verifier, challenge = pkce()
        self.pending[state] = {"nonce": nonce, "verifier": verifier}
        params = {
            "client_id": "webapp", "response_type": "code", "scope": "openid profile",
            "redirect_uri": f"{APP}/callback", "state": state, "nonce": nonce,
            "code_challenge": challenge, "code_challenge_method": "S256",
            "response_mode": self.mode,
        }  # fmt: skip
        return RedirectResponse(f"{self.provider.endpoint('authorize')}?{urlencode(params)}", 302)

    async def callback(self, request: Request) -> Response:
        if request.method == "POST":
            params = dict(parse_qsl((await request.body()).decode()))
        else:
            params = dict(request.query_params)
        pending = self.pending.pop(params.get("state", ""), None)
        if pending is None or params.get("iss") != self.provider.issuer:
            return Response("bad state or iss", status_code=400)
        token = await self.op_http.post(
            "/token",
            data={"grant_type": "authorization_code", "code": params["code"],
                  "redirect_uri": f"{APP}/callback", "code_verifier": pending["verifier"]},
            auth=("webapp", "webapp-secret"),
        )  # fmt: skip
        id_token = token.json()["id_token"]
        jwks = (await self.op_http.get("/jwks")).json()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SecurityWarning)
            claims = jwt.decode(id_token, KeySet.import_key_set(jwks), algorithms=["RS256"]).claims
        if claims["nonce"] != pending["nonce"] or claims["aud"] != "webapp":
            return Response("bad id token", status_code=400)
        session = secrets.token_urlsafe(8)
        self.sessions[session] = claims
        response = RedirectResponse("/me", status_code=303)
        response.set_cookie("rp_session", session)
        return response

    async def me(self, request: Request) -> Response:
        claims = self.sessions.get(request.cookies.get("rp_session", ""))
        if claims is None:
            return Response("sign in first", status_code=401)
        return JSONResponse({"sub": claims["sub"], "name": claims.get("name")})


@pytest.fixture(params=["query", "form_post"])
async def rp_client(
    request: pytest.FixtureRequest, dev_provider: DevProvider
) -> AsyncIterator[httpx.AsyncClient]:
    async with dev_provider.asgi_client() as op_http:
        rp = TinyRP(dev_provider, op_http, request.param)
        transport = httpx.ASGITransport(app=rp.app)
        async with httpx.AsyncClient(transport=transport, base_url=APP) as client:
            yield client


async def test_sign_in_drives_a_generic_relying_party(
    rp_client: httpx.AsyncClient, dev_provider: DevProvider
) -> None:
    response = await sign_in(rp_client, dev_provider, start="/login", username="bob")
    assert response.status_code == 200, response.text
    assert response.json() == {"sub": "bob", "name": "Bob Builder"}
    assert (await rp_client.get("/me")).status_code == 200


async def test_second_sign_in_is_silent_with_the_same_provider_client(
    rp_client: httpx.AsyncClient, dev_provider: DevProvider
) -> None:
    async with dev_provider.asgi_client() as browser:
        await sign_in(rp_client, dev_provider, provider_client=browser)
        logins: list[str] = []

        async def spy(request: httpx.Request) -> None:
            logins.append(request.url.path)

        browser.event_hooks["request"].append(spy)
        response = await sign_in(rp_client, dev_provider, provider_client=browser, username="x")
        assert response.json()["sub"] == "alice"  # the provider session, not "x"
        assert "/login" not in logins


async def test_dev_sign_in_fixture(
    rp_client: httpx.AsyncClient, dev_sign_in: Callable[..., Awaitable[httpx.Response]]
) -> None:
    response = await dev_sign_in(rp_client, start="/login")
    assert response.json()["sub"] == "alice"


async def test_sign_in_stops_at_unknown_user(
    rp_client: httpx.AsyncClient, dev_provider: DevProvider
) -> None:
    response = await sign_in(rp_client, dev_provider, username="mallory")
    assert response.status_code == 401  # the provider's login page, shown again


async def test_dev_provider_http_fixture(dev_provider_http: httpx.AsyncClient) -> None:
    meta = (await dev_provider_http.get("/.well-known/openid-configuration")).json()
    assert meta["issuer"] == "http://127.0.0.1:9000"


def test_token_factory_fixture(token_factory: TokenFactory, dev_provider: DevProvider) -> None:
    token = token_factory(scopes=["read:messages"])
    claims = dev_provider.verify_jwt(token, typ="at+jwt")
    assert claims["aud"] == API1
    assert claims["scope"] == "read:messages"


async def test_dev_provider_server_serves_on_loopback(dev_provider_server: str) -> None:
    assert dev_provider_server.startswith("http://127.0.0.1:")
    async with httpx.AsyncClient(base_url=dev_provider_server) as http:
        meta = (await http.get("/.well-known/openid-configuration")).json()
        assert meta["issuer"] == dev_provider_server
        assert meta["token_endpoint"] == f"{dev_provider_server}/token"
        response = await http.post(
            "/token", data={"grant_type": "client_credentials", "resource": API1},
            auth=("daemon", "daemon-secret"),
        )  # fmt: skip
        assert response.status_code == 200


def test_plugin_import_is_cheap() -> None:
    """The plugin adds nothing heavy beyond ``import oidc_asgi`` itself."""
    code = (
        "import sys, oidc_asgi\n"
        "before = set(sys.modules)\n"
        "import oidc_asgi.testing.plugin\n"
        "added = set(sys.modules) - before\n"
        "heavy = ('oidc_asgi.testing.provider', 'starlette', 'uvicorn')\n"
        "print(sorted(m for m in added if m.startswith(heavy)))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == "[]"
