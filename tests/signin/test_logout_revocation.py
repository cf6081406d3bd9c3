"""Token revocation at logout (RFC 7009): tokens die at the provider; logout never waits on it."""

from __future__ import annotations

import logging
from typing import Any

import httpx
import pytest

from ._support import APP, ISSUER, Harness, attributes, location, set_cookies

SAME_ORIGIN = {"origin": APP}
OFFLINE = ("openid", "profile", "email", "offline_access")


def _issued(harness: Harness, kind: str) -> list[str]:
    return [t for t, r in harness.provider.state.tokens.items() if r.kind == kind]


async def _refresh(harness: Harness, refresh_token: str) -> httpx.Response:
    return await harness.op_http.post(
        "/token",
        data={"grant_type": "refresh_token", "refresh_token": refresh_token},
        auth=("rp", "rp-secret"),
    )


class Counting:
    """The provider behind a wrapper that records the paths of requests reaching it."""

    def __init__(self, harness: Harness, fail: set[str] | None = None) -> None:
        self.harness = harness
        self.paths: list[str] = []
        self.fail = fail or set()

    async def handler(self, request: httpx.Request) -> httpx.Response:
        self.paths.append(request.url.path)
        if request.url.path in self.fail:
            raise httpx.ConnectError("connection refused")
        inner = httpx.ASGITransport(app=self.harness.provider)
        return await inner.handle_async_request(request)


async def test_logout_revokes_the_refresh_token_rfc7009_2_1(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="oidc_asgi")
    app = harness.wrap(scope=OFFLINE, revoke_tokens_on_logout=True, idp_logout=False)
    async with harness.client(app) as client:
        await harness.sign_in(client)
        [refresh_token] = _issued(harness, "refresh_token")
        [access_token] = _issued(harness, "access_token")
        response = await client.post("/logout", headers=SAME_ORIGIN)
        assert response.status_code == 303
        assert attributes(set_cookies(response)["oidc_session"])["max-age"] == "0"
        answer = await _refresh(harness, refresh_token)
        assert answer.status_code == 400
        assert answer.json()["error"] == "invalid_grant"
        assert harness.provider.active_token(access_token) is None
        logged = "\n".join(r.getMessage() for r in caplog.records)
        assert refresh_token not in logged
        assert access_token not in logged


async def test_without_the_switch_the_refresh_token_survives_logout(harness: Harness) -> None:
    app = harness.wrap(scope=OFFLINE, idp_logout=False)
    async with harness.client(app) as client:
        await harness.sign_in(client)
        [refresh_token] = _issued(harness, "refresh_token")
        await client.post("/logout", headers=SAME_ORIGIN)
        assert (await _refresh(harness, refresh_token)).status_code == 200


async def test_revocation_sends_refresh_then_access_token(harness: Harness) -> None:
    counting = Counting(harness)
    async with httpx.AsyncClient(
        transport=httpx.MockTransport(counting.handler), base_url=ISSUER
    ) as http:
        app = harness.wrap(
            scope=OFFLINE, revoke_tokens_on_logout=True, idp_logout=False, http_client=http
        )
        async with harness.client(app) as client:
            await harness.sign_in(client)
            counting.paths.clear()
            await client.post("/logout", headers=SAME_ORIGIN)
    # The provider may not revoke access tokens by themselves: both are asked for.
    assert counting.paths == ["/revoke", "/revoke"]


@pytest.mark.parametrize(
    "fail",
    [
        pytest.param({"/revoke"}, id="revocation-endpoint-down"),
        pytest.param({"/revoke", "/.well-known/openid-configuration", "/token", "/jwks"},
                     id="provider-down"),
    ],
)  # fmt: skip
async def test_logout_completes_when_revocation_fails(
    harness: Harness, caplog: pytest.LogCaptureFixture, fail: set[str]
) -> None:
    caplog.set_level(logging.DEBUG, logger="oidc_asgi")
    counting = Counting(harness)
    async with httpx.AsyncClient(
        transport=httpx.MockTransport(counting.handler), base_url=ISSUER
    ) as http:
        app = harness.wrap(scope=OFFLINE, revoke_tokens_on_logout=True, http_client=http)
        async with harness.client(app) as client:
            await harness.sign_in(client)
            [refresh_token] = _issued(harness, "refresh_token")
            counting.fail = fail
            counting.paths.clear()
            response = await client.post("/logout", headers=SAME_ORIGIN)
            assert response.status_code == 303
            assert attributes(set_cookies(response)["oidc_session"])["max-age"] == "0"
            assert (await client.get("/me")).json()["sub"] is None
    assert counting.paths.count("/revoke") <= 1  # one failure stops the rest
    logged = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("oidc_asgi"))
    assert "token revocation" in logged
    assert refresh_token not in logged


async def test_provider_refusal_is_logged_and_ignored(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="oidc_asgi")

    def refuse(request: httpx.Request) -> httpx.Response:
        return httpx.Response(400, json={"error": "unsupported_token_type"})

    async def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/revoke":
            return refuse(request)
        inner = httpx.ASGITransport(app=harness.provider)
        return await inner.handle_async_request(request)

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler), base_url=ISSUER) as http:
        app = harness.wrap(scope=OFFLINE, revoke_tokens_on_logout=True, http_client=http)
        async with harness.client(app) as client:
            await harness.sign_in(client)
            response = await client.post("/logout", headers=SAME_ORIGIN)
            assert response.status_code == 303
            assert location(response).startswith(f"{ISSUER}/logout?")  # RP-initiated logout
    refusals = [r.getMessage() for r in caplog.records if "revocation refused" in r.getMessage()]
    assert refusals == [
        "token revocation refused (refresh_token): unsupported_token_type",
        "token revocation refused (access_token): unsupported_token_type",
    ]


async def test_no_revocation_endpoint_is_a_logged_local_logout(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="oidc_asgi")

    async def handler(request: httpx.Request) -> httpx.Response:
        inner = httpx.ASGITransport(app=harness.provider)
        response = await inner.handle_async_request(request)
        if request.url.path != "/.well-known/openid-configuration":
            return response
        await response.aread()
        body: dict[str, Any] = response.json()
        body.pop("revocation_endpoint")
        return httpx.Response(200, json=body)

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler), base_url=ISSUER) as http:
        app = harness.wrap(scope=OFFLINE, revoke_tokens_on_logout=True, http_client=http)
        async with harness.client(app) as client:
            await harness.sign_in(client)
            [refresh_token] = _issued(harness, "refresh_token")
            response = await client.post("/logout", headers=SAME_ORIGIN)
            assert response.status_code == 303
    assert "no revocation_endpoint" in caplog.text
    assert (await _refresh(harness, refresh_token)).status_code == 200
