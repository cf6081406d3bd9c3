"""Configuration of the development provider: clients, users, APIs, as frozen dataclasses.

Built from Python objects, from a mapping, or from a JSON file (TOML too where ``tomllib``
exists, i.e. Python 3.11+). ``DevProviderConfig.default()`` is the set the demos use.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args
from urllib.parse import urlsplit

from oidc_asgi.errors import ConfigurationError

__all__ = [
    "DEVICE_CODE_GRANT",
    "JWT_BEARER_GRANT",
    "TOKEN_EXCHANGE_GRANT",
    "DevAPI",
    "DevClient",
    "DevProviderConfig",
    "DevUser",
]

AuthMethod = Literal["client_secret_basic", "client_secret_post", "private_key_jwt", "none"]
SigningAlg = Literal["RS256", "ES256", "EdDSA"]
TokenFormat = Literal["jwt", "opaque"]
ApplicationType = Literal["web", "native"]

DEVICE_CODE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
TOKEN_EXCHANGE_GRANT = "urn:ietf:params:oauth:grant-type:token-exchange"
JWT_BEARER_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"

KNOWN_GRANTS = (
    "authorization_code",
    "refresh_token",
    "client_credentials",
    DEVICE_CODE_GRANT,
    TOKEN_EXCHANGE_GRANT,
    JWT_BEARER_GRANT,
)


def _fail(message: str) -> ConfigurationError:
    return ConfigurationError(message, code="dev_provider_config")


@dataclass(frozen=True, kw_only=True)
class DevClient:
    """A relying party registered at the development provider.

    ``token_endpoint_auth_method`` ``none`` makes a public client (PKCE S256 required);
    ``private_key_jwt`` needs ``jwks`` (a public JWK Set, RFC 7523 section 2.2).
    ``application_type="native"`` lets loopback redirect URIs match on any port
    (RFC 8252 section 7.3).

    Example::

        DevClient(client_id="webapp", client_secret="s3cret",
                  redirect_uris=("http://127.0.0.1:8000/callback",))
    """

    client_id: str
    client_secret: str | None = None
    token_endpoint_auth_method: AuthMethod = "client_secret_basic"
    redirect_uris: tuple[str, ...] = ()
    post_logout_redirect_uris: tuple[str, ...] = ()
    backchannel_logout_uri: str | None = None
    grant_types: tuple[str, ...] = ("authorization_code", "refresh_token")
    application_type: ApplicationType = "web"
    jwks: Mapping[str, Any] | None = None
    id_token_signed_response_alg: SigningAlg = "RS256"
    name: str = ""

    def __post_init__(self) -> None:
        if not self.client_id:
            raise _fail("a client needs a client_id")
        if self.token_endpoint_auth_method not in get_args(AuthMethod):
            raise _fail(f"client {self.client_id}: unknown auth method")
        secret_methods = ("client_secret_basic", "client_secret_post")
        if self.token_endpoint_auth_method in secret_methods and not self.client_secret:
            raise _fail(f"client {self.client_id}: a secret auth method needs client_secret")
        if self.token_endpoint_auth_method == "private_key_jwt" and not self.jwks:
            raise _fail(f"client {self.client_id}: private_key_jwt needs jwks")
        for grant in self.grant_types:
            if grant not in KNOWN_GRANTS:
                raise _fail(f"client {self.client_id}: unknown grant type {grant!r}")
        if self.application_type not in ("web", "native"):
            raise _fail(f"client {self.client_id}: unknown application_type")
        if self.id_token_signed_response_alg not in get_args(SigningAlg):
            raise _fail(f"client {self.client_id}: unsupported id_token alg")

    @property
    def is_public(self) -> bool:
        """True for clients without credentials (``token_endpoint_auth_method`` ``none``)."""
        return self.token_endpoint_auth_method == "none"


@dataclass(frozen=True, kw_only=True)
class DevUser:
    """An end-user who can sign in; ``password=None`` accepts any password.

    Example::

        DevUser(username="alice", claims={"name": "Alice Liddell", "email": "alice@example.com"})
    """

    username: str
    password: str | None = None
    sub: str = ""
    claims: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.username:
            raise _fail("a user needs a username")
        if not self.sub:
            object.__setattr__(self, "sub", self.username)


@dataclass(frozen=True, kw_only=True)
class DevAPI:
    """A protected API (resource server): the audience of its access tokens and its scopes.

    ``token_format="jwt"`` issues RFC 9068 JWT access tokens; ``"opaque"`` issues random strings
    that only introspection (RFC 7662) can read.

    ``owner_client_id`` names the confidential client that *is* this API when it calls further
    APIs. Only that client may exchange a token for this API (RFC 8693 token exchange, Entra
    on-behalf-of), as real providers insist: the subject token must have been issued for the
    party exchanging it. ``None``: nobody can exchange this API's tokens.

    Example::

        DevAPI(identifier="http://127.0.0.1:8002/api", scopes=("read:summary",),
               owner_client_id="gateway")
    """

    identifier: str
    scopes: tuple[str, ...] = ()
    token_format: TokenFormat = "jwt"
    signing_alg: SigningAlg = "RS256"
    access_token_lifetime: int = 3600
    owner_client_id: str | None = None

    def __post_init__(self) -> None:
        if not self.identifier:
            raise _fail("an API needs an identifier")
        if self.token_format not in ("jwt", "opaque"):
            raise _fail(f"API {self.identifier}: token_format must be jwt or opaque")
        if self.signing_alg not in get_args(SigningAlg):
            raise _fail(f"API {self.identifier}: unsupported signing_alg")
        if self.owner_client_id == "":
            raise _fail(f"API {self.identifier}: owner_client_id must be a client_id or None")


@dataclass(frozen=True, kw_only=True)
class DevProviderConfig:
    """Everything the development provider knows: issuer, clients, users, APIs and lifetimes.

    Example::

        config = DevProviderConfig.default()
        config = DevProviderConfig.from_file("dev-provider.json")
        config = dataclasses.replace(config, issuer="http://127.0.0.1:9100")
    """

    issuer: str = "http://127.0.0.1:9000"
    clients: tuple[DevClient, ...] = ()
    users: tuple[DevUser, ...] = ()
    apis: tuple[DevAPI, ...] = ()
    allow_any_user: bool = False
    acr_values: tuple[str, ...] = ("urn:oidc-asgi:loa:1", "urn:oidc-asgi:loa:2")
    id_token_lifetime: int = 300
    userinfo_token_lifetime: int = 3600
    code_lifetime: int = 60
    refresh_token_lifetime: int = 86400
    device_code_lifetime: int = 600
    device_poll_interval: int = 5
    session_lifetime: int = 86400
    retired_key_lifetime: int = 3600
    backchannel_timeout: float = 2.5

    def __post_init__(self) -> None:
        parts = urlsplit(self.issuer)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise _fail("issuer must be an absolute http(s) URL")
        if parts.query or parts.fragment:
            raise _fail("issuer must not have a query or fragment (OIDC Discovery 3)")
        for kind, names in (
            ("client_id", [c.client_id for c in self.clients]),
            ("username", [u.username for u in self.users]),
            ("API identifier", [a.identifier for a in self.apis]),
        ):
            if len(set(names)) != len(names):
                raise _fail(f"duplicate {kind}")
        if not self.acr_values:
            raise _fail("acr_values must not be empty")
        for api in self.apis:
            # An owner outside ``clients`` is allowed (configs that swap the clients but keep
            # the default APIs); it simply owns nothing anyone can use. A public client cannot
            # be an API: it has no credentials to present at the token endpoint.
            owner = self.client(api.owner_client_id) if api.owner_client_id else None
            if owner is not None and owner.is_public:
                raise _fail(f"API {api.identifier}: owner {owner.client_id} is a public client")

    def client(self, client_id: str) -> DevClient | None:
        """The client registered as ``client_id``, or None."""
        return next((c for c in self.clients if c.client_id == client_id), None)

    def user(self, username: str) -> DevUser | None:
        """The configured user ``username``, or None."""
        return next((u for u in self.users if u.username == username), None)

    def user_by_sub(self, sub: str) -> DevUser | None:
        """The configured user whose subject is ``sub``, or None."""
        return next((u for u in self.users if u.sub == sub), None)

    def api(self, identifier: str) -> DevAPI | None:
        """The API whose identifier (audience) is ``identifier``, or None."""
        return next((a for a in self.apis if a.identifier == identifier), None)

    def apis_owned_by(self, client_id: str) -> tuple[DevAPI, ...]:
        """The APIs whose ``owner_client_id`` is ``client_id``: what that client *is*.

        Example::

            [gateway_api] = DevProviderConfig.default().apis_owned_by("gateway")
        """
        return tuple(a for a in self.apis if a.owner_client_id == client_id)

    @classmethod
    def default(cls, issuer: str = "http://127.0.0.1:9000") -> DevProviderConfig:
        """The clients, APIs and users that the demos use (see the package README)."""
        return cls(
            issuer=issuer,
            clients=DEFAULT_CLIENTS,
            users=DEFAULT_USERS,
            apis=DEFAULT_APIS,
        )

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> DevProviderConfig:
        """Build from plain data as found in a JSON or TOML file.

        Lists become tuples; unknown keys fail loudly.
        """
        try:
            values = dict(data)
            values["clients"] = tuple(DevClient(**_tuples(c)) for c in data.get("clients", ()))
            values["users"] = tuple(DevUser(**dict(u)) for u in data.get("users", ()))
            values["apis"] = tuple(DevAPI(**_tuples(a)) for a in data.get("apis", ()))
            if "acr_values" in values:
                values["acr_values"] = tuple(values["acr_values"])
            return cls(**values)
        except TypeError as exc:
            raise _fail(f"invalid dev provider configuration: {exc}") from exc

    @classmethod
    def from_file(cls, path: str | Path) -> DevProviderConfig:
        """Read a ``.json`` file, or a ``.toml`` file on Python 3.11+ (``tomllib``)."""
        path = Path(path)
        raw = path.read_bytes()
        if path.suffix == ".toml":
            try:
                tomllib = importlib.import_module("tomllib")
            except ModuleNotFoundError as exc:
                raise _fail("TOML configuration needs Python 3.11+; use JSON") from exc
            data: Any = tomllib.loads(raw.decode("utf-8"))
        else:
            data = json.loads(raw)
        if not isinstance(data, dict):
            raise _fail("configuration file must hold an object")
        return cls.from_mapping(data)

    def to_mapping(self) -> dict[str, Any]:
        """Plain data (JSON-serialisable) for this configuration."""
        return json.loads(json.dumps(dataclasses.asdict(self)))  # type: ignore[no-any-return]


def _tuples(data: Mapping[str, Any]) -> dict[str, Any]:
    return {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}


DEFAULT_CLIENTS: tuple[DevClient, ...] = (
    DevClient(
        client_id="webapp",
        client_secret="webapp-secret",
        name="Web app (confidential)",
        redirect_uris=("http://127.0.0.1:8000/callback",),
        # /logged-out: where OIDCAuth lands after RP-initiated logout (the webapp demo).
        post_logout_redirect_uris=("http://127.0.0.1:8000/", "http://127.0.0.1:8000/logged-out"),
        backchannel_logout_uri="http://127.0.0.1:8000/backchannel-logout",
    ),
    DevClient(
        client_id="spa",
        token_endpoint_auth_method="none",
        name="Single-page app (public)",
        redirect_uris=("http://127.0.0.1:8003/",),
        post_logout_redirect_uris=("http://127.0.0.1:8003/",),
    ),
    DevClient(
        client_id="native",
        token_endpoint_auth_method="none",
        application_type="native",
        name="Native app (public, loopback redirect on any port)",
        redirect_uris=("http://127.0.0.1/callback",),
    ),
    DevClient(
        client_id="daemon",
        client_secret="daemon-secret",
        name="Daemon (client credentials)",
        grant_types=("client_credentials",),
    ),
    DevClient(
        client_id="cli",
        token_endpoint_auth_method="none",
        name="Command-line tool (device code)",
        grant_types=(DEVICE_CODE_GRANT, "refresh_token"),
    ),
    DevClient(
        client_id="gateway",
        client_secret="gateway-secret",
        name="API gateway (token exchange, on-behalf-of)",
        grant_types=("client_credentials", TOKEN_EXCHANGE_GRANT, JWT_BEARER_GRANT),
    ),
)

DEFAULT_APIS: tuple[DevAPI, ...] = (
    DevAPI(identifier="http://127.0.0.1:8001/api", scopes=("read:messages", "write:messages")),
    # The gateway demo is this API; it exchanges its callers' tokens for the messages API.
    DevAPI(
        identifier="http://127.0.0.1:8002/api",
        scopes=("read:summary",),
        owner_client_id="gateway",
    ),
    DevAPI(
        identifier="http://127.0.0.1:8004/api",
        scopes=("read:reports",),
        token_format="opaque",
    ),
)

DEFAULT_USERS: tuple[DevUser, ...] = (
    DevUser(
        username="alice",
        claims={
            "name": "Alice Liddell",
            "given_name": "Alice",
            "family_name": "Liddell",
            "email": "alice@example.com",
            "email_verified": True,
        },
    ),
    DevUser(
        username="bob",
        claims={
            "name": "Bob Builder",
            "given_name": "Bob",
            "family_name": "Builder",
            "email": "bob@example.com",
            "email_verified": True,
        },
    ),
)
