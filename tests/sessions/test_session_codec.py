"""SessionCodec: AEAD envelope, key rotation, binding to the cookie name, lifetimes, bounds."""

from __future__ import annotations

import base64
import json
import os
import re
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from oidc_asgi.errors import ConfigurationError, OIDCError
from oidc_asgi.sessions import DecodedSession, SessionCodec, ValueSigner, _codec, derive_keys

SECRET_A = "a" * 16 + "-first-secret-32-bytes"
SECRET_B = "b" * 16 + "-second-secret-32-bytes"
SECRET_C = "c" * 16 + "-third-secret-32-bytes"
NAME = "oidc_session"
T0 = 1_700_000_000.0
B64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


class Clock:
    def __init__(self, t: float = T0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def clock() -> Clock:
    return Clock()


def make(clock: Clock, secrets: list[str] | None = None, **kwargs: Any) -> SessionCodec:
    return SessionCodec(secrets=secrets or [SECRET_A], now=clock, **kwargs)


def code_of(codec: SessionCodec, value: str, name: str = NAME) -> str:
    with pytest.raises(OIDCError) as info:
        codec.load(value, cookie_name=name)
    return info.value.code


def test_round_trip_keeps_data_and_timestamps(clock: Clock) -> None:
    codec = make(clock)
    data = {"sub": "248289761001", "claims": {"name": "Jane", "groups": ["a", "b"]}, "n": 1.5}
    session = codec.decode(codec.encode(data, cookie_name=NAME), cookie_name=NAME)
    assert session == DecodedSession(
        data=data,
        created_at=T0,
        touched_at=T0,
        expires_at=T0 + 24 * 3600,
        ceiling=None,
        key_index=0,
    )


def test_unicode_data_round_trips(clock: Clock) -> None:
    codec = make(clock)
    data = {"name": "Zoë 🚀 名前", "empty": ""}
    session = codec.decode(codec.encode(data, cookie_name=NAME), cookie_name=NAME)
    assert session is not None
    assert session.data == data


def test_envelope_is_v2_cookie_safe_and_randomised(clock: Clock) -> None:
    """Version 2: standard padded base64, all cookie-octets (RFC 6265 section 4.1.1)."""
    codec = make(clock)
    first = codec.encode({"a": 1}, cookie_name=NAME)
    second = codec.encode({"a": 1}, cookie_name=NAME)
    assert re.fullmatch(
        r"v2\.[A-Za-z0-9_-]{8}\.(?:[A-Za-z0-9+/]{4})*[A-Za-z0-9+/]{2,4}={0,2}", first
    )
    assert len(first.split(".")[2]) % 4 == 0  # padded
    assert first != second  # a fresh nonce each time
    assert first.split(".")[1] == second.split(".")[1]  # same key id
    first_seed = base64.b64decode(first.split(".")[2])[:24]
    second_seed = base64.b64decode(second.split(".")[2])[:24]
    assert first_seed[:12] == second_seed[:12]  # the subkey is kept for a bounded count
    assert first_seed[12:] != second_seed[12:]  # never the nonce


def test_subkey_is_renewed_after_its_use_bound(
    clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_codec, "_SUBKEY_USES", 3)
    codec = make(clock)
    values = [codec.encode({"n": i}, cookie_name=NAME) for i in range(7)]
    subkeys = [base64.b64decode(v.split(".")[2])[:12] for v in values]
    assert subkeys[0] == subkeys[1] == subkeys[2]
    assert subkeys[3] == subkeys[4] == subkeys[5] != subkeys[0]
    assert subkeys[6] not in (subkeys[0], subkeys[3])
    nonces = {base64.b64decode(v.split(".")[2])[12:24] for v in values}
    assert len(nonces) == 7
    fresh = make(clock)  # no cache: every value opens by decryption under its own subkey
    assert [fresh.load(v, cookie_name=NAME).data for v in values] == [{"n": i} for i in range(7)]


def test_a_forked_worker_gets_its_own_subkey(clock: Clock, monkeypatch: pytest.MonkeyPatch) -> None:
    codec = make(clock)
    parent = base64.b64decode(codec.encode({}, cookie_name=NAME).split(".")[2])[:12]
    real_pid = os.getpid()
    monkeypatch.setattr(os, "getpid", lambda: real_pid + 1)
    child = base64.b64decode(codec.encode({}, cookie_name=NAME).split(".")[2])[:12]
    assert child != parent


def test_plaintext_is_not_visible_in_the_cookie(clock: Clock) -> None:
    codec = make(clock)
    value = codec.encode({"refresh_token": "very-secret-refresh-token"}, cookie_name=NAME)
    raw = base64.b64decode(value.split(".")[2])
    assert b"very-secret" not in raw
    assert b"refresh_token" not in raw


# --- rotation and key ids ---------------------------------------------------------------


def test_rotation_old_secret_still_decrypts_new_secret_encrypts(clock: Clock) -> None:
    old = make(clock, [SECRET_A])
    rotated = make(clock, [SECRET_B, SECRET_A])
    legacy_cookie = old.encode({"sub": "x"}, cookie_name=NAME)

    session = rotated.decode(legacy_cookie, cookie_name=NAME)
    assert session is not None
    assert session.data == {"sub": "x"}
    assert session.key_index == 1
    assert rotated.needs_reissue(session)  # re-encrypt under the new secret

    fresh = rotated.encode({"sub": "x"}, cookie_name=NAME)
    assert make(clock, [SECRET_B]).decode(fresh, cookie_name=NAME) is not None
    assert code_of(old, fresh) == "session_unknown_key"


def test_dropped_secret_no_longer_decrypts(clock: Clock) -> None:
    cookie = make(clock, [SECRET_A]).encode({"sub": "x"}, cookie_name=NAME)
    assert code_of(make(clock, [SECRET_B, SECRET_C]), cookie) == "session_unknown_key"


def test_key_id_selects_the_key_with_one_decryption(
    clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    cookie = make(clock, [SECRET_C]).encode({"sub": "x"}, cookie_name=NAME)
    codec = make(clock, [SECRET_A, SECRET_B, SECRET_C])
    calls: list[bytes] = []
    real = _codec._aead

    def counting(key: bytes, seed: bytes) -> Any:
        calls.append(key)
        return real(key, seed)

    monkeypatch.setattr(_codec, "_aead", counting)
    session = codec.decode(cookie, cookie_name=NAME)
    assert session is not None
    assert session.key_index == 2
    assert len(calls) == 1


def test_swapping_the_key_id_fails_authentication(clock: Clock) -> None:
    codec = make(clock, [SECRET_A, SECRET_B])
    cookie = codec.encode({"sub": "x"}, cookie_name=NAME)
    other_kid = make(clock, [SECRET_B]).encode({}, cookie_name=NAME).split(".")[1]
    version, _, body = cookie.split(".")
    assert code_of(codec, f"{version}.{other_kid}.{body}") == "session_invalid"


def test_key_id_is_derived_from_the_purpose_key_not_the_secret(clock: Clock) -> None:
    session = make(clock, purpose="session")
    transaction = make(clock, purpose="transaction")
    cookie = session.encode({"sub": "x"}, cookie_name=NAME)
    assert cookie.split(".")[1] != transaction.encode({}, cookie_name=NAME).split(".")[1]
    assert code_of(transaction, cookie) == "session_unknown_key"
    assert derive_keys([SECRET_A], purpose="session") != derive_keys(
        [SECRET_A], purpose="transaction"
    )


def test_value_moved_to_another_cookie_name_is_rejected(clock: Clock) -> None:
    codec = make(clock)
    cookie = codec.encode({"sub": "x"}, cookie_name="oidc_session")
    assert code_of(codec, cookie, name="oidc_tx.abc") == "session_invalid"
    assert codec.decode(cookie, cookie_name="oidc_session.1") is None


# --- version 1 envelopes (written before the upgrade) ----------------------------------


def test_version_1_cookie_still_opens_and_is_reissued_as_version_2(clock: Clock) -> None:
    codec = make(clock)
    legacy = _v1_cookie(clock, {"sub": "x", "n": [1, 2]})
    assert re.fullmatch(r"v1\.[A-Za-z0-9_-]{8}\.[A-Za-z0-9_-]+", legacy)
    session = codec.load(legacy, cookie_name=NAME)
    assert session.data == {"sub": "x", "n": [1, 2]}
    assert session.created_at == T0
    renewed = codec.encode(session.data, cookie_name=NAME, created_at=session.created_at)
    assert renewed.startswith("v2.")
    assert codec.load(renewed, cookie_name=NAME).data == session.data


def test_version_1_cookie_of_an_older_secret_opens_during_rotation(clock: Clock) -> None:
    legacy = _v1_cookie(clock, {"sub": "x"}, secret=SECRET_A)
    session = make(clock, [SECRET_B, SECRET_A]).load(legacy, cookie_name=NAME)
    assert session.key_index == 1
    assert code_of(make(clock, [SECRET_B]), legacy) == "session_unknown_key"


def test_version_1_cookie_is_still_bound_to_its_cookie_name(clock: Clock) -> None:
    legacy = _v1_cookie(clock, {"sub": "x"}, name="oidc_session")
    assert code_of(make(clock), legacy, name="oidc_tx.abc") == "session_invalid"


@pytest.mark.parametrize(
    ("relabel", "code"),
    [
        # The version is in the associated data: a body cannot be moved to another version,
        # even re-encoded in that version's alphabet.
        pytest.param(
            lambda v: "v2" + v[2:].rpartition(".")[0] + "."
            + _body("v2", _unbody("v1", v.rpartition(".")[2])),
            "session_invalid",
            id="v1-body-relabelled-v2",
        ),
        pytest.param(lambda v: "v2" + v[2:], "session_malformed", id="v1-text-under-v2"),
    ],
)  # fmt: skip
def test_version_1_body_does_not_open_as_version_2(
    clock: Clock, relabel: Callable[[str], str], code: str
) -> None:
    legacy = _v1_cookie(clock, {"sub": "x"})
    assert code_of(make(clock), relabel(legacy)) == code


def test_version_2_body_does_not_open_as_version_1(clock: Clock) -> None:
    codec = make(clock)
    cookie = codec.encode({"sub": "x"}, cookie_name=NAME)
    header, _, body = cookie.rpartition(".")
    moved = f"v1{header[2:]}.{_body('v1', _unbody('v2', body))}"
    assert code_of(codec, moved) == "session_invalid"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("QQ==", b"A", id="canonical-padded"),
        pytest.param("QUJD", b"ABC", id="canonical-full"),
        pytest.param("", b"", id="empty"),
        pytest.param("QR==", None, id="spare-bits-set"),
        pytest.param("QQ", None, id="padding-missing"),
        pytest.param("QQ=", None, id="padding-short"),
        pytest.param("Q===", None, id="padding-too-long"),
        pytest.param("QQ==QQ==", None, id="padding-in-the-middle"),
        pytest.param("QU-D", None, id="base64url-minus"),
        pytest.param("QU_D", None, id="base64url-underscore"),
        pytest.param("QU D", None, id="space"),
        pytest.param("QUJ\u00e9", None, id="non-ascii"),
    ],
)
def test_version_2_body_decoding_is_strict_and_canonical(text: str, expected: bytes | None) -> None:
    """RFC 4648 section 3.5: one text per byte string (padding and spare bits checked)."""
    if expected is None:
        with pytest.raises(ValueError, match="base64"):
            _codec._b64d_std(text)
    else:
        assert _codec._b64d_std(text) == expected


# --- lifetimes --------------------------------------------------------------------------


def test_absolute_lifetime_counts_from_sign_in_across_reissues(clock: Clock) -> None:
    codec = make(clock, absolute_ttl=1000, rolling_ttl=300)
    cookie = codec.encode({"sub": "x"}, cookie_name=NAME)
    for _ in range(3):  # keep the session active: re-issue every 250 s
        clock.t += 250
        session = codec.decode(cookie, cookie_name=NAME)
        assert session is not None
        cookie = codec.encode(session.data, cookie_name=NAME, created_at=session.created_at)
    clock.t = T0 + 999.9
    assert codec.decode(cookie, cookie_name=NAME) is not None
    clock.t = T0 + 1000
    assert code_of(codec, cookie) == "session_expired"


def test_rolling_lifetime_expires_an_idle_session(clock: Clock) -> None:
    codec = make(clock, absolute_ttl=10_000, rolling_ttl=300)
    cookie = codec.encode({"sub": "x"}, cookie_name=NAME)
    clock.t = T0 + 299.9
    session = codec.decode(cookie, cookie_name=NAME)
    assert session is not None
    assert session.expires_at == T0 + 300
    clock.t = T0 + 300
    assert code_of(codec, cookie) == "session_expired"


def test_rolling_can_be_disabled(clock: Clock) -> None:
    codec = make(clock, absolute_ttl=1000, rolling_ttl=None)
    cookie = codec.encode({}, cookie_name=NAME)
    clock.t = T0 + 999
    assert codec.decode(cookie, cookie_name=NAME) is not None


def test_ceiling_caps_the_session(clock: Clock) -> None:
    """The provider's ``session_expiry`` claim ends the session earlier than our lifetimes."""
    codec = make(clock)
    cookie = codec.encode({}, cookie_name=NAME, ceiling=T0 + 60)
    session = codec.decode(cookie, cookie_name=NAME)
    assert session is not None
    assert session.ceiling == T0 + 60
    assert session.expires_at == T0 + 60
    clock.t = T0 + 60
    assert code_of(codec, cookie) == "session_expired"


def test_needs_reissue_after_touch_interval(clock: Clock) -> None:
    codec = make(clock, touch_after=60)
    session = codec.decode(codec.encode({}, cookie_name=NAME), cookie_name=NAME)
    assert session is not None
    clock.t = T0 + 59
    assert not codec.needs_reissue(session)
    clock.t = T0 + 60
    assert codec.needs_reissue(session)


def test_shortened_lifetime_applies_to_existing_cookies(clock: Clock) -> None:
    cookie = make(clock, absolute_ttl=10_000, rolling_ttl=None).encode({}, cookie_name=NAME)
    clock.t = T0 + 600
    assert code_of(make(clock, absolute_ttl=500, rolling_ttl=None), cookie) == "session_expired"


# --- size bounds and bad data -----------------------------------------------------------


def test_oversized_payload_is_refused_at_encode(clock: Clock) -> None:
    codec = make(clock, max_bytes=1024)
    with pytest.raises(OIDCError) as info:
        codec.encode({"blob": "x" * 1024}, cookie_name=NAME)
    assert info.value.code == "session_too_large"


def test_oversized_input_is_refused_before_decoding(clock: Clock) -> None:
    big = make(clock, max_bytes=8192).encode({"blob": "x" * 4000}, cookie_name=NAME)
    small = make(clock, max_bytes=1024)
    assert code_of(small, big) == "session_malformed"


def test_payload_over_bound_after_decryption_is_refused(clock: Clock) -> None:
    # An envelope inside the length bound whose plaintext is one byte over max_bytes.
    overhead = len(json.dumps({"iat": T0, "uat": T0, "d": {"blob": ""}}, separators=(",", ":")))
    big = make(clock, max_bytes=2048).encode({"blob": "x" * (1025 - overhead)}, cookie_name=NAME)
    small = make(clock, max_bytes=1024)
    assert len(big) <= small._max_envelope
    assert code_of(small, big) == "session_malformed"


@pytest.mark.parametrize(
    "data",
    [
        pytest.param({"when": object()}, id="object"),
        pytest.param({"n": float("nan")}, id="nan"),
        pytest.param({"b": b"bytes"}, id="bytes"),
    ],
)
def test_non_json_data_is_a_coded_error(clock: Clock, data: dict[str, Any]) -> None:
    with pytest.raises(OIDCError) as info:
        make(clock).encode(data, cookie_name=NAME)
    assert info.value.code == "session_not_serializable"


def _body(version: str, blob: bytes) -> str:
    if version == "v1":
        return _codec._b64e(blob)  # base64url, no padding
    return base64.b64encode(blob).decode("ascii")


def _unbody(version: str, body: str) -> bytes:
    return _codec._b64d(body) if version == "v1" else _codec._b64d_std(body)


def _rebody(value: str, change: Callable[[bytes], bytes]) -> str:
    header, _, body = value.rpartition(".")
    version = header[:2]
    return f"{header}.{_body(version, change(_unbody(version, body)))}"


def _sealed(
    clock: Clock,
    payload: bytes,
    name: str = NAME,
    *,
    version: str = "v2",
    secret: str = SECRET_A,
) -> str:
    """An envelope our key really sealed (either version), around any payload."""
    key = _codec.derive_keys([secret], purpose="session")[0]
    header = f"{version}.{_codec._kid(key)}"
    seed = bytes(range(24))
    sealed = _codec._aead(key, seed).encrypt(seed[12:], payload, _codec._aad(header, name))
    return f"{header}.{_body(version, seed + sealed)}"


def _v1_cookie(clock: Clock, data: dict[str, Any], name: str = NAME, secret: str = SECRET_A) -> str:
    """A cookie as the version 1 encoder wrote it (base64url body, no padding)."""
    payload = json.dumps({"iat": clock.t, "uat": clock.t, "d": data}, separators=(",", ":"))
    return _sealed(clock, payload.encode(), name, version="v1", secret=secret)


def _original(clock: Clock, codec: SessionCodec, version: str) -> str:
    if version == "v1":
        return _v1_cookie(clock, {"sub": "x"})
    return codec.encode({"sub": "x"}, cookie_name=NAME)


def _foreign_characters(value: str) -> str:
    # Characters of the other base64 alphabet than the value's version uses.
    return value[:-4] + ("+/AA" if value.startswith("v1.") else "-_AA")


MALFORMED: list[tuple[str, Callable[[str, Clock], str], str]] = [
    ("empty", lambda v, c: "", "session_malformed"),
    ("no-separators", lambda v, c: v.replace(".", ""), "session_malformed"),
    ("header-only", lambda v, c: v.rsplit(".", 1)[0], "session_malformed"),
    ("wrong-version", lambda v, c: "v3" + v[2:], "session_unsupported_version"),
    ("future-version-v10", lambda v, c: "v10" + v[2:], "session_unsupported_version"),
    (
        "unknown-kid",
        lambda v, c: f"{v[:2]}.AAAAAAAA.{v.split('.')[2]}",
        "session_unknown_key",
    ),
    ("empty-body", lambda v, c: v.rsplit(".", 1)[0] + ".", "session_invalid"),
    ("body-other-alphabet", lambda v, c: _foreign_characters(v), "session_malformed"),
    ("body-extra-padding", lambda v, c: v + "=", "session_malformed"),
    (
        "body-impossible-length",
        lambda v, c: v.rsplit(".", 1)[0] + "." + "A" * 61,
        "session_malformed",
    ),
    ("body-truncated-to-seed", lambda v, c: v[: len(v.split(".")[0]) + 10 + 40], "session_invalid"),
    ("body-truncated-one-byte", lambda v, c: _rebody(v, lambda b: b[:-1]), "session_invalid"),
    ("body-extra-byte", lambda v, c: _rebody(v, lambda b: b + b"\x00"), "session_invalid"),
    ("seed-changed", lambda v, c: _rebody(v, lambda b: b"\x01" + b[1:]), "session_invalid"),
    (
        "tag-flipped",
        lambda v, c: _rebody(v, lambda b: b[:-1] + bytes([b[-1] ^ 1])),
        "session_invalid",
    ),
    (
        "ciphertext-flipped",
        lambda v, c: _rebody(v, lambda b: b[:30] + bytes([b[30] ^ 0x80]) + b[31:]),
        "session_invalid",
    ),
    ("extra-segment", lambda v, c: v + ".AAAA", "session_malformed"),
    ("whitespace-appended", lambda v, c: v + " ", "session_malformed"),
    ("sealed-non-json", lambda v, c: _sealed(c, b"\xff\xfe", version=v[:2]), "session_malformed"),
    ("sealed-json-array", lambda v, c: _sealed(c, b"[]", version=v[:2]), "session_malformed"),
    (
        "sealed-missing-iat",
        lambda v, c: _sealed(c, b'{"uat":1,"d":{}}', version=v[:2]),
        "session_malformed",
    ),
    (
        "sealed-data-not-object",
        lambda v, c: _sealed(c, b'{"iat":1,"uat":1,"d":[]}', version=v[:2]),
        "session_malformed",
    ),
    (
        "sealed-iat-bool",
        lambda v, c: _sealed(c, b'{"iat":true,"uat":1,"d":{}}', version=v[:2]),
        "session_malformed",
    ),
    (
        "sealed-iat-nan",
        lambda v, c: _sealed(c, b'{"iat":NaN,"uat":1,"d":{}}', version=v[:2]),
        "session_malformed",
    ),
    (
        "sealed-bad-ceiling",
        lambda v, c: _sealed(c, b'{"iat":1,"uat":1,"cap":"x","d":{}}', version=v[:2]),
        "session_malformed",
    ),
    (
        "sealed-deep-nesting",
        lambda v, c: _sealed(c, b"[" * 5000 + b"]" * 5000, version=v[:2]),
        "session_malformed",
    ),
]


@pytest.mark.parametrize("version", ["v2", "v1"])
@pytest.mark.parametrize(
    ("mutate", "code"),
    [pytest.param(m, code, id=case) for case, m, code in MALFORMED],
)
def test_bad_cookie_is_a_coded_refusal(
    clock: Clock, mutate: Callable[[str, Clock], str], code: str, version: str
) -> None:
    codec = make(clock)
    original = _original(clock, codec, version)
    assert codec.decode(original, cookie_name=NAME) is not None
    bad = mutate(original, clock)
    assert code_of(codec, bad) == code
    assert codec.decode(bad, cookie_name=NAME) is None


def test_decode_of_none_is_no_session(clock: Clock) -> None:
    assert make(clock).decode(None, cookie_name=NAME) is None


def test_error_messages_never_contain_the_cookie(clock: Clock) -> None:
    codec = make(clock)
    cookie = codec.encode({"sub": "x"}, cookie_name=NAME)
    for bad in (cookie[:-3], cookie + "x", "v9" + cookie[2:]):
        with pytest.raises(OIDCError) as info:
            codec.load(bad, cookie_name=NAME)
        assert cookie.split(".")[2][:20] not in str(info.value)
        assert cookie.split(".")[2][:20] not in repr(info.value)


@pytest.mark.parametrize("version", ["v2", "v1"])
def test_every_single_character_change_is_no_session(clock: Clock, version: str) -> None:
    codec = make(clock)
    cookie = _original(clock, codec, version)
    assert codec.decode(cookie, cookie_name=NAME) is not None
    for position in range(len(cookie)):
        for replacement in ("A", "_", ".", "+", "/", "="):
            if cookie[position] == replacement:
                continue
            bad = cookie[:position] + replacement + cookie[position + 1 :]
            assert codec.decode(bad, cookie_name=NAME) is None, position


@pytest.mark.parametrize("version", ["v2", "v1"])
def test_every_truncation_is_no_session(clock: Clock, version: str) -> None:
    codec = make(clock)
    cookie = _original(clock, codec, version)
    for end in range(len(cookie)):
        assert codec.decode(cookie[:end], cookie_name=NAME) is None


_PROPERTY_CLOCK = Clock()
_PROPERTY_CODEC = make(_PROPERTY_CLOCK, [SECRET_A, SECRET_B])
_PROPERTY_COOKIE = _PROPERTY_CODEC.encode({"sub": "x", "tokens": ["a" * 40]}, cookie_name=NAME)


@settings(max_examples=300, deadline=None)
@given(
    position=st.integers(min_value=0, max_value=len(_PROPERTY_COOKIE) - 1),
    replacement=st.text(min_size=0, max_size=3),
)
def test_property_any_mutation_is_no_session_never_an_exception(
    position: int, replacement: str
) -> None:
    mutated = _PROPERTY_COOKIE[:position] + replacement + _PROPERTY_COOKIE[position + 1 :]
    if mutated == _PROPERTY_COOKIE:
        return
    assert _PROPERTY_CODEC.decode(mutated, cookie_name=NAME) is None


@settings(max_examples=300, deadline=None)
@given(
    value=st.text(max_size=300)
    | st.from_regex(r"v1\.[A-Za-z0-9_-]{0,10}\.[A-Za-z0-9_-]{0,200}")
    | st.from_regex(r"v2\.[A-Za-z0-9_-]{0,10}\.[A-Za-z0-9+/]{0,200}={0,2}")
)
def test_property_arbitrary_text_is_no_session(value: str) -> None:
    assert _PROPERTY_CODEC.decode(value, cookie_name=NAME) is None


# --- configuration ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "code"),
    [
        pytest.param({"secrets": []}, "no_secrets", id="empty-list"),
        pytest.param({"secrets": ["short"]}, "weak_secret", id="short-secret"),
        pytest.param({"secrets": [SECRET_A, "x" * 31]}, "weak_secret", id="short-second-secret"),
        pytest.param({"secrets": ["é" * 15]}, "weak_secret", id="30-bytes-of-utf8"),
        pytest.param({"secrets": SECRET_A}, "invalid_secret", id="bare-string"),
        pytest.param({"secrets": SECRET_A.encode()}, "invalid_secret", id="bare-bytes"),
        pytest.param({"secrets": [None]}, "invalid_secret", id="none-secret"),
        pytest.param({"secrets": [SECRET_A], "purpose": ""}, "invalid_purpose", id="empty-purpose"),
        pytest.param({"secrets": [SECRET_A], "absolute_ttl": 0}, "invalid_ttl", id="zero-absolute"),
        pytest.param(
            {"secrets": [SECRET_A], "absolute_ttl": float("inf")}, "invalid_ttl", id="inf-absolute"
        ),
        pytest.param(
            {"secrets": [SECRET_A], "rolling_ttl": -1}, "invalid_ttl", id="negative-rolling"
        ),
        pytest.param(
            {"secrets": [SECRET_A], "absolute_ttl": 100, "rolling_ttl": 200},
            "invalid_ttl",
            id="rolling-over-absolute",
        ),
        pytest.param(
            {"secrets": [SECRET_A], "rolling_ttl": 60, "touch_after": 60},
            "invalid_ttl",
            id="touch-not-shorter",
        ),
        pytest.param(
            {"secrets": [SECRET_A], "max_bytes": 100}, "invalid_size", id="tiny-max-bytes"
        ),
    ],
)
def test_configuration_is_validated_at_construction(kwargs: dict[str, Any], code: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        SessionCodec(**kwargs)
    assert info.value.code == code
    assert SECRET_A not in str(info.value)


def test_thirty_two_byte_secret_is_enough() -> None:
    SessionCodec(secrets=["x" * 32])
    SessionCodec(secrets=[bytes(32)])


def test_repr_hides_secrets(clock: Clock) -> None:
    codec = make(clock, [SECRET_A, SECRET_B])
    assert SECRET_A not in repr(codec)
    assert "secrets=<2>" in repr(codec)


# --- ValueSigner ------------------------------------------------------------------------


def test_signer_round_trip_and_rotation() -> None:
    old = ValueSigner(secrets=[SECRET_A], purpose="session-id")
    rotated = ValueSigner(secrets=[SECRET_B, SECRET_A], purpose="session-id")
    signed = old.sign("f3a9c2")
    assert signed.startswith("f3a9c2.")
    assert rotated.unsign(signed) == "f3a9c2"
    assert old.unsign(rotated.sign("id")) is None  # the new secret signs
    assert ValueSigner(secrets=[SECRET_B], purpose="session-id").unsign(rotated.sign("id")) == "id"


@pytest.mark.parametrize(
    "signed",
    [
        pytest.param(None, id="none"),
        pytest.param("", id="empty"),
        pytest.param("f3a9c2", id="unsigned"),
        pytest.param("f3a9c3.{sig}", id="value-changed"),
        pytest.param("f3a9c2.{sig}x", id="signature-extended"),
        pytest.param("f3a9c2." + "A" * 43, id="forged-signature"),
        pytest.param("x" * 2000, id="overlong"),
        pytest.param("\udc80.{sig}", id="lone-surrogate"),
    ],
)
def test_signer_rejects(signed: str | None) -> None:
    signer = ValueSigner(secrets=[SECRET_A], purpose="session-id")
    sig = signer.sign("f3a9c2").rsplit(".", 1)[1]
    assert signer.unsign(None if signed is None else signed.replace("{sig}", sig)) is None


def test_signer_purposes_do_not_mix() -> None:
    signed = ValueSigner(secrets=[SECRET_A], purpose="session-id").sign("abc")
    assert ValueSigner(secrets=[SECRET_A], purpose="other").unsign(signed) is None
