"""Token endpoint: every grant and client authentication method, with their error paths.

RFC 6749 sections 2.3, 4.1.3, 5.2, 6; RFC 7636 4.6; RFC 7523; RFC 8693; RFC 8707; RFC 9068.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import time
from typing import Any
from urllib.parse import quote_plus

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from joserfc import jwt
from joserfc.jwk import ECKey

from oidc_asgi.testing import DevClient, DevProvider, DevProviderConfig, KeyRing
from oidc_asgi.testing._keys import left_hash

from ._support import (
    API1,
    API2,
    DAEMON_AUTH,
    GATEWAY_AUTH,
    OPAQUE_API,
    SPA_REDIRECT,
    WEBAPP_AUTH,
    assert_error,
    code_flow,
    form_fields,
    login,
    pkce,
    query,
    verify,
)
from .conftest import Clock

ISSUER = "http://127.0.0.1:9000"
TE = "urn:ietf:params:oauth:grant-type:token-exchange"
AT_TYPE = "urn:ietf:params:oauth:token-type:access_token"


async def start_code(http: httpx.AsyncClient, **extra: str) -> tuple[str, str]:
    verifier, challenge = pkce()
    result = await login(http, challenge=challenge, extra=extra)
    return result["code"], verifier


def code_request(code: str, verifier: str, **overrides: str | None) -> dict[str, str]:
    data: dict[str, str | None] = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": SPA_REDIRECT,
        "code_verifier": verifier,
        "client_id": "spa",
        **overrides,
    }
    return {k: v for k, v in data.items() if v is not None}


async def test_code_exchange_returns_verified_id_token(
    http: httpx.AsyncClient, provider: DevProvider, clock: Clock
) -> None:
    body = await code_flow(http)
    assert body["token_type"] == "Bearer"
    assert set(body) >= {"access_token", "id_token", "refresh_token", "expires_in", "scope"}
    jwks = (await http.get("/jwks")).json()
    header, claims = verify(body["id_token"], jwks)
    assert header["alg"] == "RS256"
    assert claims["iss"] == ISSUER
    assert claims["aud"] == "spa"
    assert claims["azp"] == "spa"
    assert claims["sub"] == "alice"
    assert claims["nonce"] == "n-1"
    assert claims["auth_time"] == int(clock())
    assert claims["exp"] > claims["iat"]
    assert claims["acr"] == "urn:oidc-asgi:loa:1"
    assert claims["sid"] == next(iter(provider.state.sessions.values())).sid
    assert claims["at_hash"] == left_hash(body["access_token"], "RS256")
    assert claims["email"] == "alice@example.com"
    assert claims["name"] == "Alice Liddell"


async def test_code_with_resource_gives_rfc9068_access_token(http: httpx.AsyncClient) -> None:
    body = await code_flow(http, resource=API1, scope="openid read:messages offline_access")
    header, claims = verify(body["access_token"], (await http.get("/jwks")).json())
    assert header["typ"] == "at+jwt"
    assert claims["aud"] == API1
    assert claims["scope"] == "read:messages"
    assert body["scope"] == "read:messages"
    assert set(claims) >= {"iss", "sub", "aud", "exp", "iat", "jti", "client_id", "scope"}
    assert claims["client_id"] == "spa"
    assert claims["sub"] == "alice"


async def test_audience_parameter_auth0_style(http: httpx.AsyncClient) -> None:
    verifier, challenge = pkce()
    result = await login(
        http, challenge=challenge, scope="openid read:summary", extra={"audience": API2}
    )
    form = code_request(result["code"], verifier, audience=API2)
    response = await http.post("/token", data=form)
    _, claims = verify(response.json()["access_token"], (await http.get("/jwks")).json())
    assert claims["aud"] == API2
    assert claims["scope"] == "read:summary"


# -- which access token: decided at the token endpoint (RFC 8707 2.2, as node-oidc-provider) ----


async def authorize(http: httpx.AsyncClient, scope: str, resources: list[str]) -> tuple[str, str]:
    """Log in through /authorize naming ``resources`` (repeated, RFC 8707 section 2)."""
    verifier, challenge = pkce()
    params: dict[str, str | list[str]] = {
        "client_id": "spa", "redirect_uri": SPA_REDIRECT, "response_type": "code",
        "scope": scope, "code_challenge": challenge, "code_challenge_method": "S256",
        "resource": resources,
    }  # fmt: skip
    response = await http.get("/authorize", params=params)
    if response.status_code == 200:
        data = {**form_fields(response.text), "username": "alice", "password": ""}
        response = await http.post("/login", data=data)
    assert response.status_code == 303, response.text
    return query(response.headers["location"])["code"], verifier


async def test_resource_at_both_endpoints_gives_api_jwt_rfc8707_2_2(
    http: httpx.AsyncClient,
) -> None:
    code, verifier = await authorize(http, "openid read:messages read:summary", [API1, API2])
    response = await http.post("/token", data=code_request(code, verifier, resource=API2))
    assert response.status_code == 200, response.text
    header, claims = verify(response.json()["access_token"], (await http.get("/jwks")).json())
    assert header["typ"] == "at+jwt"
    assert claims["aud"] == API2
    assert claims["scope"] == "read:summary"


async def test_resource_at_authorization_only_gives_userinfo_token_rfc8707_2_2(
    http: httpx.AsyncClient, provider: DevProvider
) -> None:
    body = await code_flow(
        http, resource=API1, scope="openid email read:messages", resource_at_token=False
    )
    assert body["access_token"].count(".") == 0
    assert body["scope"] == "openid email"
    record = provider.active_token(body["access_token"])
    assert record is not None
    assert record.audience is None
    bearer = {"Authorization": f"Bearer {body['access_token']}"}
    userinfo = await http.get("/userinfo", headers=bearer)
    assert userinfo.status_code == 200, userinfo.text
    assert userinfo.json()["email"] == "alice@example.com"


async def test_resource_without_openid_defaults_to_the_granted_api(
    http: httpx.AsyncClient,
) -> None:
    # node-oidc-provider's resolveResource: a plain OAuth 2.0 grant keeps its one granted API.
    body = await code_flow(http, resource=API1, scope="read:messages", resource_at_token=False)
    _, claims = verify(body["access_token"], (await http.get("/jwks")).json())
    assert claims["aud"] == API1


TARGET_ERRORS: list[tuple[str, list[str], dict[str, str]]] = [
    ("named-at-token-only-rfc8707-2", [], {"resource": API1}),
    ("audience-at-token-only", [], {"audience": API2}),
    ("other-api-than-granted", [API1], {"resource": API2}),
    ("unknown-api", [API1], {"resource": "http://127.0.0.1:9999/api"}),
]


@pytest.mark.parametrize(
    ("granted", "asked"),
    [(g, a) for _, g, a in TARGET_ERRORS],
    ids=[n for n, *_ in TARGET_ERRORS],
)
async def test_resource_not_granted_is_invalid_target_rfc8707_2(
    http: httpx.AsyncClient, granted: list[str], asked: dict[str, str]
) -> None:
    code, verifier = await authorize(http, "openid read:messages read:summary", granted)
    response = await http.post("/token", data=code_request(code, verifier, **asked))
    assert_error(response, 400, "invalid_target", secrets_=(code, verifier))


async def test_two_resources_in_one_token_request_are_invalid_target_rfc8707_2(
    http: httpx.AsyncClient,
) -> None:
    code, verifier = await authorize(http, "openid read:messages read:summary", [API1, API2])
    form = code_request(code, verifier, resource=API1, audience=API2)
    response = await http.post("/token", data=form)
    assert_error(response, 400, "invalid_target", secrets_=(code, verifier))


async def test_refresh_with_granted_resource_gives_api_jwt_rfc8707_2_2(
    http: httpx.AsyncClient,
) -> None:
    first = await code_flow(
        http, resource=API1, scope="openid offline_access read:messages", resource_at_token=False
    )
    assert first["access_token"].count(".") == 0
    form = {"grant_type": "refresh_token", "refresh_token": first["refresh_token"]}
    response = await http.post("/token", data={**form, "client_id": "spa", "resource": API1})
    assert response.status_code == 200, response.text
    second = response.json()
    header, claims = verify(second["access_token"], (await http.get("/jwks")).json())
    assert (header["typ"], claims["aud"], claims["scope"]) == ("at+jwt", API1, "read:messages")
    form["refresh_token"] = second["refresh_token"]
    plain = await http.post("/token", data={**form, "client_id": "spa"})
    assert plain.status_code == 200, plain.text
    assert plain.json()["access_token"].count(".") == 0


async def test_opaque_api_gets_opaque_token(http: httpx.AsyncClient) -> None:
    body = await code_flow(http, resource=OPAQUE_API, scope="openid read:reports")
    assert body["access_token"].count(".") == 0
    assert body["scope"] == "read:reports"


async def test_no_refresh_token_without_offline_access(http: httpx.AsyncClient) -> None:
    body = await code_flow(http, scope="openid")
    assert "refresh_token" not in body


async def test_confidential_client_basic_auth(http: httpx.AsyncClient) -> None:
    body = await code_flow(http, client_id="webapp")
    assert verify(body["id_token"], (await http.get("/jwks")).json())[1]["aud"] == "webapp"


async def test_reused_code_is_refused_and_revokes_its_tokens_rfc6749_4_1_2(
    http: httpx.AsyncClient, provider: DevProvider
) -> None:
    code, verifier = await start_code(http, resource=API1)
    first = await http.post("/token", data=code_request(code, verifier))
    assert first.status_code == 200
    tokens = first.json()
    second = await http.post("/token", data=code_request(code, verifier))
    assert_error(second, 400, "invalid_grant", secrets_=(code, verifier))
    assert provider.active_token(tokens["access_token"]) is None
    refreshed = await http.post(
        "/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": tokens["refresh_token"],
            "client_id": "spa",
        },
    )
    assert_error(refreshed, 400, "invalid_grant")


CODE_ERRORS = [
    ("wrong-verifier-rfc7636-4-6", {"code_verifier": "w" * 50}, "invalid_grant", 400),
    ("missing-verifier", {"code_verifier": None}, "invalid_grant", 400),
    ("other-redirect-uri", {"redirect_uri": "http://127.0.0.1:8003/other"}, "invalid_grant", 400),
    ("missing-redirect-uri", {"redirect_uri": None}, "invalid_grant", 400),
    ("unknown-code", {"code": "dev_code_nope"}, "invalid_grant", 400),
    ("missing-code", {"code": None}, "invalid_request", 400),
    ("other-client", {"client_id": "native"}, "invalid_grant", 400),
    ("unknown-client", {"client_id": "nobody"}, "invalid_client", 401),
    ("unsupported-grant", {"grant_type": "password"}, "unsupported_grant_type", 400),
    ("missing-grant-type", {"grant_type": None}, "invalid_request", 400),
    ("resource-not-granted", {"resource": API2}, "invalid_target", 400),
]


@pytest.mark.parametrize(
    ("overrides", "error", "status"),
    [(o, e, s) for _, o, e, s in CODE_ERRORS],
    ids=[n for n, *_ in CODE_ERRORS],
)
async def test_code_exchange_errors(
    http: httpx.AsyncClient, overrides: dict[str, str | None], error: str, status: int
) -> None:
    code, verifier = await start_code(http, resource=API1)
    data = {**code_request(code, verifier), **overrides}
    response = await http.post("/token", data={k: v for k, v in data.items() if v is not None})
    assert_error(response, status, error, secrets_=(code, verifier))


async def test_expired_code(http: httpx.AsyncClient, clock: Clock) -> None:
    code, verifier = await start_code(http)
    clock.advance(61)
    response = await http.post("/token", data=code_request(code, verifier))
    assert_error(response, 400, "invalid_grant", secrets_=(code,))


async def test_token_endpoint_needs_form_body(http: httpx.AsyncClient) -> None:
    response = await http.post("/token", json={"grant_type": "client_credentials"})
    assert_error(response, 400, "invalid_request")


# -- client authentication (RFC 6749 section 2.3) --------------------------------------------


def cc_form(**extra: str) -> dict[str, str]:
    return {"grant_type": "client_credentials", "resource": API1, **extra}


def basic(client_id: str, secret: str) -> dict[str, str]:
    raw = f"{quote_plus(client_id)}:{quote_plus(secret)}".encode()
    return {"Authorization": "Basic " + base64.b64encode(raw).decode()}


async def test_client_credentials(http: httpx.AsyncClient) -> None:
    response = await http.post("/token", data=cc_form(), headers=basic("daemon", "daemon-secret"))
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert "refresh_token" not in body
    assert "id_token" not in body
    _, claims = verify(body["access_token"], (await http.get("/jwks")).json())
    assert claims["sub"] == "daemon"
    assert claims["client_id"] == "daemon"
    assert claims["scope"] == "read:messages write:messages"


async def test_client_credentials_scope_picks_the_api(http: httpx.AsyncClient) -> None:
    form = {"grant_type": "client_credentials", "scope": "read:summary"}
    response = await http.post("/token", data=form, headers=basic("daemon", "daemon-secret"))
    _, claims = verify(response.json()["access_token"], (await http.get("/jwks")).json())
    assert claims["aud"] == API2


async def test_basic_credentials_are_form_urlencoded_rfc6749_2_3_1(
    config: DevProviderConfig, shared_keys: KeyRing
) -> None:
    secret = "p@ss:w/rd +%"
    client = DevClient(
        client_id="we:ird id", client_secret=secret, grant_types=("client_credentials",)
    )
    config = dataclasses.replace(config, clients=(*config.clients, client))
    async with DevProvider(config, keys=shared_keys.copy()).asgi_client() as http:
        ok = await http.post("/token", data=cc_form(), headers=basic("we:ird id", secret))
        assert ok.status_code == 200
        raw = base64.b64encode(f"we:ird id:{secret}".encode()).decode()
        unencoded = await http.post(
            "/token", data=cc_form(), headers={"Authorization": f"Basic {raw}"}
        )
        assert_error(unencoded, 401, "invalid_client", secrets_=(secret,))


AUTH_ERRORS: list[tuple[str, dict[str, str], dict[str, str], str, int]] = [
    ("bad-secret-basic", basic("daemon", "wrong"), {}, "invalid_client", 401),
    ("unknown-client-basic", basic("nobody", "x"), {}, "invalid_client", 401),
    ("basic-garbage", {"Authorization": "Basic !!!"}, {}, "invalid_client", 401),
    (
        "basic-no-colon",
        {"Authorization": "Basic " + base64.b64encode(b"daemon").decode()},
        {},
        "invalid_client",
        401,
    ),
    (
        "bad-secret-post",
        {},
        {"client_id": "daemon", "client_secret": "wrong"},
        "invalid_client",
        401,
    ),
    (
        "post-for-basic-client",
        {},
        {"client_id": "daemon", "client_secret": "daemon-secret"},
        "invalid_client",
        401,
    ),
    ("no-authentication", {}, {}, "invalid_client", 401),
    ("confidential-as-public", {}, {"client_id": "daemon"}, "invalid_client", 401),
    (
        "two-methods",
        basic("daemon", "daemon-secret"),
        {"client_secret": "daemon-secret"},
        "invalid_request",
        400,
    ),
    ("grant-not-allowed", basic("webapp", "webapp-secret"), {}, "unauthorized_client", 400),
]


@pytest.mark.parametrize(
    ("headers", "extra", "error", "status"),
    [(h, x, e, s) for _, h, x, e, s in AUTH_ERRORS],
    ids=[n for n, *_ in AUTH_ERRORS],
)
async def test_client_authentication_errors(
    http: httpx.AsyncClient, headers: dict[str, str], extra: dict[str, str], error: str, status: int
) -> None:
    response = await http.post("/token", data=cc_form(**extra), headers=headers)
    assert_error(response, status, error, secrets_=("wrong",))
    if headers and status == 401:
        assert response.headers["www-authenticate"].startswith("Basic")


async def test_client_secret_post(config: DevProviderConfig, shared_keys: KeyRing) -> None:
    client = DevClient(
        client_id="poster", client_secret="post-secret",
        token_endpoint_auth_method="client_secret_post", grant_types=("client_credentials",),
    )  # fmt: skip
    config = dataclasses.replace(config, clients=(*config.clients, client))
    async with DevProvider(config, keys=shared_keys.copy()).asgi_client() as http:
        form = cc_form(client_id="poster", client_secret="post-secret")
        assert (await http.post("/token", data=form)).status_code == 200
        bad = await http.post("/token", data=cc_form(), headers=basic("poster", "post-secret"))
        assert_error(bad, 401, "invalid_client", secrets_=("post-secret",))


# -- private_key_jwt (RFC 7523 section 3) ------------------------------------------------------


@pytest.fixture(scope="module")
def client_key() -> ECKey:
    key: ECKey = ECKey.generate_key("P-256", parameters={"kid": "client-1"})
    return key


@pytest.fixture
def pkjwt_provider(
    config: DevProviderConfig, shared_keys: KeyRing, clock: Clock, client_key: ECKey
) -> DevProvider:
    client = DevClient(
        client_id="signer",
        token_endpoint_auth_method="private_key_jwt",
        jwks={"keys": [client_key.as_dict(private=False)]},
        grant_types=("client_credentials",),
    )
    config = dataclasses.replace(config, clients=(*config.clients, client))
    return DevProvider(config, keys=shared_keys.copy(), now=clock)


def assertion(key: ECKey, now: float, **overrides: Any) -> str:
    claims = {
        "iss": "signer", "sub": "signer", "aud": f"{ISSUER}/token",
        "exp": int(now) + 60, "iat": int(now), "jti": f"jti-{time.monotonic_ns()}",
    }  # fmt: skip
    claims.update(overrides)
    return jwt.encode({"alg": "ES256", "kid": key.kid}, claims, key)


def pkjwt_form(token: str) -> dict[str, str]:
    return cc_form(
        client_assertion_type="urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        client_assertion=token,
    )


async def test_private_key_jwt(
    pkjwt_provider: DevProvider, client_key: ECKey, clock: Clock
) -> None:
    async with pkjwt_provider.asgi_client() as http:
        token = assertion(client_key, clock())
        assert (await http.post("/token", data=pkjwt_form(token))).status_code == 200
        replay = await http.post("/token", data=pkjwt_form(token))
        assert_error(replay, 401, "invalid_client", secrets_=(token,))


PKJWT_ERRORS: list[tuple[str, dict[str, Any]]] = [
    ("wrong-aud", {"aud": "http://127.0.0.1:9999/token"}),
    ("expired", {"exp": 1_700_000_000}),
    ("missing-exp", {"exp": None}),
    ("missing-jti", {"jti": None}),
    ("iss-differs-from-sub", {"iss": "someone"}),
    ("unknown-client", {"iss": "nobody", "sub": "nobody"}),
]


@pytest.mark.parametrize(
    "overrides", [o for _, o in PKJWT_ERRORS], ids=[n for n, _ in PKJWT_ERRORS]
)
async def test_private_key_jwt_errors(
    pkjwt_provider: DevProvider, client_key: ECKey, clock: Clock, overrides: dict[str, Any]
) -> None:
    claims = {k: v for k, v in overrides.items() if v is not None}
    token = assertion(client_key, clock(), **claims)
    if None in overrides.values():
        from oidc_asgi.testing._keys import split_jws

        header, body, _, _ = split_jws(token)
        for name in [k for k, v in overrides.items() if v is None]:
            body.pop(name)
        token = jwt.encode(header, body, client_key)
    async with pkjwt_provider.asgi_client() as http:
        response = await http.post("/token", data=pkjwt_form(token))
        assert_error(response, 401, "invalid_client", secrets_=(token,))


async def test_private_key_jwt_signed_by_another_key(
    pkjwt_provider: DevProvider, clock: Clock
) -> None:
    stranger = ECKey.generate_key("P-256", parameters={"kid": "client-1"})
    async with pkjwt_provider.asgi_client() as http:
        response = await http.post("/token", data=pkjwt_form(assertion(stranger, clock())))
        assert_error(response, 401, "invalid_client")


# -- refresh tokens (RFC 6749 section 6, Security BCP 4.14) ------------------------------------


def refresh_form(token: str, **extra: str) -> dict[str, str]:
    return {"grant_type": "refresh_token", "refresh_token": token, "client_id": "spa", **extra}


async def test_refresh_rotates(http: httpx.AsyncClient) -> None:
    first = await code_flow(http, resource=API1, scope="openid offline_access read:messages")
    response = await http.post("/token", data=refresh_form(first["refresh_token"]))
    assert response.status_code == 200
    second = response.json()
    assert second["refresh_token"] != first["refresh_token"]
    assert "nonce" not in verify(second["id_token"], (await http.get("/jwks")).json())[1]
    again = await http.post("/token", data=refresh_form(second["refresh_token"]))
    assert again.status_code == 200


async def test_replayed_refresh_token_revokes_the_family(
    http: httpx.AsyncClient, provider: DevProvider
) -> None:
    first = await code_flow(http)
    second = (await http.post("/token", data=refresh_form(first["refresh_token"]))).json()
    replay = await http.post("/token", data=refresh_form(first["refresh_token"]))
    assert_error(replay, 400, "invalid_grant", secrets_=(first["refresh_token"],))
    # the family is gone: the rotated token and its access token too
    assert_error(
        await http.post("/token", data=refresh_form(second["refresh_token"])), 400, "invalid_grant"
    )
    assert provider.active_token(second["access_token"]) is None


REFRESH_ERRORS = [
    ("unknown-token", {"refresh_token": "dev_rt_nope"}, "invalid_grant"),
    ("wider-scope", {"scope": "openid offline_access email admin"}, "invalid_scope"),
    ("other-client", {"client_id": "native"}, "invalid_grant"),
    ("resource-not-granted-rfc8707-2", {"resource": API1}, "invalid_target"),
]


@pytest.mark.parametrize(
    ("overrides", "error"),
    [(o, e) for _, o, e in REFRESH_ERRORS],
    ids=[n for n, *_ in REFRESH_ERRORS],
)
async def test_refresh_errors(
    http: httpx.AsyncClient, overrides: dict[str, str], error: str
) -> None:
    tokens = await code_flow(http, scope="openid offline_access")
    response = await http.post(
        "/token", data={**refresh_form(tokens["refresh_token"]), **overrides}
    )
    assert_error(response, 400, error, secrets_=(tokens["refresh_token"],))


async def test_refresh_narrower_scope(http: httpx.AsyncClient) -> None:
    tokens = await code_flow(http, scope="openid offline_access email")
    response = await http.post("/token", data=refresh_form(tokens["refresh_token"], scope="openid"))
    assert response.status_code == 200
    assert response.json()["scope"] == "openid"


async def test_expired_refresh_token(http: httpx.AsyncClient, clock: Clock) -> None:
    tokens = await code_flow(http)
    clock.advance(86401)
    response = await http.post("/token", data=refresh_form(tokens["refresh_token"]))
    assert_error(response, 400, "invalid_grant")


# -- token exchange (RFC 8693) and Entra on-behalf-of ------------------------------------------
# The gateway client owns API2 (DevAPI.owner_client_id): only tokens for API2 are its to exchange.

BROKER_AUTH = ("broker", "broker-secret")
MESSAGES_AUTH = ("messages", "messages-secret")
EXCHANGE_GRANTS = (TE, "urn:ietf:params:oauth:grant-type:jwt-bearer")


def te_form(subject: str, **extra: str) -> dict[str, str]:
    return {
        "grant_type": TE, "subject_token": subject, "subject_token_type": AT_TYPE,
        "audience": API1, **extra,
    }  # fmt: skip


def obo_form(assertion: str, scope: str, **extra: str) -> dict[str, str]:
    return {
        "grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer",
        "requested_token_use": "on_behalf_of", "assertion": assertion, "scope": scope, **extra,
    }  # fmt: skip


def exchange_form(dialect: str, subject: str) -> dict[str, str]:
    """Ask for a ``read:messages`` token for API1 in either dialect."""
    if dialect == "rfc8693":
        return te_form(subject, scope="read:messages")
    return obo_form(subject, f"{API1}/read:messages")


# (dialect, error, what the description says): the reason, never the token.
DIALECTS = [
    pytest.param("rfc8693", "invalid_request", "not issued for this client", id="rfc8693-2.2.2"),
    pytest.param("entra-obo", "invalid_grant", "AADSTS500131", id="entra-obo-aadsts500131"),
]


@pytest.fixture
def owners_provider(config: DevProviderConfig, clock: Clock, shared_keys: KeyRing) -> DevProvider:
    """The default set plus ``messages`` (owns API1, a second hop) and ``broker`` (owns nothing)."""
    extra = (
        DevClient(client_id="messages", client_secret="messages-secret", grant_types=(TE,)),
        DevClient(client_id="broker", client_secret="broker-secret", grant_types=EXCHANGE_GRANTS),
    )
    apis = tuple(
        dataclasses.replace(a, owner_client_id="messages") if a.identifier == API1 else a
        for a in config.apis
    )
    config = dataclasses.replace(config, clients=(*config.clients, *extra), apis=apis)
    return DevProvider(config, now=clock, keys=shared_keys.copy())


async def test_token_exchange_rfc8693(http: httpx.AsyncClient, provider: DevProvider) -> None:
    subject = provider.mint_access_token(sub="alice", audience=API2, scopes=["read:summary"])
    response = await http.post(
        "/token", data=te_form(subject, scope="read:messages"), auth=GATEWAY_AUTH
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["issued_token_type"] == AT_TYPE
    assert body["token_type"] == "Bearer"
    assert body["scope"] == "read:messages"
    _, claims = verify(body["access_token"], (await http.get("/jwks")).json())
    assert claims["sub"] == "alice"
    assert claims["aud"] == API1
    assert claims["act"] == {"sub": "gateway"}
    assert claims["client_id"] == "gateway"


async def test_token_exchange_second_hop_nests_act_rfc8693_4_1(
    owners_provider: DevProvider,
) -> None:
    """gateway (API2) -> messages (API1) -> reports: each hop exchanges a token meant for it."""
    subject = owners_provider.mint_access_token(sub="alice", audience=API2)
    async with owners_provider.asgi_client() as http:
        first = await http.post("/token", data=te_form(subject), auth=GATEWAY_AUTH)
        assert first.status_code == 200, first.text
        hop = te_form(first.json()["access_token"], audience=OPAQUE_API)
        second = await http.post("/token", data=hop, auth=MESSAGES_AUTH)
        assert second.status_code == 200, second.text
        # the gateway may not exchange what it obtained for someone else's API
        again = await http.post("/token", data=hop, auth=GATEWAY_AUTH)
        assert_error(again, 400, "invalid_request", secrets_=(first.json()["access_token"],))
        introspected = await http.post(
            "/introspect", data={"token": second.json()["access_token"]}, auth=WEBAPP_AUTH
        )
    assert introspected.json()["act"] == {"sub": "messages", "act": {"sub": "gateway"}}
    assert introspected.json()["sub"] == "alice"


async def test_token_exchange_with_resource_parameter(
    http: httpx.AsyncClient, provider: DevProvider
) -> None:
    subject = provider.mint_access_token(audience=API2)
    form = {**te_form(subject), "resource": OPAQUE_API}
    del form["audience"]
    response = await http.post("/token", data=form, auth=GATEWAY_AUTH)
    assert response.status_code == 200
    assert response.json()["scope"] == "read:reports"


TE_ERRORS = [
    ("foreign-subject-token", "foreign", {}, "invalid_request"),
    ("expired-subject-token", "expired", {}, "invalid_request"),
    ("revoked-subject-token", "revoked", {}, "invalid_request"),
    ("garbage-subject-token", "garbage", {}, "invalid_request"),
    ("unknown-audience", "valid", {"audience": "http://127.0.0.1:9999/api"}, "invalid_target"),
    ("scope-of-other-api", "valid", {"scope": "read:summary"}, "invalid_scope"),
    ("bad-subject-token-type", "valid", {"subject_token_type": "urn:x"}, "invalid_request"),
    (
        "jwt-for-opaque-api",
        "valid",
        {"audience": OPAQUE_API, "requested_token_type": "urn:ietf:params:oauth:token-type:jwt"},
        "invalid_target",
    ),
]


@pytest.mark.parametrize(
    ("kind", "extra", "error"),
    [(k, x, e) for _, k, x, e in TE_ERRORS],
    ids=[n for n, *_ in TE_ERRORS],
)
async def test_token_exchange_errors(
    http: httpx.AsyncClient,
    provider: DevProvider,
    clock: Clock,
    kind: str,
    extra: dict[str, str],
    error: str,
) -> None:
    if kind == "foreign":
        other = DevProvider(provider.config)  # same issuer, different keys
        subject = other.mint_access_token(audience=API2)
    elif kind == "expired":
        subject = provider.mint_access_token(audience=API2, lifetime=10)
        clock.advance(11)
    elif kind == "garbage":
        subject = "not-a-token"
    else:
        subject = provider.mint_access_token(audience=API2)
        if kind == "revoked":
            for record in provider.state.tokens.values():
                record.revoked = True
    response = await http.post("/token", data={**te_form(subject), **extra}, auth=GATEWAY_AUTH)
    assert_error(response, 400, error, secrets_=(subject,))


async def test_token_exchange_not_allowed_for_webapp(
    http: httpx.AsyncClient, provider: DevProvider
) -> None:
    subject = provider.mint_access_token(audience=API2)
    response = await http.post("/token", data=te_form(subject), auth=WEBAPP_AUTH)
    assert_error(response, 400, "unauthorized_client", secrets_=(subject,))


# Subject tokens whose audience is not the gateway: the gateway may not exchange them.
NOT_FOR_GATEWAY: list[Any] = [
    pytest.param({"aud": API1}, id="aud-another-api"),
    pytest.param({"aud": OPAQUE_API}, id="aud-unowned-opaque-api"),
    pytest.param({"aud": [API1, OPAQUE_API]}, id="aud-list-without-own-api"),
    pytest.param({"aud": f"{ISSUER}/userinfo"}, id="aud-userinfo"),
    pytest.param({"aud": "webapp"}, id="aud-another-client-id"),
    pytest.param({"aud": None}, id="aud-absent"),
]


@pytest.mark.parametrize(("dialect", "error", "reason"), DIALECTS)
@pytest.mark.parametrize("claims", NOT_FOR_GATEWAY)
async def test_subject_token_for_another_audience_is_refused(
    http: httpx.AsyncClient,
    provider: DevProvider,
    claims: dict[str, Any],
    dialect: str,
    error: str,
    reason: str,
) -> None:
    """RFC 8693 2.2.2 ``invalid_request``; Entra OBO ``invalid_grant`` (AADSTS500131)."""
    subject = provider.mint_access_token(sub="bob", scopes=["read:summary"], claims=claims)
    response = await http.post("/token", data=exchange_form(dialect, subject), auth=GATEWAY_AUTH)
    assert_error(response, 400, error, secrets_=(subject,))
    assert reason in response.json()["error_description"]


async def test_issued_token_for_another_api_is_refused(
    http: httpx.AsyncClient, provider: DevProvider
) -> None:
    """A token the provider really issued (client credentials for API1), not only a minted one."""
    issued = await http.post("/token", data=cc_form(), auth=DAEMON_AUTH)  # aud API1
    subject = issued.json()["access_token"]
    for dialect, error in (("rfc8693", "invalid_request"), ("entra-obo", "invalid_grant")):
        response = await http.post(
            "/token", data=exchange_form(dialect, subject), auth=GATEWAY_AUTH
        )
        assert_error(response, 400, error, secrets_=(subject,))


FOR_GATEWAY: list[Any] = [
    pytest.param({}, id="aud-own-api"),
    pytest.param({"aud": [API1, API2]}, id="aud-list-with-own-api"),
    pytest.param({"aud": "gateway"}, id="aud-own-client-id"),
]


@pytest.mark.parametrize("dialect", ["rfc8693", "entra-obo"])
@pytest.mark.parametrize("claims", FOR_GATEWAY)
async def test_subject_token_for_the_gateway_is_accepted(
    http: httpx.AsyncClient, provider: DevProvider, claims: dict[str, Any], dialect: str
) -> None:
    subject = provider.mint_access_token(sub="bob", audience=API2, claims=claims)
    response = await http.post("/token", data=exchange_form(dialect, subject), auth=GATEWAY_AUTH)
    assert response.status_code == 200, response.text
    _, issued = verify(response.json()["access_token"], (await http.get("/jwks")).json())
    assert (issued["sub"], issued["aud"], issued["client_id"]) == ("bob", API1, "gateway")


@pytest.mark.parametrize(("dialect", "error", "reason"), DIALECTS)
@pytest.mark.parametrize("audience", [API1, API2, OPAQUE_API], ids=["api1", "api2", "opaque"])
async def test_client_that_owns_no_api_exchanges_nothing(
    owners_provider: DevProvider, audience: str, dialect: str, error: str, reason: str
) -> None:
    """``broker`` may use both grants but is no API: no token is meant for it."""
    subject = owners_provider.mint_access_token(audience=audience)
    async with owners_provider.asgi_client() as http:
        response = await http.post("/token", data=exchange_form(dialect, subject), auth=BROKER_AUTH)
    assert_error(response, 400, error, secrets_=(subject, BROKER_AUTH[1]))
    assert reason in response.json()["error_description"]


@pytest.mark.parametrize(
    ("scope", "expected"),
    [(f"{API1}/.default", "read:messages write:messages"),
     (f"{API1}/read:messages offline_access", "read:messages")],
    ids=["dot-default", "qualified-scope"],
)  # fmt: skip
async def test_on_behalf_of_entra(
    http: httpx.AsyncClient, provider: DevProvider, scope: str, expected: str
) -> None:
    incoming = provider.mint_access_token(sub="bob", audience=API2, client_id="spa")
    response = await http.post("/token", data=obo_form(incoming, scope), auth=GATEWAY_AUTH)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["scope"] == expected
    assert body["ext_expires_in"] == body["expires_in"]
    _, claims = verify(body["access_token"], (await http.get("/jwks")).json())
    assert claims["sub"] == "bob"
    assert claims["aud"] == API1
    assert claims["client_id"] == "gateway"
    assert "act" not in claims  # Entra's OBO tokens carry no act claim


OBO_ERRORS = [
    ("wrong-token-use", {"requested_token_use": "other"}, "invalid_request"),
    ("foreign-assertion", {"assertion": "foreign"}, "invalid_grant"),
    ("unknown-api-scope", {"scope": "http://127.0.0.1:9999/api/.default"}, "invalid_target"),
    ("missing-scope", {"scope": ""}, "invalid_request"),
]


@pytest.mark.parametrize(
    ("overrides", "error"), [(o, e) for _, o, e in OBO_ERRORS], ids=[n for n, *_ in OBO_ERRORS]
)
async def test_on_behalf_of_errors(
    http: httpx.AsyncClient, provider: DevProvider, overrides: dict[str, str], error: str
) -> None:
    incoming = provider.mint_access_token(audience=API2)
    form = obo_form(incoming, f"{API1}/.default")
    form.update(overrides)
    if form["assertion"] == "foreign":
        form["assertion"] = DevProvider(provider.config).mint_access_token(audience=API2)
    response = await http.post("/token", data=form, auth=GATEWAY_AUTH)
    assert_error(response, 400, error, secrets_=(incoming, form["assertion"]))


async def test_id_token_alg_follows_client_registration(
    config: DevProviderConfig, shared_keys: KeyRing
) -> None:
    spa = config.client("spa")
    assert spa is not None
    es = dataclasses.replace(spa, id_token_signed_response_alg="EdDSA")
    config = dataclasses.replace(config, clients=(es, *(c for c in config.clients if c is not spa)))
    async with DevProvider(config, keys=shared_keys.copy()).asgi_client() as http:
        body = await code_flow(http)
        header, claims = verify(body["id_token"], (await http.get("/jwks")).json())
        assert header["alg"] == "EdDSA"
        assert claims["at_hash"] == left_hash(body["access_token"], "EdDSA")


@settings(max_examples=25, deadline=None)
@given(
    client_id=st.text(
        st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), min_size=1, max_size=12
    ),
    secret=st.text(
        st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), min_size=1, max_size=24
    ),
)
def test_any_basic_credentials_round_trip_rfc6749_2_3_1(
    shared_keys: KeyRing, client_id: str, secret: str
) -> None:
    client = DevClient(
        client_id=client_id, client_secret=secret, grant_types=("client_credentials",)
    )
    config = DevProviderConfig(clients=(client,), apis=DevProviderConfig.default().apis)

    async def run() -> tuple[int, int]:
        async with DevProvider(config, keys=shared_keys).asgi_client() as http:
            ok = await http.post("/token", data=cc_form(), headers=basic(client_id, secret))
            bad = await http.post("/token", data=cc_form(), headers=basic(client_id, secret + "x"))
            return ok.status_code, bad.status_code

    assert asyncio.run(run()) == (200, 401)
