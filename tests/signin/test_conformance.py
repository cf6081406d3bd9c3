"""The OpenID Foundation relying-party conformance behaviours, as one table.

Each row is named exactly after its conformance-suite module (``oidcc-client-test-*``, see
``research/oidf-rp-tests.md``) and runs in both response modes the middleware offers: ``query``
(Basic and Config RP plans) and ``form_post`` (the Form Post RP plan re-runs the Basic list). The
development provider answers; a thin wrapper in front of it plays the conformance suite's part
by changing one thing per row (an ID-token claim re-signed with the provider's key, a signature,
the JWKS, the discovery document, the userinfo answer). A row that expects refusal asserts the
status, the stable error code and reason, that the transaction cookie was removed, that no
session was written, and that no code, state or cookie value shows in the answer or the log.

RP-Initiated Logout rows (``oidcc-client-test-rp-init-logout*``) are in ``test_logout.py``;
Back-Channel Logout rows in ``test_backchannel.py``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import aclosing
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from starlette.types import Message, Receive, Scope, Send

from oidc_asgi.testing import DevProvider
from oidc_asgi.testing._keys import SigningKey, encode_jws, raw_sign

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


def id_claim(name: str, value: Any) -> Rewrite:
    """The token response's ID token with one claim set (``None``: removed), re-signed."""

    def rewrite(provider: DevProvider, body: Body) -> Body:
        claims = provider.unverified_claims(body["id_token"])
        if value is None:
            claims.pop(name, None)
        else:
            claims[name] = value
        body["id_token"] = provider.signing_key("RS256").sign(claims)
        return body

    return rewrite


def _flip_signature(token: str) -> str:
    head, payload, signature = token.split(".")
    flipped = ("A" if signature[5] != "A" else "B").join((signature[:5], signature[6:]))
    return f"{head}.{payload}.{flipped}"


def bad_sig_rs256(provider: DevProvider, body: Body) -> Body:
    body["id_token"] = _flip_signature(body["id_token"])
    return body


def bad_sig_es256(provider: DevProvider, body: Body) -> Body:
    claims = provider.unverified_claims(body["id_token"])
    body["id_token"] = _flip_signature(provider.signing_key("ES256").sign(claims))
    return body


def bad_sig_hs256(provider: DevProvider, body: Body) -> Body:
    # HS256 keyed with the client secret (OIDC Core 10.1), then broken.
    claims = provider.unverified_claims(body["id_token"])

    def sign(data: bytes) -> bytes:
        return hmac.new(b"rp-secret", data, hashlib.sha256).digest()

    body["id_token"] = _flip_signature(encode_jws({"alg": "HS256", "typ": "JWT"}, claims, sign))
    return body


def sig_none(provider: DevProvider, body: Body) -> Body:
    claims = provider.unverified_claims(body["id_token"])
    body["id_token"] = encode_jws({"alg": "none", "typ": "JWT"}, claims, lambda _: b"")
    return body


def without_kid(provider: DevProvider, body: Body) -> Body:
    claims = provider.unverified_claims(body["id_token"])
    key = provider.signing_key("RS256").private_key
    body["id_token"] = encode_jws(
        {"alg": "RS256", "typ": "JWT"}, claims, lambda data: raw_sign(key, "RS256", data)
    )
    return body


def only_rs256_key(provider: DevProvider, body: Body) -> Body:
    kid = provider.signing_key("RS256").kid
    body["keys"] = [k for k in body["keys"] if k.get("kid") == kid]
    return body


_OTHER_RSA = SigningKey.generate("RS256")


def two_rs256_keys(provider: DevProvider, body: Body) -> Body:
    body = only_rs256_key(provider, body)
    body["keys"].insert(0, _OTHER_RSA.public_jwk())
    return body


def userinfo_sub(provider: DevProvider, body: Body) -> Body:
    return {**body, "sub": "mallory"}


# --------------------------------------------------------------------------- the table


@dataclass(frozen=True)
class Row:
    """One conformance module: what the suite changes, and what the RP must do."""

    token: Rewrite | None = None
    jwks: Rewrite | None = None
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
    "oidcc-client-test-kid-absent-single-jwks": Row(token=without_kid, jwks=only_rs256_key),
    "oidcc-client-test-kid-absent-multiple-jwks": Row(token=without_kid, jwks=two_rs256_keys),
    "oidcc-client-test-invalid-iss": Row(
        token=id_claim("iss", "https://evil.example"),
        refuse=("invalid_id_token", "invalid_issuer"), claim="iss",
    ),
    "oidcc-client-test-missing-sub": Row(
        token=id_claim("sub", None), refuse=("invalid_id_token", "missing_claim"), claim="sub"
    ),
    "oidcc-client-test-invalid-aud": Row(
        token=id_claim("aud", "someone-else"),
        refuse=("invalid_id_token", "invalid_audience"), claim="aud",
    ),
    "oidcc-client-test-missing-iat": Row(
        token=id_claim("iat", None), refuse=("invalid_id_token", "missing_claim"), claim="iat"
    ),
    "oidcc-client-test-nonce-invalid": Row(
        token=id_claim("nonce", "other"), refuse=("invalid_id_token", "invalid_nonce"),
        claim="nonce",
    ),
    "oidcc-client-test-invalid-sig-rs256": Row(
        token=bad_sig_rs256, refuse=("invalid_id_token", "invalid_signature")
    ),
    # The suite accepts either refusal or acceptance of alg none from the token endpoint;
    # this library refuses it everywhere (RFC 8725 section 3.1).
    "oidcc-client-test-idtoken-sig-none": Row(
        token=sig_none, refuse=("invalid_id_token", "alg_not_allowed")
    ),
    "oidcc-client-test-userinfo-invalid-sub": Row(
        userinfo=userinfo_sub, settings={"fetch_userinfo": True},
        refuse=("userinfo_sub_mismatch", None),
    ),
    # Comprehensive (non-certification) plan
    "oidcc-client-test-missing-aud": Row(
        token=id_claim("aud", None), refuse=("invalid_id_token", "missing_claim"), claim="aud"
    ),
    "oidcc-client-test-invalid-sig-hs256": Row(
        token=bad_sig_hs256, refuse=("invalid_id_token", "alg_not_allowed")
    ),
    "oidcc-client-test-invalid-sig-es256": Row(
        token=bad_sig_es256, refuse=("invalid_id_token", "invalid_signature")
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
    for path, rewrite in (("/token", row.token), ("/jwks", row.jwks), ("/userinfo", row.userinfo)):
        if rewrite is not None:
            wrapper.rewrite[path] = rewrite
    done = await login(harness, mode, **row.settings)
    async with aclosing(done.client):
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
