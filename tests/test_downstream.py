"""ClientCredentialsAuth and OnBehalfOfAuth against the development provider, in-process.

The provider and the downstream API both run behind ``httpx.ASGITransport``; the API validates
each token with our ``TokenValidator`` over the provider's JWKS (and, when asked, checks
revocation by RFC 7662 introspection). Token requests are counted at the provider.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from _doubles import T0, Clock, CountingApp
from oidc_asgi.client import OAuthClient, TokenResponse, TokenType
from oidc_asgi.downstream import (
    ClientCredentialsAuth,
    DownstreamChallenge,
    OnBehalfOfAuth,
    parse_www_authenticate,
)
from oidc_asgi.errors import ConfigurationError, OAuthError
from oidc_asgi.provider import Provider
from oidc_asgi.testing import DevProvider, DevProviderConfig
from oidc_asgi.token_cache import TokenCache, token_cache_key
from oidc_asgi.tokens import AccessTokenExpectations, TokenValidator

API_1 = "http://127.0.0.1:8001/api"
API_2 = "http://127.0.0.1:8002/api"


@dataclass
class DownstreamAPI:
    """A resource server: validates the bearer token, optionally introspects it."""

    audience: str
    validator: TokenValidator
    op_http: httpx.AsyncClient
    introspect: bool = False
    hits: int = 0
    tokens: list[str] = field(default_factory=list)
    bodies: list[bytes] = field(default_factory=list)
    script: list[tuple[int, str | None]] = field(default_factory=list)

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/api/orders", self.endpoint, methods=["GET", "POST"])])

    async def endpoint(self, request: Request) -> Response:
        self.hits += 1
        self.bodies.append(await request.body())
        token = request.headers.get("authorization", "").removeprefix("Bearer ")
        self.tokens.append(token)
        if self.script:
            status, challenge = self.script.pop(0)
            headers = {"WWW-Authenticate": challenge} if challenge else {}
            return Response(status_code=status, headers=headers)
        refused = Response(
            status_code=401, headers={"WWW-Authenticate": 'Bearer error="invalid_token"'}
        )
        try:
            claims = await self.validator.access_token(
                token, AccessTokenExpectations(audience=self.audience)
            )
        except OAuthError:
            raise
        except Exception:
            return refused
        if self.introspect:
            answer = await self.op_http.post(
                "/introspect", data={"token": token}, auth=("gateway", "gateway-secret")
            )
            if not answer.json()["active"]:
                return refused
        return JSONResponse({"sub": claims["sub"], "act": claims.get("act")})


@dataclass
class World:
    provider: DevProvider
    counter: CountingApp
    op_http: httpx.AsyncClient
    clock: Clock
    skew: list[float]

    def client(self, client_id: str, secret: str) -> OAuthClient:
        return OAuthClient(
            client_id=client_id,
            client_secret=secret,
            token_endpoint=self.provider.endpoint("token"),
            issuer=self.provider.issuer,
            http_client=self.op_http,
            now=self.clock,
        )

    def api(self, audience: str = API_1, *, introspect: bool = False) -> DownstreamAPI:
        keys = Provider(self.provider.issuer, http_client=self.op_http, now=self.clock)
        validator = TokenValidator(
            issuer=self.provider.issuer, keys=keys, now=lambda: self.clock() + self.skew[0]
        )
        return DownstreamAPI(audience, validator, self.op_http, introspect=introspect)

    def cache(self) -> TokenCache[TokenResponse]:
        return TokenCache(now=self.clock)


@pytest.fixture
async def world() -> AsyncIterator[World]:
    clock = Clock()
    provider = DevProvider(now=clock)
    counter = CountingApp(provider)
    transport = httpx.ASGITransport(app=counter)
    async with httpx.AsyncClient(transport=transport, base_url=provider.issuer) as http:
        yield World(provider, counter, http, clock, [0.0])


@pytest.fixture
async def opaque_world() -> AsyncIterator[World]:
    # The default provider, except that the gateway's API (API_2) gets opaque access tokens.
    clock = Clock()
    config = DevProviderConfig.default()
    apis = tuple(
        replace(a, token_format="opaque") if a.identifier == API_2 else a for a in config.apis
    )
    provider = DevProvider(replace(config, apis=apis), now=clock)
    counter = CountingApp(provider)
    transport = httpx.ASGITransport(app=counter)
    async with httpx.AsyncClient(transport=transport, base_url=provider.issuer) as http:
        yield World(provider, counter, http, clock, [0.0])


def downstream(api: DownstreamAPI, auth: httpx.Auth) -> httpx.AsyncClient:
    base = api.audience.removesuffix("/api")
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=api.app()), base_url=base, auth=auth)


# --------------------------------------------------------------------------- client credentials


async def test_client_credentials_token_is_cached_and_attached(world: World) -> None:
    api = world.api()
    auth = ClientCredentialsAuth(
        world.client("daemon", "daemon-secret"), audience=API_1, cache=world.cache()
    )
    async with downstream(api, auth) as http:
        first = await http.get("/api/orders")
        second = await http.get("/api/orders")
    assert (first.status_code, second.status_code) == (200, 200)
    assert first.json()["sub"] == "daemon"
    assert world.counter.token_requests == 1
    assert api.tokens[0] == api.tokens[1]


async def test_rfc6750_invalid_token_refreshes_once_and_resends(world: World) -> None:
    api = world.api(introspect=True)
    auth = ClientCredentialsAuth(
        world.client("daemon", "daemon-secret"), audience=API_1, cache=world.cache()
    )
    async with downstream(api, auth) as http:
        assert (await http.get("/api/orders")).status_code == 200
        revoked = await world.op_http.post(
            "/revoke", data={"token": api.tokens[0]}, auth=("daemon", "daemon-secret")
        )
        assert revoked.status_code == 200
        response = await http.get("/api/orders")
    assert response.status_code == 200
    assert api.hits == 3  # ok, refused, resent
    assert world.counter.token_requests == 2
    assert api.tokens[1] == api.tokens[0] != api.tokens[2]


async def test_second_401_is_returned_not_retried_again(world: World) -> None:
    world.skew[0] = 10 * 3600  # the API's clock is far ahead: every token looks expired
    api = world.api()
    auth = ClientCredentialsAuth(
        world.client("daemon", "daemon-secret"), audience=API_1, cache=world.cache()
    )
    async with downstream(api, auth) as http:
        response = await http.get("/api/orders")
    assert response.status_code == 401
    assert api.hits == 2
    assert world.counter.token_requests == 2


@pytest.mark.parametrize(
    ("challenge", "retried"),
    [
        pytest.param('Bearer error="invalid_token"', True, id="invalid-token"),
        pytest.param('Bearer realm="orders"', True, id="bearer-without-error"),
        pytest.param(None, True, id="no-challenge-header"),
        pytest.param('Basic realm="x", Bearer realm="y"', True, id="bearer-after-basic"),
        pytest.param('Bearer error="invalid_request"', False, id="invalid-request"),
        pytest.param(
            'Bearer error="insufficient_scope", scope="x"', False, id="insufficient-scope"
        ),
    ],
)
async def test_rfc6750_which_401_is_retried(
    world: World, challenge: str | None, retried: bool
) -> None:
    api = world.api()
    api.script.append((401, challenge))
    auth = ClientCredentialsAuth(
        world.client("daemon", "daemon-secret"), audience=API_1, cache=world.cache()
    )
    async with downstream(api, auth) as http:
        response = await http.get("/api/orders")
    assert response.status_code == (200 if retried else 401)
    assert api.hits == (2 if retried else 1)
    assert world.counter.token_requests == (2 if retried else 1)


CAE_CLAIMS = '{"access_token":{"nbf":{"essential":true,"value":"1700000000"}}}'


@pytest.mark.parametrize(
    ("challenge", "error", "expected"),
    [
        pytest.param(
            'Bearer realm="", authorization_uri="https://login.example/authorize", '
            'error="insufficient_claims", claims="'
            + base64.b64encode(CAE_CLAIMS.encode()).decode()
            + '"',
            "insufficient_claims",
            {"claims": CAE_CLAIMS},
            id="entra-cae-base64-claims",
        ),
        pytest.param(
            "Bearer error=insufficient_claims, claims=" + json.dumps(CAE_CLAIMS),
            "insufficient_claims",
            {"claims": CAE_CLAIMS},
            id="plain-json-claims",
        ),
        pytest.param(
            'Bearer error="insufficient_user_authentication", '
            'error_description="A different authentication level is required", '
            'acr_values="urn:mace:incommon:iap:silver", max_age="5"',
            "insufficient_user_authentication",
            {"acr_values": "urn:mace:incommon:iap:silver", "max_age": 5},
            id="rfc9470-step-up",
        ),
    ],
)
async def test_claims_challenge_is_raised_typed_not_retried(
    world: World, challenge: str, error: str, expected: dict[str, Any]
) -> None:
    api = world.api()
    api.script.append((401, challenge))
    auth = ClientCredentialsAuth(
        world.client("daemon", "daemon-secret"), audience=API_1, cache=world.cache()
    )
    async with downstream(api, auth) as http:
        with pytest.raises(DownstreamChallenge) as caught:
            await http.get("/api/orders")
    exc = caught.value
    assert (exc.code, exc.error, exc.status_code) == (error, error, 401)
    for name, value in expected.items():
        assert getattr(exc, name) == value
    assert api.hits == 1
    assert world.counter.token_requests == 1
    assert api.tokens[0] not in str(exc) + repr(exc) + exc.www_authenticate()
    header = exc.www_authenticate(realm="gateway")
    reparsed = parse_www_authenticate([header])[0]
    assert reparsed[0] == "bearer"
    assert reparsed[1]["realm"] == "gateway"
    if "claims" in expected:
        assert reparsed[1]["error"] == "insufficient_claims"
        assert base64.b64decode(reparsed[1]["claims"]).decode() == CAE_CLAIMS
    else:
        assert reparsed[1]["acr_values"] == expected["acr_values"]
        assert reparsed[1]["max_age"] == "5"


async def test_thousand_concurrent_requests_one_token_request(world: World) -> None:
    api = world.api()
    auth = ClientCredentialsAuth(
        world.client("daemon", "daemon-secret"), audience=API_1, cache=world.cache()
    )
    async with downstream(api, auth) as http:
        responses = await asyncio.gather(*(http.get("/api/orders") for _ in range(1000)))
    assert {r.status_code for r in responses} == {200}
    assert world.counter.token_requests == 1
    assert len(set(api.tokens)) == 1


async def test_concurrent_401s_invalidate_once(world: World) -> None:
    api = world.api(introspect=True)
    auth = ClientCredentialsAuth(
        world.client("daemon", "daemon-secret"), audience=API_1, cache=world.cache()
    )
    async with downstream(api, auth) as http:
        await http.get("/api/orders")
        await world.op_http.post(
            "/revoke", data={"token": api.tokens[0]}, auth=("daemon", "daemon-secret")
        )
        responses = await asyncio.gather(*(http.get("/api/orders") for _ in range(20)))
    assert {r.status_code for r in responses} == {200}
    assert world.counter.token_requests == 2


async def _chunks() -> AsyncIterator[bytes]:
    yield b"part-1;"
    yield b"part-2"


@pytest.mark.parametrize("buffer_body", [False, True], ids=["stream-not-resent", "buffered"])
async def test_streaming_body_on_401(world: World, buffer_body: bool) -> None:
    api = world.api()
    api.script.append((401, 'Bearer error="invalid_token"'))
    auth = ClientCredentialsAuth(
        world.client("daemon", "daemon-secret"),
        audience=API_1,
        cache=world.cache(),
        buffer_body=buffer_body,
    )
    async with downstream(api, auth) as http:
        response = await http.post("/api/orders", content=_chunks())
        if not buffer_body:
            assert response.status_code == 401  # handed back: the stream is spent
            again = await http.post("/api/orders", content=b"retry")
            assert again.status_code == 200
    if buffer_body:
        assert response.status_code == 200
        assert api.bodies == [b"part-1;part-2", b"part-1;part-2"]
    assert world.counter.token_requests == 2  # the refused token was forgotten either way


def test_sync_client_is_refused_clearly() -> None:
    client = OAuthClient(
        client_id="daemon", client_secret="daemon-secret", token_endpoint="http://127.0.0.1:9/t"
    )
    auth = ClientCredentialsAuth(client, audience=API_1)
    transport = httpx.MockTransport(lambda request: httpx.Response(200))
    with (
        httpx.Client(transport=transport, auth=auth) as http,
        pytest.raises(ConfigurationError) as caught,
    ):
        http.get("http://127.0.0.1:8001/api/orders")
    assert caught.value.code == "sync_client_unsupported"


# --------------------------------------------------------------------------- on-behalf-of


def _user_token(world: World, sub: str = "alice", lifetime: int = 3600) -> str:
    return world.provider.mint_access_token(
        sub=sub, audience=API_2, scopes=["read:summary"], lifetime=lifetime
    )


@pytest.mark.parametrize(
    ("mode", "settings", "act"),
    [
        pytest.param("entra", {"scope": f"{API_2}/.default"}, None, id="entra-obo"),
        pytest.param(
            "token-exchange", {"audience": API_2}, {"sub": "gateway"}, id="rfc8693-exchange"
        ),
    ],
)
async def test_on_behalf_of_calls_as_the_user(
    world: World, mode: Any, settings: dict[str, Any], act: Any
) -> None:
    api = world.api(API_2)
    auth = OnBehalfOfAuth(
        world.client("gateway", "gateway-secret"),
        subject_token=_user_token(world),
        mode=mode,
        cache=world.cache(),
        **settings,
    )
    async with downstream(api, auth) as http:
        first = await http.get("/api/orders")
        second = await http.get("/api/orders")
    assert first.json() == {"sub": "alice", "act": act}
    assert second.status_code == 200
    assert world.counter.token_requests == 1


async def test_obo_cache_is_keyed_by_subject_token(world: World) -> None:
    api = world.api(API_2)
    cache = world.cache()
    gateway = world.client("gateway", "gateway-secret")
    subjects = [_user_token(world, "alice"), _user_token(world, "bob"), _user_token(world, "alice")]
    seen = []
    for subject in [*subjects, subjects[0]]:
        auth = OnBehalfOfAuth(gateway, subject_token=subject, audience=API_2, cache=cache)
        async with downstream(api, auth) as http:
            seen.append((await http.get("/api/orders")).json()["sub"])
    assert seen == ["alice", "bob", "alice", "alice"]
    assert world.counter.token_requests == 3  # one per distinct subject token
    assert len(set(api.tokens)) == 3


@pytest.mark.parametrize("explicit", [False, True], ids=["exp-from-jwt", "subject-expires-at"])
async def test_obo_cache_never_outlives_subject_token(world: World, explicit: bool) -> None:
    cache = world.cache()
    subject = _user_token(world, lifetime=300)
    subject_exp = T0 + 300
    extra: dict[str, Any] = {"subject_expires_at": subject_exp - 100} if explicit else {}
    gateway = world.client("gateway", "gateway-secret")
    auth = OnBehalfOfAuth(gateway, subject_token=subject, audience=API_2, cache=cache, **extra)
    tokens = await auth.token()
    assert tokens.expires_at == T0 + 3600
    key = token_cache_key(
        client_id="gateway",
        issuer=world.provider.issuer,
        grant="token_exchange",
        audience=API_2,
        subject_token=subject,
        subject_token_type=TokenType.ACCESS_TOKEN,
    )
    entry = await cache.store.get(key)
    assert entry is not None
    assert entry.expires_at == (subject_exp - 100 if explicit else subject_exp)


@pytest.mark.parametrize(
    ("settings", "ttl"),
    [
        pytest.param({}, 300.0, id="default-5-minutes"),
        pytest.param({"max_obo_ttl": 90}, 90.0, id="configured"),
    ],
)
async def test_obo_cache_bounded_when_subject_expiry_unknown(
    opaque_world: World, settings: dict[str, Any], ttl: float
) -> None:
    # An opaque subject token and no subject_expires_at: this API cannot know when the user's
    # token ends, so the entry must not live for the issued token's whole hour.
    world = opaque_world
    api = world.provider.config.api(API_2)
    assert api is not None
    subject, _life, _granted = world.provider.issue_access_token(
        client_id="webapp", sub="alice", scope=["read:summary"], api=api
    )
    assert subject.count(".") != 2  # opaque
    cache = world.cache()
    gateway = world.client("gateway", "gateway-secret")
    auth = OnBehalfOfAuth(gateway, subject_token=subject, audience=API_2, cache=cache, **settings)
    tokens = await auth.token()
    assert tokens.expires_at == T0 + 3600
    entry = await cache.store.get(auth._key())
    assert entry is not None
    assert entry.expires_at == T0 + ttl
    world.clock.now += ttl - 1
    await auth.token()
    assert world.counter.token_requests == 1
    world.clock.now += 1
    await auth.token()
    assert world.counter.token_requests == 2


async def test_obo_cache_keeps_declared_subject_token_types_apart_rfc8693_s2_1(
    world: World,
) -> None:
    cache = world.cache()
    subject = _user_token(world)
    gateway = world.client("gateway", "gateway-secret")
    as_access = OnBehalfOfAuth(gateway, subject_token=subject, audience=API_2, cache=cache)
    as_jwt = OnBehalfOfAuth(
        gateway,
        subject_token=subject,
        audience=API_2,
        cache=cache,
        subject_token_type=TokenType.JWT,
    )
    first = await as_access.token()
    second = await as_jwt.token()
    assert world.counter.token_requests == 2
    assert first.access_token != second.access_token
    assert (await as_access.token()).access_token == first.access_token


@pytest.mark.parametrize(
    "value",
    [
        pytest.param(0, id="zero"),
        pytest.param(-1, id="negative"),
        pytest.param(float("inf"), id="infinite"),
        pytest.param(float("nan"), id="nan"),
        pytest.param(True, id="bool"),
    ],
)
def test_obo_max_ttl_checked_at_construction(world: World, value: Any) -> None:
    gateway = world.client("gateway", "gateway-secret")
    with pytest.raises(ConfigurationError) as info:
        OnBehalfOfAuth(gateway, subject_token="opaque", audience=API_2, max_obo_ttl=value)
    assert info.value.code == "invalid_setting"


async def test_obo_claims_error_from_token_endpoint_is_a_challenge(world: World) -> None:
    claims = '{"access_token":{"acrs":{"essential":true,"value":"c1"}}}'

    def token_endpoint(request: httpx.Request) -> httpx.Response:
        body = {"error": "interaction_required", "error_description": "MFA", "claims": claims}
        return httpx.Response(400, json=body)

    async with httpx.AsyncClient(transport=httpx.MockTransport(token_endpoint)) as failing:
        gateway = OAuthClient(
            client_id="gateway",
            client_secret="gateway-secret",
            token_endpoint=world.provider.endpoint("token"),
            http_client=failing,
        )
        subject = _user_token(world)
        auth = OnBehalfOfAuth(
            gateway, subject_token=subject, mode="entra", scope="api://x/.default"
        )
        with pytest.raises(DownstreamChallenge) as caught:
            await auth.token()
    exc = caught.value
    assert (exc.error, exc.claims, exc.status_code) == ("interaction_required", claims, 400)
    assert 'error="insufficient_claims"' in exc.www_authenticate()
    assert subject not in str(exc) + repr(exc)


async def test_obo_plain_oauth_error_passes_through(world: World) -> None:
    auth = OnBehalfOfAuth(
        world.client("gateway", "gateway-secret"),
        subject_token="not-a-token-the-provider-issued",
        audience=API_2,
    )
    with pytest.raises(OAuthError) as caught:
        await auth.token()
    assert not isinstance(caught.value, DownstreamChallenge)
    assert caught.value.error == "invalid_request"


async def test_unusable_token_type_is_refused(world: World) -> None:
    def token_endpoint(request: httpx.Request) -> httpx.Response:
        body = {
            "access_token": "an-id-token",
            "token_type": "N_A",
            "issued_token_type": "urn:ietf:params:oauth:token-type:id_token",
        }
        return httpx.Response(200, json=body)

    async with httpx.AsyncClient(transport=httpx.MockTransport(token_endpoint)) as answering:
        gateway = OAuthClient(
            client_id="gateway",
            client_secret="gateway-secret",
            token_endpoint=world.provider.endpoint("token"),
            http_client=answering,
        )
        auth = OnBehalfOfAuth(gateway, subject_token=_user_token(world), audience=API_2)
        api = world.api(API_2)
        async with downstream(api, auth) as http:
            with pytest.raises(ConfigurationError) as caught:
                await http.get("/api/orders")
    assert caught.value.code == "unsupported_token_type"
    assert api.hits == 0


@pytest.mark.parametrize(
    ("settings", "code"),
    [
        pytest.param({"mode": "entra"}, "missing_scope", id="entra-without-scope"),
        pytest.param(
            {"mode": "entra", "scope": "s", "audience": API_2},
            "unsupported_parameter",
            id="entra-with-audience",
        ),
        pytest.param(
            {"mode": "entra", "scope": "s", "actor_token": "a"},
            "unsupported_parameter",
            id="entra-with-actor",
        ),
        pytest.param({"mode": "rfc8693", "audience": API_2}, "invalid_mode", id="unknown-mode"),
        pytest.param({"subject_token": ""}, "missing_subject_token", id="empty-subject"),
        pytest.param({"audience": ""}, "invalid_target", id="empty-audience"),
        pytest.param({"scope": []}, "invalid_target", id="empty-scope-list"),
    ],
)
async def test_on_behalf_of_configuration_errors(
    world: World, settings: dict[str, Any], code: str
) -> None:
    values: dict[str, Any] = {"subject_token": "incoming-token", **settings}
    with pytest.raises(ConfigurationError) as caught:
        OnBehalfOfAuth(world.client("gateway", "gateway-secret"), **values)
    assert caught.value.code == code


@dataclass(frozen=True)
class FakePrincipal:
    token: str
    claims: dict[str, Any]


async def test_from_principal_and_reprs_hide_tokens(world: World) -> None:
    subject = _user_token(world)
    principal = FakePrincipal(subject, {"exp": T0 + 50, "sub": "alice"})
    cache = world.cache()
    auth = OnBehalfOfAuth.from_principal(
        world.client("gateway", "gateway-secret"), principal, audience=API_2, cache=cache
    )
    tokens = await auth.token()
    assert subject not in repr(auth)
    assert tokens.access_token not in repr(auth)
    world.clock.now = T0 + 51  # past the principal's exp: no longer served from cache
    assert await cache.get(auth._key()) is None


# --------------------------------------------------------------------------- parsing


def _cases() -> Iterator[Any]:
    yield pytest.param(
        ['Bearer realm="a b", error="invalid_token"'],
        [("bearer", {"realm": "a b", "error": "invalid_token"})],
        id="quoted",
    )
    yield pytest.param(
        ["Bearer error=invalid_token,scope=read"],
        [("bearer", {"error": "invalid_token", "scope": "read"})],
        id="bare-tokens",
    )
    yield pytest.param(
        ['Basic realm="x", Bearer realm="y", error="invalid_token"'],
        [("basic", {"realm": "x"}), ("bearer", {"realm": "y", "error": "invalid_token"})],
        id="two-challenges-one-header",
    )
    yield pytest.param(
        ['DPoP algs="ES256"', 'BEARER Error="x"'],
        [("dpop", {"algs": "ES256"}), ("bearer", {"error": "x"})],
        id="two-headers-case-insensitive",
    )
    yield pytest.param(
        ['Bearer error_description="say \\"hi\\""'],
        [("bearer", {"error_description": 'say "hi"'})],
        id="escaped-quotes",
    )
    yield pytest.param(
        ["Negotiate abc123==", "Bearer"],
        [("negotiate", {}), ("bearer", {})],
        id="token68-and-bare-scheme",
    )
    yield pytest.param(['Bearer realm="unterminated'], [("bearer", {})], id="garbage-stops")


@pytest.mark.parametrize(("values", "expected"), list(_cases()))
def test_parse_www_authenticate(values: list[str], expected: list[Any]) -> None:
    assert parse_www_authenticate(values) == expected
