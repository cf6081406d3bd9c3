"""``BearerValidator`` without any framework: credentials, validation, cache, issuers, outages."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from oidc_asgi.bearer import BearerConfig, BearerValidator, Principal, Scopes
from oidc_asgi.errors import ConfigurationError, ProviderUnavailable, TokenError
from oidc_asgi.testing import BadTokens, DevProvider, DevProviderConfig

from ._support import API, OTHER_API, Clock, CountingTransport, bearer, http_scope
from .conftest import MakeValidator, MintToken

# -- credentials (RFC 6750 section 2) ---------------------------------------------------------

REQUEST_ERRORS: list[tuple[str, list[tuple[str, str]], str]] = [
    (
        "two-authorization-headers",
        [("Authorization", "Bearer abc"), ("Authorization", "Bearer def")],
        "multiple_authorization_headers",
    ),
    ("bearer-without-token", [("Authorization", "Bearer")], "malformed_authorization"),
    ("bearer-space-only", [("Authorization", "Bearer ")], "malformed_authorization"),
    ("token-with-space", [("Authorization", "Bearer abc def")], "malformed_authorization"),
    ("token-with-comma", [("Authorization", "Bearer abc,def")], "malformed_authorization"),
    ("token-with-quote", [("Authorization", 'Bearer "abc"')], "malformed_authorization"),
    ("token-with-tab", [("Authorization", "Bearer\tabc")], "malformed_authorization"),
    ("padding-in-middle", [("Authorization", "Bearer ab=c")], "malformed_authorization"),
    ("header-too-large", [("Authorization", "Bearer " + "a" * 9000)], "authorization_too_large"),
]


@pytest.mark.parametrize(
    ("headers", "code"),
    [pytest.param(h, c, id=i) for i, h, c in REQUEST_ERRORS],
)
def test_malformed_requests_rfc6750_s3_1(
    validator: BearerValidator, headers: list[tuple[str, str]], code: str
) -> None:
    with pytest.raises(TokenError) as info:
        validator.credentials(http_scope(headers))
    assert info.value.code == code


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param([], id="no-header"),
        pytest.param([("Authorization", "Basic dXNlcjpwdw==")], id="basic-scheme"),
        pytest.param([("Authorization", "DPoP abc")], id="dpop-scheme-not-enabled"),
        pytest.param([("Authorization", "Negotiate")], id="scheme-only"),
        pytest.param([("X-Access-Token", "abc")], id="other-header"),
    ],
)
def test_no_credentials(validator: BearerValidator, headers: list[tuple[str, str]]) -> None:
    assert validator.credentials(http_scope(headers)) is None


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("Bearer abc.def-_~+/==", id="b64token-alphabet"),
        pytest.param("bearer abc", id="lowercase-scheme"),
        pytest.param("BEARER abc", id="uppercase-scheme"),
        pytest.param("Bearer   abc", id="several-spaces-rfc6750"),
    ],
)
def test_accepted_header_forms(validator: BearerValidator, value: str) -> None:
    creds = validator.credentials(http_scope([("Authorization", value)]))
    assert creds is not None
    assert creds.scheme == "Bearer"
    assert creds.token == value.split()[-1]


def test_form_token_only_when_enabled_rfc6750_s2_2(make_validator: MakeValidator) -> None:
    form_post = http_scope(
        [("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")], method="POST"
    )
    assert not make_validator().wants_form(form_post)
    enabled = make_validator(token_sources=("header", "form"))
    assert enabled.wants_form(form_post)
    assert not enabled.wants_form(
        http_scope([("Content-Type", "application/x-www-form-urlencoded")], method="GET")
    )
    assert not enabled.wants_form(http_scope([("Content-Type", "application/json")], method="POST"))
    creds = enabled.credentials(form_post, ["abc"])
    assert creds is not None
    assert (creds.source, creds.token) == ("form", "abc")


@pytest.mark.parametrize(
    ("headers", "form"),
    [
        pytest.param(bearer("abc"), ["abc"], id="header-and-form"),
        pytest.param([], ["abc", "def"], id="two-form-tokens"),
    ],
)
def test_two_methods_are_invalid_request_rfc6750_s2(
    make_validator: MakeValidator, headers: list[tuple[str, str]], form: list[str]
) -> None:
    validator = make_validator(token_sources=("header", "form"))
    with pytest.raises(TokenError) as info:
        validator.credentials(http_scope(headers, method="POST"), form)
    assert info.value.code == "multiple_tokens"


# -- validation -------------------------------------------------------------------------------


async def test_valid_token_gives_principal(
    validator: BearerValidator, mint: MintToken, dev: DevProvider
) -> None:
    act = {"sub": "gateway", "act": {"sub": "edge"}}
    token = mint(scopes=["read:messages", "write:messages"], claims={"act": act})
    principal = await validator.authenticate(http_scope(bearer(token)))
    assert isinstance(principal, Principal)
    assert principal.subject == "alice"
    assert principal.client_id == "webapp"
    assert principal.issuer == dev.issuer
    assert principal.scopes == {"read:messages", "write:messages"}
    assert principal.token_type == "Bearer"
    assert principal.actors == ({"sub": "gateway"}, {"sub": "edge"})
    assert principal.actor == {"sub": "gateway"}
    assert principal.claims["aud"] == API
    assert principal.has_scopes("read:messages")
    assert not principal.has_scopes("read:messages", "admin")
    assert token not in repr(principal)


async def test_missing_token_code(validator: BearerValidator) -> None:
    with pytest.raises(TokenError) as info:
        await validator.authenticate(http_scope())
    assert info.value.code == "missing_token"


def bad_token_cases() -> list[tuple[str, Callable[[BadTokens], str], str]]:
    return [
        ("wrong-issuer", BadTokens.wrong_issuer, "invalid_issuer"),
        ("wrong-audience", BadTokens.wrong_audience, "invalid_audience"),
        ("expired", BadTokens.expired, "token_expired"),
        ("not-yet-valid", BadTokens.not_yet_valid, "token_not_yet_valid"),
        ("unknown-kid", BadTokens.unknown_kid, "unknown_key"),
        ("hs256-with-public-key", BadTokens.hs256_with_public_key, "alg_not_allowed"),
        ("alg-none", BadTokens.alg_none, "alg_not_allowed"),
        ("bad-signature", BadTokens.bad_signature, "invalid_signature"),
        ("wrong-typ", BadTokens.wrong_typ, "invalid_typ"),
        ("missing-sub", lambda b: b.missing("sub"), "missing_claim"),
        ("missing-exp", lambda b: b.missing("exp"), "missing_claim"),
        ("missing-iat", lambda b: b.missing("iat"), "missing_claim"),
    ]


@pytest.mark.parametrize(
    ("make", "code"), [pytest.param(m, c, id=i) for i, m, c in bad_token_cases()]
)
async def test_bad_tokens_rfc9068_s4(
    validator: BearerValidator, dev: DevProvider, make: Callable[[BadTokens], str], code: str
) -> None:
    token = make(BadTokens(dev, audience=API, scopes=["read:messages"]))
    with pytest.raises(TokenError) as info:
        await validator.authenticate(http_scope(bearer(token)))
    assert info.value.code == code
    assert token not in str(info.value)


async def test_id_token_is_not_an_access_token_rfc8725_s2_8(
    validator: BearerValidator, dev: DevProvider
) -> None:
    id_token = dev.mint_id_token(client_id=API, nonce="n-1")
    with pytest.raises(TokenError) as info:
        await validator.validate(id_token)
    assert info.value.code == "invalid_typ"


async def test_sibling_api_token_rejected(validator: BearerValidator, mint: MintToken) -> None:
    with pytest.raises(TokenError) as info:
        await validator.validate(mint(audience=OTHER_API, scopes=["read:summary"]))
    assert info.value.code == "invalid_audience"


async def test_rules_fail_with_403_codes_never_invalid_token(
    validator: BearerValidator, mint: MintToken
) -> None:
    with pytest.raises(TokenError) as info:
        await validator.authenticate(
            http_scope(bearer(mint(scopes=["read:messages"]))), rules=[Scopes("write:messages")]
        )
    assert info.value.code == "insufficient_scope"
    assert validator.challenge(info.value).status == 403


@pytest.mark.parametrize(
    ("claims", "code"),
    [
        pytest.param(
            {"cnf": {"jkt": "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"}},
            "dpop_bound_token",
            id="dpop-bound-as-bearer-rfc9449-s7-2",
        ),
        pytest.param(
            {"cnf": {"x5t#S256": "bwcK0esc3ACC3DB2Y5_lESsXE8o9ltc05O89jdN-dg2"}},
            "unsupported_token_binding",
            id="mtls-bound",
        ),
    ],
)
async def test_sender_constrained_tokens_are_not_bearer_tokens(
    validator: BearerValidator, mint: MintToken, claims: dict[str, Any], code: str
) -> None:
    with pytest.raises(TokenError) as info:
        await validator.authenticate(http_scope(bearer(mint(claims=claims))))
    assert info.value.code == code
    assert validator.challenge(info.value).status == 401


# -- extra checks ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "claims", "code"),
    [
        pytest.param(
            {"required_values": {"tenant": "t1"}},
            {"tenant": "t2"},
            "invalid_claim_value",
            id="required-value-differs",
        ),
        pytest.param(
            {"required_values": {"tenant": "t1"}},
            {},
            "invalid_claim_value",
            id="required-value-absent",
        ),
        pytest.param(
            {"required_values": {"level": 1}},
            {"level": "1"},
            "invalid_claim_value",
            id="required-value-type",
        ),
        pytest.param(
            {"allowed_client_ids": ["spa"]}, {}, "client_not_allowed", id="client-not-allowed"
        ),
        pytest.param(
            {"max_token_age": 60}, {"iat": 1_800_000_000 - 120}, "token_too_old", id="max-token-age"
        ),
    ],
)
async def test_configured_extra_checks_are_401(
    make_validator: MakeValidator,
    mint: MintToken,
    overrides: dict[str, Any],
    claims: dict[str, Any],
    code: str,
) -> None:
    validator = make_validator(**overrides)
    with pytest.raises(TokenError) as info:
        await validator.validate(mint(claims=claims))
    assert info.value.code == code
    assert validator.challenge(info.value).status == 401


async def test_required_values_and_clients_accept(
    make_validator: MakeValidator, mint: MintToken
) -> None:
    validator = make_validator(required_values={"tenant": "t1"}, allowed_client_ids=["webapp"])
    principal = await validator.validate(mint(claims={"tenant": "t1"}))
    assert principal.claims["tenant"] == "t1"


# -- verified-token cache ---------------------------------------------------------------------


async def test_repeated_token_is_verified_once(
    validator: BearerValidator, mint: MintToken, transport: CountingTransport
) -> None:
    token = mint()
    provider = validator.providers[validator.config.issuers[0]]
    first = await validator.validate(token)
    kid_lookups = provider.stats.jwks_fetches + provider.stats.kid_misses
    for _ in range(5):
        assert await validator.validate(token) is first
    assert provider.stats.jwks_fetches + provider.stats.kid_misses == kid_lookups
    assert transport.calls["/jwks"] == 1


async def test_cached_token_still_expires(
    validator: BearerValidator, mint: MintToken, clock: Clock
) -> None:
    token = mint(lifetime=100)
    await validator.validate(token)
    clock.advance(100 + validator.config.leeway + 1)
    with pytest.raises(TokenError) as info:
        await validator.validate(token)
    assert info.value.code == "token_expired"


async def test_cache_is_bounded(make_validator: MakeValidator, mint: MintToken) -> None:
    validator = make_validator(cache_size=2)
    for _ in range(5):
        await validator.validate(mint())
    assert len(validator._cache) == 2


async def test_cache_disabled(make_validator: MakeValidator, mint: MintToken) -> None:
    validator = make_validator(cache_size=0)
    token = mint()
    assert await validator.validate(token) is not await validator.validate(token)


# -- issuers ----------------------------------------------------------------------------------


@pytest.fixture
def second_dev(shared_keys: Any, clock: Clock) -> DevProvider:
    config = DevProviderConfig.default(issuer="http://127.0.0.1:9100")
    return DevProvider(config, now=clock)


async def test_multi_issuer_allow_list(
    dev: DevProvider, second_dev: DevProvider, clock: Clock
) -> None:
    one = CountingTransport(httpx.ASGITransport(app=dev))
    two = CountingTransport(httpx.ASGITransport(app=second_dev))

    class Route(httpx.AsyncBaseTransport):
        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            target = two if request.url.port == 9100 else one
            return await target.handle_async_request(request)

    async with httpx.AsyncClient(transport=Route()) as http:
        validator = BearerValidator(
            BearerConfig(issuer=[dev.issuer, second_dev.issuer], audience=API),
            http_client=http,
            now=clock,
        )
        first = await validator.validate(dev.mint_access_token(audience=API))
        second = await validator.validate(second_dev.mint_access_token(audience=API))
        assert (first.issuer, second.issuer) == (dev.issuer, second_dev.issuer)
        before = one.total + two.total
        for iss in ("http://169.254.169.254/", "http://127.0.0.1:9000/", "http://127.0.0.1:900"):
            token = dev.mint_access_token(audience=API, claims={"iss": iss})
            with pytest.raises(TokenError) as info:
                await validator.validate(token)
            assert info.value.code == "invalid_issuer"
        # Attack catalogue row 20: unknown issuers cost zero fetches.
        assert one.total + two.total == before


async def test_issuer_signed_by_other_listed_issuer_fails(
    dev: DevProvider, second_dev: DevProvider, clock: Clock
) -> None:
    # A token claiming issuer two but signed with issuer one's key: allow-listed, still rejected.
    transport = CountingTransport(httpx.ASGITransport(app=second_dev))
    async with httpx.AsyncClient(transport=transport) as http:
        validator = BearerValidator(
            BearerConfig(issuer=[dev.issuer, second_dev.issuer], audience=API),
            http_client=http,
            now=clock,
            keys={dev.issuer: _static(dev)},
        )
        forged = dev.mint_access_token(audience=API, claims={"iss": second_dev.issuer})
        with pytest.raises(TokenError) as info:
            await validator.validate(forged)
        assert info.value.code in ("unknown_key", "invalid_signature")


def _static(dev: DevProvider) -> Any:
    from oidc_asgi._jwks import StaticKeys

    return StaticKeys(dev.jwks())


# -- outages ----------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["503", "connect"])
async def test_provider_down_without_keys_is_503(
    validator: BearerValidator, mint: MintToken, transport: CountingTransport, mode: str
) -> None:
    transport.down = mode
    token = mint()
    with pytest.raises(ProviderUnavailable) as info:
        await validator.authenticate(http_scope(bearer(token)))
    challenge = validator.challenge(info.value)
    assert challenge.status == 503
    retry = dict(challenge.headers)["Retry-After"]
    assert int(retry) >= 1
    assert "WWW-Authenticate" not in dict(challenge.headers)


async def test_provider_down_with_cached_keys_still_validates(
    validator: BearerValidator, mint: MintToken, transport: CountingTransport, clock: Clock
) -> None:
    await validator.validate(mint())
    transport.down = "connect"
    clock.advance(3600)  # well past the JWKS max-age, within max_stale
    principal = await validator.validate(mint())
    assert principal.subject == "alice"


async def test_prefetch_fetches_keys_once(
    validator: BearerValidator, transport: CountingTransport
) -> None:
    await validator.prefetch()
    assert transport.calls["/jwks"] == 1
    assert transport.calls["/.well-known/openid-configuration"] == 1
    await validator.aclose()


# -- configuration ----------------------------------------------------------------------------

CONFIG_ERRORS: list[tuple[str, dict[str, Any]]] = [
    ("no-audience", {"audience": None}),
    ("empty-audience", {"audience": []}),
    ("empty-issuer", {"issuer": ""}),
    ("duplicate-issuer", {"issuer": ["https://a.example", "https://a.example"]}),
    ("alg-none", {"algorithms": ["none"]}),
    ("alg-hmac", {"algorithms": ["HS256"]}),
    ("alg-unknown", {"algorithms": ["XY256"]}),
    ("alg-one-string", {"algorithms": ""}),
    ("negative-leeway", {"leeway": -1}),
    ("nan-leeway", {"leeway": float("nan")}),
    ("typ-policy", {"typ_policy": "loose"}),
    ("query-source", {"token_sources": ["query"]}),
    ("realm-quote", {"realm": 'a"b'}),
    ("cache-size-bool", {"cache_size": True}),
    ("tiny-token-cap", {"max_token_bytes": 10}),
    ("jwks-uri-unknown-issuer", {"jwks_uris": {"https://other.example": "https://x/jwks"}}),
    ("alias-to-unknown", {"issuer_aliases": {"x": "https://other.example"}}),
    ("bad-scope-claim", {"scope_claims": [("",)]}),
]


@pytest.mark.parametrize("overrides", [pytest.param(o, id=i) for i, o in CONFIG_ERRORS])
def test_configuration_fails_at_startup(overrides: dict[str, Any]) -> None:
    values: dict[str, Any] = {"issuer": "https://idp.example.com/", "audience": API}
    values.update(overrides)
    with pytest.raises(ConfigurationError):
        BearerConfig(**values)


def test_from_env() -> None:
    config = BearerConfig.from_env(
        environ={
            "OIDC_ISSUER": "https://a.example https://b.example",
            "OIDC_AUDIENCE": "api1",
            "OIDC_LEEWAY": "5",
        }
    )
    assert config.issuers == ("https://a.example", "https://b.example")
    assert config.audience == frozenset({"api1"})
    assert config.leeway == 5
    with pytest.raises(ConfigurationError):
        BearerConfig.from_env(environ={"OIDC_AUDIENCE": "api1"})


def test_with_changes_revalidates() -> None:
    config = BearerConfig(issuer="https://idp.example.com/", audience=API)
    assert config.with_changes(leeway=0).leeway == 0
    with pytest.raises(ConfigurationError):
        config.with_changes(leeway=-5)
