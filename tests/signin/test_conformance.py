"""The OpenID Foundation relying-party conformance behaviours, as one table.

Each row is named exactly after its conformance-suite module (``oidcc-client-test-*``, see
``research/oidf-rp-tests.md``) and runs in both response modes the middleware offers: ``query``
(Basic and Config RP plans) and ``form_post`` (the Form Post RP plan re-runs the Basic list). The
development provider answers and plays the conformance suite's part for the ID token: its
token endpoint returns the row's ``BadIDTokens`` case at the code redemption
(``serve_bad_id_token``: this login's genuine token changed in one way). A thin wrapper in front
of it records the requests and changes the rest (the discovery document, the userinfo answer).
A row that expects refusal asserts the status, the stable error code and reason, that the
transaction cookie was removed, that no session was written, and that no code, state or cookie
value shows in the answer or the log.

RP-Initiated Logout rows (``oidcc-client-test-rp-init-logout*``) are in ``test_logout.py``;
Back-Channel Logout rows in ``test_backchannel.py``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import aclosing
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from starlette.types import Message, Receive, Scope, Send

from oidc_asgi.testing import DevProvider, serve_bad_id_token

from ._support import ISSUER, Harness, attributes, location, set_cookies

Body = dict[str, Any]
Rewrite = Callable[[DevProvider, Body], Body]
MODES = ("query", "form_post")


class Suite:
    """The development provider behind a wrapper that plays the conformance suite's changes."""

    def __init__(self, provider: DevProvider) -> None:
        self.provider = provider
        self.rewrite: dict[str, Rewrite] = {}
        self.alias: dict[str, str] = {}  # served path -> provider path
        self.seen: list[tuple[str, dict[str, str]]] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.provider(scope, receive, send)
            return
        path = scope["path"]
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        self.seen.append((path, headers))
        if path in self.alias:
            scope = {**scope, "path": self.alias[path], "raw_path": self.alias[path].encode()}
        rewrite = self.rewrite.get(path)
        if rewrite is None:
            await self.provider(scope, receive, send)
            return
        start: Message = {}
        chunks: list[bytes] = []

        async def capture(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                start = message
            else:
                chunks.append(message.get("body", b""))

        await self.provider(scope, receive, capture)
        body = json.dumps(rewrite(self.provider, json.loads(b"".join(chunks)))).encode()
        kept = [(k, v) for k, v in start["headers"] if k.lower() != b"content-length"]
        await send({**start, "headers": [*kept, (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})


# --------------------------------------------------------------------------- the suite's changes


def userinfo_sub(provider: DevProvider, body: Body) -> Body:
    return {**body, "sub": "mallory"}


# --------------------------------------------------------------------------- the table


@dataclass(frozen=True)
class Row:
    """One conformance module: what the suite changes, and what the RP must do."""

    token: str | None = None  # a BadIDTokens case served by the provider's token endpoint
    userinfo: Rewrite | None = None
    settings: dict[str, Any] = field(default_factory=dict)
    # Refusal: (error code, reason); None: the sign-in must succeed.
    refuse: tuple[str, str | None] | None = None
    claim: str | None = None


ROWS: dict[str, Row] = {
    # Basic RP (and Form Post RP with response_mode=form_post)
    "oidcc-client-test": Row(),
    "oidcc-client-test-idtoken-sig-rs256": Row(),
    "oidcc-client-test-client-secret-basic": Row(),
    "oidcc-client-test-scope-userinfo-claims": Row(settings={"fetch_userinfo": True}),
    # No kid, one RSA key published / signed by the second of two RSA keys (both accepted).
    "oidcc-client-test-kid-absent-single-jwks": Row(token="kid-absent-single-jwks"),
    "oidcc-client-test-kid-absent-multiple-jwks": Row(token="kid-absent-multiple-jwks"),
    "oidcc-client-test-invalid-iss": Row(
        token="invalid-iss", refuse=("invalid_id_token", "invalid_issuer"), claim="iss",
    ),
    "oidcc-client-test-missing-sub": Row(
        token="missing-sub", refuse=("invalid_id_token", "missing_claim"), claim="sub"
    ),
    "oidcc-client-test-invalid-aud": Row(
        token="invalid-aud", refuse=("invalid_id_token", "invalid_audience"), claim="aud",
    ),
    "oidcc-client-test-missing-iat": Row(
        token="missing-iat", refuse=("invalid_id_token", "missing_claim"), claim="iat"
    ),
    "oidcc-client-test-nonce-invalid": Row(
        token="nonce-invalid", refuse=("invalid_id_token", "invalid_nonce"), claim="nonce",
    ),
    "oidcc-client-test-invalid-sig-rs256": Row(
        token="invalid-sig-rs256", refuse=("invalid_id_token", "invalid_signature")
    ),
    # The suite accepts either refusal or acceptance of alg none from the token endpoint;
    # this library refuses it everywhere (RFC 8725 section 3.1).
    "oidcc-client-test-idtoken-sig-none": Row(
        token="idtoken-sig-none", refuse=("invalid_id_token", "alg_not_allowed")
    ),
    "oidcc-client-test-userinfo-invalid-sub": Row(
        userinfo=userinfo_sub, settings={"fetch_userinfo": True},
        refuse=("userinfo_sub_mismatch", None),
    ),
    # Comprehensive (non-certification) plan
    "oidcc-client-test-missing-aud": Row(
        token="missing-aud", refuse=("invalid_id_token", "missing_claim"), claim="aud"
    ),
    "oidcc-client-test-invalid-sig-hs256": Row(
        token="invalid-sig-hs256", refuse=("invalid_id_token", "alg_not_allowed")
    ),
    "oidcc-client-test-invalid-sig-es256": Row(
        token="invalid-sig-es256", refuse=("invalid_id_token", "invalid_signature")
    ),
}  # fmt: skip

CASES = [
    pytest.param(mode, row, id=f"{mode}-{name}") for mode in MODES for name, row in ROWS.items()
]


@pytest.fixture(autouse=True)
def _capture_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="oidc_asgi")


@pytest.fixture
async def suite(harness: Harness) -> AsyncIterator[tuple[Suite, Harness]]:
    wrapper = Suite(harness.provider)
    transport = httpx.ASGITransport(app=wrapper)
    async with httpx.AsyncClient(transport=transport, base_url=ISSUER) as http:
        yield wrapper, Harness(provider=harness.provider, op_http=http, clock=harness.clock)


@dataclass
class Login:
    """One sign-in driven through the app and the provider, up to the callback's answer."""

    client: httpx.AsyncClient
    start: httpx.Response
    answer: dict[str, str]
    response: httpx.Response


async def login(
    harness: Harness, mode: str, client: httpx.AsyncClient | None = None, **settings: Any
) -> Login:
    if client is None:
        client = harness.client(harness.wrap(response_mode=mode, **settings))
    start = await harness.authorize(client, "/login?return_to=/private/x")
    answer = await harness.provider_login(location(start))
    accept = {"accept": "application/json"}
    if mode == "form_post":
        response = await client.post("/callback", data=answer, headers=accept)
    else:
        response = await client.get("/callback", params=answer, headers=accept)
    return Login(client, start, answer, response)


def assert_signed_in(done: Login) -> None:
    assert done.response.status_code == 303, done.response.text
    assert location(done.response).endswith("/private/x")
    cookies = set_cookies(done.response)
    assert "oidc_session" in cookies
    tx = [n for n in set_cookies(done.start) if n.startswith("oidc_tx.")]
    assert attributes(cookies[tx[0]])["max-age"] == "0"


def assert_refused(
    done: Login, caplog: pytest.LogCaptureFixture, code: str, reason: str | None
) -> None:
    response = done.response
    assert response.status_code == 400
    body = response.json()
    assert (body["error"], body.get("reason")) == (code, reason)
    assert body["hint"]
    cookies = set_cookies(response)
    assert "oidc_session" not in cookies
    assert response.headers["cache-control"] == "no-store"
    tx = [n for n in set_cookies(done.start) if n.startswith("oidc_tx.")]
    assert attributes(cookies[tx[0]])["max-age"] == "0"
    secrets = [done.answer.get("code", ""), done.answer.get("state", "")]
    secrets += [v.split(";")[0].split("=", 1)[1] for v in set_cookies(done.start).values()]
    ours = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("oidc_asgi"))
    assert code in ours
    shown = response.text + json.dumps(dict(response.headers)) + ours
    for secret in filter(None, secrets):
        assert secret not in shown


@pytest.mark.parametrize(("mode", "row"), CASES)
async def test_conformance(
    suite: tuple[Suite, Harness], caplog: pytest.LogCaptureFixture, mode: str, row: Row
) -> None:
    wrapper, harness = suite
    if row.userinfo is not None:
        wrapper.rewrite["/userinfo"] = row.userinfo
    served = None
    if row.token is not None:
        served = serve_bad_id_token(harness.provider, row.token, client_id="rp")
    done = await login(harness, mode, **row.settings)
    async with aclosing(done.client):
        if served is not None:  # the provider answered the code redemption with the case
            assert served.served is not None
            assert served.served != served.genuine
        me = (await done.client.get("/me")).json()
        if row.refuse is None:
            assert_signed_in(done)
            assert me["sub"] == "alice"
            token_calls = [h for p, h in wrapper.seen if p == "/token"]
            # client_secret_basic (RFC 6749 2.3.1): credentials in the header, not the body
            assert token_calls[-1]["authorization"].startswith("Basic ")
            if row.settings.get("fetch_userinfo"):
                assert me["name"] == "Alice Liddell"
                userinfo = [h for p, h in wrapper.seen if p == "/userinfo"]
                assert userinfo[-1]["authorization"].startswith("Bearer ")
        else:
            assert_refused(done, caplog, *row.refuse)
            if row.claim is not None:
                assert done.response.json()["claim"] == row.claim
            assert me["sub"] is None


# --------------------------------------------------------------------------- Config RP plan


@pytest.mark.parametrize("mode", MODES)
async def test_oidcc_client_test_discovery_openid_config_and_jwks_uri_keys(
    suite: tuple[Suite, Harness], mode: str
) -> None:
    # oidcc-client-test-discovery-openid-config + -discovery-jwks-uri-keys: every endpoint and
    # the keys come from the discovery document; the suite moves jwks_uri on each run.
    wrapper, harness = suite
    moved = "/keys-moved-e81c"
    wrapper.alias[moved] = "/jwks"

    def move(provider: DevProvider, body: Body) -> Body:
        return {**body, "jwks_uri": ISSUER + moved}

    wrapper.rewrite["/.well-known/openid-configuration"] = move
    done = await login(harness, mode)
    async with aclosing(done.client):
        assert_signed_in(done)
    paths = [p for p, _ in wrapper.seen]
    assert moved in paths
    assert "/jwks" not in paths


@pytest.mark.parametrize("mode", MODES)
async def test_oidcc_client_test_discovery_issuer_mismatch(
    suite: tuple[Suite, Harness], caplog: pytest.LogCaptureFixture, mode: str
) -> None:
    # OpenID Connect Discovery 1.0 section 4.3: the configuration is rejected.
    wrapper, harness = suite

    def other_issuer(provider: DevProvider, body: Body) -> Body:
        return {**body, "issuer": "http://127.0.0.1:9999"}

    wrapper.rewrite["/.well-known/openid-configuration"] = other_issuer
    async with harness.client(harness.wrap(response_mode=mode)) as client:
        response = await client.get("/login", headers={"accept": "application/json"})
        assert response.status_code == 500
        assert response.json()["error"] == "configuration_error"
        assert not [n for n in set_cookies(response) if n.startswith("oidc_tx")]
        assert "location" not in response.headers
    assert "issuer_mismatch" in caplog.text


@pytest.mark.parametrize("mode", MODES)
async def test_oidcc_client_test_signing_key_rotation(
    suite: tuple[Suite, Harness], mode: str
) -> None:
    wrapper, harness = suite
    app = harness.wrap(response_mode=mode)
    async with harness.client(app) as first:
        assert_signed_in(await login(harness, mode, first))
    harness.clock.advance(31)  # past the refetch cooldown, as between two suite runs
    harness.provider.rotate_keys()  # after the first ID token: the RP holds the old JWKS
    harness.op_http.cookies.clear()  # a new browser at the provider too
    async with harness.client(app) as second:
        done = await login(harness, mode, second)
        assert_signed_in(done)
    assert [p for p, _ in wrapper.seen].count("/jwks") == 2  # refetched on the unknown kid


@pytest.mark.parametrize("mode", MODES)
async def test_oidcc_client_test_signing_key_rotation_just_before_signing(
    suite: tuple[Suite, Harness], mode: str
) -> None:
    wrapper, harness = suite
    app = harness.wrap(response_mode=mode)
    async with harness.client(app) as client:
        await app.provider.prefetch()  # the RP already holds the JWKS
        harness.clock.advance(31)  # past the refetch cooldown
        start = await harness.authorize(client, "/login?return_to=/private/x")
        harness.provider.rotate_keys()  # right before the first ID token is signed
        answer = await harness.provider_login(location(start))
        accept = {"accept": "application/json"}
        if mode == "form_post":
            response = await client.post("/callback", data=answer, headers=accept)
        else:
            response = await client.get("/callback", params=answer, headers=accept)
        assert_signed_in(Login(client, start, answer, response))
    assert [p for p, _ in wrapper.seen].count("/jwks") == 2  # refetched on the unknown kid


# --------------------------------------------------------------------------- Form Post RP plan


async def test_oidcc_client_test_form_post_error(
    suite: tuple[Suite, Harness], caplog: pytest.LogCaptureFixture
) -> None:
    # The provider POSTs an error response (OAuth 2.0 Form Post Response Mode section 2).
    _, harness = suite
    client = harness.client(harness.wrap(response_mode="form_post"))
    start = await harness.authorize(client, "/login?return_to=/private/x")
    answer = await harness.provider_login(location(start))
    posted = {"error": "login_required", "state": answer["state"], "iss": answer["iss"]}
    response = await client.post("/callback", data=posted, headers={"accept": "application/json"})
    async with aclosing(client):
        assert_refused(Login(client, start, answer, response), caplog, "provider_error", None)
        assert response.json()["provider_error"] == "login_required"
        assert (await client.get("/me")).json()["sub"] is None
