"""Provider: discovery (OIDC Discovery 1.0, RFC 8414) and the JWKS cache, with fault injection."""

from __future__ import annotations

import asyncio
import base64
import logging
import random
from collections import Counter
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from oidc_asgi._http import InsecureTransportWarning
from oidc_asgi.errors import ConfigurationError, ProviderUnavailable
from oidc_asgi.provider import Provider, ProviderMetadata

ISSUER = "https://idp.example"
DISCOVERY = "/.well-known/openid-configuration"
RFC8414 = "/.well-known/oauth-authorization-server"
JWKS = "/jwks"

# RSA key generation is slow: once per module.
RSA_A = rsa.generate_private_key(public_exponent=65537, key_size=2048)
RSA_B = rsa.generate_private_key(public_exponent=65537, key_size=2048)
RSA_WEAK = rsa.generate_private_key(public_exponent=65537, key_size=1024)
EC_A = ec.generate_private_key(ec.SECP256R1())


def _b64(value: int, length: int | None = None) -> str:
    raw = value.to_bytes(length or (value.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def rsa_jwk(key: rsa.RSAPrivateKey, kid: str, **extra: Any) -> dict[str, Any]:
    numbers = key.public_key().public_numbers()
    return {"kty": "RSA", "kid": kid, "n": _b64(numbers.n), "e": _b64(numbers.e), **extra}


def ec_jwk(key: ec.EllipticCurvePrivateKey, kid: str, **extra: Any) -> dict[str, Any]:
    numbers = key.public_key().public_numbers()
    return {
        "kty": "EC",
        "crv": "P-256",
        "kid": kid,
        "x": _b64(numbers.x, 32),
        "y": _b64(numbers.y, 32),
        **extra,
    }


Fault = Callable[[httpx.Request], httpx.Response]


class Clock:
    def __init__(self) -> None:
        self.t = 1_700_000_000.0

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


class FakeIdP:
    """Serves discovery and JWKS through httpx.MockTransport, counting every request."""

    def __init__(self, issuer: str = ISSUER) -> None:
        self.issuer = issuer
        self.discovery: dict[str, Any] = {
            "issuer": issuer,
            "authorization_endpoint": f"{issuer}/authorize",
            "token_endpoint": f"{issuer}/token",
            "jwks_uri": f"{issuer}{JWKS}",
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256", "ES256"],
            "authorization_response_iss_parameter_supported": True,
        }
        self.jwks: dict[str, Any] = {"keys": [rsa_jwk(RSA_A, "a", use="sig"), ec_jwk(EC_A, "e")]}
        self.headers: dict[str, dict[str, str]] = {}
        self.faults: dict[str, Fault] = {}
        self.hits: Counter[str] = Counter()
        self.requests: list[httpx.Request] = []
        self.gate: asyncio.Event | None = None

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        path = request.url.path
        self.hits[path] += 1
        if self.gate is not None:
            await self.gate.wait()
        fault = self.faults.get(path)
        if fault is not None:
            return fault(request)
        headers = self.headers.get(path, {})
        if path == DISCOVERY:
            return httpx.Response(200, json=self.discovery, headers=headers)
        if path == JWKS:
            return httpx.Response(200, json=self.jwks, headers=headers)
        return httpx.Response(404)

    def publish(self, *keys: dict[str, Any]) -> None:
        self.jwks = {"keys": list(keys)}


@pytest.fixture
def idp() -> FakeIdP:
    return FakeIdP()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def make(idp: FakeIdP, clock: Clock) -> AsyncIterator[Callable[..., Provider]]:
    clients: list[httpx.AsyncClient] = []

    def factory(issuer: str = ISSUER, **kwargs: Any) -> Provider:
        client = httpx.AsyncClient(transport=httpx.MockTransport(idp))
        clients.append(client)
        return Provider(issuer, http_client=client, now=clock, **kwargs)

    yield factory
    for client in clients:
        await client.aclose()


def kids(keys: Any) -> list[str | None]:
    return [k.kid for k in keys]


def raise_(exc: Exception) -> Fault:
    def fault(request: httpx.Request) -> httpx.Response:
        raise exc

    return fault


OUTAGES = [
    pytest.param(lambda r: httpx.Response(500), "provider_http_error", id="http-500"),
    pytest.param(lambda r: httpx.Response(503), "provider_http_error", id="http-503"),
    pytest.param(raise_(httpx.ReadTimeout("slow")), "provider_timeout", id="timeout"),
    pytest.param(raise_(httpx.ConnectError("down")), "provider_unreachable", id="connect-error"),
    pytest.param(
        lambda r: httpx.Response(200, content=b"<html>maintenance</html>"),
        "provider_bad_response",
        id="garbage",
    ),
]


# -- discovery ------------------------------------------------------------------------------


async def test_metadata_typed_view(make: Callable[..., Provider]) -> None:
    meta = await make().metadata()
    assert meta.issuer == ISSUER
    assert meta.token_endpoint == f"{ISSUER}/token"
    assert meta.jwks_uri == f"{ISSUER}{JWKS}"
    assert meta.response_types_supported == ("code",)
    assert meta.authorization_response_iss_parameter_supported is True
    assert meta.backchannel_logout_supported is False
    assert meta.userinfo_endpoint is None
    assert meta.raw["subject_types_supported"] == ["public"]
    assert meta.endpoint("token_endpoint") == f"{ISSUER}/token"
    with pytest.raises(ConfigurationError) as info:
        meta.endpoint("revocation_endpoint")
    assert info.value.code == "missing_endpoint"


@pytest.mark.parametrize(
    ("configured", "document"),
    [
        pytest.param("https://idp.example", "https://idp.example/", id="doc-adds-trailing-slash"),
        pytest.param("https://idp.example/", "https://idp.example", id="doc-drops-trailing-slash"),
        pytest.param("https://idp.example", "http://idp.example", id="http-vs-https"),
        pytest.param("https://idp.example", "https://idp.example/tenant", id="longer-path"),
        pytest.param("https://idp.example/tenant", "https://idp.example", id="prefix-only"),
        pytest.param("https://idp.example", "https://IDP.example", id="case-differs"),
        pytest.param("https://idp.example", "https://idp.example:443", id="explicit-port"),
        pytest.param("https://idp.example", "https://evil.example", id="other-host"),
    ],
)
async def test_issuer_mismatch_discovery_4_3(
    make: Callable[..., Provider], idp: FakeIdP, configured: str, document: str
) -> None:
    idp.discovery["issuer"] = document

    async def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=idp.discovery)

    async with httpx.AsyncClient(transport=httpx.MockTransport(answer)) as client:
        provider = Provider(configured, http_client=client)
        with pytest.raises(ConfigurationError) as info:
            await provider.metadata()
    assert info.value.code == "issuer_mismatch"


async def test_discovery_url_for_issuer_with_path_and_slash(idp: FakeIdP) -> None:
    seen: list[str] = []

    async def answer(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        return httpx.Response(200, json={"issuer": "https://idp.example/tenant/"})

    async with httpx.AsyncClient(transport=httpx.MockTransport(answer)) as client:
        await Provider("https://idp.example/tenant/", http_client=client).metadata()
    assert seen == ["https://idp.example/tenant/.well-known/openid-configuration"]


@pytest.mark.parametrize(
    ("issuer", "expected"),
    [
        pytest.param(
            "https://idp.example",
            "https://idp.example/.well-known/oauth-authorization-server",
            id="no-path",
        ),
        pytest.param(
            "https://idp.example/tenant1",
            "https://idp.example/.well-known/oauth-authorization-server/tenant1",
            id="path-inserted-rfc8414-3-1",
        ),
        pytest.param(
            "https://idp.example/a/b/",
            "https://idp.example/.well-known/oauth-authorization-server/a/b",
            id="trailing-slash-removed",
        ),
    ],
)
async def test_rfc8414_fallback(issuer: str, expected: str) -> None:
    seen: list[str] = []

    async def answer(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        if RFC8414 in request.url.path:
            return httpx.Response(200, json={"issuer": issuer, "token_endpoint": f"{issuer}/t"})
        return httpx.Response(404)

    async with httpx.AsyncClient(transport=httpx.MockTransport(answer)) as client:
        meta = await Provider(issuer, http_client=client).metadata()
    assert meta.token_endpoint == f"{issuer}/t"
    assert meta.jwks_uri is None
    assert seen == [issuer.rstrip("/") + DISCOVERY, expected]


async def test_rfc8414_document_issuer_must_match_too(
    make: Callable[..., Provider], idp: FakeIdP
) -> None:
    idp.faults[DISCOVERY] = lambda r: httpx.Response(404)
    idp.faults[RFC8414] = lambda r: httpx.Response(200, json={"issuer": "https://other.example"})
    with pytest.raises(ConfigurationError) as info:
        await make().metadata()
    assert info.value.code == "issuer_mismatch"


async def test_no_discovery_document_at_all(make: Callable[..., Provider], idp: FakeIdP) -> None:
    idp.faults[DISCOVERY] = lambda r: httpx.Response(404)
    with pytest.raises(ConfigurationError) as info:
        await make().metadata()
    assert info.value.code == "discovery_not_found"
    assert idp.hits == {DISCOVERY: 1, RFC8414: 1}


async def test_server_error_does_not_fall_back(make: Callable[..., Provider], idp: FakeIdP) -> None:
    idp.faults[DISCOVERY] = lambda r: httpx.Response(502)
    with pytest.raises(ProviderUnavailable) as info:
        await make().metadata()
    assert info.value.code == "provider_http_error"
    assert idp.hits == {DISCOVERY: 1}


@pytest.mark.parametrize(
    ("member", "value", "code"),
    [
        pytest.param("token_endpoint", "http://idp.example/token", "insecure_url", id="http-ep"),
        pytest.param("jwks_uri", "http://idp.example/jwks", "insecure_url", id="http-jwks-uri"),
        pytest.param("token_endpoint", 42, "invalid_metadata", id="endpoint-not-string"),
        pytest.param("token_endpoint", "/token", "invalid_metadata", id="relative-endpoint"),
        pytest.param("token_endpoint", "https://idp.example/t#x", "invalid_metadata", id="frag"),
        pytest.param("scopes_supported", "openid", "invalid_metadata", id="list-is-string"),
        pytest.param("scopes_supported", ["openid", 1], "invalid_metadata", id="list-non-str"),
        pytest.param(
            "backchannel_logout_supported", "true", "invalid_metadata", id="flag-not-bool"
        ),
        pytest.param("issuer", None, "invalid_metadata", id="issuer-missing"),
    ],
)
async def test_invalid_metadata(
    make: Callable[..., Provider], idp: FakeIdP, member: str, value: Any, code: str
) -> None:
    if value is None:
        del idp.discovery[member]
    else:
        idp.discovery[member] = value
    with pytest.raises(ConfigurationError) as info:
        await make().metadata()
    assert info.value.code == code


async def test_metadata_single_flight_and_ttl(
    make: Callable[..., Provider], idp: FakeIdP, clock: Clock
) -> None:
    provider = make()
    metas = await asyncio.gather(*(provider.metadata() for _ in range(100)))
    assert all(m is metas[0] for m in metas)
    clock.advance(599)
    await provider.metadata()
    assert idp.hits[DISCOVERY] == 1
    clock.advance(2)
    await provider.metadata()
    assert idp.hits[DISCOVERY] == 2


async def test_static_metadata_skips_discovery(make: Callable[..., Provider], idp: FakeIdP) -> None:
    provider = make(metadata={"issuer": ISSUER, "jwks_uri": f"{ISSUER}{JWKS}"})
    assert kids(await provider.candidates(kid="a", alg="RS256")) == ["a"]
    assert idp.hits == {JWKS: 1}


@pytest.mark.parametrize(
    ("metadata", "code"),
    [
        pytest.param({"issuer": "https://other.example"}, "issuer_mismatch", id="mapping-issuer"),
        pytest.param(ProviderMetadata(issuer=ISSUER + "/"), "issuer_mismatch", id="typed-issuer"),
        pytest.param(
            ProviderMetadata(issuer=ISSUER, jwks_uri="http://idp.example/jwks"),
            "insecure_url",
            id="typed-http-endpoint",
        ),
    ],
)
def test_static_metadata_is_validated(metadata: Any, code: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        Provider(ISSUER, metadata=metadata)
    assert info.value.code == code


async def test_missing_jwks_uri(make: Callable[..., Provider]) -> None:
    provider = make(metadata={"issuer": ISSUER})
    with pytest.raises(ConfigurationError) as info:
        await provider.candidates(kid="a", alg="RS256")
    assert info.value.code == "no_jwks_uri"


# -- construction ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("issuer", "code"),
    [
        pytest.param("http://idp.example", "insecure_issuer", id="plain-http"),
        pytest.param("idp.example", "invalid_issuer", id="no-scheme"),
        pytest.param("https://idp.example?tenant=1", "invalid_issuer", id="query"),
        pytest.param("https://idp.example#x", "invalid_issuer", id="fragment"),
        pytest.param("https://idp.example?", "invalid_issuer", id="empty-query"),
    ],
)
def test_bad_issuer_fails_at_construction(issuer: str, code: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        Provider(issuer)
    assert info.value.code == code


@pytest.mark.parametrize(
    "settings",
    [
        pytest.param({"timeout": 0}, id="zero-timeout"),
        pytest.param({"min_ttl": 700}, id="min-above-default"),
        pytest.param({"jwks_ttl": 7200}, id="default-above-max"),
        pytest.param({"max_ttl": 90000}, id="max-above-stale"),
        pytest.param({"cooldown": -1}, id="negative-cooldown"),
        pytest.param({"refresh_ahead": 1.5}, id="refresh-ahead-above-one"),
        pytest.param({"max_response_bytes": 0}, id="zero-size-cap"),
    ],
)
def test_bad_settings_fail_at_construction(settings: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError) as info:
        Provider(ISSUER, **settings)
    assert info.value.code == "invalid_setting"


def test_insecure_switch_warns() -> None:
    with pytest.warns(InsecureTransportWarning):
        Provider("http://idp.example", allow_insecure_http=True)


async def test_loopback_http_needs_no_switch_and_does_not_warn() -> None:
    issuer = "http://127.0.0.1:8080"

    async def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"issuer": issuer, "jwks_uri": f"{issuer}/jwks"})

    async with httpx.AsyncClient(transport=httpx.MockTransport(answer)) as client:
        meta = await Provider(issuer, http_client=client).metadata()  # filterwarnings=error
    assert meta.jwks_uri == f"{issuer}/jwks"


async def test_insecure_switch_allows_http_endpoints() -> None:
    issuer = "http://idp.test"

    async def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"issuer": issuer, "jwks_uri": f"{issuer}/jwks"})

    async with httpx.AsyncClient(transport=httpx.MockTransport(answer)) as client:
        with pytest.warns(InsecureTransportWarning):
            provider = Provider(issuer, http_client=client, allow_insecure_http=True)
        assert (await provider.metadata()).jwks_uri == f"{issuer}/jwks"


# -- keys: single flight ----------------------------------------------------------------------


async def test_thousand_concurrent_first_requests_one_fetch_each(
    make: Callable[..., Provider], idp: FakeIdP
) -> None:
    provider = make()
    idp.gate = asyncio.Event()
    tasks = [
        asyncio.ensure_future(provider.candidates(kid="a" if i % 2 else "e", alg=alg))
        for i, alg in ((i, "RS256" if i % 2 else "ES256") for i in range(1000))
    ]
    for _ in range(5):
        await asyncio.sleep(0)
    idp.gate.set()
    results = await asyncio.gather(*tasks)
    assert all(len(r) == 1 for r in results)
    assert idp.hits == {DISCOVERY: 1, JWKS: 1}
    assert provider.stats.discovery_fetches == 1
    assert provider.stats.jwks_fetches == 1


async def test_cancelled_waiter_does_not_cancel_the_shared_fetch(
    make: Callable[..., Provider], idp: FakeIdP
) -> None:
    provider = make()
    idp.gate = asyncio.Event()
    first = asyncio.ensure_future(provider.candidates(kid="a", alg="RS256"))
    second = asyncio.ensure_future(provider.candidates(kid="a", alg="RS256"))
    for _ in range(5):
        await asyncio.sleep(0)
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first
    idp.gate.set()
    assert kids(await second) == ["a"]
    assert kids(await provider.candidates(kid="a", alg="RS256")) == ["a"]
    assert idp.hits == {DISCOVERY: 1, JWKS: 1}


async def test_all_waiters_cancelled_fetch_still_lands(
    make: Callable[..., Provider], idp: FakeIdP
) -> None:
    provider = make()
    idp.gate = asyncio.Event()
    waiter = asyncio.ensure_future(provider.candidates(kid="a", alg="RS256"))
    for _ in range(5):
        await asyncio.sleep(0)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    idp.gate.set()
    for _ in range(20):
        await asyncio.sleep(0)
    assert kids(await provider.candidates(kid="a", alg="RS256")) == ["a"]
    assert idp.hits == {DISCOVERY: 1, JWKS: 1}


# -- keys: rotation, cooldown, flood ------------------------------------------------------------


async def test_rotation_new_kid_accepted_after_exactly_one_refetch(
    make: Callable[..., Provider], idp: FakeIdP, clock: Clock
) -> None:
    provider = make()
    await provider.prefetch()
    clock.advance(31)
    idp.publish(rsa_jwk(RSA_B, "b"), rsa_jwk(RSA_A, "a"))
    assert kids(await provider.candidates(kid="b", alg="RS256")) == ["b"]
    assert idp.hits[JWKS] == 2
    assert kids(await provider.candidates(kid="b", alg="RS256")) == ["b"]
    assert kids(await provider.candidates(kid="a", alg="RS256")) == ["a"]
    assert idp.hits[JWKS] == 2


async def test_cooldown_unknown_kid(
    make: Callable[..., Provider], idp: FakeIdP, clock: Clock
) -> None:
    provider = make()
    await provider.prefetch()
    clock.advance(10)
    assert await provider.candidates(kid="x1", alg="RS256") == []
    clock.advance(10)
    assert await provider.candidates(kid="x2", alg="RS256") == []
    assert idp.hits[JWKS] == 1  # within 30 s of the last fetch: no network
    clock.advance(11)
    assert await provider.candidates(kid="x2", alg="RS256") == []
    assert idp.hits[JWKS] == 2  # cooldown over: exactly one refetch
    assert await provider.candidates(kid="x3", alg="RS256") == []
    assert idp.hits[JWKS] == 2


async def test_unknown_kid_remembered_after_cooldown(
    make: Callable[..., Provider], idp: FakeIdP, clock: Clock
) -> None:
    provider = make(unknown_kid_ttl=120)
    await provider.prefetch()
    clock.advance(31)
    assert await provider.candidates(kid="ghost", alg="RS256") == []
    assert idp.hits[JWKS] == 2
    clock.advance(31)
    assert await provider.candidates(kid="ghost", alg="RS256") == []  # negative cache
    assert idp.hits[JWKS] == 2
    assert provider.stats.unknown_kid_hits == 1
    clock.advance(90)  # 151 s after it was remembered
    assert await provider.candidates(kid="ghost", alg="RS256") == []  # forgotten: retried
    assert idp.hits[JWKS] == 3


async def test_kid_seen_during_cooldown_is_not_blacklisted(
    make: Callable[..., Provider], idp: FakeIdP, clock: Clock
) -> None:
    """A kid that arrives before the provider publishes it is found once the cooldown ends."""
    provider = make()
    await provider.prefetch()
    clock.advance(5)
    assert await provider.candidates(kid="b", alg="RS256") == []
    idp.publish(rsa_jwk(RSA_A, "a"), rsa_jwk(RSA_B, "b"))
    clock.advance(26)
    assert kids(await provider.candidates(kid="b", alg="RS256")) == ["b"]


async def test_random_kid_flood_costs_one_fetch_per_cooldown(
    make: Callable[..., Provider], idp: FakeIdP, clock: Clock
) -> None:
    provider = make()
    await provider.prefetch()
    rng = random.Random(7)

    async def flood() -> None:
        results = await asyncio.gather(
            *(provider.candidates(kid=f"r{rng.getrandbits(64)}", alg="RS256") for _ in range(1000))
        )
        assert all(r == [] for r in results)

    await flood()
    assert idp.hits[JWKS] == 1  # still inside the cooldown of the prefetch
    clock.advance(31)
    await flood()
    assert idp.hits[JWKS] == 2
    clock.advance(15)
    await flood()
    assert idp.hits[JWKS] == 2
    assert kids(await provider.candidates(kid="a", alg="RS256")) == ["a"]
    clock.advance(16)
    await flood()
    assert idp.hits[JWKS] == 3
    assert kids(await provider.candidates(kid="e", alg="ES256")) == ["e"]
    assert idp.hits[DISCOVERY] == 1


async def test_unknown_kid_memory_is_bounded(
    make: Callable[..., Provider], idp: FakeIdP, clock: Clock
) -> None:
    provider = make(max_unknown_kids=10)
    await provider.prefetch()
    clock.advance(31)
    await asyncio.gather(*(provider.candidates(kid=f"k{i}", alg="RS256") for i in range(100)))
    assert idp.hits[JWKS] == 2
    assert len(provider._unknown_kids) == 10


@pytest.mark.parametrize(
    ("kid", "alg"),
    [
        pytest.param("a", "none", id="alg-none"),
        pytest.param("a", "HS256", id="hmac-with-jwks"),
        pytest.param("a", "RSA-OAEP", id="encryption-alg"),
        pytest.param("x" * 257, "RS256", id="kid-longer-than-any-key"),
    ],
)
async def test_impossible_requests_cost_no_network(
    make: Callable[..., Provider], idp: FakeIdP, kid: str, alg: str
) -> None:
    provider = make()
    assert await provider.candidates(kid=kid, alg=alg) == []
    assert idp.hits == {}


async def test_no_kid_selects_by_algorithm(make: Callable[..., Provider]) -> None:
    provider = make()
    assert kids(await provider.candidates(kid=None, alg="ES256")) == ["e"]
    assert kids(await provider.candidates(kid=None, alg="RS256")) == ["a"]
    assert await provider.candidates(kid=None, alg="ES384") == []


# -- keys: JWKS filtering end to end --------------------------------------------------------------


@pytest.mark.parametrize(
    ("jwk", "alg"),
    [
        pytest.param(rsa_jwk(RSA_B, "x", use="enc"), "RS256", id="use-enc"),
        pytest.param(rsa_jwk(RSA_B, "x", key_ops=["encrypt"]), "RS256", id="key-ops-no-verify"),
        pytest.param(rsa_jwk(RSA_B, "x", d="AQAB"), "RS256", id="private-member"),
        pytest.param(rsa_jwk(RSA_WEAK, "x"), "RS256", id="rsa-1024"),
        pytest.param({"kty": "oct", "kid": "x", "k": "c2VjcmV0"}, "HS256", id="oct-hmac"),
        pytest.param({"kty": "oct", "kid": "x", "k": "c2VjcmV0"}, "RS256", id="oct-as-rs256"),
        pytest.param(rsa_jwk(RSA_B, "x", alg="RS384"), "RS256", id="declared-alg-differs"),
        pytest.param(ec_jwk(EC_A, "x"), "RS256", id="kty-does-not-fit-alg"),
    ],
)
async def test_jwks_filter_rules_end_to_end(
    make: Callable[..., Provider], idp: FakeIdP, jwk: dict[str, Any], alg: str
) -> None:
    idp.publish(jwk, rsa_jwk(RSA_A, "good", key_ops=["verify"]))
    provider = make()
    assert await provider.candidates(kid="x", alg=alg) == []
    assert kids(await provider.candidates(kid="good", alg="RS256")) == ["good"]


async def test_jwks_without_keys_array_is_bad_response(
    make: Callable[..., Provider], idp: FakeIdP
) -> None:
    idp.jwks = {"keys": "nope"}
    with pytest.raises(ProviderUnavailable) as info:
        await make().candidates(kid="a", alg="RS256")
    assert info.value.code == "provider_bad_response"


# -- outages ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("fault", "code"), OUTAGES)
async def test_first_fetch_failure_is_provider_unavailable(
    make: Callable[..., Provider], idp: FakeIdP, clock: Clock, fault: Fault, code: str
) -> None:
    idp.faults[JWKS] = fault
    provider = make(failure_backoff=5)
    with pytest.raises(ProviderUnavailable) as info:
        await provider.candidates(kid="a", alg="RS256")
    assert info.value.code == code
    assert info.value.retry_after == 5
    # Within the backoff, callers fail at once without hammering the provider.
    clock.advance(2)
    with pytest.raises(ProviderUnavailable) as info:
        await provider.candidates(kid="a", alg="RS256")
    assert info.value.retry_after == 3
    assert idp.hits[JWKS] == 1
    clock.advance(3)
    del idp.faults[JWKS]
    assert kids(await provider.candidates(kid="a", alg="RS256")) == ["a"]
    assert idp.hits[JWKS] == 2


@pytest.mark.parametrize(("fault", "code"), OUTAGES)
async def test_discovery_failure_is_provider_unavailable(
    make: Callable[..., Provider], idp: FakeIdP, fault: Fault, code: str
) -> None:
    idp.faults[DISCOVERY] = fault
    with pytest.raises(ProviderUnavailable) as info:
        await make().candidates(kid="a", alg="RS256")
    assert info.value.code == code
    assert idp.hits[JWKS] == 0


async def test_concurrent_callers_share_one_failed_fetch(
    make: Callable[..., Provider], idp: FakeIdP
) -> None:
    idp.faults[JWKS] = lambda r: httpx.Response(500)
    provider = make()
    results = await asyncio.gather(
        *(provider.candidates(kid="a", alg="RS256") for _ in range(200)), return_exceptions=True
    )
    assert all(isinstance(r, ProviderUnavailable) for r in results)
    assert idp.hits[JWKS] == 1


@pytest.mark.parametrize(("fault", "code"), OUTAGES)
async def test_last_known_good_keys_during_outage(
    make: Callable[..., Provider],
    idp: FakeIdP,
    clock: Clock,
    caplog: pytest.LogCaptureFixture,
    fault: Fault,
    code: str,
) -> None:
    provider = make()
    await provider.prefetch()
    idp.faults[JWKS] = fault
    idp.faults[DISCOVERY] = fault
    clock.advance(601)  # keys and metadata expired
    with caplog.at_level(logging.WARNING, logger="oidc_asgi.provider"):
        assert kids(await provider.candidates(kid="a", alg="RS256")) == ["a"]
    assert code in caplog.text
    assert "serving the copy" in caplog.text
    assert provider.stats.stale_served >= 1
    # Still served near the end of max_stale, with one attempt per backoff, not per request.
    attempts = idp.hits[JWKS] + idp.hits[DISCOVERY]
    for _ in range(50):
        assert kids(await provider.candidates(kid="a", alg="RS256")) == ["a"]
    assert idp.hits[JWKS] + idp.hits[DISCOVERY] == attempts
    clock.t += 86400 - 601 - 1
    assert kids(await provider.candidates(kid="a", alg="RS256")) == ["a"]
    clock.advance(10)  # past max_stale since the last good fetch
    with pytest.raises(ProviderUnavailable) as info:
        await provider.candidates(kid="a", alg="RS256")
    assert info.value.code == code
    assert info.value.retry_after is not None
    # Recovery: the next attempt after the backoff restores service.
    idp.faults.clear()
    clock.advance(5)
    assert kids(await provider.candidates(kid="a", alg="RS256")) == ["a"]


async def test_outage_does_not_wipe_keys_on_kid_miss(
    make: Callable[..., Provider], idp: FakeIdP, clock: Clock
) -> None:
    provider = make()
    await provider.prefetch()
    idp.faults[JWKS] = lambda r: httpx.Response(503)
    clock.advance(31)
    assert await provider.candidates(kid="new", alg="RS256") == []
    assert idp.hits[JWKS] == 2
    assert kids(await provider.candidates(kid="a", alg="RS256")) == ["a"]


async def test_log_never_contains_response_body(
    make: Callable[..., Provider], idp: FakeIdP, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    provider = make()
    await provider.prefetch()
    idp.faults[JWKS] = lambda r: httpx.Response(200, content=b'{"secret": "TOPSECRET", NaN}')
    clock.advance(601)
    with caplog.at_level(logging.DEBUG):
        await provider.candidates(kid="a", alg="RS256")
    assert "TOPSECRET" not in caplog.text


# -- freshness --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cache_control", "ttl"),
    [
        pytest.param(None, 600, id="absent-default-10-min"),
        pytest.param("max-age=120", 120, id="max-age-honoured"),
        pytest.param("max-age=5", 60, id="clamped-to-min-ttl"),
        pytest.param("max-age=999999", 3600, id="clamped-to-max-ttl"),
        pytest.param("no-store", 60, id="no-store-is-min-ttl"),
    ],
)
async def test_cache_control_max_age_clamped(
    make: Callable[..., Provider], idp: FakeIdP, clock: Clock, cache_control: str | None, ttl: int
) -> None:
    if cache_control is not None:
        idp.headers[JWKS] = {"Cache-Control": cache_control}
    provider = make(refresh_ahead=None, max_ttl=3600)
    await provider.candidates(kid="a", alg="RS256")
    clock.advance(ttl - 1)
    await provider.candidates(kid="a", alg="RS256")
    assert idp.hits[JWKS] == 1
    clock.advance(2)
    await provider.candidates(kid="a", alg="RS256")
    assert idp.hits[JWKS] == 2


async def test_removed_key_stops_working_after_ttl(
    make: Callable[..., Provider], idp: FakeIdP, clock: Clock
) -> None:
    provider = make(refresh_ahead=None)
    await provider.prefetch()
    idp.publish(rsa_jwk(RSA_B, "b"))
    clock.advance(601)
    assert await provider.candidates(kid="a", alg="RS256") == []


async def test_refresh_ahead_does_not_make_the_caller_wait(
    make: Callable[..., Provider], idp: FakeIdP, clock: Clock
) -> None:
    provider = make()
    await provider.prefetch()
    idp.gate = asyncio.Event()
    clock.advance(481)  # past 80 % of the 600 s lifetime
    assert kids(await provider.candidates(kid="a", alg="RS256")) == ["a"]
    for _ in range(20):
        await asyncio.sleep(0)
    assert idp.hits[JWKS] == 2  # started, still blocked at the gate
    assert kids(await provider.candidates(kid="a", alg="RS256")) == ["a"]  # no wait, no 2nd
    idp.publish(rsa_jwk(RSA_B, "b"))
    idp.gate.set()
    for _ in range(20):
        await asyncio.sleep(0)
    assert kids(await provider.candidates(kid="b", alg="RS256")) == ["b"]
    assert idp.hits[JWKS] == 2


async def test_etag_revalidation(make: Callable[..., Provider], idp: FakeIdP, clock: Clock) -> None:
    idp.headers[JWKS] = {"ETag": '"v1"'}
    provider = make(refresh_ahead=None)
    await provider.prefetch()

    def not_modified(request: httpx.Request) -> httpx.Response:
        assert request.headers["if-none-match"] == '"v1"'
        return httpx.Response(304, headers={"ETag": '"v1"'})

    idp.faults[JWKS] = not_modified
    clock.advance(601)
    assert kids(await provider.candidates(kid="a", alg="RS256")) == ["a"]
    assert provider.stats.not_modified == 1
    clock.advance(599)  # the 304 renewed the lifetime
    await provider.candidates(kid="a", alg="RS256")
    assert idp.hits[JWKS] == 2


async def test_new_jwks_uri_in_metadata_refetches_keys(
    make: Callable[..., Provider], idp: FakeIdP, clock: Clock
) -> None:
    provider = make(refresh_ahead=None, jwks_ttl=600)
    idp.headers[JWKS] = {"Cache-Control": "max-age=3600"}
    await provider.prefetch()
    idp.discovery["jwks_uri"] = f"{ISSUER}/jwks2"
    idp.faults["/jwks2"] = lambda r: httpx.Response(200, json={"keys": [rsa_jwk(RSA_B, "b")]})
    clock.advance(601)  # metadata expired, keys not yet
    assert kids(await provider.candidates(kid="b", alg="RS256")) == ["b"]
    assert idp.hits["/jwks2"] == 1


# -- transport rules through the provider --------------------------------------------------------


async def test_jwks_redirect_to_other_origin_is_refused(
    make: Callable[..., Provider], idp: FakeIdP
) -> None:
    idp.faults[JWKS] = lambda r: httpx.Response(
        302, headers={"Location": "https://attacker.example/jwks"}
    )
    with pytest.raises(ProviderUnavailable) as info:
        await make().candidates(kid="a", alg="RS256")
    assert info.value.code == "provider_redirect"
    assert {r.url.host for r in idp.requests} == {"idp.example"}


async def test_discovery_redirect_to_other_origin_is_refused(
    make: Callable[..., Provider], idp: FakeIdP
) -> None:
    idp.faults[DISCOVERY] = lambda r: httpx.Response(
        301, headers={"Location": "https://attacker.example/.well-known/openid-configuration"}
    )
    with pytest.raises(ProviderUnavailable) as info:
        await make().metadata()
    assert info.value.code == "provider_redirect"
    assert {r.url.host for r in idp.requests} == {"idp.example"}


async def test_oversized_jwks_rejected(make: Callable[..., Provider], idp: FakeIdP) -> None:
    idp.jwks = {"keys": [rsa_jwk(RSA_A, "a")], "padding": "x" * 5000}
    with pytest.raises(ProviderUnavailable) as info:
        await make(max_response_bytes=4096).candidates(kid="a", alg="RS256")
    assert info.value.code == "provider_response_too_large"


async def test_default_timeout_is_passed_to_every_request(
    make: Callable[..., Provider], idp: FakeIdP
) -> None:
    await make(timeout=2.5).prefetch()
    for request in idp.requests:
        assert request.extensions["timeout"] == {
            "connect": 2.5,
            "read": 2.5,
            "write": 2.5,
            "pool": 2.5,
        }


async def test_owned_client_is_closed(idp: FakeIdP) -> None:
    async with Provider(ISSUER, metadata={"issuer": ISSUER}) as provider:
        client = provider._http()
    assert client.is_closed
