"""RP-Initiated Logout 1.0 and Back-Channel Logout 1.0, delivered to an in-process receiver."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import aclosing
from urllib.parse import parse_qs

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from oidc_asgi.testing import DevProvider, DevProviderConfig, KeyRing

from ._support import WEB_REDIRECT, code_flow, query, verify
from .conftest import Clock

EVENT = "http://schemas.openid.net/event/backchannel-logout"


class Receiver:
    """A relying party's back-channel logout endpoint that records what it receives."""

    def __init__(self, status: int = 200) -> None:
        self.status = status
        self.received: list[dict[str, list[str]]] = []
        self.content_types: list[str] = []
        self.app = Starlette(routes=[Route("/backchannel-logout", self.endpoint, methods=["POST"])])

    async def endpoint(self, request: Request) -> Response:
        self.content_types.append(request.headers["content-type"])
        self.received.append(parse_qs((await request.body()).decode()))
        return Response(status_code=self.status)


@pytest.fixture
def receiver() -> Receiver:
    return Receiver()


@pytest.fixture
async def bcl_provider(
    config: DevProviderConfig, clock: Clock, shared_keys: KeyRing, receiver: Receiver
) -> AsyncIterator[DevProvider]:
    transport = httpx.ASGITransport(app=receiver.app)
    async with httpx.AsyncClient(transport=transport) as rp_http:
        yield DevProvider(config, now=clock, keys=shared_keys.copy(), backchannel_client=rp_http)


async def signed_in(provider: DevProvider) -> tuple[httpx.AsyncClient, dict[str, str]]:
    http = provider.asgi_client()
    tokens = await code_flow(http, client_id="webapp", scope="openid")
    return http, tokens


async def test_rp_initiated_logout_with_backchannel_delivery(
    bcl_provider: DevProvider, receiver: Receiver
) -> None:
    http, tokens = await signed_in(bcl_provider)
    async with aclosing(http):
        sid = bcl_provider.unverified_claims(tokens["id_token"])["sid"]
        response = await http.get(
            "/logout",
            params={
                "id_token_hint": tokens["id_token"],
                "post_logout_redirect_uri": "http://127.0.0.1:8000/",
                "state": "bye",
            },
        )
        assert response.status_code == 303
        assert response.headers["location"] == "http://127.0.0.1:8000/?state=bye"
        assert bcl_provider.state.sessions == {}
        # the provider session is over: the next authorization needs a login again
        again = await http.get(
            "/authorize",
            params={"client_id": "webapp", "redirect_uri": WEB_REDIRECT, "response_type": "code",
                    "scope": "openid", "prompt": "none"},
        )  # fmt: skip
        assert query(again.headers["location"])["error"] == "login_required"
        jwks = (await http.get("/jwks")).json()

    assert receiver.content_types == ["application/x-www-form-urlencoded"]
    [form] = receiver.received
    header, claims = verify(form["logout_token"][0], jwks)
    assert header["typ"] == "logout+jwt"
    assert claims["events"] == {EVENT: {}}
    assert claims["sid"] == sid
    assert claims["sub"] == "alice"
    assert claims["aud"] == "webapp"
    assert claims["iss"] == "http://127.0.0.1:9000"
    assert {"iat", "exp", "jti"} <= set(claims)
    assert "nonce" not in claims
    [delivery] = bcl_provider.state.deliveries
    assert delivery.status_code == 200
    assert delivery.client_id == "webapp"


async def test_logout_without_hint_asks_for_confirmation(
    bcl_provider: DevProvider, receiver: Receiver
) -> None:
    http, _ = await signed_in(bcl_provider)
    async with aclosing(http):
        page = await http.get("/logout", params={"client_id": "webapp", "state": "s"})
        assert page.status_code == 200
        assert 'name="logout" value="yes"' in page.text
        assert receiver.received == []
        done = await http.post("/logout", data={"client_id": "webapp", "logout": "yes"})
        assert done.status_code == 200
        assert "signed out" in done.text
    assert len(receiver.received) == 1


async def test_backchannel_logout_api_by_subject(
    bcl_provider: DevProvider, receiver: Receiver
) -> None:
    http, _ = await signed_in(bcl_provider)
    await http.aclose()
    [delivery] = await bcl_provider.backchannel_logout(sub="alice")
    assert delivery.status_code == 200
    assert delivery.uri == "http://127.0.0.1:8000/backchannel-logout"


async def test_backchannel_failure_is_recorded_not_raised(
    config: DevProviderConfig, shared_keys: KeyRing
) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    async with httpx.AsyncClient(transport=httpx.MockTransport(refuse)) as rp_http:
        provider = DevProvider(config, keys=shared_keys.copy(), backchannel_client=rp_http)
        http, _ = await signed_in(provider)
        await http.aclose()
        [delivery] = await provider.backchannel_logout(sub="alice")
    assert delivery.status_code is None
    assert delivery.error == "ConnectError"


async def test_logout_ends_online_grants(bcl_provider: DevProvider) -> None:
    http, tokens = await signed_in(bcl_provider)
    await http.aclose()
    await bcl_provider.backchannel_logout(sub="alice")
    assert bcl_provider.active_token(tokens["access_token"]) is None


@pytest.mark.parametrize(
    "params",
    [
        {"client_id": "webapp", "post_logout_redirect_uri": "http://127.0.0.1:8000/evil"},
        {"post_logout_redirect_uri": "http://127.0.0.1:8000/"},
        {"id_token_hint": "not.a.jwt"},
        {"id_token_hint": "HINT", "client_id": "spa"},
    ],
    ids=["unregistered-redirect", "redirect-without-client", "bad-hint", "hint-client-mismatch"],
)
async def test_logout_errors_do_not_redirect(
    bcl_provider: DevProvider, receiver: Receiver, params: dict[str, str]
) -> None:
    http, tokens = await signed_in(bcl_provider)
    async with aclosing(http):
        params = {k: tokens["id_token"] if v == "HINT" else v for k, v in params.items()}
        response = await http.get("/logout", params=params)
        assert response.status_code == 400
        assert "location" not in response.headers
    assert receiver.received == []
    assert bcl_provider.state.sessions != {}


async def test_expired_id_token_hint_is_accepted(bcl_provider: DevProvider, clock: Clock) -> None:
    http, tokens = await signed_in(bcl_provider)
    async with aclosing(http):
        clock.advance(3600)
        response = await http.get("/logout", params={"id_token_hint": tokens["id_token"]})
        assert response.status_code == 200
    assert bcl_provider.state.sessions == {}
