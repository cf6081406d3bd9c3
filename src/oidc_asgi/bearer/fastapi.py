"""FastAPI glue: a ``Security`` dependency that validates, authorizes and documents itself.

This is the only module of oidc-asgi that imports FastAPI (the ``fastapi`` extra).

``BearerAuth`` is a FastAPI security scheme: used as ``Security(auth, scopes=[...])`` (or in
``Annotated[Principal, Security(...)]``) it validates the token, requires the listed scopes
(all of them), hands the route a typed ``Principal``, and appears in the OpenAPI document as an
OAuth 2.0 authorization-code flow against the issuer's endpoints, with each route's scopes, so
Swagger UI's *Authorize* button works (with PKCE: see ``swagger_ui_init_oauth``). It serves
HTTP and WebSocket routes alike; a rejected WebSocket is closed with 1008.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import HTTPException, WebSocketException
from fastapi.openapi.models import OAuth2 as OAuth2Model
from fastapi.openapi.models import OAuthFlowAuthorizationCode, OAuthFlows, SecurityBase
from fastapi.openapi.models import OpenIdConnect as OpenIdConnectModel
from fastapi.security import SecurityScopes
from fastapi.security.base import SecurityBase as SecurityScheme
from starlette.requests import HTTPConnection, Request

from oidc_asgi.bearer._principal import Principal
from oidc_asgi.bearer._scopes import Rule, Scopes
from oidc_asgi.bearer._validator import BearerValidator
from oidc_asgi.errors import ConfigurationError, OIDCError, ProviderUnavailable, TokenError

__all__ = ["BearerAuth", "OptionalBearerAuth", "swagger_ui_init_oauth"]

WS_POLICY_VIOLATION = 1008
_MAX_SCOPE_SETS = 1024  # distinct Security(scopes=...) lists remembered (one per route, usually)


class BearerAuth(SecurityScheme):
    """A FastAPI dependency protecting routes with the access tokens ``validator`` accepts.

    ``scopes`` documents the API's scopes for OpenAPI (``{"read:messages": "Read messages"}``);
    the scopes a route *requires* are the ones given to ``Security(auth, scopes=[...])``.
    ``authorization_url`` / ``token_url`` default to the issuer's endpoints once
    :meth:`prefetch` ran (in the lifespan); before that the document points Swagger UI at the
    issuer's discovery document (``openIdConnect``). ``rules`` apply to every route; add more
    per route with :meth:`require`.

    Example::

        auth = BearerAuth(validator, scopes={"read:messages": "Read your messages"})

        @app.get("/messages")
        async def messages(user: Annotated[Principal, Security(auth, scopes=["read:messages"])]):
            return {"sub": user.subject}
    """

    def __init__(
        self,
        validator: BearerValidator,
        *,
        scopes: Mapping[str, str] | None = None,
        authorization_url: str | None = None,
        token_url: str | None = None,
        scheme_name: str = "OAuth2",
        description: str | None = None,
        rules: Sequence[Rule] = (),
    ) -> None:
        if not isinstance(validator, BearerValidator):
            raise ConfigurationError("validator must be a BearerValidator", code="invalid_setting")
        self.validator = validator
        self.scheme_name = scheme_name
        self.description = description
        self.documented_scopes = dict(scopes or {})
        # Shared with the copies made by require(), so prefetch() on one documents them all.
        self._endpoints: dict[str, str | None] = {
            "authorization_url": authorization_url,
            "token_url": token_url,
        }
        self.rules = tuple(rules)
        # Per route scope list -> its rules, built once (a route's scopes never change).
        self._rules_for: dict[tuple[str, ...], tuple[Rule, ...]] = {}
        # BearerConfig is frozen: whether a form body can carry the token is known now.
        self._forms = "form" in validator.config.token_sources

    @property
    def authorization_url(self) -> str | None:
        """The authorization endpoint shown to Swagger UI (from discovery after prefetch)."""
        return self._endpoints["authorization_url"]

    @property
    def token_url(self) -> str | None:
        """The token endpoint shown to Swagger UI (from discovery after prefetch)."""
        return self._endpoints["token_url"]

    @property
    def model(self) -> SecurityBase:
        """The OpenAPI security scheme object (read by FastAPI when it builds the document)."""
        if self.authorization_url and self.token_url:
            return OAuth2Model(
                flows=OAuthFlows(
                    authorizationCode=OAuthFlowAuthorizationCode(
                        authorizationUrl=self.authorization_url,
                        tokenUrl=self.token_url,
                        scopes=self.documented_scopes,
                    )
                ),
                description=self.description,
            )
        issuer = self.validator.config.issuers[0]
        return OpenIdConnectModel(
            openIdConnectUrl=issuer.rstrip("/") + "/.well-known/openid-configuration",
            description=self.description,
        )

    @model.setter
    def model(self, value: SecurityBase) -> None:  # pragma: no cover - FastAPI never sets it
        raise AttributeError("BearerAuth.model is computed")

    def require(self, *rules: Rule) -> BearerAuth:
        """The same scheme with extra rules (claim predicates, step-up) for some routes.

        Example::

            admin = auth.require(ClaimIncludes("groups", "admins"), StepUp(max_age=300))

            @app.delete("/messages/{id}")
            async def delete(id: str, user: Annotated[Principal, Security(admin)]): ...
        """
        clone = BearerAuth(
            self.validator,
            scopes=self.documented_scopes,
            scheme_name=self.scheme_name,
            description=self.description,
            rules=(*self.rules, *rules),
        )
        clone._endpoints = self._endpoints
        return clone

    def optional(self) -> OptionalBearerAuth:
        """The same scheme for routes that also serve anonymous callers.

        Without credentials the route gets ``None``; a token that is present is judged as
        usual: invalid is 401, a malformed request 400, missing scopes or rules 403, provider
        down 503. So a client can never be downgraded to anonymous by sending a bad token.

        Example::

            maybe_user = auth.optional()

            @app.get("/articles")
            async def articles(user: Annotated[Principal | None, Security(maybe_user)]):
                return public_articles() + (private_articles(user) if user else [])
        """
        return OptionalBearerAuth(self)

    async def prefetch(self) -> None:
        """Fetch keys and metadata now and take the OAuth endpoints for OpenAPI from discovery.

        Example::

            @asynccontextmanager
            async def lifespan(app):
                await auth.prefetch()
                yield
        """
        validator = self.validator
        await validator.prefetch()
        provider = validator.providers.get(validator.config.issuers[0])
        if provider is not None and not (self.authorization_url and self.token_url):
            meta = await provider.metadata()
            self._endpoints["authorization_url"] = (
                self.authorization_url or meta.authorization_endpoint
            )
            self._endpoints["token_url"] = self.token_url or meta.token_endpoint

    def _route_rules(self, scopes: tuple[str, ...]) -> tuple[Rule, ...]:
        rules = self._rules_for.get(scopes)
        if rules is None:
            rules = (Scopes(*scopes), *self.rules) if scopes else self.rules
            if len(self._rules_for) < _MAX_SCOPE_SETS:
                self._rules_for[scopes] = rules
        return rules

    async def __call__(self, conn: HTTPConnection, security_scopes: SecurityScopes) -> Principal:
        # _authenticate(optional=False) inlined: this runs on every protected request, and one
        # coroutine less is measurable next to a verified-token cache hit.
        try:
            scopes = tuple(security_scopes.scopes)
            rules = self._rules_for.get(scopes)
            if rules is None:
                rules = self._route_rules(scopes)
            validator = self.validator
            form_tokens = await self._form_tokens(conn) if self._forms else None
            if not form_tokens:
                # validator.authenticate() inlined: a token verified before is answered
                # without awaiting anything.
                principal = validator._authenticate_cached(conn.scope, rules)
                if principal is not None:
                    return principal
            return await validator._authenticate(conn.scope, form_tokens, rules)
        except (TokenError, ProviderUnavailable, ConfigurationError) as exc:
            raise self._exception(exc, conn) from None

    async def _form_tokens(self, conn: HTTPConnection) -> list[str] | None:
        validator = self.validator
        if validator.wants_form(conn.scope) and isinstance(conn, Request):
            return validator.form_tokens(await conn.body())
        return None

    async def _authenticate(
        self, conn: HTTPConnection, security_scopes: SecurityScopes, *, optional: bool
    ) -> Principal | None:
        try:
            rules = self._route_rules(tuple(security_scopes.scopes))
            form_tokens = await self._form_tokens(conn) if self._forms else None
            return await self.validator.authenticate(
                conn.scope, form_tokens=form_tokens, rules=rules
            )
        except TokenError as exc:
            if optional and exc.code == "missing_token":
                return None
            raise self._exception(exc, conn) from None
        except (ProviderUnavailable, ConfigurationError) as exc:
            raise self._exception(exc, conn) from None

    def _exception(self, error: OIDCError, conn: HTTPConnection) -> Exception:
        challenge = self.validator.challenge(error, conn.scope)
        if conn.scope["type"] == "websocket":
            return WebSocketException(WS_POLICY_VIOLATION, reason=challenge.error or "")
        detail: Any = challenge.description or (
            "service unavailable" if challenge.status == 503 else "authentication required"
        )
        if self.validator.config.json_body and challenge.error:
            detail = {"error": challenge.error, "error_description": challenge.description}
        return HTTPException(challenge.status, detail=detail, headers=challenge.header_dict())


class OptionalBearerAuth(SecurityScheme):
    """``BearerAuth`` for routes that also serve anonymous callers (see
    :meth:`BearerAuth.optional`): ``None`` without credentials, the usual answers otherwise.

    Example::

        @app.get("/feed")
        async def feed(user: Annotated[Principal | None, Security(auth.optional())]): ...
    """

    def __init__(self, auth: BearerAuth) -> None:
        if not isinstance(auth, BearerAuth):
            raise ConfigurationError("auth must be a BearerAuth", code="invalid_setting")
        self.auth = auth
        self.scheme_name = auth.scheme_name
        self.description = auth.description

    @property
    def model(self) -> SecurityBase:
        """The OpenAPI security scheme object (the same as the wrapped ``BearerAuth``'s)."""
        return self.auth.model

    @model.setter
    def model(self, value: SecurityBase) -> None:  # pragma: no cover - FastAPI never sets it
        raise AttributeError("OptionalBearerAuth.model is computed")

    async def __call__(
        self, conn: HTTPConnection, security_scopes: SecurityScopes
    ) -> Principal | None:
        return await self.auth._authenticate(conn, security_scopes, optional=True)


def swagger_ui_init_oauth(
    client_id: str, *, scopes: Sequence[str] = (), audience: str | None = None
) -> dict[str, Any]:
    """Swagger UI settings for the authorization-code flow with PKCE (RFC 7636) and a public
    client; pass the result as ``FastAPI(swagger_ui_init_oauth=...)``. ``audience`` is sent as
    an extra authorization parameter for providers that need it (Auth0).

    Example::

        app = FastAPI(swagger_ui_init_oauth=swagger_ui_init_oauth("spa", scopes=["openid"]))
    """
    settings: dict[str, Any] = {"clientId": client_id, "usePkceWithAuthorizationCodeGrant": True}
    if scopes:
        settings["scopes"] = " ".join(scopes)
    if audience:
        settings["additionalQueryStringParams"] = {"audience": audience}
    return settings
