"""Access tokens for APIs from the session: refresh (RFC 6749 section 6), single-flight,
rotation grace, other audiences (RFC 8707), ``invalid_grant``, and ``UserTokenAuth``."""

from __future__ import annotations

import asyncio
import warnings
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from oidc_asgi.downstream import DownstreamChallenge
from oidc_asgi.errors import ConfigurationError
from oidc_asgi.sessions import MemoryStore
from oidc_asgi.signin import OIDCAuth, SignInWarning
from oidc_asgi.testing import DevProvider, KeyRing

from ._api_support import (
    API1,
    API2,
    OFFLINE_SCOPE,
    TokenEndpointCounter,
    api_app,
    bcl_provider_config,
    counted_client,
    token_app,
)
from ._support import BROWSER_HEADERS, ISSUER, Clock, Harness, location, set_cookies


@pytest.fixture
def counter(clock: Clock, shared_keys: KeyRing) -> TokenEndpointCounter:
    provider = DevProvider(bcl_provider_config(), now=clock, keys=shared_keys.copy())
    return TokenEndpointCounter(provider)


@pytest.fixture
def provider(counter: TokenEndpointCounter) -> DevProvider:
    assert isinstance(counter.app, DevProvider)
    return counter.app


@pytest.fixture
async def h(
    counter: TokenEndpointCounter, provider: DevProvider, clock: Clock
) -> AsyncIterator[Harness]:
    async with counted_client(counter) as op_http:
        yield Harness(provider=provider, op_http=op_http, clock=clock)


@pytest.fixture(params=["cookie", "memory-store"])
def store(request: pytest.FixtureRequest, clock: Clock) -> dict[str, Any]:
    return {} if request.param == "cookie" else {"session_store": MemoryStore(now=clock)}


def rp(h: Harness, downstream: Any = None, **overrides: Any) -> OIDCAuth:
    settings: dict[str, Any] = {"scope": OFFLINE_SCOPE}
    settings.update(overrides)
    return h.wrap(token_app(downstream), **settings)


def rp_granting(h: Harness, api: str, downstream: Any = None, **overrides: Any) -> OIDCAuth:
    """``rp`` with ``api`` granted at sign-in (RFC 8707 section 2) but redeemed for userinfo:
    the API's token comes by refresh. The startup size estimate then warns about the cookie."""
    key = "audience" if overrides.get("audience_parameter") == "audience" else "resource"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SignInWarning)
        return rp(h, downstream, authorization_params={key: api}, **overrides)


async def token(client: httpx.AsyncClient, query: str = "") -> str:
    response = await client.get(f"/token{query}")
    assert response.status_code == 200, response.text
    value = response.json()["token"]
    assert isinstance(value, str)
    return value


async def test_a_fresh_token_comes_from_the_session_without_a_token_request(
    h: Harness, counter: TokenEndpointCounter, store: dict[str, Any]
) -> None:
    async with h.client(rp(h, **store)) as client:
        await h.sign_in(client)
        first = await token(client)
        assert await token(client) == first
        assert counter.refreshes() == []


async def test_refresh_before_expiry_margin_rfc6749_6(
    h: Harness, counter: TokenEndpointCounter, store: dict[str, Any]
) -> None:
    app = rp(h, token_min_ttl=120, **store)
    async with h.client(app) as client:
        await h.sign_in(client)
        first = await token(client)
        h.clock.advance(3600 - 121)  # still valid for 121 s: kept
        assert await token(client) == first
        h.clock.advance(2)  # 119 s left, under the margin: refreshed before it expires
        response = await client.get("/token")
        second = response.json()["token"]
        assert second != first
        assert len(counter.refreshes()) == 1
        if not store:  # the cookie carries the refreshed set
            assert "oidc_session" in set_cookies(response)
        assert await token(client) == second  # written back: no second refresh
        assert len(counter.refreshes()) == 1


async def test_fifty_parallel_requests_cause_one_refresh(
    h: Harness, counter: TokenEndpointCounter, store: dict[str, Any]
) -> None:
    async with h.client(rp(h, **store)) as client:
        await h.sign_in(client)
        h.clock.advance(3600)
        tokens = await asyncio.gather(*(token(client) for _ in range(50)))
        assert len(set(tokens)) == 1
        assert len(counter.refreshes()) == 1


async def test_rotation_grace_gives_an_old_cookie_the_new_tokens(
    h: Harness, counter: TokenEndpointCounter, provider: DevProvider
) -> None:
    app = rp(h)
    async with h.client(app) as client, h.client(app) as stale:
        await h.sign_in(client)
        stale.cookies.update(client.cookies)  # a parallel request still holding the old cookie
        h.clock.advance(3600)
        fresh = await token(client)
        assert await token(stale) == fresh  # not invalid_grant: the grace entry answered
        assert len(counter.refreshes()) == 1
        assert not any(grant.revoked for grant in provider.state.grants.values())


async def test_rotation_grace_across_instances_of_the_same_process(
    h: Harness, counter: TokenEndpointCounter
) -> None:
    # Two middlewares sharing one MemorySharedState behave like two workers sharing Redis.
    from oidc_asgi.sessions import MemorySharedState

    shared = MemorySharedState(now=h.clock)
    one, two = rp(h, shared_state=shared), rp(h, shared_state=shared)
    async with h.client(one) as first, h.client(two) as second:
        await h.sign_in(first)
        second.cookies.update(first.cookies)
        h.clock.advance(3600)
        assert await token(first) == await token(second)
        assert len(counter.refreshes()) == 1


async def test_after_the_grace_window_a_replayed_refresh_token_ends_the_session(
    h: Harness, provider: DevProvider
) -> None:
    app = rp(h, refresh_grace=30)
    async with h.client(app) as client, h.client(app) as stale:
        await h.sign_in(client)
        stale.cookies.update(client.cookies)
        h.clock.advance(3600)
        await token(client)
        h.clock.advance(31)
        response = await stale.get("/token")
        assert response.status_code == 401
        assert response.json()["error"] == "session_ended"


async def test_invalid_grant_ends_the_session_and_the_next_navigation_signs_in(
    h: Harness, provider: DevProvider, store: dict[str, Any]
) -> None:
    async with h.client(rp(h, **store)) as client:
        await h.sign_in(client)
        for grant in list(provider.state.grants.values()):
            provider.state.revoke_grant(grant.id)
        h.clock.advance(3600)
        response = await client.get("/token")
        assert response.status_code == 401
        body = response.json()
        assert body["error"] == "session_ended"
        assert "login_url" in body
        assert "Max-Age=0" in set_cookies(response)["oidc_session"]
        assert (await client.get("/whoami")).text == "anonymous"
        navigation = await client.get("/private", headers=BROWSER_HEADERS)
        assert navigation.status_code == 302
        assert location(navigation).startswith(f"{ISSUER}/authorize?")


async def test_invalid_grant_on_a_navigation_redirects_to_sign_in_at_once(
    h: Harness, provider: DevProvider
) -> None:
    async with h.client(rp(h)) as client:
        await h.sign_in(client)
        for grant in list(provider.state.grants.values()):
            provider.state.revoke_grant(grant.id)
        h.clock.advance(3600)
        response = await client.get("/token", headers=BROWSER_HEADERS)
        assert response.status_code == 302
        assert location(response).startswith(f"{ISSUER}/authorize?")
        assert "Max-Age=0" in set_cookies(response)["oidc_session"]


async def test_a_second_audience_through_the_refresh_token_rfc8707(
    h: Harness, counter: TokenEndpointCounter, provider: DevProvider, store: dict[str, Any]
) -> None:
    # Granted at sign-in (RFC 8707 section 2), redeemed for userinfo, then picked by refresh.
    async with h.client(rp_granting(h, API1, **store)) as client:
        await h.sign_in(client)
        own = await token(client)
        api_token = await token(client, f"?aud={API1}")
        assert provider.unverified_claims(api_token)["aud"] == API1
        [form] = counter.refreshes()
        assert form["resource"] == [API1]
        assert await token(client, f"?aud={API1}") == api_token  # kept in the session
        assert await token(client) == own
        assert len(counter.refreshes()) == 1


async def test_audience_parameter_audience_sends_auth0_style(
    h: Harness, counter: TokenEndpointCounter
) -> None:
    app = rp_granting(h, API2, audience_parameter="audience")
    async with h.client(app) as client:
        await h.sign_in(client)
        await token(client, f"?aud={API2}")
        [form] = counter.refreshes()
        assert form["audience"] == [API2]
        assert "resource" not in form


async def test_scopes_narrower_than_granted_use_the_stored_token(
    h: Harness, counter: TokenEndpointCounter
) -> None:
    scope = (*OFFLINE_SCOPE, "read:messages", "write:messages")
    app = rp_granting(h, API1, scope=scope)
    async with h.client(app) as client:
        await h.sign_in(client)
        wide = await token(client, f"?aud={API1}")
        assert await token(client, f"?aud={API1}&scopes=read:messages") == wide
        assert len(counter.refreshes()) == 1


async def test_an_audience_the_provider_refuses_asks_for_a_new_sign_in(
    h: Harness, counter: TokenEndpointCounter
) -> None:
    # Signed in for API1 only: the grant is bound to it, so API2 is invalid_target.
    app = rp(h, audience=API1, session_store=MemoryStore(now=h.clock))
    async with h.client(app) as client:
        await h.sign_in(client)
        response = await client.get(f"/token?aud={API2}")
        assert response.status_code == 401
        assert response.json()["error"] == "audience_not_granted"
        assert "set-cookie" not in response.headers  # the session is kept
        assert (await client.get("/whoami")).text == "alice"


@pytest.mark.parametrize(
    ("scope", "signed_in", "code"),
    [
        pytest.param(("openid",), False, "login_required", id="not-signed-in"),
        pytest.param(("openid",), True, "refresh_unavailable", id="no-refresh-token"),
    ],
)
async def test_no_token_without_a_new_sign_in(
    h: Harness, scope: tuple[str, ...], signed_in: bool, code: str
) -> None:
    async with h.client(rp(h, scope=scope)) as client:
        if signed_in:
            await h.sign_in(client)
        h.clock.advance(3600)
        response = await client.get("/token")
        assert response.status_code == 401
        assert response.json()["error"] == code


@pytest.mark.parametrize(
    ("name", "value"),
    [
        pytest.param("token_min_ttl", -1, id="negative-margin"),
        pytest.param("refresh_grace", 0, id="no-grace"),
        pytest.param("audience_parameter", "aud", id="unknown-audience-parameter"),
        pytest.param("logout_token_algorithms", "RS256", id="algorithms-as-string"),
        pytest.param("shared_state", object(), id="not-shared-state"),
        pytest.param("backchannel_logout_path", "/logout", id="path-repeats-logout"),
    ],
)
def test_settings_are_checked_at_startup(h: Harness, name: str, value: Any) -> None:
    with pytest.raises(ConfigurationError):
        h.config(**{name: value})


# --------------------------------------------------------------------------- UserTokenAuth


class Downstream:
    """An API that refuses the first token it sees with the configured 401 challenge."""

    def __init__(self, challenge: str) -> None:
        self.challenge = challenge
        self.seen: list[str] = []

    async def handle(self, request: Request) -> Response:
        token = request.headers.get("authorization", "")
        self.seen.append(token)
        if len(self.seen) == 1:
            return JSONResponse({}, status_code=401, headers={"WWW-Authenticate": self.challenge})
        return JSONResponse({"ok": True})


@pytest.mark.parametrize(
    ("challenge", "calls", "status"),
    [
        pytest.param('Bearer error="invalid_token"', 2, 200, id="invalid-token-retried"),
        pytest.param('Bearer realm="api"', 2, 200, id="no-error-retried-rfc6750-3.1"),
        pytest.param('Bearer error="insufficient_scope"', 1, 401, id="insufficient-scope-not"),
        pytest.param('Basic realm="x"', 2, 200, id="other-scheme-retried"),
    ],
)
async def test_user_token_auth_refreshes_once_on_401(
    h: Harness, counter: TokenEndpointCounter, challenge: str, calls: int, status: int
) -> None:
    downstream = Downstream(challenge)
    app = rp_granting(h, API1, api_app(downstream.handle))
    async with h.client(app) as client:
        await h.sign_in(client)
        response = await client.get(f"/call?aud={API1}")
        assert response.json()["status"] == status
        assert len(downstream.seen) == calls
        assert all(seen.startswith("Bearer ") for seen in downstream.seen)
        if calls == 2:
            assert downstream.seen[0] != downstream.seen[1]
            # one refresh for API1's first token, one after the 401
            assert len(counter.refreshes()) == 2


async def test_user_token_auth_raises_step_up_challenges(h: Harness) -> None:
    downstream = Downstream('Bearer error="insufficient_user_authentication", acr_values="mfa"')
    async with h.client(rp(h, api_app(downstream.handle))) as client:
        await h.sign_in(client)
        with pytest.raises(DownstreamChallenge) as caught:
            await client.get("/call")
        assert caught.value.acr_values == "mfa"
        assert len(downstream.seen) == 1
