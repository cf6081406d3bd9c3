"""``python -m oidc_asgi.testing [--host 127.0.0.1] [--port 9000] [--config file.json]``.

Serves the development provider with uvicorn and prints its issuer, clients and users.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections.abc import Sequence
from urllib.parse import urlsplit

from oidc_asgi.testing._config import DevProviderConfig


def describe(config: DevProviderConfig) -> str:
    """A human summary of what the provider serves (printed at startup)."""
    lines = [f"Development OpenID Provider: {config.issuer}", ""]
    lines.append(f"  discovery  {config.issuer.rstrip('/')}/.well-known/openid-configuration")
    lines.append("")
    lines.append("Clients:")
    for client in config.clients:
        secret = client.client_secret or "(public)"
        lines.append(
            f"  {client.client_id:10} secret={secret}  auth={client.token_endpoint_auth_method}"
        )
        lines.append(f"  {'':10} grants={', '.join(client.grant_types)}")
        for uri in client.redirect_uris:
            note = " (any port)" if client.application_type == "native" else ""
            lines.append(f"  {'':10} redirect_uri={uri}{note}")
        for uri in client.post_logout_redirect_uris:
            lines.append(f"  {'':10} post_logout_redirect_uri={uri}")
        if client.backchannel_logout_uri:
            lines.append(f"  {'':10} backchannel_logout_uri={client.backchannel_logout_uri}")
    lines.append("")
    lines.append("APIs:")
    for api in config.apis:
        lines.append(
            f"  {api.identifier}  scopes={' '.join(api.scopes)}  tokens={api.token_format}"
        )
    lines.append("")
    users = ", ".join(
        f"{u.username}" + (" (password set)" if u.password else " (any password)")
        for u in config.users
    )
    lines.append(f"Users: {users}" + ("; any other username too" if config.allow_any_user else ""))
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m oidc_asgi.testing", description="Serve the development OpenID Provider."
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface (default 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port (default: the issuer's, else 9000)")
    parser.add_argument("--config", help="JSON configuration file (TOML on Python 3.11+)")
    parser.add_argument("--issuer", help="issuer URL (default http://HOST:PORT)")
    parser.add_argument(
        "--print-config", action="store_true", help="print the configuration and exit"
    )
    return parser.parse_args(argv)


def build_config(args: argparse.Namespace) -> DevProviderConfig:
    """The configuration to serve: ``--issuer``, else ``--port``, else the file's issuer."""
    config = (
        DevProviderConfig.from_file(args.config) if args.config else DevProviderConfig.default()
    )
    if args.issuer:
        return dataclasses.replace(config, issuer=args.issuer)
    if args.port is not None:
        return dataclasses.replace(config, issuer=f"http://{args.host}:{args.port}")
    return config


def serve_port(args: argparse.Namespace, config: DevProviderConfig) -> int:
    if args.port is not None:
        return int(args.port)
    return urlsplit(config.issuer).port or 9000


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    config = build_config(args)
    print(describe(config), flush=True)
    if args.print_config:
        return 0
    import uvicorn

    from oidc_asgi.testing.provider import DevProvider

    port = serve_port(args, config)
    uvicorn.run(DevProvider(config), host=args.host, port=port, log_level="info")
    return 0


if __name__ == "__main__":
    sys.exit(main())
