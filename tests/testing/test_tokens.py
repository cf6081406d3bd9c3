"""Token minting helpers: valid tokens verify, each bad token fails exactly one check."""

from __future__ import annotations

import warnings
from typing import Any

import httpx
import pytest
from joserfc import jwt
from joserfc.errors import JoseError, SecurityWarning
from joserfc.jwk import KeySet

from oidc_asgi._jwks import StaticKeys
from oidc_asgi.errors import TokenError
from oidc_asgi.testing import (
    BadIDTokens,
    BadIDTokenServed,
    BadTokens,
    DevProvider,
    TokenFactory,
    mint_access_token,
    serve_bad_id_token,
)
from oidc_asgi.testing._keys import hs256, split_jws
from oidc_asgi.tokens import IDTokenExpectations, TokenValidator

from ._support import API1, API2, OPAQUE_API, code_flow

REQUIRED = ("iss", "sub", "aud", "exp", "iat", "jti", "client_id")
CASES = [
    "wrong-issuer", "wrong-audience", "expired", "not-yet-valid", "unknown-kid",
    "hs256-with-public-key", "alg-none", "bad-signature", "wrong-typ",
    "missing-iss", "missing-sub", "missing-aud", "missing-exp", "missing-iat",
]  # fmt: skip


def validate(provider: DevProvider, token: str, audience: str = API1) -> dict[str, Any]:
    """An RFC 9068 validator built on joserfc alone, as a resource server would write it."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SecurityWarning)
        keys = KeySet.import_key_set(provider.jwks())  # type: ignore[arg-type]
        decoded = jwt.decode(token, keys, algorithms=["RS256", "ES256", "EdDSA"])
    if decoded.header.get("typ") != "at+jwt":
        raise ValueError("typ")
    claims = dict(decoded.claims)
    missing = [c for c in REQUIRED if c not in claims]
    if missing:
        raise ValueError(f"missing {missing}")
    now = provider.now()
    if claims["iss"] != provider.issuer or claims["aud"] != audience:
        raise ValueError("iss/aud")
    if claims["exp"] <= now - 60 or claims.get("nbf", 0) > now + 60 or claims["iat"] > now + 60:
        raise ValueError("time")
    return claims


def test_minted_token_is_valid(provider: DevProvider) -> None:
    token = provider.mint_access_token(
        sub="bob", audience=API1, scopes=["read:messages"], claims={"tenant": "t1"}, lifetime=60
    )
    claims = validate(provider, token)
    assert claims["sub"] == "bob"
    assert claims["tenant"] == "t1"
    assert claims["exp"] - claims["iat"] == 60
    assert provider.active_token(token) is not None  # introspection knows it


def test_claims_none_removes_a_claim(provider: DevProvider) -> None:
    token = mint_access_token(provider, audience=API2, claims={"client_id": None})
    assert "client_id" not in provider.unverified_claims(token)


def test_bad_token_catalogue_is_complete(provider: DevProvider) -> None:
    assert list(BadTokens(provider).as_dict()) == CASES


@pytest.mark.parametrize("case", CASES)
def test_each_bad_token_is_rejected(provider: DevProvider, case: str) -> None:
    bad = BadTokens(provider, audience=API1, scopes=["read:messages"])
    validate(provider, bad.valid())  # the reference passes
    with pytest.raises((JoseError, ValueError)):
        validate(provider, bad.as_dict()[case])


def test_alg_none_and_hs256_headers(provider: DevProvider) -> None:
    from oidc_asgi.testing._keys import split_jws

    bad = BadTokens(provider)
    header, _, _, signature = split_jws(bad.alg_none())
    assert header["alg"] == "none"
    assert signature == b""
    header, _, _, _ = split_jws(bad.hs256_with_public_key())
    assert header["alg"] == "HS256"
    assert header["kid"] == provider.signing_key().kid


def test_token_factory_defaults(provider: DevProvider) -> None:
    make = TokenFactory(provider, audience=API2, sub="bob")
    claims = validate(provider, make(scopes=["read:summary"]), audience=API2)
    assert claims["sub"] == "bob"
    assert claims["scope"] == "read:summary"
    with pytest.raises((JoseError, ValueError)):
        validate(provider, make.bad().expired(), audience=API2)


def test_default_audience_is_first_jwt_api(provider: DevProvider) -> None:
    assert TokenFactory(provider).audience == API1
    assert provider.config.api(OPAQUE_API) is not None


def test_mint_id_token(provider: DevProvider) -> None:
    token = provider.mint_id_token(sub="alice", client_id="spa", nonce="n", claims={"acr": "x"})
    claims = provider.verify_jwt(token)
    assert claims["aud"] == "spa"
    assert claims["nonce"] == "n"
    assert claims["acr"] == "x"


# --------------------------------------------------------------------------- bad ID tokens

ACCESS_TOKEN = "at-0123456789"
CODE = "code-0123456789"
# OIDF RP conformance case -> (error code, claim) from this library's ID-token validator.
ID_CASES = {
    "invalid-iss": ("invalid_issuer", "iss"),
    "missing-sub": ("missing_claim", "sub"),
    "invalid-aud": ("invalid_audience", "aud"),
    "missing-aud": ("missing_claim", "aud"),
    "missing-iat": ("missing_claim", "iat"),
    "nonce-invalid": ("invalid_nonce", "nonce"),
    "invalid-sig-rs256": ("invalid_signature", "alg"),
    "invalid-sig-es256": ("invalid_signature", "alg"),
    "invalid-sig-hs256": ("alg_not_allowed", "alg"),
    "idtoken-sig-none": ("alg_not_allowed", "alg"),
    "expired": ("token_expired", "exp"),
    "invalid-athash": ("invalid_at_hash", "at_hash"),
    "invalid-chash": ("invalid_c_hash", "c_hash"),
}


def id_validator(provider: DevProvider) -> TokenValidator:
    return TokenValidator(
        issuer=provider.issuer, keys=StaticKeys(provider.jwks()), now=provider.now
    )


EXPECT = IDTokenExpectations(client_id="webapp", nonce="n-1", access_token=ACCESS_TOKEN, code=CODE)


def bad_id_tokens(provider: DevProvider) -> BadIDTokens:
    return BadIDTokens(
        provider, client_id="webapp", nonce="n-1", access_token=ACCESS_TOKEN, code=CODE
    )


def waiting(handle: BadIDTokenServed) -> bool:
    return handle.pending  # a call, so mypy does not pin the property across awaits


def test_bad_id_token_catalogue_is_complete(provider: DevProvider) -> None:
    assert list(BadIDTokens.REJECT) == list(ID_CASES)
    assert BadIDTokens.CASES == BadIDTokens.REJECT + BadIDTokens.ACCEPTABLE
    assert list(bad_id_tokens(provider).as_dict()) == list(BadIDTokens.CASES)
    with pytest.raises(ValueError, match="unknown"):
        bad_id_tokens(provider).make("invalid-everything")


@pytest.mark.parametrize("case", list(ID_CASES))
async def test_oidc_core_3_1_3_7_each_bad_id_token_is_rejected(
    provider: DevProvider, case: str
) -> None:
    bad = bad_id_tokens(provider)
    validator = id_validator(provider)
    claims = await validator.id_token(bad.valid(), EXPECT)  # the reference passes
    assert claims["nonce"] == "n-1"
    with pytest.raises(TokenError) as caught:
        await validator.id_token(bad.make(case), EXPECT)
    code, claim = ID_CASES[case]
    assert caught.value.code == code
    assert caught.value.claim == claim


async def test_kid_absent_single_jwks_is_accepted(provider: DevProvider) -> None:
    token = bad_id_tokens(provider).make("kid-absent-single-jwks")
    header, _, _, _ = split_jws(token)
    assert header == {"alg": "RS256", "typ": "JWT"}
    rsa = [k for k in provider.jwks()["keys"] if k["kty"] == "RSA"]
    assert len(rsa) == 1
    assert (await id_validator(provider).id_token(token, EXPECT))["sub"] == "alice"


async def test_kid_absent_multiple_jwks_is_signed_by_a_later_key(provider: DevProvider) -> None:
    token = bad_id_tokens(provider).make("kid-absent-multiple-jwks")
    assert "kid" not in split_jws(token)[0]
    rsa = [k for k in provider.jwks()["keys"] if k["kty"] == "RSA"]
    assert len(rsa) == 2  # rotated once to publish a second RSA key
    first_only = StaticKeys({"keys": rsa[:1]})
    with pytest.raises(TokenError):  # the first candidate is not the signer
        await TokenValidator(issuer=provider.issuer, keys=first_only, now=provider.now).id_token(
            token, EXPECT
        )
    # A validator that tries every candidate accepts it.
    assert (await id_validator(provider).id_token(token, EXPECT))["sub"] == "alice"
    bad_id_tokens(provider).make("kid-absent-multiple-jwks")
    assert len([k for k in provider.jwks()["keys"] if k["kty"] == "RSA"]) == 2  # no re-rotation


def test_invalid_sig_hs256_is_keyed_with_the_client_secret(provider: DevProvider) -> None:
    # OIDC Core 10.1: HS256 ID tokens use the client secret; the suite breaks the MAC.
    token = bad_id_tokens(provider).make("invalid-sig-hs256")
    header, _, signing_input, signature = split_jws(token)
    assert header["alg"] == "HS256"
    right = hs256(b"webapp-secret")(signing_input)
    assert signature != right
    assert bytes([signature[0] ^ 1]) + signature[1:] == right
    other = BadIDTokens(provider, client_id="webapp", client_secret="s3")
    _, _, signing_input, signature = split_jws(other.invalid_sig_hs256())
    assert bytes([signature[0] ^ 1]) + signature[1:] == hs256(b"s3")(signing_input)


def test_sig_none_and_invalid_sig_headers(provider: DevProvider) -> None:
    bad = bad_id_tokens(provider)
    header, _, _, signature = split_jws(bad.make("idtoken-sig-none"))
    assert header["alg"] == "none"
    assert signature == b""
    header, _, _, _ = split_jws(bad.make("invalid-sig-es256"))
    assert (header["alg"], header["kid"]) == ("ES256", provider.signing_key("ES256").kid)


def test_from_id_token_keeps_the_genuine_claims_and_alg(provider: DevProvider) -> None:
    genuine = provider.mint_id_token(
        client_id="spa", nonce="n-9", claims={"sid": "s-1"}, alg="ES256"
    )
    bad = BadIDTokens.from_id_token(provider, genuine)
    claims = provider.unverified_claims(bad.make("invalid-iss"))
    assert (claims["aud"], claims["nonce"], claims["sid"]) == ("spa", "n-9", "s-1")
    assert claims["iss"] == "https://evil.example"
    assert split_jws(bad.make("nonce-invalid"))[0]["alg"] == "ES256"
    assert bad.client_secret == "client-secret"  # spa is public: a placeholder key


async def test_serve_bad_id_token_at_the_next_code_redemption(
    provider: DevProvider, http: httpx.AsyncClient
) -> None:
    served = serve_bad_id_token(provider, "nonce-invalid", client_id="webapp")
    assert waiting(served)
    spa = await code_flow(http, client_id="spa")  # another client: untouched
    assert provider.unverified_claims(spa["id_token"])["nonce"] == "n-1"
    assert waiting(served)
    body = await code_flow(http, client_id="webapp")
    assert not waiting(served)
    assert body["id_token"] == served.served
    assert served.genuine is not None
    bad = provider.unverified_claims(body["id_token"])
    genuine = provider.unverified_claims(served.genuine)
    assert bad["nonce"] != "n-1"
    assert {k: v for k, v in bad.items() if k != "nonce"} == {
        k: v for k, v in genuine.items() if k != "nonce"
    }  # only the nonce differs: sid, at_hash, auth_time are this login's
    assert genuine["at_hash"]
    assert "issue_id_token" not in vars(provider)  # once only
    again = await code_flow(http, client_id="webapp")
    assert provider.verify_jwt(again["id_token"])["nonce"] == "n-1"


async def test_serve_bad_id_token_queue_and_custom_case(
    provider: DevProvider, http: httpx.AsyncClient
) -> None:
    first = serve_bad_id_token(provider, "invalid-iss")
    second = serve_bad_id_token(provider, lambda bad: bad.with_claims(azp="someone-else"))
    one = await code_flow(http, client_id="spa")
    two = await code_flow(http, client_id="webapp")
    assert provider.unverified_claims(one["id_token"])["iss"] == "https://evil.example"
    assert provider.unverified_claims(two["id_token"])["azp"] == "someone-else"
    assert not waiting(first)
    assert not waiting(second)
    with pytest.raises(ValueError, match="unknown"):
        serve_bad_id_token(provider, "no-such-case")
