"""A signed-in request through ``OIDCAuth`` against the bare app and Starlette's sessions.

Every case serves the same Starlette app, driven as ASGI directly (``app(scope, receive,
send)`` in a loop, no HTTP client), with a session holding an ID token, an access token and a
refresh token (about 3 KB of JSON):

* bare: the app alone (no session at all: the floor);
* Starlette ``SessionMiddleware`` (baseline): the tokens signed, not encrypted, in one cookie;
* ``OIDCAuth`` with the default cookie store: the session encrypted (AES-256-GCM), chunked
  over two cookies, the user and claims put in the scope.

Two requests: ``/read`` only reads the session; ``/write`` changes one key of it, so the
session is re-encrypted (re-signed) and the cookie re-sent. Ratios are time per request
against Starlette's (below 1.0: faster); throughput is the inverse.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import time
import uuid
from collections.abc import Callable
from typing import Any

from starlette.applications import Starlette
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message

from benchmarks._harness import Case, compare
from oidc_asgi.signin import OIDCAuth

ISSUER = "https://login.example"
BASE_URL = "https://app.example"
SECRET = "benchmark-secret-0123456789-abcdefghijklmnopqrstuvwxyz"


def _fake_jwt(claims: dict[str, Any], signature_bytes: int = 256) -> str:
    def b64(raw: bytes) -> str:
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")

    header = b64(json.dumps({"alg": "RS256", "kid": "k1", "typ": "JWT"}).encode())
    return f"{header}.{b64(json.dumps(claims).encode())}.{b64(os.urandom(signature_bytes))}"


def _tokens() -> tuple[dict[str, Any], str, str, str]:
    now = int(time.time())
    claims = {
        "iss": ISSUER,
        "sub": "248289761001",
        "aud": "webapp",
        "iat": now,
        "exp": now + 3600,
        "auth_time": now,
        "nonce": uuid.uuid4().hex,
        "sid": uuid.uuid4().hex,
        "name": "Alice Example",
        "email": "alice@example.com",
        "email_verified": True,
        "groups": [uuid.uuid4().hex for _ in range(6)],
    }
    id_token = _fake_jwt(claims)
    access_token = _fake_jwt(
        {
            "iss": ISSUER,
            "sub": claims["sub"],
            "aud": "https://api.example",
            "client_id": "webapp",
            "scope": "openid profile email read:messages write:messages",
            "iat": now,
            "exp": now + 3600,
            "jti": uuid.uuid4().hex,
            "groups": claims["groups"],
        }
    )
    refresh_token = base64.urlsafe_b64encode(os.urandom(192)).decode("ascii").rstrip("=")
    return claims, id_token, access_token, refresh_token


async def _read(request: Request) -> Response:
    session = request.scope.get("session")
    return PlainTextResponse("ok" if session is None else str(len(session)))


async def _write(request: Request) -> Response:
    session = request.scope.get("session")
    if session is not None:
        session["n"] = session.get("n", 0) + 1
    return PlainTextResponse("ok")


def _app() -> Starlette:
    return Starlette(routes=[Route("/read", _read), Route("/write", _write)])


def _cookie_header(set_cookies: list[str]) -> bytes:
    return "; ".join(h.split(";", 1)[0] for h in set_cookies).encode("latin-1")


async def _oidc_cookie(middleware: OIDCAuth) -> bytes:
    claims, id_token, access_token, refresh_token = _tokens()
    auth = {
        "iss": ISSUER,
        "sub": claims["sub"],
        "idc": claims,
        "it": id_token,
        "at": claims["auth_time"],
        "tok": {
            "": {
                "access_token": access_token,
                "token_type": "Bearer",
                "expires_at": claims["exp"],
                "scope": "openid profile email read:messages write:messages",
            }
        },
        "rt": refresh_token,
        "sid": claims["sid"],
        "x": "bench-binding",
    }
    headers = await middleware.sessions.save(
        {"u": auth, "d": {"n": 0}}, previous=None, cookies={}, https=True, rotate=True
    )
    return _cookie_header(headers)


def _starlette_cookie(secret: str) -> tuple[bytes, int]:
    """Run one request through SessionMiddleware that stores the same tokens; its cookie."""
    claims, id_token, access_token, refresh_token = _tokens()
    data = {
        "user": claims,
        "id_token": id_token,
        "access_token": access_token,
        "refresh_token": refresh_token,
        "expires_at": claims["exp"],
        "n": 0,
    }

    async def fill(scope: Any, receive: Any, send: Any) -> None:
        scope["session"].update(data)
        await PlainTextResponse("ok")(scope, receive, send)

    app = SessionMiddleware(fill, secret_key=SECRET, https_only=True)
    captured: list[Message] = []

    async def send(message: Message) -> None:
        captured.append(message)

    asyncio.run(app(_scope("/read", b""), _receive, send))
    headers = dict(captured[0]["headers"])
    header = headers[b"set-cookie"].decode("latin-1")
    return _cookie_header([header]), len(json.dumps(data))


async def _receive() -> Message:
    return {"type": "http.request", "body": b"", "more_body": False}


def _scope(path: str, cookie: bytes) -> dict[str, Any]:
    headers = [(b"host", b"app.example"), (b"accept", b"text/plain")]
    if cookie:
        headers.append((b"cookie", cookie))
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "https",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 50000),
        "server": ("app.example", 443),
    }


def _driver(app: ASGIApp, path: str, cookie: Callable[[], bytes]) -> Callable[[int], None]:
    loop = asyncio.new_event_loop()

    async def send(message: Message) -> None:
        if message["type"] == "http.response.start":
            assert message["status"] == 200, message["status"]

    async def many(n: int, value: bytes) -> None:
        for _ in range(n):
            await app(_scope(path, value), _receive, send)

    def run(n: int) -> None:
        loop.run_until_complete(many(n, cookie()))

    return run


def main() -> None:
    bare = _app()
    starlette = SessionMiddleware(_app(), secret_key=SECRET, https_only=True)
    oidc = OIDCAuth(
        _app(),
        issuer=ISSUER,
        client_id="webapp",
        client_secret="webapp-secret",
        secrets=[SECRET],
        base_url=BASE_URL,
    )
    starlette_cookie, json_bytes = _starlette_cookie(SECRET)
    oidc_cookie = asyncio.run(_oidc_cookie(oidc))
    # A fresh cookie each run keeps the read-only case inside the rolling window's touch
    # interval (a real browser gets a touched cookie at most once a minute).
    fresh: list[bytes] = [oidc_cookie]

    def oidc_now() -> bytes:
        fresh[0] = asyncio.run(_oidc_cookie(oidc))
        return fresh[0]

    print(
        f"\nsession: {json_bytes} B of JSON; cookie header: Starlette {len(starlette_cookie)} B, "
        f"OIDCAuth {len(oidc_cookie)} B"
    )
    results = {}
    for path, what in (("/read", "read-only"), ("/write", "changes the session")):
        results[path] = compare(
            f"signed-in request, {what} (time per request; < 1.0 is faster)",
            Case(
                "Starlette SessionMiddleware (baseline)",
                _driver(starlette, path, lambda: starlette_cookie),
            ),
            [
                Case("bare app (no session)", _driver(bare, path, lambda: b"")),
                Case("oidc_asgi OIDCAuth (cookie store)", _driver(oidc, path, oidc_now)),
            ],
            n=1000,
        )
    for path, ratios in results.items():
        ratio = ratios["oidc_asgi OIDCAuth (cookie store)"]
        print(f"OIDCAuth throughput on {path}: {1 / ratio:.2f}x Starlette SessionMiddleware")


if __name__ == "__main__":
    main()
