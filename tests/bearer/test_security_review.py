"""Security review findings in the bearer pillar, each pinned by a test.

* introspection answers (RFC 7662 section 2.2) are input like any token: a hostile or broken
  authorization server must get a 401, never a 500, and ``nbf`` is judged like a JWT's;
* ``requires_token`` trusts ``request.user`` only when its own validator produced it;
* ``token_sources`` is honoured: a form-only API does not read the ``Authorization`` header.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from oidc_asgi.bearer import BearerConfig, BearerValidator, Introspector, StepUp
from oidc_asgi.bearer.starlette import BearerMiddleware, requires_token
from oidc_asgi.client import OAuthClient
from oidc_asgi.errors import TokenError

from ._support import API, OTHER_API, START, Clock, bearer, http_scope
from .conftest import MakeValidator, MintToken

ISSUER = "https://idp.example"


def _introspecting(answer: str, clock: Clock) -> BearerValidator:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            200, content=answer.encode(), headers={"content-type": "application/json"}
        )

    http = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    client = OAuthClient(
        client_id="api",
        client_secret="s" * 32,
        token_endpoint=f"{ISSUER}/token",
        http_client=http,
        now=clock,
    )
    introspector = Introspector(client, endpoint=f"{ISSUER}/introspect", now=clock)
    return BearerValidator(
        BearerConfig(issuer=ISSUER, audience=API),
        http_client=http,
        now=clock,
        introspection=introspector,
    )


def _answer(**members: Any) -> str:
    return json.dumps({"active": True, "aud": API, **members})


# RFC 7662 section 4: the response is validated like the claims of a JWT (RFC 9068 section 4).
HOSTILE_INTROSPECTION = [
    pytest.param(_answer(iss=["x"]), "invalid_issuer", "iss", id="iss-list"),
    pytest.param(_answer(iss={"a": 1}), "invalid_issuer", "iss", id="iss-object"),
    pytest.param(_answer(exp=10**400), "invalid_claim_type", "exp", id="exp-beyond-float"),
    pytest.param(
        _answer(exp=1).replace('"exp": 1', '"exp": 1e999'),
        "invalid_claim_type",
        "exp",
        id="exp-infinite",
    ),
    pytest.param(_answer(exp=True), "invalid_claim_type", "exp", id="exp-bool"),
    pytest.param(
        _answer(auth_time=10**400), "invalid_claim_type", "auth_time", id="auth-time-huge"
    ),
    pytest.param(_answer(iat=-5), "invalid_claim_type", "iat", id="iat-negative"),
    pytest.param(_answer(nbf="soon"), "invalid_claim_type", "nbf", id="nbf-string"),
    pytest.param(_answer(nbf=START + 3600), "token_not_yet_valid", "nbf", id="nbf-future"),
]


@pytest.mark.parametrize(("answer", "code", "claim"), HOSTILE_INTROSPECTION)
async def test_hostile_introspection_answer_is_401_not_500_rfc7662_s4(
    answer: str, code: str, claim: str, clock: Clock
) -> None:
    validator = _introspecting(answer, clock)
    with pytest.raises(TokenError) as info:
        await validator.authenticate(
            http_scope(bearer("opaque-token")), rules=[StepUp(max_age=600)]
        )
    assert (info.value.code, info.value.claim) == (code, claim)
    assert validator.challenge(info.value).status == 401


async def test_sane_introspection_answer_still_passes(clock: Clock) -> None:
    validator = _introspecting(
        _answer(iss=ISSUER, exp=START + 60, nbf=START - 1, iat=START - 1, auth_time=START - 1),
        clock,
    )
    principal = await validator.authenticate(
        http_scope(bearer("opaque-token")), rules=[StepUp(max_age=600)]
    )
    assert principal.issuer == ISSUER


async def _get(app: Starlette, path: str, token: str) -> httpx.Response:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="https://api.example") as http:
        return await http.get(path, headers={"Authorization": f"Bearer {token}"})


async def test_requires_token_does_not_trust_another_validators_user(
    make_validator: MakeValidator, mint: MintToken
) -> None:
    # The middleware accepts tokens for API; one route is for OTHER_API only. A token for API
    # must not reach it just because the middleware already set request.user.
    front = make_validator()
    other = make_validator(audience=OTHER_API)

    @requires_token(other, "read:messages")
    async def other_route(request: Request) -> Response:
        return JSONResponse({"sub": request.user.identity})

    app = Starlette(
        routes=[Route("/other", other_route)],
        middleware=[Middleware(BearerMiddleware, validator=front)],
    )
    refused = await _get(app, "/other", mint())
    assert refused.status_code == 401
    assert 'error="invalid_token"' in refused.headers["www-authenticate"]
    accepted = await _get(app, "/other", mint(audience=OTHER_API))
    assert accepted.status_code == 401  # the front validator refuses OTHER_API's tokens first
    same = make_validator()

    @requires_token(front, "read:messages")
    async def front_route(request: Request) -> Response:
        return JSONResponse({"sub": request.user.identity})

    shared = Starlette(
        routes=[Route("/front", front_route)],
        middleware=[Middleware(BearerMiddleware, validator=same)],
    )
    assert (await _get(shared, "/front", mint())).status_code == 200


async def test_form_only_api_ignores_the_authorization_header_rfc6750_s2(
    make_validator: MakeValidator, mint: MintToken
) -> None:
    validator = make_validator(token_sources=("form",))
    token = mint()
    for _ in range(2):  # the second time the token would be in the verified-token cache
        with pytest.raises(TokenError) as info:
            await validator.authenticate(http_scope(bearer(token)))
        assert info.value.code == "missing_token"
        await validator.validate(token)
    principal = await validator.authenticate(http_scope(), form_tokens=[token])
    assert principal.subject is not None


@pytest.mark.parametrize(
    "token",
    [
        pytest.param("caf\u00e9", id="non-ascii"),
        pytest.param("a\udcff", id="lone-surrogate"),
        pytest.param("two words", id="space"),
        pytest.param("", id="empty"),
    ],
)
async def test_validate_refuses_non_b64token_before_introspection_rfc6750_s2_1(
    token: str, clock: Clock
) -> None:
    validator = _introspecting(_answer(), clock)
    assert validator.introspection is not None
    with pytest.raises(TokenError) as info:
        await validator.validate(token)
    assert info.value.code == "malformed_token"
    assert validator.introspection.calls == 0
