"""JSON Web Key Sets for signature verification: safe parsing and key selection.

Shared by ``provider.py`` (keys fetched from ``jwks_uri``) and ``tokens.py`` (which asks a
``KeySource`` for candidate keys). Keys are imported once, into ``cryptography`` public-key
objects, when the set is parsed, so verifying a token does no key parsing.

Filtering rules (RFC 7517 section 4, RFC 8725 section 3):
  * ``use`` other than ``sig`` and ``key_ops`` without ``verify`` are ignored;
  * keys with private members (``d``, ``p``, ``k``, ...) are ignored: a JWKS is public;
  * symmetric keys (``oct``) are never usable from a JWKS (no HMAC with published keys);
  * RSA below 2048 bits or with a weak exponent, and EC points off their curve, are ignored.
"""

from __future__ import annotations

import base64
import binascii
import logging
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeAlias

from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa

__all__ = [
    "ALGORITHM_KEYS",
    "KeySource",
    "PublicKey",
    "StaticKeys",
    "VerificationKey",
    "b64url_decode",
    "parse_jwks",
    "select_keys",
]

log = logging.getLogger("oidc_asgi.jwks")

PublicKey: TypeAlias = (
    rsa.RSAPublicKey | ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey | ed448.Ed448PublicKey
)

#: Asymmetric JWS algorithms we can verify, with the key type and curve each needs.
#: (RFC 7518 section 3, RFC 8037 section 3.1, RFC 9864 section 2.)
ALGORITHM_KEYS: Mapping[str, tuple[str, frozenset[str] | None]] = {
    "RS256": ("RSA", None),
    "RS384": ("RSA", None),
    "RS512": ("RSA", None),
    "PS256": ("RSA", None),
    "PS384": ("RSA", None),
    "PS512": ("RSA", None),
    "ES256": ("EC", frozenset({"P-256"})),
    "ES384": ("EC", frozenset({"P-384"})),
    "ES512": ("EC", frozenset({"P-521"})),
    "EdDSA": ("OKP", frozenset({"Ed25519", "Ed448"})),
    "Ed25519": ("OKP", frozenset({"Ed25519"})),
    "Ed448": ("OKP", frozenset({"Ed448"})),
}

_PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})
_EC_CURVES: Mapping[str, tuple[ec.EllipticCurve, int]] = {
    "P-256": (ec.SECP256R1(), 32),
    "P-384": (ec.SECP384R1(), 48),
    "P-521": (ec.SECP521R1(), 66),
}
_B64URL = re.compile(r"[A-Za-z0-9_-]*")
_MAX_KID = 256
_MAX_KEYS = 100
MIN_RSA_BITS = 2048


def b64url_decode(value: str) -> bytes:
    """Decode unpadded base64url strictly (RFC 7515 section 2): other characters are an error."""
    if not _B64URL.fullmatch(value) or len(value) % 4 == 1:
        raise ValueError("not base64url")
    try:
        return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except (binascii.Error, ValueError) as exc:  # pragma: no cover - regex already guards
        raise ValueError("not base64url") from exc


@dataclass(frozen=True)
class VerificationKey:
    """One public key from a JWKS, imported and ready to verify signatures."""

    kid: str | None
    kty: str
    crv: str | None
    alg: str | None
    public_key: PublicKey
    # Per-algorithm signature checkers built on first use by ``_jose.verify_signature`` (the
    # padding, hash and size checks decided once per key, not once per token). Not part of
    # the key's identity.
    _verifiers: dict[str, Callable[[bytes, bytes], bool]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def can_verify(self, alg: str) -> bool:
        """True when this key's type, curve and declared ``alg`` fit ``alg`` (RFC 8725 3.1)."""
        need = ALGORITHM_KEYS.get(alg)
        if need is None:
            return False
        kty, curves = need
        if self.kty != kty or (curves is not None and self.crv not in curves):
            return False
        return self.alg is None or self.alg == alg


class KeySource(Protocol):
    """Where a validator gets keys: a ``Provider`` (fetched JWKS) or ``StaticKeys``."""

    async def candidates(self, *, kid: str | None, alg: str) -> Sequence[VerificationKey]:
        """Keys that may have signed a token with this ``kid`` (or none) and ``alg``."""
        ...


def _int(value: Any) -> int:
    if not isinstance(value, str) or not value:
        raise ValueError("missing integer member")
    return int.from_bytes(b64url_decode(value), "big")


def _import_key(jwk: Mapping[str, Any]) -> PublicKey:
    kty = jwk.get("kty")
    if kty == "RSA":
        n, e = _int(jwk.get("n")), _int(jwk.get("e"))
        if n.bit_length() < MIN_RSA_BITS:
            raise ValueError("RSA key below 2048 bits")
        if e < 65537 or e % 2 == 0:
            raise ValueError("weak RSA exponent")
        return rsa.RSAPublicNumbers(e, n).public_key()
    if kty == "EC":
        crv = jwk.get("crv")
        if not isinstance(crv, str) or crv not in _EC_CURVES:
            raise ValueError("unsupported curve")
        curve, size = _EC_CURVES[crv]
        x_raw, y_raw = b64url_decode(str(jwk.get("x", ""))), b64url_decode(str(jwk.get("y", "")))
        if len(x_raw) != size or len(y_raw) != size:
            raise ValueError("bad coordinate length")
        numbers = ec.EllipticCurvePublicNumbers(
            int.from_bytes(x_raw, "big"), int.from_bytes(y_raw, "big"), curve
        )
        return numbers.public_key()  # raises ValueError for a point off the curve
    if kty == "OKP":
        crv = jwk.get("crv")
        x_raw = b64url_decode(str(jwk.get("x", "")))
        if crv == "Ed25519":
            return ed25519.Ed25519PublicKey.from_public_bytes(x_raw)
        if crv == "Ed448":
            return ed448.Ed448PublicKey.from_public_bytes(x_raw)
        raise ValueError("unsupported curve")
    raise ValueError("unsupported key type")


def _parse_key(jwk: Any) -> VerificationKey | None:
    if not isinstance(jwk, Mapping):
        return None
    use, key_ops, kid, alg = jwk.get("use"), jwk.get("key_ops"), jwk.get("kid"), jwk.get("alg")
    reason = None
    if use is not None and use != "sig":
        reason = "use is not sig"
    elif key_ops is not None and (not isinstance(key_ops, list) or "verify" not in key_ops):
        reason = "key_ops lacks verify"
    elif _PRIVATE_MEMBERS & jwk.keys():
        reason = "private or symmetric key material"
    elif kid is not None and (not isinstance(kid, str) or len(kid) > _MAX_KID):
        reason = "kid is not a short string"
    elif alg is not None and (not isinstance(alg, str) or alg not in ALGORITHM_KEYS):
        reason = "alg is not an asymmetric signature algorithm we verify"
    if reason is not None:
        log.debug("ignoring JWK kid=%r: %s", kid if isinstance(kid, str) else None, reason)
        return None
    try:
        public_key = _import_key(jwk)
    except (ValueError, TypeError, OverflowError) as exc:
        log.debug("ignoring JWK kid=%r: %s", kid, exc)
        return None
    crv = jwk.get("crv")
    return VerificationKey(
        kid=kid,
        kty=str(jwk["kty"]),
        crv=crv if isinstance(crv, str) else None,
        alg=alg,
        public_key=public_key,
    )


def parse_jwks(document: Any) -> tuple[VerificationKey, ...]:
    """Parse a JWKS document into usable verification keys, dropping unsafe or unusable ones.

    Raises ``ValueError`` when the document is not a JWKS at all (no ``keys`` array).

    Example::

        keys = parse_jwks({"keys": [{"kty": "EC", "crv": "P-256", "x": "...", "y": "..."}]})
    """
    if not isinstance(document, Mapping) or not isinstance(document.get("keys"), list):
        raise ValueError("not a JWK Set: no 'keys' array")
    parsed = (_parse_key(jwk) for jwk in document["keys"][:_MAX_KEYS])
    return tuple(key for key in parsed if key is not None)


def select_keys(
    keys: Sequence[VerificationKey], *, kid: str | None, alg: str
) -> list[VerificationKey]:
    """Keys that may verify a token with this header: same ``kid`` when given, fitting ``alg``.

    Without a ``kid`` every key that fits the algorithm is a candidate; the caller tries each.
    """
    return [k for k in keys if (kid is None or k.kid == kid) and k.can_verify(alg)]


class StaticKeys:
    """A fixed key set, for APIs that pin their issuer's keys and for tests.

    Example::

        keys = StaticKeys({"keys": [public_jwk]})
        candidates = await keys.candidates(kid="k1", alg="RS256")
    """

    def __init__(self, jwks: Mapping[str, Any]) -> None:
        self.keys = parse_jwks(jwks)

    async def candidates(self, *, kid: str | None, alg: str) -> Sequence[VerificationKey]:
        return select_keys(self.keys, kid=kid, alg=alg)
