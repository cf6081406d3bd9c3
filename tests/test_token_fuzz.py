"""Property: whatever string arrives, every validator answers with a library error or claims.

Random text, random bytes read as text, valid tokens with characters flipped, inserted or
deleted in one segment, and tokens whose header or claims were changed as JSON and then signed
again with the issuer's key (so the claim checks run, not just the signature check). Only
``OIDCError`` subclasses may come out; any other exception is a bug.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from _jwt import (
    API,
    CLIENT_ID,
    ISSUER,
    NOW,
    at_claims,
    b64,
    half_hash,
    header,
    id_claims,
    issuer_jwks,
    logout_claims,
    mint,
    signers,
)
from oidc_asgi._jwks import StaticKeys
from oidc_asgi.errors import OIDCError
from oidc_asgi.tokens import (
    AccessTokenExpectations,
    IDTokenExpectations,
    LogoutTokenExpectations,
    TokenValidator,
)

KINDS = ("id", "access", "logout")
SIGNERS = ("RS256", "ES256", "EdDSA")
CLAIM_NAMES = (
    "iss", "sub", "aud", "exp", "nbf", "iat", "jti", "nonce", "azp", "auth_time", "acr", "amr",
    "at_hash", "c_hash", "client_id", "scope", "sid", "events", "cnf",
)  # fmt: skip
HEADER_NAMES = (
    "alg", "kid", "typ", "crit", "b64", "zip", "enc", "jku", "jwk", "x5u", "x5c", "cty",
)  # fmt: skip

JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=8,
)


def validator() -> TokenValidator:
    return TokenValidator(
        issuer=ISSUER,
        keys=StaticKeys(issuer_jwks(("RS256", "PS256", "ES256", "EdDSA"))),
        now=lambda: NOW,
    )


VALIDATOR = validator()


def valid_parts(kind: str, name: str) -> tuple[dict[str, Any], dict[str, Any]]:
    signer = signers()[name]
    if kind == "id":
        return header(signer, "JWT"), id_claims(
            auth_time=NOW - 100, at_hash=half_hash(signer.alg, "at")
        )
    if kind == "access":
        return header(signer, "at+jwt"), at_claims()
    return header(signer, "logout+jwt"), logout_claims()


async def validate(kind: str, token: str) -> None:
    if kind == "id":
        await VALIDATOR.id_token(
            token,
            IDTokenExpectations(
                client_id=CLIENT_ID, nonce="n-0S6_WzA2Mj", max_age=600, access_token="at"
            ),
        )
    elif kind == "access":
        await VALIDATOR.access_token(token, AccessTokenExpectations(audience=API))
    else:
        await VALIDATOR.logout_token(token, LogoutTokenExpectations(client_id=CLIENT_ID))


def check(kind: str, token: str) -> None:
    with contextlib.suppress(OIDCError):
        asyncio.run(validate(kind, token))


@st.composite
def char_mutations(draw: st.DrawFn, kind: str) -> str:
    name = draw(st.sampled_from(SIGNERS))
    hdr, claims = valid_parts(kind, name)
    token = mint(hdr, claims, signers()[name])
    segments = token.split(".")
    index = draw(st.integers(0, 2))
    segment = segments[index]
    op = draw(st.sampled_from(("flip", "insert", "delete", "truncate")))
    pos = draw(st.integers(0, max(len(segment) - 1, 0)))
    char = draw(st.characters(codec="utf-8") | st.sampled_from("AZaz09-_.=+/ "))
    if op == "flip" and segment:
        segment = segment[:pos] + char + segment[pos + 1 :]
    elif op == "insert":
        segment = segment[:pos] + char + segment[pos:]
    elif op == "delete" and segment:
        segment = segment[:pos] + segment[pos + 1 :]
    else:
        segment = segment[:pos]
    segments[index] = segment
    return ".".join(segments)


@st.composite
def json_mutations(draw: st.DrawFn, kind: str) -> str:
    name = draw(st.sampled_from(SIGNERS))
    hdr, claims = valid_parts(kind, name)
    target = draw(st.sampled_from(("header", "claims")))
    doc = hdr if target == "header" else claims
    names = HEADER_NAMES if target == "header" else CLAIM_NAMES
    for _ in range(draw(st.integers(1, 3))):
        key = draw(st.sampled_from(names) | st.text(max_size=6))
        if draw(st.booleans()) and key in doc:
            del doc[key]
        else:
            doc[key] = draw(JSON)
    if draw(st.booleans()):
        # Re-signed: gets through the signature to the claim checks.
        return mint(hdr, claims, signers()[name])
    raw = json.dumps(doc).encode()
    other = json.dumps(claims if target == "header" else hdr).encode()
    parts = (raw, other) if target == "header" else (other, raw)
    return f"{b64(parts[0])}.{b64(parts[1])}.{b64(b'sig')}"


def tokens(kind: str) -> st.SearchStrategy[str]:
    return st.one_of(
        st.text(max_size=300),
        st.binary(max_size=300).map(lambda b: b.decode("latin-1")),
        st.lists(st.text(alphabet="AZaz09-_=", max_size=60), min_size=1, max_size=6).map(".".join),
        char_mutations(kind),
        json_mutations(kind),
    )


FUZZ = settings(
    max_examples=300,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)


@pytest.mark.parametrize("kind", KINDS)
def test_only_library_errors_come_out(kind: str) -> None:
    @FUZZ
    @given(token=tokens(kind))
    def run(token: str) -> None:
        check(kind, token)

    run()


@pytest.mark.parametrize("kind", KINDS)
def test_unmutated_tokens_pass(kind: str) -> None:
    """The fuzzed starting points are valid, so mutations start from accepted tokens."""
    for name in SIGNERS:
        hdr, claims = valid_parts(kind, name)
        asyncio.run(validate(kind, mint(hdr, claims, signers()[name])))
