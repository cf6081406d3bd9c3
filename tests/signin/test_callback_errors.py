"""Every callback failure: status, stable code, transaction cookie removed, no session, no leak.

ID-token cases are named after the OpenID Foundation relying-party conformance modules
(``oidcc-client-test-*``); the development provider issues the bad tokens by re-signing a real
token response with one claim changed.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from contextlib import aclosing
from typing import Any

import httpx
import pytest
from starlette.types import Message, Receive, Scope, Send

from oidc_asgi.testing import DevProvider

from ._support import APP, ISSUER, Harness, attributes, location, set_cookies

Params = dict[str, str]
Body = dict[str, Any]


class Tampering:
    """The development provider behind an ASGI wrapper that rewrites JSON answers by path."""

    def __init__(self, provider: DevProvider) -> None:
        self.provider = provider
        self.rewrite: dict[str, Callable[[Body], Body]] = {}
        self.status: dict[str, int] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] == "http" and path in self.status:
            await send({"type": "http.response.start", "status": self.status[path], "headers": []})
            await send({"type": "http.response.body", "body": b""})
            return
        rewrite = self.rewrite.get(path) if scope["type"] == "http" else None
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
        body = json.dumps(rewrite(json.loads(b"".join(chunks)))).encode()
        headers = [(k, v) for k, v in start["headers"] if k.lower() != b"content-length"]
        headers.append((b"content-length", str(len(body)).encode()))
        await send({**start, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def resign(provider: DevProvider, change: Callable[[Body], None]) -> Callable[[Body], Body]:
    """A token-response rewrite: the ID token's claims changed, then signed again."""

    def rewrite(body: Body) -> Body:
        claims = provider.unverified_claims(body["id_token"])
        change(claims)
        body["id_token"] = provider.signing_key("RS256").sign(claims)
        return body

    return rewrite


@pytest.fixture(autouse=True)
def _capture_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="oidc_asgi")


@pytest.fixture
async def tampered(harness: Harness) -> Any:
    wrapper = Tampering(harness.provider)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=wrapper), base_url=ISSUER
    ) as http:
        yield wrapper, Harness(provider=harness.provider, op_http=http, clock=harness.clock)


async def run_callback(
    harness: Harness,
    change: Callable[[Params], Any] | None = None,
    *,
    advance: float = 0,
    **config: Any,
) -> tuple[httpx.Response, httpx.AsyncClient, Params, httpx.Response]:
    app = harness.wrap(**config)
    client = harness.client(app)
    start = await harness.authorize(client, "/login?return_to=/private/x")
    answer = await harness.provider_login(location(start))
    params: Any = dict(answer)
    if change is not None:
        params = change(params)
    harness.clock.advance(advance)
    response = await client.get("/callback", params=params, headers={"accept": "application/json"})
    return response, client, answer, start


def assert_clean_failure(
    response: httpx.Response,
    answer: Params,
    start: httpx.Response,
    caplog: pytest.LogCaptureFixture,
    *,
    tx_removed: bool = True,
) -> None:
    cookies = set_cookies(response)
    assert "oidc_session" not in cookies  # nothing half-written
    assert response.headers["cache-control"] == "no-store"
    tx_names = [name for name in set_cookies(start) if name.startswith("oidc_tx.")]
    if tx_removed:
        assert attributes(cookies[tx_names[0]])["max-age"] == "0"
    secrets = [answer.get("code", ""), answer.get("state", "")]
    secrets += [v.split(";")[0].split("=", 1)[1] for v in set_cookies(start).values()]
    ours = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("oidc_asgi"))
    assert ours  # the failure was logged, by code
    shown = response.text + json.dumps(dict(response.headers)) + ours
    for secret in filter(None, secrets):
        assert secret not in shown


def drop(name: str) -> Callable[[Params], Params]:
    def change(params: Params) -> Params:
        params.pop(name)
        return params

    return change


def put(**values: str) -> Callable[[Params], Params]:
    def change(params: Params) -> Params:
        params.update(values)
        return params

    return change


def provider_error(error: str) -> Callable[[Params], Params]:
    def change(params: Params) -> Params:
        return {"error": error, "state": params["state"], "iss": params["iss"]}

    return change


def duplicate_state(params: Params) -> list[tuple[str, str]]:
    return [*params.items(), ("state", params["state"])]


CALLBACK_CASES = [
    pytest.param(drop("state"), "missing_state", {}, False, id="missing-state"),
    pytest.param(put(state="A" * 43), "unknown_state", {}, False, id="unknown-state"),
    pytest.param(
        provider_error("access_denied"), "provider_error",
        {"provider_error": "access_denied"}, True, id="provider-error-access-denied",
    ),
    pytest.param(
        provider_error("<script>alert(1)</script>"), "provider_error",
        {"provider_error": "invalid_error_code"}, True, id="provider-error-not-echoed",
    ),
    pytest.param(
        put(iss="https://evil.example"), "iss_mismatch", {}, True,
        id="rfc9207-invalid-authorization-response-iss",
    ),
    pytest.param(drop("iss"), "iss_missing", {}, True, id="rfc9207-missing-iss"),
    pytest.param(drop("code"), "missing_code", {}, True, id="missing-code"),
    pytest.param(
        put(code="dev_code_forged"), "token_error", {"provider_error": "invalid_grant"}, True,
        id="token-endpoint-invalid-grant",
    ),
    pytest.param(duplicate_state, "duplicate_parameter", {"parameter": "state"}, False,
                 id="duplicate-parameter"),
]  # fmt: skip


@pytest.mark.parametrize(("change", "code", "detail", "tx_removed"), CALLBACK_CASES)
async def test_callback_input_errors(
    harness: Harness,
    caplog: pytest.LogCaptureFixture,
    change: Callable[[Params], Any],
    code: str,
    detail: dict[str, str],
    tx_removed: bool,
) -> None:
    response, client, answer, start = await run_callback(harness, change)
    async with aclosing(client):
        assert response.status_code == 400
        body = response.json()
        assert body["error"] == code
        assert body["hint"]
        for key, value in detail.items():
            assert body[key] == value
        assert_clean_failure(response, answer, start, caplog, tx_removed=tx_removed)
        assert (await client.get("/me")).json()["sub"] is None


async def test_login_that_took_too_long_is_refused(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    response, client, answer, start = await run_callback(harness, advance=601)
    async with aclosing(client):
        assert response.status_code == 400
        assert response.json()["error"] == "login_expired"
        assert_clean_failure(response, answer, start, caplog)


def _set(name: str, value: Any) -> Callable[[Body], None]:
    def change(claims: Body) -> None:
        if value is None:
            claims.pop(name, None)
        else:
            claims[name] = value

    return change


ID_TOKEN_CASES = [
    pytest.param(_set("nonce", "other"), "invalid_nonce", "nonce", id="nonce-invalid"),
    pytest.param(_set("iss", "https://evil.example"), "invalid_issuer", "iss", id="invalid-iss"),
    pytest.param(_set("aud", "someone-else"), "invalid_audience", "aud", id="invalid-aud"),
    pytest.param(_set("aud", None), "missing_claim", "aud", id="missing-aud"),
    pytest.param(_set("sub", None), "missing_claim", "sub", id="missing-sub"),
    pytest.param(_set("iat", None), "missing_claim", "iat", id="missing-iat"),
    pytest.param(_set("exp", 1_700_000_000), "token_expired", "exp", id="expired"),
    pytest.param(_set("at_hash", "AAAAAAAAAAAAAAAAAAAAAA"), "invalid_at_hash", "at_hash",
                 id="invalid-athash"),
    pytest.param(_set("azp", "someone-else"), "invalid_azp", "azp", id="invalid-azp"),
]  # fmt: skip


@pytest.mark.parametrize(("change", "reason", "claim"), ID_TOKEN_CASES)
async def test_invalid_id_token_is_refused(
    tampered: tuple[Tampering, Harness],
    caplog: pytest.LogCaptureFixture,
    change: Callable[[Body], None],
    reason: str,
    claim: str,
) -> None:
    wrapper, harness = tampered
    wrapper.rewrite["/token"] = resign(harness.provider, change)
    response, client, answer, start = await run_callback(harness)
    async with aclosing(client):
        assert response.status_code == 400
        body = response.json()
        assert (body["error"], body["reason"], body["claim"]) == ("invalid_id_token", reason, claim)
        assert_clean_failure(response, answer, start, caplog)


def _bad_signature(body: Body) -> Body:
    head, payload, signature = body["id_token"].split(".")
    flipped = ("A" if signature[5] != "A" else "B").join((signature[:5], signature[6:]))
    body["id_token"] = f"{head}.{payload}.{flipped}"
    return body


def _alg_none(provider: DevProvider) -> Callable[[Body], Body]:
    def rewrite(body: Body) -> Body:
        import base64

        def b64(data: Any) -> str:
            raw = json.dumps(data).encode()
            return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

        claims = provider.unverified_claims(body["id_token"])
        body["id_token"] = f"{b64({'alg': 'none', 'typ': 'JWT'})}.{b64(claims)}."
        return body

    return rewrite


def _unknown_kid(provider: DevProvider) -> Callable[[Body], Body]:
    def rewrite(body: Body) -> Body:
        claims = provider.unverified_claims(body["id_token"])
        body["id_token"] = provider.signing_key("RS256").sign(claims, kid="not-published")
        return body

    return rewrite


def _no_id_token(body: Body) -> Body:
    body.pop("id_token")
    return body


@pytest.mark.parametrize(
    ("make", "code", "reason"),
    [
        pytest.param(lambda p: _bad_signature, "invalid_id_token", "invalid_signature",
                     id="invalid-sig-rs256"),
        pytest.param(_alg_none, "invalid_id_token", "alg_not_allowed", id="idtoken-sig-none"),
        pytest.param(_unknown_kid, "invalid_id_token", "unknown_key", id="unknown-kid"),
        pytest.param(lambda p: _no_id_token, "missing_id_token", None, id="missing-id-token"),
    ],
)  # fmt: skip
async def test_broken_id_token_is_refused(
    tampered: tuple[Tampering, Harness],
    caplog: pytest.LogCaptureFixture,
    make: Callable[[DevProvider], Callable[[Body], Body]],
    code: str,
    reason: str | None,
) -> None:
    wrapper, harness = tampered
    wrapper.rewrite["/token"] = make(harness.provider)
    response, client, answer, start = await run_callback(harness)
    async with aclosing(client):
        assert response.status_code == 400
        body = response.json()
        assert body["error"] == code
        assert body.get("reason") == reason
        assert_clean_failure(response, answer, start, caplog)


async def test_userinfo_with_another_sub_is_refused(
    tampered: tuple[Tampering, Harness], caplog: pytest.LogCaptureFixture
) -> None:
    # oidcc-client-test-userinfo-invalid-sub (OIDC Core 5.3.2)
    wrapper, harness = tampered
    wrapper.rewrite["/userinfo"] = lambda body: {**body, "sub": "mallory"}
    response, client, answer, start = await run_callback(harness, fetch_userinfo=True)
    async with aclosing(client):
        assert response.status_code == 400
        assert response.json()["error"] == "userinfo_sub_mismatch"
        assert_clean_failure(response, answer, start, caplog)


async def test_userinfo_claims_are_added(harness: Harness) -> None:
    # oidcc-client-test-scope-userinfo-claims; the bearer token goes in the header.
    response, client, _, _ = await run_callback(harness, fetch_userinfo=True)
    async with aclosing(client):
        assert response.status_code == 303
        assert (await client.get("/me")).json()["name"] == "Alice Liddell"


async def test_session_ceiling_in_the_past_is_refused(
    tampered: tuple[Tampering, Harness], caplog: pytest.LogCaptureFixture
) -> None:
    wrapper, harness = tampered
    wrapper.rewrite["/token"] = resign(
        harness.provider, _set("session_expiry", int(harness.clock.value) - 1)
    )
    response, client, answer, start = await run_callback(harness)
    async with aclosing(client):
        assert response.json()["error"] == "session_expired_at_login"
        assert_clean_failure(response, answer, start, caplog)


async def test_token_endpoint_down_is_503(
    tampered: tuple[Tampering, Harness], caplog: pytest.LogCaptureFixture
) -> None:
    wrapper, harness = tampered
    wrapper.status["/token"] = 502
    response, client, answer, start = await run_callback(harness)
    async with aclosing(client):
        assert response.status_code == 503
        assert response.json()["error"] == "provider_unavailable"
        assert "retry-after" in response.headers
        assert_clean_failure(response, answer, start, caplog)


async def test_token_endpoint_unreachable_is_503(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    inner = httpx.ASGITransport(app=harness.provider)

    async def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/token":
            raise httpx.ConnectError("connection refused")
        return await inner.handle_async_request(request)

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler), base_url=ISSUER) as http:
        faulty = Harness(provider=harness.provider, op_http=http, clock=harness.clock)
        response, client, answer, start = await run_callback(faulty)
        async with aclosing(client):
            assert response.status_code == 503
            assert response.json()["error"] == "provider_unavailable"
            assert_clean_failure(response, answer, start, caplog)


async def test_provider_down_at_login_is_503(harness: Harness) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused")

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
        app = harness.wrap(http_client=http)
        async with harness.client(app) as client:
            response = await client.get("/login", headers={"accept": "application/json"})
            assert response.status_code == 503
            assert response.json()["error"] == "provider_unavailable"
            assert not [n for n in set_cookies(response) if n.startswith("oidc_tx.")]


async def test_browser_gets_an_html_error_page(harness: Harness) -> None:
    app = harness.wrap()
    async with harness.client(app, browser=True) as client:
        response = await client.get("/callback?state=nope&code=secret-code-value")
        assert response.status_code == 400
        assert response.headers["content-type"].startswith("text/html")
        assert "unknown_state" in response.text
        assert "secret-code-value" not in response.text
        assert f'href="{APP}/"' in response.text


async def test_callback_post_body_is_bounded(harness: Harness) -> None:
    app = harness.wrap(response_mode="form_post")
    async with harness.client(app) as client:
        response = await client.post(
            "/callback", content=b"state=" + b"a" * 70_000,
            headers={"content-type": "application/x-www-form-urlencoded",
                     "accept": "application/json"},
        )  # fmt: skip
        assert response.status_code == 413
