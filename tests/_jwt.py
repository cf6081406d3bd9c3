"""Hand-made JWS tokens for the token tests: full control over every byte, malformed ones too.

Tokens are built from header and payload objects (or raw bytes/strings) and signed with
``cryptography`` private keys directly, never with a JOSE library, so the tests do not share
code or assumptions with what they test.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeAlias

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from oidc_asgi._jwks import VerificationKey

PrivateKey: TypeAlias = (
    rsa.RSAPrivateKey
    | ec.EllipticCurvePrivateKey
    | ed25519.Ed25519PrivateKey
    | ed448.Ed448PrivateKey
)

ISSUER = "https://idp.example.com/t1"
CLIENT_ID = "app"
API = "https://api.example.com"
NOW = 1_700_000_000.0
LOGOUT_EVENT = "http://schemas.openid.net/event/backchannel-logout"

_SHA = {"256": hashes.SHA256(), "384": hashes.SHA384(), "512": hashes.SHA512()}
_EC_SIZE = {"ES256": 32, "ES384": 48, "ES512": 66}


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def compact_json(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode("utf-8")


def _uint(value: int, size: int | None = None) -> str:
    length = size if size is not None else max(1, (value.bit_length() + 7) // 8)
    return b64(value.to_bytes(length, "big"))


@dataclass(frozen=True)
class Signer:
    """One private key with the ``kid`` and ``alg`` it signs as."""

    kid: str
    alg: str
    private_key: PrivateKey

    def public_jwk(self, *, with_alg: bool = True, kid: str | None = None) -> dict[str, Any]:
        jwk = public_jwk(self.private_key)
        jwk["kid"] = kid if kid is not None else self.kid
        if with_alg:
            jwk["alg"] = self.alg
        return jwk

    def sign(self, signing_input: bytes, alg: str | None = None) -> bytes:
        return sign(alg or self.alg, self.private_key, signing_input)


def public_jwk(private_key: PrivateKey) -> dict[str, Any]:
    if isinstance(private_key, rsa.RSAPrivateKey):
        numbers = private_key.public_key().public_numbers()
        return {"kty": "RSA", "n": _uint(numbers.n), "e": _uint(numbers.e), "use": "sig"}
    if isinstance(private_key, ec.EllipticCurvePrivateKey):
        pub = private_key.public_key().public_numbers()
        crv, size = {
            "secp256r1": ("P-256", 32),
            "secp384r1": ("P-384", 48),
            "secp521r1": ("P-521", 66),
        }[private_key.curve.name]
        return {"kty": "EC", "crv": crv, "x": _uint(pub.x, size), "y": _uint(pub.y, size)}
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    raw = private_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    crv = "Ed25519" if isinstance(private_key, ed25519.Ed25519PrivateKey) else "Ed448"
    return {"kty": "OKP", "crv": crv, "x": b64(raw)}


def sign(alg: str, private_key: PrivateKey, signing_input: bytes) -> bytes:
    if alg.startswith(("RS", "PS")):
        assert isinstance(private_key, rsa.RSAPrivateKey)
        sha = _SHA[alg[2:]]
        pad: padding.AsymmetricPadding = (
            padding.PKCS1v15()
            if alg.startswith("RS")
            else padding.PSS(mgf=padding.MGF1(sha), salt_length=sha.digest_size)
        )
        return private_key.sign(signing_input, pad, sha)
    if alg.startswith("ES"):
        assert isinstance(private_key, ec.EllipticCurvePrivateKey)
        der = private_key.sign(signing_input, ec.ECDSA(_SHA[alg[2:]]))
        r, s = decode_dss_signature(der)
        size = _EC_SIZE[alg]
        return r.to_bytes(size, "big") + s.to_bytes(size, "big")
    assert isinstance(private_key, (ed25519.Ed25519PrivateKey, ed448.Ed448PrivateKey))
    return private_key.sign(signing_input)


def mint(
    header: Mapping[str, Any] | bytes,
    payload: Mapping[str, Any] | bytes,
    signer: Signer | None,
    *,
    alg: str | None = None,
    signature: bytes | None = None,
) -> str:
    """Build a compact JWS; ``signature`` overrides the real one (for forged signatures)."""
    header_b64 = b64(header if isinstance(header, bytes) else compact_json(header))
    payload_b64 = b64(payload if isinstance(payload, bytes) else compact_json(payload))
    signing_input = f"{header_b64}.{payload_b64}".encode("ascii")
    if signature is None:
        assert signer is not None
        signature = signer.sign(signing_input, alg)
    return f"{header_b64}.{payload_b64}.{b64(signature)}"


@functools.cache
def signers() -> dict[str, Signer]:
    """One key per algorithm family, generated once per test process."""
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return {
        "RS256": Signer("rsa-1", "RS256", rsa_key),
        "PS256": Signer("rsa-pss-1", "PS256", rsa.generate_private_key(65537, 2048)),
        "ES256": Signer("ec-1", "ES256", ec.generate_private_key(ec.SECP256R1())),
        "ES384": Signer("ec-384", "ES384", ec.generate_private_key(ec.SECP384R1())),
        "ES512": Signer("ec-521", "ES512", ec.generate_private_key(ec.SECP521R1())),
        "EdDSA": Signer("ed-1", "EdDSA", ed25519.Ed25519PrivateKey.generate()),
        "Ed448": Signer("ed448-1", "EdDSA", ed448.Ed448PrivateKey.generate()),
        # Not in the issuer's JWKS: the attacker's key.
        "attacker": Signer("rsa-1", "RS256", rsa.generate_private_key(65537, 2048)),
    }


def issuer_jwks(names: Sequence[str] = ("RS256", "PS256", "ES256", "EdDSA")) -> dict[str, Any]:
    return {"keys": [signers()[n].public_jwk() for n in names]}


def half_hash(alg: str, value: str, *, crv: str = "Ed25519") -> str:
    """Reference at_hash / c_hash (OIDC Core 3.1.3.6), written independently of the library."""
    data = value.encode("ascii")
    if alg.startswith(("RS", "PS", "ES")):
        digest = hashlib.new("sha" + alg[2:], data).digest()
    elif crv == "Ed448":
        digest = hashlib.shake_256(data).digest(114)
    else:
        digest = hashlib.sha512(data).digest()
    return b64(digest[: len(digest) // 2])


def id_claims(**overrides: Any) -> dict[str, Any]:
    claims: dict[str, Any] = {
        "iss": ISSUER,
        "sub": "user-1",
        "aud": CLIENT_ID,
        "exp": NOW + 300,
        "iat": NOW - 10,
        "nonce": "n-0S6_WzA2Mj",
    }
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not _DROP}


def at_claims(**overrides: Any) -> dict[str, Any]:
    claims: dict[str, Any] = {
        "iss": ISSUER,
        "sub": "user-1",
        "aud": API,
        "exp": NOW + 300,
        "iat": NOW - 10,
        "jti": "at-1",
        "client_id": CLIENT_ID,
        "scope": "read write",
    }
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not _DROP}


def logout_claims(**overrides: Any) -> dict[str, Any]:
    claims: dict[str, Any] = {
        "iss": ISSUER,
        "sub": "user-1",
        "sid": "sid-1",
        "aud": CLIENT_ID,
        "iat": NOW - 5,
        "exp": NOW + 120,
        "jti": "lo-1",
        "events": {LOGOUT_EVENT: {}},
    }
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not _DROP}


class _Drop:
    def __repr__(self) -> str:
        return "DROP"


_DROP: Any = _Drop()
DROP: Any = _DROP  # pass as a claim value to remove the claim


def header(signer: Signer, typ: str | None = None, **extra: Any) -> dict[str, Any]:
    result: dict[str, Any] = {"alg": signer.alg, "kid": signer.kid}
    if typ is not None:
        result["typ"] = typ
    result.update(extra)
    return {k: v for k, v in result.items() if v is not _DROP}


class CountingKeys:
    """A ``KeySource`` wrapper that records every lookup (and so every possible fetch)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.calls: list[tuple[str | None, str]] = []

    async def candidates(self, *, kid: str | None, alg: str) -> Sequence[VerificationKey]:
        self.calls.append((kid, alg))
        result: Sequence[VerificationKey] = await self.inner.candidates(kid=kid, alg=alg)
        return result
