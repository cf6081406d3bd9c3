"""Userinfo (OIDC Core 5.3), introspection (RFC 7662) and revocation (RFC 7009)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from oidc_asgi.testing._http import (
    NO_STORE,
    OAuthFailure,
    authenticate_client,
    bearer_token,
    need,
    one,
    read_params,
)
from oidc_asgi.testing._state import TokenRecord

if TYPE_CHECKING:
    from oidc_asgi.testing.provider import DevProvider

REALM = 'realm="dev-provider"'


def _bearer_error(error: str, description: str, status: int) -> OAuthFailure:
    # RFC 6750 section 3: the challenge names the error when a token was presented.
    challenge = (
        f'Bearer {REALM}, error="{error}"' if error != "invalid_request" else f"Bearer {REALM}"
    )
    return OAuthFailure(error, description, status=status, headers={"WWW-Authenticate": challenge})


async def userinfo(op: DevProvider, request: Request) -> Response:
    """OIDC Core 5.3: claims about the user, for an access token carrying ``openid``."""
    try:
        params = await read_params(request)
        token = bearer_token(request, params)
        if token is None:
            raise _bearer_error("invalid_request", "access token required", 401)
        record = op.active_token(token)
        if record is None or record.kind != "access_token":
            raise _bearer_error("invalid_token", "access token is not valid", 401)
        if "openid" not in record.scope:
            raise _bearer_error("insufficient_scope", "token lacks the openid scope", 403)
    except OAuthFailure as failure:
        return failure.response()
    claims = {"sub": record.sub, **op.user_claims(record.sub, record.scope)}
    return JSONResponse(claims, headers=NO_STORE)


def _lookup(op: DevProvider, token: str) -> TokenRecord | None:
    """The stored record for a token, active or not (JWTs are found by their ``jti``)."""
    record = op.state.tokens.get(token)
    if record is None and token.count(".") == 2:
        try:
            claims = op.verify_jwt(token, typ="at+jwt")
        except ValueError:
            return None
        record = op.state.tokens.get(str(claims.get("jti")))
    return record


async def introspect(op: DevProvider, request: Request) -> Response:
    """RFC 7662 section 2: only authenticated confidential clients may ask."""
    try:
        params = await read_params(request)
        client = authenticate_client(op, request, params)
        if client.is_public:
            raise OAuthFailure(
                "invalid_client", "introspection needs client credentials", status=401
            )
        token = need(params, "token")
    except OAuthFailure as failure:
        return failure.response()
    record = op.active_token(token)
    if record is None or record.used:
        return JSONResponse({"active": False}, headers=NO_STORE)
    body: dict[str, Any] = {
        "active": True,
        "iss": op.issuer,
        "sub": record.sub,
        "client_id": record.client_id,
        "scope": " ".join(record.scope),
        "exp": record.expires_at,
        "iat": record.issued_at,
        "token_type": "Bearer" if record.kind == "access_token" else "refresh_token",
    }
    if record.audience is not None:
        body["aud"] = record.audience
    user = op.config.user_by_sub(record.sub)
    if user is not None:
        body["username"] = user.username
    for name in ("act", "auth_time", "acr", "jti"):
        if name in record.claims:
            body[name] = record.claims[name]
    return JSONResponse(body, headers=NO_STORE)


async def revoke(op: DevProvider, request: Request) -> Response:
    """RFC 7009 section 2: revoke the client's own token; unknown tokens still get 200."""
    try:
        params = await read_params(request)
        client = authenticate_client(op, request, params)
        token = need(params, "token")
        hint = one(params, "token_type_hint")
        if hint is not None and hint not in ("access_token", "refresh_token"):
            raise OAuthFailure("unsupported_token_type", "unsupported token_type_hint")
    except OAuthFailure as failure:
        return failure.response()
    record = _lookup(op, token)
    if record is not None and record.client_id == client.client_id:
        record.revoked = True
        if record.kind == "refresh_token" and record.grant_id is not None:
            # Section 2.1: revoking a refresh token also invalidates its access tokens.
            op.state.revoke_grant(record.grant_id)
    return Response(status_code=200, headers=NO_STORE)
