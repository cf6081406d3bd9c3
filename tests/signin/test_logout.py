"""Logout: local, RP-Initiated Logout 1.0 with state checked on return, POST with CSRF checks."""

from __future__ import annotations

import httpx
import pytest

from ._support import APP, ISSUER, Harness, attributes, location, query_of, set_cookies

SAME_ORIGIN = {"origin": APP}


async def test_rp_initiated_logout(harness: Harness) -> None:
    # oidcc-client-test-rp-init-logout: id_token_hint, registered post_logout_redirect_uri, state
    app = harness.wrap()
    async with harness.client(app) as client:
        await harness.sign_in(client)
        response = await client.post("/logout", data={"return_to": "/bye"}, headers=SAME_ORIGIN)
        assert response.status_code == 303
        target = location(response)
        assert target.startswith(f"{ISSUER}/logout?")
        params = query_of(target)
        assert params["client_id"] == "rp"
        assert params["post_logout_redirect_uri"] == f"{APP}/logged-out"
        claims = harness.provider.unverified_claims(params["id_token_hint"])
        assert claims["sub"] == "alice"
        assert attributes(set_cookies(response)["oidc_session"])["max-age"] == "0"
        assert (await client.get("/me")).json()["sub"] is None
        at_provider = await harness.op_http.get(target)
        assert at_provider.status_code == 303
        assert not harness.provider.state.sessions  # the provider session ended too
        back = await client.get(location(at_provider))
        assert back.status_code == 303
        assert location(back) == f"{APP}/bye"


@pytest.mark.parametrize(
    "query",
    [
        pytest.param({"state": "forged"}, id="rp-init-logout-other-state"),
        pytest.param({}, id="rp-init-logout-no-state"),
    ],
)
async def test_post_logout_landing_ignores_a_foreign_state(
    harness: Harness, query: dict[str, str]
) -> None:
    app = harness.wrap()
    async with harness.client(app) as client:
        await harness.sign_in(client)
        await client.post("/logout", data={"return_to": "/bye"}, headers=SAME_ORIGIN)
        back = await client.get("/logged-out", params=query)
        assert back.status_code == 303
        assert location(back) == f"{APP}/"  # the return address is not trusted


async def test_local_logout(harness: Harness) -> None:
    app = harness.wrap(idp_logout=False)
    async with harness.client(app) as client:
        await harness.sign_in(client)
        response = await client.post("/logout?return_to=/bye", headers=SAME_ORIGIN)
        assert response.status_code == 303
        assert location(response) == f"{APP}/bye"
        assert (await client.get("/me")).json()["sub"] is None
        assert harness.provider.state.sessions  # the provider session is untouched


async def test_logout_falls_back_to_local_when_the_provider_is_down(harness: Harness) -> None:
    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused")

    app = harness.wrap()
    async with (
        harness.client(app) as client,
        httpx.AsyncClient(transport=httpx.MockTransport(down)) as broken,
    ):
        await harness.sign_in(client)
        # Another worker, same secrets, that cannot reach the provider.
        other = harness.wrap(http_client=broken)
        async with harness.client(other) as same_browser:
            same_browser.cookies = client.cookies
            response = await same_browser.post("/logout", headers=SAME_ORIGIN)
            assert response.status_code == 303
            assert location(response) == f"{APP}/"
            assert (await same_browser.get("/me")).json()["sub"] is None


async def test_logout_removes_every_chunk(harness: Harness) -> None:
    app = harness.wrap(idp_logout=False)
    async with harness.client(app) as client:
        await harness.sign_in(client)
        await client.get("/grow?size=6000")
        chunks = {name for name in client.cookies if name.startswith("oidc_session")}
        assert len(chunks) >= 2
        response = await client.post("/logout", headers=SAME_ORIGIN)
        expired = {n for n, v in set_cookies(response).items() if "Max-Age=0" in v}
        assert chunks <= expired
        assert not [name for name in client.cookies if name.startswith("oidc_session")]


@pytest.mark.parametrize(
    ("headers", "with_token", "status"),
    [
        pytest.param({"origin": "https://evil.example"}, False, 403, id="foreign-origin"),
        pytest.param({"origin": "null"}, False, 403, id="null-origin"),
        pytest.param({"sec-fetch-site": "cross-site"}, False, 403, id="cross-site-fetch"),
        pytest.param({}, False, 403, id="no-origin-no-fetch-metadata-no-token"),
        pytest.param({"origin": APP}, False, 303, id="same-origin"),
        pytest.param({"sec-fetch-site": "same-origin"}, False, 303, id="same-origin-fetch"),
        pytest.param({}, True, 303, id="csrf-token"),
        pytest.param({"origin": "https://evil.example"}, True, 303, id="token-wins"),
    ],
)
async def test_logout_csrf_protection(
    harness: Harness, headers: dict[str, str], with_token: bool, status: int
) -> None:
    app = harness.wrap(idp_logout=False)
    async with harness.client(app) as client:
        await harness.sign_in(client)
        token = (await client.get("/me")).json()["csrf_token"]
        data = {"csrf_token": token} if with_token else {}
        response = await client.post(
            "/logout", data=data, headers={**headers, "accept": "application/json"}
        )
        assert response.status_code == status
        signed_in = (await client.get("/me")).json()["sub"]
        if status == 403:
            assert response.json()["error"] == "csrf_failed"
            assert signed_in == "alice"
        else:
            assert signed_in is None


async def test_csrf_token_of_another_session_is_refused(harness: Harness) -> None:
    app = harness.wrap(idp_logout=False)
    async with harness.client(app) as victim, harness.client(app) as attacker:
        await harness.sign_in(victim)
        await harness.sign_in(attacker)
        token = (await attacker.get("/me")).json()["csrf_token"]
        response = await victim.post("/logout", data={"csrf_token": token})
        assert response.status_code == 403


async def test_logout_by_get_is_off_by_default(harness: Harness) -> None:
    app = harness.wrap()
    async with harness.client(app) as client:
        await harness.sign_in(client)
        response = await client.get("/logout", headers={"accept": "application/json"})
        assert response.status_code == 405
        assert response.json()["error"] == "method_not_allowed"
        assert (await client.get("/me")).json()["sub"] == "alice"


async def test_logout_by_get_when_enabled(harness: Harness) -> None:
    app = harness.wrap(logout_methods={"GET", "POST"}, idp_logout=False)
    async with harness.client(app) as client:
        await harness.sign_in(client)
        response = await client.get("/logout?return_to=//evil.example")
        assert location(response) == f"{APP}/"
        assert (await client.get("/me")).json()["sub"] is None


async def test_routes_can_be_turned_off(harness: Harness) -> None:
    app = harness.wrap(logout_path=None, post_logout_path=None, login_path=None)
    async with harness.client(app) as client:
        assert (await client.get("/login")).status_code == 404
        assert (await client.post("/logout", headers=SAME_ORIGIN)).status_code in (404, 405)
        anonymous = await client.get("/private/x", headers={"accept": "application/json"})
        assert anonymous.status_code == 401
        assert "login_url" not in anonymous.json()
