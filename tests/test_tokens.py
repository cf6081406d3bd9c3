"""Token validation: positive paths for every kind and algorithm, one failing token per rule."""

from __future__ import annotations

from collections.abc import Callable
from types import MappingProxyType
from typing import Any

import pytest

from _jwt import (
    API,
    CLIENT_ID,
    DROP,
    ISSUER,
    LOGOUT_EVENT,
    NOW,
    CountingKeys,
    at_claims,
    half_hash,
    header,
    id_claims,
    issuer_jwks,
    logout_claims,
    mint,
    signers,
)
from oidc_asgi._jwks import StaticKeys
from oidc_asgi.errors import ConfigurationError, ProviderUnavailable, TokenError
from oidc_asgi.tokens import (
    DEFAULT_ALGORITHMS,
    AccessTokenExpectations,
    Claims,
    IDTokenExpectations,
    LogoutTokenExpectations,
    TokenValidator,
)

ALL = ("RS256", "PS256", "ES256", "ES384", "ES512", "EdDSA", "Ed448")
ID_EXPECT = IDTokenExpectations(client_id=CLIENT_ID, nonce="n-0S6_WzA2Mj")
AT_EXPECT = AccessTokenExpectations(audience=API)
LO_EXPECT = LogoutTokenExpectations(client_id=CLIENT_ID)


def make_validator(
    *, now: float = NOW, algorithms: tuple[str, ...] = DEFAULT_ALGORITHMS, **kwargs: Any
) -> TokenValidator:
    return TokenValidator(
        issuer=ISSUER,
        keys=StaticKeys(issuer_jwks(ALL)),
        algorithms=algorithms,
        now=lambda: now,
        **kwargs,
    )


def id_token(name: str = "RS256", **claims: Any) -> str:
    signer = signers()[name]
    return mint(header(signer, "JWT"), id_claims(**claims), signer)


def access_token(name: str = "RS256", typ: str | None = "at+jwt", **claims: Any) -> str:
    signer = signers()[name]
    return mint(header(signer, typ), at_claims(**claims), signer)


def logout_token(name: str = "RS256", typ: str | None = "logout+jwt", **claims: Any) -> str:
    signer = signers()[name]
    return mint(header(signer, typ), logout_claims(**claims), signer)


async def expect_error(coro: Any, code: str, claim: str | None = None) -> TokenError:
    with pytest.raises(TokenError) as info:
        await coro
    assert info.value.code == code, str(info.value)
    if claim is not None:
        assert info.value.claim == claim
    return info.value


# --- positive paths ------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["RS256", "PS256", "ES256", "EdDSA"])
async def test_id_token_valid_with_each_default_algorithm(name: str) -> None:
    claims = await make_validator().id_token(id_token(name), ID_EXPECT)
    assert claims.sub == "user-1"
    assert claims.iss == ISSUER
    assert claims.aud == (CLIENT_ID,)
    assert claims.header["alg"] == signers()[name].alg


@pytest.mark.parametrize("name", ["RS256", "PS256", "ES256", "EdDSA"])
async def test_access_token_valid_with_each_default_algorithm_rfc9068(name: str) -> None:
    claims = await make_validator().access_token(access_token(name), AT_EXPECT)
    assert claims["client_id"] == CLIENT_ID
    assert claims.jti == "at-1"


@pytest.mark.parametrize("name", ["RS256", "PS256", "ES256", "EdDSA"])
async def test_logout_token_valid_with_each_default_algorithm(name: str) -> None:
    claims = await make_validator().logout_token(logout_token(name), LO_EXPECT)
    assert claims["sid"] == "sid-1"
    assert claims.jti == "lo-1"


@pytest.mark.parametrize("name", ["ES384", "ES512", "Ed448"])
async def test_other_curves_when_configured(name: str) -> None:
    validator = make_validator(algorithms=("ES384", "ES512", "EdDSA"))
    claims = await validator.access_token(access_token(name), AT_EXPECT)
    assert claims.sub == "user-1"


async def test_fully_specified_ed25519_alg_rfc9864() -> None:
    signer = signers()["EdDSA"]
    token = mint({"alg": "Ed25519", "typ": "at+jwt"}, at_claims(), signer)
    # A JWK declaring alg EdDSA would refuse "Ed25519"; publish it without alg.
    keys = StaticKeys({"keys": [signer.public_jwk(with_alg=False)]})
    validator = TokenValidator(issuer=ISSUER, keys=keys, algorithms=("Ed25519",), now=lambda: NOW)
    assert (await validator.access_token(token, AT_EXPECT)).sub == "user-1"


@pytest.mark.parametrize("typ", ["at+jwt", "application/at+jwt", "AT+JWT", "Application/At+Jwt"])
async def test_access_token_typ_variants_rfc9068_2_1(typ: str) -> None:
    await make_validator().access_token(access_token(typ=typ), AT_EXPECT)


@pytest.mark.parametrize("typ", [None, "JWT", "application/jwt"])
async def test_access_token_allow_untyped_accepts_generic_typ(typ: str | None) -> None:
    expect = AccessTokenExpectations(audience=API, allow_untyped=True)
    await make_validator().access_token(access_token(typ=typ), expect)


async def test_kid_absent_tries_each_candidate() -> None:
    signer = signers()["ES256"]
    keys = StaticKeys(
        {
            "keys": [
                {**signers()["attacker"].public_jwk(with_alg=False), "kid": "a"},
                signers()["RS256"].public_jwk(with_alg=False),
            ]
        }
    )
    validator = TokenValidator(issuer=ISSUER, keys=keys, now=lambda: NOW)
    rsa = signers()["RS256"]
    token = mint({"alg": "RS256", "typ": "at+jwt"}, at_claims(), rsa)
    assert (await validator.access_token(token, AT_EXPECT)).sub == "user-1"
    # ES256 without kid: no EC key in the set.
    es = mint({"alg": "ES256", "typ": "at+jwt"}, at_claims(), signer)
    await expect_error(validator.access_token(es, AT_EXPECT), "unknown_key")


async def test_key_rotation_list_two_keys_same_kid_family() -> None:
    """Several candidates for one kid (rotation overlap): each is tried."""
    new = signers()["RS256"]
    old = signers()["attacker"]
    keys = StaticKeys({"keys": [old.public_jwk(kid="k"), new.public_jwk(kid="k")]})
    validator = TokenValidator(issuer=ISSUER, keys=keys, now=lambda: NOW)
    token = mint({"alg": "RS256", "kid": "k", "typ": "at+jwt"}, at_claims(), new)
    assert (await validator.access_token(token, AT_EXPECT)).sub == "user-1"


async def test_claims_object_is_read_only_mapping() -> None:
    claims = await make_validator().access_token(access_token(aud=[API, "other"]), AT_EXPECT)
    assert isinstance(claims, Claims)
    assert claims.aud == (API, "other")
    assert claims.exp == NOW + 300
    assert dict(claims)["scope"] == "read write"
    assert len(claims) == len(at_claims())
    with pytest.raises(TypeError):
        claims._claims["sub"] = "x"  # type: ignore[index]
    with pytest.raises(AttributeError):
        claims.sub = "x"  # type: ignore[misc]
    with pytest.raises(TypeError):
        claims.header["alg"] = "none"  # type: ignore[index]
    assert "user-1" in repr(claims)


async def test_id_token_full_expectations_pass() -> None:
    name = "RS256"
    token = id_token(
        name,
        auth_time=NOW - 100,
        acr="urn:mace:incommon:iap:silver",
        at_hash=half_hash("RS256", "access-xyz"),
        c_hash=half_hash("RS256", "code-abc"),
        azp=CLIENT_ID,
    )
    expect = IDTokenExpectations(
        client_id=CLIENT_ID,
        nonce="n-0S6_WzA2Mj",
        max_age=200,
        acr_values=["urn:mace:incommon:iap:silver"],
        access_token="access-xyz",
        code="code-abc",
        require_at_hash=True,
        require_c_hash=True,
    )
    claims = await make_validator().id_token(token, expect)
    assert claims["acr"] == "urn:mace:incommon:iap:silver"


@pytest.mark.parametrize(
    ("name", "alg", "crv"),
    [
        ("RS256", "RS256", ""),
        ("PS256", "PS256", ""),
        ("ES256", "ES256", ""),
        ("ES384", "ES384", ""),
        ("ES512", "ES512", ""),
        ("EdDSA", "EdDSA", "Ed25519"),
        ("Ed448", "EdDSA", "Ed448"),
    ],
)
async def test_at_hash_uses_the_hash_of_alg_oidc_3_1_3_6_and_eddsa_errata(
    name: str, alg: str, crv: str
) -> None:
    validator = make_validator(algorithms=("RS256", "PS256", "ES256", "ES384", "ES512", "EdDSA"))
    token = id_token(name, at_hash=half_hash(alg, "tok", crv=crv))
    expect = IDTokenExpectations(client_id=CLIENT_ID, access_token="tok")
    await validator.id_token(token, expect)
    other = "ES384" if alg in ("RS256", "PS256", "ES256") else "RS256"
    wrong = id_token(name, at_hash=half_hash(other, "tok"))
    await expect_error(validator.id_token(wrong, expect), "invalid_at_hash", "at_hash")


async def test_azp_with_trusted_second_audience() -> None:
    expect = IDTokenExpectations(client_id=CLIENT_ID, trusted_audiences=["api"])
    token = id_token(aud=[CLIENT_ID, "api"], azp=CLIENT_ID)
    await make_validator().id_token(token, expect)


async def test_allowed_azp_other_party() -> None:
    expect = IDTokenExpectations(client_id=CLIENT_ID, allowed_azp=["android-app"])
    await make_validator().id_token(id_token(azp="android-app"), expect)


async def test_logout_token_with_only_sid_and_allow_missing_exp() -> None:
    token = logout_token(sub=DROP, exp=DROP)
    expect = LogoutTokenExpectations(client_id=CLIENT_ID, allow_missing_exp=True)
    claims = await make_validator().logout_token(token, expect)
    assert claims.sub is None
    assert claims["sid"] == "sid-1"
    assert claims.exp is None


async def test_provider_unavailable_propagates_unchanged() -> None:
    class Down:
        async def candidates(self, *, kid: str | None, alg: str) -> list[Any]:
            raise ProviderUnavailable("down", retry_after=5)

    validator = TokenValidator(issuer=ISSUER, keys=Down(), now=lambda: NOW)
    with pytest.raises(ProviderUnavailable) as info:
        await validator.access_token(access_token(), AT_EXPECT)
    assert info.value.retry_after == 5


# --- one failing token per claim rule --------------------------------------------------------

Case = tuple[Callable[[], str], str, str | None]

ID_FAILURES: dict[str, Case] = {
    "iss-missing": (lambda: id_token(iss=DROP), "missing_claim", "iss"),
    "sub-missing": (lambda: id_token(sub=DROP), "missing_claim", "sub"),
    "aud-missing": (lambda: id_token(aud=DROP), "missing_claim", "aud"),
    "exp-missing": (lambda: id_token(exp=DROP), "missing_claim", "exp"),
    "iat-missing": (lambda: id_token(iat=DROP), "missing_claim", "iat"),
    "nonce-missing": (lambda: id_token(nonce=DROP), "missing_claim", "nonce"),
    "sub-empty": (lambda: id_token(sub=""), "invalid_claim_type", "sub"),
    "sub-int": (lambda: id_token(sub=12), "invalid_claim_type", "sub"),
    "iss-list": (lambda: id_token(iss=[ISSUER]), "invalid_claim_type", "iss"),
    "amr-string": (lambda: id_token(amr="pwd"), "invalid_claim_type", "amr"),
    "iss-other": (lambda: id_token(iss="https://evil.example.com"), "invalid_issuer", "iss"),
    "aud-other": (lambda: id_token(aud="other-app"), "invalid_audience", "aud"),
    "aud-untrusted-extra": (
        lambda: id_token(aud=[CLIENT_ID, "other"], azp=CLIENT_ID),
        "invalid_audience",
        "aud",
    ),
    "azp-other": (lambda: id_token(azp="other-app"), "invalid_azp", "azp"),
    "expired": (lambda: id_token(exp=NOW - 61), "token_expired", "exp"),
    "nbf-future": (lambda: id_token(nbf=NOW + 61), "token_not_yet_valid", "nbf"),
    "iat-future": (lambda: id_token(iat=NOW + 61), "invalid_iat", "iat"),
    "nonce-other": (lambda: id_token(nonce="other"), "invalid_nonce", "nonce"),
    "typ-at+jwt": (
        lambda: mint(header(signers()["RS256"], "at+jwt"), id_claims(), signers()["RS256"]),
        "invalid_typ",
        "typ",
    ),
    "typ-int": (
        lambda: mint({**header(signers()["RS256"]), "typ": 1}, id_claims(), signers()["RS256"]),
        "invalid_typ",
        "typ",
    ),
}


@pytest.mark.parametrize(("make", "code", "claim"), ID_FAILURES.values(), ids=ID_FAILURES.keys())
async def test_id_token_rule_failures_oidc_3_1_3_7(
    make: Callable[[], str], code: str, claim: str | None
) -> None:
    await expect_error(make_validator().id_token(make(), ID_EXPECT), code, claim)


def _idx(**kwargs: Any) -> IDTokenExpectations:
    return IDTokenExpectations(client_id=CLIENT_ID, **kwargs)


ID_EXPECT_FAILURES: dict[str, tuple[Callable[[], str], IDTokenExpectations, str, str]] = {
    "max-age-no-auth-time": (lambda: id_token(), _idx(max_age=300), "missing_claim", "auth_time"),
    "require-auth-time": (
        lambda: id_token(),
        _idx(require_auth_time=True),
        "missing_claim",
        "auth_time",
    ),
    "auth-time-too-old": (
        lambda: id_token(auth_time=NOW - 361),
        _idx(max_age=300),
        "auth_time_too_old",
        "auth_time",
    ),
    "auth-time-future": (
        lambda: id_token(auth_time=NOW + 61),
        _idx(),
        "invalid_auth_time",
        "auth_time",
    ),
    "auth-time-string": (
        lambda: id_token(auth_time="1700000000"),
        _idx(max_age=300),
        "invalid_claim_type",
        "auth_time",
    ),
    "acr-missing": (lambda: id_token(), _idx(acr_values=["gold"]), "missing_claim", "acr"),
    "acr-other": (
        lambda: id_token(acr="silver"),
        _idx(acr_values=["gold"]),
        "invalid_acr",
        "acr",
    ),
    "at-hash-wrong": (
        lambda: id_token(at_hash=half_hash("RS256", "other")),
        _idx(access_token="tok"),
        "invalid_at_hash",
        "at_hash",
    ),
    "at-hash-non-ascii": (
        lambda: id_token(at_hash="é" * 22),
        _idx(access_token="tok"),
        "invalid_at_hash",
        "at_hash",
    ),
    "at-hash-required-missing": (
        lambda: id_token(),
        _idx(access_token="tok", require_at_hash=True),
        "missing_claim",
        "at_hash",
    ),
    "c-hash-wrong": (
        lambda: id_token(c_hash=half_hash("RS256", "other")),
        _idx(code="code"),
        "invalid_c_hash",
        "c_hash",
    ),
    "c-hash-required-missing": (
        lambda: id_token(),
        _idx(code="code", require_c_hash=True),
        "missing_claim",
        "c_hash",
    ),
    "multi-aud-without-azp": (
        lambda: id_token(aud=[CLIENT_ID, "api"]),
        _idx(trusted_audiences=["api"]),
        "invalid_azp",
        "azp",
    ),
}


@pytest.mark.parametrize(
    ("make", "expect", "code", "claim"),
    ID_EXPECT_FAILURES.values(),
    ids=ID_EXPECT_FAILURES.keys(),
)
async def test_id_token_expectation_failures(
    make: Callable[[], str], expect: IDTokenExpectations, code: str, claim: str
) -> None:
    await expect_error(make_validator().id_token(make(), expect), code, claim)


async def test_id_token_hash_claims_ignored_when_not_checked() -> None:
    """Code flow: at_hash is optional; without an access token to compare it is not judged."""
    await make_validator().id_token(id_token(at_hash="whatever"), _idx())


AT_FAILURES: dict[str, Case] = {
    "typ-missing": (lambda: access_token(typ=None), "invalid_typ", "typ"),
    "typ-jwt": (lambda: access_token(typ="JWT"), "invalid_typ", "typ"),
    "typ-logout": (lambda: access_token(typ="logout+jwt"), "invalid_typ", "typ"),
    "typ-at+jwt-suffix": (lambda: access_token(typ="at+jwtx"), "invalid_typ", "typ"),
    "sub-missing": (lambda: access_token(sub=DROP), "missing_claim", "sub"),
    "client-id-missing": (lambda: access_token(client_id=DROP), "missing_claim", "client_id"),
    "jti-missing": (lambda: access_token(jti=DROP), "missing_claim", "jti"),
    "iat-missing": (lambda: access_token(iat=DROP), "missing_claim", "iat"),
    "exp-missing": (lambda: access_token(exp=DROP), "missing_claim", "exp"),
    "aud-missing": (lambda: access_token(aud=DROP), "missing_claim", "aud"),
    "iss-missing": (lambda: access_token(iss=DROP), "missing_claim", "iss"),
    "scope-list": (lambda: access_token(scope=["read"]), "invalid_claim_type", "scope"),
    "client-id-int": (lambda: access_token(client_id=5), "invalid_claim_type", "client_id"),
    "aud-empty-list": (lambda: access_token(aud=[]), "invalid_claim_type", "aud"),
    "aud-empty-string": (lambda: access_token(aud=""), "invalid_claim_type", "aud"),
    "iss-other": (lambda: access_token(iss="https://idp.example.com/t2"), "invalid_issuer", "iss"),
    "aud-other": (lambda: access_token(aud="https://other.example.com"), "invalid_audience", "aud"),
    "expired": (lambda: access_token(exp=NOW - 60), "token_expired", "exp"),
    "nbf-future": (lambda: access_token(nbf=NOW + 60.5), "token_not_yet_valid", "nbf"),
    "iat-future": (lambda: access_token(iat=NOW + 60.5), "invalid_iat", "iat"),
    "exp-negative": (lambda: access_token(exp=-1), "invalid_claim_type", "exp"),
}


@pytest.mark.parametrize(("make", "code", "claim"), AT_FAILURES.values(), ids=AT_FAILURES.keys())
async def test_access_token_rule_failures_rfc9068_4(
    make: Callable[[], str], code: str, claim: str | None
) -> None:
    await expect_error(make_validator().access_token(make(), AT_EXPECT), code, claim)


@pytest.mark.parametrize("marker", ["nonce", "at_hash", "c_hash"])
async def test_untyped_access_token_with_id_token_markers_rfc8725_3_12(marker: str) -> None:
    expect = AccessTokenExpectations(audience=API, allow_untyped=True)
    token = access_token(typ="JWT", **{marker: "x"})
    await expect_error(make_validator().access_token(token, expect), "token_kind_mismatch", marker)


async def test_access_token_required_claims_relaxed_and_max_token_age() -> None:
    relaxed = AccessTokenExpectations(audience=API, required_claims=())
    await make_validator().access_token(access_token(jti=DROP, client_id=DROP, iat=DROP), relaxed)
    aged = AccessTokenExpectations(audience=API, required_claims=(), max_token_age=600)
    await expect_error(
        make_validator().access_token(access_token(iat=DROP), aged), "missing_claim", "iat"
    )
    await expect_error(
        make_validator().access_token(access_token(iat=NOW - 661), aged), "token_too_old", "iat"
    )
    await make_validator().access_token(access_token(iat=NOW - 659), aged)


async def test_access_token_any_of_several_audiences() -> None:
    expect = AccessTokenExpectations(audience=["urn:a", API])
    await make_validator().access_token(access_token(aud=["urn:x", API]), expect)


# RFC 9068 section 4 requires aud; allow_missing_audience is the loud switch for providers that
# omit it (Cognito), where the caller binds the token to the API by client_id instead.
NO_AUD = AccessTokenExpectations(audience=None, allow_missing_audience=True)
AUD_OPTIONAL = AccessTokenExpectations(audience=API, allow_missing_audience=True)


@pytest.mark.parametrize(
    ("expect", "claims"),
    [
        pytest.param(NO_AUD, {"aud": DROP}, id="no-audience-configured-aud-absent"),
        pytest.param(AUD_OPTIONAL, {"aud": DROP}, id="audience-configured-aud-absent"),
        pytest.param(AUD_OPTIONAL, {"aud": API}, id="audience-configured-aud-matches"),
    ],
)
async def test_allow_missing_audience_accepts_tokens_without_aud(
    expect: AccessTokenExpectations, claims: dict[str, Any]
) -> None:
    result = await make_validator().access_token(access_token(**claims), expect)
    assert result.sub == "user-1"
    assert result.aud == (() if claims["aud"] is DROP else (API,))


MISSING_AUD_FAILURES: dict[str, tuple[AccessTokenExpectations, dict[str, Any], str, str]] = {
    # A token naming an audience is meant for that audience: without one configured we cannot
    # tell it is ours, so it is rejected rather than silently accepted.
    "no-audience-configured-aud-present": (NO_AUD, {"aud": API}, "invalid_audience", "aud"),
    "audience-configured-aud-other": (
        AUD_OPTIONAL,
        {"aud": "https://other.example.com"},
        "invalid_audience",
        "aud",
    ),
    "aud-wrong-type-still-checked": (NO_AUD, {"aud": 5}, "invalid_claim_type", "aud"),
    "exp-still-required": (NO_AUD, {"aud": DROP, "exp": DROP}, "missing_claim", "exp"),
    "iss-still-checked": (
        NO_AUD,
        {"aud": DROP, "iss": "https://idp.example.com/t2"},
        "invalid_issuer",
        "iss",
    ),
    "required-claims-still-required": (
        NO_AUD,
        {"aud": DROP, "client_id": DROP},
        "missing_claim",
        "client_id",
    ),
}


@pytest.mark.parametrize(
    ("expect", "claims", "code", "claim"),
    MISSING_AUD_FAILURES.values(),
    ids=MISSING_AUD_FAILURES.keys(),
)
async def test_allow_missing_audience_relaxes_only_aud_presence_rfc9068_4(
    expect: AccessTokenExpectations, claims: dict[str, Any], code: str, claim: str
) -> None:
    await expect_error(make_validator().access_token(access_token(**claims), expect), code, claim)


def test_audience_none_without_the_switch_is_rejected_rfc9068_4() -> None:
    with pytest.raises(ConfigurationError) as info:
        AccessTokenExpectations(audience=None)
    assert info.value.code == "missing_audience"


async def test_claims_as_mapping_is_a_read_only_view_without_copy() -> None:
    claims = await make_validator().access_token(access_token(), AT_EXPECT)
    view = claims.as_mapping()
    assert isinstance(view, MappingProxyType)
    assert view is claims.as_mapping()
    assert dict(view) == dict(claims)
    with pytest.raises(TypeError):
        view["sub"] = "someone-else"  # type: ignore[index]


LOGOUT_FAILURES: dict[str, Case] = {
    "events-missing": (lambda: logout_token(events=DROP), "missing_claim", "events"),
    "events-list": (lambda: logout_token(events=[LOGOUT_EVENT]), "invalid_events", "events"),
    "events-other-member": (
        lambda: logout_token(events={"http://other": {}}),
        "invalid_events",
        "events",
    ),
    "events-member-not-object": (
        lambda: logout_token(events={LOGOUT_EVENT: "yes"}),
        "invalid_events",
        "events",
    ),
    "nonce-present": (lambda: logout_token(nonce="n"), "nonce_not_allowed", "nonce"),
    "no-sub-no-sid": (lambda: logout_token(sub=DROP, sid=DROP), "missing_sub_and_sid", "sub"),
    "jti-missing": (lambda: logout_token(jti=DROP), "missing_claim", "jti"),
    "iat-missing": (lambda: logout_token(iat=DROP), "missing_claim", "iat"),
    "exp-missing": (lambda: logout_token(exp=DROP), "missing_claim", "exp"),
    "expired": (lambda: logout_token(exp=NOW - 61), "token_expired", "exp"),
    "aud-other": (lambda: logout_token(aud="other"), "invalid_audience", "aud"),
    "iss-other": (lambda: logout_token(iss=ISSUER + "/"), "invalid_issuer", "iss"),
    "sid-empty": (lambda: logout_token(sid=""), "invalid_claim_type", "sid"),
    "typ-at+jwt": (lambda: logout_token(typ="at+jwt"), "invalid_typ", "typ"),
    "id-token-as-logout": (
        lambda: id_token(events={LOGOUT_EVENT: {}}, jti="j"),
        "nonce_not_allowed",
        "nonce",
    ),
}


@pytest.mark.parametrize(
    ("make", "code", "claim"), LOGOUT_FAILURES.values(), ids=LOGOUT_FAILURES.keys()
)
async def test_logout_token_rule_failures_backchannel_2_6(
    make: Callable[[], str], code: str, claim: str | None
) -> None:
    await expect_error(make_validator().logout_token(make(), LO_EXPECT), code, claim)


# --- leeway and the clock -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("offset", "ok"),
    [(-59.999, True), (-60, False), (-61, False), (0, True), (1000, True)],
    ids=["just-inside", "exactly-leeway", "past-leeway", "exp-now", "future"],
)
async def test_exp_leeway_edges(offset: float, ok: bool) -> None:
    token = access_token(exp=NOW + offset)
    validate = make_validator().access_token(token, AT_EXPECT)
    if ok:
        await validate
    else:
        await expect_error(validate, "token_expired", "exp")


@pytest.mark.parametrize(
    ("offset", "ok"), [(60, True), (60.001, False)], ids=["at-leeway", "past-leeway"]
)
async def test_nbf_and_iat_leeway_edges(offset: float, ok: bool) -> None:
    for claim, code in (("nbf", "token_not_yet_valid"), ("iat", "invalid_iat")):
        overrides: dict[str, Any] = {claim: NOW + offset}
        validate = make_validator().access_token(access_token(**overrides), AT_EXPECT)
        if ok:
            await validate
        else:
            await expect_error(validate, code, claim)


async def test_leeway_zero_and_custom() -> None:
    strict = make_validator(leeway=0)
    await expect_error(strict.access_token(access_token(exp=NOW), AT_EXPECT), "token_expired")
    await strict.access_token(access_token(exp=NOW + 0.5), AT_EXPECT)
    loose = make_validator(leeway=600)
    await loose.access_token(access_token(exp=NOW - 599), AT_EXPECT)


async def test_injected_clock_is_read_per_call() -> None:
    clock = [NOW]
    validator = TokenValidator(issuer=ISSUER, keys=StaticKeys(issuer_jwks()), now=lambda: clock[0])
    token = access_token(exp=NOW + 100)
    await validator.access_token(token, AT_EXPECT)
    clock[0] = NOW + 161
    await expect_error(validator.access_token(token, AT_EXPECT), "token_expired", "exp")


async def test_max_age_leeway_edge() -> None:
    expect = _idx(max_age=300)
    await make_validator().id_token(id_token(auth_time=NOW - 360), expect)
    await expect_error(
        make_validator().id_token(id_token(auth_time=NOW - 360.5), expect), "auth_time_too_old"
    )


# --- configuration is checked at construction ----------------------------------------------

CONFIG_ERRORS: dict[str, Callable[[], object]] = {
    "empty-issuer": lambda: TokenValidator(issuer="", keys=StaticKeys({"keys": []})),
    "none-alg": lambda: make_validator(algorithms=("RS256", "none")),
    "hs256": lambda: make_validator(algorithms=("HS256",)),
    "unknown-alg": lambda: make_validator(algorithms=("RS257",)),
    "alg-as-string": lambda: make_validator(algorithms="RS256"),  # type: ignore[arg-type]
    "no-algs": lambda: make_validator(algorithms=()),
    "negative-leeway": lambda: make_validator(leeway=-1),
    "nan-leeway": lambda: make_validator(leeway=float("nan")),
    "tiny-size-cap": lambda: make_validator(max_token_bytes=10),
    "keys-not-a-source": lambda: TokenValidator(issuer=ISSUER, keys=object()),  # type: ignore[arg-type]
    "id-empty-client": lambda: IDTokenExpectations(client_id=""),
    "id-negative-max-age": lambda: IDTokenExpectations(client_id="a", max_age=-1),
    "id-acr-string": lambda: IDTokenExpectations(client_id="a", acr_values="gold"),
    "id-acr-empty": lambda: IDTokenExpectations(client_id="a", acr_values=[]),
    "id-at-hash-without-token": lambda: IDTokenExpectations(client_id="a", require_at_hash=True),
    "id-hs-alg": lambda: IDTokenExpectations(client_id="a", algorithms=["HS512"]),
    "at-empty-audience": lambda: AccessTokenExpectations(audience=""),
    "at-no-audience": lambda: AccessTokenExpectations(audience=[]),
    "at-missing-audience-switch-not-bool": lambda: AccessTokenExpectations(
        audience=API,
        allow_missing_audience="yes",  # type: ignore[arg-type]
    ),
    "at-negative-age": lambda: AccessTokenExpectations(audience=API, max_token_age=-5),
    "logout-empty-client": lambda: LogoutTokenExpectations(client_id=""),
}


@pytest.mark.parametrize("build", CONFIG_ERRORS.values(), ids=CONFIG_ERRORS.keys())
def test_configuration_errors_at_construction(build: Callable[[], object]) -> None:
    with pytest.raises(ConfigurationError):
        build()


async def test_per_kind_algorithm_allow_list() -> None:
    expect = AccessTokenExpectations(audience=API, algorithms=["ES256"])
    validator = make_validator()
    await validator.access_token(access_token("ES256"), expect)
    await expect_error(validator.access_token(access_token("RS256"), expect), "alg_not_allowed")


# Each token kind signed with ES384, validated with the given expectation algorithms.
Narrowed = Callable[[TokenValidator, list[str]], Any]
NARROWING: dict[str, Narrowed] = {
    "id-token": (
        lambda v, algs: v.id_token(
            id_token("ES384"), IDTokenExpectations(client_id=CLIENT_ID, algorithms=algs)
        )
    ),
    "access-token": (
        lambda v, algs: v.access_token(
            access_token("ES384"), AccessTokenExpectations(audience=API, algorithms=algs)
        )
    ),
    "logout-token": (
        lambda v, algs: v.logout_token(
            logout_token("ES384"), LogoutTokenExpectations(client_id=CLIENT_ID, algorithms=algs)
        )
    ),
}


@pytest.mark.parametrize("validate", NARROWING.values(), ids=NARROWING.keys())
async def test_expectation_algorithms_narrow_never_widen_rfc8725_s3_1(
    validate: Narrowed,
) -> None:
    # ES384 is not on the validator's (default) allow-list: naming it per call cannot enable it.
    validator = make_validator()
    err = await expect_error(validate(validator, ["ES384", "ES256"]), "alg_not_allowed", "alg")
    assert err.expected == ["ES256"]
    assert err.actual == "ES384"


@pytest.mark.parametrize("validate", NARROWING.values(), ids=NARROWING.keys())
async def test_expectation_algorithms_outside_allow_list_is_configuration_error(
    validate: Narrowed,
) -> None:
    with pytest.raises(ConfigurationError) as info:
        await validate(make_validator(), ["ES384"])
    assert info.value.code == "invalid_algorithms"
    # Allowed on the validator too: the expectation then narrows to exactly that alg.
    await validate(make_validator(algorithms=("RS256", "ES384")), ["ES384"])


async def test_errors_never_contain_the_token() -> None:
    keys = CountingKeys(StaticKeys(issuer_jwks()))
    validator = TokenValidator(issuer=ISSUER, keys=keys, now=lambda: NOW + 10_000)
    token = access_token()
    err = await expect_error(validator.access_token(token, AT_EXPECT), "token_expired")
    for part in token.split("."):
        assert part not in str(err)
        assert part not in repr(err)


@pytest.mark.parametrize("token", [None, b"a.b.c", 12, ["a", "b", "c"]], ids=repr)
async def test_non_string_token_is_malformed(token: Any) -> None:
    await expect_error(make_validator().access_token(token, AT_EXPECT), "malformed_token")
