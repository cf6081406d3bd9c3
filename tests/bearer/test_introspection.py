"""Opaque tokens through introspection (RFC 7662), against the development provider."""

from __future__ import annotations

import dataclasses
from typing import Any

import httpx
import pytest

from oidc_asgi.bearer import BearerConfig, BearerValidator, DPoPSettings, Introspector, Scopes
from oidc_asgi.client import OAuthClient
from oidc_asgi.errors import ConfigurationError, ProviderUnavailable, TokenError
from oidc_asgi.testing import DevAPI, DevProvider, DevProviderConfig, KeyRing

from ._support import API, Clock, CountingTransport, bearer, http_scope

REPORTS = "http://127.0.0.1:8004/api"
OTHER_OPAQUE = "http://127.0.0.1:8005/api"


@pytest.fixture
def dev(shared_keys: KeyRing, clock: Clock) -> DevProvider:
    base = DevProviderConfig.default()
    config = dataclasses.replace(
        base,
        apis=(*base.apis, DevAPI(identifier=OTHER_OPAQUE, scopes=("x",), token_format="opaque")),
    )
    return DevProvider(config, now=clock, keys=shared_keys.copy())


@pytest.fixture
def introspecting(dev: DevProvider, http: httpx.AsyncClient, clock: Clock) -> BearerValidator:
    client = OAuthClient(
        client_id="webapp",
        client_secret="webapp-secret",
        token_endpoint=dev.endpoint("token"),
        http_client=http,
        now=clock,
    )
    return BearerValidator(
        BearerConfig(issuer=dev.issuer, audience=[REPORTS, API]),
        http_client=http,
        now=clock,
        introspection=Introspector(client, negative_ttl=10, max_cache_ttl=60, now=clock),
    )


def opaque(dev: DevProvider, api: str = REPORTS, scope: tuple[str, ...] = ("read:reports",)) -> str:
    token, _, _ = dev.issue_access_token(
        client_id="webapp", sub="alice", scope=scope, api=dev.config.api(api)
    )
    return token


async def test_active_token_gives_principal(
    introspecting: BearerValidator, dev: DevProvider, transport: CountingTransport
) -> None:
    token = opaque(dev)
    principal = await introspecting.authenticate(
        http_scope(bearer(token)), rules=[Scopes("read:reports")]
    )
    assert (principal.subject, principal.client_id) == ("alice", "webapp")
    assert principal.scopes == {"read:reports"}
    assert principal.issuer == dev.issuer
    await introspecting.validate(token)
    assert transport.calls["/introspect"] == 1  # cached until exp / max_cache_ttl


async def test_jwts_still_verified_locally(
    introspecting: BearerValidator, dev: DevProvider, transport: CountingTransport
) -> None:
    await introspecting.validate(dev.mint_access_token(audience=API))
    assert transport.calls["/introspect"] == 0


async def test_missing_scope_is_403(introspecting: BearerValidator, dev: DevProvider) -> None:
    with pytest.raises(TokenError) as info:
        await introspecting.authenticate(
            http_scope(bearer(opaque(dev))), rules=[Scopes("write:reports")]
        )
    assert introspecting.challenge(info.value).status == 403


async def test_inactive_and_negative_cache(
    introspecting: BearerValidator, transport: CountingTransport, clock: Clock
) -> None:
    for _ in range(3):
        with pytest.raises(TokenError) as info:
            await introspecting.validate("dev_at_unknown-token")
        assert info.value.code == "inactive_token"
    assert transport.calls["/introspect"] == 1
    clock.advance(11)
    with pytest.raises(TokenError):
        await introspecting.validate("dev_at_unknown-token")
    assert transport.calls["/introspect"] == 2


async def test_revocation_seen_after_cache_ttl(
    introspecting: BearerValidator, dev: DevProvider, clock: Clock
) -> None:
    token = opaque(dev)
    await introspecting.validate(token)
    dev.state.tokens[token].revoked = True
    await introspecting.validate(token)  # still cached (max_cache_ttl bounds the window)
    clock.advance(61)
    with pytest.raises(TokenError) as info:
        await introspecting.validate(token)
    assert info.value.code == "inactive_token"


@pytest.mark.parametrize(
    ("make", "code"),
    [
        pytest.param(lambda d: opaque(d, OTHER_OPAQUE, ("x",)), "invalid_audience", id="other-api"),
        pytest.param(
            lambda d: d.issue_refresh_token(d.new_grant("webapp", "alice", ["openid"]), "webapp"),
            "token_kind_mismatch",
            id="refresh-token",
        ),
    ],
)
async def test_answer_is_validated_rfc7662_s4(
    introspecting: BearerValidator, dev: DevProvider, make: Any, code: str
) -> None:
    with pytest.raises(TokenError) as info:
        await introspecting.validate(make(dev))
    assert info.value.code == code
    assert introspecting.challenge(info.value).status == 401


async def test_expiry_bounds_the_cache(
    introspecting: BearerValidator, dev: DevProvider, clock: Clock
) -> None:
    api = dev.config.api(REPORTS)
    assert api is not None
    short = dataclasses.replace(api, access_token_lifetime=30)
    token, _, _ = dev.issue_access_token(
        client_id="webapp", sub="alice", scope=["read:reports"], api=short
    )
    await introspecting.validate(token)
    clock.advance(31)
    with pytest.raises(TokenError) as info:
        await introspecting.validate(token)
    assert info.value.code == "inactive_token"


def crafted(answer: dict[str, Any]) -> httpx.MockTransport:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=answer)

    return httpx.MockTransport(handler)


ISS = "http://127.0.0.1:9000"
CRAFTED: list[tuple[str, dict[str, Any], str]] = [
    ("active-string-true", {"active": "true", "aud": REPORTS}, "inactive_token"),
    ("active-missing", {"aud": REPORTS}, "inactive_token"),
    (
        "foreign-issuer",
        {"active": True, "iss": "https://evil.example", "aud": REPORTS},
        "invalid_issuer",
    ),
    ("no-audience", {"active": True, "iss": ISS}, "invalid_audience"),
    ("expired", {"active": True, "iss": ISS, "aud": REPORTS, "exp": 1_000}, "token_expired"),
    ("exp-string", {"active": True, "iss": ISS, "aud": REPORTS, "exp": "9"}, "invalid_claim_type"),
]


@pytest.mark.parametrize(("answer", "code"), [pytest.param(a, c, id=i) for i, a, c in CRAFTED])
async def test_crafted_answers_rejected(answer: dict[str, Any], code: str, clock: Clock) -> None:
    async with httpx.AsyncClient(transport=crafted(answer)) as http:
        client = OAuthClient(
            client_id="api", client_secret="s", token_endpoint=f"{ISS}/token", http_client=http
        )
        validator = BearerValidator(
            BearerConfig(issuer=ISS, audience=REPORTS),
            http_client=http,
            now=clock,
            introspection=Introspector(client, endpoint=f"{ISS}/introspect", now=clock),
        )
        with pytest.raises(TokenError) as info:
            await validator.validate("opaque-token")
        assert info.value.code == code


_LIVE = {"active": True, "iss": ISS, "aud": REPORTS}
_JKT = "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"


def _crafted_validator(http: httpx.AsyncClient, clock: Clock) -> BearerValidator:
    client = OAuthClient(
        client_id="api", client_secret="s", token_endpoint=f"{ISS}/token", http_client=http
    )
    return BearerValidator(
        BearerConfig(issuer=ISS, audience=REPORTS, dpop=DPoPSettings()),
        http_client=http,
        now=clock,
        introspection=Introspector(client, endpoint=f"{ISS}/introspect", now=clock),
    )


@pytest.mark.parametrize(
    "answer",
    [
        pytest.param({"token_type": "DPoP"}, id="dpop-without-cnf"),
        pytest.param({"token_type": "dpop"}, id="dpop-lowercase-without-cnf"),
        pytest.param({"token_type": "DPoP", "cnf": {"x5t#S256": "abc"}}, id="dpop-cnf-no-jkt"),
        pytest.param({"token_type": "DPoP", "cnf": {"jkt": 5}}, id="dpop-jkt-not-string"),
        pytest.param({"token_type": "DPoP", "cnf": {"jkt": ""}}, id="dpop-jkt-empty"),
        pytest.param({"token_type": "DPoP", "cnf": "jkt"}, id="dpop-cnf-not-object"),
    ],
)
async def test_introspected_dpop_token_without_jkt_rejected_rfc9449_s6_2(
    answer: dict[str, Any], clock: Clock
) -> None:
    async with httpx.AsyncClient(transport=crafted({**_LIVE, **answer})) as http:
        validator = _crafted_validator(http, clock)
        scope = http_scope([("Authorization", "Bearer opaque-token")])
        with pytest.raises(TokenError) as info:
            await validator.authenticate(scope)
    assert (info.value.code, info.value.claim) == ("missing_dpop_binding", "cnf")
    challenge = validator.challenge(info.value, scope)
    assert challenge.status == 401
    assert 'error="invalid_token"' in challenge.header_dict()["WWW-Authenticate"]


async def test_introspected_dpop_token_with_jkt_is_bound_rfc9449_s6_2(clock: Clock) -> None:
    answer = {**_LIVE, "token_type": "DPoP", "cnf": {"jkt": _JKT}}
    async with httpx.AsyncClient(transport=crafted(answer)) as http:
        validator = _crafted_validator(http, clock)
        principal = await validator.validate("opaque-token")
        assert (principal.token_type, principal.jkt) == ("DPoP", _JKT)
        # Sent as a bearer token it is still refused (RFC 9449 section 7.2).
        with pytest.raises(TokenError) as info:
            await validator.authenticate(http_scope([("Authorization", "Bearer other-token")]))
    assert info.value.code == "dpop_bound_token"


async def test_endpoint_down_is_503(
    introspecting: BearerValidator, dev: DevProvider, transport: CountingTransport
) -> None:
    token = opaque(dev)
    await introspecting.prefetch()
    transport.down = "503"
    with pytest.raises(ProviderUnavailable) as info:
        await introspecting.validate(token)
    assert introspecting.challenge(info.value).status == 503


async def test_wrong_api_credentials_is_503_not_401(
    dev: DevProvider, http: httpx.AsyncClient, clock: Clock
) -> None:
    client = OAuthClient(
        client_id="webapp",
        client_secret="wrong",
        token_endpoint=dev.endpoint("token"),
        http_client=http,
    )
    validator = BearerValidator(
        BearerConfig(issuer=dev.issuer, audience=REPORTS),
        http_client=http,
        now=clock,
        introspection=Introspector(client, now=clock),
    )
    with pytest.raises(ConfigurationError) as info:
        await validator.validate(opaque(dev))
    assert info.value.code == "introspection_refused"
    assert validator.challenge(info.value).status == 503


def test_introspector_settings() -> None:
    client = OAuthClient(client_id="a", client_secret="s", token_endpoint=f"{ISS}/token")
    with pytest.raises(ConfigurationError):
        Introspector(client, negative_ttl=-1)
    with pytest.raises(ConfigurationError):
        Introspector("client")  # type: ignore[arg-type]
