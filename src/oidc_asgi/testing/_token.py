"""Token endpoint (RFC 6749 section 3.2): every grant the development provider supports.

Which access token a user grant gets (authorization_code and refresh_token) is decided here, at
the token endpoint, as node-oidc-provider decides it (feature ``resourceIndicators``):

- ``resource`` (RFC 8707) or Auth0-style ``audience`` in the token request names the API; it must
  be one of the APIs granted at the authorization endpoint, else ``invalid_target`` (RFC 8707
  section 2). The access token is then that API's (an RFC 9068 JWT for a ``jwt`` API).
- None named and ``openid`` granted: the access token is opaque and good only at userinfo, even
  when an API was named at the authorization endpoint (RFC 8707 section 2.2 lets the client pick
  per token request). Name the API again at the token endpoint, or on a refresh, to get its token.
- None named, no ``openid`` and exactly one API granted: that API's token (plain OAuth 2.0).

client_credentials, token exchange and on-behalf-of name their API in the token request itself.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from oidc_asgi.testing._config import (
    DEVICE_CODE_GRANT,
    JWT_BEARER_GRANT,
    TOKEN_EXCHANGE_GRANT,
    DevAPI,
    DevClient,
)
from oidc_asgi.testing._http import (
    NO_STORE,
    OAuthFailure,
    Params,
    authenticate_client,
    many,
    need,
    one,
    read_params,
)

if TYPE_CHECKING:
    from oidc_asgi.testing._state import TokenRecord
    from oidc_asgi.testing.provider import DevProvider

ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"
JWT_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:jwt"


async def token(op: DevProvider, request: Request) -> Response:
    try:
        params = await read_params(request)
        client = authenticate_client(op, request, params)
        grant_type = need(params, "grant_type")
        handler = GRANTS.get(grant_type)
        if handler is None:
            raise OAuthFailure("unsupported_grant_type", "grant_type is not supported")
        if grant_type not in client.grant_types:
            raise OAuthFailure("unauthorized_client", "client may not use this grant_type")
        body = handler(op, client, params)
    except OAuthFailure as failure:
        return failure.response()
    return JSONResponse(body, headers=NO_STORE)


def s256(verifier: str) -> str:
    """PKCE ``S256`` transform (RFC 7636 section 4.2)."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def requested_resources(params: Params) -> tuple[str, ...]:
    return tuple(dict.fromkeys(many(params, "resource") + many(params, "audience")))


def api_for_grant(
    op: DevProvider, granted: Sequence[str], scope: Sequence[str], asked: Sequence[str]
) -> DevAPI | None:
    """The API whose token a user grant gets; None for the opaque userinfo token.

    RFC 8707 section 2 and 2.2: the token request names one of the resources granted. Like
    node-oidc-provider, with none named an OpenID grant gets the userinfo token, not the API's.
    """
    if asked:
        if any(r not in granted for r in asked):
            raise OAuthFailure("invalid_target", "resource was not part of the grant")
        return op.resolve_api(asked)
    if "openid" not in scope and len(granted) == 1:
        return op.resolve_api(granted)
    return None


def authorization_code(op: DevProvider, client: DevClient, params: Params) -> dict[str, Any]:
    """RFC 6749 section 4.1.3 with PKCE (RFC 7636 section 4.6)."""
    code = need(params, "code")
    record = op.state.codes.get(code)
    grant = op.state.grants.get(record.grant_id) if record else None
    if record is None or grant is None or grant.client_id != client.client_id:
        raise OAuthFailure("invalid_grant", "authorization code is invalid")
    if record.used:
        # RFC 6749 section 4.1.2: a reused code revokes what was issued from it.
        op.state.revoke_grant(grant.id)
        raise OAuthFailure("invalid_grant", "authorization code was already used")
    if record.expires_at <= op.now() or grant.revoked:
        raise OAuthFailure("invalid_grant", "authorization code expired")
    if one(params, "redirect_uri") != record.redirect_uri:
        raise OAuthFailure("invalid_grant", "redirect_uri does not match the authorization request")
    verifier = one(params, "code_verifier")
    if record.code_challenge is not None:
        if verifier is None or not hmac.compare_digest(s256(verifier), record.code_challenge):
            raise OAuthFailure("invalid_grant", "PKCE verification failed")
    elif verifier is not None:
        raise OAuthFailure("invalid_grant", "code_verifier without code_challenge")
    api = api_for_grant(op, grant.resources, grant.scope, requested_resources(params))
    record.used = True
    return op.token_response(client, grant, scope=grant.scope, api=api, nonce=record.nonce)


def refresh_token(op: DevProvider, client: DevClient, params: Params) -> dict[str, Any]:
    """RFC 6749 section 6, with rotation and reuse detection (OAuth 2.0 Security BCP 4.14)."""
    value = need(params, "refresh_token")
    record = op.state.tokens.get(value)
    if record is None or record.kind != "refresh_token" or record.client_id != client.client_id:
        raise OAuthFailure("invalid_grant", "refresh token is invalid")
    grant = op.state.grants.get(record.grant_id or "")
    if grant is None:
        raise OAuthFailure("invalid_grant", "refresh token is invalid")
    if record.used:
        op.state.revoke_grant(grant.id)
        raise OAuthFailure("invalid_grant", "refresh token was already used")
    if record.revoked or grant.revoked or record.expires_at <= op.now():
        raise OAuthFailure("invalid_grant", "refresh token is no longer valid")
    asked_scope = one(params, "scope")
    scope = grant.scope
    if asked_scope is not None:
        scope = tuple(asked_scope.split())
        if any(s not in grant.scope for s in scope):
            raise OAuthFailure("invalid_scope", "scope exceeds the original grant")
    api = api_for_grant(op, grant.resources, scope, requested_resources(params))
    record.used = True
    return op.token_response(client, grant, scope=scope, api=api, refresh=True)


def _api_for_scopes(
    op: DevProvider, resources: Sequence[str], scope: Sequence[str]
) -> tuple[DevAPI, tuple[str, ...]]:
    """The target API and the scopes granted there; all its scopes when none are asked."""
    api = op.resolve_api(resources)
    if api is None:
        owners = [a for a in op.config.apis if scope and all(s in a.scopes for s in scope)]
        if len(owners) != 1:
            raise OAuthFailure("invalid_target", "name the API with resource or audience")
        api = owners[0]
    if any(s not in api.scopes for s in scope):
        raise OAuthFailure("invalid_scope", "scope not defined by the requested API")
    return api, tuple(scope) or api.scopes


def client_credentials(op: DevProvider, client: DevClient, params: Params) -> dict[str, Any]:
    """RFC 6749 section 4.4: the client acts on its own behalf (``sub`` = ``client_id``)."""
    scope = tuple((one(params, "scope") or "").split())
    api, granted = _api_for_scopes(op, requested_resources(params), scope)
    access_token, lifetime, granted = op.issue_access_token(
        client_id=client.client_id, sub=client.client_id, scope=granted, api=api
    )
    return {
        "access_token": access_token,
        "token_type": "Bearer",
        "expires_in": lifetime,
        "scope": " ".join(granted),
    }


def _audiences(record: TokenRecord) -> tuple[str, ...]:
    # ``aud`` may be a string or a list (RFC 7519 section 4.1.3); minted tokens may set either.
    aud = record.claims.get("aud", record.audience)
    if isinstance(aud, str):
        return (aud,)
    if isinstance(aud, list):
        return tuple(a for a in aud if isinstance(a, str))
    return ()


def _issued_for(op: DevProvider, client: DevClient, record: TokenRecord) -> bool:
    """Whether the token's audience is ``client`` itself: its client_id or an API it owns.

    Real providers refuse to exchange a token meant for someone else: Entra's on-behalf-of wants
    the assertion's ``aud`` to be the calling app (its client id or one of its application URIs,
    AADSTS500131, formerly AADSTS50013); Keycloak's and node-oidc-provider's token-exchange
    policies want the subject token issued to or for the requesting client.
    """
    own = {client.client_id, *(a.identifier for a in op.config.apis_owned_by(client.client_id))}
    return any(aud in own for aud in _audiences(record))


def token_exchange(op: DevProvider, client: DevClient, params: Params) -> dict[str, Any]:
    """RFC 8693 section 2: exchange an access token this provider issued for one for another API.

    The subject token must be an active access token whose ``aud`` is the calling client: its
    client id or an API it owns (``DevAPI.owner_client_id``); anything else is ``invalid_request``
    (section 2.2.2), as under the token-exchange policies of Keycloak and node-oidc-provider.
    The new token keeps the subject and carries an ``act`` claim naming the actor (the actor
    token's subject, or the calling client), nesting any earlier ``act`` (section 4.1).
    """
    subject_token = need(params, "subject_token")
    subject_type = need(params, "subject_token_type")
    if subject_type not in (ACCESS_TOKEN_TYPE, JWT_TOKEN_TYPE):
        raise OAuthFailure("invalid_request", "unsupported subject_token_type")
    requested_type = one(params, "requested_token_type") or ACCESS_TOKEN_TYPE
    if requested_type not in (ACCESS_TOKEN_TYPE, JWT_TOKEN_TYPE):
        raise OAuthFailure("invalid_request", "unsupported requested_token_type")
    subject = op.active_token(subject_token)
    if subject is None or subject.kind != "access_token":
        raise OAuthFailure("invalid_request", "subject_token is not valid")
    if not _issued_for(op, client, subject):
        raise OAuthFailure("invalid_request", "subject_token was not issued for this client")
    actor_sub = client.client_id
    actor_token = one(params, "actor_token")
    if actor_token is not None:
        if one(params, "actor_token_type") not in (ACCESS_TOKEN_TYPE, JWT_TOKEN_TYPE):
            raise OAuthFailure("invalid_request", "unsupported actor_token_type")
        actor = op.active_token(actor_token)
        if actor is None:
            raise OAuthFailure("invalid_request", "actor_token is not valid")
        actor_sub = actor.sub
    scope = tuple((one(params, "scope") or "").split())
    api, granted = _api_for_scopes(op, requested_resources(params), scope)
    if requested_type == JWT_TOKEN_TYPE and api.token_format != "jwt":
        raise OAuthFailure("invalid_target", "that API uses opaque tokens")
    act: dict[str, Any] = {"sub": actor_sub}
    if "act" in subject.claims:
        act["act"] = subject.claims["act"]
    grant = op.state.grants.get(subject.grant_id or "")
    access_token, lifetime, granted = op.issue_access_token(
        client_id=client.client_id,
        sub=subject.sub,
        scope=granted,
        api=api,
        grant=grant,
        extra_claims={"act": act},
    )
    return {
        "access_token": access_token,
        "issued_token_type": requested_type,
        "token_type": "Bearer",
        "expires_in": lifetime,
        "scope": " ".join(granted),
    }


def on_behalf_of(op: DevProvider, client: DevClient, params: Params) -> dict[str, Any]:
    """Microsoft Entra ID's on-behalf-of flow: RFC 7523 jwt-bearer grant with
    ``requested_token_use=on_behalf_of``; ``scope`` may use ``{api}/.default`` or ``{api}/{scope}``.

    Like Entra, the assertion's ``aud`` must be the calling app (its client id or an API it owns,
    ``DevAPI.owner_client_id``); otherwise ``invalid_grant`` (Entra's AADSTS500131).
    """
    if one(params, "requested_token_use") != "on_behalf_of":
        raise OAuthFailure("invalid_request", "requested_token_use must be on_behalf_of")
    assertion = need(params, "assertion")
    subject = op.active_token(assertion)
    if subject is None or subject.kind != "access_token" or assertion.count(".") != 2:
        raise OAuthFailure("invalid_grant", "assertion is not a valid access token")
    if not _issued_for(op, client, subject):
        raise OAuthFailure(
            "invalid_grant", "AADSTS500131: assertion audience does not match the calling client"
        )
    resources = list(requested_resources(params))
    short: list[str] = []
    for value in need(params, "scope").split():
        if value in ("openid", "profile", "email", "offline_access"):
            continue
        owner = next((a for a in op.config.apis if value.startswith(a.identifier + "/")), None)
        if owner is None:
            short.append(value)
            continue
        resources.append(owner.identifier)
        suffix = value[len(owner.identifier) + 1 :]
        if suffix != ".default":
            short.append(suffix)
    api, granted = _api_for_scopes(op, tuple(dict.fromkeys(resources)), tuple(short))
    grant = op.state.grants.get(subject.grant_id or "")
    access_token, lifetime, granted = op.issue_access_token(
        client_id=client.client_id, sub=subject.sub, scope=granted, api=api, grant=grant
    )
    return {
        "access_token": access_token,
        "token_type": "Bearer",
        "expires_in": lifetime,
        "ext_expires_in": lifetime,
        "scope": " ".join(granted),
    }


def _device_code(op: DevProvider, client: DevClient, params: Params) -> dict[str, Any]:
    from oidc_asgi.testing._device import poll

    return poll(op, client, params)


GRANTS = {
    "authorization_code": authorization_code,
    "refresh_token": refresh_token,
    "client_credentials": client_credentials,
    DEVICE_CODE_GRANT: _device_code,
    TOKEN_EXCHANGE_GRANT: token_exchange,
    JWT_BEARER_GRANT: on_behalf_of,
}
