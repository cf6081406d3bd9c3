"""``SignInConfig``: every setting of the web sign-in middleware, checked at construction."""

from __future__ import annotations

import os
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal, get_args
from urllib.parse import urlsplit

import httpx

from oidc_asgi._http import is_loopback_url, require_https
from oidc_asgi.errors import ConfigurationError
from oidc_asgi.sessions.revocation import SharedState
from oidc_asgi.sessions.stores import SessionStore
from oidc_asgi.signin._proxies import parse_trusted_proxies

__all__ = ["ENV_VARIABLES", "SignInConfig", "SignInWarning"]

ResponseMode = Literal["query", "form_post"]
AuthMethod = Literal["client_secret_basic", "client_secret_post", "private_key_jwt", "none"]
LogoutMethod = Literal["GET", "POST"]
AudienceParameter = Literal["resource", "audience"]

# Parameters the middleware itself owns: never from configuration or a login request.
_RESERVED_PARAMS = frozenset(
    {
        "response_type",
        "client_id",
        "redirect_uri",
        "state",
        "nonce",
        "code_challenge",
        "code_challenge_method",
        "response_mode",
        "request",
        "request_uri",
        "client_secret",
        "client_assertion",
        "client_assertion_type",
    }
)
_DEFAULT_LOGIN_PARAMS = frozenset(
    {"login_hint", "prompt", "ui_locales", "organization", "screen_hint", "acr_values", "max_age"}
)

#: The environment variables ``SignInConfig.from_env`` reads (name -> setting).
#:
#: Example::
#:
#:     assert ENV_VARIABLES["OIDC_ISSUER"] == "issuer"
ENV_VARIABLES: Mapping[str, str] = MappingProxyType(
    {
        "OIDC_ISSUER": "issuer",
        "OIDC_CLIENT_ID": "client_id",
        "OIDC_CLIENT_SECRET": "client_secret",
        "OIDC_SECRETS": "secrets",
        "OIDC_BASE_URL": "base_url",
        "OIDC_SCOPE": "scope",
        "OIDC_RESPONSE_MODE": "response_mode",
        "OIDC_AUTH_METHOD": "auth_method",
        "OIDC_AUDIENCE": "audience",
        "OIDC_AUDIENCES": "audiences",
        "OIDC_FETCH_USERINFO": "fetch_userinfo",
        "OIDC_PROTECT": "protect",
        "OIDC_PUBLIC_PATHS": "public_paths",
        "OIDC_TRUSTED_PROXIES": "trusted_proxies",
    }
)


class SignInWarning(UserWarning):
    """A setting that works but is probably not what production wants (emitted at startup).

    Example::

        warnings.simplefilter("error", SignInWarning)  # make the startup doctor strict
    """


def _path(name: str, value: str | None) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value.startswith("/") or value.startswith("//"):
        raise ConfigurationError(f"{name} must be a path starting with '/'", code="invalid_path")
    if any(ch in value for ch in "?#\\ ;,") or not value.isascii():
        raise ConfigurationError(
            f"{name} has a character not allowed in a path", code="invalid_path"
        )
    return value


def _check_cookie_prefixes(config: SignInConfig) -> None:
    """Refuse ``__Secure-``/``__Host-`` names whose rules these settings cannot meet, since
    browsers silently drop such cookies (RFC 6265bis section 4.1.3; prefixes match without
    regard to case)."""
    secure_possible = config.cookie_secure is not False and (
        config.https or is_loopback_url(config.base_url)
    )
    for name in ("session_cookie", "transaction_cookie"):
        value = getattr(config, name)
        if not isinstance(value, str):
            raise ConfigurationError(f"{name} must be a string", code="invalid_cookie_name")
        folded = value.lower()
        if not folded.startswith(("__secure-", "__host-")):
            continue
        if not secure_possible:
            raise ConfigurationError(
                f"{name} has a __Secure-/__Host- prefix, which needs a Secure cookie: use an "
                "https base_url and leave cookie_secure on",
                code="invalid_cookie_name",
            )
        if folded.startswith("__host-"):
            if name == "transaction_cookie":
                raise ConfigurationError(
                    "transaction_cookie cannot have the __Host- prefix: login cookies are "
                    "scoped to the callback path, and __Host- needs Path=/",
                    code="invalid_cookie_name",
                )
            if config.base_path or config.cookie_domain is not None:
                raise ConfigurationError(
                    "a __Host- session_cookie needs Path=/ and no Domain: a base_url without "
                    "a path and no cookie_domain",
                    code="invalid_cookie_name",
                )


def _positive(name: str, value: float | None, *, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ConfigurationError(f"{name} must be a positive number", code="invalid_setting")


def _check_audiences(config: SignInConfig) -> None:
    """Normalise ``audience``/``audiences``: afterwards ``audiences`` lists them all and
    ``audience`` is the first (the one redeemed at the token endpoint)."""
    many = config.audiences
    if isinstance(many, str):
        many = (many,)
    listed = tuple(many)
    if config.audience is not None:
        if listed and listed[0] != config.audience:
            raise ConfigurationError(
                "audience and audiences disagree: audience is the first of audiences",
                code="conflicting_audience",
            )
        listed = listed or (config.audience,)
    if not all(isinstance(a, str) and a for a in listed):
        raise ConfigurationError("audiences must be non-empty strings", code="invalid_audience")
    if len(set(listed)) != len(listed):
        raise ConfigurationError("audiences repeats an API", code="invalid_audience")
    if len(listed) > 1 and config.audience_parameter == "audience":
        # Auth0's audience names one API per authorization request; RFC 8707 resource repeats.
        raise ConfigurationError(
            "audience_parameter='audience' allows one API at sign-in; use "
            "audience_parameter='resource' (RFC 8707) for several",
            code="too_many_audiences",
        )
    object.__setattr__(config, "audiences", listed)
    object.__setattr__(config, "audience", listed[0] if listed else None)


UserinfoPlan = Literal["none", "direct", "split", "skip"]


def _userinfo_plan(config: SignInConfig) -> UserinfoPlan:
    """How the callback gets userinfo when an API is named (see ``SignInConfig``)."""
    if not config.fetch_userinfo:
        return "none"
    if config.audience is None or config.audience_parameter != "resource":
        return "direct"
    return "split" if "offline_access" in config.scope else "skip"


def _check_api_token_settings(config: SignInConfig) -> None:
    if not isinstance(config.token_min_ttl, (int, float)) or not (
        0 <= config.token_min_ttl <= 3600
    ):
        raise ConfigurationError("token_min_ttl must be 0..3600 seconds", code="invalid_setting")
    if not isinstance(config.refresh_grace, (int, float)) or not 1 <= config.refresh_grace <= 600:
        raise ConfigurationError("refresh_grace must be 1..600 seconds", code="invalid_setting")
    if config.audience_parameter not in get_args(AudienceParameter):
        raise ConfigurationError(
            "audience_parameter must be 'resource' or 'audience'", code="invalid_setting"
        )
    algs = config.logout_token_algorithms
    if isinstance(algs, str) or not algs or not all(isinstance(a, str) and a for a in algs):
        raise ConfigurationError(
            "logout_token_algorithms must be a list of algorithm names", code="invalid_algorithms"
        )
    object.__setattr__(config, "logout_token_algorithms", tuple(algs))
    if config.shared_state is not None and not isinstance(config.shared_state, SharedState):
        raise ConfigurationError(
            "shared_state must implement SharedState (MemorySharedState, RedisSharedState)",
            code="invalid_store",
        )


# Typical sizes, in bytes, of what a cookie session holds (RS256 tokens of common providers),
# and the share base64 of the encrypted envelope adds: used only for the startup estimate.
_ID_TOKEN_BYTES = 1100
_ID_CLAIMS_BYTES = 700
_JWT_ACCESS_TOKEN_BYTES = 1100
_OPAQUE_ACCESS_TOKEN_BYTES = 300
_REFRESH_TOKEN_BYTES = 500
_USERINFO_BYTES = 400
_ENVELOPE_FACTOR = 1.37
_ONE_COOKIE = 4000


def _session_estimate(config: SignInConfig) -> int:
    """A rough cookie size for a session under ``config``: enough to warn, not to promise."""
    size = _ID_TOKEN_BYTES + _ID_CLAIMS_BYTES
    api = config.audience or any(k in config.authorization_params for k in ("audience", "resource"))
    size += _JWT_ACCESS_TOKEN_BYTES if api else _OPAQUE_ACCESS_TOKEN_BYTES
    # Tokens for the other APIs named at sign-in join the session once they are asked for.
    size += _JWT_ACCESS_TOKEN_BYTES * max(0, len(config.audiences) - 1)
    if "offline_access" in config.scope:
        size += _REFRESH_TOKEN_BYTES
    if config.fetch_userinfo:
        size += _USERINFO_BYTES
    return int(size * _ENVELOPE_FACTOR)


@dataclass(frozen=True, kw_only=True)
class SignInConfig:
    """Settings of ``OIDCAuth``, keyword-only and validated here so mistakes fail at startup.

    Identity: ``issuer`` (exactly as the provider writes it), ``client_id``, and the client
    credentials: ``client_secret`` (``auth_method`` defaults to ``client_secret_basic``), or
    ``private_key`` (``private_key_jwt``), or neither (``none``, a public client: PKCE only).
    ``base_url`` is the application's public origin (and path prefix): the ``redirect_uri`` and
    every absolute URL are built from it, never from request headers, and cookies get
    ``Secure`` when it is https. ``secrets`` (newest first, >= 32 bytes each) derive the
    cookie and store keys.

    The login: ``scope``; ``response_mode`` ``query`` or ``form_post``;
    ``authorization_params`` sent on every login (``audience``/``resource``, ``prompt``, ...;
    ``audience`` is a shortcut, sent as ``audience_parameter`` to the authorization endpoint and
    at code redemption, where providers such as node-oidc-provider decide the access token's
    format, RFC 8707 section 2.2); ``audiences`` names several APIs at once: all go to the
    authorization endpoint as repeated ``resource`` (RFC 8707 section 2), the first (which is
    ``audience`` afterwards) is redeemed with the code, and ``get_access_token(request,
    audience=<another>)`` gets the others through the refresh token (so add ``offline_access``);
    Auth0's ``audience`` parameter names one API only, so more are refused here
    (``too_many_audiences``). ``login_params`` names the query parameters of the login route
    that are forwarded per login (never ``redirect_uri`` or any parameter the flow owns);
    ``max_age`` and ``acr_values`` ask for fresh or stronger authentication and are checked in
    the ID token; ``fetch_userinfo`` adds the userinfo claims (``sub`` checked). Userinfo
    wants a token for userinfo, not for an API (node-oidc-provider refuses an API's JWT there),
    so with an API named by ``resource`` and ``offline_access`` in ``scope`` the code is
    redeemed *without* ``resource`` (a token good at userinfo), userinfo is read, and the API's
    token comes from the refresh token with ``resource``; without ``offline_access`` the code
    is redeemed for the API and userinfo is skipped (a ``SignInWarning`` at startup says so).

    Routes (``None`` turns one off): ``login_path``, ``callback_path`` (GET for ``query``,
    POST for ``form_post``), ``logout_path`` (POST with an Origin/Fetch-Metadata/token CSRF
    check; add ``"GET"`` to ``logout_methods`` to allow links), ``post_logout_path`` (the
    landing after provider logout, which checks the logout ``state``). ``idp_logout`` sends the
    user to the provider's ``end_session_endpoint`` when it has one (RP-Initiated Logout 1.0).
    ``revoke_tokens_on_logout`` also revokes the session's refresh and access tokens at the
    provider's ``revocation_endpoint`` (RFC 7009); a failure there is logged and logout goes on.

    Protection: ``protect`` lists path prefixes that need sign-in (``("/",)`` for everything),
    ``public_paths`` carves exceptions out of it. A browser navigation is redirected to the
    provider; any other request gets 401 JSON with a ``login_url``.

    Sessions: ``session_store`` (``None`` keeps the encrypted session in the cookie; a
    ``MemoryStore``/``RedisStore`` keeps it server-side), ``absolute_ttl``, ``rolling_ttl``,
    ``touch_after``; ``session_cookie`` and ``transaction_cookie`` names (on an https
    ``base_url`` without a path and no ``cookie_domain``, the session cookie is sent as
    ``__Host-`` + ``session_cookie``, see ``session_cookie_name``; a ``__Host-``/``__Secure-``
    name these settings cannot honour is refused); ``cookie_secure`` (``"auto"``: from
    ``base_url``), ``cookie_domain``; ``transaction_ttl`` and
    ``max_transactions`` bound the per-login cookies. ``session_scope_key`` is where the app's
    session dict goes in the ASGI scope (``"session"``, so ``request.session`` works; ``None``
    to leave it alone). ``set_user`` fills ``scope["user"]``/``scope["auth"]``.
    ``trusted_proxies`` (IP addresses or CIDR blocks; ``OIDC_TRUSTED_PROXIES``, space-separated)
    are the peers whose ``Forwarded`` / ``X-Forwarded-Proto`` / ``X-Forwarded-Host`` headers say
    how the browser reached the app: they may add ``Secure`` to cookies and name another
    same-site ``Origin`` for the logout check; from any other peer these headers are ignored.

    API tokens (``get_access_token``, ``UserTokenAuth``): ``token_min_ttl`` is how long a
    token must stay valid or it is refreshed first; ``refresh_grace`` how long a refresh result
    is kept for requests still holding the rotated refresh token; ``audience_parameter`` names
    how another audience is asked for (``resource``, RFC 8707, or Auth0's ``audience``).
    Back-channel logout: ``backchannel_logout_path`` (``None`` turns it off),
    ``logout_token_algorithms`` (the client's registered ``id_token_signed_response_alg``,
    RS256 by default). ``shared_state`` holds revocations of cookie sessions, the logout
    ``jti`` cache, refresh locks and grace entries: in memory by default (and taken from a
    ``RedisStore`` session store), a ``RedisSharedState`` when several instances run.

    Plumbing: ``http_client`` for every provider call (tests wire the development provider
    through ``httpx.ASGITransport``), ``now`` the clock, ``leeway`` for token times,
    ``allow_insecure_http`` (loud) for a non-loopback http provider.

    Example::

        config = SignInConfig(
            issuer="https://login.example.com/",
            client_id="webapp",
            client_secret=os.environ["OIDC_CLIENT_SECRET"],
            secrets=[os.environ["OIDC_SECRET"]],
            base_url="https://app.example.com",
            audiences=["https://orders.example/api", "https://billing.example/api"],
        )
    """

    issuer: str
    client_id: str
    base_url: str
    # Never in repr: error trackers (Sentry's frame locals) and debug logs print reprs.
    secrets: Sequence[str | bytes] = field(repr=False)
    client_secret: str | None = field(default=None, repr=False)
    auth_method: AuthMethod | None = None
    private_key: Mapping[str, Any] | str | bytes | None = field(default=None, repr=False)
    key_id: str | None = None
    scope: Sequence[str] = ("openid", "profile", "email")
    response_mode: ResponseMode = "query"
    audience: str | None = None
    audiences: Sequence[str] = ()
    authorization_params: Mapping[str, str] = field(default_factory=dict)
    login_params: frozenset[str] = _DEFAULT_LOGIN_PARAMS
    max_age: int | None = None
    acr_values: Sequence[str] | None = None
    fetch_userinfo: bool = False
    login_path: str | None = "/login"
    callback_path: str | None = "/callback"
    logout_path: str | None = "/logout"
    logout_methods: frozenset[LogoutMethod] = frozenset({"POST"})
    post_logout_path: str | None = "/logged-out"
    idp_logout: bool = True
    revoke_tokens_on_logout: bool = False
    default_return_to: str = "/"
    protect: Sequence[str] = ()
    public_paths: Sequence[str] = ()
    session_store: SessionStore | None = None
    absolute_ttl: float = 7 * 24 * 3600
    rolling_ttl: float | None = 24 * 3600
    touch_after: float = 60
    session_cookie: str = "oidc_session"
    transaction_cookie: str = "oidc_tx"
    cookie_secure: bool | Literal["auto"] = "auto"
    cookie_domain: str | None = None
    trusted_proxies: Sequence[str] = ()
    transaction_ttl: int = 600
    max_transactions: int = 5
    session_scope_key: str | None = "session"
    set_user: bool = True
    # Issue 5: API tokens and back-channel logout (see signin/_api_tokens.py, _backchannel.py).
    token_min_ttl: float = 60
    refresh_grace: float = 60
    audience_parameter: AudienceParameter = "resource"
    backchannel_logout_path: str | None = "/backchannel-logout"
    logout_token_algorithms: Sequence[str] = ("RS256",)
    shared_state: SharedState | None = field(default=None, repr=False, compare=False)
    leeway: float = 60
    http_client: httpx.AsyncClient | None = field(default=None, repr=False, compare=False)
    allow_insecure_http: bool = False
    now: Callable[[], float] = field(default=time.time, repr=False, compare=False)

    def __post_init__(self) -> None:
        for name in ("issuer", "client_id", "base_url"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value:
                raise ConfigurationError(f"{name} is required", code="missing_setting")
        require_https(
            self.issuer,
            allow_insecure_http=self.allow_insecure_http,
            what="issuer",
            code="insecure_issuer",
        )
        base = urlsplit(self.base_url)
        if base.scheme not in ("http", "https") or not base.netloc or base.query or base.fragment:
            raise ConfigurationError(
                "base_url must be an absolute http(s) URL without query or fragment",
                code="invalid_base_url",
            )
        if base.scheme == "http" and not is_loopback_url(self.base_url):
            warnings.warn(
                "base_url is plain http on a non-loopback host: cookies cannot be Secure and "
                "form_post will fail in browsers; use https",
                SignInWarning,
                stacklevel=3,
            )
        object.__setattr__(self, "base_url", self.base_url.rstrip("/"))
        if isinstance(self.secrets, (str, bytes)) or not self.secrets:
            raise ConfigurationError(
                "secrets must be a non-empty list of secrets, newest first", code="no_secrets"
            )
        object.__setattr__(self, "secrets", tuple(self.secrets))
        method = self.auth_method
        if method is None:
            if self.private_key is not None:
                method = "private_key_jwt"
            elif self.client_secret:
                method = "client_secret_basic"
            else:
                method = "none"
            object.__setattr__(self, "auth_method", method)
        if method not in get_args(AuthMethod):
            raise ConfigurationError(f"unknown auth_method {method!r}", code="invalid_auth_method")
        if self.response_mode not in get_args(ResponseMode):
            raise ConfigurationError(
                "response_mode must be 'query' or 'form_post'", code="invalid_response_mode"
            )
        if isinstance(self.scope, str):
            object.__setattr__(self, "scope", tuple(self.scope.split()))
        scope = tuple(self.scope)
        if "openid" not in scope:
            raise ConfigurationError("scope must include 'openid'", code="invalid_scope")
        object.__setattr__(self, "scope", scope)
        params = dict(self.authorization_params)
        _check_audiences(self)
        if self.audience is not None:
            # As audience_parameter names it (RFC 8707 resource or Auth0's audience); the
            # middleware sends it again at code redemption (RFC 8707 section 2.2).
            key = "audience" if self.audience_parameter == "audience" else "resource"
            params.setdefault(key, self.audience)
        bad = sorted(set(params) & _RESERVED_PARAMS)
        if bad:
            raise ConfigurationError(
                f"authorization_params may not set {bad}: the sign-in flow owns them",
                code="reserved_parameter",
            )
        object.__setattr__(self, "authorization_params", MappingProxyType(params))
        login_params = frozenset(self.login_params)
        if login_params & _RESERVED_PARAMS:
            raise ConfigurationError(
                f"login_params may not include {sorted(login_params & _RESERVED_PARAMS)}",
                code="reserved_parameter",
            )
        object.__setattr__(self, "login_params", login_params)
        if self.max_age is not None and (
            isinstance(self.max_age, bool) or not isinstance(self.max_age, int) or self.max_age < 0
        ):
            raise ConfigurationError("max_age must be an int >= 0", code="invalid_setting")
        if self.acr_values is not None:
            acr = tuple(self.acr_values)
            if not acr or not all(isinstance(a, str) and a for a in acr):
                raise ConfigurationError(
                    "acr_values must be non-empty strings", code="invalid_setting"
                )
            object.__setattr__(self, "acr_values", acr)
        paths: dict[str, str] = {}
        for name in ("login_path", "callback_path", "logout_path", "post_logout_path",
                     "backchannel_logout_path"):  # fmt: skip
            value = _path(name, getattr(self, name))
            if value is not None:
                if value in paths.values():
                    raise ConfigurationError(f"{name} repeats another route", code="invalid_path")
                paths[name] = value
        if self.callback_path is None and self.login_path is not None:
            raise ConfigurationError(
                "login_path needs callback_path: the provider must return somewhere",
                code="invalid_path",
            )
        methods = frozenset(self.logout_methods)
        if not methods or not methods <= {"GET", "POST"}:
            raise ConfigurationError(
                "logout_methods must be a subset of {'GET', 'POST'}", code="invalid_setting"
            )
        object.__setattr__(self, "logout_methods", methods)
        for name in ("protect", "public_paths"):
            value = getattr(self, name)
            if isinstance(value, str):
                value = (value,)
            object.__setattr__(self, name, tuple(_path(name, p) or "/" for p in value))
        _positive("absolute_ttl", self.absolute_ttl)
        _positive("rolling_ttl", self.rolling_ttl, allow_none=True)
        if (
            isinstance(self.leeway, bool)
            or not isinstance(self.leeway, (int, float))
            or not (0 <= self.leeway <= 600)
        ):
            raise ConfigurationError("leeway must be 0..600 seconds", code="invalid_setting")
        if isinstance(self.transaction_ttl, bool) or not 30 <= self.transaction_ttl <= 3600:
            raise ConfigurationError(
                "transaction_ttl must be 30..3600 seconds", code="invalid_setting"
            )
        if isinstance(self.max_transactions, bool) or not 1 <= self.max_transactions <= 20:
            raise ConfigurationError("max_transactions must be 1..20", code="invalid_setting")
        _check_api_token_settings(self)
        object.__setattr__(self, "trusted_proxies", parse_trusted_proxies(self.trusted_proxies))
        if self.cookie_secure not in (True, False, "auto"):
            raise ConfigurationError(
                "cookie_secure must be True, False or 'auto'", code="invalid_cookie_secure"
            )
        _check_cookie_prefixes(self)
        if (
            self.response_mode == "form_post"
            and not self.https
            and not is_loopback_url(self.base_url)
        ):
            warnings.warn(
                "form_post over plain http: browsers will not send the login cookie on the "
                "provider's cross-site POST",
                SignInWarning,
                stacklevel=3,
            )

        self._startup_warnings()

    def _startup_warnings(self) -> None:
        """Settings that work but will likely hurt in a browser (SignInWarning)."""
        if self.cookie_secure is True and not self.https and not is_loopback_url(self.base_url):
            warnings.warn(
                "cookie_secure=True with a plain http base_url: browsers neither store nor "
                "send Secure cookies over http, so nobody stays signed in",
                SignInWarning,
                stacklevel=4,
            )
        issuer_host = urlsplit(self.issuer).hostname
        if (
            self.response_mode == "form_post"
            and not self.https
            and self.cookie_secure is not True
            and is_loopback_url(self.base_url)
            and issuer_host != urlsplit(self.base_url).hostname
        ):
            warnings.warn(
                "form_post with a provider on another site over http: the login cookie is "
                "SameSite=Lax and will not come with the provider's cross-site POST; set "
                "cookie_secure=True (browsers accept Secure cookies from localhost) or use https",
                SignInWarning,
                stacklevel=4,
            )
        if _userinfo_plan(self) == "skip":
            warnings.warn(
                "fetch_userinfo with an API audience but without the offline_access scope: "
                "the code is redeemed for the API's access token, which providers such as "
                "node-oidc-provider refuse at userinfo, and no refresh token can fetch the API "
                "token after userinfo, so userinfo is skipped; add offline_access to scope",
                SignInWarning,
                stacklevel=4,
            )
        if self.session_store is None:
            estimate = _session_estimate(self)
            if estimate > _ONE_COOKIE:
                warnings.warn(
                    f"the session will likely be about {estimate} bytes with these scopes and "
                    f"audiences (ID, access and refresh tokens), over one {_ONE_COOKIE}-byte "
                    "cookie: it will be split over several cookies on every request; consider "
                    "session_store=RedisStore(...) or MemoryStore()",
                    SignInWarning,
                    stacklevel=4,
                )

    @property
    def https(self) -> bool:
        """Whether ``base_url`` is https (cookies then get ``Secure``)."""
        return self.base_url.startswith("https:")

    @property
    def session_cookie_name(self) -> str:
        """The session cookie's name as sent: ``__Host-`` + ``session_cookie`` where it can be.

        A ``__Host-`` cookie is Secure, ``Path=/`` and host-only, and browsers refuse one set
        by a sibling subdomain or over plain http, so nobody but this origin can plant or
        overwrite the session cookie (RFC 6265bis section 4.1.3.2). Used when ``base_url`` is
        https without a path, ``cookie_domain`` is unset and ``cookie_secure`` is not
        ``False``; otherwise, and for a name that already has a prefix, ``session_cookie``
        as given.

        Example::

            assert config.session_cookie_name == "__Host-oidc_session"
        """
        name = self.session_cookie
        if (
            self.https
            and not self.base_path
            and self.cookie_domain is None
            and self.cookie_secure is not False
            and not name.lower().startswith(("__secure-", "__host-"))
        ):
            return "__Host-" + name
        return name

    @property
    def origin(self) -> str:
        """The scheme, host and port of ``base_url`` (compared with ``Origin`` headers)."""
        parts = urlsplit(self.base_url)
        return f"{parts.scheme}://{parts.netloc}".lower()

    @property
    def base_path(self) -> str:
        """The path prefix of ``base_url`` (``""`` at the root)."""
        return urlsplit(self.base_url).path.rstrip("/")

    def url(self, path: str) -> str:
        """The absolute URL of an application ``path``.

        Example::

            assert config.url("/callback") == "https://app.example.com/callback"
        """
        return f"{self.origin}{self.base_path}{path}"

    @property
    def redirect_uri(self) -> str:
        """The registered ``redirect_uri``: ``base_url`` + ``callback_path``."""
        return self.url(self.callback_path or "/callback")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> SignInConfig:
        """Build from the ``OIDC_*`` environment variables (``ENV_VARIABLES``), then overrides.

        ``OIDC_SECRETS`` holds one or more secrets separated by commas or whitespace (newest
        first); ``OIDC_SCOPE``, ``OIDC_PROTECT`` and ``OIDC_PUBLIC_PATHS`` are space-separated;
        ``OIDC_FETCH_USERINFO`` is ``true``/``false``.

        Example::

            config = SignInConfig.from_env(session_store=MemoryStore())
        """
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for variable, name in ENV_VARIABLES.items():
            raw = env.get(variable)
            if raw is None or raw == "":
                continue
            if name == "secrets":
                values[name] = tuple(raw.replace(",", " ").split())
            elif name in ("scope", "audiences", "protect", "public_paths", "trusted_proxies"):
                values[name] = tuple(raw.split())
            elif name == "fetch_userinfo":
                if raw.lower() not in ("true", "false", "1", "0", "yes", "no"):
                    raise ConfigurationError(
                        f"{variable} must be true or false", code="invalid_setting"
                    )
                values[name] = raw.lower() in ("true", "1", "yes")
            else:
                values[name] = raw
        values.update(overrides)
        missing = [
            var
            for var, name in ENV_VARIABLES.items()
            if name in ("issuer", "client_id", "base_url", "secrets") and name not in values
        ]
        if missing:
            raise ConfigurationError(
                f"missing environment variables: {', '.join(missing)}", code="missing_setting"
            )
        return cls(**values)
