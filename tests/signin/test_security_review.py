"""Security review of the web sign-in middleware: hostile input that used to end in a 500,
and attacks on the back-channel logout, token refresh and logout paths.

Each case names the attack; a finding stays fixed only while its row here passes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from starlette.types import Message, Scope

from oidc_asgi.sessions import MemoryStore
from oidc_asgi.testing import DevProvider, KeyRing

from ._api_support import OFFLINE_SCOPE, bcl_provider_config, claims_for, signed, token_app
from ._support import SECRET, Clock, Harness, set_cookies

# Login requests an attacker can make a browser send (a link or an <img>): each must end in
# a redirect to the provider or a 4xx, never a 500, and never set an oversized cookie.
HOSTILE_LOGINS = [
    pytest.param("/login?max_age=%C2%B2", id="max_age-superscript-digit"),
    pytest.param("/login?max_age=%D9%A3", id="max_age-arabic-indic-digit"),
    pytest.param("/login?max_age=%EF%BC%95", id="max_age-fullwidth-digit"),
    pytest.param("/login?acr_values=" + "urn:acr:x+" * 600, id="acr_values-6kb"),
    pytest.param(
        "/login?acr_values=" + "a" * 2000 + "&return_to=/" + "b" * 2000, id="acr-and-return-to"
    ),
    pytest.param(
        "/login?acr_values=" + "a" * 900 + "&return_to=/" + "b" * 2000,
        id="payload-fits-codec-cookie-does-not",
    ),
]


@pytest.mark.parametrize("path", HOSTILE_LOGINS)
async def test_hostile_login_requests_never_answer_500(harness: Harness, path: str) -> None:
    app = harness.wrap()
    async with harness.client(app) as client:
        response = await client.get(path)
    assert response.status_code in (302, 400), response.text
    for header in set_cookies(response).values():
        # RFC 6265 section 6.1: browsers keep about 4096 bytes per cookie; more is dropped.
        assert len(header) <= 4096


async def test_non_ascii_max_age_is_ignored_not_sent(harness: Harness) -> None:
    app = harness.wrap()
    async with harness.client(app) as client:
        response = await client.get("/login?max_age=%C2%B2")
    assert response.status_code == 302
    assert "max_age" not in response.headers["location"]


async def test_oversized_login_request_is_a_coded_400(harness: Harness) -> None:
    app = harness.wrap()
    async with harness.client(app) as client:
        response = await client.get(
            "/login?acr_values=" + "urn:acr:x+" * 600, headers={"accept": "application/json"}
        )
    assert response.status_code == 400
    assert response.json()["error"] == "login_request_too_large"
    assert "set-cookie" not in response.headers


# ------------------------------------------------------------------ back-channel logout


@pytest.fixture
def bcl(clock: Clock, shared_keys: KeyRing) -> DevProvider:
    return DevProvider(bcl_provider_config(), now=clock, keys=shared_keys.copy())


@pytest.fixture
async def bh(bcl: DevProvider, clock: Clock) -> AsyncIterator[Harness]:
    async with bcl.asgi_client() as op_http:
        yield Harness(provider=bcl, op_http=op_http, clock=clock)


@pytest.mark.parametrize("store", ["cookie", "memory-store"])
async def test_bcl_by_sub_does_not_lock_out_a_later_single_sign_on(
    bh: Harness, clock: Clock, store: str
) -> None:
    # Back-Channel Logout 1.0 section 2.7: the logout ends the sessions that exist when it
    # arrives. A sign-in completed afterwards through the provider's still-open session (SSO,
    # so auth_time is the *old* authentication) is a new session and must survive; judging
    # by auth_time revoked it again on every request until absolute_ttl ran out.
    extra: dict[str, Any] = {} if store == "cookie" else {"session_store": MemoryStore(now=clock)}
    app = bh.wrap(token_app(), scope=OFFLINE_SCOPE, **extra)
    async with bh.client(app) as browser, bh.client(app) as op:
        await bh.sign_in(browser)
        token = signed(bh.provider, claims_for(bh.provider, None))
        response = await op.post("/backchannel-logout", data={"logout_token": token})
        assert response.status_code == 200
        assert (await browser.get("/whoami")).text == "anonymous"
        clock.advance(5)
        await bh.sign_in(browser)  # no prompt=login: the provider's session signs in again
        assert (await browser.get("/whoami")).text == "alice"


async def test_bcl_still_ends_a_session_signed_in_the_same_second(
    bh: Harness, clock: Clock
) -> None:
    # The other direction of the rule above: equal times count as "before the logout".
    app = bh.wrap(token_app(), scope=OFFLINE_SCOPE)
    async with bh.client(app) as browser, bh.client(app) as op:
        await bh.sign_in(browser)
        token = signed(bh.provider, claims_for(bh.provider, None))
        assert (
            await op.post("/backchannel-logout", data={"logout_token": token})
        ).status_code == 200
        assert (await browser.get("/whoami")).text == "anonymous"


@pytest.mark.parametrize(
    ("declared", "status"),
    [
        pytest.param(b"\xb2", 400, id="superscript-two-latin-1"),
        pytest.param(b"\xd9\xa3", 400, id="arabic-indic-three-utf-8-bytes"),
        pytest.param(b"-1", 400, id="negative"),
        pytest.param(b"1e9", 400, id="exponent"),
        pytest.param(b"99999999999999999999", 413, id="huge-ascii-digits"),
    ],
)
async def test_bcl_hostile_content_length_is_a_4xx(
    bh: Harness, declared: bytes, status: int
) -> None:
    # Behind a strict HTTP server a bad Content-Length never arrives, but the route must not
    # depend on that (str.isdigit() accepts "²", which int() refuses).
    app = bh.wrap(token_app(), scope=OFFLINE_SCOPE)
    sent: list[Message] = []
    body = [{"type": "http.request", "body": b"logout_token=x", "more_body": False}]

    async def receive() -> Message:
        return body.pop(0) if body else {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        sent.append(message)

    scope: Scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/backchannel-logout",
        "raw_path": b"/backchannel-logout",
        "root_path": "",
        "query_string": b"",
        "headers": [
            (b"content-type", b"application/x-www-form-urlencoded"),
            (b"content-length", declared),
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }
    await app(scope, receive, send)
    assert sent[0]["status"] == status


# ------------------------------------------------------------------ secrets in reprs


def test_config_and_middleware_reprs_hold_no_secret(harness: Harness) -> None:
    # Error trackers record frame locals by repr (Sentry's include_local_variables), and
    # "config=%r" is a common debug line: neither may carry a credential.
    app = harness.wrap(client_secret="rp-secret")
    shown = repr(app.config) + repr(app) + str(app.config)
    assert "rp-secret" not in shown
    assert SECRET not in shown
    assert "client_id='rp'" in repr(app.config)  # the rest of the repr is still there
