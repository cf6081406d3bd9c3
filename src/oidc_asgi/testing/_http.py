"""HTTP plumbing shared by the endpoints: form parsing, OAuth errors, client authentication."""

from __future__ import annotations

import base64
import binascii
import hmac
import html
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, unquote_plus

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse

from oidc_asgi.testing._config import DevClient
from oidc_asgi.testing._keys import JWSError, verify_with_jwks

if TYPE_CHECKING:
    from oidc_asgi.testing.provider import DevProvider

Params = dict[str, list[str]]

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
CLIENT_ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
MAX_BODY = 64 * 1024


class OAuthFailure(Exception):
    """An OAuth error to send back (RFC 6749 section 5.2); descriptions are fixed strings."""

    def __init__(
        self,
        error: str,
        description: str,
        *,
        status: int = 400,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(error)
        self.error = error
        self.description = description
        self.status = status
        self.headers = dict(headers or {})

    def response(self) -> JSONResponse:
        body = {"error": self.error, "error_description": self.description}
        return JSONResponse(body, status_code=self.status, headers={**NO_STORE, **self.headers})


async def read_params(request: Request) -> Params:
    """Query parameters for GET; the form-urlencoded body for POST (RFC 6749 3.2 demands it)."""
    pairs: list[tuple[str, str]]
    if request.method == "POST":
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type != "application/x-www-form-urlencoded":
            raise OAuthFailure("invalid_request", "body must be application/x-www-form-urlencoded")
        body = await request.body()
        if len(body) > MAX_BODY:
            raise OAuthFailure("invalid_request", "request body too large", status=413)
        try:
            pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True)
        except UnicodeDecodeError as exc:
            raise OAuthFailure("invalid_request", "body is not UTF-8") from exc
    else:
        pairs = list(request.query_params.multi_items())
    params: Params = {}
    for key, value in pairs:
        params.setdefault(key, []).append(value)
    return params


def one(params: Params, name: str, *, required: bool = False) -> str | None:
    """A parameter that may appear at most once (RFC 6749 section 3.1); empty counts as absent."""
    values = params.get(name, [])
    if len(values) > 1:
        raise OAuthFailure("invalid_request", f"parameter {name} repeated")
    value = values[0] if values and values[0] != "" else None
    if required and value is None:
        raise OAuthFailure("invalid_request", f"missing parameter {name}")
    return value


def need(params: Params, name: str) -> str:
    value = one(params, name, required=True)
    assert value is not None
    return value


def many(params: Params, name: str) -> tuple[str, ...]:
    """A parameter allowed to repeat (``resource``, RFC 8707 section 2; ``audience``)."""
    return tuple(v for v in params.get(name, []) if v)


def secrets_equal(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))


def _basic_credentials(request: Request) -> tuple[str, str] | None:
    header = request.headers.get("authorization")
    if not header:
        return None
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise _invalid_client(basic=True) from exc
    client_id, sep, secret = decoded.partition(":")
    if not sep:
        raise _invalid_client(basic=True)
    # RFC 6749 section 2.3.1: both parts are form-urlencoded before base64.
    return unquote_plus(client_id), unquote_plus(secret)


def _invalid_client(*, basic: bool) -> OAuthFailure:
    headers = {"WWW-Authenticate": 'Basic realm="dev-provider"'} if basic else {}
    return OAuthFailure(
        "invalid_client", "client authentication failed", status=401, headers=headers
    )


def authenticate_client(op: DevProvider, request: Request, params: Params) -> DevClient:
    """Authenticate the calling client by exactly one method (RFC 6749 section 2.3).

    Supports ``client_secret_basic``, ``client_secret_post``, ``private_key_jwt`` (RFC 7523
    section 3, with a one-use ``jti``) and ``none`` (public clients send only ``client_id``).
    """
    basic = _basic_credentials(request)
    post_secret = one(params, "client_secret")
    assertion = one(params, "client_assertion")
    used = [m for m, v in (("basic", basic), ("post", post_secret), ("jwt", assertion)) if v]
    if len(used) > 1:
        raise OAuthFailure("invalid_request", "more than one client authentication method")
    form_client_id = one(params, "client_id")

    if basic is not None:
        client_id, secret = basic
        if form_client_id is not None and form_client_id != client_id:
            raise OAuthFailure("invalid_request", "client_id does not match credentials")
        client = op.config.client(client_id)
        if (
            client is None
            or client.token_endpoint_auth_method != "client_secret_basic"
            or not secrets_equal(secret, client.client_secret or "")
        ):
            raise _invalid_client(basic=True)
        return client

    if post_secret is not None:
        client = op.config.client(form_client_id or "")
        if (
            client is None
            or client.token_endpoint_auth_method != "client_secret_post"
            or not secrets_equal(post_secret, client.client_secret or "")
        ):
            raise _invalid_client(basic=False)
        return client

    if assertion is not None:
        return _private_key_jwt(op, params, assertion, form_client_id, str(request.url))

    client = op.config.client(form_client_id or "")
    if client is None or client.token_endpoint_auth_method != "none":
        raise _invalid_client(basic=False)
    return client


def _private_key_jwt(
    op: DevProvider, params: Params, assertion: str, form_client_id: str | None, url: str
) -> DevClient:
    if one(params, "client_assertion_type") != CLIENT_ASSERTION_TYPE:
        raise OAuthFailure("invalid_request", "unsupported client_assertion_type")
    from oidc_asgi.testing._keys import split_jws

    try:
        _, unverified, _, _ = split_jws(assertion)
    except JWSError as exc:
        raise _invalid_client(basic=False) from exc
    client_id = unverified.get("sub")
    if not isinstance(client_id, str) or (form_client_id and form_client_id != client_id):
        raise _invalid_client(basic=False)
    client = op.config.client(client_id)
    if client is None or client.token_endpoint_auth_method != "private_key_jwt" or not client.jwks:
        raise _invalid_client(basic=False)
    try:
        _, claims = verify_with_jwks(assertion, list(client.jwks.get("keys", [])))
    except JWSError as exc:
        raise _invalid_client(basic=False) from exc
    now = op.now()
    aud = claims.get("aud")
    audiences = aud if isinstance(aud, list) else [aud]
    allowed = {op.issuer, op.endpoint("token"), url.split("?")[0]}
    exp, jti = claims.get("exp"), claims.get("jti")
    op.forget_expired_jtis()
    if (
        claims.get("iss") != client_id
        or not allowed.intersection(a for a in audiences if isinstance(a, str))
        or not isinstance(exp, (int, float))
        or exp <= now
        or not isinstance(jti, str)
        or jti in op.state.used_assertion_jtis
    ):
        raise _invalid_client(basic=False)
    op.state.used_assertion_jtis[jti] = float(exp)
    return client


def bearer_token(request: Request, params: Params) -> str | None:
    """An access token from the ``Authorization: Bearer`` header or the form body (RFC 6750 2)."""
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    from_header = value.strip() if scheme.lower() == "bearer" and value.strip() else None
    from_body = one(params, "access_token") if request.method == "POST" else None
    if from_header and from_body:
        raise OAuthFailure("invalid_request", "access token sent twice")
    return from_header or from_body


def page(
    title: str, body: str, *, status: int = 200, headers: Mapping[str, str] | None = None
) -> HTMLResponse:
    """A small HTML page; callers escape dynamic values with ``esc``."""
    document = (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>{esc(title)}</title></head><body><h1>{esc(title)}</h1>{body}</body></html>"
    )
    all_headers = {"Cache-Control": "no-store", "X-Frame-Options": "DENY", **(headers or {})}
    return HTMLResponse(document, status_code=status, headers=all_headers)


def esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def hidden_inputs(values: Mapping[str, str | None]) -> str:
    return "".join(
        f'<input type="hidden" name="{esc(k)}" value="{esc(v)}">'
        for k, v in values.items()
        if v is not None
    )
