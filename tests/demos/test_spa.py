"""The ``spa`` demo: its static files, and the flow its JavaScript runs, replayed over HTTP.

The browser side is replayed step by step as ``app.js`` does it: discovery and the token
endpoint from the SPA's origin (the provider answers CORS for it), authorization code
with PKCE S256 (RFC 7636) as the public client ``spa``, then API calls with the access token.
Running the JavaScript itself is the headless-browser tests' job.
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
from collections.abc import AsyncIterator
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
from demo_apps import spa
from demo_apps._settings import DemoSettings
from demo_apps.launcher import build

from ._support import API_AUDIENCE, ISSUER, SPA, Demo


@pytest.fixture
async def spa_http() -> AsyncIterator[httpx.AsyncClient]:
    app = spa.create_app(DemoSettings.for_demo("spa"))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=SPA) as client:
        yield client


async def test_page_has_no_external_assets(spa_http: httpx.AsyncClient) -> None:
    page = await spa_http.get("/")
    assert page.status_code == 200
    assert page.headers["cache-control"] == "no-store"
    assert page.headers["referrer-policy"] == "no-referrer"
    csp = page.headers["content-security-policy"]
    assert "default-src 'self'" in csp
    assert f"connect-src 'self' {ISSUER} http://127.0.0.1:8001" in csp
    assets = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert sorted(assets) == ["/app.js", "/style.css"]
    script = await spa_http.get("/app.js")
    assert script.headers["content-type"].startswith("text/javascript")
    assert "code_challenge_method" in script.text
    assert "localStorage" not in script.text  # tokens stay in memory
    style = await spa_http.get("/style.css")
    assert style.headers["content-type"].startswith("text/css")


async def test_config_names_the_public_client_and_the_api(spa_http: httpx.AsyncClient) -> None:
    config = (await spa_http.get("/config.json")).json()
    assert config == {
        "issuer": ISSUER,
        "client_id": "spa",
        "redirect_uri": f"{SPA}/",
        "scope": "openid profile read:messages write:messages",
        "api_audience": API_AUDIENCE,
        "api_url": "http://127.0.0.1:8001",
    }


def _s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


@pytest.mark.parametrize(
    ("origin", "allowed"),
    [
        pytest.param(SPA, True, id="spa-origin"),
        pytest.param("https://evil.example", False, id="other"),
    ],
)
async def test_provider_allows_the_spa_origin(demo: Demo, origin: str, allowed: bool) -> None:
    async with demo.provider.asgi_client() as op:
        preflight = await op.options(
            "/token",
            headers={
                "Origin": origin,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "content-type",
            },
        )
        discovery = await op.get("/.well-known/openid-configuration", headers={"Origin": origin})
    assert (preflight.headers.get("access-control-allow-origin") == origin) is allowed
    assert (discovery.headers.get("access-control-allow-origin") == origin) is allowed


async def test_pkce_flow_as_the_javascript_runs_it(demo: Demo) -> None:
    origin = {"Origin": SPA}
    verifier, state, nonce = (secrets.token_urlsafe(32) for _ in range(3))
    async with demo.provider.asgi_client() as op:
        meta = (await op.get("/.well-known/openid-configuration", headers=origin)).json()
        query = {
            "response_type": "code", "client_id": "spa", "redirect_uri": f"{SPA}/",
            "scope": "openid profile read:messages write:messages", "state": state,
            "nonce": nonce, "code_challenge": _s256(verifier), "code_challenge_method": "S256",
            "audience": API_AUDIENCE, "resource": API_AUDIENCE,
        }  # fmt: skip
        login = await op.get(f"{meta['authorization_endpoint']}?{urlencode(query)}")
        tx = re.search(r'name="tx" value="([^"]+)"', login.text)
        assert tx is not None, login.text
        data = {"tx": tx.group(1), "username": "bob", "password": "", "action": "login"}
        redirect = await op.post("/login", data=data)
        back = urlsplit(redirect.headers["location"])
        assert f"{back.scheme}://{back.netloc}{back.path}" == f"{SPA}/"
        params = {k: v[0] for k, v in parse_qs(back.query).items()}
        assert params["state"] == state
        assert params.get("iss", ISSUER) == ISSUER
        form = {
            "grant_type": "authorization_code", "code": params["code"],
            "redirect_uri": f"{SPA}/", "client_id": "spa", "code_verifier": verifier,
            "resource": API_AUDIENCE,
        }  # fmt: skip
        answer = await op.post(meta["token_endpoint"], data=form, headers=origin)
    assert answer.status_code == 200, answer.text
    assert answer.headers["access-control-allow-origin"] == SPA
    tokens = answer.json()
    assert demo.provider.unverified_claims(tokens["id_token"])["nonce"] == nonce
    call = await demo.api_http.get(
        "/api/messages", headers={"Authorization": f"Bearer {tokens['access_token']}", **origin}
    )
    assert call.status_code == 200
    assert call.headers["access-control-allow-origin"] == SPA
    assert call.json()["sub"] == "bob"
    assert call.json()["client_id"] == "spa"


def test_launcher_builds_every_service_on_its_port() -> None:
    services = build(offset=7, environ={})
    assert [(s.name, s.port, s.url) for s in services] == [
        ("provider", 9007, "http://127.0.0.1:9007"),
        ("webapp", 8007, "http://127.0.0.1:8007"),
        ("api", 8008, "http://127.0.0.1:8008/api/public"),
        ("gateway", 8009, "http://127.0.0.1:8009/api/summary"),
        ("spa", 8010, "http://127.0.0.1:8010"),
    ]
