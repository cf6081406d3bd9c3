"""The resource-server side (``oidc_asgi.bearer``) against node-oidc-provider's tokens.

Opaque tokens through our ``Introspector`` (RFC 7662), JWTs verified locally (note 2: the
provider refuses to introspect its own JWTs), and DPoP-bound tokens (RFC 9449): the provider
binds a token when the client sends a proof to the token endpoint; our validator accepts it
with a proof for the request and refuses it as a bearer token (note 12). Proofs are ES256
JWTs written here with joserfc.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from joserfc import jwt
from joserfc.jwk import ECKey

from oidc_asgi.bearer import BearerConfig, BearerValidator, DPoPSettings, Introspector
from oidc_asgi.client import OAuthClient
from oidc_asgi.errors import TokenError
from oidc_asgi.provider import Provider

from ._demos import user_token
from ._node_op import API, OPAQUE_API, NodeOP

pytestmark = pytest.mark.service("node")

API_ORIGIN = "http://127.0.0.1:8001"


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=10) as client:
        yield client


@pytest.fixture
def provider(node_op: NodeOP, http: httpx.AsyncClient) -> Provider:
    return Provider(node_op.issuer, http_client=http)


# --------------------------------------------------------------------------- introspection


async def test_opaque_tokens_are_introspected_jwts_verified_locally_rfc7662(
    node_op: NodeOP, http: httpx.AsyncClient, provider: Provider
) -> None:
    api = await OAuthClient.from_provider(
        provider,
        client_id="messages-api",
        client_secret="messages-api-secret",
        http_client=http,
    )
    introspector = Introspector(api, provider=provider)
    validator = BearerValidator(
        BearerConfig(issuer=node_op.issuer, audience=(OPAQUE_API, API)),
        http_client=http,
        introspection=introspector,
    )
    opaque = await user_token(node_op, http, user="rita", resource=OPAQUE_API, scope="read:reports")
    assert opaque.count(".") != 2
    principal = await validator.validate(opaque)
    assert principal.subject == "rita"
    assert principal.client_id == "web"
    assert principal.scopes == frozenset({"read:reports"})
    assert introspector.calls == 1
    jwt_token = await user_token(node_op, http, user="rita", resource=API, scope="read:messages")
    assert (await validator.validate(jwt_token)).subject == "rita"
    assert introspector.calls == 1  # a JWT is never sent to introspection (note 2)
    # An unknown opaque token: the provider says inactive.
    with pytest.raises(TokenError) as caught:
        await validator.validate(secrets.token_urlsafe(32))
    assert caught.value.code == "inactive_token"


# --------------------------------------------------------------------------- DPoP


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


class _Proofs:
    """A client's DPoP key and proofs (RFC 9449 section 4.2), ES256 (note 12)."""

    def __init__(self) -> None:
        self.key = ECKey.import_key(ec.generate_private_key(ec.SECP256R1()))
        self.public = {k: v for k, v in self.key.as_dict(private=False).items() if k != "kid"}

    def proof(self, method: str, url: str, *, access_token: str | None = None, **extra: Any) -> str:
        claims: dict[str, Any] = {
            "jti": secrets.token_urlsafe(16),
            "htm": method,
            "htu": url,
            "iat": int(time.time()),
        }
        if access_token is not None:
            claims["ath"] = _b64(hashlib.sha256(access_token.encode("ascii")).digest())
        claims.update(extra)
        header = {"typ": "dpop+jwt", "alg": "ES256", "jwk": self.public}
        return jwt.encode(header, claims, self.key)


@pytest.fixture
async def dpop_token(node_op: NodeOP, http: httpx.AsyncClient) -> tuple[str, _Proofs]:
    """A client-credentials token for the API, bound to a DPoP key at the token endpoint."""
    proofs = _Proofs()
    token_endpoint = f"{node_op.issuer}/token"
    answer = await http.post(
        token_endpoint,
        data={"grant_type": "client_credentials", "resource": API, "scope": "read:messages"},
        auth=("daemon", "daemon-secret"),
        headers={"DPoP": proofs.proof("POST", token_endpoint)},
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["token_type"] == "DPoP"  # RFC 9449 section 5
    return body["access_token"], proofs


def _request(
    scheme: str, token: str, proof: str | None, method: str = "GET", path: str = "/api/messages"
) -> dict[str, Any]:
    headers = [(b"host", b"127.0.0.1:8001"), (b"authorization", f"{scheme} {token}".encode())]
    if proof is not None:
        headers.append((b"dpop", proof.encode()))
    return {
        "type": "http",
        "method": method,
        "scheme": "http",
        "server": ("127.0.0.1", 8001),
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": headers,
    }


def _validator(node_op: NodeOP, http: httpx.AsyncClient) -> BearerValidator:
    return BearerValidator(
        BearerConfig(issuer=node_op.issuer, audience=API, dpop=DPoPSettings()), http_client=http
    )


async def test_dpop_bound_token_accepted_with_a_proof_rfc9449_7_1(
    node_op: NodeOP, http: httpx.AsyncClient, dpop_token: tuple[str, _Proofs]
) -> None:
    token, proofs = dpop_token
    proof = proofs.proof("GET", f"{API_ORIGIN}/api/messages", access_token=token)
    principal = await _validator(node_op, http).authenticate(_request("DPoP", token, proof))
    assert principal.subject == "daemon"
    assert principal.jkt is not None  # bound: cnf.jkt (RFC 9449 section 6.1)


Case = Callable[[str, _Proofs], dict[str, Any]]

DPOP_REJECTIONS: list[Any] = [
    pytest.param(
        lambda t, p: _request("Bearer", t, None), "dpop_bound_token", id="bound-token-as-bearer"
    ),
    pytest.param(
        lambda t, p: _request(
            "Bearer", t, p.proof("GET", f"{API_ORIGIN}/api/messages", access_token=t)
        ),
        "dpop_bound_token",
        id="bound-token-as-bearer-even-with-proof",
    ),
    pytest.param(lambda t, p: _request("DPoP", t, None), "invalid_dpop_proof", id="no-proof"),
    pytest.param(
        lambda t, p: _request(
            "DPoP", t, p.proof("POST", f"{API_ORIGIN}/api/messages", access_token=t)
        ),
        "invalid_dpop_proof",
        id="proof-for-another-method",
    ),
    pytest.param(
        lambda t, p: _request("DPoP", t, p.proof("GET", f"{API_ORIGIN}/api/other", access_token=t)),
        "invalid_dpop_proof",
        id="proof-for-another-url",
    ),
    pytest.param(
        lambda t, p: _request("DPoP", t, p.proof("GET", f"{API_ORIGIN}/api/messages")),
        "invalid_dpop_proof",
        id="proof-without-ath",
    ),
    pytest.param(
        lambda t, p: _request(
            "DPoP", t, _Proofs().proof("GET", f"{API_ORIGIN}/api/messages", access_token=t)
        ),
        "invalid_dpop_proof",
        id="proof-from-another-key",
    ),
]


@pytest.mark.parametrize(("case", "code"), DPOP_REJECTIONS)
async def test_dpop_bound_token_rejections_rfc9449_7(
    node_op: NodeOP,
    http: httpx.AsyncClient,
    dpop_token: tuple[str, _Proofs],
    case: Case,
    code: str,
) -> None:
    token, proofs = dpop_token
    with pytest.raises(TokenError) as caught:
        await _validator(node_op, http).authenticate(case(token, proofs))
    assert caught.value.code == code


async def test_dpop_proof_replay_is_refused_rfc9449_11_1(
    node_op: NodeOP, http: httpx.AsyncClient, dpop_token: tuple[str, _Proofs]
) -> None:
    token, proofs = dpop_token
    validator = _validator(node_op, http)
    proof = proofs.proof("GET", f"{API_ORIGIN}/api/messages", access_token=token)
    await validator.authenticate(_request("DPoP", token, proof))
    with pytest.raises(TokenError) as caught:
        await validator.authenticate(_request("DPoP", token, proof))
    assert caught.value.code == "invalid_dpop_proof"
    assert caught.value.claim == "jti"
