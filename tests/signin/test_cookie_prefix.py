"""The ``__Host-`` session cookie (RFC 6265bis section 4.1.3.2): the default on an https origin
at the root, so no sibling subdomain or plain-http page can plant or overwrite the session; plain
names where its rules cannot hold, and prefixed names that cannot work are refused at startup."""

from __future__ import annotations

import warnings
from typing import Any

import pytest

from oidc_asgi.errors import ConfigurationError
from oidc_asgi.sessions import MemoryStore
from oidc_asgi.signin import SignInConfig

from ._support import APP, HTTPS_APP, ISSUER, SECRET, Harness, attributes, set_cookies

BASE: dict[str, Any] = {
    "issuer": ISSUER,
    "client_id": "rp",
    "client_secret": "rp-secret",
    "secrets": [SECRET],
    "base_url": HTTPS_APP,
}


@pytest.mark.parametrize(
    ("overrides", "name"),
    [
        pytest.param({}, "__Host-oidc_session", id="https-root-host-prefix"),
        pytest.param({"base_url": HTTPS_APP + "/"}, "__Host-oidc_session", id="https-root-slash"),
        pytest.param({"session_cookie": "app"}, "__Host-app", id="https-root-own-name"),
        pytest.param({"base_url": APP}, "oidc_session", id="http-loopback-plain"),
        pytest.param({"base_url": HTTPS_APP + "/portal"}, "oidc_session", id="https-path-plain"),
        pytest.param({"cookie_domain": "app.example"}, "oidc_session", id="https-domain-plain"),
        pytest.param({"cookie_secure": False}, "oidc_session", id="https-secure-off-plain"),
        pytest.param({"session_cookie": "__Host-s"}, "__Host-s", id="explicit-host-kept"),
        pytest.param({"session_cookie": "__host-s"}, "__host-s", id="explicit-host-any-case"),
        pytest.param({"session_cookie": "__Secure-s"}, "__Secure-s", id="explicit-secure-kept"),
        pytest.param({"session_cookie": "__Secure-s", "cookie_domain": "app.example"},
                     "__Secure-s", id="explicit-secure-with-domain"),
        pytest.param({"base_url": APP, "session_cookie": "__Host-s"}, "__Host-s",
                     id="explicit-host-on-loopback-http"),
    ],
)  # fmt: skip
def test_session_cookie_name(overrides: dict[str, Any], name: str) -> None:
    assert SignInConfig(**{**BASE, **overrides}).session_cookie_name == name


@pytest.mark.parametrize(
    "overrides",
    [
        pytest.param({"session_cookie": "__Host-s", "cookie_domain": "app.example"},
                     id="host-session-with-domain"),
        pytest.param({"session_cookie": "__HOST-s", "cookie_domain": "app.example"},
                     id="host-session-any-case-with-domain"),
        pytest.param({"session_cookie": "__Host-s", "base_url": HTTPS_APP + "/portal"},
                     id="host-session-under-a-path"),
        pytest.param({"session_cookie": "__Host-s", "cookie_secure": False},
                     id="host-session-secure-off"),
        pytest.param({"session_cookie": "__Secure-s", "cookie_secure": False},
                     id="secure-session-secure-off"),
        pytest.param({"session_cookie": "__Secure-s", "base_url": "http://app.example"},
                     id="secure-session-plain-http"),
        pytest.param({"transaction_cookie": "__Host-tx"}, id="host-transaction-path-scoped"),
        pytest.param({"transaction_cookie": "__Secure-tx", "cookie_secure": False},
                     id="secure-transaction-secure-off"),
    ],
)  # fmt: skip
def test_prefixed_names_that_cannot_work_are_refused(overrides: dict[str, Any]) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the plain-http warning comes first
        with pytest.raises(ConfigurationError) as caught:
            SignInConfig(**{**BASE, **overrides})
    assert caught.value.code == "invalid_cookie_name"


def test_a_secure_prefixed_transaction_cookie_is_accepted() -> None:
    config = SignInConfig(**{**BASE, "transaction_cookie": "__Secure-tx"})
    assert config.transaction_cookie == "__Secure-tx"


@pytest.mark.parametrize("store", [False, True], ids=["cookie-store", "memory-store"])
async def test_https_sign_in_uses_a_host_cookie(harness: Harness, store: bool) -> None:
    settings: dict[str, Any] = {"session_store": MemoryStore()} if store else {}
    app = harness.wrap(base_url=HTTPS_APP, **settings)
    async with harness.client(app, HTTPS_APP) as browser:
        done = await harness.sign_in(browser, "/login?return_to=/me")
        assert done.json()["sub"] == "alice"
        response = await browser.get("/put", params={"k": "v"})
        cookies = set_cookies(response)
        assert "oidc_session" not in cookies
        cookie = attributes(cookies["__Host-oidc_session"])
        assert cookie["path"] == "/"
        assert "secure" in cookie
        assert "domain" not in cookie
        assert (await browser.get("/me")).json()["sub"] == "alice"
