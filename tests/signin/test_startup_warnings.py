"""SignInConfig's startup doctor: settings that work but will likely hurt (SignInWarning)."""

from __future__ import annotations

import warnings
from typing import Any

import pytest

from oidc_asgi.sessions import MemoryStore
from oidc_asgi.signin import SignInConfig, SignInWarning

from ._support import APP, ISSUER, SECRET

BASE: dict[str, Any] = {
    "issuer": ISSUER,
    "client_id": "rp",
    "client_secret": "rp-secret",
    "secrets": [SECRET],
    "base_url": APP,
}
BIG = {"scope": "openid profile email offline_access", "audience": "https://api.example"}


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        pytest.param({"base_url": "http://app.example"}, "plain http", id="http-base-url"),
        pytest.param({"base_url": "http://app.example", "cookie_secure": True},
                     "Secure cookies over http", id="secure-cookies-over-http"),
        pytest.param({"base_url": "http://app.example", "response_mode": "form_post"},
                     "form_post over plain http", id="form-post-over-http"),
        pytest.param({"base_url": "http://localhost:8000", "response_mode": "form_post"},
                     "another site over http", id="form-post-cross-site-localhost"),
        pytest.param(BIG, "over one 4000-byte cookie", id="offline-access-and-api-audience"),
        pytest.param({**BIG, "audience": None,
                      "authorization_params": {"resource": "https://api.example"}},
                     "over one 4000-byte cookie", id="offline-access-and-resource"),
    ],
)  # fmt: skip
def test_warns_at_startup(overrides: dict[str, Any], match: str) -> None:
    with pytest.warns(SignInWarning) as record:  # plain http also gets its general warning
        SignInConfig(**{**BASE, **overrides})
    assert any(match in str(w.message) for w in record), [str(w.message) for w in record]


@pytest.mark.parametrize(
    "overrides",
    [
        pytest.param({}, id="defaults-on-loopback"),
        pytest.param({"base_url": "https://app.example", "cookie_secure": True}, id="https"),
        pytest.param({"response_mode": "form_post"}, id="form-post-same-site-loopback"),
        pytest.param({"base_url": "http://localhost:8000", "response_mode": "form_post",
                      "cookie_secure": True}, id="form-post-localhost-secure"),
        pytest.param({"scope": "openid profile email offline_access"}, id="offline-access-only"),
        pytest.param({"audience": "https://api.example"}, id="api-audience-only"),
        pytest.param({**BIG, "session_store": MemoryStore()}, id="big-session-server-side"),
    ],
)  # fmt: skip
def test_quiet_when_fine(overrides: dict[str, Any]) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error", SignInWarning)
        SignInConfig(**{**BASE, **overrides})
