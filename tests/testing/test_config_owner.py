"""Which client *is* which API (``DevAPI.owner_client_id``): defaults, files, validation."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
from pathlib import Path
from typing import Any

import pytest

from oidc_asgi.errors import ConfigurationError
from oidc_asgi.testing import DevAPI, DevClient, DevProviderConfig

GATEWAY_API = "http://127.0.0.1:8002/api"
WORKER = DevClient(client_id="worker", client_secret="s", grant_types=("client_credentials",))


def test_default_gateway_owns_its_api_and_nothing_else_is_owned() -> None:
    config = DevProviderConfig.default()
    assert [a.identifier for a in config.apis_owned_by("gateway")] == [GATEWAY_API]
    assert [a.identifier for a in config.apis if a.owner_client_id is not None] == [GATEWAY_API]
    assert config.apis_owned_by("webapp") == ()
    assert config.apis_owned_by("nobody") == ()


def test_owner_survives_a_json_file_round_trip(tmp_path: Path) -> None:
    api = DevAPI(identifier="urn:worker", scopes=("run",), owner_client_id="worker")
    original = DevProviderConfig(clients=(WORKER,), apis=(api, DevAPI(identifier="urn:free")))
    data = original.to_mapping()
    assert [a["owner_client_id"] for a in data["apis"]] == ["worker", None]
    path = tmp_path / "op.json"
    path.write_text(json.dumps(data))
    loaded = DevProviderConfig.from_file(path)
    assert loaded == original
    assert loaded.apis_owned_by("worker") == (api,)


def test_default_set_json_round_trip_keeps_the_gateway_owner(tmp_path: Path) -> None:
    path = tmp_path / "op.json"
    path.write_text(json.dumps(DevProviderConfig.default().to_mapping()))
    api = DevProviderConfig.from_file(path).api(GATEWAY_API)
    assert api is not None
    assert api.owner_client_id == "gateway"


def test_owner_in_a_toml_file(tmp_path: Path) -> None:
    """TOML has no null: an API without an owner simply leaves the key out."""
    path = tmp_path / "op.toml"
    path.write_text(
        '[[clients]]\nclient_id = "worker"\nclient_secret = "s"\n'
        'grant_types = ["client_credentials"]\n'
        '[[apis]]\nidentifier = "urn:worker"\nscopes = ["run"]\nowner_client_id = "worker"\n'
        '[[apis]]\nidentifier = "urn:free"\n'
    )
    if importlib.util.find_spec("tomllib") is None:  # Python 3.10
        with pytest.raises(ConfigurationError, match=r"Python 3\.11"):
            DevProviderConfig.from_file(path)
        return
    config = DevProviderConfig.from_file(path)
    assert [a.owner_client_id for a in config.apis] == ["worker", None]
    assert [a.identifier for a in config.apis_owned_by("worker")] == ["urn:worker"]


def test_owner_outside_the_clients_is_allowed_and_owns_for_nobody() -> None:
    """Swapping the clients but keeping the default APIs must keep working."""
    config = dataclasses.replace(DevProviderConfig.default(), clients=(WORKER,))
    assert config.client("gateway") is None
    assert [a.identifier for a in config.apis_owned_by("gateway")] == [GATEWAY_API]
    assert config.apis_owned_by("worker") == ()


SPA = DevClient(client_id="spa", token_endpoint_auth_method="none")

BAD: list[tuple[str, Any]] = [
    ("empty-owner", lambda: DevAPI(identifier="urn:a", owner_client_id="")),
    (
        "public-client-owner",
        lambda: DevProviderConfig(
            clients=(SPA,), apis=(DevAPI(identifier="urn:a", owner_client_id="spa"),)
        ),
    ),
    (
        "public-client-owner-from-mapping",
        lambda: DevProviderConfig.from_mapping(
            {
                "clients": [{"client_id": "spa", "token_endpoint_auth_method": "none"}],
                "apis": [{"identifier": "urn:a", "owner_client_id": "spa"}],
            }
        ),
    ),
    (
        "owner-typo-in-mapping",
        lambda: DevProviderConfig.from_mapping({"apis": [{"identifier": "urn:a", "owner": "x"}]}),
    ),
]


@pytest.mark.parametrize("build", [b for _, b in BAD], ids=[n for n, _ in BAD])
def test_invalid_owner_fails_at_construction(build: Any) -> None:
    with pytest.raises(ConfigurationError) as info:
        build()
    assert info.value.code == "dev_provider_config"
