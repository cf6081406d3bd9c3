"""Authorization endpoint (RFC 6749 section 4.1, OIDC Core 3.1.2) and the login page."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING
from urllib.parse import urlencode, urlsplit, urlunsplit

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from oidc_asgi.testing._config import DevClient
from oidc_asgi.testing._http import (
    OAuthFailure,
    Params,
    esc,
    hidden_inputs,
    many,
    one,
    page,
    read_params,
    secrets_equal,
)
from oidc_asgi.testing._keys import random_token
from oidc_asgi.testing._state import AuthRequest, CodeRecord, Session

if TYPE_CHECKING:
    from oidc_asgi.testing.provider import DevProvider

PKCE_CHALLENGE = re.compile(r"^[A-Za-z0-9._~-]{43,128}$")
PROMPTS = ("none", "login", "consent", "select_account")
LOOPBACK_HOSTS = ("127.0.0.1", "[::1]")
TX_LIFETIME = 600


def redirect_uri_allowed(client: DevClient, uri: str) -> bool:
    """Exact match (OAuth 2.0 Security BCP 4.1.3); for native clients a loopback IP literal may
    use any port (RFC 8252 section 7.3). ``localhost`` is never treated as loopback here."""
    if uri in client.redirect_uris:
        return True
    if client.application_type != "native":
        return False
    try:
        asked = urlsplit(uri)
        asked_port = asked.port
    except ValueError:
        return False
    if asked.scheme != "http" or asked_port is None:
        return False
    for registered in client.redirect_uris:
        reg = urlsplit(registered)
        if (
            reg.scheme == "http"
            and reg.hostname is not None
            and reg.netloc.rsplit(":", 1)[0] in LOOPBACK_HOSTS
            and asked.netloc.rsplit(":", 1)[0] == reg.netloc.rsplit(":", 1)[0]
            and (asked.path, asked.query, asked.fragment) == (reg.path, reg.query, reg.fragment)
        ):
            return True
    return False


def add_query(uri: str, params: dict[str, str]) -> str:
    """Append parameters, keeping the redirect URI's own query (RFC 6749 section 3.1.2)."""
    parts = urlsplit(uri)
    query = parts.query + ("&" if parts.query else "") + urlencode(params)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, ""))


def deliver(
    op: DevProvider, redirect_uri: str, response_mode: str, params: dict[str, str | None]
) -> Response:
    """Send an authorization response (success or error) to the client, with RFC 9207 ``iss``."""
    values = {k: v for k, v in params.items() if v is not None}
    values["iss"] = op.issuer
    if response_mode == "form_post":
        # OAuth 2.0 Form Post Response Mode, section 2: an auto-submitting HTML form.
        body = (
            f'<form method="post" action="{esc(redirect_uri)}" id="form_post">'
            f"{hidden_inputs(values)}<noscript><button type=submit>Continue</button></noscript>"
            "</form><script>document.getElementById('form_post').submit()</script>"
        )
        return page("Submitting", body)
    return RedirectResponse(
        add_query(redirect_uri, values), status_code=303, headers={"Cache-Control": "no-store"}
    )


def _error_page(message: str) -> Response:
    # RFC 6749 section 4.1.2.1: never redirect to an unverified redirect_uri.
    return page("Authorization error", f"<p>{esc(message)}</p>", status=400)


async def authorize(op: DevProvider, request: Request) -> Response:
    try:
        params = await read_params(request)
        client_id = one(params, "client_id", required=True)
        redirect_uri = one(params, "redirect_uri", required=True)
    except OAuthFailure as failure:
        return _error_page(failure.description)
    client = op.config.client(client_id or "")
    if client is None:
        return _error_page("unknown client_id")
    if redirect_uri is None or not redirect_uri_allowed(client, redirect_uri):
        return _error_page("redirect_uri is not registered for this client")

    state = params.get("state", [None])[0]
    response_mode = params.get("response_mode", ["query"])[0] or "query"
    if response_mode not in ("query", "form_post"):
        bad_mode = OAuthFailure("invalid_request", "unsupported response_mode")
        return _send_error(op, redirect_uri, "query", state, bad_mode)
    try:
        tx = _validate(op, client, redirect_uri, response_mode, params)
    except OAuthFailure as failure:
        return _send_error(op, redirect_uri, response_mode, state, failure)

    session = op.session_from_cookie(request)
    if _needs_login(op, tx, session):
        if "none" in tx.prompt:
            required = OAuthFailure("login_required", "the user is not signed in")
            return _send_error(op, redirect_uri, response_mode, tx.state, required)
        op.state.auth_requests[tx.id] = tx
        return login_page(op, tx)
    assert session is not None
    return complete(op, tx, session)


def _send_error(
    op: DevProvider, redirect_uri: str, mode: str, state: str | None, failure: OAuthFailure
) -> Response:
    params = {"error": failure.error, "error_description": failure.description, "state": state}
    return deliver(op, redirect_uri, mode, params)


def _validate(
    op: DevProvider, client: DevClient, redirect_uri: str, response_mode: str, params: Params
) -> AuthRequest:
    if one(params, "request") is not None:
        raise OAuthFailure("request_not_supported", "request objects are not supported")
    if one(params, "request_uri") is not None:
        raise OAuthFailure("request_uri_not_supported", "request_uri is not supported")
    response_type = one(params, "response_type", required=True)
    if response_type != "code":
        raise OAuthFailure("unsupported_response_type", "only response_type=code is supported")
    if "authorization_code" not in client.grant_types:
        raise OAuthFailure("unauthorized_client", "client may not use the code flow")
    scope = tuple((one(params, "scope") or "").split())
    op.check_scopes(scope)

    challenge = one(params, "code_challenge")
    method = one(params, "code_challenge_method")
    if challenge is None:
        if client.is_public:
            raise OAuthFailure("invalid_request", "PKCE code_challenge required (RFC 7636 4.4.1)")
        if method is not None:
            raise OAuthFailure("invalid_request", "code_challenge_method without code_challenge")
    elif method != "S256":
        raise OAuthFailure("invalid_request", "code_challenge_method must be S256")
    elif not PKCE_CHALLENGE.match(challenge):
        raise OAuthFailure("invalid_request", "malformed code_challenge")

    prompt = tuple((one(params, "prompt") or "").split())
    if any(p not in PROMPTS for p in prompt) or ("none" in prompt and len(prompt) > 1):
        raise OAuthFailure("invalid_request", "unsupported prompt value")
    max_age_text = one(params, "max_age")
    max_age: int | None = None
    if max_age_text is not None:
        if not max_age_text.isdigit():
            raise OAuthFailure("invalid_request", "max_age must be a non-negative integer")
        max_age = int(max_age_text)

    resources = many(params, "resource") + many(params, "audience")
    for resource in resources:
        if op.config.api(resource) is None:
            raise OAuthFailure("invalid_target", "unknown resource")

    return AuthRequest(
        id=random_token("tx_", 16),
        client_id=client.client_id,
        redirect_uri=redirect_uri,
        scope=scope,
        state=one(params, "state"),
        nonce=one(params, "nonce"),
        code_challenge=challenge,
        response_mode=response_mode,
        resources=tuple(dict.fromkeys(resources)),
        acr_values=tuple((one(params, "acr_values") or "").split()),
        max_age=max_age,
        login_hint=one(params, "login_hint"),
        prompt=prompt,
        expires_at=op.now() + TX_LIFETIME,
    )


def _needs_login(op: DevProvider, tx: AuthRequest, session: Session | None) -> bool:
    if session is None:
        return True
    if "login" in tx.prompt or "select_account" in tx.prompt:
        return True
    if tx.max_age is not None and op.now() - session.auth_time > tx.max_age:
        return True
    wanted = [a for a in tx.acr_values if a in op.config.acr_values]
    return bool(wanted) and session.acr not in wanted


def login_page(
    op: DevProvider, tx: AuthRequest, *, message: str = "", status: int = 200
) -> Response:
    """The plain login form: username, optional password. Consent is granted automatically."""
    users = ", ".join(u.username for u in op.config.users)
    hint = f"<p>Known users: {esc(users)}</p>" if users else ""
    if op.config.allow_any_user:
        hint += "<p>Any username is accepted.</p>"
    error = f'<p role="alert">{esc(message)}</p>' if message else ""
    body = (
        f"{error}<p>Sign in to <b>{esc(tx.client_id)}</b></p>{hint}"
        f'<form method="post" action="{esc(op.endpoint("login"))}">'
        f"{hidden_inputs({'tx': tx.id})}"
        f'<label>Username <input name="username" value="{esc(tx.login_hint or "")}" '
        "autofocus required></label>"
        '<label>Password <input name="password" type="password"></label>'
        '<button type="submit" name="action" value="login">Sign in</button>'
        '<button type="submit" name="action" value="cancel" formnovalidate>Cancel</button>'
        "</form>"
    )
    return page("Sign in", body, status=status)


def check_credentials(op: DevProvider, username: str, password: str) -> str | None:
    """The subject for valid credentials, or None. Passwords compare in constant time."""
    user = op.config.user(username)
    if user is not None:
        if user.password is not None and not secrets_equal(password, user.password):
            return None
        return user.sub
    return username if op.config.allow_any_user and username else None


async def login(op: DevProvider, request: Request) -> Response:
    try:
        params = await read_params(request)
        tx_id = one(params, "tx", required=True)
        username = (one(params, "username") or "").strip()
        password = one(params, "password") or ""
        action = one(params, "action") or "login"
    except OAuthFailure as failure:
        return _error_page(failure.description)
    tx = op.state.auth_requests.get(tx_id or "")
    if tx is None or tx.expires_at <= op.now():
        return _error_page("this sign-in request has expired; start again")
    if action == "cancel":
        del op.state.auth_requests[tx.id]
        denied = OAuthFailure("access_denied", "the user cancelled the sign-in")
        return _send_error(op, tx.redirect_uri, tx.response_mode, tx.state, denied)
    sub = check_credentials(op, username, password)
    if sub is None:
        return login_page(op, tx, message="Unknown user or wrong password.", status=401)
    del op.state.auth_requests[tx.id]
    wanted = [a for a in tx.acr_values if a in op.config.acr_values]
    session = op.new_session(sub, wanted[0] if wanted else op.config.acr_values[0])
    response = complete(op, tx, session)
    response.set_cookie(
        op.session_cookie_name,
        session.id,
        httponly=True,
        samesite="lax",
        path=urlsplit(op.issuer).path or "/",
        secure=op.issuer.startswith("https:"),
    )
    return response


def complete(op: DevProvider, tx: AuthRequest, session: Session) -> Response:
    """Consent is automatic: mint the code and send it back with ``state`` and ``iss``."""
    session.clients.add(tx.client_id)
    grant = op.new_grant(
        tx.client_id, session.sub, tx.scope, resources=tx.resources, session=session
    )
    code = random_token("dev_code_")
    op.state.codes[code] = CodeRecord(
        grant_id=grant.id,
        redirect_uri=tx.redirect_uri,
        code_challenge=tx.code_challenge,
        nonce=tx.nonce,
        expires_at=op.now() + op.config.code_lifetime,
    )
    return deliver(op, tx.redirect_uri, tx.response_mode, {"code": code, "state": tx.state})
