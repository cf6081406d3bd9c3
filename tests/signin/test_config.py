"""SignInConfig: validated at construction, readable from the environment."""

from __future__ import annotations

from typing import Any

import pytest

from oidc_asgi.errors import ConfigurationError
from oidc_asgi.signin import ENV_VARIABLES, OIDCAuth, SignInConfig, SignInWarning

from ._support import APP, ISSUER, SECRET, Harness

BASE: dict[str, Any] = {
    "issuer": ISSUER,
    "client_id": "rp",
    "client_secret": "rp-secret",
    "secrets": [SECRET],
    "base_url": APP,
}


@pytest.mark.parametrize(
    ("overrides", "code"),
    [
        pytest.param({"issuer": ""}, "missing_setting", id="no-issuer"),
        pytest.param({"issuer": "http://idp.example"}, "insecure_issuer", id="http-issuer"),
        pytest.param({"base_url": "ftp://x"}, "invalid_base_url", id="bad-base-url"),
        pytest.param({"base_url": "https://app.example/?q"}, "invalid_base_url", id="base-query"),
        pytest.param({"secrets": []}, "no_secrets", id="no-secrets"),
        pytest.param({"secrets": SECRET}, "no_secrets", id="secret-not-a-list"),
        pytest.param({"secrets": ["short"]}, "weak_secret", id="weak-secret"),
        pytest.param({"scope": ("profile",)}, "invalid_scope", id="scope-without-openid"),
        pytest.param({"response_mode": "fragment"}, "invalid_response_mode", id="fragment"),
        pytest.param({"auth_method": "magic"}, "invalid_auth_method", id="auth-method"),
        pytest.param({"authorization_params": {"redirect_uri": "x"}}, "reserved_parameter",
                     id="param-redirect-uri"),
        pytest.param({"login_params": {"state"}}, "reserved_parameter", id="login-param-state"),
        pytest.param({"login_path": "login"}, "invalid_path", id="relative-path"),
        pytest.param({"login_path": "//evil"}, "invalid_path", id="double-slash-path"),
        pytest.param({"logout_path": "/login"}, "invalid_path", id="duplicate-route"),
        pytest.param({"callback_path": None}, "invalid_path", id="login-without-callback"),
        pytest.param({"logout_methods": {"DELETE"}}, "invalid_setting", id="logout-method"),
        pytest.param({"max_transactions": 0}, "invalid_setting", id="no-transactions"),
        pytest.param({"transaction_ttl": 5}, "invalid_setting", id="tiny-transaction-ttl"),
        pytest.param({"max_age": -1}, "invalid_setting", id="negative-max-age"),
        pytest.param({"cookie_secure": "yes"}, "invalid_cookie_secure", id="cookie-secure"),
        pytest.param({"leeway": -1}, "invalid_setting", id="negative-leeway"),
        pytest.param({"client_secret": None, "auth_method": "client_secret_basic"},
                     "missing_client_secret", id="basic-without-secret"),
    ],
)  # fmt: skip
def test_bad_settings_fail_at_startup(overrides: dict[str, Any], code: str) -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        raise AssertionError

    with pytest.raises(ConfigurationError) as caught:
        OIDCAuth(app, **{**BASE, **overrides})
    assert caught.value.code == code


def test_config_is_frozen_and_normalised() -> None:
    config = SignInConfig(**{**BASE, "scope": "openid email", "base_url": APP + "/"})
    assert config.scope == ("openid", "email")
    assert config.base_url == APP
    assert config.redirect_uri == f"{APP}/callback"
    assert config.auth_method == "client_secret_basic"
    assert SignInConfig(**{**BASE, "client_secret": None}).auth_method == "none"
    with pytest.raises(AttributeError):
        config.client_id = "other"  # type: ignore[misc]
    shown = repr(config)
    for hidden in ("rp-secret", SECRET, "client_secret=", "secrets="):
        assert hidden not in shown
    assert "client_id='rp'" in shown  # the repr is not empty: only the secrets are left out


def test_base_url_path_prefix() -> None:
    config = SignInConfig(**{**BASE, "base_url": "https://app.example/portal"})
    assert config.redirect_uri == "https://app.example/portal/callback"
    assert config.origin == "https://app.example"


def test_warns_about_plain_http_outside_loopback() -> None:
    with pytest.warns(SignInWarning):
        SignInConfig(**{**BASE, "base_url": "http://app.example"})


def test_from_env() -> None:
    environ = {
        "OIDC_ISSUER": ISSUER,
        "OIDC_CLIENT_ID": "rp",
        "OIDC_CLIENT_SECRET": "rp-secret",
        "OIDC_SECRETS": f"{SECRET}, {SECRET}x",
        "OIDC_BASE_URL": APP,
        "OIDC_SCOPE": "openid profile",
        "OIDC_RESPONSE_MODE": "form_post",
        "OIDC_FETCH_USERINFO": "true",
        "OIDC_PROTECT": "/account /admin",
    }
    config = SignInConfig.from_env(environ, public_paths=["/account/help"])
    assert config.secrets == (SECRET, SECRET + "x")
    assert config.scope == ("openid", "profile")
    assert config.response_mode == "form_post"
    assert config.fetch_userinfo is True
    assert config.protect == ("/account", "/admin")
    assert config.public_paths == ("/account/help",)
    assert set(ENV_VARIABLES) >= set(environ)


@pytest.mark.parametrize(
    ("environ", "code"),
    [
        pytest.param({}, "missing_setting", id="empty"),
        pytest.param({"OIDC_FETCH_USERINFO": "maybe"}, "invalid_setting", id="bad-bool"),
    ],
)
def test_from_env_errors(environ: dict[str, str], code: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        SignInConfig.from_env(environ)
    assert caught.value.code == code


async def test_oidcauth_from_env(harness: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {
        "OIDC_ISSUER": ISSUER, "OIDC_CLIENT_ID": "rp", "OIDC_CLIENT_SECRET": "rp-secret",
        "OIDC_SECRETS": SECRET, "OIDC_BASE_URL": APP,
    }.items():  # fmt: skip
        monkeypatch.setenv(name, value)
    from ._support import starlette_app

    app = OIDCAuth.from_env(starlette_app(), http_client=harness.op_http, now=harness.clock)
    async with harness.client(app) as client:
        response = await harness.sign_in(client, "/login?return_to=/me")
        assert response.json()["sub"] == "alice"


async def test_add_middleware_with_keywords(harness: Harness) -> None:
    from ._support import starlette_app

    web = starlette_app()
    web.add_middleware(OIDCAuth, **{**BASE, "http_client": harness.op_http, "now": harness.clock})
    async with harness.client(web) as client:
        response = await harness.sign_in(client, "/login?return_to=/me")
        assert response.json()["sub"] == "alice"


def test_config_and_keywords_are_exclusive() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        raise AssertionError

    with pytest.raises(ConfigurationError):
        OIDCAuth(app, SignInConfig(**BASE), client_id="x")
