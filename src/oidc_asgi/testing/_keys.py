"""Signing keys (RS256, ES256, EdDSA), compact JWS signing and verification, key rotation.

JWS is done with ``cryptography`` directly: the development provider must also produce
deliberately broken tokens (``alg: none``, HS256 keyed with the public key), which a careful JOSE
library refuses to make, and it avoids joserfc's deprecation warning for ``EdDSA`` (RFC 9864).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | Ed25519PrivateKey
PublicKey = rsa.RSAPublicKey | ec.EllipticCurvePublicKey | Ed25519PublicKey

ALGORITHMS = ("RS256", "ES256", "EdDSA")


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _int_b64(value: int, length: int | None = None) -> str:
    size = length or (value.bit_length() + 7) // 8
    return b64url(value.to_bytes(size, "big"))


def _b64_int(text: str) -> int:
    return int.from_bytes(b64url_decode(text), "big")


def generate_private_key(alg: str) -> PrivateKey:
    """A fresh private key for ``alg``."""
    if alg == "RS256":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    if alg == "ES256":
        return ec.generate_private_key(ec.SECP256R1())
    if alg == "EdDSA":
        return Ed25519PrivateKey.generate()
    raise ValueError(f"unsupported algorithm {alg}")


def public_jwk(key: PublicKey) -> dict[str, Any]:
    """The public JWK members (RFC 7517/7518/8037) of ``key``, without kid/alg/use."""
    if isinstance(key, rsa.RSAPublicKey):
        numbers = key.public_numbers()
        return {"kty": "RSA", "n": _int_b64(numbers.n), "e": _int_b64(numbers.e)}
    if isinstance(key, ec.EllipticCurvePublicKey):
        point = key.public_numbers()
        return {"kty": "EC", "crv": "P-256", "x": _int_b64(point.x, 32), "y": _int_b64(point.y, 32)}
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return {"kty": "OKP", "crv": "Ed25519", "x": b64url(raw)}


def key_from_jwk(jwk: Mapping[str, Any]) -> PublicKey:
    """A public key from a JWK (RSA, EC P-256 or OKP Ed25519); ValueError otherwise."""
    kty = jwk.get("kty")
    try:
        if kty == "RSA":
            return rsa.RSAPublicNumbers(_b64_int(jwk["e"]), _b64_int(jwk["n"])).public_key()
        if kty == "EC" and jwk.get("crv") == "P-256":
            numbers = ec.EllipticCurvePublicNumbers(
                _b64_int(jwk["x"]), _b64_int(jwk["y"]), ec.SECP256R1()
            )
            return numbers.public_key()
        if kty == "OKP" and jwk.get("crv") == "Ed25519":
            return Ed25519PublicKey.from_public_bytes(b64url_decode(jwk["x"]))
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError("malformed JWK") from exc
    raise ValueError("unsupported JWK")


def alg_for_key(key: PublicKey) -> str:
    if isinstance(key, rsa.RSAPublicKey):
        return "RS256"
    if isinstance(key, ec.EllipticCurvePublicKey):
        return "ES256"
    return "EdDSA"


def jwk_thumbprint(jwk: Mapping[str, Any]) -> str:
    """RFC 7638 JWK thumbprint (SHA-256), used as ``kid``."""
    members = {"RSA": ("e", "kty", "n"), "EC": ("crv", "kty", "x", "y"), "OKP": ("crv", "kty", "x")}
    required = members[str(jwk["kty"])]
    canonical = json.dumps({k: jwk[k] for k in required}, separators=(",", ":"), sort_keys=True)
    return b64url(hashlib.sha256(canonical.encode()).digest())


def raw_sign(key: PrivateKey, alg: str, signing_input: bytes) -> bytes:
    """Sign ``signing_input`` per RFC 7518 section 3 (and RFC 8037 for EdDSA)."""
    if isinstance(key, rsa.RSAPrivateKey) and alg == "RS256":
        return key.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())
    if isinstance(key, ec.EllipticCurvePrivateKey) and alg == "ES256":
        r, s = decode_dss_signature(key.sign(signing_input, ec.ECDSA(hashes.SHA256())))
        return r.to_bytes(32, "big") + s.to_bytes(32, "big")
    if isinstance(key, Ed25519PrivateKey) and alg == "EdDSA":
        return key.sign(signing_input)
    raise ValueError("key does not match algorithm")


def raw_verify(key: PublicKey, alg: str, signing_input: bytes, signature: bytes) -> bool:
    """Check a signature; the algorithm must match the key type (RFC 8725 section 3.1)."""
    try:
        if isinstance(key, rsa.RSAPublicKey) and alg == "RS256":
            key.verify(signature, signing_input, padding.PKCS1v15(), hashes.SHA256())
            return True
        if isinstance(key, ec.EllipticCurvePublicKey) and alg == "ES256":
            if len(signature) != 64:
                return False
            der = encode_dss_signature(
                int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
            )
            key.verify(der, signing_input, ec.ECDSA(hashes.SHA256()))
            return True
        if isinstance(key, Ed25519PublicKey) and alg == "EdDSA":
            key.verify(signature, signing_input)
            return True
    except InvalidSignature:
        return False
    return False


def encode_jws(header: Mapping[str, Any], claims: Mapping[str, Any], sign: Any) -> str:
    """Compact JWS: ``sign`` maps the signing input to signature bytes (may be empty)."""
    head = b64url(json.dumps(header, separators=(",", ":")).encode())
    body = b64url(json.dumps(claims, separators=(",", ":")).encode())
    signing_input = f"{head}.{body}".encode("ascii")
    return f"{head}.{body}.{b64url(sign(signing_input))}"


def hs256(secret: bytes) -> Any:
    return lambda data: hmac.new(secret, data, hashlib.sha256).digest()


class JWSError(ValueError):
    """A compact JWS could not be parsed or verified (the message never holds the token)."""


def split_jws(token: str) -> tuple[dict[str, Any], dict[str, Any], bytes, bytes]:
    """Parse without verifying: header, claims, signing input, signature."""
    if len(token) > 16384:
        raise JWSError("token too large")
    parts = token.split(".")
    if len(parts) != 3:
        raise JWSError("not a compact JWS")
    try:
        header = json.loads(b64url_decode(parts[0]))
        claims = json.loads(b64url_decode(parts[1]))
        signature = b64url_decode(parts[2])
    except ValueError as exc:
        raise JWSError("malformed JWS") from exc
    if not isinstance(header, dict) or not isinstance(claims, dict):
        raise JWSError("malformed JWS")
    return header, claims, f"{parts[0]}.{parts[1]}".encode("ascii"), signature


def verify_with_jwks(
    token: str, jwks: Sequence[Mapping[str, Any]], algorithms: Sequence[str] = ALGORITHMS
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Verify a compact JWS against a list of public JWKs; returns (header, claims)."""
    header, claims, signing_input, signature = split_jws(token)
    alg = header.get("alg")
    if alg not in algorithms:
        raise JWSError("algorithm not allowed")
    kid = header.get("kid")
    candidates = [k for k in jwks if kid is None or k.get("kid") == kid]
    for jwk in candidates:
        try:
            key = key_from_jwk(jwk)
        except ValueError:
            continue
        if raw_verify(key, str(alg), signing_input, signature):
            return header, claims
    raise JWSError("signature verification failed")


@dataclass
class SigningKey:
    """One private signing key with its ``kid``; ``retired_at`` is set when rotated out."""

    kid: str
    alg: str
    private_key: PrivateKey
    retired_at: float | None = None

    @classmethod
    def generate(cls, alg: str) -> SigningKey:
        private_key = generate_private_key(alg)
        jwk = public_jwk(private_key.public_key())
        return cls(kid=jwk_thumbprint(jwk)[:16], alg=alg, private_key=private_key)

    def public_jwk(self) -> dict[str, Any]:
        return {**public_jwk(self.private_key.public_key()), "kid": self.kid, "alg": self.alg}

    def sign(self, claims: Mapping[str, Any], *, typ: str = "JWT", **header: Any) -> str:
        full = {"alg": self.alg, "typ": typ, "kid": self.kid, **header}
        return encode_jws(full, claims, lambda data: raw_sign(self.private_key, self.alg, data))

    def public_pem(self) -> bytes:
        return self.private_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )


class KeyRing:
    """Signing keys, newest first per algorithm; retired keys stay published for a while.

    Rotation follows the usual discipline: the new key is published and used for signing at
    once, the old one stays in the JWKS for ``retired_key_lifetime`` seconds so tokens it signed
    can still be verified.

    Example::

        keys = KeyRing()  # generate RSA once per test session, then share copies
        provider = DevProvider(keys=keys.copy())
    """

    def __init__(self, keys: Sequence[SigningKey] | None = None) -> None:
        self.keys: list[SigningKey] = list(keys) if keys else self._fresh()

    @staticmethod
    def _fresh() -> list[SigningKey]:
        return [SigningKey.generate(alg) for alg in ALGORITHMS]

    def current(self, alg: str = "RS256") -> SigningKey:
        for key in self.keys:
            if key.alg == alg and key.retired_at is None:
                return key
        raise ValueError(f"no current key for {alg}")

    def rotate(self, now: float) -> list[SigningKey]:
        for key in self.keys:
            if key.retired_at is None:
                key.retired_at = now
        fresh = self._fresh()
        self.keys = fresh + self.keys
        return fresh

    def published(self, now: float, retired_key_lifetime: float) -> list[SigningKey]:
        return [
            key
            for key in self.keys
            if key.retired_at is None or now - key.retired_at < retired_key_lifetime
        ]

    def jwks(self, now: float, retired_key_lifetime: float) -> dict[str, Any]:
        published = self.published(now, retired_key_lifetime)
        return {"keys": [{**k.public_jwk(), "use": "sig"} for k in published]}

    def copy(self) -> KeyRing:
        """A ring sharing the key material (handy to skip RSA generation in tests)."""
        return KeyRing([SigningKey(k.kid, k.alg, k.private_key, k.retired_at) for k in self.keys])


def random_token(prefix: str = "", nbytes: int = 32) -> str:
    return prefix + secrets.token_urlsafe(nbytes)


def override_claims(body: dict[str, Any], changes: Mapping[str, Any] | None) -> dict[str, Any]:
    """``body`` with ``changes`` applied in place: a ``None`` value removes that claim."""
    for name, value in (changes or {}).items():
        if value is None:
            body.pop(name, None)
        else:
            body[name] = value
    return body


def left_hash(value: str, alg: str) -> str:
    """``at_hash``/``c_hash``: left half of the hash (OIDC Core 3.1.3.6); SHA-512 for Ed25519."""
    digest = hashlib.sha512 if alg == "EdDSA" else hashlib.sha256
    full = digest(value.encode("ascii")).digest()
    return b64url(full[: len(full) // 2])
