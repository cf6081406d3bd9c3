"""Authorization endpoint: the code flow, login page, sessions and error delivery.

RFC 6749 section 4.1, OIDC Core 3.1.2, RFC 7636 (PKCE), RFC 9207 (``iss``), RFC 8252 7.3.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from oidc_asgi.testing import DevProvider

from ._support import SPA_REDIRECT, form_fields, login, pkce, query
from .conftest import Clock

ISSUER = "http://127.0.0.1:9000"


def authorize_params(**overrides: str | None) -> dict[str, str]:
    _, challenge = pkce()
    params: dict[str, str | None] = {
        "client_id": "spa",
        "redirect_uri": SPA_REDIRECT,
        "response_type": "code",
        "scope": "openid",
        "state": "st-1",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        **overrides,
    }
    return {k: v for k, v in params.items() if v is not None}


async def test_code_flow_query_returns_code_state_and_iss_rfc9207(
    http: httpx.AsyncClient,
) -> None:
    result = await login(http, challenge=pkce()[1])
    assert set(result) == {"code", "state", "iss"}
    assert result["state"] == "st-1"
    assert result["iss"] == ISSUER


async def test_form_post_returns_auto_submitting_form(http: httpx.AsyncClient) -> None:
    page = await http.get("/authorize", params=authorize_params(response_mode="form_post"))
    data = {**form_fields(page.text), "username": "alice"}
    response = await http.post("/login", data=data)
    assert response.status_code == 200
    assert f'action="{SPA_REDIRECT}"' in response.text
    assert "submit()" in response.text
    fields = form_fields(response.text)
    assert set(fields) == {"code", "state", "iss"}
    assert fields["iss"] == ISSUER


async def test_second_authorization_is_silent_with_provider_session(
    http: httpx.AsyncClient,
) -> None:
    await login(http, challenge=pkce()[1])
    response = await http.get("/authorize", params=authorize_params(prompt="none"))
    assert response.status_code == 303
    assert "code" in query(response.headers["location"])


async def test_prompt_login_forces_the_login_page(http: httpx.AsyncClient) -> None:
    await login(http, challenge=pkce()[1])
    response = await http.get("/authorize", params=authorize_params(prompt="login"))
    assert response.status_code == 200
    assert 'name="tx"' in response.text


async def test_max_age_elapsed_asks_again(http: httpx.AsyncClient, clock: Clock) -> None:
    await login(http, challenge=pkce()[1])
    clock.advance(120)
    fresh_enough = await http.get("/authorize", params=authorize_params(max_age="300"))
    assert fresh_enough.status_code == 303
    too_old = await http.get("/authorize", params=authorize_params(max_age="60"))
    assert too_old.status_code == 200
    assert 'name="tx"' in too_old.text
    silent = await http.get("/authorize", params=authorize_params(max_age="60", prompt="none"))
    assert query(silent.headers["location"])["error"] == "login_required"


async def test_login_hint_prefills_username(http: httpx.AsyncClient) -> None:
    response = await http.get("/authorize", params=authorize_params(login_hint="bob"))
    assert form_fields(response.text)["username"] == "bob"


async def test_unknown_user_is_refused_and_can_retry(http: httpx.AsyncClient) -> None:
    page = await http.get("/authorize", params=authorize_params())
    tx = form_fields(page.text)["tx"]
    refused = await http.post("/login", data={"tx": tx, "username": "mallory"})
    assert refused.status_code == 401
    accepted = await http.post("/login", data={"tx": tx, "username": "alice"})
    assert accepted.status_code == 303


async def test_login_transaction_is_single_use(http: httpx.AsyncClient) -> None:
    page = await http.get("/authorize", params=authorize_params())
    tx = form_fields(page.text)["tx"]
    assert (await http.post("/login", data={"tx": tx, "username": "alice"})).status_code == 303
    assert (await http.post("/login", data={"tx": tx, "username": "alice"})).status_code == 400


async def test_cancel_sends_access_denied(http: httpx.AsyncClient) -> None:
    page = await http.get("/authorize", params=authorize_params())
    response = await http.post(
        "/login", data={"tx": form_fields(page.text)["tx"], "action": "cancel"}
    )
    result = query(response.headers["location"])
    assert result["error"] == "access_denied"
    assert result["state"] == "st-1"
    assert result["iss"] == ISSUER


@pytest.mark.parametrize(
    ("password", "status"),
    [("wonderland", 303), ("wrong", 401), ("", 401)],
    ids=["right-password", "wrong-password", "missing-password"],
)
async def test_configured_password_is_checked(shared_keys: Any, password: str, status: int) -> None:
    from oidc_asgi.testing import DevProviderConfig, DevUser

    config = DevProviderConfig(
        clients=DevProviderConfig.default().clients,
        users=(DevUser(username="alice", password="wonderland"),),
    )
    async with DevProvider(config, keys=shared_keys.copy()).asgi_client() as http:
        page = await http.get("/authorize", params=authorize_params())
        data = {"tx": form_fields(page.text)["tx"], "username": "alice", "password": password}
        assert (await http.post("/login", data=data)).status_code == status


async def test_any_user_when_configured(shared_keys: Any) -> None:
    import dataclasses

    from oidc_asgi.testing import DevProviderConfig

    config = dataclasses.replace(DevProviderConfig.default(), allow_any_user=True)
    async with DevProvider(config, keys=shared_keys.copy()).asgi_client() as http:
        result = await login(http, username="zoe", challenge=pkce()[1])
        assert "code" in result


async def test_acr_values_are_honoured(http: httpx.AsyncClient, provider: DevProvider) -> None:
    await login(http, challenge=pkce()[1])
    session = next(iter(provider.state.sessions.values()))
    assert session.acr == "urn:oidc-asgi:loa:1"
    stronger = await http.get(
        "/authorize", params=authorize_params(acr_values="urn:oidc-asgi:loa:2")
    )
    assert stronger.status_code == 200  # step-up means signing in again


# -- errors that must not redirect (RFC 6749 section 4.1.2.1) --------------------------------

NO_REDIRECT = [
    ("unknown-client", {"client_id": "nobody"}),
    ("missing-client-id", {"client_id": None}),
    ("unregistered-redirect", {"redirect_uri": "http://127.0.0.1:8003/evil"}),
    ("redirect-other-port-web-client", {"redirect_uri": "http://127.0.0.1:8004/"}),
    ("missing-redirect", {"redirect_uri": None}),
    ("redirect-prefix-only", {"redirect_uri": "http://127.0.0.1:8003/x"}),
    (
        "native-localhost-is-not-loopback-ip",
        {"client_id": "native", "redirect_uri": "http://localhost:5000/callback"},
    ),
    (
        "native-loopback-other-path",
        {"client_id": "native", "redirect_uri": "http://127.0.0.1:5000/other"},
    ),
    ("duplicate-client-id", {"client_id": ["spa", "spa"]}),
]


@pytest.mark.parametrize("overrides", [o for _, o in NO_REDIRECT], ids=[n for n, _ in NO_REDIRECT])
async def test_untrusted_redirect_gets_an_error_page_not_a_redirect(
    http: httpx.AsyncClient, overrides: dict[str, Any]
) -> None:
    params: list[tuple[str, str | int | float | bool | None]] = []
    for key, value in {**authorize_params(), **overrides}.items():
        if value is None:
            continue
        for item in value if isinstance(value, list) else [value]:
            params.append((key, item))
    response = await http.get("/authorize", params=params)
    assert response.status_code == 400
    assert "location" not in response.headers
    assert "evil" not in response.text


@pytest.mark.parametrize("port", [1234, 54321], ids=["port-1234", "port-54321"])
async def test_native_loopback_redirect_any_port_rfc8252_7_3(
    http: httpx.AsyncClient, port: int
) -> None:
    redirect = f"http://127.0.0.1:{port}/callback"
    result = await login(http, client_id="native", redirect_uri=redirect, challenge=pkce()[1])
    assert "code" in result


# -- errors sent back to the client (RFC 6749 section 4.1.2.1) -------------------------------

REDIRECTED = [
    ("unsupported-response-type", {"response_type": "token"}, "unsupported_response_type"),
    ("missing-response-type", {"response_type": None}, "invalid_request"),
    (
        "public-client-without-pkce",
        {"code_challenge": None, "code_challenge_method": None},
        "invalid_request",
    ),
    ("pkce-plain-method", {"code_challenge_method": "plain"}, "invalid_request"),
    ("pkce-challenge-too-short", {"code_challenge": "abc"}, "invalid_request"),
    ("unknown-scope", {"scope": "openid admin"}, "invalid_scope"),
    ("unknown-resource-rfc8707", {"resource": "http://127.0.0.1:9999/api"}, "invalid_target"),
    ("prompt-none-without-session", {"prompt": "none"}, "login_required"),
    ("prompt-none-with-login", {"prompt": "none login"}, "invalid_request"),
    ("unknown-prompt", {"prompt": "dance"}, "invalid_request"),
    ("negative-max-age", {"max_age": "-1"}, "invalid_request"),
    ("request-object", {"request": "eyJ.e30."}, "request_not_supported"),
    ("unsupported-response-mode", {"response_mode": "fragment"}, "invalid_request"),
]


@pytest.mark.parametrize(
    ("overrides", "error"),
    [(o, e) for _, o, e in REDIRECTED],
    ids=[n for n, _, _ in REDIRECTED],
)
async def test_error_is_redirected_with_state_and_iss(
    http: httpx.AsyncClient, overrides: dict[str, str | None], error: str
) -> None:
    response = await http.get("/authorize", params=authorize_params(**overrides))
    assert response.status_code == 303
    location = response.headers["location"]
    assert location.startswith(SPA_REDIRECT + "?")
    result = query(location)
    assert result["error"] == error
    assert result["state"] == "st-1"
    assert result["iss"] == ISSUER
    assert "code" not in result


async def test_error_with_form_post_is_posted(http: httpx.AsyncClient) -> None:
    params = authorize_params(response_mode="form_post", prompt="none", max_age="0")
    response = await http.get("/authorize", params=params)
    assert response.status_code == 200
    fields = form_fields(response.text)
    assert fields["error"] == "login_required"
    assert fields["iss"] == ISSUER


async def test_confidential_client_without_pkce_is_allowed(http: httpx.AsyncClient) -> None:
    result = await login(http, client_id="webapp", redirect_uri="http://127.0.0.1:8000/callback")
    assert "code" in result


async def test_client_without_code_grant_is_unauthorized(shared_keys: Any) -> None:
    import dataclasses

    from oidc_asgi.testing import DevClient, DevProviderConfig

    machine = DevClient(
        client_id="m2m", client_secret="s", redirect_uris=(SPA_REDIRECT,),
        grant_types=("client_credentials",),
    )  # fmt: skip
    config = dataclasses.replace(DevProviderConfig.default(), clients=(machine,))
    async with DevProvider(config, keys=shared_keys.copy()).asgi_client() as http:
        response = await http.get("/authorize", params=authorize_params(client_id="m2m"))
        assert query(response.headers["location"])["error"] == "unauthorized_client"


async def test_authorize_accepts_post(http: httpx.AsyncClient) -> None:
    response = await http.post("/authorize", data=authorize_params())
    assert response.status_code == 200
    assert 'name="tx"' in response.text
