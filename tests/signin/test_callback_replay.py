"""A replayed form_post callback: the provider's cross-site POST arrives without Lax cookies.

Browsers withhold ``SameSite=Lax`` cookies on a cross-site POST (RFC 6265bis section 5.6.7.1),
so a signed-in user who replays the provider's auto-submitting form (back button, a second
submit) reaches the callback without the session cookie. Such a POST of unknown state is
answered with a 303 to ``GET /callback?resume=1`` (no code, no state in the URL); that hop never
redeems a code: a signed-in user goes on to the return address, anyone else sees
``unknown_state`` with a link to sign in again.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from starlette.types import ASGIApp, Receive, Scope, Send

from oidc_asgi.signin import OIDCAuth

from ._support import APP, BROWSER_HEADERS, ISSUER, Harness, location, set_cookies

JSON = {"accept": "application/json"}
RESUME = f"{APP}/callback?resume=1"


class Counting:
    """The development provider behind a recorder of the paths it is asked for."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.paths: list[str] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            self.paths.append(scope["path"])
        await self.app(scope, receive, send)

    @property
    def token_calls(self) -> int:
        return self.paths.count("/token")


@pytest.fixture
async def counted(harness: Harness) -> AsyncIterator[tuple[Counting, Harness]]:
    wrapper = Counting(harness.provider)
    transport = httpx.ASGITransport(app=wrapper)
    async with httpx.AsyncClient(transport=transport, base_url=ISSUER) as http:
        yield wrapper, Harness(provider=harness.provider, op_http=http, clock=harness.clock)


async def form_post_sign_in(harness: Harness, client: httpx.AsyncClient) -> dict[str, str]:
    """A form_post sign-in returning to /private/x; the posted answer, for replaying."""
    start = await harness.authorize(client, "/login?return_to=/private/x")
    answer = await harness.provider_login(location(start))
    assert set(answer) >= {"code", "state", "iss"}
    done = await client.post("/callback", data=answer)
    assert done.status_code == 303, done.text
    assert location(done) == f"{APP}/private/x"
    return answer


def no_grant_revoked(harness: Harness) -> bool:
    # A second redemption of a code makes the provider revoke its grant (RFC 6749 4.1.2).
    return not any(grant.revoked for grant in harness.provider.state.grants.values())


async def test_replay_without_cookies_resumes_by_get_to_the_return_address(
    counted: tuple[Counting, Harness],
) -> None:
    provider, harness = counted
    app = harness.wrap(response_mode="form_post")
    async with harness.client(app) as browser, harness.client(app) as cross_site:
        answer = await form_post_sign_in(harness, browser)
        assert provider.token_calls == 1
        # The replayed cross-site POST: the browser withholds the Lax session cookie.
        replay = await cross_site.post("/callback", data=answer, headers=JSON)
        assert replay.status_code == 303
        assert location(replay) == RESUME
        assert replay.headers["cache-control"] == "no-store"
        assert not set_cookies(replay)
        for secret in (answer["code"], answer["state"]):
            assert secret not in location(replay)
        # The GET hop is same-site navigation: the session cookie comes along.
        hop = await browser.get(location(replay), headers=BROWSER_HEADERS)
        assert hop.status_code == 303
        assert location(hop) == f"{APP}/private/x"
        assert hop.headers["cache-control"] == "no-store"
        assert (await browser.get("/me")).json()["sub"] == "alice"
    assert provider.token_calls == 1
    assert no_grant_revoked(harness)


async def test_resume_after_the_transaction_ttl_goes_to_the_default_address(
    harness: Harness,
) -> None:
    app = harness.wrap(response_mode="form_post", default_return_to="/public/home")
    async with harness.client(app) as browser:
        await form_post_sign_in(harness, browser)
        harness.clock.advance(601)  # transaction_ttl=600: the done marker is no longer recent
        hop = await browser.get("/callback?resume=1")
        assert hop.status_code == 303
        assert location(hop) == f"{APP}/public/home"


async def test_anonymous_replay_ends_in_unknown_state_with_a_sign_in_link(
    counted: tuple[Counting, Harness],
) -> None:
    provider, harness = counted
    app = harness.wrap(response_mode="form_post")
    async with harness.client(app) as browser, harness.client(app) as stranger:
        answer = await form_post_sign_in(harness, browser)
        replay = await stranger.post("/callback", data=answer, headers=JSON)
        assert location(replay) == RESUME
        hop = await stranger.get(location(replay), headers=JSON)
        assert hop.status_code == 400
        assert hop.headers["cache-control"] == "no-store"
        body = hop.json()
        assert body["error"] == "unknown_state"
        assert body["hint"]
        assert body["login_url"] == f"{APP}/login"
        assert not set_cookies(hop)
        page = await stranger.get(location(replay), headers=BROWSER_HEADERS)
        assert page.status_code == 400
        assert page.headers["content-type"].startswith("text/html")
        assert f'<a href="{APP}/login">Sign in again</a>' in page.text
        for secret in (answer["code"], answer["state"]):
            assert secret not in hop.text + page.text
        assert (await stranger.get("/me")).json()["sub"] is None
    assert provider.token_calls == 1
    assert no_grant_revoked(harness)


@pytest.mark.parametrize(
    "query",
    [
        pytest.param("resume=1", id="resume"),
        pytest.param("resume=1&code={code}&state={state}&iss=" + ISSUER, id="smuggled-code"),
        pytest.param("code={code}&state={state}&iss=" + ISSUER + "&resume=0", id="resume-0"),
    ],
)
async def test_resume_hop_never_redeems_a_code(
    counted: tuple[Counting, Harness], query: str
) -> None:
    # A fresh, unused code in the resume URL: still no token request, for anyone.
    provider, harness = counted
    app = harness.wrap(response_mode="form_post")
    async with harness.client(app) as browser, harness.client(app) as stranger:
        await form_post_sign_in(harness, browser)
        harness.op_http.cookies.clear()  # another browser at the provider too
        start = await harness.authorize(stranger, "/login?return_to=/private/y")
        unused = await harness.provider_login(location(start))
        url = "/callback?" + query.format(code=unused["code"], state=unused["state"])
        calls = provider.token_calls
        signed_in = await browser.get(url)
        assert signed_in.status_code == 303
        assert location(signed_in) == f"{APP}/private/x"  # not /private/y
        anonymous = await stranger.get(url, headers=JSON)
        assert anonymous.status_code == 400
        assert anonymous.json()["error"] == "unknown_state"
        assert provider.token_calls == calls
        assert (await stranger.get("/me")).json()["sub"] is None
    assert no_grant_revoked(harness)


OPEN_REDIRECTS = [
    "return_to=//evil.example/",
    "return_to=https://evil.example/",
    "next=https://evil.example/&redirect_uri=https://evil.example/",
    "return_to=/%5Cevil.example",
    "return_to=%2F%2Fevil.example",
]


@pytest.mark.parametrize("extra", OPEN_REDIRECTS)
async def test_resume_hop_is_no_open_redirect(harness: Harness, extra: str) -> None:
    app = harness.wrap(response_mode="form_post")
    async with harness.client(app) as browser:
        await form_post_sign_in(harness, browser)
        hop = await browser.get(f"/callback?resume=1&{extra}", headers={"host": "evil.example"})
        assert hop.status_code == 303
        assert location(hop) == f"{APP}/private/x"
        harness.clock.advance(601)
        hop = await browser.get(f"/callback?resume=1&{extra}")
        assert location(hop) == f"{APP}/"


async def test_replay_with_the_session_cookie_keeps_todays_answer(harness: Harness) -> None:
    # Same-site POST (the cookie came along): the signed-in redirect, no resume hop.
    app = harness.wrap(response_mode="form_post")
    async with harness.client(app) as browser:
        answer = await form_post_sign_in(harness, browser)
        again = await browser.post("/callback", data=answer)
        assert again.status_code == 303
        assert location(again) == f"{APP}/private/x"


@pytest.mark.parametrize(
    "cookie",
    [
        pytest.param("oidc_session", id="unreadable-session-cookie"),
        pytest.param("oidc_session.1", id="session-chunk-only"),
        pytest.param("oidc_tx.{hash}", id="unreadable-transaction-cookie"),
    ],
)
async def test_unknown_state_post_with_a_cookie_is_still_an_error(
    harness: Harness, cookie: str
) -> None:
    from oidc_asgi.signin._transactions import state_hash

    app = harness.wrap(response_mode="form_post")
    async with harness.client(app) as browser, harness.client(app) as other:
        answer = await form_post_sign_in(harness, browser)
        name = cookie.format(hash=state_hash(answer["state"]))
        path = "/callback" if name.startswith("oidc_tx") else "/"
        other.cookies.set(name, "garbage", domain="127.0.0.1", path=path)
        response = await other.post("/callback", data=answer, headers=JSON)
        assert response.status_code == 400
        assert response.json()["error"] == "unknown_state"
        assert "login_url" not in response.json()


async def test_query_mode_get_replay_is_unchanged(harness: Harness) -> None:
    app: OIDCAuth = harness.wrap()
    async with harness.client(app) as browser, harness.client(app) as fresh:
        start = await harness.authorize(browser)
        answer = await harness.provider_login(location(start))
        assert (await browser.get("/callback", params=answer)).status_code == 303
        replay = await fresh.get("/callback", params=answer, headers=JSON)
        assert replay.status_code == 400
        assert replay.json()["error"] == "unknown_state"
