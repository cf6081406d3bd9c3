"""``trusted_proxies``: forwarded scheme and host count only when the peer is a trusted proxy."""

from __future__ import annotations

import httpx
import pytest
from starlette.types import ASGIApp

from oidc_asgi.errors import ConfigurationError
from oidc_asgi.signin import SignInConfig

from ._support import APP, HTTPS_APP, SECRET, Harness, attributes, set_cookies

PROXY = "10.0.0.2"
BROWSER_IP = "203.0.113.5"
STRANGER = "198.51.100.7"


def peer(app: ASGIApp, address: str, base_url: str = APP) -> httpx.AsyncClient:
    """A client of ``app`` whose requests arrive from ``address`` (the ASGI scope's client)."""
    transport = httpx.ASGITransport(app=app, client=(address, 40000))
    return httpx.AsyncClient(transport=transport, base_url=base_url)


async def _session_cookie(
    client: httpx.AsyncClient, headers: dict[str, str], name: str = "oidc_session"
) -> dict[str, str]:
    response = await client.get("/put", params={"k": "v"}, headers=headers)
    assert response.status_code == 200
    return attributes(set_cookies(response)[name])


SECURE_CASES = [
    pytest.param(PROXY, {"x-forwarded-proto": "https"}, True, id="trusted-x-forwarded-proto"),
    pytest.param(PROXY, {"forwarded": 'for=203.0.113.5;proto=https;host="app.example"'}, True,
                 id="trusted-forwarded-rfc7239"),
    pytest.param(PROXY, {"forwarded": "for=203.0.113.5;proto=https",
                         "x-forwarded-proto": "http"}, True, id="forwarded-wins-over-x-forwarded"),
    pytest.param(STRANGER, {"x-forwarded-proto": "https"}, False, id="untrusted-peer-ignored"),
    pytest.param(STRANGER, {"forwarded": "proto=https"}, False, id="untrusted-forwarded-ignored"),
    pytest.param(PROXY, {}, False, id="trusted-peer-without-headers"),
    pytest.param(PROXY, {"x-forwarded-proto": "https, http",
                         "x-forwarded-for": f"{BROWSER_IP}, {PROXY}"}, True,
                 id="chain-of-trusted-proxies-outermost-entry"),
    pytest.param(PROXY, {"x-forwarded-proto": "https, http",
                         "x-forwarded-for": f"{BROWSER_IP}, {STRANGER}"}, False,
                 id="chain-through-untrusted-hop-stops-there"),
    pytest.param(PROXY, {"x-forwarded-proto": "https, http", "x-forwarded-for": BROWSER_IP},
                 False, id="client-spoofed-proto-before-trusted-proxy"),
    pytest.param(PROXY, {"x-forwarded-proto": "gopher"}, False, id="unknown-scheme-ignored"),
]  # fmt: skip


@pytest.mark.parametrize(("address", "headers", "secure"), SECURE_CASES)
async def test_secure_cookie_from_trusted_forwarded_proto(
    harness: Harness, address: str, headers: dict[str, str], secure: bool
) -> None:
    app = harness.wrap(trusted_proxies=["10.0.0.0/8", "127.0.0.1"])
    async with peer(app, address) as client:
        assert ("secure" in await _session_cookie(client, headers)) is secure


async def test_forwarded_http_never_removes_secure_from_an_https_site(harness: Harness) -> None:
    app = harness.wrap(base_url=HTTPS_APP, trusted_proxies=[PROXY])
    async with peer(app, PROXY, HTTPS_APP) as client:
        forwarded_http = {"x-forwarded-proto": "http"}
        assert "secure" in await _session_cookie(client, forwarded_http, "__Host-oidc_session")


async def test_without_trusted_proxies_headers_are_ignored(harness: Harness) -> None:
    app = harness.wrap()
    async with peer(app, "127.0.0.1") as client:
        assert "secure" not in await _session_cookie(client, {"x-forwarded-proto": "https"})


async def test_login_transaction_cookie_follows_the_forwarded_scheme(harness: Harness) -> None:
    app = harness.wrap(trusted_proxies=[PROXY])
    async with peer(app, PROXY) as client:
        response = await client.get("/login", headers={"x-forwarded-proto": "https"})
        assert response.status_code == 302
        for name, header in set_cookies(response).items():
            assert "secure" in attributes(header), name
        # redirect_uri still comes from base_url, never from the headers
        assert (
            "redirect_uri=http%3A%2F%2F127.0.0.1%3A8000%2Fcallback" in response.headers["location"]
        )


PUBLIC = "https://app.public.example"
FORWARDED_PUBLIC = {"x-forwarded-proto": "https", "x-forwarded-host": "app.public.example"}

LOGOUT_CASES = [
    pytest.param(PROXY, {"origin": PUBLIC, **FORWARDED_PUBLIC}, 303,
                 id="trusted-forwarded-origin-accepted"),
    pytest.param(PROXY, {"origin": PUBLIC,
                         "forwarded": 'for=203.0.113.5;proto=https;host="app.public.example"'},
                 303, id="trusted-rfc7239-origin-accepted"),
    pytest.param(STRANGER, {"origin": PUBLIC, **FORWARDED_PUBLIC}, 403,
                 id="untrusted-forwarded-origin-refused"),
    pytest.param(PROXY, {"origin": "https://evil.example", **FORWARDED_PUBLIC}, 403,
                 id="cross-site-origin-refused"),
    pytest.param(PROXY, {"origin": PUBLIC, "x-forwarded-host": "app.public.example"}, 403,
                 id="forwarded-host-without-proto-refused"),
    pytest.param(PROXY, {"origin": PUBLIC, "x-forwarded-proto": "https",
                         "x-forwarded-host": "app.public.example/evil"}, 403,
                 id="implausible-forwarded-host-refused"),
    pytest.param(STRANGER, {"origin": APP}, 303, id="base-url-origin-from-anyone"),
]  # fmt: skip


@pytest.mark.parametrize(("address", "headers", "status"), LOGOUT_CASES)
async def test_logout_origin_check_uses_trusted_forwarded_origin(
    harness: Harness, address: str, headers: dict[str, str], status: int
) -> None:
    app = harness.wrap(trusted_proxies=[PROXY], idp_logout=False)
    async with peer(app, address) as client:
        response = await client.post("/logout", headers={**headers, "accept": "application/json"})
        assert response.status_code == status
        if status == 403:
            assert response.json()["error"] == "csrf_failed"


@pytest.mark.parametrize(
    "value",
    [
        pytest.param(["10.0.0.300"], id="bad-address"),
        pytest.param(["10.0.0.0/33"], id="bad-prefix"),
        pytest.param(["proxy.example"], id="host-name"),
        pytest.param([10], id="not-a-string"),
    ],
)
def test_trusted_proxies_are_checked_at_startup(value: list[object]) -> None:
    with pytest.raises(ConfigurationError) as info:
        SignInConfig(
            issuer="http://127.0.0.1:9000", client_id="rp", client_secret="s", secrets=[SECRET],
            base_url=APP, trusted_proxies=value,  # type: ignore[arg-type]
        )  # fmt: skip
    assert info.value.code == "invalid_proxy"


def test_trusted_proxies_from_env_are_normalised() -> None:
    config = SignInConfig.from_env(
        {
            "OIDC_ISSUER": "http://127.0.0.1:9000",
            "OIDC_CLIENT_ID": "rp",
            "OIDC_SECRETS": SECRET,
            "OIDC_BASE_URL": APP,
            "OIDC_TRUSTED_PROXIES": "10.0.0.0/8 192.168.1.7 2001:db8::/32",
        }
    )
    assert config.trusted_proxies == ("10.0.0.0/8", "192.168.1.7/32", "2001:db8::/32")
