"""The JWT attack catalogue (research/anchors-resource-server.md part c), one case per attack.

Every case asserts rejection with the exact error code; cases where a key lookup could turn into
network traffic also assert how many times the key source was asked (a ``CountingKeys`` wrapper
records every lookup, so zero lookups means zero possible fetches). Row 21 (DPoP) belongs to the
bearer pillar; row 22 (scope matching) is judged there too, only the claim's type is checked here.
"""

from __future__ import annotations

import asyncio
import datetime
import hashlib
import hmac
import json
import os
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.x509.oid import NameOID

from _jwt import (
    API,
    CLIENT_ID,
    ISSUER,
    LOGOUT_EVENT,
    NOW,
    CountingKeys,
    Signer,
    at_claims,
    b64,
    compact_json,
    header,
    id_claims,
    logout_claims,
    mint,
    public_jwk,
    signers,
)
from oidc_asgi._jwks import StaticKeys, VerificationKey
from oidc_asgi.errors import ConfigurationError, TokenError
from oidc_asgi.provider import Provider
from oidc_asgi.tokens import (
    AccessTokenExpectations,
    IDTokenExpectations,
    LogoutTokenExpectations,
    TokenValidator,
)

P256_N = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551


def jwks() -> dict[str, Any]:
    """A mixed JWKS: RSA (RS256), RSA bound to PS256, EC P-256, P-384, P-521 and Ed25519."""
    names = ("RS256", "PS256", "ES256", "ES384", "ES512", "EdDSA")
    return {"keys": [signers()[n].public_jwk() for n in names]}


def rs() -> Signer:
    return signers()["RS256"]


def es() -> Signer:
    return signers()["ES256"]


def attacker() -> Signer:
    return signers()["attacker"]


def at(hdr: dict[str, Any] | bytes, signer: Signer | None = None, **claims: Any) -> str:
    """An access token for this API with a chosen header, signed by ``signer`` (issuer RSA)."""
    return mint(hdr, at_claims(**claims), signer or rs())


def raw_at(payload: bytes, signer: Signer | None = None) -> str:
    return mint({"alg": "RS256", "kid": "rsa-1", "typ": "at+jwt"}, payload, signer or rs())


def typed(**extra: Any) -> dict[str, Any]:
    return header(rs(), "at+jwt", **extra)


# --- helpers that build specific hostile tokens ---------------------------------------------


def unsigned(alg: str, signature: str = "") -> str:
    hdr = b64(compact_json({"alg": alg, "typ": "at+jwt"}))
    return f"{hdr}.{b64(compact_json(at_claims()))}.{signature}"


def hs256_with_public_key(form: str) -> str:
    public = rs().private_key.public_key()
    if form == "pem":
        secret = public.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    elif form == "pem-no-newline":
        secret = public.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ).rstrip(b"\n")
    elif form == "pkcs1-pem":
        secret = public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.PKCS1)
    elif form == "der":
        secret = public.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    elif form == "ssh":
        secret = public.public_bytes(
            serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
        )
    else:  # the JWK as published in the JWKS, as JSON text
        secret = json.dumps(rs().public_jwk()).encode()
    hdr = b64(compact_json({"alg": "HS256", "kid": "rsa-1", "typ": "at+jwt"}))
    body = b64(compact_json(at_claims()))
    mac = hmac.new(secret, f"{hdr}.{body}".encode(), hashlib.sha256).digest()
    return f"{hdr}.{body}.{b64(mac)}"


def self_signed_x5c(signer: Signer) -> list[str]:
    key = signer.private_key
    assert isinstance(key, rsa.RSAPrivateKey)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "idp.example.com")])
    start = datetime.datetime(2023, 1, 1, tzinfo=datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(start)
        .not_valid_after(start + datetime.timedelta(days=3650))
        .sign(key, hashes.SHA256())
    )
    return [b64(cert.public_bytes(serialization.Encoding.DER))]


def ecdsa_with_signature(signature: bytes, alg: str = "ES256", kid: str = "ec-1") -> str:
    return mint({"alg": alg, "kid": kid, "typ": "at+jwt"}, at_claims(), None, signature=signature)


def ecdsa_der_signature() -> str:
    hdr = b64(compact_json({"alg": "ES256", "kid": "ec-1", "typ": "at+jwt"}))
    body = b64(compact_json(at_claims()))
    key = es().private_key
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    der = key.sign(f"{hdr}.{body}".encode(), ec.ECDSA(hashes.SHA256()))
    return f"{hdr}.{body}.{b64(der)}"


def ecdsa_truncated(length: int) -> str:
    good = mint({"alg": "ES256", "kid": "ec-1", "typ": "at+jwt"}, at_claims(), es())
    sig = good.rsplit(".", 1)[1]
    from base64 import urlsafe_b64decode

    raw = urlsafe_b64decode(sig + "==")
    raw = raw[:length] if length < len(raw) else raw + b"\x00" * (length - len(raw))
    return good.rsplit(".", 1)[0] + "." + b64(raw)


def jwe_with_unsigned_inner() -> str:
    """A real RSA-OAEP-256 / A256GCM JWE to the issuer's own RSA key, inner JWT ``alg: none``."""
    inner = unsigned("none").encode()
    protected = b64(compact_json({"alg": "RSA-OAEP-256", "enc": "A256GCM", "cty": "JWT"}))
    cek = AESGCM.generate_key(bit_length=256)
    public = rs().private_key.public_key()
    assert isinstance(public, rsa.RSAPublicKey)
    encrypted_key = public.encrypt(
        cek,
        padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None),
    )
    iv = os.urandom(12)
    sealed = AESGCM(cek).encrypt(iv, inner, protected.encode())
    ciphertext, tag = sealed[:-16], sealed[-16:]
    return ".".join([protected, b64(encrypted_key), b64(iv), b64(ciphertext), b64(tag)])


def jwe_header_only(extra: dict[str, Any]) -> str:
    protected = b64(compact_json({"alg": "PBES2-HS256+A128KW", "enc": "A128GCM", **extra}))
    return ".".join(
        [protected, "AAAA", "AAAAAAAAAAAAAAAA", b64(b"x" * 64), "AAAAAAAAAAAAAAAAAAAAAA"]
    )


def with_jwk_header(kid: str | None) -> str:
    hdr: dict[str, Any] = {"alg": "RS256", "typ": "at+jwt", "jwk": attacker().public_jwk()}
    if kid is not None:
        hdr["kid"] = kid
    return at(hdr, attacker())


def pairs_json(*pairs: tuple[str, Any]) -> bytes:
    return ("{" + ",".join(f"{json.dumps(k)}:{json.dumps(v)}" for k, v in pairs) + "}").encode()


def dup_payload(name: str, first: Any, second: Any) -> bytes:
    claims = at_claims()
    pairs = [(k, v) for k, v in claims.items() if k != name]
    return pairs_json(*pairs, (name, first), (name, second))


def claim_raw(name: str, raw_json: str) -> bytes:
    claims = {k: v for k, v in at_claims().items() if k != name}
    text = compact_json(claims).decode()
    return (text[:-1] + f',"{name}":{raw_json}' + "}").encode()


def deep_payload(depth: int) -> bytes:
    claims = compact_json(at_claims()).decode()
    return (claims[:-1] + ',"x":' + "[" * depth + "]" * depth + "}").encode()


def non_canonical(token: str) -> str:
    """Same signature bytes, other spelling: unused low bits of the last character set."""
    head, sig = token.rsplit(".", 1)
    assert len(sig) % 4 == 2
    assert sig[-1] in "AQgw"
    return f"{head}.{sig[:-1]}{chr(ord(sig[-1]) + 1)}"


def typed_id_token() -> str:
    return mint(header(rs(), "JWT"), id_claims(), rs())


# --- the catalogue --------------------------------------------------------------------------


@dataclass(frozen=True)
class Attack:
    make: Callable[[], str]
    code: str
    kind: str = "access"  # access | id | logout
    lookups: int | None = None  # key-source calls allowed (None: not asserted)
    max_token_bytes: int = 16 * 1024
    audience: str = API


ATTACKS: dict[str, Attack] = {
    # 1 alg none, every spelling, empty and garbage signature: refused before any key lookup
    "r01-alg-none": Attack(lambda: unsigned("none"), "alg_not_allowed", lookups=0),
    "r01-alg-None": Attack(lambda: unsigned("None"), "alg_not_allowed", lookups=0),
    "r01-alg-NONE": Attack(lambda: unsigned("NONE"), "alg_not_allowed", lookups=0),
    "r01-alg-nOnE": Attack(lambda: unsigned("nOnE"), "alg_not_allowed", lookups=0),
    "r01-alg-none-with-signature": Attack(
        lambda: unsigned("none", "c2lnbmF0dXJl"), "alg_not_allowed", lookups=0
    ),
    "r01-alg-none-signature-absent": Attack(
        lambda: unsigned("none").rstrip("."), "malformed_token", lookups=0
    ),
    "r01-alg-absent": Attack(
        lambda: at({"kid": "rsa-1", "typ": "at+jwt"}), "alg_not_allowed", lookups=0
    ),
    "r01-alg-empty": Attack(lambda: at(typed(alg="")), "alg_not_allowed", lookups=0),
    "r01-alg-not-a-string": Attack(lambda: at(typed(alg=["RS256"])), "alg_not_allowed", lookups=0),
    # 2 HS256 keyed with the issuer's public key in every encoding
    **{
        f"r02-hs256-public-key-{form}": Attack(
            lambda form=form: hs256_with_public_key(form),  # type: ignore[misc]
            "alg_not_allowed",
            lookups=0,
        )
        for form in ("pem", "pem-no-newline", "pkcs1-pem", "der", "ssh", "jwk-json")
    },
    # 3 alg / key type mismatch inside a mixed JWKS: no candidate, no crypto
    "r03-rsa-kid-with-es256": Attack(
        lambda: mint({"alg": "ES256", "kid": "rsa-1", "typ": "at+jwt"}, at_claims(), es()),
        "unknown_key",
        lookups=1,
    ),
    "r03-rs256-on-ps256-only-key": Attack(
        lambda: mint(
            {"alg": "RS256", "kid": "rsa-pss-1", "typ": "at+jwt"},
            at_claims(),
            signers()["PS256"],
            alg="RS256",
        ),
        "unknown_key",
        lookups=1,
    ),
    "r03-ec-kid-with-eddsa": Attack(
        lambda: mint({"alg": "EdDSA", "kid": "ec-1", "typ": "at+jwt"}, at_claims(), es()),
        "unknown_key",
        lookups=1,
    ),
    # 4 embedded jwk: never used, the attacker's signature fails against the issuer's key
    "r04-jwk-header-issuer-kid": Attack(lambda: with_jwk_header("rsa-1"), "invalid_signature"),
    "r04-jwk-header-no-kid": Attack(lambda: with_jwk_header(None), "invalid_signature"),
    "r04-jwk-header-own-kid": Attack(lambda: with_jwk_header("attacker"), "unknown_key", lookups=1),
    # 5 jku / x5u: never fetched; only the configured key source is asked, once, for the kid
    "r05-jku-unknown-kid": Attack(
        lambda: at(
            {"alg": "RS256", "kid": "evil", "typ": "at+jwt", "jku": "https://evil.test/jwks"},
            attacker(),
        ),
        "unknown_key",
        lookups=1,
    ),
    "r05-jku-issuer-kid": Attack(
        lambda: at(typed(jku="https://evil.test/jwks"), attacker()), "invalid_signature", lookups=1
    ),
    "r05-x5u-unknown-kid": Attack(
        lambda: at(
            {"alg": "RS256", "kid": "evil", "typ": "at+jwt", "x5u": "http://169.254.169.254/"},
            attacker(),
        ),
        "unknown_key",
        lookups=1,
    ),
    # 6 x5c: a self-signed chain whose leaf signs the token is ignored
    "r06-x5c-no-kid": Attack(
        lambda: at(
            {"alg": "RS256", "typ": "at+jwt", "x5c": self_signed_x5c(attacker())}, attacker()
        ),
        "invalid_signature",
        lookups=1,
    ),
    "r06-x5c-issuer-kid": Attack(
        lambda: at(typed(x5c=self_signed_x5c(attacker())), attacker()), "invalid_signature"
    ),
    # 7 kid injection: opaque lookup strings, no lookup at all for non-strings or huge ones
    "r07-kid-path-traversal": Attack(
        lambda: at(typed(kid="../../../../dev/null")), "unknown_key", lookups=1
    ),
    "r07-kid-sql": Attack(lambda: at(typed(kid="' OR 1=1--")), "unknown_key", lookups=1),
    "r07-kid-nul": Attack(lambda: at(typed(kid="rsa-1\x00")), "unknown_key", lookups=1),
    "r07-kid-64kb": Attack(
        lambda: at(typed(kid="k" * 65536)), "unknown_key", lookups=0, max_token_bytes=200_000
    ),
    "r07-kid-64kb-default-cap": Attack(
        lambda: at(typed(kid="k" * 65536)), "token_too_large", lookups=0
    ),
    "r07-kid-int": Attack(lambda: at(typed(kid=1)), "unknown_key", lookups=0),
    "r07-kid-object": Attack(lambda: at(typed(kid={"$ne": ""})), "unknown_key", lookups=0),
    "r07-kid-null": Attack(lambda: at(typed(kid=None)), "unknown_key", lookups=0),
    # 9 crit: we understand no extension
    "r09-crit-unknown-present": Attack(
        lambda: at(typed(crit=["x-foo"], **{"x-foo": 1})), "unsupported_crit", lookups=0
    ),
    "r09-crit-empty-list": Attack(lambda: at(typed(crit=[])), "unsupported_crit", lookups=0),
    "r09-crit-names-absent": Attack(
        lambda: at(typed(crit=["x-absent"])), "unsupported_crit", lookups=0
    ),
    "r09-crit-registered-name": Attack(lambda: at(typed(crit=["exp"])), "unsupported_crit"),
    "r09-crit-not-a-list": Attack(lambda: at(typed(crit="x-foo")), "unsupported_crit", lookups=0),
    "r09-crit-non-string": Attack(lambda: at(typed(crit=[1])), "unsupported_crit", lookups=0),
    # 10 b64 (RFC 7797), signed over the raw payload
    "r10-b64-false-in-crit": Attack(
        lambda: b64_false_token(in_crit=True), "unsupported_crit", lookups=0
    ),
    "r10-b64-false-no-crit": Attack(
        lambda: b64_false_token(in_crit=False), "unsupported_header", lookups=0
    ),
    "r10-b64-true": Attack(lambda: at(typed(b64=True)), "unsupported_header", lookups=0),
    # 11 psychic and malformed ECDSA
    "r11-es256-r-s-zero": Attack(lambda: ecdsa_with_signature(b"\x00" * 64), "invalid_signature"),
    "r11-es256-r-s-n": Attack(
        lambda: ecdsa_with_signature(P256_N.to_bytes(32, "big") * 2), "invalid_signature"
    ),
    "r11-es256-r-zero-s-one": Attack(
        lambda: ecdsa_with_signature(b"\x00" * 32 + (1).to_bytes(32, "big")), "invalid_signature"
    ),
    "r11-es256-r-s-max": Attack(lambda: ecdsa_with_signature(b"\xff" * 64), "invalid_signature"),
    "r11-es384-zero": Attack(
        lambda: ecdsa_with_signature(b"\x00" * 96, "ES384", "ec-384"), "invalid_signature"
    ),
    "r11-es512-zero": Attack(
        lambda: ecdsa_with_signature(b"\x00" * 132, "ES512", "ec-521"), "invalid_signature"
    ),
    "r11-es256-der-encoded": Attack(ecdsa_der_signature, "invalid_signature"),
    "r11-es256-short": Attack(lambda: ecdsa_truncated(63), "invalid_signature"),
    "r11-es256-long": Attack(lambda: ecdsa_truncated(65), "invalid_signature"),
    "r11-es256-empty": Attack(lambda: ecdsa_with_signature(b""), "invalid_signature"),
    # 12 JWS/JWE confusion
    "r12-jwe-inner-alg-none": Attack(jwe_with_unsigned_inner, "unsupported_token_type", lookups=0),
    "r12-enc-header-in-jws": Attack(
        lambda: at(typed(enc="A256GCM")), "unsupported_token_type", lookups=0
    ),
    # 13 JWE bombs: never decrypted or inflated
    "r13-jwe-zip-def": Attack(
        lambda: jwe_header_only({"zip": "DEF"}), "unsupported_token_type", lookups=0
    ),
    "r13-jwe-p2c-2e31": Attack(
        lambda: jwe_header_only({"p2c": 2**31, "p2s": "AAAAAAAAAAA"}),
        "unsupported_token_type",
        lookups=0,
    ),
    "r13-zip-in-jws": Attack(lambda: at(typed(zip="DEF")), "unsupported_header", lookups=0),
    # 14 duplicate members
    "r14-header-two-alg": Attack(
        lambda: at(pairs_json(("alg", "none"), ("kid", "rsa-1"), ("alg", "RS256"))),
        "malformed_token",
        lookups=0,
    ),
    "r14-header-two-alg-same": Attack(
        lambda: at(pairs_json(("alg", "RS256"), ("alg", "RS256"), ("typ", "at+jwt"))),
        "malformed_token",
        lookups=0,
    ),
    "r14-payload-two-aud": Attack(
        lambda: raw_at(dup_payload("aud", "https://evil.test", API)), "malformed_token", lookups=0
    ),
    "r14-payload-two-sub": Attack(
        lambda: raw_at(dup_payload("sub", "admin", "user-1")), "malformed_token", lookups=0
    ),
    "r14-payload-two-exp": Attack(
        lambda: raw_at(dup_payload("exp", 1, NOW + 300)), "malformed_token", lookups=0
    ),
    "r14-nested-duplicate": Attack(
        lambda: raw_at(claim_raw("cnf", '{"jkt":"a","jkt":"b"}')), "malformed_token", lookups=0
    ),
    # 15 size and shape
    "r15-10mb-header": Attack(
        lambda: b64(b'{"alg":"RS256","x":"' + b"a" * 10_000_000 + b'"}') + ".e30.AAAA",
        "token_too_large",
        lookups=0,
    ),
    "r15-1m-dots": Attack(lambda: "." * 1_000_000, "token_too_large", lookups=0),
    "r15-1m-dots-large-cap": Attack(
        lambda: "." * 1_000_000, "malformed_token", lookups=0, max_token_bytes=2_000_000
    ),
    "r15-four-segments": Attack(lambda: at(typed()) + ".AAAA", "malformed_token", lookups=0),
    "r15-six-segments": Attack(lambda: jwe_with_unsigned_inner() + ".", "malformed_token"),
    "r15-deep-nesting-10k": Attack(
        lambda: raw_at(deep_payload(10_000)), "malformed_token", lookups=0, max_token_bytes=40_000
    ),
    "r15-deep-nesting-17": Attack(lambda: raw_at(deep_payload(17)), "malformed_token", lookups=0),
    "r15-non-canonical-base64": Attack(
        lambda: non_canonical(at(typed())), "malformed_token", lookups=0
    ),
    "r15-padding": Attack(lambda: at(typed()) + "==", "malformed_token", lookups=0),
    "r15-standard-base64-alphabet": Attack(
        lambda: "+/" + at(typed())[2:], "malformed_token", lookups=0
    ),
    "r15-whitespace": Attack(lambda: " " + at(typed()), "malformed_token", lookups=0),
    "r15-header-not-object": Attack(lambda: at(b'["alg","RS256"]'), "malformed_token", lookups=0),
    "r15-payload-not-object": Attack(lambda: raw_at(b'"sub"'), "malformed_token", lookups=0),
    "r15-utf16-json": Attack(
        lambda: at('{"alg":"RS256","kid":"rsa-1"}'.encode("utf-16")), "malformed_token", lookups=0
    ),
    # 16 claim type confusion
    "r16-exp-true": Attack(lambda: at(typed(), exp=True), "invalid_claim_type"),
    "r16-exp-string": Attack(lambda: at(typed(), exp="9e9"), "invalid_claim_type"),
    "r16-exp-nan": Attack(lambda: raw_at(claim_raw("exp", "NaN")), "malformed_token", lookups=0),
    "r16-exp-infinity": Attack(
        lambda: raw_at(claim_raw("exp", "Infinity")), "malformed_token", lookups=0
    ),
    "r16-exp-1e400": Attack(lambda: raw_at(claim_raw("exp", "1e400")), "malformed_token"),
    "r16-exp-1e308": Attack(lambda: at(typed(), exp=1e308), "invalid_claim_type"),
    "r16-exp-huge-int": Attack(lambda: at(typed(), exp=10**30), "invalid_claim_type"),
    "r16-exp-null": Attack(lambda: at(typed(), exp=None), "invalid_claim_type"),
    "r16-nbf-true": Attack(lambda: at(typed(), nbf=True), "invalid_claim_type"),
    "r16-iat-list": Attack(lambda: at(typed(), iat=[NOW]), "invalid_claim_type"),
    "r16-aud-empty-item": Attack(lambda: at(typed(), aud=[""]), "invalid_claim_type"),
    "r16-aud-object": Attack(lambda: at(typed(), aud={}), "invalid_claim_type"),
    "r16-aud-int-item": Attack(lambda: at(typed(), aud=[API, 1]), "invalid_claim_type"),
    "r16-iss-list": Attack(lambda: at(typed(), iss=[ISSUER]), "invalid_claim_type"),
    "r16-sub-true": Attack(lambda: at(typed(), sub=True), "invalid_claim_type"),
    "r16-jti-object": Attack(lambda: at(typed(), jti={}), "invalid_claim_type"),
    # 17 issuer must match exactly
    "r17-iss-prefix": Attack(lambda: at(typed(), iss=ISSUER[:-1]), "invalid_issuer"),
    "r17-iss-extension": Attack(lambda: at(typed(), iss=ISSUER + "0"), "invalid_issuer"),
    "r17-iss-trailing-slash": Attack(lambda: at(typed(), iss=ISSUER + "/"), "invalid_issuer"),
    "r17-iss-http": Attack(
        lambda: at(typed(), iss=ISSUER.replace("https", "http")), "invalid_issuer"
    ),
    "r17-iss-upper-host": Attack(
        lambda: at(typed(), iss=ISSUER.replace("idp", "IDP")), "invalid_issuer"
    ),
    "r17-iss-space": Attack(lambda: at(typed(), iss=ISSUER + " "), "invalid_issuer"),
    # 18 cross-JWT confusion
    "r18-id-token-as-access-token": Attack(typed_id_token, "invalid_typ"),
    "r18-access-token-as-id-token": Attack(
        lambda: mint(header(rs(), "at+jwt"), id_claims(), rs()), "invalid_typ", kind="id"
    ),
    "r18-access-token-as-logout-token": Attack(
        lambda: mint(header(rs(), "at+jwt"), logout_claims(), rs()), "invalid_typ", kind="logout"
    ),
    "r18-logout-token-as-id-token": Attack(
        lambda: mint(header(rs(), "logout+jwt"), id_claims(), rs()), "invalid_typ", kind="id"
    ),
    "r18-id-token-as-logout-token": Attack(
        lambda: mint(header(rs(), "JWT"), id_claims(events={LOGOUT_EVENT: {}}, jti="j"), rs()),
        "nonce_not_allowed",
        kind="logout",
    ),
    "r18-sibling-api-token": Attack(
        lambda: at(typed(), aud="https://billing.example.com"), "invalid_audience"
    ),
    "r18-token-for-sibling-and-client": Attack(
        lambda: at(typed(), aud=[CLIENT_ID, "https://billing.example.com"]), "invalid_audience"
    ),
    # 19 multi-tenant: same keys, another tenant's issuer
    "r19-foreign-tenant": Attack(
        lambda: at(typed(), iss="https://idp.example.com/t2"), "invalid_issuer"
    ),
    "r19-foreign-tenant-id-token": Attack(
        lambda: mint(header(rs(), "JWT"), id_claims(iss="https://idp.example.com/t2"), rs()),
        "invalid_issuer",
        kind="id",
    ),
    # 20 unverified iss never routes anything: the token's iss is judged after the signature
    "r20-iss-metadata-host-unknown-key": Attack(
        lambda: at(
            {"alg": "RS256", "kid": "k9", "typ": "at+jwt"},
            attacker(),
            iss="http://169.254.169.254/",
        ),
        "unknown_key",
        lookups=1,
    ),
    "r20-iss-metadata-host-signed": Attack(
        lambda: at(typed(), iss="http://169.254.169.254/"), "invalid_issuer", lookups=1
    ),
    # 22 scope must be the space-separated string (matching is the bearer pillar's job)
    "r22-scope-list-single-item": Attack(
        lambda: at(typed(), scope=["read write"]), "invalid_claim_type"
    ),
    "r22-scope-object": Attack(lambda: at(typed(), scope={"read": True}), "invalid_claim_type"),
}


def b64_false_token(*, in_crit: bool) -> str:
    hdr: dict[str, Any] = {"alg": "RS256", "kid": "rsa-1", "typ": "at+jwt", "b64": False}
    if in_crit:
        hdr["crit"] = ["b64"]
    header_b64 = b64(compact_json(hdr))
    payload = compact_json(at_claims()).decode()
    signature = rs().sign(f"{header_b64}.{payload}".encode())
    # Detached-style compact form with the raw payload where base64url would be.
    return f"{header_b64}.{b64(payload.encode())}.{b64(signature)}"


async def run(attack: Attack, keys: CountingKeys) -> TokenError:
    validator = TokenValidator(
        issuer=ISSUER,
        keys=keys,
        algorithms=("RS256", "PS256", "ES256", "ES384", "ES512", "EdDSA"),
        max_token_bytes=attack.max_token_bytes,
        now=lambda: NOW,
    )
    token = attack.make()
    validate: Coroutine[Any, Any, Any]
    if attack.kind == "access":
        validate = validator.access_token(token, AccessTokenExpectations(audience=attack.audience))
    elif attack.kind == "id":
        validate = validator.id_token(token, IDTokenExpectations(client_id=CLIENT_ID))
    else:
        validate = validator.logout_token(token, LogoutTokenExpectations(client_id=CLIENT_ID))
    with pytest.raises(TokenError) as info:
        await validate
    return info.value


@pytest.mark.parametrize("attack", ATTACKS.values(), ids=ATTACKS.keys())
async def test_attack_is_rejected_with_its_code(attack: Attack) -> None:
    keys = CountingKeys(StaticKeys(jwks()))
    before = list(keys.inner.keys)
    error = await run(attack, keys)
    assert error.code == attack.code, str(error)
    if attack.lookups is not None:
        assert len(keys.calls) == attack.lookups, keys.calls
    # The key set is never changed by a token (no jwk/x5c/jku import).
    assert list(keys.inner.keys) == before


def test_attack_table_covers_every_applicable_row() -> None:
    rows = {int(name[1:3]) for name in ATTACKS}
    assert rows >= {*range(1, 21), 22} - {8}  # 8 (flood) and 23-24 have their own tests below


async def test_row05_jku_and_x5u_values_never_reach_the_key_source() -> None:
    keys = CountingKeys(StaticKeys(jwks()))
    await run(ATTACKS["r05-jku-unknown-kid"], keys)
    await run(ATTACKS["r05-x5u-unknown-kid"], keys)
    assert keys.calls == [("evil", "RS256"), ("evil", "RS256")]


async def test_row07_injected_kid_is_passed_verbatim_as_an_opaque_string() -> None:
    keys = CountingKeys(StaticKeys(jwks()))
    await run(ATTACKS["r07-kid-sql"], keys)
    assert keys.calls == [("' OR 1=1--", "RS256")]


async def test_row08_random_kid_flood_one_lookup_per_token_valid_tokens_pass() -> None:
    keys = CountingKeys(StaticKeys(jwks()))
    validator = TokenValidator(issuer=ISSUER, keys=keys, now=lambda: NOW)
    expect = AccessTokenExpectations(audience=API)
    tokens = [at(typed(kid=os.urandom(8).hex()), attacker()) for _ in range(1000)]
    results = await asyncio.gather(
        *(validator.access_token(t, expect) for t in tokens), return_exceptions=True
    )
    assert all(isinstance(r, TokenError) and r.code == "unknown_key" for r in results)
    assert len(keys.calls) == 1000
    assert (await validator.access_token(at(typed()), expect)).sub == "user-1"


@pytest.mark.parametrize("alg", ["HS256", "HS384", "HS512", "hs256", "none"])
def test_row23_hmac_and_none_refused_at_configuration(alg: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        TokenValidator(issuer=ISSUER, keys=StaticKeys(jwks()), algorithms=("RS256", alg))
    assert info.value.code == "insecure_algorithm"


def _weak_rsa_jwk(signer_key: rsa.RSAPrivateKey, **override: Any) -> dict[str, Any]:
    jwk = public_jwk(signer_key)
    jwk.update({"kid": "weak", "alg": "RS256", **override})
    return jwk


def _off_curve(jwk: dict[str, Any]) -> dict[str, Any]:
    y = bytearray(__import__("base64").urlsafe_b64decode(jwk["y"] + "=="))
    y[-1] ^= 1
    return {**jwk, "y": b64(bytes(y)), "kid": "weak"}


def _weak_rsa_1024() -> tuple[dict[str, Any], Signer]:
    key = rsa.generate_private_key(65537, 1024)
    return _weak_rsa_jwk(key), Signer("weak", "RS256", key)


def _weak_rsa_e3() -> tuple[dict[str, Any], Signer]:
    key = rsa.generate_private_key(3, 2048)
    return _weak_rsa_jwk(key), Signer("weak", "RS256", key)


def _rs_weak(jwk: dict[str, Any]) -> tuple[dict[str, Any], Signer]:
    return jwk, Signer("weak", "RS256", rs().private_key)


WEAK_KEYS: dict[str, Callable[[], tuple[dict[str, Any], Signer]]] = {
    "rsa-1024": _weak_rsa_1024,
    "rsa-e-3": _weak_rsa_e3,
    "rsa-e-1": lambda: _rs_weak({**rs().public_jwk(kid="weak"), "e": "AQ"}),
    "ec-off-curve": lambda: (
        _off_curve(es().public_jwk()),
        Signer("weak", "ES256", es().private_key),
    ),
    "private-d-present": lambda: _rs_weak({**rs().public_jwk(kid="weak"), "d": "AQAB"}),
    "oct-symmetric": lambda: _rs_weak(
        {"kty": "oct", "k": b64(b"s" * 32), "kid": "weak", "alg": "HS256"}
    ),
    "use-enc": lambda: _rs_weak({**rs().public_jwk(kid="weak"), "use": "enc"}),
    "key-ops-sign-only": lambda: _rs_weak({**rs().public_jwk(kid="weak"), "key_ops": ["sign"]}),
}


@pytest.mark.parametrize("build", WEAK_KEYS.values(), ids=WEAK_KEYS.keys())
async def test_row24_weak_or_unusable_jwks_keys_are_ignored(
    build: Callable[[], tuple[dict[str, Any], Signer]],
) -> None:
    jwk, signer = build()
    keys = CountingKeys(StaticKeys({"keys": [jwk]}))
    validator = TokenValidator(issuer=ISSUER, keys=keys, now=lambda: NOW)
    token = mint(header(signer, "at+jwt"), at_claims(), signer)
    with pytest.raises(TokenError) as info:
        await validator.access_token(token, AccessTokenExpectations(audience=API))
    assert info.value.code == "unknown_key"


async def test_keysource_returning_a_wrong_type_key_is_not_used() -> None:
    """Defence in depth: a KeySource that ignores ``alg`` cannot make an EC key verify RS256."""

    class Sloppy:
        async def candidates(self, *, kid: str | None, alg: str) -> Sequence[VerificationKey]:
            return StaticKeys({"keys": [es().public_jwk()]}).keys

    validator = TokenValidator(issuer=ISSUER, keys=Sloppy(), now=lambda: NOW)
    with pytest.raises(TokenError) as info:
        await validator.access_token(at(typed()), AccessTokenExpectations(audience=API))
    assert info.value.code == "invalid_signature"


# --- end to end with the real Provider: zero fetches for jku/x5u, bounded refetch on flood ---


class _IdP:
    def __init__(self) -> None:
        self.paths: list[str] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.paths.append(f"{request.url.host}{request.url.path}")
        if request.url.host != "idp.example.com":
            return httpx.Response(200, json={"keys": [attacker().public_jwk(kid="evil")]})
        if request.url.path.endswith("/.well-known/openid-configuration"):
            return httpx.Response(
                200, json={"issuer": ISSUER, "jwks_uri": "https://idp.example.com/t1/jwks"}
            )
        if request.url.path == "/t1/jwks":
            return httpx.Response(200, json=jwks())
        return httpx.Response(404)


async def test_provider_end_to_end_jku_x5u_and_kid_flood_fetch_counts() -> None:
    idp = _IdP()
    clock = [NOW]
    async with httpx.AsyncClient(transport=httpx.MockTransport(idp)) as client:
        provider = Provider(ISSUER, http_client=client, now=lambda: clock[0])
        validator = TokenValidator(issuer=ISSUER, keys=provider, now=lambda: clock[0])
        expect = AccessTokenExpectations(audience=API)
        assert (await validator.access_token(at(typed()), expect)).sub == "user-1"
        warm = len(idp.paths)
        for extra in ({"jku": "https://evil.test/jwks"}, {"x5u": "https://evil.test/x5u"}):
            token = at({"alg": "RS256", "kid": "evil", "typ": "at+jwt", **extra}, attacker())
            with pytest.raises(TokenError) as info:
                await validator.access_token(token, expect)
            assert info.value.code == "unknown_key"
        assert not [p for p in idp.paths if not p.startswith("idp.example.com")]
        after_jku = len(idp.paths)
        assert after_jku - warm <= 1  # at most one refetch of the issuer's own JWKS
        clock[0] += 60  # past the cooldown: a flood still costs at most one refetch
        tokens = [at(typed(kid=os.urandom(8).hex()), attacker()) for _ in range(1000)]
        results = await asyncio.gather(
            *(validator.access_token(t, expect) for t in tokens), return_exceptions=True
        )
        assert all(isinstance(r, TokenError) and r.code == "unknown_key" for r in results)
        assert len(idp.paths) - after_jku <= 1
        assert (await validator.access_token(at(typed()), expect)).sub == "user-1"
        await provider.aclose()
