"""Configuration: defaults the demos rely on, files, and validation at construction."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

import pytest

from oidc_asgi.errors import ConfigurationError
from oidc_asgi.testing import DevAPI, DevClient, DevProviderConfig, DevUser


def test_default_set_matches_the_demos() -> None:
    config = DevProviderConfig.default()
    assert config.issuer == "http://127.0.0.1:9000"
    assert [c.client_id for c in config.clients] == [
        "webapp", "spa", "native", "daemon", "cli", "gateway",
    ]  # fmt: skip
    webapp = config.client("webapp")
    assert webapp is not None
    assert webapp.token_endpoint_auth_method == "client_secret_basic"
    assert webapp.redirect_uris == ("http://127.0.0.1:8000/callback",)
    assert webapp.post_logout_redirect_uris == (
        "http://127.0.0.1:8000/",
        "http://127.0.0.1:8000/logged-out",  # OIDCAuth's landing after RP-initiated logout
    )
    assert webapp.backchannel_logout_uri == "http://127.0.0.1:8000/backchannel-logout"
    spa, native = config.client("spa"), config.client("native")
    assert spa is not None
    assert spa.is_public
    assert spa.redirect_uris == ("http://127.0.0.1:8003/",)
    assert native is not None
    assert native.application_type == "native"
    api = config.api("http://127.0.0.1:8001/api")
    assert api is not None
    assert api.scopes == ("read:messages", "write:messages")
    assert [a.token_format for a in config.apis].count("opaque") == 1
    assert {u.username for u in config.users} == {"alice", "bob"}
    assert config.client("nobody") is None
    assert config.user("nobody") is None


def test_json_file_round_trip(tmp_path: Path) -> None:
    original = DevProviderConfig.default()
    path = tmp_path / "op.json"
    path.write_text(json.dumps(original.to_mapping()))
    assert DevProviderConfig.from_file(path) == original


def test_toml_file(tmp_path: Path) -> None:
    """TOML is read where ``tomllib`` exists (3.11+); 3.10 refuses it with a clear error."""
    path = tmp_path / "op.toml"
    path.write_text(
        'issuer = "http://127.0.0.1:9100"\nallow_any_user = true\n'
        '[[clients]]\nclient_id = "app"\nclient_secret = "s"\n'
        'redirect_uris = ["http://127.0.0.1:8000/cb"]\n'
        '[[apis]]\nidentifier = "urn:api"\nscopes = ["read"]\n'
    )
    if importlib.util.find_spec("tomllib") is None:  # Python 3.10
        with pytest.raises(ConfigurationError, match=r"Python 3\.11"):
            DevProviderConfig.from_file(path)
        return
    config = DevProviderConfig.from_file(path)
    assert config.issuer == "http://127.0.0.1:9100"
    assert config.allow_any_user
    assert config.clients[0].redirect_uris == ("http://127.0.0.1:8000/cb",)
    assert config.apis[0].scopes == ("read",)


def test_user_sub_defaults_to_username() -> None:
    assert DevUser(username="carol").sub == "carol"
    assert DevUser(username="carol", sub="u-1").sub == "u-1"


BAD: list[tuple[str, Any]] = [
    ("secret-method-without-secret", lambda: DevClient(client_id="a")),
    (
        "private-key-jwt-without-jwks",
        lambda: DevClient(client_id="a", token_endpoint_auth_method="private_key_jwt"),
    ),
    ("unknown-grant", lambda: DevClient(client_id="a", client_secret="s", grant_types=("x",))),
    ("empty-client-id", lambda: DevClient(client_id="", client_secret="s")),
    ("opaque-typo", lambda: DevAPI(identifier="urn:a", token_format="paseto")),  # type: ignore[arg-type]
    ("relative-issuer", lambda: DevProviderConfig(issuer="/op")),
    ("issuer-with-query", lambda: DevProviderConfig(issuer="http://127.0.0.1:9000/?a=b")),
    (
        "duplicate-client",
        lambda: DevProviderConfig(clients=(DevClient(client_id="a", client_secret="s"),) * 2),
    ),
    ("unknown-key-in-mapping", lambda: DevProviderConfig.from_mapping({"colour": "blue"})),
]


@pytest.mark.parametrize("build", [b for _, b in BAD], ids=[n for n, _ in BAD])
def test_invalid_configuration_fails_at_construction(build: Any) -> None:
    with pytest.raises(ConfigurationError) as info:
        build()
    assert info.value.code == "dev_provider_config"
