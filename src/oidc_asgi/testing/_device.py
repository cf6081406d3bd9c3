"""Device authorization grant (RFC 8628): the authorization endpoint, verification page, polling."""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode, urlsplit

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from oidc_asgi.testing._authorize import check_credentials
from oidc_asgi.testing._config import DEVICE_CODE_GRANT, DevClient
from oidc_asgi.testing._http import (
    NO_STORE,
    OAuthFailure,
    Params,
    authenticate_client,
    esc,
    hidden_inputs,
    many,
    need,
    one,
    page,
    read_params,
)
from oidc_asgi.testing._keys import random_token
from oidc_asgi.testing._state import DeviceRecord, Session

if TYPE_CHECKING:
    from oidc_asgi.testing.provider import DevProvider

# RFC 8628 section 6.1: no vowels, no look-alike characters.
USER_CODE_ALPHABET = "BCDFGHJKLMNPQRSTVWXZ"


def _user_code() -> str:
    chars = "".join(secrets.choice(USER_CODE_ALPHABET) for _ in range(8))
    return f"{chars[:4]}-{chars[4:]}"


def _normalise(user_code: str) -> str:
    return "".join(c for c in user_code.upper() if c in USER_CODE_ALPHABET)


async def authorize(op: DevProvider, request: Request) -> Response:
    """RFC 8628 section 3.1-3.2: issue a device code and a user code."""
    try:
        params = await read_params(request)
        client = authenticate_client(op, request, params)
        if DEVICE_CODE_GRANT not in client.grant_types:
            raise OAuthFailure("unauthorized_client", "client may not use the device flow")
        scope = tuple((one(params, "scope") or "").split())
        op.check_scopes(scope)
        resources = tuple(dict.fromkeys(many(params, "resource") + many(params, "audience")))
        for resource in resources:
            if op.config.api(resource) is None:
                raise OAuthFailure("invalid_target", "unknown resource")
    except OAuthFailure as failure:
        return failure.response()
    record = DeviceRecord(
        device_code=random_token("dev_dc_"),
        user_code=_user_code(),
        client_id=client.client_id,
        scope=scope,
        resources=resources,
        expires_at=op.now() + op.config.device_code_lifetime,
        interval=op.config.device_poll_interval,
    )
    op.state.devices[record.device_code] = record
    verification_uri = op.endpoint("device")
    complete = f"{verification_uri}?{urlencode({'user_code': record.user_code})}"
    body = {
        "device_code": record.device_code,
        "user_code": record.user_code,
        "verification_uri": verification_uri,
        "verification_uri_complete": complete,
        "expires_in": op.config.device_code_lifetime,
        "interval": record.interval,
    }
    return JSONResponse(body, headers=NO_STORE)


def _find(op: DevProvider, user_code: str) -> DeviceRecord | None:
    wanted = _normalise(user_code)
    for record in op.state.devices.values():
        if (
            record.status == "pending"
            and record.expires_at > op.now()
            and _normalise(record.user_code) == wanted
        ):
            return record
    return None


def _form(op: DevProvider, user_code: str, session: Session | None, message: str = "") -> str:
    who = (
        f"<p>Signed in as <b>{esc(session.sub)}</b>.</p>"
        if session
        else '<label>Username <input name="username"></label>'
        '<label>Password <input name="password" type="password"></label>'
    )
    error = f'<p role="alert">{esc(message)}</p>' if message else ""
    return (
        f'{error}<form method="post" action="{esc(op.endpoint("device"))}">'
        f'<label>Code <input name="user_code" value="{esc(user_code)}" required></label>{who}'
        '<button type="submit" name="action" value="approve">Approve</button>'
        '<button type="submit" name="action" value="deny">Deny</button></form>'
    )


async def verify(op: DevProvider, request: Request) -> Response:
    """RFC 8628 section 3.3: the user enters the code, signs in and approves or denies."""
    session = op.session_from_cookie(request)
    try:
        params = await read_params(request)
    except OAuthFailure as failure:
        return page("Device sign-in", f"<p>{esc(failure.description)}</p>", status=400)
    user_code = one(params, "user_code") or ""
    if request.method == "GET":
        return page("Device sign-in", _form(op, user_code, session))
    record = _find(op, user_code)
    if record is None:
        body = _form(op, "", session, "Unknown or expired code.")
        return page("Device sign-in", body, status=400)
    if one(params, "action") == "deny":
        record.status = "denied"
        return page("Device sign-in", "<p>Access denied. You can close this window.</p>")
    new_cookie = False
    if session is None:
        sub = check_credentials(op, one(params, "username") or "", one(params, "password") or "")
        if sub is None:
            body = _form(op, user_code, None, "Unknown user or wrong password.")
            return page("Device sign-in", body, status=401)
        session = op.new_session(sub, op.config.acr_values[0])
        new_cookie = True
    session.clients.add(record.client_id)
    record.status = "approved"
    record.sub, record.auth_time, record.sid = session.sub, session.auth_time, session.sid
    response = page(
        "Device sign-in", f"<p>Device approved. Return to your device.</p>{hidden_inputs({})}"
    )
    if new_cookie:
        response.set_cookie(
            op.session_cookie_name,
            session.id,
            httponly=True,
            samesite="lax",
            path=urlsplit(op.issuer).path or "/",
        )
    return response


def poll(op: DevProvider, client: DevClient, params: Params) -> dict[str, Any]:
    """RFC 8628 section 3.4-3.5: ``authorization_pending``, ``slow_down``, ``access_denied``,
    ``expired_token``, then tokens exactly once."""
    record = op.state.devices.get(need(params, "device_code"))
    if record is None or record.client_id != client.client_id:
        raise OAuthFailure("invalid_grant", "device code is invalid")
    now = op.now()
    if record.expires_at <= now:
        raise OAuthFailure("expired_token", "device code expired")
    if record.status == "denied":
        raise OAuthFailure("access_denied", "the user denied the request")
    if record.status == "consumed":
        raise OAuthFailure("invalid_grant", "device code was already used")
    if record.status == "pending":
        too_fast = record.last_poll is not None and now - record.last_poll < record.interval
        record.last_poll = now
        if too_fast:
            record.interval += 5
            raise OAuthFailure("slow_down", "polling too fast")
        raise OAuthFailure("authorization_pending", "the user has not finished yet")
    record.status = "consumed"
    assert record.sub is not None
    grant = op.new_grant(
        client.client_id,
        record.sub,
        record.scope,
        resources=record.resources,
        auth_time=record.auth_time,
        acr=op.config.acr_values[0],
    )
    grant.sid = record.sid
    # The API is chosen at the token endpoint, as for the code grant (RFC 8707 section 2.2).
    from oidc_asgi.testing._token import api_for_grant, requested_resources

    api = api_for_grant(op, grant.resources, grant.scope, requested_resources(params))
    return op.token_response(client, grant, scope=grant.scope, api=api)
