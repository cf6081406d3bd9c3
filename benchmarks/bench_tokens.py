"""Access-token validation (RFC 9068) against PyJWT and the bare signature check.

Baseline: PyJWT's ``jwt.decode`` with the key already imported (the most common hand-written
approach, minus its JWKS fetching). Floor: ``cryptography`` verifying the signature alone.
Ratios below 1.0 mean faster than the baseline.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import jwt as pyjwt
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from benchmarks._harness import Case, compare
from oidc_asgi import AccessTokenExpectations, TokenValidator
from oidc_asgi._jwks import StaticKeys

ISSUER = "https://issuer.example"
AUDIENCE = "https://api.example"


def _claims() -> dict[str, Any]:
    now = int(time.time())
    return {
        "iss": ISSUER,
        "sub": "user-1",
        "aud": AUDIENCE,
        "iat": now,
        "nbf": now,
        "exp": now + 3600,
        "jti": uuid.uuid4().hex,
        "client_id": "app",
        "scope": "read:messages write:messages",
    }


def _run(alg: str, private_key: Any, public_jwk: dict[str, Any]) -> None:
    header = {"kid": "k1", "typ": "at+jwt"}
    tokens = [
        pyjwt.encode(_claims(), private_key, algorithm=alg, headers=header) for _ in range(64)
    ]
    public_key = private_key.public_key()
    validator = TokenValidator(
        issuer=ISSUER, keys=StaticKeys({"keys": [public_jwk]}), algorithms=[alg]
    )
    expect = AccessTokenExpectations(audience=AUDIENCE)

    def pyjwt_decode(n: int) -> None:
        for i in range(n):
            pyjwt.decode(tokens[i % 64], public_key, algorithms=[alg], audience=AUDIENCE)

    def ours(n: int) -> None:
        async def loop() -> None:
            for i in range(n):
                await validator.access_token(tokens[i % 64], expect)

        asyncio.run(loop())

    signing_inputs = []
    for token in tokens:
        head, payload, sig = token.split(".")
        signing_inputs.append(((head + "." + payload).encode(), pyjwt.utils.base64url_decode(sig)))

    def floor(n: int) -> None:
        for i in range(n):
            data, sig = signing_inputs[i % 64]
            if alg == "RS256":
                public_key.verify(sig, data, padding.PKCS1v15(), hashes.SHA256())
            else:
                r = int.from_bytes(sig[:32], "big")
                s = int.from_bytes(sig[32:], "big")
                public_key.verify(encode_dss_signature(r, s), data, ec.ECDSA(hashes.SHA256()))

    compare(
        f"{alg} access token validation",
        Case("PyJWT decode (baseline)", pyjwt_decode),
        [
            Case("oidc_asgi TokenValidator.access_token", ours),
            Case("signature only (floor)", floor),
        ],
    )


def main() -> None:
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    rsa_jwk = pyjwt.algorithms.RSAAlgorithm.to_jwk(rsa_key.public_key(), as_dict=True)
    _run("RS256", rsa_key, {**rsa_jwk, "kid": "k1"})
    ec_key = ec.generate_private_key(ec.SECP256R1())
    ec_jwk = pyjwt.algorithms.ECAlgorithm.to_jwk(ec_key.public_key(), as_dict=True)
    _run("ES256", ec_key, {**ec_jwk, "kid": "k1"})


if __name__ == "__main__":
    main()
