"""Full logins against the development provider, in-process: query and form_post, Starlette,
FastAPI and raw ASGI apps, parallel tabs, replayed callbacks, cookie attributes."""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Annotated, Any

import httpx
import pytest
from fastapi import Depends, FastAPI
from starlette.types import Receive, Scope, Send

from oidc_asgi.signin import SignedInUser, get_user, require_login, require_user

from ._support import (
    APP,
    HTTPS_APP,
    ISSUER,
    LOA2,
    Harness,
    attributes,
    location,
    query_of,
    set_cookies,
)


async def test_query_login_sends_code_pkce_state_nonce_and_signs_in(harness: Harness) -> None:
    app = harness.wrap()
    async with harness.client(app) as client:
        start = await harness.authorize(client, "/login?return_to=/me")
        params = query_of(location(start))
        assert location(start).startswith(f"{ISSUER}/authorize?")
        assert params["response_type"] == "code"
        assert params["client_id"] == "rp"
        assert params["redirect_uri"] == f"{APP}/callback"
        assert params["code_challenge_method"] == "S256"
        assert len(params["state"]) >= 43
        assert len(params["nonce"]) >= 43
        assert (
            "response_mode" not in params
        )  # query is the default for code (OAuth 2.0 Multiple Response Types 2.1)
        assert set(params["scope"].split()) == {"openid", "profile", "email"}
        response = await harness.sign_in(client, "/login?return_to=/me")
        assert response.url == httpx.URL(f"{APP}/me")
        body = response.json()
        assert body["sub"] == "alice"
        assert body["name"] == "Alice Liddell"
        assert body["is_authenticated"] is True
        assert body["scopes"] == ["authenticated"]
        assert (await client.get("/")).text == "hello alice"


async def test_pkce_verifier_matches_the_challenge_at_the_token_endpoint(harness: Harness) -> None:
    # The provider refuses a wrong verifier (invalid_grant), so a completed login proves the
    # S256 pair (RFC 7636 section 4.6); here the challenge format is checked too.
    app = harness.wrap()
    async with harness.client(app) as client:
        params = query_of(location(await harness.authorize(client)))
        challenge = params["code_challenge"]
        assert len(challenge) == 43
        assert "=" not in challenge
        assert base64.urlsafe_b64decode(challenge + "=") != hashlib.sha256(b"").digest()


async def test_form_post_login(harness: Harness) -> None:
    app = harness.wrap(response_mode="form_post")
    async with harness.client(app) as client:
        start = await harness.authorize(client)
        assert query_of(location(start))["response_mode"] == "form_post"
        response = await harness.sign_in(client, "/login?return_to=/me")
        assert response.json()["sub"] == "alice"


async def test_form_post_transaction_cookie_is_samesite_none_on_https(harness: Harness) -> None:
    app = harness.wrap(response_mode="form_post", base_url=HTTPS_APP)
    async with harness.client(app, HTTPS_APP) as client:
        start = await harness.authorize(client)
        tx = [v for k, v in set_cookies(start).items() if k.startswith("oidc_tx.")]
        attrs = attributes(tx[0])
        assert attrs["samesite"] == "None"
        assert "secure" in attrs
        assert "httponly" in attrs
        assert attrs["path"] == "/callback"


async def test_form_post_on_loopback_http_keeps_lax(harness: Harness) -> None:
    # SameSite=None needs Secure, impossible over http; loopback provider and app are one site.
    app = harness.wrap(response_mode="form_post")
    async with harness.client(app) as client:
        start = await harness.authorize(client)
        tx = [v for k, v in set_cookies(start).items() if k.startswith("oidc_tx.")]
        attrs = attributes(tx[0])
        assert attrs["samesite"] == "Lax"
        assert "secure" not in attrs


async def test_form_post_transaction_refuses_a_query_callback(harness: Harness) -> None:
    app = harness.wrap(response_mode="form_post")
    async with harness.client(app) as client:
        start = await harness.authorize(client)
        params = await harness.provider_login(location(start))
        response = await client.get(
            "/callback", params=params, headers={"accept": "application/json"}
        )
        assert response.status_code == 400
        assert response.json()["error"] == "response_mode_mismatch"


@pytest.mark.parametrize(
    ("client_id", "secret", "auth_method"),
    [
        pytest.param("rp", "rp-secret", None, id="client_secret_basic"),
        pytest.param("rp-post", "rp-post-secret", "client_secret_post", id="client_secret_post"),
        pytest.param("rp-public", None, None, id="none-public-client"),
        pytest.param("rp-es256", "rp-secret", None, id="es256-id-token"),
    ],
)
async def test_client_authentication_methods(
    harness: Harness, client_id: str, secret: str | None, auth_method: str | None
) -> None:
    app = harness.wrap(client_id=client_id, client_secret=secret, auth_method=auth_method)
    async with harness.client(app) as client:
        response = await harness.sign_in(client, "/login?return_to=/me")
        assert response.json()["sub"] == "alice"


async def test_private_key_jwt_client(harness: Harness) -> None:
    import dataclasses

    from joserfc import jwk

    from oidc_asgi.testing import DevClient, DevProvider

    key = jwk.RSAKey.generate_key(2048, parameters={"kid": "rp-key"})
    public = {"keys": [key.as_dict(private=False)]}
    config = harness.provider.config
    client = DevClient(
        client_id="rp-jwt",
        token_endpoint_auth_method="private_key_jwt",
        jwks=public,
        redirect_uris=(f"{APP}/callback",),
    )
    provider = DevProvider(
        dataclasses.replace(config, clients=(*config.clients, client)),
        now=harness.clock,
        keys=harness.provider.keys,
    )
    async with provider.asgi_client() as op_http:
        other = Harness(provider=provider, op_http=op_http, clock=harness.clock)
        app = other.wrap(
            client_id="rp-jwt", client_secret=None, private_key=dict(key.as_dict(private=True))
        )
        async with other.client(app) as http:
            response = await other.sign_in(http, "/login?return_to=/me")
            assert response.json()["sub"] == "alice"


async def test_fastapi_app_with_dependencies(harness: Harness) -> None:
    api = FastAPI()

    @api.get("/me")
    async def me(user: Annotated[SignedInUser, Depends(require_user)]) -> dict[str, Any]:
        return {"sub": user.sub, "email": user["email"]}

    @api.get("/strong")
    async def strong(
        user: Annotated[SignedInUser, Depends(require_login(acr_values=[LOA2]))],
    ) -> dict[str, Any]:
        return {"acr": user["acr"]}

    app = harness.wrap(api)
    async with harness.client(app) as client:
        anonymous = await client.get("/me", headers={"accept": "application/json"})
        assert anonymous.status_code == 401
        assert anonymous.json()["login_url"] == f"{APP}/login?return_to=%2Fme"
        navigation = await client.get("/me", headers={"sec-fetch-mode": "navigate"})
        assert navigation.status_code == 302
        assert location(navigation).startswith(f"{ISSUER}/authorize?")
        response = await harness.sign_in(client, "/login?return_to=/me")
        assert response.json() == {"sub": "alice", "email": "alice@example.com"}
        step_up = await client.get("/strong", headers={"sec-fetch-mode": "navigate"})
        assert step_up.status_code == 302
        assert query_of(location(step_up))["acr_values"] == LOA2


async def test_raw_asgi_app(harness: Harness) -> None:
    async def raw(scope: Scope, receive: Receive, send: Send) -> None:
        from starlette.requests import Request

        user = get_user(Request(scope))
        body = json.dumps({"sub": user.sub if user else None}).encode()
        await send(
            {"type": "http.response.start", "status": 200,
             "headers": [(b"content-type", b"application/json"), (b"set-cookie", b"app=1; Path=/")]}
        )  # fmt: skip
        await send({"type": "http.response.body", "body": body})

    app = harness.wrap(raw, protect=["/"], public_paths=["/open"])
    async with harness.client(app) as client:
        assert (await client.get("/x", headers={"accept": "application/json"})).status_code == 401
        assert (await client.get("/open/x")).json() == {"sub": None}
        response = await harness.sign_in(client, "/login?return_to=/x")
        assert response.json() == {"sub": "alice"}
        # The app's own Set-Cookie is kept next to ours (appended, never overwritten).
        harness.clock.advance(61)
        touched = set_cookies(await client.get("/x"))
        assert touched["app"] == "app=1; Path=/"
        assert "oidc_session" in touched


async def test_return_address_defaults_to_the_url_first_asked_for(harness: Harness) -> None:
    app = harness.wrap()
    async with harness.client(app, browser=True) as client:
        response = await harness.sign_in(client, "/private/reports?year=2024")
        assert response.url == httpx.URL(f"{APP}/private/reports?year=2024")
        assert response.text == "page /private/reports"


async def test_parallel_tabs_all_succeed(harness: Harness) -> None:
    app = harness.wrap(max_transactions=10)
    async with harness.client(app) as client:
        starts = [
            await harness.authorize(client, f"/login?return_to=/private/{i}") for i in range(10)
        ]
        answers = [await harness.provider_login(location(s)) for s in starts]
        for i in (3, 9, 0, 5, 1, 8, 2, 7, 4, 6):
            response = await client.get("/callback", params=answers[i])
            assert response.status_code == 303, response.text
            assert location(response) == f"{APP}/private/{i}"
        assert not [name for name in client.cookies if name.startswith("oidc_tx.")]


async def test_transactions_over_the_cap_evict_the_oldest(harness: Harness) -> None:
    app = harness.wrap()  # max_transactions=5
    async with harness.client(app) as client:
        starts = [
            await harness.authorize(client, f"/login?return_to=/private/{i}") for i in range(7)
        ]
        answers = [await harness.provider_login(location(s)) for s in starts]
        statuses = []
        for answer in answers:
            response = await client.get(
                "/callback", params=answer, headers={"accept": "application/json"}
            )
            statuses.append(response.status_code)
            # Not signed in yet for the first two: their transactions were evicted.
            if response.status_code == 400:
                assert response.json()["error"] == "unknown_state"
        assert statuses == [400, 400, 303, 303, 303, 303, 303]


async def test_replayed_callback_of_signed_in_user_redirects_to_return_address(
    harness: Harness,
) -> None:
    app = harness.wrap()
    async with harness.client(app) as client:
        start = await harness.authorize(client, "/login?return_to=/private/a")
        answer = await harness.provider_login(location(start))
        first = await client.get("/callback", params=answer)
        assert location(first) == f"{APP}/private/a"
        again = await client.get("/callback", params=answer)
        assert again.status_code == 303
        assert location(again) == f"{APP}/private/a"
        bare = await client.get("/callback")
        assert bare.status_code == 303
        assert location(bare) == f"{APP}/"


async def test_replayed_callback_without_session_is_an_error(harness: Harness) -> None:
    app = harness.wrap()
    async with harness.client(app) as client:
        start = await harness.authorize(client)
        answer = await harness.provider_login(location(start))
        assert (await client.get("/callback", params=answer)).status_code == 303
    async with harness.client(app) as fresh:
        replay = await fresh.get("/callback", params=answer, headers={"accept": "application/json"})
        assert replay.status_code == 400
        assert replay.json()["error"] == "unknown_state"


async def test_callback_of_another_login_is_refused(harness: Harness) -> None:
    # The state names the transaction: an attacker's response cannot use the victim's cookie.
    app = harness.wrap()
    async with harness.client(app) as victim, harness.client(app) as attacker:
        await harness.authorize(victim)
        start = await harness.authorize(attacker)
        answer = await harness.provider_login(location(start))
        response = await victim.get(
            "/callback", params=answer, headers={"accept": "application/json"}
        )
        assert response.status_code == 400
        assert response.json()["error"] == "unknown_state"
        assert (await victim.get("/me")).json()["sub"] is None


@pytest.mark.parametrize(
    ("base_url", "secure", "session_name"),
    [
        pytest.param(APP, False, "oidc_session", id="http-not-secure"),
        pytest.param(HTTPS_APP, True, "__Host-oidc_session", id="https-secure-host-prefix"),
    ],
)
async def test_cookie_attributes(
    harness: Harness, base_url: str, secure: bool, session_name: str
) -> None:
    app = harness.wrap(base_url=base_url)
    async with harness.client(app, base_url) as client:
        start = await harness.authorize(client)
        cookies = set_cookies(start)
        tx_name = next(name for name in cookies if name.startswith("oidc_tx."))
        tx = attributes(cookies[tx_name])
        assert tx["path"] == "/callback"
        assert tx["max-age"] == "600"
        assert "httponly" in tx
        assert tx["samesite"] == "Lax"
        assert ("secure" in tx) is secure
        answer = await harness.provider_login(location(start))
        done = await client.get("/callback", params=answer)
        cookies = set_cookies(done)
        session = attributes(cookies[session_name])
        assert session["path"] == "/"
        assert "domain" not in session
        assert "httponly" in session
        assert session["samesite"] == "Lax"
        assert ("secure" in session) is secure
        assert int(session["max-age"]) == 24 * 3600  # rolling window
        assert attributes(cookies[tx_name])["max-age"] == "0"  # deleted on success


async def test_unchanged_session_is_not_rewritten_until_the_rolling_window_needs_it(
    harness: Harness,
) -> None:
    app = harness.wrap()
    async with harness.client(app) as client:
        await harness.sign_in(client)
        assert "oidc_session" not in set_cookies(await client.get("/me"))
        harness.clock.advance(61)  # touch_after
        assert "oidc_session" in set_cookies(await client.get("/me"))
        assert "oidc_session" not in set_cookies(await client.get("/me"))
        assert "oidc_session" in set_cookies(await client.get("/put?k=v"))


async def test_rolling_and_absolute_expiry(harness: Harness) -> None:
    app = harness.wrap(rolling_ttl=3600, absolute_ttl=3 * 3600)
    async with harness.client(app) as client:
        await harness.sign_in(client)
        for _ in range(5):
            harness.clock.advance(3000)  # within the idle window each time
            if harness.clock.value - 1_800_000_000.0 < 3 * 3600:
                assert (await client.get("/me")).json()["sub"] == "alice"
        assert (await client.get("/me")).json()["sub"] is None  # absolute limit passed
    async with harness.client(app) as client:
        await harness.sign_in(client)
        harness.clock.advance(3601)
        assert (await client.get("/me")).json()["sub"] is None  # idle limit passed


async def test_provider_session_expiry_caps_the_session(harness: Harness) -> None:
    harness_now = harness.clock.value
    original = harness.provider.issue_id_token

    def with_ceiling(*args: Any, **kwargs: Any) -> str:
        token = original(*args, **kwargs)
        claims = harness.provider.unverified_claims(token)
        claims["session_expiry"] = int(harness_now) + 600
        return harness.provider.signing_key("RS256").sign(claims)

    harness.provider.issue_id_token = with_ceiling  # type: ignore[method-assign]
    app = harness.wrap()
    async with harness.client(app) as client:
        start = await harness.authorize(client)
        done = await client.get("/callback", params=await harness.provider_login(location(start)))
        assert attributes(set_cookies(done)["oidc_session"])["max-age"] == "600"
        assert (await client.get("/me")).json()["sub"] == "alice"
        harness.clock.advance(601)
        assert (await client.get("/me")).json()["sub"] is None
