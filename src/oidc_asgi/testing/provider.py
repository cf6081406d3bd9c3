"""``DevProvider``: a development OpenID Provider as an ASGI application.

It follows the specifications rather than convenience, so code that works against it should
work against a real provider. State lives in memory; the clock is injectable (``now``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

import httpx
from starlette.applications import Starlette
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from oidc_asgi.testing._config import (
    DEVICE_CODE_GRANT,
    JWT_BEARER_GRANT,
    TOKEN_EXCHANGE_GRANT,
    DevAPI,
    DevClient,
    DevProviderConfig,
)
from oidc_asgi.testing._http import OAuthFailure
from oidc_asgi.testing._keys import (
    ALGORITHMS,
    JWSError,
    KeyRing,
    SigningKey,
    left_hash,
    override_claims,
    random_token,
    split_jws,
    verify_with_jwks,
)
from oidc_asgi.testing._state import BackchannelDelivery, Grant, Session, State, TokenRecord

__all__ = ["DevProvider"]

OIDC_SCOPES = ("openid", "profile", "email", "offline_access")
PROFILE_CLAIMS = ("name", "given_name", "family_name", "preferred_username", "picture", "locale")
EMAIL_CLAIMS = ("email", "email_verified")


class DevProvider:
    """A development OpenID Provider: an ASGI app serving discovery, login, tokens and logout.

    ``now`` is the clock (seconds since the epoch) so tests can move time without sleeping;
    ``backchannel_client`` delivers back-channel logout tokens (wire it to an in-process
    receiver with ``httpx.ASGITransport``); ``keys`` lets tests share generated keys.

    Example::

        provider = DevProvider()  # DevProviderConfig.default(), issuer http://127.0.0.1:9000
        async with provider.asgi_client() as http:
            metadata = (await http.get("/.well-known/openid-configuration")).json()
        token = provider.mint_access_token(
            sub="alice", audience="http://127.0.0.1:8001/api", scopes=["read:messages"]
        )
    """

    def __init__(
        self,
        config: DevProviderConfig | None = None,
        *,
        now: Callable[[], float] | None = None,
        keys: KeyRing | None = None,
        backchannel_client: httpx.AsyncClient | None = None,
    ) -> None:
        self.config = config or DevProviderConfig.default()
        self.now: Callable[[], float] = now or time.time
        self.keys = keys or KeyRing()
        self.backchannel_client = backchannel_client
        self.state = State()
        self._prefix = urlsplit(self.config.issuer).path.rstrip("/")
        self._app = self._build_app()
        self._cors_paths = frozenset(
            f"{self._prefix}{path}"
            for path in (
                "/.well-known/openid-configuration",
                "/.well-known/oauth-authorization-server",
                "/jwks",
                "/token",
                "/userinfo",
                "/revoke",
                "/device_authorization",
            )
        )
        # Browsers call these endpoints with fetch: answer CORS for the public clients' origins,
        # as hosted providers do for a registered single-page app. Navigations (authorize,
        # login, logout) need no CORS, and confidential clients never run in a browser.
        self._cors_app: ASGIApp = CORSMiddleware(
            self._app,
            allow_origins=self.cors_origins(),
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type", "DPoP"],
            expose_headers=["DPoP-Nonce", "WWW-Authenticate"],
            max_age=600,
        )

    # -- ASGI ---------------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] in self._cors_paths:
            await self._cors_app(scope, receive, send)
            return
        await self._app(scope, receive, send)

    def cors_origins(self) -> list[str]:
        """The origins allowed by CORS: those of the public clients' redirect URIs.

        Example::

            assert DevProvider().cors_origins() == ["http://127.0.0.1:8003"]
        """
        origins: dict[str, None] = {}
        for client in self.config.clients:
            if not client.is_public or client.application_type == "native":
                continue  # a native app is no browser page: loopback, any port
            for uri in client.redirect_uris:
                parts = urlsplit(uri)
                if parts.scheme in ("http", "https") and parts.netloc:
                    origins[f"{parts.scheme}://{parts.netloc}"] = None
        return list(origins)

    def _build_app(self) -> Starlette:
        from oidc_asgi.testing import _authorize, _device, _logout, _token, _tokeninfo

        p = self._prefix

        async def discovery(request: Request) -> Response:
            return JSONResponse(self.metadata(), headers={"Cache-Control": "max-age=300"})

        async def jwks(request: Request) -> Response:
            return JSONResponse(
                self.jwks(),
                headers={"Cache-Control": "max-age=60"},
                media_type="application/jwk-set+json",
            )

        def wrap(handler: Callable[[DevProvider, Request], Any]) -> Callable[[Request], Any]:
            async def endpoint(request: Request) -> Response:
                result: Response = await handler(self, request)
                return result

            return endpoint

        routes = [
            Route(f"{p}/.well-known/openid-configuration", discovery, methods=["GET"]),
            Route(f"{p}/.well-known/oauth-authorization-server", discovery, methods=["GET"]),
            Route(f"{p}/jwks", jwks, methods=["GET"]),
            Route(f"{p}/authorize", wrap(_authorize.authorize), methods=["GET", "POST"]),
            Route(f"{p}/login", wrap(_authorize.login), methods=["POST"]),
            Route(f"{p}/token", wrap(_token.token), methods=["POST"]),
            Route(f"{p}/userinfo", wrap(_tokeninfo.userinfo), methods=["GET", "POST"]),
            Route(f"{p}/introspect", wrap(_tokeninfo.introspect), methods=["POST"]),
            Route(f"{p}/revoke", wrap(_tokeninfo.revoke), methods=["POST"]),
            Route(f"{p}/device_authorization", wrap(_device.authorize), methods=["POST"]),
            Route(f"{p}/device", wrap(_device.verify), methods=["GET", "POST"]),
            Route(f"{p}/logout", wrap(_logout.end_session), methods=["GET", "POST"]),
        ]
        return Starlette(routes=routes)

    def asgi_client(self, **kwargs: Any) -> httpx.AsyncClient:
        """An ``httpx.AsyncClient`` that reaches this provider in-process (no sockets).

        Example::

            async with provider.asgi_client() as http:
                await http.get("/jwks")
        """
        transport = httpx.ASGITransport(app=self)
        return httpx.AsyncClient(transport=transport, base_url=self.issuer, **kwargs)

    # -- metadata and keys --------------------------------------------------------------------

    @property
    def issuer(self) -> str:
        """The issuer identifier (``iss``), exactly as configured."""
        return self.config.issuer

    def endpoint(self, name: str) -> str:
        """Absolute URL of an endpoint path (``token``, ``authorize``, ...)."""
        return f"{self.config.issuer.rstrip('/')}/{name}"

    def metadata(self) -> dict[str, Any]:
        """The discovery document (OpenID Connect Discovery 1.0 section 3, RFC 8414 section 2)."""
        auth_methods = ["client_secret_basic", "client_secret_post", "private_key_jwt", "none"]
        api_scopes = [s for api in self.config.apis for s in api.scopes]
        return {
            "issuer": self.issuer,
            "authorization_endpoint": self.endpoint("authorize"),
            "token_endpoint": self.endpoint("token"),
            "userinfo_endpoint": self.endpoint("userinfo"),
            "jwks_uri": self.endpoint("jwks"),
            "end_session_endpoint": self.endpoint("logout"),
            "introspection_endpoint": self.endpoint("introspect"),
            "revocation_endpoint": self.endpoint("revoke"),
            "device_authorization_endpoint": self.endpoint("device_authorization"),
            "scopes_supported": [*OIDC_SCOPES, *api_scopes],
            "response_types_supported": ["code"],
            "response_modes_supported": ["query", "form_post"],
            "grant_types_supported": [
                "authorization_code",
                "refresh_token",
                "client_credentials",
                DEVICE_CODE_GRANT,
                TOKEN_EXCHANGE_GRANT,
                JWT_BEARER_GRANT,
            ],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": list(ALGORITHMS),
            "token_endpoint_auth_methods_supported": auth_methods,
            "token_endpoint_auth_signing_alg_values_supported": list(ALGORITHMS),
            "introspection_endpoint_auth_methods_supported": auth_methods,
            "revocation_endpoint_auth_methods_supported": auth_methods,
            "code_challenge_methods_supported": ["S256"],
            "acr_values_supported": list(self.config.acr_values),
            "prompt_values_supported": ["none", "login"],
            "claims_supported": [
                "sub",
                "iss",
                "aud",
                "exp",
                "iat",
                "auth_time",
                "nonce",
                "acr",
                "azp",
                "sid",
                "at_hash",
                *PROFILE_CLAIMS,
                *EMAIL_CLAIMS,
            ],
            "claims_parameter_supported": False,
            "request_parameter_supported": False,
            "request_uri_parameter_supported": False,
            "authorization_response_iss_parameter_supported": True,
            "backchannel_logout_supported": True,
            "backchannel_logout_session_supported": True,
            "frontchannel_logout_supported": False,
            "resource_indicators_supported": True,
        }

    def jwks(self) -> dict[str, Any]:
        """The published JSON Web Key Set: current keys and recently retired ones."""
        return self.keys.jwks(self.now(), self.config.retired_key_lifetime)

    def rotate_keys(self) -> list[str]:
        """Publish and sign with new keys; old keys stay published for ``retired_key_lifetime``.

        Returns the new key ids.

        Example::

            old = provider.jwks()
            new_kids = provider.rotate_keys()
        """
        return [key.kid for key in self.keys.rotate(self.now())]

    def signing_key(self, alg: str = "RS256") -> SigningKey:
        """The key currently signing with ``alg`` (``RS256``, ``ES256`` or ``EdDSA``)."""
        return self.keys.current(alg)

    def verify_jwt(self, token: str, *, typ: str | None = None) -> dict[str, Any]:
        """Verify a JWT this provider signed (signature with a published key, issuer, ``typ``).

        Expiry is not checked here; callers decide. Raises ``ValueError``.
        """
        published = self.keys.published(self.now(), self.config.retired_key_lifetime)
        header, claims = verify_with_jwks(token, [k.public_jwk() for k in published])
        if typ is not None and str(header.get("typ", "")).lower() not in (
            typ,
            f"application/{typ}",
        ):
            raise JWSError("unexpected typ")
        if claims.get("iss") != self.issuer:
            raise JWSError("foreign issuer")
        return claims

    def forget_expired_jtis(self) -> None:
        now = self.now()
        used = self.state.used_assertion_jtis
        for jti in [j for j, exp in used.items() if exp < now]:
            del used[jti]

    # -- users and scopes ---------------------------------------------------------------------

    def user_claims(self, sub: str, scope: Iterable[str]) -> dict[str, Any]:
        """Claims released for ``scope`` (OIDC Core 5.4): profile and email."""
        user = self.config.user_by_sub(sub)
        stored: Mapping[str, Any] = user.claims if user else {"name": sub}
        available = {"preferred_username": user.username if user else sub, **stored}
        wanted: list[str] = []
        scopes = set(scope)
        if "profile" in scopes:
            wanted += PROFILE_CLAIMS
        if "email" in scopes:
            wanted += EMAIL_CLAIMS
        return {name: available[name] for name in wanted if name in available}

    def check_scopes(self, scope: Iterable[str]) -> None:
        """Refuse scope values no API or OIDC defines (RFC 6749 section 3.3)."""
        known = set(OIDC_SCOPES) | {s for api in self.config.apis for s in api.scopes}
        if any(s not in known for s in scope):
            raise OAuthFailure("invalid_scope", "unknown scope value")

    def resolve_api(self, resources: Sequence[str]) -> DevAPI | None:
        """The API named by ``resource``/``audience`` (RFC 8707); ``invalid_target`` otherwise."""
        if not resources:
            return None
        if len(set(resources)) > 1:
            raise OAuthFailure("invalid_target", "one resource per access token")
        api = self.config.api(resources[0])
        if api is None:
            raise OAuthFailure("invalid_target", "unknown resource")
        return api

    # -- issuing ------------------------------------------------------------------------------

    def new_grant(
        self,
        client_id: str,
        sub: str,
        scope: Sequence[str],
        *,
        resources: Sequence[str] = (),
        session: Session | None = None,
        auth_time: int | None = None,
        acr: str | None = None,
    ) -> Grant:
        grant = Grant(
            id=random_token("grant_", 12),
            client_id=client_id,
            sub=sub,
            scope=tuple(scope),
            resources=tuple(resources),
            sid=session.sid if session else None,
            auth_time=session.auth_time if session else auth_time,
            acr=session.acr if session else acr,
        )
        self.state.grants[grant.id] = grant
        return grant

    def issue_access_token(
        self,
        *,
        client_id: str,
        sub: str,
        scope: Sequence[str],
        api: DevAPI | None,
        grant: Grant | None = None,
        extra_claims: Mapping[str, Any] | None = None,
    ) -> tuple[str, int, tuple[str, ...]]:
        """Issue an access token: RFC 9068 JWT for a JWT API, opaque otherwise.

        Without an API the token is opaque and meant for the userinfo endpoint. Returns the
        token, its lifetime and its granted scope.
        """
        now = int(self.now())
        if api is None:
            granted = tuple(s for s in scope if s in OIDC_SCOPES and s != "offline_access")
            lifetime = self.config.userinfo_token_lifetime
            audience = None
        else:
            granted = tuple(s for s in scope if s in api.scopes)
            lifetime = api.access_token_lifetime
            audience = api.identifier
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "sub": sub,
            "aud": audience or self.endpoint("userinfo"),
            "exp": now + lifetime,
            "iat": now,
            "jti": random_token("", 16),
            "client_id": client_id,
            "scope": " ".join(granted),
        }
        if grant is not None and grant.auth_time is not None:
            claims["auth_time"] = grant.auth_time
        if grant is not None and grant.acr is not None:
            claims["acr"] = grant.acr
        claims.update(extra_claims or {})
        record = TokenRecord(
            kind="access_token",
            grant_id=grant.id if grant else None,
            client_id=client_id,
            sub=sub,
            scope=granted,
            audience=audience,
            issued_at=now,
            expires_at=now + lifetime,
            claims=claims,
        )
        if api is not None and api.token_format == "jwt":
            token = self.signing_key(api.signing_alg).sign(claims, typ="at+jwt")
            self.state.tokens[claims["jti"]] = record
        else:
            token = random_token("dev_at_")
            self.state.tokens[token] = record
        return token, lifetime, granted

    def issue_refresh_token(self, grant: Grant, client_id: str) -> str:
        now = int(self.now())
        token = random_token("dev_rt_")
        self.state.tokens[token] = TokenRecord(
            kind="refresh_token",
            grant_id=grant.id,
            client_id=client_id,
            sub=grant.sub,
            scope=grant.scope,
            audience=None,
            issued_at=now,
            expires_at=now + self.config.refresh_token_lifetime,
        )
        return token

    def issue_id_token(
        self,
        client: DevClient,
        grant: Grant,
        *,
        nonce: str | None = None,
        access_token: str | None = None,
    ) -> str:
        """An ID token (OIDC Core 2) with ``sid``, ``auth_time``, ``acr``, ``azp``, ``at_hash``."""
        now = int(self.now())
        alg = client.id_token_signed_response_alg
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "sub": grant.sub,
            "aud": client.client_id,
            "azp": client.client_id,
            "exp": now + self.config.id_token_lifetime,
            "iat": now,
        }
        if grant.auth_time is not None:
            claims["auth_time"] = grant.auth_time
        if grant.acr is not None:
            claims["acr"] = grant.acr
        if grant.sid is not None:
            claims["sid"] = grant.sid
        if nonce is not None:
            claims["nonce"] = nonce
        if access_token is not None:
            claims["at_hash"] = left_hash(access_token, alg)
        claims.update(self.user_claims(grant.sub, grant.scope))
        return self.signing_key(alg).sign(claims)

    def token_response(
        self,
        client: DevClient,
        grant: Grant,
        *,
        scope: Sequence[str],
        api: DevAPI | None,
        nonce: str | None = None,
        refresh: bool | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """The successful token response (RFC 6749 section 5.1) for a user grant."""
        token, lifetime, granted = self.issue_access_token(
            client_id=client.client_id, sub=grant.sub, scope=scope, api=api, grant=grant
        )
        body: dict[str, Any] = {
            "access_token": token,
            "token_type": "Bearer",
            "expires_in": lifetime,
            **({"scope": " ".join(granted)} if granted else {}),  # RFC 6749 5.1: optional
        }
        if "openid" in grant.scope:
            body["id_token"] = self.issue_id_token(client, grant, nonce=nonce, access_token=token)
        wants_refresh = "offline_access" in grant.scope if refresh is None else refresh
        if wants_refresh and "refresh_token" in client.grant_types:
            body["refresh_token"] = self.issue_refresh_token(grant, client.client_id)
        body.update(extra or {})
        return body

    def active_token(self, token: str) -> TokenRecord | None:
        """The record of an issued, unexpired, unrevoked token (opaque value or JWT), or None."""
        record = self.state.tokens.get(token)
        if record is None and token.count(".") == 2:
            try:
                claims = self.verify_jwt(token, typ="at+jwt")
            except ValueError:
                return None
            record = self.state.tokens.get(str(claims.get("jti")))
        if record is None or record.revoked or record.expires_at <= self.now():
            return None
        if record.grant_id is not None:
            grant = self.state.grants.get(record.grant_id)
            if grant is None or grant.revoked:
                return None
        return record

    # -- sessions and logout ------------------------------------------------------------------

    def new_session(self, sub: str, acr: str) -> Session:
        now = self.now()
        session = Session(
            id=random_token("", 24),
            sid=random_token("", 12),
            sub=sub,
            auth_time=int(now),
            acr=acr,
            expires_at=now + self.config.session_lifetime,
        )
        self.state.sessions[session.id] = session
        return session

    def session_from_cookie(self, request: Request) -> Session | None:
        session_id = request.cookies.get(self.session_cookie_name)
        session = self.state.sessions.get(session_id or "")
        if session is None or session.expires_at <= self.now():
            return None
        return session

    @property
    def session_cookie_name(self) -> str:
        return "op_session"

    async def backchannel_logout(
        self, *, sid: str | None = None, sub: str | None = None
    ) -> list[BackchannelDelivery]:
        """End sessions (by ``sid`` or all of ``sub``'s) and notify relying parties.

        Implements Back-Channel Logout 1.0 section 2.5: a logout token (``typ: logout+jwt``) is
        POSTed form-encoded to each client's ``backchannel_logout_uri``.

        Example::

            deliveries = await provider.backchannel_logout(sub="alice")
            assert deliveries[0].status_code == 200
        """
        from oidc_asgi.testing._logout import end_sessions

        sessions = [
            s
            for s in self.state.sessions.values()
            if (sid is not None and s.sid == sid) or (sub is not None and s.sub == sub)
        ]
        return await end_sessions(self, sessions)

    # -- token minting for tests --------------------------------------------------------------

    def mint_access_token(
        self,
        *,
        sub: str = "alice",
        scopes: Sequence[str] = (),
        audience: str | None = None,
        lifetime: int | None = None,
        claims: Mapping[str, Any] | None = None,
        client_id: str = "webapp",
        alg: str | None = None,
    ) -> str:
        """A valid RFC 9068 access token signed by this provider, for tests.

        ``audience`` defaults to the first JWT API; ``claims`` are merged last (``None``
        values remove a claim). The token is recorded, so introspection knows it.

        Example::

            token = provider.mint_access_token(
                sub="alice", audience="http://127.0.0.1:8001/api", scopes=["read:messages"]
            )
        """
        from oidc_asgi.testing.tokens import mint_access_token

        return mint_access_token(
            self,
            sub=sub,
            scopes=scopes,
            audience=audience,
            lifetime=lifetime,
            claims=claims,
            client_id=client_id,
            alg=alg,
        )

    def mint_id_token(
        self,
        *,
        sub: str = "alice",
        client_id: str = "webapp",
        nonce: str | None = None,
        lifetime: int | None = None,
        claims: Mapping[str, Any] | None = None,
        alg: str = "RS256",
    ) -> str:
        """A valid ID token for ``client_id``, for tests.

        Example::

            id_token = provider.mint_id_token(sub="alice", client_id="webapp", nonce="n-1")
        """
        now = int(self.now())
        body: dict[str, Any] = {
            "iss": self.issuer,
            "sub": sub,
            "aud": client_id,
            "azp": client_id,
            "iat": now,
            "exp": now + (lifetime or self.config.id_token_lifetime),
            "auth_time": now,
        }
        if nonce is not None:
            body["nonce"] = nonce
        return self.signing_key(alg).sign(override_claims(body, claims))

    def unverified_claims(self, token: str) -> dict[str, Any]:
        """Decode a JWT's claims without verifying (for inspection in tests only)."""
        return split_jws(token)[1]
