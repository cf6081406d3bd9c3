"""SessionCodec ``frozen_keys``: shared read-only values, spliced on re-issue, same cookies."""

from __future__ import annotations

import copy
import json
import pickle
from collections.abc import Callable
from typing import Any

import pytest

from oidc_asgi.errors import ConfigurationError, OIDCError
from oidc_asgi.sessions import SessionCodec

SECRET = "f" * 16 + "-frozen-secret-of-32-bytes"
NAME = "oidc_session"
T0 = 1_700_000_000.0
AUTH = {"sub": "alice", "groups": ["staff"], "tok": {"": {"access_token": "at-1", "exp": 5}}}


def _codec(**kwargs: Any) -> SessionCodec:
    return SessionCodec(secrets=[SECRET], now=lambda: T0, **kwargs)


def _sealed_and_reopened(codec: SessionCodec) -> dict[str, Any]:
    value = codec.encode({"u": AUTH, "d": {"n": 1}}, cookie_name=NAME)
    return codec.load(value, cookie_name=NAME).data


@pytest.mark.parametrize(
    "mutate",
    [
        pytest.param(lambda u: u.__setitem__("sub", "mallory"), id="set-top-level"),
        pytest.param(lambda u: u.pop("sub"), id="pop-top-level"),
        pytest.param(lambda u: u.update(sub="mallory"), id="update-top-level"),
        pytest.param(lambda u: u.setdefault("admin", True), id="setdefault-top-level"),
        pytest.param(lambda u: u.clear(), id="clear-top-level"),
        pytest.param(lambda u: u.__ior__({"admin": True}), id="ior-top-level"),
        pytest.param(lambda u: u["groups"].append("admin"), id="append-nested-list"),
        pytest.param(lambda u: u["groups"].__setitem__(0, "admin"), id="set-nested-list"),
        pytest.param(lambda u: u["groups"].extend(["admin"]), id="extend-nested-list"),
        pytest.param(lambda u: u["groups"].sort(), id="sort-nested-list"),
        pytest.param(lambda u: u["tok"][""].__setitem__("access_token", "x"), id="set-deep-dict"),
        pytest.param(lambda u: u["tok"].__delitem__(""), id="del-nested-dict"),
    ],
)
@pytest.mark.parametrize("cache_size", [0, 4], ids=["no-cache", "cache"])
def test_frozen_values_refuse_every_mutation(
    mutate: Callable[[dict[str, Any]], object], cache_size: int
) -> None:
    codec = _codec(cache_size=cache_size, frozen_keys=("u",))
    data = _sealed_and_reopened(codec)
    with pytest.raises(TypeError):
        mutate(data["u"])
    assert data["u"] == AUTH


def test_frozen_values_are_shared_by_hits_and_the_rest_is_copied() -> None:
    codec = _codec(cache_size=4, frozen_keys=("u",))
    value = codec.encode({"u": AUTH, "d": {"cart": [1]}}, cookie_name=NAME)
    first = codec.load(value, cookie_name=NAME).data
    first["d"]["cart"].append(2)
    second = codec.load(value, cookie_name=NAME).data
    assert second["u"] is first["u"]
    assert second["d"] == {"cart": [1]}


def test_a_frozen_value_is_still_a_dict_and_copies_are_plain_and_mutable() -> None:
    auth = _sealed_and_reopened(_codec(cache_size=4, frozen_keys=("u",)))["u"]
    assert isinstance(auth, dict)
    assert isinstance(auth["groups"], list)
    assert auth["groups"] == ["staff"]
    for plain in (dict(auth), {**auth}, auth.copy(), copy.copy(auth)):
        plain["sub"] = "bob"
        assert auth["sub"] == "alice"
    deep = copy.deepcopy(auth)
    deep["groups"].append("x")
    assert pickle.loads(pickle.dumps(auth)) == AUTH
    assert json.loads(json.dumps(auth)) == AUTH


@pytest.mark.parametrize("how", ["shared-value", "new-plain-value", "no-frozen-keys"])
def test_spliced_cookies_open_like_plain_ones(how: str) -> None:
    # What a re-issue writes opens, with a codec that knows nothing of frozen keys, to the
    # same data as encoding it all at once would give.
    codec = _codec(cache_size=4, frozen_keys=() if how == "no-frozen-keys" else ("u",))
    reopened = _sealed_and_reopened(codec)
    auth = reopened["u"] if how == "shared-value" else dict(AUTH)
    data = {"u": auth, "d": {"n": 2, "t": (1, 2), "é": "ü"}}
    value = codec.encode(data, cookie_name=NAME, created_at=T0 - 10, ceiling=T0 + 99)
    plain = _codec().load(value, cookie_name=NAME)
    assert plain.data == {"u": AUTH, "d": {"n": 2, "t": [1, 2], "é": "ü"}}
    assert (plain.created_at, plain.ceiling) == (T0 - 10, T0 + 99)
    # The sealing codec's own cache answers the same (tuples as lists, as the cookie says).
    assert codec.load(value, cookie_name=NAME).data == plain.data


def test_a_changed_frozen_value_is_written_as_changed() -> None:
    codec = _codec(cache_size=4, frozen_keys=("u",))
    auth = _sealed_and_reopened(codec)["u"]
    value = codec.encode({"u": {**auth, "sub": "bob"}}, cookie_name=NAME)
    assert _codec().load(value, cookie_name=NAME).data["u"]["sub"] == "bob"
    assert codec.load(value, cookie_name=NAME).data["u"]["sub"] == "bob"


@pytest.mark.parametrize(
    "data",
    [
        pytest.param({"u": AUTH, "d": {"bad": {1, 2}}}, id="set-in-app-part"),
        pytest.param({"u": {"bad": object()}}, id="object-in-frozen-part"),
        pytest.param({"u": AUTH, "d": {"nan": float("nan")}}, id="nan"),
        pytest.param({"u": AUTH, 1: "int-key"}, id="non-string-key"),
    ],
)
def test_non_json_data_is_refused_with_frozen_keys(data: dict[Any, Any]) -> None:
    with pytest.raises(OIDCError) as caught:
        _codec(cache_size=4, frozen_keys=("u",)).encode(data, cookie_name=NAME)
    assert caught.value.code == "session_not_serializable"


@pytest.mark.parametrize(
    "frozen_keys", [pytest.param("u", id="bare-string"), pytest.param([1], id="non-string-key")]
)
def test_frozen_keys_are_validated(frozen_keys: Any) -> None:
    with pytest.raises(ConfigurationError) as caught:
        _codec(frozen_keys=frozen_keys)
    assert caught.value.code == "invalid_setting"
