"""Several APIs named at sign-in (RFC 8707 section 2), and userinfo next to an API audience.

Against the development provider in-process; the same behaviours against node-oidc-provider
are in ``tests/interop/test_signin_node.py``.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from oidc_asgi.errors import ConfigurationError
from oidc_asgi.sessions import MemoryStore
from oidc_asgi.signin import (
    AccessTokenUnavailable,
    SignInConfig,
    SignInWarning,
    get_access_token,
    get_user,
)
from oidc_asgi.testing import DevProvider

from ._api_support import API1, API2, OFFLINE_SCOPE
from ._support import APP, ISSUER, SECRET, Clock, Harness, location

API3 = "http://127.0.0.1:8004/api"  # opaque tokens; never named at sign-in below
API_SCOPE = (*OFFLINE_SCOPE, "read:messages", "read:summary")


class ProviderFaults(httpx.AsyncBaseTransport):
    """The development provider, recording token request forms and userinfo calls; the next
    userinfo call fails when told to (status or timeout), token answers can be rewritten."""

    def __init__(self, provider: DevProvider) -> None:
        self.inner = httpx.ASGITransport(app=provider)
        self.token_forms: list[dict[str, list[str]]] = []
        self.userinfo_calls = 0
        self.userinfo_fault: int | str | None = None
        self.drop_from_token: str | None = None

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path.endswith("/token"):
            self.token_forms.append(parse_qs((await request.aread()).decode("ascii")))
        if path.endswith("/userinfo"):
            self.userinfo_calls += 1
            if self.userinfo_fault == "timeout":
                raise httpx.ReadTimeout("injected", request=request)
            if isinstance(self.userinfo_fault, int):
                return httpx.Response(self.userinfo_fault, json={"error": "injected"})
        response = await self.inner.handle_async_request(request)
        if path.endswith("/token") and self.drop_from_token is not None:
            body = dict(httpx.Response(200, content=await response.aread()).json())
            body.pop(self.drop_from_token, None)
            return httpx.Response(response.status_code, json=body)
        return response

    def grants(self, grant_type: str) -> list[dict[str, list[str]]]:
        return [f for f in self.token_forms if f.get("grant_type") == [grant_type]]


@pytest.fixture
def faults(dev: DevProvider) -> ProviderFaults:
    return ProviderFaults(dev)


@pytest.fixture
async def h(dev: DevProvider, clock: Clock, faults: ProviderFaults) -> AsyncIterator[Harness]:
    async with httpx.AsyncClient(transport=faults, base_url=ISSUER) as op_http:
        yield Harness(provider=dev, op_http=op_http, clock=clock)


async def _token(request: Request) -> Response:
    try:
        token = await get_access_token(request, audience=request.query_params.get("aud"))
    except AccessTokenUnavailable as exc:
        request.app.state.refused.append(exc)  # the middleware answers it like a guard
        raise
    return JSONResponse({"token": token})


async def _me(request: Request) -> Response:
    user = get_user(request)
    assert user is not None
    return JSONResponse({"sub": user.sub, "email": user.get("email"), "name": user.get("name")})


def _app() -> Starlette:
    app = Starlette(routes=[Route("/token", _token), Route("/me", _me)])
    app.state.refused = []
    return app


async def _token_for(client: httpx.AsyncClient, provider: DevProvider, aud: str = "") -> Any:
    response = await client.get("/token", params={"aud": aud} if aud else {})
    assert response.status_code == 200, response.text
    return provider.unverified_claims(response.json()["token"])


# --------------------------------------------------------------------------- configuration


def _config(**settings: Any) -> SignInConfig:
    base: dict[str, Any] = {
        "issuer": ISSUER,
        "client_id": "rp",
        "client_secret": "rp-secret",
        "secrets": [SECRET],
        "base_url": APP,
        "scope": OFFLINE_SCOPE,
        "session_store": MemoryStore(),  # API tokens outgrow one cookie (a startup warning)
    }
    return SignInConfig(**{**base, **settings})


@pytest.mark.parametrize(
    ("settings", "code"),
    [
        pytest.param({"audience": API1, "audiences": [API2, API1]}, "conflicting_audience",
                     id="audience-not-first-of-audiences"),
        pytest.param({"audiences": [API1, ""]}, "invalid_audience", id="empty-audience"),
        pytest.param({"audiences": [API1, 8002]}, "invalid_audience", id="not-a-string"),
        pytest.param({"audiences": [API1, API1]}, "invalid_audience", id="repeated-audience"),
        pytest.param({"audiences": [API1, API2], "audience_parameter": "audience"},
                     "too_many_audiences", id="auth0-audience-names-one-api"),
    ],
)  # fmt: skip
def test_audiences_are_checked_at_construction(settings: dict[str, Any], code: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        _config(**settings)
    assert caught.value.code == code


@pytest.mark.parametrize(
    ("settings", "audience", "audiences"),
    [
        pytest.param({}, None, (), id="none"),
        pytest.param({"audience": API1}, API1, (API1,), id="audience-shortcut"),
        pytest.param({"audiences": [API1, API2]}, API1, (API1, API2), id="audiences"),
        pytest.param({"audiences": API1}, API1, (API1,), id="audiences-as-one-string"),
        pytest.param({"audience": API1, "audiences": (API1, API2)}, API1, (API1, API2),
                     id="audience-first-of-audiences"),
        pytest.param({"audience": API1, "audience_parameter": "audience"}, API1, (API1,),
                     id="auth0-one-api"),
    ],
)  # fmt: skip
def test_audience_is_the_first_of_audiences(
    settings: dict[str, Any], audience: str | None, audiences: tuple[str, ...]
) -> None:
    config = _config(**settings)
    assert (config.audience, config.audiences) == (audience, audiences)
    assert dataclasses.replace(config) == config  # normalised values construct again


def test_audiences_from_the_environment() -> None:
    environ = {
        "OIDC_ISSUER": ISSUER,
        "OIDC_CLIENT_ID": "rp",
        "OIDC_CLIENT_SECRET": "rp-secret",
        "OIDC_SECRETS": SECRET,
        "OIDC_BASE_URL": APP,
        "OIDC_AUDIENCES": f"{API1} {API2}",
    }
    config = SignInConfig.from_env(environ, session_store=MemoryStore())
    assert config.audiences == (API1, API2)
    assert config.audience == API1


@pytest.mark.parametrize(
    ("settings", "warns"),
    [
        pytest.param({"scope": ("openid", "email"), "audience": API1}, True,
                     id="api-without-offline-access"),
        pytest.param({"audience": API1}, False, id="api-with-offline-access"),
        pytest.param({"scope": ("openid", "email")}, False, id="no-api"),
        pytest.param({"scope": ("openid", "email"), "audience": API1,
                      "audience_parameter": "audience"}, False, id="auth0-audience"),
    ],
)  # fmt: skip
def test_userinfo_with_an_api_and_no_refresh_token_warns_at_startup(
    settings: dict[str, Any], warns: bool
) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _config(fetch_userinfo=True, **settings)
    shown = [str(w.message) for w in caught if issubclass(w.category, SignInWarning)]
    assert any("offline_access" in text and "userinfo" in text for text in shown) is warns


# --------------------------------------------------------------------------- several APIs


async def test_every_audience_is_sent_at_authorization_rfc8707_2(h: Harness) -> None:
    app = h.wrap(
        _app(), session_store=MemoryStore(now=h.clock), scope=OFFLINE_SCOPE, audiences=[API1, API2]
    )
    async with h.client(app) as client:
        start = await h.authorize(client)
    query = parse_qs(urlsplit(location(start)).query)
    assert query["resource"] == [API1, API2]


async def test_second_api_named_at_sign_in_comes_through_the_refresh_token_rfc8707_2_2(
    h: Harness, faults: ProviderFaults
) -> None:
    app = h.wrap(
        _app(), session_store=MemoryStore(now=h.clock), scope=API_SCOPE, audiences=[API1, API2]
    )
    async with h.client(app) as client:
        await h.sign_in(client)
        [redeemed] = faults.grants("authorization_code")
        assert redeemed["resource"] == [API1]  # the first is redeemed with the code
        first = await _token_for(client, h.provider)
        assert (first["aud"], first["scope"]) == (API1, "read:messages")
        assert faults.grants("refresh_token") == []
        second = await _token_for(client, h.provider, API2)
        assert (second["aud"], second["scope"]) == (API2, "read:summary")
        [refresh] = faults.grants("refresh_token")
        assert refresh["resource"] == [API2]
        assert await _token_for(client, h.provider, API2) == second  # kept in the session


async def test_api_not_named_at_sign_in_is_not_granted_with_a_clear_message(
    h: Harness,
) -> None:
    inner = _app()
    app = h.wrap(
        inner, session_store=MemoryStore(now=h.clock), scope=OFFLINE_SCOPE, audiences=[API1, API2]
    )
    async with h.client(app) as client:
        await h.sign_in(client)
        response = await client.get("/token", params={"aud": API3})
    assert response.status_code == 401
    assert response.json()["error"] == "audience_not_granted"
    assert response.json()["login_url"].startswith(f"{APP}/login?")
    [refused] = inner.state.refused
    assert (refused.code, refused.audience) == ("audience_not_granted", API3)
    assert "not named at sign-in" in refused.message
    assert "SignInConfig.audiences" in refused.message


# --------------------------------------------------------------------------- userinfo


@pytest.mark.parametrize(
    ("fault", "status", "code"),
    [
        pytest.param(401, 400, "userinfo_refused", id="401-invalid-token"),
        pytest.param(403, 400, "userinfo_refused", id="403-insufficient-scope"),
        pytest.param(400, 400, "userinfo_refused", id="400-invalid-request"),
        pytest.param(429, 503, "provider_unavailable", id="429-rate-limited"),
        pytest.param(500, 503, "provider_unavailable", id="500-server-error"),
        pytest.param(503, 503, "provider_unavailable", id="503-unavailable"),
        pytest.param("timeout", 503, "provider_unavailable", id="timeout"),
    ],
)
async def test_userinfo_refusal_is_a_sign_in_error_not_an_outage_rfc6750_3_1(
    h: Harness, faults: ProviderFaults, fault: int | str, status: int, code: str
) -> None:
    faults.userinfo_fault = fault
    app = h.wrap(
        _app(),
        session_store=MemoryStore(now=h.clock),
        scope=("openid", "email"),
        fetch_userinfo=True,
    )
    async with h.client(app) as client:
        start = await h.authorize(client)
        answer = await h.provider_login(location(start))
        response = await client.get(
            "/callback", params=answer, headers={"accept": "application/json"}
        )
    assert response.status_code == status
    assert response.json()["error"] == code
    assert "oidc_session" not in response.headers.get("set-cookie", "")


async def test_userinfo_then_the_api_token_by_refresh_rfc8707_2_2(
    h: Harness, faults: ProviderFaults
) -> None:
    """With an API audience the code is redeemed without ``resource`` (a token good at
    userinfo), userinfo is read with it, and the API's token comes from the refresh token."""
    app = h.wrap(
        _app(),
        session_store=MemoryStore(now=h.clock),
        scope=API_SCOPE,
        audiences=[API1, API2],
        fetch_userinfo=True,
    )
    async with h.client(app) as client:
        await h.sign_in(client)
        [redeemed] = faults.grants("authorization_code")
        assert "resource" not in redeemed
        assert faults.userinfo_calls == 1
        [refresh] = faults.grants("refresh_token")
        assert refresh["resource"] == [API1]
        me = (await client.get("/me")).json()
        assert me == {"sub": "alice", "email": "alice@example.com", "name": "Alice Liddell"}
        claims = await _token_for(client, h.provider)
        assert claims["aud"] == API1
        assert len(faults.grants("refresh_token")) == 1  # the sign-in's token, no new request


async def test_one_api_userinfo_and_offline_access_sign_in_rfc8707_2_2(
    h: Harness, faults: ProviderFaults
) -> None:
    """One API: the provider answers a code redeemed without ``resource`` with a userinfo
    token, not the JWT of the one API granted (as node-oidc-provider does)."""
    app = h.wrap(
        _app(),
        session_store=MemoryStore(now=h.clock),
        scope=API_SCOPE,
        audience=API1,
        fetch_userinfo=True,
    )
    async with h.client(app) as client:
        await h.sign_in(client)
        [redeemed] = faults.grants("authorization_code")
        assert "resource" not in redeemed
        assert faults.userinfo_calls == 1
        [refresh] = faults.grants("refresh_token")
        assert refresh["resource"] == [API1]
        me = (await client.get("/me")).json()
        assert me == {"sub": "alice", "email": "alice@example.com", "name": "Alice Liddell"}
        claims = await _token_for(client, h.provider)
        assert (claims["aud"], claims["scope"]) == (API1, "read:messages")
        assert len(faults.grants("refresh_token")) == 1


async def test_userinfo_then_api_token_needs_a_refresh_token(
    h: Harness, faults: ProviderFaults
) -> None:
    faults.drop_from_token = "refresh_token"
    app = h.wrap(
        _app(),
        session_store=MemoryStore(now=h.clock),
        scope=OFFLINE_SCOPE,
        audiences=[API1, API2],
        fetch_userinfo=True,
    )
    async with h.client(app) as client:
        start = await h.authorize(client)
        answer = await h.provider_login(location(start))
        response = await client.get(
            "/callback", params=answer, headers={"accept": "application/json"}
        )
    assert response.status_code == 400
    assert response.json()["error"] == "refresh_token_missing"
    assert "offline_access" in response.json()["hint"]


async def test_userinfo_skipped_without_offline_access_api_token_from_the_code(
    h: Harness, faults: ProviderFaults
) -> None:
    with pytest.warns(SignInWarning, match="userinfo is skipped"):
        app = h.wrap(
            _app(),
            session_store=MemoryStore(now=h.clock),
            scope=("openid", "email"),
            audience=API1,
            fetch_userinfo=True,
        )
    async with h.client(app) as client:
        await h.sign_in(client)
        assert faults.userinfo_calls == 0
        [redeemed] = faults.grants("authorization_code")
        assert redeemed["resource"] == [API1]
        assert (await _token_for(client, h.provider))["aud"] == API1
