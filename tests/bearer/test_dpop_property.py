"""Property: whatever ``Authorization`` and ``DPoP`` headers arrive, a DPoP-enabled API answers
200, 400, 401 or 403, never 5xx, never echoes the token or the proof (RFC 9449 4.3 and 7,
RFC 6750 section 3).

Each example sends one request to a FastAPI route protected by ``BearerAuth`` with DPoP
allowed or required. The ``DPoP`` header(s) are random text, random bytes, a fresh valid proof,
that proof with characters flipped, inserted or deleted in one segment, or a proof whose JSON
header or payload was changed in a way that must fail (wrong ``htm``, ``htu``, ``iat``, ``ath``,
``typ``, ``alg``, private ``jwk`` members, no ``jti``, ...) and re-signed, so the checks behind
the signature run too. 200 is the answer exactly when an untouched proof comes with its
DPoP-bound token under the ``DPoP`` scheme, or (DPoP allowed, not required) when an unbound
token comes under the ``Bearer`` scheme, whose requests never consult a ``DPoP`` header.
"""

# No ``from __future__ import annotations``: FastAPI must see the route annotations, which
# refer to a local ``auth``, as real objects.

import asyncio
import hashlib
import hmac
import json
import re
import uuid
from dataclasses import dataclass
from typing import Annotated, Any

import httpx
import pytest
from fastapi import FastAPI, Security
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from oidc_asgi._jwks import StaticKeys
from oidc_asgi.bearer import BearerConfig, BearerValidator, DPoPSettings, Principal
from oidc_asgi.bearer._dpop import jwk_thumbprint
from oidc_asgi.bearer.fastapi import BearerAuth
from oidc_asgi.errors import TokenError
from oidc_asgi.testing import DevProvider, KeyRing
from oidc_asgi.testing._keys import SigningKey, b64url, encode_jws, public_jwk, raw_sign

from ._support import API, START, Clock, http_scope

HTU = "https://api.test/messages"
ALGS = ("ES256", "EdDSA", "PS256", "RS256")  # DPoPSettings' default, sent in algs="..."
# A proof is valid when START - iat_window - leeway <= iat <= START + leeway (defaults).
IAT_LOW, IAT_HIGH = START - 305, START + 5

# One EC key for the provider (no RSA generation at import) and one for the DPoP client.
_CLOCK = Clock()
_PROVIDER_KEY = SigningKey.generate("ES256")
_DEV = DevProvider(keys=KeyRing([_PROVIDER_KEY]), now=_CLOCK)
_CLIENT_KEY = SigningKey.generate("ES256")
_JWK = public_jwk(_CLIENT_KEY.private_key.public_key())
BOUND = _DEV.mint_access_token(
    audience=API,
    scopes=["read:messages"],
    claims={"cnf": {"jkt": jwk_thumbprint(_JWK)}},
    alg="ES256",
)
PLAIN = _DEV.mint_access_token(audience=API, scopes=["read:messages"], alg="ES256")


def _validator(*, required: bool) -> BearerValidator:
    return BearerValidator(
        BearerConfig(issuer=_DEV.issuer, audience=API, dpop=DPoPSettings(required=required)),
        keys=StaticKeys(_DEV.jwks()),
        now=_CLOCK,
    )


def _app(validator: BearerValidator) -> FastAPI:
    auth = BearerAuth(validator, scopes={"read:messages": "Read your messages"})
    app = FastAPI()

    @app.get("/messages")
    async def read(user: Annotated[Principal, Security(auth, scopes=["read:messages"])]) -> Any:
        return {"sub": user.subject, "type": user.token_type}

    return app


VALIDATORS = {"allowed": _validator(required=False), "required": _validator(required=True)}
APPS = {variant: _app(validator) for variant, validator in VALIDATORS.items()}


# -- proofs ---------------------------------------------------------------------------------------


def _ath(token: str) -> str:
    return b64url(hashlib.sha256(token.encode()).digest())


def _fresh_parts(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    # A new jti every time: the replay store never turns a valid proof into a 401.
    header = {"typ": "dpop+jwt", "alg": "ES256", "jwk": dict(_JWK)}
    claims = {"jti": str(uuid.uuid4()), "htm": "GET", "htu": HTU, "iat": int(START)}
    claims["ath"] = _ath(token)
    return header, claims


def _sign(header: dict[str, Any], claims: dict[str, Any]) -> str:
    return encode_jws(header, claims, lambda data: raw_sign(_CLIENT_KEY.private_key, "ES256", data))


def _resign(header_b64: str, payload_b64: str) -> str:
    # Signs segments that need not be JSON at all (for "payload is not an object" cases).
    signing_input = f"{header_b64}.{payload_b64}".encode("ascii")
    signature = raw_sign(_CLIENT_KEY.private_key, "ES256", signing_input)
    return f"{header_b64}.{payload_b64}.{b64url(signature)}"


# -- strategies -----------------------------------------------------------------------------------

_LATIN1 = st.text(st.characters(min_codepoint=0x00, max_codepoint=0xFF), max_size=120)
_JSON_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
)
_JSON = st.recursive(
    _JSON_SCALARS,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=6,
)
_NOT_STRING: st.SearchStrategy[Any] = st.one_of(
    st.none(), st.booleans(), st.integers(), st.lists(_JSON_SCALARS, max_size=2), st.just({})
)
# RFC 9110 11.1: an auth-scheme is a token.
_AUTH_SCHEME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_DPOP_SPELLINGS = ("DPoP", "dpop", "DPOP")
_BEARER_SPELLINGS = ("Bearer", "bearer")


def _other_scheme(text: str) -> bool:
    match = _AUTH_SCHEME.match(text)
    return match is None or match.group().lower() not in ("dpop", "bearer")


_SCHEMES = st.one_of(
    st.sampled_from(_DPOP_SPELLINGS),
    st.sampled_from(_DPOP_SPELLINGS),
    st.sampled_from(_BEARER_SPELLINGS),
    st.sampled_from(["Basic", "MAC", "Negotiate", "DPoP-Bearer", "DPoP,"]),
    st.text(st.characters(min_codepoint=0x20, max_codepoint=0xFF), max_size=12).filter(
        _other_scheme
    ),
)
_TOKENS = st.sampled_from([BOUND, BOUND, PLAIN])


def _outside_window(value: float) -> bool:
    return not IAT_LOW <= value <= IAT_HIGH


# Each value breaks the proof on its own: (where, member, strategy of the new value).
_BREAKERS: dict[str, tuple[str, str, st.SearchStrategy[Any]]] = {
    "htm": (
        "claims",
        "htm",
        st.one_of(
            st.sampled_from(["POST", "get", "Get", "HEAD", "", " GET", "GET "]),
            st.text(max_size=8).filter(lambda s: s != "GET"),
            _NOT_STRING,
        ),
    ),
    "htu": (
        "claims",
        "htu",
        st.one_of(
            st.sampled_from(
                [
                    "http://api.test/messages",
                    "https://api.test/messages/",
                    "https://api.test/Messages",
                    "https://api.test:8443/messages",
                    "https://evil.test/messages",
                    "https://api.test.evil/messages",
                    "https://user@api.test/messages",
                    "//api.test/messages",
                    "/messages",
                    "https://[api.test/messages",
                    "https://api.test:99999/messages",
                ]
            ),
            # Nothing containing the host can be an equivalent spelling of HTU.
            st.text(max_size=60).filter(lambda s: "api.test" not in s.lower()),
            _NOT_STRING,
        ),
    ),
    "iat": (
        "claims",
        "iat",
        st.one_of(
            st.integers().filter(_outside_window),
            # Beyond float range: an int the clock arithmetic cannot convert.
            st.integers(min_value=2**1024).map(lambda v: -v),
            st.integers(min_value=2**1024),
            st.sampled_from([-(10**400), 10**400, int(IAT_LOW) - 1, int(IAT_HIGH) + 1]),
            st.floats(allow_nan=False, allow_infinity=False).filter(_outside_window),
            st.text(max_size=12),
            st.none(),
            st.booleans(),
            st.lists(st.integers(), max_size=2),
        ),
    ),
    "ath": (
        # Judged against BOUND: the proof only matters when it comes with the bound token.
        "claims",
        "ath",
        st.one_of(
            st.just(_ath(PLAIN)),
            st.just(_ath(BOUND).upper()),
            st.text(max_size=50).filter(lambda s: s != _ath(BOUND)),
            _NOT_STRING,
        ),
    ),
    "jti": (
        "claims",
        "jti",
        st.one_of(
            st.just(""),
            st.builds(lambda head, n: head + "j" * n, st.text(max_size=4), st.integers(257, 300)),
            _NOT_STRING,
        ),
    ),
    "typ": (
        "header",
        "typ",
        st.one_of(
            st.sampled_from(["JWT", "at+jwt", "dpop", "dpop+jwt ", "application/jwt"]),
            st.text(max_size=20).filter(
                lambda s: s.lower() not in ("dpop+jwt", "application/dpop+jwt")
            ),
            _NOT_STRING,
        ),
    ),
    "alg": (
        "header",
        "alg",
        st.one_of(
            st.sampled_from(["ES384", "ES512", "RS256", "PS256", "EdDSA", "es256", "none"]),
            st.text(max_size=10).filter(lambda s: s != "ES256"),
            _NOT_STRING,
        ),
    ),
    "jwk-private": (
        "header",
        "jwk",
        st.builds(
            lambda member, value: {**_JWK, member: value},
            st.sampled_from(["d", "p", "q", "dp", "dq", "qi", "oth", "k"]),
            st.one_of(st.just("AQAB"), _JSON),
        ),
    ),
    "jwk-member": (
        "header",
        "jwk",
        st.builds(
            lambda member, value: {**_JWK, member: value},
            st.sampled_from(["kty", "crv", "x", "y"]),
            _JSON,
        ).filter(lambda jwk: jwk != _JWK),
    ),
    "jwk-alg": (
        # A jwk's own alg must fit the proof's; anything else (or a non-string) is no key.
        "header",
        "jwk",
        st.builds(
            lambda value: {**_JWK, "alg": value},
            st.one_of(
                st.sampled_from(["ES384", "RS256", "EdDSA", "HS256", "none", "es256", ""]),
                st.text(max_size=8).filter(lambda v: v != "ES256"),
                _NOT_STRING.filter(lambda v: v is not None),
                st.dictionaries(st.text(max_size=3), _JSON_SCALARS, max_size=2),
            ),
        ),
    ),
    "jwk-other": (
        "header",
        "jwk",
        st.one_of(
            _JSON.filter(lambda v: v != _JWK),
            st.just(public_jwk(_PROVIDER_KEY.private_key.public_key())),
        ),
    ),
    "crit": ("header", "crit", _JSON),
}
_REMOVABLE = [("claims", "jti"), ("claims", "htm"), ("claims", "htu"), ("claims", "iat")]
_REMOVABLE += [("claims", "ath"), ("header", "typ"), ("header", "alg"), ("header", "jwk")]


@dataclass
class Case:
    """One request: what was sent and what the answer must be."""

    scheme: str
    token: str
    dpop: list[bytes]
    proof: str  # the untouched proof made for this example (maybe not sent as is)
    kind: str


def _flip(data: st.DataObject, proof: str) -> str:
    segments = proof.split(".")
    index = data.draw(st.integers(0, 2), label="segment")
    chars = list(segments[index])
    alphabet = st.sampled_from("AQgwZz09-_+/=. \x00\xff%")
    for _ in range(data.draw(st.integers(1, 3), label="edits")):
        op = data.draw(st.sampled_from(["flip", "insert", "delete"]), label="op")
        if op == "insert" or not chars:
            chars.insert(data.draw(st.integers(0, len(chars))), data.draw(alphabet))
        elif op == "delete":
            del chars[data.draw(st.integers(0, len(chars) - 1))]
        else:
            chars[data.draw(st.integers(0, len(chars) - 1))] = data.draw(alphabet)
    segments[index] = "".join(chars)
    return ".".join(segments)


def _broken(data: st.DataObject, token: str) -> str:
    """A proof with one to three checks broken on purpose, signed so the later checks run."""
    header, claims = _fresh_parts(token)
    parts = {"header": header, "claims": claims}
    kinds = data.draw(
        st.lists(
            st.sampled_from([*sorted(_BREAKERS), "drop", "alg-none", "alg-hs256", "not-json"]),
            min_size=1,
            max_size=3,
            unique=True,
        ),
        label="breaks",
    )
    for kind in kinds:
        if kind in _BREAKERS:
            where, member, values = _BREAKERS[kind]
            parts[where][member] = data.draw(values, label=kind)
        elif kind == "drop":
            where, member = data.draw(st.sampled_from(_REMOVABLE), label="drop")
            parts[where].pop(member, None)
    if "not-json" in kinds:
        # A segment that decodes to something other than a JSON object, correctly signed.
        junk = data.draw(
            st.one_of(st.binary(max_size=40), _JSON.map(lambda v: json.dumps(v).encode())),
            label="junk",
        )
        head = b64url(json.dumps(header).encode())
        body = b64url(json.dumps(claims).encode())
        if data.draw(st.booleans(), label="junk-in-header"):
            return _resign(b64url(junk), body)
        return _resign(head, b64url(junk))
    if "alg-none" in kinds:
        return encode_jws({**header, "alg": "none"}, claims, lambda _: b"")
    if "alg-hs256" in kinds:
        # The classic confusion: a MAC keyed with the public key's bytes.
        secret = json.dumps(_JWK).encode()
        return encode_jws(
            {**header, "alg": "HS256"},
            claims,
            lambda signing_input: hmac.new(secret, signing_input, hashlib.sha256).digest(),
        )
    return _sign(header, claims)


def _case(data: st.DataObject, *, mode: str) -> Case:
    # The DPoP scheme and the bound token are drawn most often: only they reach the proof checks.
    scheme = data.draw(
        st.sampled_from(_DPOP_SPELLINGS) if mode == "broken" else _SCHEMES, label="scheme"
    )
    token = BOUND if mode == "broken" else data.draw(_TOKENS, label="token")
    header, claims = _fresh_parts(token)
    proof = _sign(header, claims)
    if mode == "random":
        kind = data.draw(st.sampled_from(["none", "text", "bytes", "proof+junk"]), label="kind")
        values: list[bytes] = []
        if kind == "text":
            texts = data.draw(st.lists(_LATIN1, min_size=1, max_size=2), label="texts")
            values = [text.encode("latin-1") for text in texts]
        elif kind == "bytes":
            values = data.draw(st.lists(st.binary(max_size=200), min_size=1, max_size=2))
        elif kind == "proof+junk":
            junk = data.draw(_LATIN1, label="junk").encode("latin-1")
            values = data.draw(st.permutations([proof.encode(), junk]), label="order")
        return Case(scheme, token, values, proof, kind)
    kind = "broken"
    if mode == "mutated":
        kind = data.draw(st.sampled_from(["valid", "two-valid", "flipped", "broken"]), label="kind")
    if kind == "valid":
        sent = [proof]
    elif kind == "two-valid":
        sent = [proof, _sign(*_fresh_parts(token))]
    elif kind == "flipped":
        sent = [_flip(data, proof)]
    else:
        sent = [_broken(data, token)]
    return Case(scheme, token, [v.encode("latin-1") for v in sent], proof, kind)


# -- the answer -----------------------------------------------------------------------------------

_TOKEN = r"[!#$%&'*+.^_`|~0-9A-Za-z-]+"
_CHALLENGE_SCHEME = re.compile(rf"({_TOKEN})(?: +|(?=,)|$)")
_AUTH_PARAM = re.compile(rf'({_TOKEN}) *= *({_TOKEN}|"(?:[^"\\]|\\.)*")')
_COMMA = re.compile(r" *, *")


def parse_challenges(value: str) -> list[tuple[str, dict[str, str]]]:
    """``WWW-Authenticate`` as RFC 9110 section 11.6.1 challenges: (scheme, auth-params)."""
    challenges: list[tuple[str, dict[str, str]]] = []
    pos = 0
    while True:
        scheme = _CHALLENGE_SCHEME.match(value, pos)
        assert scheme is not None, f"no auth-scheme at {pos} in {value!r}"
        pos = scheme.end()
        params: dict[str, str] = {}
        comma = False
        while True:
            param = _AUTH_PARAM.match(value, pos)
            if param is None:
                break
            name, raw = param.group(1).lower(), param.group(2)
            assert name not in params, f"repeated {name} in {value!r}"
            params[name] = re.sub(r"\\(.)", r"\1", raw[1:-1]) if raw.startswith('"') else raw
            pos = param.end()
            separator = _COMMA.match(value, pos)
            comma = separator is not None
            if separator is None:
                break
            pos = separator.end()
        challenges.append((scheme.group(1), params))
        if pos == len(value):
            assert not comma, f"trailing comma in {value!r}"
            return challenges
        if not comma:
            separator = _COMMA.match(value, pos)
            assert separator is not None, f"junk at {pos} in {value!r}"
            pos = separator.end()


async def _send(app: FastAPI, case: Case) -> httpx.Response:
    headers = [(b"authorization", f"{case.scheme} {case.token}".encode("latin-1"))]
    headers += [(b"dpop", value) for value in case.dpop]
    # raise_app_exceptions (the default): an exception escaping the app fails the example.
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="https://api.test") as client:
        return await client.get("/messages", headers=headers)


def _check(variant: str, case: Case, response: httpx.Response) -> None:
    status = response.status_code
    dpop_scheme = case.scheme in _DPOP_SPELLINGS
    untouched = case.dpop == [case.proof.encode()]
    if dpop_scheme and case.token == BOUND and untouched:
        assert status == 200, response.text
        assert response.json() == {"sub": "alice", "type": "DPoP"}
    elif case.scheme in _BEARER_SPELLINGS and case.token == PLAIN and variant == "allowed":
        assert status == 200, response.text  # a Bearer request never consults DPoP headers
    else:
        assert status in (400, 401, 403), (status, response.text)
    if dpop_scheme and case.token == BOUND and len(case.dpop) == 2:
        assert status == 400  # multiple_dpop_proofs (RFC 9449 4.3 step 1)

    secrets = [case.token, case.proof, *case.proof.split(".")]
    # Sent values long and varied enough that finding one in a response means it was echoed.
    secrets += [v.decode("latin-1") for v in case.dpop if len(v) >= 24 and len(set(v)) >= 8]
    texts = [response.content.decode("latin-1")]
    texts += [f"{n.decode('latin-1')}: {v.decode('latin-1')}" for n, v in response.headers.raw]
    for secret in secrets:
        assert not any(secret in text for text in texts), "a request secret was echoed"

    challenges = response.headers.get_list("www-authenticate")
    if status == 401:
        assert challenges
    if challenges:
        parsed = [c for value in challenges for c in parse_challenges(value)]
        schemes = [scheme for scheme, _ in parsed]
        assert schemes == (["DPoP"] if variant == "required" else ["Bearer", "DPoP"])
        dpop_params = dict(parsed)["DPoP"]
        assert dpop_params["algs"].split() == sorted(ALGS)


_SETTINGS = settings(
    max_examples=200,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)


@pytest.mark.parametrize("variant", ["allowed", "required"])
@_SETTINGS
@given(data=st.data())
def test_random_dpop_headers_are_4xx_rfc9449_s4_3(variant: str, data: st.DataObject) -> None:
    case = _case(data, mode="random")
    response = asyncio.run(_send(APPS[variant], case))
    _check(variant, case, response)


@pytest.mark.parametrize("variant", ["allowed", "required"])
@_SETTINGS
@given(data=st.data())
def test_mutated_proofs_are_4xx_rfc9449_s4_3(variant: str, data: st.DataObject) -> None:
    case = _case(data, mode="mutated")
    response = asyncio.run(_send(APPS[variant], case))
    _check(variant, case, response)


@pytest.mark.parametrize("variant", ["allowed", "required"])
@_SETTINGS
@given(data=st.data())
def test_broken_signed_proofs_are_invalid_dpop_proof_rfc9449_s4_3(
    variant: str, data: st.DataObject
) -> None:
    # The bound token under the DPoP scheme, with a proof signed by the bound key but broken
    # on purpose: every check behind the signature runs, and each must answer 401.
    case = _case(data, mode="broken")
    response = asyncio.run(_send(APPS[variant], case))
    _check(variant, case, response)
    assert response.status_code == 401
    challenge = dict(parse_challenges(response.headers["www-authenticate"]))["DPoP"]
    assert challenge["error"] == "invalid_dpop_proof"


# -- regressions: examples the properties found ---------------------------------------------------


@pytest.mark.parametrize(
    ("where", "member", "value"),
    [
        # OverflowError: the iat window was checked as ``now - iat``, float minus huge int.
        pytest.param("claims", "iat", -(2**1024), id="iat-below-float-range"),
        pytest.param("claims", "iat", -(10**400), id="iat-huge-negative"),
        pytest.param("claims", "iat", 10**400, id="iat-huge-positive"),
        # TypeError: parse_jwks looked the jwk's alg up in a dict (unhashable list / object).
        pytest.param("header", "jwk", {**_JWK, "alg": []}, id="jwk-alg-list"),
        pytest.param("header", "jwk", {**_JWK, "alg": {}}, id="jwk-alg-object"),
        pytest.param("header", "jwk", {**_JWK, "alg": 1}, id="jwk-alg-number"),
    ],
)
@pytest.mark.parametrize("variant", ["allowed", "required"])
async def test_hostile_signed_proof_members_are_invalid_dpop_proof_rfc9449_s4_3(
    variant: str, where: str, member: str, value: Any
) -> None:
    header, claims = _fresh_parts(BOUND)
    {"header": header, "claims": claims}[where][member] = value
    scope = http_scope(
        [("Host", "api.test"), ("Authorization", f"DPoP {BOUND}"), ("DPoP", _sign(header, claims))],
        path="/messages",
    )
    with pytest.raises(TokenError) as info:
        await VALIDATORS[variant].authenticate(scope)
    assert (info.value.code, info.value.claim) == ("invalid_dpop_proof", member)
