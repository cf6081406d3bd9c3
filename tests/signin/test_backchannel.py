"""Back-channel logout (OpenID Connect Back-Channel Logout 1.0): the OpenID Foundation's
RP conformance cases, replay, request checks, and sessions ended in every backend."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from oidc_asgi.sessions import MemoryStore
from oidc_asgi.signin import OIDCAuth
from oidc_asgi.testing import DevProvider, KeyRing

from ._api_support import OFFLINE_SCOPE, bcl_provider_config, claims_for, sid_of, signed, token_app
from ._support import APP, Clock, Harness

FORM = {"content-type": "application/x-www-form-urlencoded"}
INVALID = {
    "error": "invalid_request",
    "error_description": "the logout request or logout token is not valid",
}


@pytest.fixture
def provider(clock: Clock, shared_keys: KeyRing) -> DevProvider:
    return DevProvider(bcl_provider_config(), now=clock, keys=shared_keys.copy())


@pytest.fixture
async def h(provider: DevProvider, clock: Clock) -> AsyncIterator[Harness]:
    async with provider.asgi_client() as op_http:
        yield Harness(provider=provider, op_http=op_http, clock=clock)


@pytest.fixture(params=["cookie", "memory-store"])
def store(request: pytest.FixtureRequest, clock: Clock) -> dict[str, Any]:
    return {} if request.param == "cookie" else {"session_store": MemoryStore(now=clock)}


def rp(h: Harness, **overrides: Any) -> OIDCAuth:
    return h.wrap(token_app(), **{"scope": OFFLINE_SCOPE, **overrides})


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def unsigned(provider: DevProvider, claims: dict[str, Any], alg: str = "RS256") -> str:
    header = _b64(json.dumps({"alg": "none", "typ": "logout+jwt"}).encode())
    return f"{header}.{_b64(json.dumps(claims).encode())}."


Build = Callable[[DevProvider, str], str]

CONFORMANCE: list[Any] = [
    pytest.param(
        lambda p, sid: signed(p, claims_for(p, sid)), 200, id="rp-backchannel-rpinitlogout"
    ),
    pytest.param(
        lambda p, sid: unsigned(p, claims_for(p, sid)),
        400,
        id="rp-backchannel-rpinitlogout-lt-alg-none",
    ),
    pytest.param(
        lambda p, sid: signed(p, claims_for(p, sid, events=None)),
        400,
        id="rp-backchannel-rpinitlogout-lt-no-event",
    ),
    pytest.param(
        lambda p, sid: signed(
            p, claims_for(p, sid, events={"http://schemas.openid.net/event/foobar": {}})
        ),
        400,
        id="rp-backchannel-rpinitlogout-lt-wrong-event",
    ),
    pytest.param(
        lambda p, sid: signed(p, claims_for(p, sid, nonce="n-0S6_WzA2Mj")),
        400,
        id="rp-backchannel-rpinitlogout-lt-with-nonce",
    ),
    pytest.param(
        lambda p, sid: signed(p, claims_for(p, sid), alg="ES256"),
        400,
        id="rp-backchannel-rpinitlogout-lt-wrong-alg",
    ),
    pytest.param(
        lambda p, sid: signed(p, claims_for(p, sid, aud="rp-other")),
        400,
        id="rp-backchannel-rpinitlogout-lt-wrong-aud",
    ),
    pytest.param(
        lambda p, sid: signed(p, claims_for(p, sid, iss="http://127.0.0.1:9999")),
        400,
        id="rp-backchannel-rpinitlogout-lt-wrong-issuer",
    ),
    pytest.param(
        lambda p, sid: signed(p, claims_for(p, None, sub=None)),
        400,
        id="lt-no-sub-no-sid-2.6-step5",
    ),
    pytest.param(
        lambda p, sid: signed(p, claims_for(p, sid, exp=int(p.now()) - 120)),
        400,
        id="lt-expired-2.6-step4",
    ),
]


def assert_no_leak(response: httpx.Response, token: str) -> None:
    assert response.headers["cache-control"] == "no-store"
    assert token not in response.text
    if response.status_code == 400:
        assert response.json() == INVALID


@pytest.mark.parametrize(("build", "status"), CONFORMANCE)
async def test_conformance_logout_token(
    h: Harness, store: dict[str, Any], build: Build, status: int
) -> None:
    app = rp(h, **store)
    async with h.client(app) as browser, h.client(app) as op:
        await h.sign_in(browser)
        token = build(h.provider, sid_of(h.provider))
        response = await op.post("/backchannel-logout", data={"logout_token": token})
        assert response.status_code == status
        assert_no_leak(response, token)
        expected = "anonymous" if status == 200 else "alice"
        assert (await browser.get("/whoami")).text == expected


async def test_replayed_logout_token_is_refused(h: Harness, store: dict[str, Any]) -> None:
    app = rp(h, **store)
    async with h.client(app) as browser, h.client(app) as op:
        await h.sign_in(browser)
        token = signed(h.provider, claims_for(h.provider, sid_of(h.provider)))
        first = await op.post("/backchannel-logout", data={"logout_token": token})
        again = await op.post("/backchannel-logout", data={"logout_token": token})
        assert first.status_code == 200
        assert again.status_code == 400
        assert_no_leak(again, token)


@pytest.mark.parametrize(
    ("method", "headers", "body", "status"),
    [
        pytest.param("GET", {}, b"", 405, id="get-not-allowed"),
        pytest.param("POST", {"content-type": "application/json"}, b"{}", 400, id="json-body"),
        pytest.param("POST", FORM, b"", 400, id="no-logout-token"),
        pytest.param("POST", FORM, b"logout_token=", 400, id="empty-logout-token"),
        pytest.param("POST", FORM, b"logout_token=a&logout_token=b", 400, id="repeated"),
        pytest.param("POST", FORM, b"logout_token=" + b"a" * 20_000, 413, id="too-large"),
        pytest.param("POST", FORM, b"logout_token=not.a.jwt", 400, id="garbage"),
    ],
)
async def test_bad_requests_are_refused_without_detail(
    h: Harness, method: str, headers: dict[str, str], body: bytes, status: int
) -> None:
    async with h.client(rp(h)) as op:
        response = await op.request(method, "/backchannel-logout", headers=headers, content=body)
        assert response.status_code == status
        assert response.headers["cache-control"] == "no-store"
        assert response.json()["error"] == "invalid_request"


async def test_the_route_can_be_turned_off(h: Harness) -> None:
    async with h.client(rp(h, backchannel_logout_path=None)) as op:
        response = await op.post("/backchannel-logout", data={"logout_token": "x"})
        assert response.status_code == 404


async def test_sub_without_sid_ends_every_session_of_the_user(
    h: Harness, store: dict[str, Any]
) -> None:
    app = rp(h, **store)
    async with (
        h.client(app) as one,
        h.client(app) as two,
        h.client(app) as bob,
        h.client(app) as op,
    ):
        await h.sign_in(one)
        await h.sign_in(two, "/login?prompt=login")
        await h.sign_in(bob, "/login?prompt=login", username="bob")
        token = signed(h.provider, claims_for(h.provider, None))
        assert (
            await op.post("/backchannel-logout", data={"logout_token": token})
        ).status_code == 200
        assert (await one.get("/whoami")).text == "anonymous"
        assert (await two.get("/whoami")).text == "anonymous"
        assert (await bob.get("/whoami")).text == "bob"


async def test_a_session_signed_in_after_the_logout_event_is_not_affected(
    h: Harness, store: dict[str, Any]
) -> None:
    app = rp(h, **store)
    async with h.client(app) as browser, h.client(app) as op:
        await h.sign_in(browser)
        token = signed(h.provider, claims_for(h.provider, None))
        assert (
            await op.post("/backchannel-logout", data={"logout_token": token})
        ).status_code == 200
        h.clock.advance(5)
        await h.sign_in(browser, "/login?prompt=login")
        assert (await browser.get("/whoami")).text == "alice"


async def test_a_revoked_cookie_is_expired_by_the_next_response(h: Harness) -> None:
    app = rp(h)
    async with h.client(app) as browser, h.client(app) as op:
        await h.sign_in(browser)
        token = signed(h.provider, claims_for(h.provider, sid_of(h.provider)))
        await op.post("/backchannel-logout", data={"logout_token": token})
        response = await browser.get("/whoami")
        assert response.text == "anonymous"
        assert "oidc_session" not in browser.cookies


async def test_delivery_from_the_dev_provider_in_process(
    clock: Clock, shared_keys: KeyRing, store: dict[str, Any]
) -> None:
    holder: list[OIDCAuth] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await holder[0](scope, receive, send)

    delivery = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=APP)
    provider = DevProvider(
        bcl_provider_config(), now=clock, keys=shared_keys.copy(), backchannel_client=delivery
    )
    async with provider.asgi_client() as op_http, delivery:
        h = Harness(provider=provider, op_http=op_http, clock=clock)
        holder.append(rp(h, **store))
        async with h.client(holder[0]) as browser:
            await h.sign_in(browser)
            [result] = await provider.backchannel_logout(sub="alice")
            assert result.status_code == 200, result.error
            assert (await browser.get("/whoami")).text == "anonymous"


@pytest.fixture(params=["cookie", "memory-store", "redis-store"])
async def every_store(
    request: pytest.FixtureRequest, clock: Clock
) -> AsyncIterator[dict[str, Any]]:
    if request.param == "cookie":
        yield {}
    elif request.param == "memory-store":
        yield {"session_store": MemoryStore(now=clock)}
    else:
        from oidc_asgi.sessions.redis import RedisStore

        redis_url: str = request.getfixturevalue("redis_url")
        store = RedisStore(url=redis_url, prefix=f"t{time.monotonic_ns()}:")
        yield {"session_store": store}
        await store.aclose()


@pytest.mark.parametrize("by", ["sub", "sid"])
async def test_a_session_signed_in_between_issuance_and_delivery_survives_2_7(
    h: Harness, every_store: dict[str, Any], by: str
) -> None:
    # Section 2.7 ends the sessions that existed when the provider logged the user out: a
    # sign-in after the logout token's iat (and before it arrived) is judged by its ID
    # token's iat, in server stores as in cookie sessions.
    app = rp(h, **every_store)
    async with h.client(app) as before, h.client(app) as after, h.client(app) as op:
        await h.sign_in(before)
        sid = sid_of(h.provider) if by == "sid" else None
        token = signed(h.provider, claims_for(h.provider, sid))
        h.clock.advance(5)
        await h.sign_in(after)  # the provider's session: same sub and sid (SSO)
        response = await op.post("/backchannel-logout", data={"logout_token": token})
        assert response.status_code == 200
        assert (await before.get("/whoami")).text == "anonymous"
        assert (await after.get("/whoami")).text == "alice"


@pytest.mark.parametrize("algs", [("ES384",), ("RS256", "PS384")])
async def test_logout_token_algorithms_outside_the_defaults_are_allowed(
    h: Harness, algs: tuple[str, ...]
) -> None:
    """A client registered for ES384 ID/logout tokens must be able to say so (Back-Channel
    Logout 2.6 step 3: the algorithm the client registered), and nothing else widens."""
    app = rp(h, logout_token_algorithms=algs)
    assert set(algs) <= set(app.validator.algorithms)
    assert "HS256" not in app.validator.algorithms
