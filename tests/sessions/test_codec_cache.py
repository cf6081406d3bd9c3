"""SessionCodec's opened-value cache: same answers as without it, fresh copies, bounded."""

from __future__ import annotations

from typing import Any

import pytest

from oidc_asgi.errors import ConfigurationError, OIDCError
from oidc_asgi.sessions import SessionCodec

SECRET = "a" * 16 + "-first-secret-32-bytes"
NAME = "oidc_session"
T0 = 1_700_000_000.0


class Clock:
    def __init__(self) -> None:
        self.t = T0

    def __call__(self) -> float:
        return self.t


def _codec(clock: Clock, **kwargs: Any) -> SessionCodec:
    return SessionCodec(secrets=[SECRET], now=clock, cache_size=4, **kwargs)


@pytest.mark.parametrize("source", ["sealed-here", "opened-once"])
def test_hits_return_fresh_copies(source: str) -> None:
    clock = Clock()
    data = {"u": {"sub": "alice", "groups": ["a", "b"]}, "d": {"cart": [{"sku": 1}]}}
    if source == "sealed-here":
        codec = _codec(clock)
        value = codec.encode(data, cookie_name=NAME)
    else:
        value = _codec(clock).encode(data, cookie_name=NAME)
        codec = _codec(clock)
        assert codec.decode(value, cookie_name=NAME) is not None  # miss: decrypted and kept
    first = codec.load(value, cookie_name=NAME)
    first.data["u"]["groups"].append("mallory")
    first.data["d"]["cart"][0]["sku"] = 2
    second = codec.load(value, cookie_name=NAME)
    assert second.data == data
    assert second.created_at == T0
    assert second.key_index == 0


def test_expiry_is_checked_on_every_hit() -> None:
    clock = Clock()
    codec = _codec(clock, absolute_ttl=100, rolling_ttl=50, touch_after=10)
    value = codec.encode({"n": 1}, cookie_name=NAME)
    assert codec.decode(value, cookie_name=NAME) is not None
    clock.t += 51
    with pytest.raises(OIDCError) as caught:
        codec.load(value, cookie_name=NAME)
    assert caught.value.code == "session_expired"


@pytest.mark.parametrize(
    ("change", "code"),
    [
        pytest.param(lambda v: v[:-4] + ("AAAA" if v[-4:] != "AAAA" else "BBBB"),
                     "session_invalid", id="tampered-same-cache-prefix"),
        pytest.param(lambda v: v[:-8], "session_invalid", id="truncated"),
    ],
)  # fmt: skip
def test_a_cached_value_does_not_open_other_values(change: Any, code: str) -> None:
    clock = Clock()
    codec = _codec(clock)
    value = codec.encode({"n": 1}, cookie_name=NAME)
    assert codec.decode(value, cookie_name=NAME) is not None
    with pytest.raises(OIDCError) as caught:
        codec.load(change(value), cookie_name=NAME)
    assert caught.value.code == code


def test_cached_value_is_still_bound_to_its_cookie_name() -> None:
    codec = _codec(Clock())
    value = codec.encode({"n": 1}, cookie_name=NAME)
    assert codec.decode(value, cookie_name=NAME) is not None
    assert codec.decode(value, cookie_name="other") is None


def test_cache_is_bounded() -> None:
    codec = _codec(Clock())
    values = [codec.encode({"n": i}, cookie_name=NAME) for i in range(10)]
    assert len(codec._cache) == 4
    # Evicted values still open (by decryption), with the same data.
    assert [codec.load(v, cookie_name=NAME).data["n"] for v in values] == list(range(10))


@pytest.mark.parametrize("size", [-1, True, 1.5], ids=["negative", "bool", "float"])
def test_cache_size_is_validated(size: Any) -> None:
    with pytest.raises(ConfigurationError) as caught:
        SessionCodec(secrets=[SECRET], cache_size=size)
    assert caught.value.code == "invalid_size"
