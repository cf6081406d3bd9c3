"""Device authorization grant (RFC 8628): every state the client can see while polling."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from oidc_asgi.testing import DevProvider

from ._support import API1, WEBAPP_AUTH, assert_error, form_fields, verify
from .conftest import Clock

DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"


async def start(http: httpx.AsyncClient, **extra: str) -> dict[str, Any]:
    form = {"client_id": "cli", "scope": "openid offline_access read:messages", **extra}
    response = await http.post("/device_authorization", data=form)
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    body: dict[str, Any] = response.json()
    return body


async def poll(
    http: httpx.AsyncClient, device_code: str, resource: str | None = None
) -> httpx.Response:
    form = {"grant_type": DEVICE_GRANT, "device_code": device_code, "client_id": "cli"}
    if resource is not None:
        form["resource"] = resource
    return await http.post("/token", data=form)


async def approve(
    http: httpx.AsyncClient, user_code: str, action: str = "approve"
) -> httpx.Response:
    data = {"user_code": user_code, "username": "alice", "password": "", "action": action}
    return await http.post("/device", data=data)


async def test_device_authorization_response_rfc8628_3_2(http: httpx.AsyncClient) -> None:
    body = await start(http)
    assert set(body) >= {"device_code", "user_code", "verification_uri", "expires_in", "interval"}
    assert body["verification_uri"] == "http://127.0.0.1:9000/device"
    assert body["verification_uri_complete"].endswith(body["user_code"])
    assert body["interval"] == 5
    assert body["expires_in"] == 600
    page = await http.get(body["verification_uri_complete"])
    assert form_fields(page.text)["user_code"] == body["user_code"]


async def test_pending_slow_down_then_tokens_once(http: httpx.AsyncClient, clock: Clock) -> None:
    body = await start(http, resource=API1)
    assert_error(await poll(http, body["device_code"]), 400, "authorization_pending")
    clock.advance(1)
    slow = await poll(http, body["device_code"])
    assert_error(slow, 400, "slow_down", secrets_=(body["device_code"],))
    clock.advance(6)  # interval grew from 5 to 10 seconds (RFC 8628 section 3.5)
    assert_error(await poll(http, body["device_code"]), 400, "slow_down")
    clock.advance(16)  # and now to 15
    assert_error(await poll(http, body["device_code"]), 400, "authorization_pending")
    # the user types the code in lower case with spaces: it still matches (section 6.1)
    approved = await approve(http, body["user_code"].lower().replace("-", " "))
    assert approved.status_code == 200
    clock.advance(16)
    tokens = await poll(http, body["device_code"], resource=API1)
    assert tokens.status_code == 200, tokens.text
    payload = tokens.json()
    jwks = (await http.get("/jwks")).json()
    assert verify(payload["access_token"], jwks)[1]["aud"] == API1
    assert verify(payload["id_token"], jwks)[1]["sub"] == "alice"
    assert "refresh_token" in payload
    clock.advance(11)
    assert_error(await poll(http, body["device_code"]), 400, "invalid_grant")


async def test_api_is_chosen_at_the_token_endpoint_rfc8707_2_2(http: httpx.AsyncClient) -> None:
    """Like the code grant: naming no API when polling gets the opaque userinfo token."""
    body = await start(http, resource=API1)
    assert (await approve(http, body["user_code"])).status_code == 200
    tokens = await poll(http, body["device_code"])
    assert tokens.status_code == 200, tokens.text
    assert tokens.json()["access_token"].count(".") != 2  # opaque, good only at userinfo
    userinfo = await http.get(
        "/userinfo", headers={"Authorization": f"Bearer {tokens.json()['access_token']}"}
    )
    assert userinfo.status_code == 200


async def test_device_poll_for_an_api_not_granted_is_invalid_target(
    http: httpx.AsyncClient,
) -> None:
    body = await start(http)
    assert (await approve(http, body["user_code"])).status_code == 200
    assert_error(await poll(http, body["device_code"], resource=API1), 400, "invalid_target")


async def test_access_denied(http: httpx.AsyncClient) -> None:
    body = await start(http)
    assert (await approve(http, body["user_code"], action="deny")).status_code == 200
    assert_error(await poll(http, body["device_code"]), 400, "access_denied")


async def test_expired_token(http: httpx.AsyncClient, clock: Clock) -> None:
    body = await start(http)
    clock.advance(601)
    assert_error(await poll(http, body["device_code"]), 400, "expired_token")
    assert (await approve(http, body["user_code"])).status_code == 400


async def test_signed_in_user_approves_without_password(
    http: httpx.AsyncClient, provider: DevProvider
) -> None:
    first = await start(http)
    await approve(http, first["user_code"])  # signs in: provider session cookie set
    second = await start(http)
    page = await http.get("/device", params={"user_code": second["user_code"]})
    assert "Signed in as" in page.text
    response = await http.post(
        "/device", data={"user_code": second["user_code"], "action": "approve"}
    )
    assert response.status_code == 200
    assert provider.state.devices[second["device_code"]].status == "approved"


@pytest.mark.parametrize(
    ("form", "status"),
    [({"user_code": "BCDF-GHJK"}, 400), ({"username": "mallory"}, 401)],
    ids=["unknown-user-code", "unknown-user"],
)
async def test_verification_page_errors(
    http: httpx.AsyncClient, form: dict[str, str], status: int
) -> None:
    body = await start(http)
    data = {"user_code": body["user_code"], "username": "alice", "action": "approve", **form}
    assert (await http.post("/device", data=data)).status_code == status


DEVICE_ERRORS = [
    ("client-without-device-grant", {"client_id": "spa"}, "unauthorized_client", 400),
    ("unknown-scope", {"scope": "admin"}, "invalid_scope", 400),
    ("unknown-resource", {"resource": "urn:nope"}, "invalid_target", 400),
    ("unknown-client", {"client_id": "nobody"}, "invalid_client", 401),
]


@pytest.mark.parametrize(
    ("form", "error", "status"),
    [(f, e, s) for _, f, e, s in DEVICE_ERRORS],
    ids=[n for n, *_ in DEVICE_ERRORS],
)
async def test_device_authorization_errors(
    http: httpx.AsyncClient, form: dict[str, str], error: str, status: int
) -> None:
    response = await http.post("/device_authorization", data={"client_id": "cli", **form})
    assert_error(response, status, error)


async def test_device_code_of_another_client(http: httpx.AsyncClient) -> None:
    body = await start(http)
    form = {"grant_type": DEVICE_GRANT, "device_code": body["device_code"]}
    response = await http.post("/token", data=form, auth=WEBAPP_AUTH)
    assert_error(response, 400, "unauthorized_client", secrets_=(body["device_code"],))
