"""Optional authentication in the FastAPI dependency, and RFC 9728 ``resource_metadata``."""

# No ``from __future__ import annotations``: FastAPI must see the route annotations, which
# refer to a local ``maybe``, as real objects.

from collections.abc import AsyncIterator
from typing import Annotated, Any

import httpx
import pytest
from fastapi import FastAPI, Security

from oidc_asgi.bearer import BearerConfig, BearerValidator, DPoPSettings, Principal, challenge_for
from oidc_asgi.bearer.fastapi import BearerAuth, OptionalBearerAuth
from oidc_asgi.errors import ConfigurationError, ProviderUnavailable, TokenError

from ._support import API, CountingTransport, bearer, http_scope
from .conftest import MakeValidator, MintToken

METADATA = "https://api.example.com/.well-known/oauth-protected-resource"


def optional_app(validator: BearerValidator) -> FastAPI:
    auth = BearerAuth(validator, scopes={"read:messages": "Read your messages"})
    maybe = auth.optional()
    app = FastAPI()

    @app.get("/feed")
    async def feed(user: Annotated[Principal | None, Security(maybe)]) -> Any:
        return {"sub": user.subject if user else None}

    @app.get("/inbox")
    async def inbox(
        user: Annotated[Principal | None, Security(maybe, scopes=["read:messages"])],
    ) -> Any:
        return {"sub": user.subject if user else None}

    @app.get("/strict")
    async def strict(user: Annotated[Principal, Security(auth)]) -> Any:
        return {"sub": user.subject}

    return app


@pytest.fixture
async def client(validator: BearerValidator) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=optional_app(validator))
    async with httpx.AsyncClient(transport=transport, base_url="https://api.example.com") as c:
        yield c


async def test_optional_route_serves_anonymous_callers(client: httpx.AsyncClient) -> None:
    response = await client.get("/feed")
    assert response.status_code == 200
    assert response.json() == {"sub": None}
    # The strict route on the same scheme still demands a token (RFC 6750 3.1).
    assert (await client.get("/strict")).status_code == 401


async def test_optional_route_sees_the_principal(
    client: httpx.AsyncClient, mint: MintToken
) -> None:
    response = await client.get("/feed", headers=dict(bearer(mint())))
    assert response.status_code == 200
    assert response.json()["sub"] is not None


async def test_optional_route_with_scopes_is_anonymous_without_token(
    client: httpx.AsyncClient,
) -> None:
    assert (await client.get("/inbox")).json() == {"sub": None}


# A token that is present is judged as usual: never downgraded to anonymous.
OPTIONAL_REJECTIONS = [
    pytest.param("/feed", "garbage.token.value", 401, "invalid_token", id="invalid-token-401"),
    pytest.param("/feed", None, 401, "invalid_token", id="expired-token-401"),
    pytest.param("/inbox", "scopeless", 403, "insufficient_scope", id="missing-scope-403"),
    pytest.param("/feed", "two-headers", 400, "invalid_request", id="two-headers-400"),
]


@pytest.mark.parametrize(("path", "kind", "status", "error"), OPTIONAL_REJECTIONS)
async def test_optional_route_still_rejects_bad_credentials(
    client: httpx.AsyncClient,
    mint: MintToken,
    path: str,
    kind: str | None,
    status: int,
    error: str,
) -> None:
    headers: list[tuple[str, str]]
    if kind is None:
        headers = bearer(mint(lifetime=-3600))
    elif kind == "scopeless":
        headers = bearer(mint(scopes=()))
    elif kind == "two-headers":
        headers = bearer(mint()) + bearer(mint())
    else:
        headers = bearer(kind)
    response = await client.get(path, headers=headers)
    assert response.status_code == status
    assert f'error="{error}"' in response.headers["www-authenticate"]


async def test_optional_route_outage_is_503(
    client: httpx.AsyncClient, mint: MintToken, transport: CountingTransport
) -> None:
    transport.down = "connect"
    response = await client.get("/feed", headers=dict(bearer(mint())))
    assert response.status_code == 503
    assert "retry-after" in response.headers


def test_optional_scheme_documents_the_same_openapi_scheme(validator: BearerValidator) -> None:
    document = optional_app(validator).openapi()
    schemes = document["components"]["securitySchemes"]
    assert list(schemes) == ["OAuth2"]
    assert document["paths"]["/inbox"]["get"]["security"] == [{"OAuth2": ["read:messages"]}]


def test_optional_needs_a_bearer_auth() -> None:
    with pytest.raises(ConfigurationError):
        OptionalBearerAuth(object())  # type: ignore[arg-type]


# --- RFC 9728 section 5.1: resource_metadata in WWW-Authenticate ----------------------------


@pytest.mark.parametrize(
    ("error", "status"),
    [
        pytest.param(TokenError("x", code="missing_token"), 401, id="no-credentials"),
        pytest.param(TokenError("x", code="token_expired"), 401, id="invalid-token"),
        pytest.param(TokenError("x", code="insufficient_scope"), 403, id="insufficient-scope"),
        pytest.param(TokenError("x", code="multiple_tokens"), 400, id="invalid-request"),
    ],
)
def test_resource_metadata_on_every_challenge_rfc9728_5_1(error: TokenError, status: int) -> None:
    challenge = challenge_for(error, realm="api", resource_metadata=METADATA)
    assert challenge.status == status
    [header] = [v for n, v in challenge.headers if n == "WWW-Authenticate"]
    assert header.startswith('Bearer realm="api"')
    assert f'resource_metadata="{METADATA}"' in header


def test_resource_metadata_on_both_schemes_rfc9728_5_1() -> None:
    challenge = challenge_for(
        TokenError("x", code="missing_token"),
        dpop_algs=["ES256"],
        resource_metadata=METADATA,
    )
    headers = [v for n, v in challenge.headers if n == "WWW-Authenticate"]
    assert len(headers) == 2
    assert all(f'resource_metadata="{METADATA}"' in h for h in headers)


def test_no_resource_metadata_unless_configured() -> None:
    challenge = challenge_for(TokenError("x", code="missing_token"))
    assert "resource_metadata" not in challenge.header_dict()["WWW-Authenticate"]


def test_outage_has_no_challenge_and_no_metadata() -> None:
    challenge = challenge_for(ProviderUnavailable("down"), resource_metadata=METADATA)
    assert challenge.status == 503
    assert "WWW-Authenticate" not in challenge.header_dict()


async def test_validator_sends_configured_resource_metadata(
    make_validator: MakeValidator,
) -> None:
    validator = make_validator(resource_metadata=METADATA, dpop=DPoPSettings())
    scope = http_scope()
    with pytest.raises(TokenError) as info:
        await validator.authenticate(scope)
    headers = [v for n, v in validator.challenge(info.value, scope).headers]
    assert sum(f'resource_metadata="{METADATA}"' in h for h in headers) == 2


@pytest.mark.parametrize(
    "url",
    [
        pytest.param("http://api.example.com/.well-known/oauth-protected-resource", id="http"),
        pytest.param("/.well-known/oauth-protected-resource", id="relative"),
        pytest.param('https://api.example.com/"x', id="quote"),
        pytest.param("https://api.example.com/a b", id="space"),
        pytest.param("https://api.example.com/x#frag", id="fragment"),
        pytest.param("https://[::1/x", id="bad-ipv6"),
        pytest.param("", id="empty"),
    ],
)
def test_resource_metadata_must_be_a_usable_url(url: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        BearerConfig(issuer="https://idp.example.com", audience=API, resource_metadata=url)
    assert info.value.code == "invalid_setting"


def test_resource_metadata_http_allowed_for_loopback() -> None:
    url = "http://127.0.0.1:8001/.well-known/oauth-protected-resource"
    config = BearerConfig(issuer="https://idp.example.com", audience=API, resource_metadata=url)
    assert config.resource_metadata == url
