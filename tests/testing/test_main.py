"""``python -m oidc_asgi.testing``: arguments, configuration and the printed summary."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from oidc_asgi.testing import DevProviderConfig
from oidc_asgi.testing.__main__ import build_config, describe, main, parse_args, serve_port


def test_summary_lists_issuer_clients_secrets_and_users() -> None:
    text = describe(DevProviderConfig.default())
    assert "http://127.0.0.1:9000" in text
    for needle in (
        "webapp", "webapp-secret", "http://127.0.0.1:8000/callback", "spa", "(public)",
        "native", "(any port)", "daemon", "cli", "gateway", "alice", "bob",
        "http://127.0.0.1:8004/api", "tokens=opaque",
    ):  # fmt: skip
        assert needle in text


def test_port_sets_issuer() -> None:
    args = parse_args(["--port", "9100"])
    config = build_config(args)
    assert config.issuer == "http://127.0.0.1:9100"
    assert serve_port(args, config) == 9100


def test_defaults() -> None:
    args = parse_args([])
    config = build_config(args)
    assert config.issuer == "http://127.0.0.1:9000"
    assert serve_port(args, config) == 9000


def test_config_file_issuer_and_explicit_issuer(tmp_path: Path) -> None:
    path = tmp_path / "op.json"
    data = DevProviderConfig.default(issuer="http://127.0.0.1:9200").to_mapping()
    path.write_text(json.dumps(data))
    args = parse_args(["--config", str(path)])
    config = build_config(args)
    assert config.issuer == "http://127.0.0.1:9200"
    assert serve_port(args, config) == 9200
    explicit = build_config(parse_args(["--config", str(path), "--issuer", "http://127.0.0.1:1/x"]))
    assert explicit.issuer == "http://127.0.0.1:1/x"


def test_print_config_exits_without_serving(capsys: object) -> None:
    assert main(["--print-config", "--port", "9300"]) == 0


def test_module_runs() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "oidc_asgi.testing", "--print-config"],
        capture_output=True, text=True, check=True, timeout=60,
    )  # fmt: skip
    assert "Development OpenID Provider: http://127.0.0.1:9000" in result.stdout
