"""Discovery metadata, JWKS and key rotation."""

from __future__ import annotations

import httpx
import pytest

from oidc_asgi.testing import DevProvider, DevProviderConfig, KeyRing

from ._support import API1, code_flow, verify
from .conftest import Clock


async def test_discovery_metadata_is_accurate(http: httpx.AsyncClient) -> None:
    response = await http.get("/.well-known/openid-configuration")
    assert response.status_code == 200
    meta = response.json()
    base = "http://127.0.0.1:9000"
    assert meta["issuer"] == base
    for name, path in [
        ("authorization_endpoint", "/authorize"), ("token_endpoint", "/token"),
        ("userinfo_endpoint", "/userinfo"), ("jwks_uri", "/jwks"),
        ("end_session_endpoint", "/logout"), ("introspection_endpoint", "/introspect"),
        ("revocation_endpoint", "/revoke"),
        ("device_authorization_endpoint", "/device_authorization"),
    ]:  # fmt: skip
        assert meta[name] == base + path
        probe = await http.request("OPTIONS", path)
        assert probe.status_code != 404, name  # every advertised endpoint exists
    assert meta["response_types_supported"] == ["code"]
    assert meta["response_modes_supported"] == ["query", "form_post"]
    assert meta["code_challenge_methods_supported"] == ["S256"]
    assert meta["authorization_response_iss_parameter_supported"] is True
    assert meta["backchannel_logout_supported"] is True
    assert meta["backchannel_logout_session_supported"] is True
    assert set(meta["grant_types_supported"]) == {
        "authorization_code", "refresh_token", "client_credentials",
        "urn:ietf:params:oauth:grant-type:device_code",
        "urn:ietf:params:oauth:grant-type:token-exchange",
        "urn:ietf:params:oauth:grant-type:jwt-bearer",
    }  # fmt: skip
    assert set(meta["token_endpoint_auth_methods_supported"]) == {
        "client_secret_basic", "client_secret_post", "private_key_jwt", "none",
    }  # fmt: skip
    assert set(meta["id_token_signing_alg_values_supported"]) == {"RS256", "ES256", "EdDSA"}
    assert {"openid", "read:messages", "read:summary"} <= set(meta["scopes_supported"])
    rfc8414 = await http.get("/.well-known/oauth-authorization-server")
    assert rfc8414.json() == meta


async def test_jwks_has_one_key_per_algorithm(http: httpx.AsyncClient) -> None:
    response = await http.get("/jwks")
    keys = response.json()["keys"]
    assert sorted(k["alg"] for k in keys) == ["ES256", "EdDSA", "RS256"]
    assert len({k["kid"] for k in keys}) == 3
    for key in keys:
        assert key["use"] == "sig"
        assert not {"d", "p", "q", "dp", "dq", "qi"} & set(key)  # public parts only


async def test_issuer_with_path(shared_keys: KeyRing) -> None:
    config = DevProviderConfig.default(issuer="http://127.0.0.1:9000/tenant-a")
    async with DevProvider(config, keys=shared_keys.copy()).asgi_client() as http:
        # the client's base URL is the issuer, so paths are relative to it
        response = await http.get("/.well-known/openid-configuration")
        assert response.url.path == "/tenant-a/.well-known/openid-configuration"
        assert response.json()["token_endpoint"] == "http://127.0.0.1:9000/tenant-a/token"
        assert (await http.get("/jwks")).status_code == 200


async def test_key_rotation_publishes_signs_and_retires(
    http: httpx.AsyncClient, provider: DevProvider, clock: Clock
) -> None:
    before = await code_flow(http, resource=API1, scope="openid read:messages")
    old_kids = {k["kid"] for k in (await http.get("/jwks")).json()["keys"]}
    new_kids = provider.rotate_keys()
    assert len(new_kids) == 3
    assert not set(new_kids) & old_kids
    published = {k["kid"] for k in (await http.get("/jwks")).json()["keys"]}
    assert published == old_kids | set(new_kids)
    after = await code_flow(http, resource=API1, scope="openid read:messages")
    jwks = (await http.get("/jwks")).json()
    assert verify(after["access_token"], jwks)[0]["kid"] in new_kids
    assert verify(before["access_token"], jwks)[0]["kid"] in old_kids  # old tokens still verify
    clock.advance(3600)
    retired = {k["kid"] for k in (await http.get("/jwks")).json()["keys"]}
    assert retired == set(new_kids)
    assert provider.active_token(before["access_token"]) is None


@pytest.mark.parametrize("alg", ["RS256", "ES256", "EdDSA"])
async def test_minted_tokens_verify_with_joserfc_for_each_alg(
    http: httpx.AsyncClient, provider: DevProvider, alg: str
) -> None:
    token = provider.mint_access_token(audience=API1, scopes=["read:messages"], alg=alg)
    header, claims = verify(token, (await http.get("/jwks")).json())
    assert header["alg"] == alg
    assert header["typ"] == "at+jwt"
    assert claims["scope"] == "read:messages"
