"""Helpers for the development provider's tests: PKCE, logins driven by httpx, joserfc checks."""

from __future__ import annotations

import base64
import hashlib
import secrets
import warnings
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
from joserfc import jwt
from joserfc.errors import SecurityWarning
from joserfc.jwk import KeySet

from oidc_asgi.testing import DevProvider

SPA_REDIRECT = "http://127.0.0.1:8003/"
WEB_REDIRECT = "http://127.0.0.1:8000/callback"
API1 = "http://127.0.0.1:8001/api"
API2 = "http://127.0.0.1:8002/api"
OPAQUE_API = "http://127.0.0.1:8004/api"
WEBAPP_AUTH = ("webapp", "webapp-secret")
GATEWAY_AUTH = ("gateway", "gateway-secret")
DAEMON_AUTH = ("daemon", "daemon-secret")
SECRETS = ("webapp-secret", "gateway-secret", "daemon-secret")


def pkce() -> tuple[str, str]:
    """(verifier, S256 challenge) per RFC 7636 section 4.1-4.2."""
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def verify(token: str, jwks: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Verify a JWS with joserfc (independent of the provider's own code)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SecurityWarning)  # EdDSA, RFC 9864
        keys = KeySet.import_key_set(dict(jwks))  # type: ignore[arg-type]
        decoded = jwt.decode(token, keys, algorithms=["RS256", "ES256", "EdDSA"])
    return dict(decoded.header), dict(decoded.claims)


def query(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


def form_fields(html: str) -> dict[str, str]:
    from oidc_asgi.testing.signin import _FormParser

    parser = _FormParser()
    parser.feed(html)
    return parser.forms[0].fields if parser.forms else {}


def assert_error(
    response: httpx.Response, status: int, error: str, *, secrets_: tuple[str, ...] = ()
) -> None:
    """Status, ``error`` code, ``no-store`` and no secret or token echoed in the body."""
    assert response.status_code == status, response.text
    assert response.json()["error"] == error
    assert response.headers["cache-control"] == "no-store"
    for secret in (*SECRETS, *secrets_):
        assert secret not in response.text


async def login(
    http: httpx.AsyncClient,
    *,
    client_id: str = "spa",
    redirect_uri: str = SPA_REDIRECT,
    scope: str = "openid profile email offline_access",
    username: str = "alice",
    password: str = "",
    extra: Mapping[str, str] | None = None,
    challenge: str | None = None,
) -> dict[str, str]:
    """Drive /authorize and the login form; return the redirect's query parameters."""
    params = {
        "client_id": client_id,
        "redirect_uri": redirect_uri,
        "response_type": "code",
        "scope": scope,
        "state": "st-1",
        "nonce": "n-1",
        **({"code_challenge": challenge, "code_challenge_method": "S256"} if challenge else {}),
        **(extra or {}),
    }
    response = await http.get("/authorize", params=params)
    if response.status_code == 200 and 'name="tx"' in response.text:
        data = {**form_fields(response.text), "username": username, "password": password}
        response = await http.post("/login", data=data)
    assert response.status_code == 303, response.text
    return query(response.headers["location"])


async def code_flow(
    http: httpx.AsyncClient,
    *,
    resource: str | None = None,
    scope: str = "openid profile email offline_access",
    client_id: str = "spa",
    resource_at_token: bool = True,
) -> dict[str, Any]:
    """A full code flow for the public ``spa`` client (or ``webapp``); the token response.

    ``resource`` is sent to the authorization endpoint and, unless ``resource_at_token`` is
    False, again to the token endpoint, where it decides the access token (RFC 8707 2.2).
    """
    verifier, challenge = pkce()
    redirect = SPA_REDIRECT if client_id == "spa" else WEB_REDIRECT
    extra = {"resource": resource} if resource else {}
    result = await login(
        http,
        client_id=client_id,
        redirect_uri=redirect,
        scope=scope,
        challenge=challenge,
        extra=extra,
    )
    data = {
        "grant_type": "authorization_code",
        "code": result["code"],
        "redirect_uri": redirect,
        "code_verifier": verifier,
    }
    if resource and resource_at_token:
        data["resource"] = resource
    if client_id == "spa":
        data["client_id"] = "spa"
        response = await http.post("/token", data=data)
    else:
        response = await http.post("/token", data=data, auth=WEBAPP_AUTH)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def fresh(provider: DevProvider) -> httpx.AsyncClient:
    return provider.asgi_client()
