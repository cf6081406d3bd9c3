"""Userinfo (OIDC Core 5.3), introspection (RFC 7662) and revocation (RFC 7009)."""

from __future__ import annotations

import httpx
import pytest

from oidc_asgi.testing import DevProvider

from ._support import API1, DAEMON_AUTH, OPAQUE_API, WEBAPP_AUTH, assert_error, code_flow
from .conftest import Clock


async def test_userinfo_with_opaque_openid_token(http: httpx.AsyncClient) -> None:
    tokens = await code_flow(http, scope="openid profile email")
    headers = {"Authorization": f"Bearer {tokens['access_token']}"}
    response = await http.get("/userinfo", headers=headers)
    assert response.status_code == 200
    assert response.json() == {
        "sub": "alice", "name": "Alice Liddell", "given_name": "Alice", "family_name": "Liddell",
        "preferred_username": "alice", "email": "alice@example.com", "email_verified": True,
    }  # fmt: skip
    by_body = await http.post("/userinfo", data={"access_token": tokens["access_token"]})
    assert by_body.json()["sub"] == "alice"


async def test_userinfo_scope_limits_claims(http: httpx.AsyncClient) -> None:
    tokens = await code_flow(http, scope="openid")
    response = await http.get(
        "/userinfo", headers={"Authorization": f"Bearer {tokens['access_token']}"}
    )
    assert response.json() == {"sub": "alice"}


@pytest.mark.parametrize(
    ("kind", "status", "error"),
    [
        ("missing", 401, "invalid_request"),
        ("garbage", 401, "invalid_token"),
        ("expired", 401, "invalid_token"),
        ("api-jwt-without-openid", 403, "insufficient_scope"),
    ],
    ids=["missing-token", "unknown-token", "expired-token", "api-token-without-openid"],
)
async def test_userinfo_errors_rfc6750_3_1(
    http: httpx.AsyncClient, provider: DevProvider, clock: Clock, kind: str, status: int, error: str
) -> None:
    headers: dict[str, str] = {}
    token = ""
    if kind == "garbage":
        token = "dev_at_nope"
    elif kind == "expired":
        token = (await code_flow(http, scope="openid"))["access_token"]
        clock.advance(3601)
    elif kind == "api-jwt-without-openid":
        token = provider.mint_access_token(audience=API1, scopes=["read:messages"])
    if token:
        headers["Authorization"] = f"Bearer {token}"
    response = await http.get("/userinfo", headers=headers)
    assert_error(response, status, error, secrets_=(token,) if token else ())
    assert response.headers["www-authenticate"].startswith("Bearer")
    if token:
        assert f'error="{error}"' in response.headers["www-authenticate"]


async def test_introspection_of_opaque_token(http: httpx.AsyncClient) -> None:
    tokens = await code_flow(http, resource=OPAQUE_API, scope="openid read:reports")
    response = await http.post(
        "/introspect", data={"token": tokens["access_token"]}, auth=DAEMON_AUTH
    )
    assert response.status_code == 200
    body = response.json()
    assert body["active"] is True
    assert body["aud"] == OPAQUE_API
    assert body["scope"] == "read:reports"
    assert body["sub"] == "alice"
    assert body["client_id"] == "spa"
    assert body["username"] == "alice"
    assert body["token_type"] == "Bearer"
    assert body["exp"] > body["iat"]


async def test_introspection_of_refresh_and_jwt(
    http: httpx.AsyncClient, provider: DevProvider
) -> None:
    tokens = await code_flow(http, resource=API1, scope="openid offline_access read:messages")
    refresh = await http.post(
        "/introspect", data={"token": tokens["refresh_token"]}, auth=DAEMON_AUTH
    )
    assert refresh.json()["token_type"] == "refresh_token"
    jwt_at = await http.post(
        "/introspect", data={"token": tokens["access_token"]}, auth=DAEMON_AUTH
    )
    assert jwt_at.json()["active"] is True
    assert jwt_at.json()["aud"] == API1


@pytest.mark.parametrize(
    "kind", ["unknown", "expired", "revoked"], ids=["unknown", "expired", "revoked"]
)
async def test_introspection_inactive(http: httpx.AsyncClient, clock: Clock, kind: str) -> None:
    token = "dev_at_nope"
    if kind != "unknown":
        token = (await code_flow(http, scope="openid"))["access_token"]
    if kind == "expired":
        clock.advance(3601)
    if kind == "revoked":
        await http.post("/revoke", data={"token": token, "client_id": "spa"})
    response = await http.post("/introspect", data={"token": token}, auth=DAEMON_AUTH)
    assert response.status_code == 200
    assert response.json() == {"active": False}


@pytest.mark.parametrize(
    ("auth", "form", "status", "error"),
    [
        (("daemon", "wrong"), {"token": "x"}, 401, "invalid_client"),
        (None, {"token": "x", "client_id": "spa"}, 401, "invalid_client"),
        (DAEMON_AUTH, {}, 400, "invalid_request"),
    ],
    ids=["bad-secret", "public-client", "missing-token"],
)
async def test_introspection_errors_rfc7662_2_3(
    http: httpx.AsyncClient,
    auth: tuple[str, str] | None,
    form: dict[str, str],
    status: int,
    error: str,
) -> None:
    if auth is None:
        response = await http.post("/introspect", data=form)
    else:
        response = await http.post("/introspect", data=form, auth=auth)
    assert_error(response, status, error, secrets_=("wrong",))


async def test_revoking_refresh_token_revokes_the_grant_rfc7009_2_1(
    http: httpx.AsyncClient, provider: DevProvider
) -> None:
    tokens = await code_flow(http, client_id="webapp")
    response = await http.post(
        "/revoke", data={"token": tokens["refresh_token"], "token_type_hint": "refresh_token"},
        auth=WEBAPP_AUTH,
    )  # fmt: skip
    assert response.status_code == 200
    assert response.content == b""
    assert provider.active_token(tokens["access_token"]) is None
    refresh = await http.post(
        "/token", data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
        auth=WEBAPP_AUTH,
    )  # fmt: skip
    assert_error(refresh, 400, "invalid_grant")


async def test_revocation_of_another_clients_token_is_ignored(
    http: httpx.AsyncClient, provider: DevProvider
) -> None:
    tokens = await code_flow(http)
    response = await http.post("/revoke", data={"token": tokens["access_token"]}, auth=WEBAPP_AUTH)
    assert response.status_code == 200
    assert provider.active_token(tokens["access_token"]) is not None


async def test_revocation_unknown_token_is_200(http: httpx.AsyncClient) -> None:
    response = await http.post("/revoke", data={"token": "nope"}, auth=WEBAPP_AUTH)
    assert response.status_code == 200


@pytest.mark.parametrize(
    ("auth", "form", "status", "error"),
    [
        (("webapp", "wrong"), {"token": "x"}, 401, "invalid_client"),
        (WEBAPP_AUTH, {"token": "x", "token_type_hint": "id_token"}, 400, "unsupported_token_type"),
        (WEBAPP_AUTH, {}, 400, "invalid_request"),
    ],
    ids=["bad-secret", "unsupported-hint", "missing-token"],
)
async def test_revocation_errors_rfc7009_2_2_1(
    http: httpx.AsyncClient, auth: tuple[str, str], form: dict[str, str], status: int, error: str
) -> None:
    response = await http.post("/revoke", data=form, auth=auth)
    assert_error(response, status, error, secrets_=("wrong",))
