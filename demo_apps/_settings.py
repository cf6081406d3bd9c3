"""Settings shared by every demo: environment variables, command-line flags, defaults, checks.

Each setting is an environment variable and a flag (``OIDC_ISSUER`` is ``--oidc-issuer``); a flag
wins over the variable, the variable over the default. Defaults point at the bundled development
provider (``python -m oidc_asgi.testing``) and the ports of ``python -m demo_apps``. Everything is
checked before a demo starts: a bad value stops it with one clear line and exit code 2.

Example::

    settings = load("api", ["--port", "9001"])
    assert settings.port == 9001
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import sys
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, NoReturn, TextIO, get_args
from urllib.parse import urlsplit

from oidc_asgi import ConfigurationError

__all__ = [
    "DEMOS",
    "VARIABLES",
    "DemoName",
    "DemoSettings",
    "SettingsError",
    "fail",
    "load",
    "print_answer",
    "run_cli",
    "serve",
]

DemoName = Literal["webapp", "api", "gateway", "spa", "native", "daemon", "device"]
ResponseMode = Literal["query", "form_post"]
OboMode = Literal["token-exchange", "entra"]

DEMOS: tuple[DemoName, ...] = get_args(DemoName)
WEB_DEMOS: tuple[DemoName, ...] = ("webapp", "api", "gateway", "spa")

ISSUER = "http://127.0.0.1:9000"
API_AUDIENCE = "http://127.0.0.1:8001/api"
API_URL = "http://127.0.0.1:8001"
GATEWAY_AUDIENCE = "http://127.0.0.1:8002/api"
SPA_ORIGIN = "http://127.0.0.1:8003"

# The development provider's default clients (src/oidc_asgi/testing/README.md).
_CLIENTS: Mapping[str, tuple[str, str]] = {
    "webapp": ("webapp", "webapp-secret"),
    "api": ("", ""),
    "gateway": ("gateway", "gateway-secret"),
    "spa": ("spa", ""),
    "native": ("native", ""),
    "daemon": ("daemon", "daemon-secret"),
    "device": ("cli", ""),
}
_PORTS: Mapping[str, int] = {"webapp": 8000, "api": 8001, "gateway": 8002, "spa": 8003}

_ALL = frozenset(DEMOS)
_CALLERS = frozenset({"webapp", "spa", "native", "daemon", "device"})
_CLIS = frozenset({"native", "daemon", "device"})

#: Every variable: (setting name, demos that read it, help text).
VARIABLES: Mapping[str, tuple[str, frozenset[str], str]] = {
    "OIDC_ISSUER": ("issuer", _ALL, "issuer URL of the OpenID Provider"),
    "OIDC_CLIENT_ID": ("client_id", _ALL - {"api"}, "this demo's client id"),
    "OIDC_CLIENT_SECRET": ("client_secret", _ALL - {"api"}, "client secret (empty: public)"),
    "API_AUDIENCE": ("api_audience", _ALL, "identifier (audience) of the protected API"),
    "API_URL": ("api_url", _CALLERS, "base URL of the API to call"),
    "API_SCOPES": ("api_scopes", _CALLERS, "API scopes to ask for, space-separated"),
    "API_PATH": ("api_path", _CLIS, "path the command-line demos call"),
    "PORT": ("port", _ALL - {"daemon", "device"}, "port to listen on (native: loopback, 0=any)"),
    "APP_BASE_URL": ("app_base_url", frozenset({"webapp", "spa"}), "public URL of this app"),
    "SESSION_SECRET": ("session_secret", frozenset({"webapp"}), "session key, >= 32 chars"),
    "SESSION_STORE": (
        "session_store",
        frozenset({"webapp"}),
        "memory (default), cookie, redis://...",
    ),
    "OIDC_RESPONSE_MODE": ("response_mode", frozenset({"webapp"}), "query or form_post"),
    "DOWNSTREAM_AUDIENCE": ("downstream_audience", frozenset({"gateway"}), "downstream API id"),
    "DOWNSTREAM_API_URL": ("downstream_api_url", frozenset({"gateway"}), "downstream API URL"),
    "OBO_MODE": ("obo_mode", frozenset({"gateway"}), "token-exchange or entra"),
    "SPA_ORIGIN": ("spa_origin", frozenset({"api"}), "origin the API allows (CORS)"),
}

_SECRET_VARIABLES = frozenset({"OIDC_CLIENT_SECRET", "SESSION_SECRET"})


class SettingsError(ConfigurationError):
    """A demo setting is wrong; ``variable`` names it (the message never holds a secret).

    Example::

        raise SettingsError("PORT", "must be a number from 1 to 65535")
    """

    def __init__(self, variable: str, problem: str) -> None:
        super().__init__(f"{variable} {problem}", code="invalid_demo_setting")
        self.variable = variable


@dataclass(frozen=True, kw_only=True)
class DemoSettings:
    """What one demo needs to run, checked at construction (see ``VARIABLES``).

    Build it with ``load(name)`` (environment and flags) or, in tests and other programs,
    with ``DemoSettings.for_demo(name, **changes)`` (the defaults of ``name``: the development
    provider's client for it, its port).

    Example::

        settings = DemoSettings.for_demo("webapp", response_mode="form_post")
    """

    demo: DemoName
    issuer: str = ISSUER
    client_id: str = ""
    client_secret: str = ""
    api_audience: str = API_AUDIENCE
    api_url: str = API_URL
    api_scopes: tuple[str, ...] = ("read:messages", "write:messages")
    api_path: str = "/api/messages"
    port: int = 0
    app_base_url: str = ""
    session_secret: str = ""
    session_store: str = "memory"
    response_mode: ResponseMode = "query"
    downstream_audience: str = API_AUDIENCE
    downstream_api_url: str = API_URL
    obo_mode: OboMode = "token-exchange"
    spa_origin: str = SPA_ORIGIN

    def __post_init__(self) -> None:
        if self.demo not in DEMOS:
            raise SettingsError("demo", f"must be one of {', '.join(DEMOS)}")
        _url("OIDC_ISSUER", self.issuer)
        if self.demo != "api" and not self.client_id:
            raise SettingsError("OIDC_CLIENT_ID", "is required")
        if self.demo in ("webapp", "gateway", "daemon") and not self.client_secret:
            raise SettingsError("OIDC_CLIENT_SECRET", f"is required by the {self.demo} demo")
        if not self.api_audience:
            raise SettingsError("API_AUDIENCE", "is required")
        _url("API_URL", self.api_url)
        if not self.api_path.startswith("/") or "//" in self.api_path:
            raise SettingsError("API_PATH", "must be a path starting with /")
        scopes: object = self.api_scopes
        if not isinstance(scopes, tuple) or not all(isinstance(s, str) and s for s in scopes):
            raise SettingsError("API_SCOPES", "must be scope names separated by spaces")
        if isinstance(self.port, bool) or not isinstance(self.port, int):
            raise SettingsError("PORT", "must be a whole number")
        low = 0 if self.demo in ("native", "daemon", "device") else 1  # 0: any free port
        if not low <= self.port <= 65535:
            raise SettingsError("PORT", f"must be a number from {low} to 65535")
        if not self.app_base_url and self.demo in ("webapp", "spa"):
            object.__setattr__(self, "app_base_url", f"http://127.0.0.1:{self.port}")
        if self.app_base_url:
            _url("APP_BASE_URL", self.app_base_url)
            object.__setattr__(self, "app_base_url", self.app_base_url.rstrip("/"))
        if self.demo == "webapp":
            if not self.session_secret:
                # A fresh key per start: sessions end when the demo restarts. Set
                # SESSION_SECRET to keep them, or to share them between processes.
                object.__setattr__(self, "session_secret", secrets.token_urlsafe(32))
            if len(self.session_secret.encode()) < 32:
                raise SettingsError("SESSION_SECRET", "must be at least 32 characters long")
        store = self.session_store
        if store not in ("cookie", "memory") and not store.startswith(("redis://", "rediss://")):
            raise SettingsError("SESSION_STORE", "must be memory, cookie or a redis:// URL")
        if self.response_mode not in get_args(ResponseMode):
            raise SettingsError("OIDC_RESPONSE_MODE", "must be query or form_post")
        if self.obo_mode not in get_args(OboMode):
            raise SettingsError("OBO_MODE", "must be token-exchange or entra")
        if not self.downstream_audience:
            raise SettingsError("DOWNSTREAM_AUDIENCE", "is required")
        _url("DOWNSTREAM_API_URL", self.downstream_api_url)
        origin = urlsplit(self.spa_origin)
        if origin.scheme not in ("http", "https") or not origin.netloc or origin.path:
            raise SettingsError("SPA_ORIGIN", "must be an origin such as http://127.0.0.1:8003")

    @classmethod
    def for_demo(cls, demo: DemoName, **changes: Any) -> DemoSettings:
        """The default settings of ``demo`` with ``changes`` applied (checked).

        Example::

            settings = DemoSettings.for_demo("gateway", obo_mode="entra")
        """
        if demo not in DEMOS:
            raise SettingsError("demo", f"must be one of {', '.join(DEMOS)}")
        return cls(demo=demo, **{**_defaults(demo), **changes})

    def api(self, path: str) -> str:
        """The absolute URL of an API ``path``.

        Example::

            url = settings.api("/api/messages")
        """
        return self.api_url.rstrip("/") + path


def _url(variable: str, value: str) -> None:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
        raise SettingsError(
            variable, f"must be an absolute http(s) URL without query or fragment, not {value!r}"
        )
    try:
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError:
        raise SettingsError(variable, f"has an invalid port: {value!r}") from None
    host = parts.hostname
    if parts.scheme == "http" and host not in ("127.0.0.1", "localhost", "::1"):
        raise SettingsError(
            variable, f"must use https (plain http only for 127.0.0.1/localhost): {value!r}"
        )


def _defaults(name: DemoName) -> dict[str, Any]:
    client_id, secret = _CLIENTS[name]
    values: dict[str, Any] = {"client_id": client_id, "client_secret": secret}
    values["port"] = _PORTS.get(name, 0)
    if name == "gateway":
        values["api_audience"] = GATEWAY_AUDIENCE
    return values


def _parser(name: DemoName) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=f"python -m demo_apps.{name}",
        description=f"The {name} demo of oidc-asgi. Every flag is also an environment variable.",
    )
    for variable, (setting, used_by, text) in VARIABLES.items():
        if name in used_by:
            flag = "--" + variable.lower().replace("_", "-")
            parser.add_argument(flag, dest=setting, metavar=variable, help=text)
    return parser


def load(
    name: DemoName,
    argv: Sequence[str] | None = None,
    environ: Mapping[str, str] | None = None,
) -> DemoSettings:
    """Read the settings of demo ``name`` from flags (``argv``) over ``environ`` over defaults.

    Raises ``SettingsError`` for a bad value; ``argparse`` exits with code 2 for a bad flag.

    Example::

        settings = load("gateway", ["--obo-mode", "entra"], environ={})
    """
    env = os.environ if environ is None else environ
    args = vars(_parser(name).parse_args(argv))
    values: dict[str, Any] = {}
    for variable, (setting, used_by, _) in VARIABLES.items():
        if name not in used_by:
            continue
        raw = args.get(setting)
        if raw is None:
            raw = env.get(variable)
        if raw is None or (raw == "" and variable not in _SECRET_VARIABLES):
            continue
        if setting == "api_scopes":
            values["api_scopes"] = tuple(raw.split())
        elif setting == "port":
            try:
                values["port"] = int(raw)
            except ValueError:
                raise SettingsError("PORT", "must be a whole number") from None
        else:
            values[setting] = raw
    return DemoSettings.for_demo(name, **values)


def fail(name: str, error: ConfigurationError) -> NoReturn:
    """Stop a demo with one line on stderr and exit code 2 (no traceback)."""
    print(f"demo_apps.{name}: bad setting: {error}", file=sys.stderr, flush=True)
    raise SystemExit(2)


def serve(name: DemoName, build: Callable[[DemoSettings], Any], argv: Sequence[str] | None) -> int:
    """Load the settings, build the app (a bad setting exits 2) and serve it with uvicorn."""
    try:
        settings = load(name, argv)
        app = build(settings)
    except ConfigurationError as exc:
        fail(name, exc)
    import uvicorn

    where = settings.app_base_url or f"http://127.0.0.1:{settings.port}"
    print(f"demo_apps.{name}: {where} (provider {settings.issuer})", flush=True)
    uvicorn.run(app, host="127.0.0.1", port=settings.port, log_level="info")
    return 0


def print_answer(what: str, response: Any, out: TextIO) -> None:
    """Print an API answer (an ``httpx.Response``): the request, the status, the JSON body."""
    print(f"{what} -> {response.status_code}", file=out)
    try:
        print(json.dumps(response.json(), indent=2, sort_keys=True), file=out)
    except ValueError:
        print(response.text[:2000], file=out)
    out.flush()


def run_cli(
    name: DemoName,
    program: Callable[[DemoSettings], Coroutine[Any, Any, int]],
    argv: Sequence[str] | None,
) -> int:
    """Load the settings and run a command-line demo (a bad setting exits 2)."""
    try:
        settings = load(name, argv)
    except ConfigurationError as exc:
        fail(name, exc)
    try:
        return asyncio.run(program(settings))
    except ConfigurationError as exc:
        fail(name, exc)
    except KeyboardInterrupt:
        return 130
