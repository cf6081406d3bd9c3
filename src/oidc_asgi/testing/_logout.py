"""RP-Initiated Logout 1.0 and Back-Channel Logout 1.0."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import httpx
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from oidc_asgi.testing._authorize import add_query
from oidc_asgi.testing._http import OAuthFailure, esc, hidden_inputs, one, page, read_params
from oidc_asgi.testing._keys import random_token
from oidc_asgi.testing._state import BackchannelDelivery, Session

if TYPE_CHECKING:
    from oidc_asgi.testing.provider import DevProvider

BACKCHANNEL_EVENT = "http://schemas.openid.net/event/backchannel-logout"


def _error(message: str) -> Response:
    # RP-Initiated Logout 1.0 section 3: never redirect to an unverified URI.
    return page("Logout error", f"<p>{esc(message)}</p>", status=400)


async def end_session(op: DevProvider, request: Request) -> Response:
    """RP-Initiated Logout 1.0 section 2: ``id_token_hint``, ``client_id``,
    ``post_logout_redirect_uri`` (registered, exact match) and ``state``.

    With a valid ``id_token_hint`` the logout happens at once; otherwise the user confirms on a
    page that posts ``logout=yes`` (section 6 recommends asking).
    """
    try:
        params = await read_params(request)
        hint = one(params, "id_token_hint")
        client_id = one(params, "client_id")
        redirect = one(params, "post_logout_redirect_uri")
        state = one(params, "state")
        confirmed = request.method == "POST" and one(params, "logout") == "yes"
    except OAuthFailure as failure:
        return _error(failure.description)
    hint_claims: dict[str, Any] | None = None
    if hint is not None:
        try:
            hint_claims = op.verify_jwt(hint)  # expired hints are fine (section 4)
        except ValueError:
            return _error("id_token_hint is not valid")
        aud = hint_claims.get("aud")
        hint_client = aud if isinstance(aud, str) else (aud or [None])[0]
        if client_id is not None and client_id != hint_client:
            return _error("client_id does not match id_token_hint")
        client_id = hint_client
    client = op.config.client(client_id or "") if client_id else None
    if redirect is not None and (
        client is None or redirect not in client.post_logout_redirect_uris
    ):
        return _error("post_logout_redirect_uri is not registered")

    if hint_claims is None and not confirmed:
        fields = {
            "client_id": client_id,
            "post_logout_redirect_uri": redirect,
            "state": state,
            "logout": "yes",
        }
        body = (
            f'<form method="post" action="{esc(op.endpoint("logout"))}">'
            f'{hidden_inputs(fields)}<button type="submit">Sign out</button></form>'
        )
        return page("Sign out?", body)

    sessions: list[Session] = []
    cookie_session = op.session_from_cookie(request)
    if cookie_session is not None:
        sessions.append(cookie_session)
    elif hint_claims is not None and isinstance(hint_claims.get("sid"), str):
        sessions += [s for s in op.state.sessions.values() if s.sid == hint_claims["sid"]]
    await end_sessions(op, sessions)

    response: Response
    if redirect is not None:
        target = add_query(redirect, {"state": state}) if state is not None else redirect
        response = RedirectResponse(target, status_code=303)
    else:
        response = page("Signed out", "<p>You are signed out.</p>")
    response.delete_cookie(op.session_cookie_name, path=urlsplit(op.issuer).path or "/")
    return response


def logout_token(op: DevProvider, client_id: str, session: Session) -> str:
    """Back-Channel Logout 1.0 section 2.4: ``typ: logout+jwt``, ``events``, ``sid``, no nonce."""
    now = int(op.now())
    client = op.config.client(client_id)
    alg = client.id_token_signed_response_alg if client else "RS256"
    claims = {
        "iss": op.issuer,
        "sub": session.sub,
        "aud": client_id,
        "iat": now,
        "exp": now + 120,
        "jti": random_token("", 16),
        "sid": session.sid,
        "events": {BACKCHANNEL_EVENT: {}},
    }
    return op.signing_key(alg).sign(claims, typ="logout+jwt")


async def _deliver(
    op: DevProvider, http: httpx.AsyncClient, client_id: str, uri: str, token: str
) -> BackchannelDelivery:
    try:
        response = await asyncio.wait_for(
            http.post(uri, data={"logout_token": token}), op.config.backchannel_timeout
        )
    except (httpx.HTTPError, asyncio.TimeoutError) as exc:
        return BackchannelDelivery(client_id, uri, token, None, error=type(exc).__name__)
    return BackchannelDelivery(client_id, uri, token, response.status_code)


async def end_sessions(op: DevProvider, sessions: Iterable[Session]) -> list[BackchannelDelivery]:
    """Drop sessions, revoke their online grants, and POST logout tokens (section 2.5)."""
    jobs: list[tuple[str, str, str]] = []
    for session in list(sessions):
        op.state.sessions.pop(session.id, None)
        for grant in op.state.grants.values():
            if grant.sid == session.sid and "offline_access" not in grant.scope:
                op.state.revoke_grant(grant.id)
        for client_id in sorted(session.clients):
            client = op.config.client(client_id)
            if client is not None and client.backchannel_logout_uri:
                token = logout_token(op, client_id, session)
                jobs.append((client_id, client.backchannel_logout_uri, token))
    if not jobs:
        return []
    if op.backchannel_client is not None:
        results = await asyncio.gather(*(_deliver(op, op.backchannel_client, *job) for job in jobs))
    else:
        async with httpx.AsyncClient() as http:
            results = await asyncio.gather(*(_deliver(op, http, *job) for job in jobs))
    op.state.deliveries.extend(results)
    return list(results)
