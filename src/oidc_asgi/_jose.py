"""Hardened parsing and signature verification of compact JWS (RFC 7515, RFC 8725).

The package's shared JOSE core: used by ``tokens.py`` (every token kind) and by the bearer
pillar's DPoP proof checks (``bearer/_dpop.py``); not public API. Everything here works on
structure and cryptography only; no claim is judged here. The order of work is chosen so that
hostile input costs as little as possible: the size cap comes before any splitting or
decoding, the segment count before base64, strict base64url before JSON, and the whole token
is checked for structure before ``tokens.py`` asks a key source for keys (so garbage never
triggers a JWKS refetch).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import math
import re
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any, NamedTuple

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from oidc_asgi._jwks import ALGORITHM_KEYS, VerificationKey
from oidc_asgi.errors import TokenError

# A segment is unpadded base64url. The last character must leave no unused bits set, so each
# byte string has exactly one accepted encoding (no malleable token strings with the same
# signature, which matters to anything keyed by the token text).
_COMPACT = re.compile(r"([A-Za-z0-9_-]*)\.([A-Za-z0-9_-]*)\.([A-Za-z0-9_-]*)")
_LAST_CHAR_OK = {2: frozenset("AQgw"), 3: frozenset("AEIMQUYcgkosw048")}
_TO_STANDARD = bytes.maketrans(b"-_", b"+/")
_PADDING = {0: b"", 2: b"==", 3: b"="}
# Parsed JOSE headers by their base64url text (see _header); bounded, cleared when full.
_HEADERS: dict[str, Mapping[str, Any]] = {}
_MAX_HEADERS = 256
_MAX_CACHED_HEADER = 512

_SHA = {
    "256": hashes.SHA256(),
    "384": hashes.SHA384(),
    "512": hashes.SHA512(),
}
_RSA: Mapping[str, tuple[padding.AsymmetricPadding, hashes.HashAlgorithm]] = {
    **{f"RS{bits}": (padding.PKCS1v15(), sha) for bits, sha in _SHA.items()},
    # RFC 7518 section 3.5: MGF1 with the same hash, salt as long as the hash.
    **{
        f"PS{bits}": (padding.PSS(mgf=padding.MGF1(sha), salt_length=sha.digest_size), sha)
        for bits, sha in _SHA.items()
    },
}
# Curve order n for the ECDSA range check (FIPS 186-4 D.1.2): r and s must lie in [1, n-1].
_EC = {
    "ES256": (
        "secp256r1",
        32,
        0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551,
    ),
    "ES384": (
        "secp384r1",
        48,
        int(
            "FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFC7634D81F4372DDF"
            "581A0DB248B0A77AECEC196ACCC52973",
            16,
        ),
    ),
    "ES512": (
        "secp521r1",
        66,
        int(
            "01FF" + "FFFFFFFF" * 7 + "FFFFFFFA51868783BF2F966B7FCC0148F709A5D0"
            "3BB5C9B8899C47AEBB6FB71E91386409",
            16,
        ),
    ),
}


class ParsedJWS(NamedTuple):
    """A structurally valid compact JWS whose signature is not yet verified."""

    header: Mapping[str, Any]
    payload: Mapping[str, Any]
    signing_input: bytes
    signature: bytes


class _BadJSON(ValueError):
    pass


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # RFC 7515 section 4 / RFC 8725 section 3.7: duplicate member names are rejected, not
    # "last one wins" (two parsers must never disagree about a claim).
    result = dict(pairs)
    if len(result) != len(pairs):
        raise _BadJSON("duplicate member")
    return result


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):  # "1e999" parses to inf
        raise _BadJSON("non-finite number")
    return value


def _constant(text: str) -> Any:
    raise _BadJSON("NaN and Infinity are not JSON")


_MAX_DEPTH = 16


def _too_deep(value: Any) -> bool:
    # Iterative, so a hostile document cannot exhaust the stack here either.
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > _MAX_DEPTH:
            return True
        children = item.values() if isinstance(item, dict) else item
        stack.extend((c, depth + 1) for c in children if isinstance(c, (dict, list)))
    return False


def _malformed(message: str) -> TokenError:
    return TokenError(message, code="malformed_token")


def _decode_segment(segment: str, standard: bytes, what: str) -> bytes:
    # ``segment`` is the base64url text (alphabet already checked by _COMPACT); ``standard`` the
    # same characters translated to the standard alphabet, ready for binascii.
    rest = len(segment) % 4
    if rest == 1 or (rest and segment[-1] not in _LAST_CHAR_OK[rest]):
        raise _malformed(f"{what} is not canonical base64url")
    try:
        # The alphabet was checked by _COMPACT, so decoding the translated text with binascii
        # directly is exact (and skips base64's per-call wrappers).
        return binascii.a2b_base64(standard + _PADDING[rest] if rest else standard)
    except (binascii.Error, ValueError) as exc:  # pragma: no cover - the regex guards this
        raise _malformed(f"{what} is not base64url") from exc


# Built once: json.loads() with hooks would build a new decoder (and scanner) on every call.
_DECODER = json.JSONDecoder(
    object_pairs_hook=_object, parse_float=_finite, parse_constant=_constant
)
_JSON_SPACE = " \t\n\r"


def _json_object(raw: bytes, what: str) -> dict[str, Any]:
    try:
        # Decode as UTF-8 ourselves: json.loads(bytes) would also accept UTF-16/32.
        text = raw.decode("utf-8").strip(_JSON_SPACE)
        if not text.startswith("{"):
            raise _malformed(f"{what} is not a JSON object")
        value, end = _DECODER.raw_decode(text)
    except (ValueError, RecursionError) as exc:
        # JSONDecodeError, _BadJSON, UnicodeDecodeError, the int digit limit, stack exhaustion
        raise _malformed(f"{what} is not a valid JSON object") from exc
    if end != len(text) or not isinstance(value, dict):
        raise _malformed(f"{what} has data after the JSON object")
    # Nesting is bounded (RFC 8725 DoS advice) the same way on every Python version; counting
    # brackets at C speed spares the walk for ordinary, shallow tokens.
    if raw.count(b"{") + raw.count(b"[") > _MAX_DEPTH and _too_deep(value):
        raise _malformed(f"{what} is nested too deeply")
    return value


def parse_compact(token: object, max_bytes: int) -> ParsedJWS:
    """Split and decode a compact JWS, checking structure only (RFC 7515 section 7.1)."""
    if not isinstance(token, str):
        raise _malformed("token is not a string")
    # Size first, before any work proportional to the input (RFC 8725 section 3.1 / DoS).
    # len() counts characters; any non-ASCII character is rejected by the alphabet check below.
    if len(token) > max_bytes:
        raise TokenError(
            "token is larger than the configured limit",
            code="token_too_large",
            expected=max_bytes,
            actual=len(token),
        )
    match = _COMPACT.fullmatch(token)
    if match is None:
        dots = token.count(".")
        if dots == 4:
            raise TokenError(
                "encrypted tokens (JWE) are not accepted",
                code="unsupported_token_type",
                expected="JWS",
                actual="JWE",
            )
        if dots != 2:
            raise _malformed("a JWS has exactly three segments")
        raise _malformed("segments must be unpadded base64url")
    header_b64, payload_b64, signature_b64 = match.groups()
    # One encode and one translation for the whole token; the segments are slices of it.
    raw = token.encode("ascii")
    standard = raw.translate(_TO_STANDARD)
    header_end = len(header_b64)
    payload_end = header_end + 1 + len(payload_b64)
    header = _HEADERS.get(header_b64)
    if header is None:
        header = _header(header_b64, standard[:header_end])
    payload = _json_object(
        _decode_segment(payload_b64, standard[header_end + 1 : payload_end], "payload"),
        "payload",
    )
    signature = _decode_segment(signature_b64, standard[payload_end + 1 :], "signature")
    return ParsedJWS(
        header=header,
        payload=payload,
        signing_input=raw[:payload_end],
        signature=signature,
    )


def _header(header_b64: str, standard: bytes) -> Mapping[str, Any]:
    decoded = _decode_segment(header_b64, standard, "header")
    header = _json_object(decoded, "header")
    if len(header_b64) <= _MAX_CACHED_HEADER and decoded.count(b"{") == 1 and b"[" not in decoded:
        # A flat header (one object, no arrays: nothing mutable inside) is remembered as a
        # read-only view, keyed by its exact text: an issuer's tokens share a handful of headers.
        if len(_HEADERS) >= _MAX_HEADERS:
            _HEADERS.clear()  # a flood of junk headers costs speed, never correctness
        view: Mapping[str, Any] = MappingProxyType(header)
        _HEADERS[header_b64] = view
        return view
    return header


def verify_signature(
    alg: str, key: VerificationKey, signing_input: bytes, signature: bytes
) -> bool:
    """True when ``signature`` is a valid ``alg`` signature by ``key`` (RFC 7518 section 3)."""
    verifiers = key._verifiers
    check = verifiers.get(alg)
    if check is None:
        check = _verifier(alg, key)
        if alg in ALGORITHM_KEYS:  # bounded: one checker per known algorithm and key
            verifiers[alg] = check
    return check(signing_input, signature)


def _never(signing_input: bytes, signature: bytes) -> bool:
    return False


def _verifier(alg: str, key: VerificationKey) -> Callable[[bytes, bytes], bool]:
    # Everything that depends only on (alg, key) is decided here, once: whether the key fits
    # the algorithm, the padding and hash objects, the exact signature size.
    if not key.can_verify(alg):
        return _never
    public_key = key.public_key
    if alg[:2] in ("RS", "PS"):
        if not isinstance(public_key, rsa.RSAPublicKey):
            return _never
        rsa_size = (public_key.key_size + 7) // 8
        pad, sha = _RSA[alg]
        rsa_verify = public_key.verify

        def check_rsa(signing_input: bytes, signature: bytes) -> bool:
            if len(signature) != rsa_size:
                return False
            try:
                rsa_verify(signature, signing_input, pad, sha)
            except InvalidSignature:
                return False
            return True

        return check_rsa
    if alg in _EC:
        curve_name, size, order = _EC[alg]
        if not isinstance(public_key, ec.EllipticCurvePublicKey):
            return _never
        if public_key.curve.name != curve_name:
            return _never
        ecdsa = ec.ECDSA(_SHA[alg[2:]])
        ec_verify = public_key.verify
        from_bytes = int.from_bytes

        def check_ec(signing_input: bytes, signature: bytes) -> bool:
            if len(signature) != 2 * size:
                return False
            # RFC 7518 section 3.4: R || S, each exactly `size` octets. A zero or out-of-range
            # value is rejected here rather than trusted to the backend (CVE-2022-21449).
            r = from_bytes(signature[:size], "big")
            s = from_bytes(signature[size:], "big")
            if not (0 < r < order and 0 < s < order):
                return False
            try:
                ec_verify(encode_dss_signature(r, s), signing_input, ecdsa)
            except InvalidSignature:
                return False
            return True

        return check_ec
    if isinstance(public_key, (ed25519.Ed25519PublicKey, ed448.Ed448PublicKey)):
        ed_size = 64 if isinstance(public_key, ed25519.Ed25519PublicKey) else 114
        ed_verify = public_key.verify

        def check_ed(signing_input: bytes, signature: bytes) -> bool:
            if len(signature) != ed_size:
                return False
            try:
                ed_verify(signature, signing_input)
            except InvalidSignature:
                return False
            return True

        return check_ed
    return _never


def _half(digest: Callable[[bytes], bytes]) -> Callable[[bytes], bytes]:
    def left_half(data: bytes) -> bytes:
        value = digest(data)
        return value[: len(value) // 2]

    return left_half


_HALF_HASH: Mapping[str, Callable[[bytes], bytes]] = {
    "256": _half(lambda d: hashlib.sha256(d).digest()),
    "384": _half(lambda d: hashlib.sha384(d).digest()),
    "512": _half(lambda d: hashlib.sha512(d).digest()),
    "Ed25519": _half(lambda d: hashlib.sha512(d).digest()),
    # OIDC Core errata: Ed448 uses SHAKE256 with a 114-octet output.
    "Ed448": _half(lambda d: hashlib.shake_256(d).digest(114)),
}


def token_hash(alg: str, key: VerificationKey, value: str) -> str:
    """``at_hash`` / ``c_hash`` of ``value`` (OIDC Core 3.1.3.6, 3.3.2.11, with the EdDSA errata).

    The hash is the one of the token's ``alg``; for ``EdDSA`` it follows the key's curve.
    """
    if alg in ("EdDSA", "Ed25519", "Ed448"):
        name = key.crv if alg == "EdDSA" else alg
        half = _HALF_HASH[name if name in ("Ed25519", "Ed448") else "Ed25519"]
    else:
        half = _HALF_HASH[alg[2:]]
    return (
        base64.urlsafe_b64encode(half(value.encode("utf-8", "surrogatepass")))
        .rstrip(b"=")
        .decode("ascii")
    )
