"""DPoP at the resource server (RFC 9449): every check of sections 4.3 and 7, replay, nonces."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from oidc_asgi.bearer import (
    BearerValidator,
    DPoPSettings,
    DPoPVerifier,
    MemoryReplayStore,
    Principal,
)
from oidc_asgi.bearer._dpop import jwk_thumbprint, normalize_htu
from oidc_asgi.errors import ConfigurationError, ProviderUnavailable, TokenError
from oidc_asgi.testing import DevProvider
from oidc_asgi.testing._keys import SigningKey, b64url, encode_jws, public_jwk, raw_sign

from ._support import START, Clock, http_scope
from .conftest import MakeValidator, MintToken

HTU = "https://api.example.com/messages"


class DPoPClient:
    """A client holding a DPoP key: makes proofs and knows its ``jkt``."""

    def __init__(self, key: SigningKey) -> None:
        self.key = key
        self.jwk = public_jwk(key.private_key.public_key())
        self.jkt = jwk_thumbprint(self.jwk)

    def proof(
        self,
        token: str,
        *,
        header: dict[str, Any] | None = None,
        drop: tuple[str, ...] = (),
        signer: SigningKey | None = None,
        **claims: Any,
    ) -> str:
        body: dict[str, Any] = {
            "jti": str(uuid.uuid4()),
            "htm": "GET",
            "htu": HTU,
            "iat": int(START),
            "ath": b64url(hashlib.sha256(token.encode()).digest()),
        }
        body.update(claims)
        for name in drop:
            body.pop(name, None)
        head: dict[str, Any] = {"typ": "dpop+jwt", "alg": self.key.alg, "jwk": self.jwk}
        head.update(header or {})
        head = {k: v for k, v in head.items() if v is not None}
        key = signer or self.key
        return encode_jws(head, body, lambda data: raw_sign(key.private_key, key.alg, data))


@pytest.fixture(scope="session")
def client_key() -> SigningKey:
    return SigningKey.generate("ES256")


@pytest.fixture
def client(client_key: SigningKey) -> DPoPClient:
    return DPoPClient(client_key)


@pytest.fixture
def dpop_validator(make_validator: MakeValidator) -> BearerValidator:
    return make_validator(dpop=DPoPSettings())


def request(
    token: str, proof: str | list[str] | None, *, method: str = "GET", scheme: str = "DPoP"
) -> dict[str, Any]:
    headers = [("Host", "api.example.com"), ("Authorization", f"{scheme} {token}")]
    for value in [proof] if isinstance(proof, str) else proof or []:
        headers.append(("DPoP", value))
    return http_scope(headers, method=method, path="/messages")


def bound(mint: MintToken, client: DPoPClient) -> str:
    return mint(claims={"cnf": {"jkt": client.jkt}})


async def test_valid_proof_rfc9449_s4_3(
    dpop_validator: BearerValidator, mint: MintToken, client: DPoPClient
) -> None:
    token = bound(mint, client)
    principal = await dpop_validator.authenticate(request(token, client.proof(token)))
    assert principal.token_type == "DPoP"
    assert principal.jkt == client.jkt


@pytest.mark.parametrize(
    "htu",
    [
        pytest.param(HTU + "?page=2", id="query-ignored"),
        pytest.param(HTU + "#frag", id="fragment-ignored"),
        pytest.param("HTTPS://API.EXAMPLE.COM:443/messages", id="case-and-default-port"),
        pytest.param("https://api.example.com/./x/../messages", id="dot-segments"),
        pytest.param("https://api.example.com/%6Dessages", id="percent-unreserved"),
    ],
)
async def test_htu_normalisation_accepts(
    dpop_validator: BearerValidator, mint: MintToken, client: DPoPClient, htu: str
) -> None:
    token = bound(mint, client)
    await dpop_validator.authenticate(request(token, client.proof(token, htu=htu)))


_OTHER_KEY = SigningKey.generate("ES256")  # cheap (EC), so made at import


def _cases() -> dict[str, tuple[Callable[[DPoPClient, str], str | list[str]], str, str | None]]:
    """case -> (proof builder, error code, claim)."""
    other_key = _OTHER_KEY
    stranger = DPoPClient(other_key)
    return {
        "typ-jwt": (lambda c, t: c.proof(t, header={"typ": "JWT"}), "invalid_dpop_proof", "typ"),
        "typ-absent": (lambda c, t: c.proof(t, header={"typ": None}), "invalid_dpop_proof", "typ"),
        "alg-none": (
            lambda c, t: encode_jws(
                {"typ": "dpop+jwt", "alg": "none", "jwk": c.jwk},
                json.loads(_payload(c.proof(t))),
                lambda _: b"",
            ),
            "invalid_dpop_proof",
            "alg",
        ),
        "alg-hs256": (
            lambda c, t: c.proof(t, header={"alg": "HS256"}),
            "invalid_dpop_proof",
            "alg",
        ),
        "alg-not-allowed": (
            lambda c, t: c.proof(t, header={"alg": "ES512"}),
            "invalid_dpop_proof",
            "alg",
        ),
        "alg-mismatches-jwk": (
            lambda c, t: c.proof(t, header={"alg": "RS256"}),
            "invalid_dpop_proof",
            "jwk",
        ),
        "jwk-private-d": (
            lambda c, t: c.proof(t, header={"jwk": {**c.jwk, "d": "AAAA"}}),
            "invalid_dpop_proof",
            "jwk",
        ),
        "jwk-absent": (lambda c, t: c.proof(t, header={"jwk": None}), "invalid_dpop_proof", "jwk"),
        "jwk-kid-only": (
            lambda c, t: c.proof(t, header={"jwk": None, "kid": "k1"}),
            "invalid_dpop_proof",
            "jwk",
        ),
        "signed-by-other-key": (
            lambda c, t: c.proof(t, signer=other_key),
            "invalid_dpop_proof",
            "signature",
        ),
        "crit": (
            lambda c, t: c.proof(t, header={"crit": ["x"], "x": 1}),
            "invalid_dpop_proof",
            "crit",
        ),
        "htm-post-for-get": (lambda c, t: c.proof(t, htm="POST"), "invalid_dpop_proof", "htm"),
        "htm-lowercase": (lambda c, t: c.proof(t, htm="get"), "invalid_dpop_proof", "htm"),
        "htu-other-host": (
            lambda c, t: c.proof(t, htu="https://evil.example.com/messages"),
            "invalid_dpop_proof",
            "htu",
        ),
        "htu-other-path": (
            lambda c, t: c.proof(t, htu="https://api.example.com/admin"),
            "invalid_dpop_proof",
            "htu",
        ),
        "htu-http-scheme": (
            lambda c, t: c.proof(t, htu="http://api.example.com/messages"),
            "invalid_dpop_proof",
            "htu",
        ),
        "htu-not-string": (lambda c, t: c.proof(t, htu=["x"]), "invalid_dpop_proof", "htu"),
        "iat-too-old": (lambda c, t: c.proof(t, iat=int(START) - 400), "invalid_dpop_proof", "iat"),
        "iat-future": (lambda c, t: c.proof(t, iat=int(START) + 60), "invalid_dpop_proof", "iat"),
        "iat-string": (lambda c, t: c.proof(t, iat=str(int(START))), "invalid_dpop_proof", "iat"),
        "iat-absent": (lambda c, t: c.proof(t, drop=("iat",)), "invalid_dpop_proof", "iat"),
        "jti-absent": (lambda c, t: c.proof(t, drop=("jti",)), "invalid_dpop_proof", "jti"),
        "jti-huge": (lambda c, t: c.proof(t, jti="j" * 300), "invalid_dpop_proof", "jti"),
        "ath-absent": (lambda c, t: c.proof(t, drop=("ath",)), "invalid_dpop_proof", "ath"),
        "ath-other-token": (
            lambda c, t: c.proof(t, ath=b64url(hashlib.sha256(b"other").digest())),
            "invalid_dpop_proof",
            "ath",
        ),
        "key-not-the-bound-key": (
            lambda c, t: stranger.proof(t),
            "invalid_dpop_proof",
            "cnf",
        ),
        "garbage-proof": (lambda c, t: "not-a-jwt", "invalid_dpop_proof", "DPoP"),
        "no-proof": (lambda c, t: [], "invalid_dpop_proof", "DPoP"),
        "two-proofs": (lambda c, t: [c.proof(t), c.proof(t)], "multiple_dpop_proofs", None),
    }


def _payload(jws: str) -> bytes:
    import base64

    segment = jws.split(".")[1]
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


CASE_IDS = sorted(_cases())


@pytest.mark.parametrize("case", CASE_IDS)
async def test_proof_checks_rfc9449_s4_3(
    dpop_validator: BearerValidator,
    mint: MintToken,
    client: DPoPClient,
    case: str,
) -> None:
    build, code, claim = _cases()[case]
    token = bound(mint, client)
    with pytest.raises(TokenError) as info:
        await dpop_validator.authenticate(request(token, build(client, token)))
    assert info.value.code == code
    assert info.value.claim == claim
    challenge = dpop_validator.challenge(info.value, request(token, None))
    assert challenge.status == (400 if code == "multiple_dpop_proofs" else 401)
    assert token not in json.dumps(challenge.headers)


async def test_replayed_proof_rejected_rfc9449_s11_1(
    dpop_validator: BearerValidator, mint: MintToken, client: DPoPClient
) -> None:
    token = bound(mint, client)
    proof = client.proof(token)
    await dpop_validator.authenticate(request(token, proof))
    with pytest.raises(TokenError) as info:
        await dpop_validator.authenticate(request(token, proof))
    assert (info.value.code, info.value.claim) == ("invalid_dpop_proof", "jti")
    # A fresh proof with the cached token works: the token cache never skips the proof.
    await dpop_validator.authenticate(request(token, client.proof(token)))


@pytest.mark.parametrize(
    ("alg", "key"),
    [pytest.param("EdDSA", "EdDSA", id="eddsa"), pytest.param("RS256", "RS256", id="rs256")],
)
async def test_other_proof_algorithms(
    dpop_validator: BearerValidator, mint: MintToken, dev: DevProvider, alg: str, key: str
) -> None:
    client = DPoPClient(dev.signing_key(key))
    token = bound(mint, client)
    await dpop_validator.authenticate(request(token, client.proof(token)))


async def test_post_request_with_post_proof(
    dpop_validator: BearerValidator, mint: MintToken, client: DPoPClient
) -> None:
    token = bound(mint, client)
    await dpop_validator.authenticate(
        request(token, client.proof(token, htm="POST"), method="POST")
    )


@pytest.mark.parametrize(
    ("scheme", "claims", "code"),
    [
        pytest.param("Bearer", "bound", "dpop_bound_token", id="bound-token-as-bearer-s7-2"),
        pytest.param("DPoP", "unbound", "unbound_token", id="unbound-token-as-dpop"),
    ],
)
async def test_scheme_and_binding_must_agree(
    dpop_validator: BearerValidator,
    mint: MintToken,
    client: DPoPClient,
    scheme: str,
    claims: str,
    code: str,
) -> None:
    token = bound(mint, client) if claims == "bound" else mint()
    with pytest.raises(TokenError) as info:
        await dpop_validator.authenticate(request(token, client.proof(token), scheme=scheme))
    assert info.value.code == code
    assert dpop_validator.challenge(info.value).status == 401


async def test_bearer_still_works_when_dpop_allowed(
    dpop_validator: BearerValidator, mint: MintToken
) -> None:
    principal = await dpop_validator.authenticate(request(mint(), None, scheme="Bearer"))
    assert principal.token_type == "Bearer"


async def test_required_mode_refuses_bearer(make_validator: MakeValidator, mint: MintToken) -> None:
    validator = make_validator(dpop=DPoPSettings(required=True, algorithms=["ES256"]))
    with pytest.raises(TokenError) as info:
        await validator.authenticate(request(mint(), None, scheme="Bearer"))
    assert info.value.code == "dpop_required"
    challenge = validator.challenge(info.value, request(mint(), None, scheme="Bearer"))
    assert challenge.headers == (
        (
            "WWW-Authenticate",
            'DPoP realm="api", error="invalid_token", '
            'error_description="the access token must be sent with DPoP", algs="ES256"',
        ),
    )


async def test_server_nonce_rfc9449_s9(
    make_validator: MakeValidator, mint: MintToken, client: DPoPClient, clock: Clock
) -> None:
    validator = make_validator(dpop=DPoPSettings(use_nonce=True, nonce_lifetime=60))
    token = bound(mint, client)
    with pytest.raises(TokenError) as info:
        await validator.authenticate(request(token, client.proof(token)))
    assert info.value.code == "use_dpop_nonce"
    challenge = validator.challenge(info.value, request(token, None))
    headers = dict(challenge.headers)
    assert challenge.status == 401
    assert headers["WWW-Authenticate"].startswith('DPoP realm="api", error="use_dpop_nonce"')
    nonce = headers["DPoP-Nonce"]
    await validator.authenticate(request(token, client.proof(token, nonce=nonce)))
    for bad in (nonce[:-2] + "AA", "x" * 32, 12):
        with pytest.raises(TokenError) as info:
            await validator.authenticate(request(token, client.proof(token, nonce=bad)))
        assert info.value.code == "use_dpop_nonce"
    clock.advance(61)
    with pytest.raises(TokenError) as info:
        await validator.authenticate(
            request(token, client.proof(token, nonce=nonce, iat=int(clock())))
        )
    assert info.value.code == "use_dpop_nonce"


async def test_public_origin_behind_proxy(
    make_validator: MakeValidator, mint: MintToken, client: DPoPClient
) -> None:
    validator = make_validator(dpop=DPoPSettings(public_origin="https://api.example.com"))
    token = bound(mint, client)
    scope = request(token, client.proof(token))
    scope["scheme"] = "http"  # what the app sees behind a TLS-terminating proxy
    scope["headers"] = [(b"host", b"10.0.0.5:8000"), *scope["headers"][1:]]
    await validator.authenticate(scope)


async def test_both_challenges_end_to_end(
    make_validator: MakeValidator, mint: MintToken, client: DPoPClient
) -> None:
    from .test_fastapi import build_app

    app, _ = build_app(make_validator(dpop=DPoPSettings(algorithms=["ES256", "EdDSA"])))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="https://api.example.com"
    ) as http:
        none = await http.get("/messages")
        assert none.status_code == 401
        assert none.headers["www-authenticate"] == 'Bearer realm="api", DPoP algs="ES256 EdDSA"'
        token = bound(mint, client)
        ok = await http.get(
            "/messages",
            headers={"Authorization": f"DPoP {token}", "DPoP": client.proof(token)},
        )
        assert ok.status_code == 200
        replay = await http.get(
            "/messages",
            headers={"Authorization": f"DPoP {token}", "DPoP": client.proof(token, htm="POST")},
        )
        assert replay.status_code == 401
        assert replay.headers["www-authenticate"] == (
            'Bearer realm="api", DPoP realm="api", error="invalid_dpop_proof", '
            'error_description="the DPoP proof is invalid", algs="ES256 EdDSA"'
        )


# -- helpers ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://a.example/x", "https://a.example/x"),
        ("HTTPS://A.Example:443", "https://a.example/"),
        ("http://a.example:80/a/b/../c/./d", "http://a.example/a/c/d"),
        ("https://a.example:8443/%7euser/%2f", "https://a.example:8443/~user/%2F"),
        ("https://[::1]:8443/x?y#z", "https://[::1]:8443/x"),
        ("ftp://a.example/x", None),
        ("https://user@a.example/x", None),
        ("https://a.example:99999/x", None),
        ("/relative", None),
    ],
)
def test_normalize_htu_rfc3986_s6_2(url: str, expected: str | None) -> None:
    assert normalize_htu(url) == expected


def test_jwk_thumbprint_rfc7638_s3_1() -> None:
    # The example of RFC 7638 section 3.1.
    jwk = {
        "kty": "RSA",
        "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6"
        "tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65Y"
        "GjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-"
        "bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
        "e": "AQAB",
        "alg": "RS256",
        "kid": "2011-04-29",
    }
    assert jwk_thumbprint(jwk) == "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
    with pytest.raises(ValueError, match="required members"):
        jwk_thumbprint({"kty": "EC", "crv": "P-256"})


async def test_memory_replay_store_expires_and_is_bounded() -> None:
    clock = Clock()
    store = MemoryReplayStore(max_entries=3, now=clock)
    assert not await store.seen("a", clock() + 10)
    assert await store.seen("a", clock() + 10)
    clock.advance(11)
    assert not await store.seen("a", clock() + 10)
    for key in ("b", "c"):
        assert not await store.seen(key, clock() + 10)
    with pytest.raises(ProviderUnavailable) as info:
        await store.seen("d", clock() + 10)
    assert info.value.code == "replay_store_full"
    assert len(store) == 3


async def test_memory_replay_store_reclaims_by_expiry_not_insertion_rfc9449_s11_1() -> None:
    # Expiry follows each client's iat: the first entry recorded may be the last to expire.
    clock = Clock()
    store = MemoryReplayStore(max_entries=3, now=clock)
    assert not await store.seen("late", clock() + 100)
    assert not await store.seen("early", clock() + 10)
    assert not await store.seen("middle", clock() + 50)
    clock.advance(20)  # only "early" has expired
    assert not await store.seen("new", clock() + 100)
    assert len(store) == 3
    assert await store.seen("late", clock() + 100)
    assert await store.seen("middle", clock() + 100)
    clock.advance(100)  # everything has expired: all of it is reclaimed
    for key in ("w", "x", "y"):
        assert not await store.seen(key, clock() + 10)
    assert len(store) == 3


async def test_memory_replay_store_full_fails_closed_with_retry_after() -> None:
    clock = Clock()
    store = MemoryReplayStore(max_entries=2, now=clock)
    assert not await store.seen("a", clock() + 30)
    assert not await store.seen("b", clock() + 12.5)
    with pytest.raises(ProviderUnavailable) as info:
        await store.seen("c", clock() + 30)
    assert (info.value.code, info.value.retry_after) == ("replay_store_full", 13)
    assert len(store) == 2
    clock.advance(13)  # "b" expired: room again
    assert not await store.seen("c", clock() + 30)


async def test_replay_after_flood_still_refused_rfc9449_s11_1(
    make_validator: MakeValidator, mint: MintToken, client: DPoPClient, clock: Clock, http: Any
) -> None:
    config = make_validator(dpop=DPoPSettings()).config
    settings = config.dpop or DPoPSettings()
    store = MemoryReplayStore(max_entries=4, now=clock)
    validator = BearerValidator(
        config,
        http_client=http,
        now=clock,
        dpop_verifier=DPoPVerifier(settings, replay_store=store, now=clock),
    )
    token = bound(mint, client)
    victim = client.proof(token, iat=int(START))
    await validator.authenticate(request(token, victim))
    # A flood of valid proofs, some with an older iat (so an earlier expiry) than the victim.
    flood = [client.proof(token, iat=int(START) - 100 + i) for i in range(3)]
    for proof in flood:
        await validator.authenticate(request(token, proof))
    extra = request(token, client.proof(token))
    with pytest.raises(ProviderUnavailable) as full:
        await validator.authenticate(extra)
    assert full.value.code == "replay_store_full"
    challenge = validator.challenge(full.value, extra)
    assert challenge.status == 503
    # The flood's proofs expire first: iat - 100 + window + leeway, i.e. in 205 seconds.
    assert challenge.header_dict()["Retry-After"] == "205"
    assert "WWW-Authenticate" not in challenge.header_dict()
    with pytest.raises(TokenError) as replay:
        await validator.authenticate(request(token, victim))
    assert (replay.value.code, replay.value.claim) == ("invalid_dpop_proof", "jti")
    clock.advance(206)  # the flood's proofs expired; the victim's is still live
    await validator.authenticate(request(token, client.proof(token, iat=int(clock()))))
    with pytest.raises(TokenError) as again:
        await validator.authenticate(request(token, victim))
    assert (again.value.code, again.value.claim) == ("invalid_dpop_proof", "jti")


@pytest.mark.parametrize(
    "overrides",
    [
        pytest.param({"algorithms": ["HS256"]}, id="mac-alg"),
        pytest.param({"algorithms": []}, id="no-alg"),
        pytest.param({"iat_window": -1}, id="negative-window"),
        pytest.param({"nonce_secret": b"short"}, id="short-nonce-secret"),
        pytest.param({"public_origin": "https://api.example.com/base"}, id="origin-with-path"),
        pytest.param({"public_origin": "api.example.com"}, id="origin-without-scheme"),
    ],
)
def test_dpop_settings_fail_at_startup(overrides: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError):
        DPoPSettings(**overrides)


async def test_shared_replay_store(
    make_validator: MakeValidator, mint: MintToken, client: DPoPClient, clock: Clock, http: Any
) -> None:
    store = MemoryReplayStore(now=clock)
    config = make_validator(dpop=DPoPSettings()).config
    one = BearerValidator(
        config,
        http_client=http,
        now=clock,
        dpop_verifier=DPoPVerifier(config.dpop or DPoPSettings(), replay_store=store, now=clock),
    )
    two = BearerValidator(
        config,
        http_client=http,
        now=clock,
        dpop_verifier=DPoPVerifier(config.dpop or DPoPSettings(), replay_store=store, now=clock),
    )
    token = bound(mint, client)
    proof = client.proof(token)
    assert isinstance(await one.authenticate(request(token, proof)), Principal)
    with pytest.raises(TokenError):
        await two.authenticate(request(token, proof))
