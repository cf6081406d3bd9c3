"""Token minting helpers: valid tokens verify, each bad token fails exactly one check."""

from __future__ import annotations

import warnings
from typing import Any

import pytest
from joserfc import jwt
from joserfc.errors import JoseError, SecurityWarning
from joserfc.jwk import KeySet

from oidc_asgi.testing import BadTokens, DevProvider, TokenFactory, mint_access_token

from ._support import API1, API2, OPAQUE_API

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
