"""An app served under a path prefix (``base_url="https://host/portal"``): return addresses are
app paths, and every redirect carries the prefix exactly once."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from urllib.parse import parse_qs, urlsplit

import pytest

from oidc_asgi.testing import DevClient, DevProvider, KeyRing

from ._support import APP, Clock, Harness, location, provider_config

PREFIXES = [pytest.param("", id="no-prefix"), pytest.param("/portal", id="prefix")]


@pytest.fixture
async def h(clock: Clock, shared_keys: KeyRing) -> AsyncIterator[Harness]:
    base = provider_config()
    client = DevClient(
        client_id="rp-portal",
        client_secret="rp-secret",
        redirect_uris=(f"{APP}/callback", f"{APP}/portal/callback"),
    )
    provider = DevProvider(
        dataclasses.replace(base, clients=(*base.clients, client)),
        now=clock,
        keys=shared_keys.copy(),
    )
    async with provider.asgi_client() as op_http:
        yield Harness(provider=provider, op_http=op_http, clock=clock)


@pytest.mark.parametrize(
    ("prefix", "return_to", "lands_on"),
    [
        pytest.param("", "/x?a=1", "/x?a=1", id="relative-no-prefix"),
        pytest.param("/portal", "/x?a=1", "/x?a=1", id="relative-prefix"),
        pytest.param("", "{app}/x?a=1", "/x?a=1", id="absolute-no-prefix"),
        pytest.param("/portal", "{app}/portal/x?a=1", "/x?a=1", id="absolute-prefix"),
        pytest.param("", "{app}", "/", id="absolute-root-no-prefix"),
        pytest.param("/portal", "{app}/portal", "/", id="absolute-app-root-prefix"),
        pytest.param("", "{app}/other/x", "/other/x", id="absolute-other-path-no-prefix"),
        pytest.param("/portal", "{app}/other/x", "/", id="absolute-outside-the-prefix"),
        pytest.param("/portal", "{app}/portalx/y", "/", id="absolute-prefix-partial-segment"),
        pytest.param("/portal", "https://evil.example/portal/x", "/", id="other-origin-prefix"),
    ],
)
async def test_login_return_address_lands_inside_the_app(
    h: Harness, prefix: str, return_to: str, lands_on: str
) -> None:
    app = h.wrap(client_id="rp-portal", base_url=APP + prefix)
    target = return_to.format(app=APP)
    async with h.client(app) as browser:
        response = await h.sign_in(browser, f"{prefix}/login?return_to={target}")
        assert str(response.url) == f"{APP}{prefix}{lands_on}"


@pytest.mark.parametrize("prefix", PREFIXES)
async def test_a_protected_page_is_where_sign_in_returns(h: Harness, prefix: str) -> None:
    app = h.wrap(client_id="rp-portal", base_url=APP + prefix)
    async with h.client(app) as browser:
        response = await h.sign_in(browser, f"{prefix}/private/page?a=1")
        assert str(response.url) == f"{APP}{prefix}/private/page?a=1"


@pytest.mark.parametrize("prefix", PREFIXES)
async def test_the_api_login_url_names_an_app_path(h: Harness, prefix: str) -> None:
    app = h.wrap(client_id="rp-portal", base_url=APP + prefix)
    async with h.client(app) as api:
        answer = await api.get(f"{prefix}/private/page", headers={"accept": "application/json"})
        assert answer.status_code == 401
        login_url = answer.json()["login_url"]
        assert login_url.startswith(f"{APP}{prefix}/login?")
        assert parse_qs(urlsplit(login_url).query)["return_to"] == ["/private/page"]


async def test_logout_return_address_under_a_prefix(h: Harness) -> None:
    app = h.wrap(client_id="rp-portal", base_url=APP + "/portal", idp_logout=False)
    async with h.client(app) as browser:
        await h.sign_in(browser, "/portal/login")
        response = await browser.post(
            "/portal/logout",
            data={"return_to": f"{APP}/portal/bye"},
            headers={"origin": APP},
        )
        assert location(response) == f"{APP}/portal/bye"
