"""Demo settings: defaults, environment and flags, and bad values stopping a demo (exit 2)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from demo_apps._settings import DEMOS, DemoName, DemoSettings, SettingsError, load

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("name", "client_id", "port", "audience"),
    [
        pytest.param("webapp", "webapp", 8000, "http://127.0.0.1:8001/api", id="webapp"),
        pytest.param("api", "", 8001, "http://127.0.0.1:8001/api", id="api"),
        pytest.param("gateway", "gateway", 8002, "http://127.0.0.1:8002/api", id="gateway"),
        pytest.param("spa", "spa", 8003, "http://127.0.0.1:8001/api", id="spa"),
        pytest.param("native", "native", 0, "http://127.0.0.1:8001/api", id="native"),
        pytest.param("daemon", "daemon", 0, "http://127.0.0.1:8001/api", id="daemon"),
        pytest.param("device", "cli", 0, "http://127.0.0.1:8001/api", id="device"),
    ],
)
def test_defaults_point_at_the_development_provider(
    name: DemoName, client_id: str, port: int, audience: str
) -> None:
    settings = load(name, [], environ={})
    assert settings.issuer == "http://127.0.0.1:9000"
    assert settings.client_id == client_id
    assert settings.port == port
    assert settings.api_audience == audience
    assert settings.api_url == "http://127.0.0.1:8001"


def test_every_demo_has_defaults() -> None:
    assert {load(name, [], environ={}).demo for name in DEMOS} == set(DEMOS)


def test_flag_wins_over_environment_wins_over_default() -> None:
    env = {"PORT": "9100", "OIDC_RESPONSE_MODE": "form_post", "SESSION_STORE": "cookie"}
    settings = load("webapp", ["--port", "9200"], environ=env)
    assert settings.port == 9200
    assert settings.app_base_url == "http://127.0.0.1:9200"
    assert settings.response_mode == "form_post"
    assert settings.session_store == "cookie"
    assert len(settings.session_secret) >= 32  # a fresh random key when none is set


def test_lists_and_modes_from_the_environment() -> None:
    env = {"API_SCOPES": "read:summary  extra", "OBO_MODE": "entra", "API_PATH": "/api/summary"}
    assert load("device", [], environ=env).api_scopes == ("read:summary", "extra")
    assert load("gateway", [], environ=env).obo_mode == "entra"
    assert load("daemon", [], environ=env).api_path == "/api/summary"


def test_an_empty_secret_makes_a_public_client_explicit() -> None:
    assert load("device", [], environ={"OIDC_CLIENT_SECRET": ""}).client_secret == ""
    with pytest.raises(SettingsError) as caught:
        load("daemon", [], environ={"OIDC_CLIENT_SECRET": ""})
    assert caught.value.variable == "OIDC_CLIENT_SECRET"


@pytest.mark.parametrize(
    ("name", "env", "variable"),
    [
        pytest.param("api", {"OIDC_ISSUER": "not a url"}, "OIDC_ISSUER", id="issuer-not-url"),
        pytest.param(
            "api",
            {"OIDC_ISSUER": "http://login.example.com"},
            "OIDC_ISSUER",
            id="issuer-plain-http",
        ),
        pytest.param("api", {"OIDC_ISSUER": "https://x/?a=1"}, "OIDC_ISSUER", id="issuer-query"),
        pytest.param("api", {"PORT": "eighty"}, "PORT", id="port-not-number"),
        pytest.param("api", {"PORT": "70000"}, "PORT", id="port-too-large"),
        pytest.param("webapp", {"PORT": "0"}, "PORT", id="port-zero-for-server"),
        pytest.param("webapp", {"SESSION_SECRET": "short"}, "SESSION_SECRET", id="short-secret"),
        pytest.param("webapp", {"SESSION_STORE": "disk"}, "SESSION_STORE", id="unknown-store"),
        pytest.param(
            "webapp", {"OIDC_RESPONSE_MODE": "fragment"}, "OIDC_RESPONSE_MODE", id="fragment-mode"
        ),
        pytest.param("webapp", {"APP_BASE_URL": "app.example"}, "APP_BASE_URL", id="base-url"),
        pytest.param("gateway", {"OBO_MODE": "saml"}, "OBO_MODE", id="unknown-obo-mode"),
        pytest.param(
            "gateway", {"DOWNSTREAM_API_URL": "ftp://x"}, "DOWNSTREAM_API_URL", id="downstream-url"
        ),
        pytest.param("daemon", {"API_URL": "127.0.0.1:8001"}, "API_URL", id="api-url-no-scheme"),
        pytest.param("daemon", {"API_PATH": "api/messages"}, "API_PATH", id="relative-api-path"),
        pytest.param("api", {"SPA_ORIGIN": "http://127.0.0.1:8003/"}, "SPA_ORIGIN", id="spa-path"),
    ],
)
def test_bad_settings_name_the_variable(name: DemoName, env: dict[str, str], variable: str) -> None:
    with pytest.raises(SettingsError) as caught:
        load(name, [], environ=env)
    assert caught.value.variable == variable
    assert caught.value.code == "invalid_demo_setting"
    assert str(caught.value).startswith(variable + " ")


def test_secrets_are_never_in_messages() -> None:
    with pytest.raises(SettingsError) as caught:
        DemoSettings.for_demo("webapp", session_secret="tiny-secret-value")
    assert "tiny-secret-value" not in str(caught.value)


def _run(module: str, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    environ = {**os.environ, **env, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=ROOT,
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(
    ("module", "args", "env", "expected"),
    [
        pytest.param(
            "demo_apps.api", (), {"OIDC_ISSUER": "http://login.example.com"},
            "demo_apps.api: bad setting: OIDC_ISSUER must use https", id="api-bad-issuer",
        ),
        pytest.param(
            "demo_apps.daemon", (), {"API_URL": "nowhere"},
            "demo_apps.daemon: bad setting: API_URL must be an absolute", id="daemon-bad-api-url",
        ),
        pytest.param(
            "demo_apps.webapp", ("--session-store", "disk"), {},
            "demo_apps.webapp: bad setting: SESSION_STORE", id="webapp-bad-flag-value",
        ),
    ],
)  # fmt: skip
def test_a_bad_setting_stops_the_demo_with_one_line(
    module: str, args: tuple[str, ...], env: dict[str, str], expected: str
) -> None:
    result = _run(module, *args, env=env)
    assert result.returncode == 2
    assert result.stderr.startswith(expected), result.stderr
    assert result.stderr.count("\n") == 1
    assert "Traceback" not in result.stderr
    assert result.stdout == ""
