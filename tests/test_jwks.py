"""JWKS parsing: hostile or broken key sets never raise anything but ``ValueError``."""

from __future__ import annotations

from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import given, settings
from hypothesis import strategies as st

from oidc_asgi._jwks import parse_jwks


def _ec_jwk() -> dict[str, Any]:
    import base64

    numbers = ec.generate_private_key(ec.SECP256R1()).public_key().public_numbers()

    def b64(n: int) -> str:
        return base64.urlsafe_b64encode(n.to_bytes(32, "big")).rstrip(b"=").decode()

    return {"kty": "EC", "crv": "P-256", "x": b64(numbers.x), "y": b64(numbers.y), "kid": "e1"}


GOOD = _ec_jwk()


@pytest.mark.parametrize(
    ("case", "change"),
    [
        ("alg-list", {"alg": []}),
        ("alg-object", {"alg": {}}),
        ("alg-number", {"alg": 256}),
        ("kid-number", {"kid": 1}),
        ("kid-list", {"kid": ["e1"]}),
        ("use-list", {"use": ["sig"]}),
        ("key-ops-string", {"key_ops": "verify"}),
        ("crv-list", {"crv": ["P-256"]}),
        ("kty-list", {"kty": ["EC"]}),
        ("x-number", {"x": 12}),
        ("y-missing", {"y": None}),
        ("private-d", {"d": "AAAA"}),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_hostile_members_drop_the_key_rfc7517_4(case: str, change: dict[str, Any]) -> None:
    jwk = {**GOOD, **change}
    if change.get("y", "") is None:
        del jwk["y"]
    assert parse_jwks({"keys": [jwk, GOOD]}) == parse_jwks({"keys": [GOOD]})


@pytest.mark.parametrize("document", [None, [], {"keys": {}}, {"keys": "x"}, {"nokeys": []}, 1])
def test_not_a_jwk_set_is_value_error(document: Any) -> None:
    with pytest.raises(ValueError, match="not a JWK Set"):
        parse_jwks(document)


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=12,
)


_MEMBERS = ("kty", "crv", "x", "y", "n", "e", "alg", "kid", "use", "key_ops")


@settings(max_examples=300, deadline=None, database=None)
@given(
    keys=st.lists(
        st.fixed_dictionaries(
            {},
            optional=dict.fromkeys(
                ("kty", "crv", "x", "y", "n", "e", "alg", "kid", "use", "key_ops"), _json
            ),
        ),
        max_size=4,
    )
)
def test_random_key_sets_never_raise(keys: list[dict[str, Any]]) -> None:
    parse_jwks({"keys": keys})  # unusable keys are dropped, nothing escapes
