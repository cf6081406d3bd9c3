"""CORS: browsers' ``fetch`` reaches the provider from the public clients' origins only.

Hosted providers answer CORS for a registered single-page app's origin on the endpoints its
JavaScript calls (discovery, keys, token, userinfo, revocation, device authorization), so the
SPA demo needs no proxy and no wrapper around the provider.
"""

from __future__ import annotations

import dataclasses

import httpx
import pytest

from oidc_asgi.testing import DevClient, DevProvider, DevProviderConfig, KeyRing

SPA = "http://127.0.0.1:8003"

CORS_ENDPOINTS = [
    pytest.param("GET", "/.well-known/openid-configuration", id="discovery"),
    pytest.param("GET", "/.well-known/oauth-authorization-server", id="rfc8414-metadata"),
    pytest.param("GET", "/jwks", id="jwks"),
    pytest.param("POST", "/token", id="token"),
    pytest.param("GET", "/userinfo", id="userinfo"),
    pytest.param("POST", "/revoke", id="revocation"),
    pytest.param("POST", "/device_authorization", id="device-authorization"),
]


def _preflight(origin: str, method: str) -> dict[str, str]:
    return {
        "Origin": origin,
        "Access-Control-Request-Method": method,
        "Access-Control-Request-Headers": "authorization, content-type, dpop",
    }


@pytest.mark.parametrize(("method", "path"), CORS_ENDPOINTS)
async def test_preflight_allows_the_spa_origin_with_dpop(
    http: httpx.AsyncClient, method: str, path: str
) -> None:
    response = await http.options(path, headers=_preflight(SPA, method))
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == SPA
    assert method in response.headers["access-control-allow-methods"]
    allowed = response.headers["access-control-allow-headers"].lower()
    assert {"authorization", "content-type", "dpop"} <= {h.strip() for h in allowed.split(",")}


@pytest.mark.parametrize(
    "origin",
    [
        pytest.param("https://evil.example", id="other-site"),
        pytest.param("http://127.0.0.1:8000", id="confidential-webapp-origin"),
        pytest.param("http://localhost:8003", id="localhost-is-not-127.0.0.1"),
        pytest.param("null", id="opaque-origin"),
    ],
)
@pytest.mark.parametrize(("method", "path"), CORS_ENDPOINTS)
async def test_other_origins_get_no_cors(
    http: httpx.AsyncClient, origin: str, method: str, path: str
) -> None:
    preflight = await http.options(path, headers=_preflight(origin, method))
    assert preflight.status_code == 400
    assert "access-control-allow-origin" not in preflight.headers
    simple = await http.request(method, path, headers={"Origin": origin})
    assert "access-control-allow-origin" not in simple.headers


async def test_discovery_and_token_answers_carry_the_origin(http: httpx.AsyncClient) -> None:
    discovery = await http.get("/.well-known/openid-configuration", headers={"Origin": SPA})
    assert discovery.status_code == 200
    assert discovery.headers["access-control-allow-origin"] == SPA
    error = await http.post(
        "/token", data={"grant_type": "authorization_code"}, headers={"Origin": SPA}
    )
    assert error.status_code in (400, 401)  # errors are readable by the page too
    assert error.headers["access-control-allow-origin"] == SPA
    assert "dpop-nonce" in error.headers["access-control-expose-headers"].lower()


@pytest.mark.parametrize(
    "path",
    [
        pytest.param("/authorize", id="authorize"),
        pytest.param("/login", id="login-form"),
        pytest.param("/logout", id="end-session"),
        pytest.param("/introspect", id="introspection-is-for-servers"),
    ],
)
async def test_navigations_and_server_endpoints_have_no_cors(
    http: httpx.AsyncClient, path: str
) -> None:
    response = await http.options(path, headers=_preflight(SPA, "POST"))
    assert "access-control-allow-origin" not in response.headers


def test_origins_come_from_public_browser_clients(shared_keys: KeyRing) -> None:
    base = DevProviderConfig.default("http://127.0.0.1:9100")
    extra = (
        DevClient(
            client_id="spa2",
            token_endpoint_auth_method="none",
            redirect_uris=("https://app.example/cb", "https://app.example/other", "myapp:/cb"),
        ),
        DevClient(
            client_id="web2",
            client_secret="s",
            redirect_uris=("https://confidential.example/cb",),
        ),
    )
    provider = DevProvider(
        dataclasses.replace(base, clients=(*base.clients, *extra)), keys=shared_keys.copy()
    )
    # Not the native client's loopback, not confidential clients, not custom schemes.
    assert provider.cors_origins() == ["http://127.0.0.1:8003", "https://app.example"]
