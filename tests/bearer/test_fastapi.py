"""The FastAPI dependency end to end: error matrix, attacks, WebSocket, OpenAPI, property test."""

# No ``from __future__ import annotations``: FastAPI must see the route annotations, which
# refer to a local ``auth``, as real objects.

import asyncio
import base64
import json
import logging
from collections.abc import AsyncIterator, Callable
from typing import Annotated, Any

import httpx
import pytest
from fastapi import FastAPI, Security, WebSocket
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from oidc_asgi._jwks import StaticKeys
from oidc_asgi.bearer import BearerConfig, BearerValidator, ClaimIncludes, Principal, StepUp
from oidc_asgi.bearer.fastapi import BearerAuth, swagger_ui_init_oauth
from oidc_asgi.testing import BadTokens, DevProvider, KeyRing

from ._support import API, Clock, CountingTransport, ws_session
from .conftest import MakeValidator, MintToken


def build_app(validator: BearerValidator) -> tuple[FastAPI, BearerAuth]:
    auth = BearerAuth(
        validator,
        scopes={"read:messages": "Read your messages", "write:messages": "Send messages"},
    )
    admin = auth.require(ClaimIncludes("groups", "admins"))
    recent = auth.require(StepUp(acr_values=["urn:oidc-asgi:loa:2"], max_age=300))
    app = FastAPI(swagger_ui_init_oauth=swagger_ui_init_oauth("spa", scopes=["openid"]))

    @app.get("/messages")
    async def read(user: Annotated[Principal, Security(auth, scopes=["read:messages"])]) -> Any:
        return {"sub": user.subject, "client": user.client_id, "scopes": sorted(user.scopes)}

    @app.post("/messages")
    async def write(
        user: Annotated[Principal, Security(auth, scopes=["write:messages"])],
    ) -> Any:
        return {"sub": user.subject}

    @app.get("/me")
    async def me(user: Annotated[Principal, Security(auth)]) -> Any:
        return {"sub": user.subject}

    @app.get("/admin")
    async def admin_route(user: Annotated[Principal, Security(admin)]) -> Any:
        return {"sub": user.subject}

    @app.get("/transfer")
    async def transfer(
        user: Annotated[Principal, Security(recent, scopes=["write:messages"])],
    ) -> Any:
        return {"sub": user.subject}

    @app.get("/public")
    async def public() -> Any:
        return {"ok": True}

    @app.websocket("/ws")
    async def ws(
        websocket: WebSocket,
        user: Annotated[Principal, Security(auth, scopes=["read:messages"])],
    ) -> None:
        await websocket.accept()
        await websocket.send_json({"sub": user.subject})
        await websocket.close()

    return app, auth


@pytest.fixture
def fastapi_app(validator: BearerValidator) -> tuple[FastAPI, BearerAuth]:
    return build_app(validator)


@pytest.fixture
async def client(fastapi_app: tuple[FastAPI, BearerAuth]) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=fastapi_app[0])
    async with httpx.AsyncClient(transport=transport, base_url="https://api.example.com") as c:
        yield c


def auth_header(token: str, scheme: str = "Bearer") -> dict[str, str]:
    return {"Authorization": f"{scheme} {token}"}


async def test_valid_token_reaches_route(client: httpx.AsyncClient, mint: MintToken) -> None:
    response = await client.get("/messages", headers=auth_header(mint()))
    assert response.status_code == 200
    assert response.json() == {"sub": "alice", "client": "webapp", "scopes": ["read:messages"]}
    assert (await client.get("/public")).status_code == 200
    assert (await client.get("/me", headers=auth_header(mint(scopes=[])))).status_code == 200


REALM = 'Bearer realm="api"'


def _invalid(description: str) -> str:
    return f'{REALM}, error="invalid_token", error_description="{description}"'


# (id, method, path, headers builder, status, WWW-Authenticate)
MATRIX: list[tuple[str, str, str, Callable[[MintToken], dict[str, str]], int, str | None]] = [
    ("no-credentials", "GET", "/messages", lambda m: {}, 401, REALM),
    (
        "basic-scheme-is-no-credentials",
        "GET",
        "/messages",
        lambda m: {"Authorization": "Basic YTpi"},
        401,
        REALM,
    ),
    (
        "malformed-header",
        "GET",
        "/messages",
        lambda m: {"Authorization": "Bearer a b"},
        400,
        f'{REALM}, error="invalid_request", '
        'error_description="the Authorization header is malformed"',
    ),
    (
        "expired",
        "GET",
        "/messages",
        lambda m: auth_header(m(claims={"exp": 1_800_000_000 - 3600, "iat": 1_800_000_000 - 7200})),
        401,
        _invalid("the access token expired"),
    ),
    (
        "wrong-audience",
        "GET",
        "/messages",
        lambda m: auth_header(m(audience="http://127.0.0.1:8002/api")),
        401,
        _invalid("the access token is not meant for this API"),
    ),
    (
        "opaque-token",
        "GET",
        "/messages",
        lambda m: auth_header("dev_at_0123456789abcdef"),
        401,
        _invalid("the access token is malformed"),
    ),
    (
        "missing-scope",
        "GET",
        "/messages",
        lambda m: auth_header(m(scopes=["write:messages"])),
        403,
        f'{REALM}, error="insufficient_scope", error_description="the access token lacks a '
        'required scope", scope="read:messages"',
    ),
    (
        "prefix-scope-row-22",
        "GET",
        "/messages",
        lambda m: auth_header(m(scopes=["read:messages:all", "READ:MESSAGES"])),
        403,
        f'{REALM}, error="insufficient_scope", error_description="the access token lacks a '
        'required scope", scope="read:messages"',
    ),
    (
        "claim-rule",
        "GET",
        "/admin",
        lambda m: auth_header(m(claims={"groups": ["users"]})),
        403,
        f'{REALM}, error="insufficient_scope", error_description="the access token does not '
        'grant access to this resource"',
    ),
    (
        "step-up-rfc9470",
        "GET",
        "/transfer",
        lambda m: auth_header(
            m(
                scopes=["write:messages"],
                claims={"acr": "urn:oidc-asgi:loa:1", "auth_time": 1_800_000_000},
            )
        ),
        401,
        f'{REALM}, error="insufficient_user_authentication", error_description="a stronger or '
        'more recent user authentication is required", acr_values="urn:oidc-asgi:loa:2", '
        'max_age="300"',
    ),
]


@pytest.mark.parametrize(
    ("method", "path", "headers", "status", "challenge"),
    [pytest.param(*row[1:], id=row[0]) for row in MATRIX],
)
async def test_error_matrix(
    client: httpx.AsyncClient,
    mint: MintToken,
    caplog: pytest.LogCaptureFixture,
    method: str,
    path: str,
    headers: Callable[[MintToken], dict[str, str]],
    status: int,
    challenge: str | None,
) -> None:
    sent = headers(mint)
    with caplog.at_level(logging.DEBUG, logger="oidc_asgi"):
        response = await client.request(method, path, headers=sent, content=b"")
    assert response.status_code == status
    assert response.headers.get_list("www-authenticate") == ([challenge] if challenge else [])
    token = sent.get("Authorization", " ").split(" ", 1)[1]
    if token:
        assert token not in response.text
        assert all(token not in v for v in response.headers.values())
        assert token not in caplog.text


async def test_form_token_rfc6750_s2_2(make_validator: MakeValidator, mint: MintToken) -> None:
    app, _ = build_app(make_validator(token_sources=("header", "form")))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="https://api.example.com"
    ) as client:
        token = mint(scopes=["write:messages"])
        ok = await client.post("/messages", data={"access_token": token})
        assert ok.status_code == 200
        both = await client.post(
            "/messages", data={"access_token": token}, headers=auth_header(token)
        )
        assert both.status_code == 400
        assert 'error="invalid_request"' in both.headers["www-authenticate"]
        query = await client.get(f"/messages?access_token={token}")
        assert query.status_code == 401  # the query string is never read (RFC 6750 2.3)


async def test_debug_logs_precise_reason(
    make_validator: MakeValidator, mint: MintToken, caplog: pytest.LogCaptureFixture
) -> None:
    app, _ = build_app(make_validator(debug=True, json_body=True))
    token = mint(audience="http://127.0.0.1:8002/api")
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="https://api.example.com"
    ) as client:
        with caplog.at_level(logging.INFO, logger="oidc_asgi"):
            response = await client.get("/messages", headers=auth_header(token))
    assert response.status_code == 401
    assert response.json() == {
        "detail": {
            "error": "invalid_token",
            "error_description": "the access token is not meant for this API",
        }
    }
    assert "claim=aud" in caplog.text
    assert "http://127.0.0.1:8002/api" in caplog.text
    assert token not in caplog.text


async def test_provider_down_is_503(
    client: httpx.AsyncClient, mint: MintToken, transport: CountingTransport
) -> None:
    transport.down = "503"
    response = await client.get("/messages", headers=auth_header(mint()))
    assert response.status_code == 503
    assert int(response.headers["retry-after"]) >= 1
    assert "www-authenticate" not in response.headers


async def test_provider_down_with_cached_keys_is_200(
    client: httpx.AsyncClient, mint: MintToken, transport: CountingTransport, clock: Clock
) -> None:
    assert (await client.get("/messages", headers=auth_header(mint()))).status_code == 200
    transport.down = "connect"
    clock.advance(1800)
    assert (await client.get("/messages", headers=auth_header(mint()))).status_code == 200


# -- the attack catalogue through the dependency ------------------------------------------------


def _b64(data: dict[str, Any] | bytes) -> str:
    raw = data if isinstance(data, bytes) else json.dumps(data).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _reheader(token: str, **header: Any) -> str:
    head, body, sig = token.split(".")
    merged = {**json.loads(base64.urlsafe_b64decode(head + "==")), **header}
    return f"{_b64(merged)}.{body}.{sig}"


def attack_tokens(dev: DevProvider) -> dict[str, str]:
    bad = BadTokens(dev, audience=API, scopes=["read:messages"])
    cases = bad.as_dict()
    valid = bad.valid()
    key = dev.signing_key("RS256")
    head, body, _ = valid.split(".")
    cases.update(
        {
            "alg-None-case": _reheader(valid, alg="None"),
            "empty-signature": f"{head}.{body}.",
            "jku-injection-row-5": _reheader(valid, jku="http://169.254.169.254/jwks"),
            "crit-row-9": key.sign(dev.unverified_claims(valid), typ="at+jwt", crit=["x-foo"]),
            "b64-false-row-10": key.sign(dev.unverified_claims(valid), typ="at+jwt", b64=False),
            "jwe-row-12": "eyJhbGciOiJSU0EtT0FFUCIsImVuYyI6IkEyNTZHQ00ifQ.a.b.c.d",
            "kid-path-row-7": _reheader(valid, kid="../../dev/null"),
            "kid-object-row-7": _reheader(valid, kid={"x": 1}),
            "many-dots-row-15": "a." * 500 + "a",
            "id-token-row-18": dev.mint_id_token(client_id=API, nonce="n"),
            "exp-bool-row-16": key.sign(
                {**dev.unverified_claims(valid), "exp": True}, typ="at+jwt"
            ),
            "iss-prefix-row-17": key.sign(
                {**dev.unverified_claims(valid), "iss": dev.issuer + "/"}, typ="at+jwt"
            ),
        }
    )
    return cases


ATTACK_IDS = sorted(attack_tokens(DevProvider(keys=KeyRing())).keys())


@pytest.mark.parametrize("case", ATTACK_IDS)
async def test_attack_catalogue_end_to_end(
    client: httpx.AsyncClient, dev: DevProvider, transport: CountingTransport, case: str
) -> None:
    token = attack_tokens(dev)[case]
    response = await client.get("/messages", headers=auth_header(token))
    assert response.status_code == 401
    challenge = response.headers["www-authenticate"]
    assert challenge.startswith('Bearer realm="api", error="invalid_token"')
    assert token not in response.text
    # The attacker's jku is never fetched; only the issuer's own documents are.
    assert set(transport.calls) <= {"/.well-known/openid-configuration", "/jwks"}


# -- WebSocket ------------------------------------------------------------------------------------


async def test_websocket_accepted_with_valid_token(
    fastapi_app: tuple[FastAPI, BearerAuth], mint: MintToken
) -> None:
    sent = await ws_session(fastapi_app[0], auth_header(mint()))
    assert [m["type"] for m in sent] == ["websocket.accept", "websocket.send", "websocket.close"]
    assert json.loads(sent[1]["text"]) == {"sub": "alice"}


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        pytest.param(lambda m: {}, "", id="no-token"),
        pytest.param(lambda m: auth_header("x.y.z"), "invalid_token", id="bad-token"),
        pytest.param(lambda m: auth_header(m(scopes=[])), "insufficient_scope", id="no-scope"),
    ],
)
async def test_websocket_rejected_with_1008(
    fastapi_app: tuple[FastAPI, BearerAuth],
    mint: MintToken,
    headers: Callable[[MintToken], dict[str, str]],
    reason: str,
) -> None:
    sent = await ws_session(fastapi_app[0], headers(mint))
    assert sent == [{"type": "websocket.close", "code": 1008, "reason": reason}]


# -- OpenAPI --------------------------------------------------------------------------------------


async def test_openapi_has_scheme_and_scopes(
    fastapi_app: tuple[FastAPI, BearerAuth], dev: DevProvider
) -> None:
    app, auth = fastapi_app
    await auth.prefetch()
    document = app.openapi()
    scheme = document["components"]["securitySchemes"]["OAuth2"]
    assert scheme == {
        "type": "oauth2",
        "flows": {
            "authorizationCode": {
                "authorizationUrl": dev.endpoint("authorize"),
                "tokenUrl": dev.endpoint("token"),
                "scopes": {
                    "read:messages": "Read your messages",
                    "write:messages": "Send messages",
                },
            }
        },
    }
    paths = document["paths"]
    assert paths["/messages"]["get"]["security"] == [{"OAuth2": ["read:messages"]}]
    assert paths["/messages"]["post"]["security"] == [{"OAuth2": ["write:messages"]}]
    assert paths["/me"]["get"]["security"] == [{"OAuth2": []}]
    assert "security" not in paths["/public"]["get"]
    assert app.swagger_ui_init_oauth == {
        "clientId": "spa",
        "usePkceWithAuthorizationCodeGrant": True,
        "scopes": "openid",
    }


def test_openapi_before_prefetch_points_at_discovery(validator: BearerValidator) -> None:
    app, _ = build_app(validator)
    scheme = app.openapi()["components"]["securitySchemes"]["OAuth2"]
    assert scheme == {
        "type": "openIdConnect",
        "openIdConnectUrl": "http://127.0.0.1:9000/.well-known/openid-configuration",
    }


# -- property: any Authorization header gives 400, 401 or 403, never 5xx -------------------------

_KEYS = KeyRing()
_DEV = DevProvider(keys=_KEYS, now=Clock())
_FUZZ_VALIDATOR = BearerValidator(
    BearerConfig(issuer=_DEV.issuer, audience=API), keys=StaticKeys(_DEV.jwks()), now=Clock()
)
_FUZZ_APP, _ = build_app(_FUZZ_VALIDATOR)
_VALID = _DEV.mint_access_token(audience=API, scopes=["read:messages"])


def _mutate(data: st.DataObject) -> str:
    chars = list(_VALID)
    for _ in range(data.draw(st.integers(1, 4))):
        i = data.draw(st.integers(0, len(chars) - 1))
        chars[i] = data.draw(st.sampled_from("AZaz09-_.+/= "))
    return "".join(chars)


@st.composite
def authorization_values(draw: st.DrawFn) -> str:
    kind = draw(st.sampled_from(["text", "bearer-text", "mutated", "scheme-case"]))
    latin1 = st.text(st.characters(min_codepoint=0x20, max_codepoint=0xFF), max_size=60)
    if kind == "text":
        return draw(latin1)
    if kind == "bearer-text":
        return "Bearer " + draw(latin1)
    if kind == "scheme-case":
        return draw(st.sampled_from(["bearer", "BEARER", "DPoP", "Basic"])) + " " + _VALID
    return "Bearer " + draw(st.builds(_mutate, st.data()))


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(value=authorization_values())
def test_any_authorization_header_is_4xx(value: str) -> None:
    async def call() -> int:
        transport = httpx.ASGITransport(app=_FUZZ_APP)
        async with httpx.AsyncClient(transport=transport, base_url="https://api.test") as c:
            header = [(b"authorization", value.strip().encode("latin-1"))]
            response = await c.get("/messages", headers=header)
            return response.status_code

    status = asyncio.run(call())
    assert status in (200, 400, 401, 403)
    if status == 200:
        assert value.strip().split(" ", 1)[-1].strip() == _VALID
