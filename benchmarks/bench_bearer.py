"""A FastAPI route protected by ``BearerAuth`` against the common hand-written alternatives.

Four FastAPI apps, each with one ``GET /hello`` route, driven as ASGI directly
(``app(scope, receive, send)`` in a loop, no HTTP client, so the client's cost does not hide
the server's):

* bare: no protection at all (the request still carries the ``Authorization`` header);
* ``BearerAuth``: ``Security(auth, scopes=["read:messages"])``, keys from a ``Provider``
  prefetched over an in-process JWKS endpoint (``httpx.MockTransport``, no network);
* PyJWT + ``PyJWKClient`` in an async dependency behind ``HTTPBearer`` (the most common
  hand-written approach); its JWKS cache is filled from the same in-process key set and its
  fetch is replaced, so it never touches the network;
* Authlib's RFC 9068 ``JWTBearerTokenValidator`` through ``ResourceProtector`` in an async
  dependency (what Authlib's docs suggest outside Flask/Django), with the key set imported
  once (its fastest use).

Every protected route checks ``iss``, ``aud``, ``exp`` and the ``read:messages`` scope.
Tokens are RFC 9068-shaped, from a two-key JWKS and signed by the second key (every library
has to select by ``kid``). "repeated": one token for every request; "distinct": a pool larger
than ``BearerAuth``'s verified-token cache, cycled, so every request is a cache miss.

Each table is timed with ``_harness.compare`` against the bare route (interleaved rounds,
per-round ratios). The summary prints throughput ratios (inverse of time ratios); ratios
between two protected cases are the quotients of their median ratios to bare.
"""

# No ``from __future__ import annotations``: the routes' ``Annotated[..., Depends(local)]``
# metadata must be evaluated where the local dependency objects are in scope.

import asyncio
import time
import uuid
from collections.abc import Callable
from typing import Annotated, Any, cast

import httpx
import jwt as pyjwt
from authlib.oauth2 import ResourceProtector
from authlib.oauth2.base import OAuth2Error
from authlib.oauth2.rfc9068 import JWTBearerTokenValidator
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from fastapi import Depends, FastAPI, HTTPException, Request, Security
from fastapi.openapi.models import HTTPBearer as HTTPBearerModel
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer, SecurityScopes
from fastapi.security.base import SecurityBase
from joserfc.jwk import KeySet
from starlette.authentication import requires
from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Message

from benchmarks._harness import Case, compare
from oidc_asgi.bearer import BearerConfig, BearerValidator, Principal
from oidc_asgi.bearer.fastapi import BearerAuth
from oidc_asgi.bearer.starlette import BearerMiddleware

ISSUER = "https://login.example"
AUDIENCE = "https://api.example"
JWKS_URL = "https://login.example/jwks"
SCOPE = "read:messages"
DISTINCT = 2048  # > BearerConfig.cache_size (1024): cycling through them never hits the cache
N = 1000


def _claims() -> dict[str, Any]:
    now = int(time.time())
    return {
        "iss": ISSUER,
        "sub": "248289761001",
        "aud": AUDIENCE,
        "iat": now,
        "nbf": now,
        "exp": now + 3600,
        "auth_time": now,
        "jti": uuid.uuid4().hex,
        "client_id": "spa",
        "scope": "openid read:messages write:messages",
    }


def _keys(alg: str) -> tuple[Any, dict[str, Any]]:
    """The signing key (the second of two) and the public two-key JWKS."""
    jwks: list[dict[str, Any]] = []
    private: Any = None
    for kid in ("k1", "k2"):
        if alg == "RS256":
            private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            public = pyjwt.algorithms.RSAAlgorithm.to_jwk(private.public_key(), as_dict=True)
        else:
            private = ec.generate_private_key(ec.SECP256R1())
            public = pyjwt.algorithms.ECAlgorithm.to_jwk(private.public_key(), as_dict=True)
        jwks.append({**public, "kid": kid, "alg": alg, "use": "sig"})
    return private, {"keys": jwks}


def _tokens(alg: str, private: Any, count: int) -> list[str]:
    header = {"kid": "k2", "typ": "at+jwt"}
    return [pyjwt.encode(_claims(), private, algorithm=alg, headers=header) for _ in range(count)]


# -- the four apps ----------------------------------------------------------------------------


def _bare_app() -> FastAPI:
    app = FastAPI()

    @app.get("/hello")
    async def hello() -> dict[str, str | None]:
        return {"sub": None}

    return app


def _jwks_endpoint(jwks: dict[str, Any]) -> Callable[[httpx.Request], httpx.Response]:
    def serve(request: httpx.Request) -> httpx.Response:
        assert str(request.url) == JWKS_URL
        return httpx.Response(200, json=jwks, headers={"Cache-Control": "max-age=3600"})

    return serve


async def _ours_app(alg: str, jwks: dict[str, Any]) -> FastAPI:
    http = httpx.AsyncClient(transport=httpx.MockTransport(_jwks_endpoint(jwks)))
    config = BearerConfig(
        issuer=ISSUER, audience=AUDIENCE, algorithms=[alg], jwks_uris={ISSUER: JWKS_URL}
    )
    auth = BearerAuth(BearerValidator(config, http_client=http))
    await auth.prefetch()
    app = FastAPI()

    @app.get("/hello")
    async def hello(user: Annotated[Principal, Security(auth, scopes=[SCOPE])]) -> dict[str, Any]:
        return {"sub": user.subject}

    return app


def _floor_app() -> FastAPI:
    """What any FastAPI dependency costs: a ``Security`` dependency that does nothing."""

    class Noop(SecurityBase):
        def __init__(self) -> None:
            self.model = HTTPBearerModel()
            self.scheme_name = "noop"

        async def __call__(self, conn: HTTPConnection, security_scopes: SecurityScopes) -> str:
            return "248289761001"

    noop = Noop()
    app = FastAPI()

    @app.get("/hello")
    async def hello(user: Annotated[str, Security(noop, scopes=[SCOPE])]) -> dict[str, Any]:
        return {"sub": user}

    return app


async def _middleware_app(alg: str, jwks: dict[str, Any]) -> ASGIApp:
    """``BearerMiddleware`` in front of FastAPI; the route uses Starlette's ``@requires``."""
    http = httpx.AsyncClient(transport=httpx.MockTransport(_jwks_endpoint(jwks)))
    config = BearerConfig(
        issuer=ISSUER, audience=AUDIENCE, algorithms=[alg], jwks_uris={ISSUER: JWKS_URL}
    )
    validator = BearerValidator(config, http_client=http)
    await validator.prefetch()
    app = FastAPI()

    @app.get("/hello")
    @requires(SCOPE)
    async def hello(request: Request) -> dict[str, Any]:
        return {"sub": request.user.principal.subject}

    app.add_middleware(BearerMiddleware, validator=validator)
    return app


def _pyjwt_app(alg: str, jwks: dict[str, Any]) -> FastAPI:
    jwks_client = pyjwt.PyJWKClient(JWKS_URL, lifespan=86_400)
    # Served from memory: the cache is filled as a first fetch would fill it, and any later
    # fetch returns the same key set instead of going to the network.
    jwks_client.fetch_data = lambda: jwks  # type: ignore[method-assign]
    assert jwks_client.jwk_set_cache is not None
    jwks_client.jwk_set_cache.put(jwks)
    bearer = HTTPBearer()

    async def current_user(
        credentials: Annotated[HTTPAuthorizationCredentials, Depends(bearer)],
    ) -> dict[str, Any]:
        token = credentials.credentials
        try:
            key = jwks_client.get_signing_key_from_jwt(token)
            claims: dict[str, Any] = pyjwt.decode(
                token, key.key, algorithms=[alg], audience=AUDIENCE, issuer=ISSUER
            )
        except pyjwt.PyJWTError:
            raise HTTPException(401, "invalid token") from None
        if SCOPE not in str(claims.get("scope", "")).split():
            raise HTTPException(403, "insufficient scope")
        return claims

    app = FastAPI()

    @app.get("/hello")
    async def hello(user: Annotated[dict[str, Any], Depends(current_user)]) -> dict[str, Any]:
        return {"sub": user["sub"]}

    return app


def _authlib_app(jwks: dict[str, Any]) -> FastAPI:
    keys: KeySet = KeySet.import_key_set(cast("Any", jwks))  # imported once, not per request

    class Validator(JWTBearerTokenValidator):  # type: ignore[misc]
        def get_jwks(self) -> KeySet:
            return keys

    protector = ResourceProtector()
    protector.register_token_validator(Validator(issuer=ISSUER, resource_server=AUDIENCE))

    async def current_user(request: Request) -> Any:
        try:
            return protector.validate_request([SCOPE], request)
        except OAuth2Error as exc:  # invalid_token 401, insufficient_scope 403
            raise HTTPException(exc.status_code or 401, exc.error) from None

    app = FastAPI()

    @app.get("/hello")
    async def hello(user: Annotated[Any, Depends(current_user)]) -> dict[str, Any]:
        return {"sub": user["sub"]}

    return app


# -- driving ASGI directly --------------------------------------------------------------------


async def _receive() -> Message:
    return {"type": "http.request", "body": b"", "more_body": False}


def _scope(token: str) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "https",
        "path": "/hello",
        "raw_path": b"/hello",
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"api.example"),
            (b"accept", b"application/json"),
            (b"authorization", f"Bearer {token}".encode("ascii")),
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("api.example", 443),
    }


def _driver(
    loop: asyncio.AbstractEventLoop, app: ASGIApp, tokens: list[str]
) -> Callable[[int], None]:
    headers = [_scope(t)["headers"] for t in tokens]
    template = _scope(tokens[0])
    position = [0]

    async def send(message: Message) -> None:
        if message["type"] == "http.response.start":
            assert message["status"] == 200, message["status"]

    async def many(n: int) -> None:
        i = position[0]
        count = len(headers)
        for _ in range(n):
            # A fresh scope per request, as a server builds one.
            await app({**template, "headers": headers[i % count]}, _receive, send)
            i += 1
        position[0] = i

    def run(n: int) -> None:
        loop.run_until_complete(many(n))

    return run


BARE = "bare route (baseline)"
FLOOR = "no-op Security dependency (FastAPI floor)"
OURS = "oidc_asgi BearerAuth"
MIDDLEWARE = "oidc_asgi BearerMiddleware + @requires"
PYJWT = "PyJWT + PyJWKClient dependency"
AUTHLIB = "Authlib rfc9068 validator dependency"


def _run(alg: str, loop: asyncio.AbstractEventLoop) -> dict[str, dict[str, float]]:
    private, jwks = _keys(alg)
    distinct = _tokens(alg, private, DISTINCT)
    repeated = distinct[:1]
    apps: dict[str, ASGIApp] = {
        BARE: _bare_app(),
        FLOOR: _floor_app(),
        OURS: loop.run_until_complete(_ours_app(alg, jwks)),
        MIDDLEWARE: loop.run_until_complete(_middleware_app(alg, jwks)),
        PYJWT: _pyjwt_app(alg, jwks),
        AUTHLIB: _authlib_app(jwks),
    }
    results: dict[str, dict[str, float]] = {}
    for label, tokens in (("repeated", repeated), ("distinct", distinct)):
        drivers = {name: _driver(loop, app, tokens) for name, app in apps.items()}
        results[label] = compare(
            f"{alg}, {label} token(s): time per request (< 1.0 is faster)",
            Case(BARE, drivers[BARE]),
            [Case(name, drivers[name]) for name in (FLOOR, OURS, MIDDLEWARE, PYJWT, AUTHLIB)],
            n=N,
        )
    return results


def main() -> None:
    loop = asyncio.new_event_loop()
    summary: list[tuple[str, str, dict[str, float]]] = []
    try:
        for alg in ("RS256", "ES256"):
            for label, ratios in _run(alg, loop).items():
                summary.append((alg, label, ratios))
    finally:
        loop.close()
    print("\n## Throughput ratios (higher is better; targets in brackets)")
    print(
        f"{'alg':<6} {'tokens':<9} {'case':<24} {'vs bare':>15} {'vs PyJWT':>15} {'vs Authlib':>15}"
    )
    for alg, label, ratios in summary:
        for name, short in (
            (FLOOR, "no-op dependency"),
            (OURS, "BearerAuth"),
            (MIDDLEWARE, "BearerMiddleware"),
        ):
            ours = ratios[name]
            targets = name == OURS
            bare_t = " [>=0.90]" if targets and label == "repeated" else ""
            pyjwt_t = " [>=1.4]" if targets and (alg, label) == ("RS256", "distinct") else ""
            authlib_t = " [>=1.1]" if targets and label == "distinct" else ""
            print(
                f"{alg:<6} {label:<9} {short:<24} {1 / ours:>5.2f}x{bare_t:<9}"
                f"{ratios[PYJWT] / ours:>6.2f}x{pyjwt_t:<9}"
                f"{ratios[AUTHLIB] / ours:>6.2f}x{authlib_t:<9}"
            )


if __name__ == "__main__":
    main()
