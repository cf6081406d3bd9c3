"""Cookie attributes and chunking: budgets, stale chunks, logout, http vs https."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from oidc_asgi.errors import ConfigurationError, OIDCError
from oidc_asgi.sessions import ChunkedCookie, CookieOptions, SessionCodec

ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_."


def apply(jar: dict[str, str], headers: list[str]) -> dict[str, str]:
    """What a browser's cookie jar holds after these Set-Cookie headers (one path, one host)."""
    result = dict(jar)
    for header in headers:
        pair, _, attributes = header.partition("; ")
        name, _, value = pair.partition("=")
        if "Max-Age=0" in attributes.split("; "):
            result.pop(name, None)
        else:
            result[name] = value
    return result


def value_of(size: int) -> str:
    return (ALPHABET * (size // len(ALPHABET) + 1))[:size]


# --- attributes -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "https", "expected"),
    [
        pytest.param(
            CookieOptions(), True, "n=v; Path=/; Max-Age=60; Secure; HttpOnly; SameSite=Lax",
            id="auto-https-secure",
        ),
        pytest.param(
            CookieOptions(), False, "n=v; Path=/; Max-Age=60; HttpOnly; SameSite=Lax",
            id="auto-http-not-secure",
        ),
        pytest.param(
            CookieOptions(secure=True), False,
            "n=v; Path=/; Max-Age=60; Secure; HttpOnly; SameSite=Lax",
            id="forced-secure-over-http",
        ),
        pytest.param(
            CookieOptions(secure=False), True, "n=v; Path=/; Max-Age=60; HttpOnly; SameSite=Lax",
            id="never-secure-over-https",
        ),
        pytest.param(
            CookieOptions(same_site="none"), False,
            "n=v; Path=/; Max-Age=60; Secure; HttpOnly; SameSite=None",
            id="samesite-none-always-secure",
        ),
        pytest.param(
            CookieOptions(same_site="strict", http_only=False, path="/auth/callback",
                          domain="app.example"),
            True,
            "n=v; Domain=app.example; Path=/auth/callback; Max-Age=60; Secure; SameSite=Strict",
            id="strict-path-domain-not-httponly",
        ),
    ],
)  # fmt: skip
def test_set_cookie_attributes(options: CookieOptions, https: bool, expected: str) -> None:
    assert options.set_cookie("n", "v", https=https, max_age=60) == expected


def test_browser_session_cookie_has_no_max_age() -> None:
    header = CookieOptions().set_cookie("n", "v", https=True, max_age=None)
    assert header == "n=v; Path=/; Secure; HttpOnly; SameSite=Lax"


def test_expire_cookie_matches_path_and_domain() -> None:
    options = CookieOptions(path="/cb", domain="app.example")
    assert options.expire_cookie("n", https=True) == (
        "n=; Domain=app.example; Path=/cb; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT; "
        "Secure; HttpOnly; SameSite=Lax"
    )


def test_secure_prefix_forces_secure_over_http() -> None:
    header = CookieOptions().set_cookie("__Host-s", "v", https=False, max_age=1)
    assert "; Secure;" in header


@pytest.mark.parametrize(
    ("name", "value", "code"),
    [
        pytest.param("bad name", "v", "invalid_cookie_name", id="space-in-name"),
        pytest.param("a;b", "v", "invalid_cookie_name", id="semicolon-in-name"),
        pytest.param("a=b", "v", "invalid_cookie_name", id="equals-in-name"),
        pytest.param("", "v", "invalid_cookie_name", id="empty-name"),
        pytest.param("n", "a;b", "invalid_cookie_value", id="semicolon-in-value"),
        pytest.param("n", "a b", "invalid_cookie_value", id="space-in-value"),
        pytest.param("n", 'a"b', "invalid_cookie_value", id="quote-in-value"),
        pytest.param("n", "a,b", "invalid_cookie_value", id="comma-in-value"),
        pytest.param("n", "a\\b", "invalid_cookie_value", id="backslash-in-value"),
        pytest.param("n", "a\r\nSet-Cookie: x=y", "invalid_cookie_value", id="header-injection"),
        pytest.param("n", "café", "invalid_cookie_value", id="non-ascii-value"),
    ],
)
def test_bad_names_and_values_are_refused(name: str, value: str, code: str) -> None:
    with pytest.raises(OIDCError) as info:
        CookieOptions().set_cookie(name, value, https=True, max_age=1)
    assert info.value.code == code
    if code == "invalid_cookie_value":
        assert value not in str(info.value)


@pytest.mark.parametrize(
    ("kwargs", "code"),
    [
        pytest.param({"path": "auth"}, "invalid_cookie_path", id="relative-path"),
        pytest.param({"path": "/a;b"}, "invalid_cookie_path", id="semicolon-path"),
        pytest.param({"path": "/a b"}, "invalid_cookie_path", id="space-path"),
        pytest.param({"domain": "a.example; x"}, "invalid_cookie_domain", id="injected-domain"),
        pytest.param({"secure": "yes"}, "invalid_cookie_secure", id="secure-not-bool"),
        pytest.param({"same_site": "Lax"}, "invalid_cookie_samesite", id="samesite-capitalised"),
        pytest.param(
            {"same_site": "none", "secure": False}, "invalid_cookie_samesite", id="none-insecure"
        ),
    ],
)
def test_cookie_options_are_validated(kwargs: dict[str, Any], code: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        CookieOptions(**kwargs)
    assert info.value.code == code


@pytest.mark.parametrize(
    ("kwargs", "code"),
    [
        pytest.param({"name": "s s"}, "invalid_cookie_name", id="bad-name"),
        pytest.param({"name": "s", "max_chunks": 0}, "invalid_cookie_chunks", id="zero-chunks"),
        pytest.param({"name": "s", "max_chunks": 100}, "invalid_cookie_chunks", id="100-chunks"),
        pytest.param({"name": "s", "budget": 100}, "cookie_budget_too_small", id="tiny-budget"),
        pytest.param(
            {"name": "s" * 500, "budget": 600}, "cookie_budget_too_small", id="long-name-budget"
        ),
        pytest.param(
            {"name": "__Host-s", "options": CookieOptions(domain="app.example")},
            "invalid_cookie_name",
            id="host-prefix-with-domain",
        ),
        pytest.param(
            {"name": "__Host-s", "options": CookieOptions(path="/cb")},
            "invalid_cookie_name",
            id="host-prefix-with-path",
        ),
        pytest.param(
            {"name": "__Secure-s", "options": CookieOptions(secure=False)},
            "invalid_cookie_secure",
            id="secure-prefix-never-secure",
        ),
    ],
)
def test_chunked_cookie_is_validated(kwargs: dict[str, Any], code: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        ChunkedCookie(**kwargs)
    assert info.value.code == code


# --- chunking ---------------------------------------------------------------------------


def single_capacity(jar: ChunkedCookie, *, https: bool, max_age: int | None) -> int:
    """Largest value that fits in the head cookie alone: budget minus the full header."""
    empty = jar.options.set_cookie(jar.name, "1~", https=https, max_age=max_age)
    return jar.budget - len(empty)


@pytest.mark.parametrize("https", [True, False], ids=["https", "http"])
@pytest.mark.parametrize("max_age", [None, 3600, 315_360_000], ids=["session", "1h", "10y"])
@pytest.mark.parametrize("delta", [-1, 0, 1], ids=["under", "at", "over"])
def test_single_cookie_boundary(https: bool, max_age: int | None, delta: int) -> None:
    jar = ChunkedCookie(name="oidc_session", budget=1000)
    size = single_capacity(jar, https=https, max_age=max_age) + delta
    value = value_of(size)
    headers = jar.write(value, cookies={}, https=https, max_age=max_age)
    assert len(headers) == (2 if delta > 0 else 1)
    assert all(len(h) <= jar.budget for h in headers)
    assert len(headers[0]) == jar.budget or delta < 0
    assert jar.read(apply({}, headers)) == value


@pytest.mark.parametrize("delta", [-1, 0, 1], ids=["under", "at", "over"])
def test_two_cookie_boundary(delta: int) -> None:
    jar = ChunkedCookie(name="s", budget=600, max_chunks=3)
    # Capacity of two chunks: each full header is exactly the budget.
    options = jar.options
    two = (600 - len(options.set_cookie("s", "2~", https=True, max_age=60))) + (
        600 - len(options.set_cookie("s.1", "", https=True, max_age=60))
    )
    value = value_of(two + delta)
    headers = jar.write(value, cookies={}, https=True, max_age=60)
    assert len(headers) == (3 if delta > 0 else 2)
    assert all(len(h) <= 600 for h in headers)
    assert jar.read(apply({}, headers)) == value


def test_chunk_names_and_count_marker() -> None:
    jar = ChunkedCookie(name="s", budget=600, max_chunks=5)
    value = value_of(1500)
    cookies = apply({}, jar.write(value, cookies={}, https=True, max_age=60))
    assert sorted(cookies) == ["s", "s.1", "s.2"]
    assert cookies["s"].startswith("3~")
    assert jar.read(cookies) == value


@settings(max_examples=150, deadline=None)
@given(
    size=st.integers(min_value=0, max_value=4 * 900),
    https=st.booleans(),
    max_age=st.none() | st.integers(min_value=1, max_value=10**9),
)
def test_property_every_header_fits_and_round_trips(
    size: int, https: bool, max_age: int | None
) -> None:
    jar = ChunkedCookie(name="oidc_session", budget=1000, max_chunks=4)
    value = value_of(size)
    headers = jar.write(value, cookies={}, https=https, max_age=max_age)
    assert all(len(h.encode("latin-1")) <= 1000 for h in headers)
    assert jar.read(apply({}, headers)) == value


def test_value_needing_too_many_chunks_is_a_coded_error() -> None:
    jar = ChunkedCookie(name="s", budget=600, max_chunks=2)
    with pytest.raises(OIDCError) as info:
        jar.write(value_of(1300), cookies={}, https=True, max_age=60)
    assert info.value.code == "session_too_large"


def test_value_with_forbidden_characters_is_refused_before_splitting() -> None:
    with pytest.raises(OIDCError) as info:
        ChunkedCookie(name="s").write("a;b", cookies={}, https=True, max_age=60)
    assert info.value.code == "invalid_cookie_value"


# --- stale chunks, shrinking and logout ---------------------------------------------------


def test_shrinking_expires_every_stale_chunk() -> None:
    jar = ChunkedCookie(name="s", budget=600, max_chunks=4)
    big = apply({"other": "keep"}, jar.write(value_of(2000), cookies={}, https=True, max_age=60))
    assert sorted(big) == ["other", "s", "s.1", "s.2", "s.3"]

    headers = jar.write("small", cookies=big, https=True, max_age=60)
    expired = [h.split("=", 1)[0] for h in headers if "Max-Age=0" in h]
    assert expired == ["s.1", "s.2", "s.3"]
    after = apply(big, headers)
    assert after == {"other": "keep", "s": "1~small"}
    assert jar.read(after) == "small"


def test_growing_then_shrinking_to_two_chunks() -> None:
    jar = ChunkedCookie(name="s", budget=600, max_chunks=4)
    jar_state = apply({}, jar.write(value_of(2000), cookies={}, https=False, max_age=60))
    headers = jar.write(value_of(800), cookies=jar_state, https=False, max_age=60)
    after = apply(jar_state, headers)
    assert sorted(after) == ["s", "s.1"]
    assert jar.read(after) == value_of(800)


def test_stale_chunk_left_by_a_racing_response_is_ignored() -> None:
    """A response built from a request that saw one chunk cannot expire chunks it never saw.

    (auth0/nextjs-auth0 #1293.) The head's count marker keeps the read correct anyway.
    """
    jar = ChunkedCookie(name="s", budget=600, max_chunks=4)
    old_request = apply({}, jar.write("tiny", cookies={}, https=True, max_age=60))
    browser = apply(old_request, jar.write(value_of(1500), cookies={}, https=True, max_age=60))
    browser = apply(browser, jar.write("new", cookies=old_request, https=True, max_age=60))
    assert "s.1" in browser  # left behind
    assert jar.read(browser) == "new"


def test_chunks_with_odd_indexes_are_not_ours() -> None:
    jar = ChunkedCookie(name="s")
    cookies = {"s": "1~v", "s.01": "x", "s.x": "x", "s.1000": "x", "s.1.1": "x", "s.7": "x"}
    headers = jar.write("v", cookies=cookies, https=True, max_age=60)
    assert [h.split("=", 1)[0] for h in headers] == ["s", "s.7"]


def test_clear_expires_head_and_every_chunk() -> None:
    jar = ChunkedCookie(name="s", budget=600)
    browser = apply({"other": "1"}, jar.write(value_of(1500), cookies={}, https=True, max_age=60))
    headers = jar.clear(browser, https=True)
    assert [h.split("=", 1)[0] for h in headers] == ["s", "s.1", "s.2"]
    assert all("Max-Age=0" in h and "; Secure;" in h for h in headers)
    assert apply(browser, headers) == {"other": "1"}


def test_clear_without_cookies_still_expires_the_head() -> None:
    assert [h.split("=", 1)[0] for h in ChunkedCookie(name="s").clear({}, https=False)] == ["s"]


def test_present() -> None:
    jar = ChunkedCookie(name="s")
    assert jar.present({"s": "x"})
    assert jar.present({"s.2": "x"})
    assert not jar.present({"sx": "x", "other": "y"})


@pytest.mark.parametrize(
    "cookies",
    [
        pytest.param({}, id="absent"),
        pytest.param({"s": "abc"}, id="no-count-marker"),
        pytest.param({"s": "0~abc"}, id="zero-count"),
        pytest.param({"s": "01~abc"}, id="leading-zero-count"),
        pytest.param({"s": "x~abc"}, id="non-numeric-count"),
        pytest.param({"s": "-1~abc"}, id="negative-count"),
        pytest.param({"s": "5~abc", "s.1": "a", "s.2": "b", "s.3": "c", "s.4": "d"}, id="over-cap"),
        pytest.param({"s": "2~abc"}, id="missing-chunk"),
        pytest.param({"s": "3~abc", "s.2": "x"}, id="gap-in-chunks"),
        pytest.param({"s.1": "abc"}, id="chunk-without-head"),
        pytest.param({"s": "\u0661~abc"}, id="unicode-digit-count"),
    ],
)
def test_read_refuses_partial_or_malformed(cookies: dict[str, str]) -> None:
    assert ChunkedCookie(name="s", max_chunks=4).read(cookies) is None


# --- with the codec -----------------------------------------------------------------------


def test_a_3kb_token_session_round_trips_through_chunks() -> None:
    codec = SessionCodec(secrets=["s" * 32], now=lambda: 1_700_000_000.0)
    jar = ChunkedCookie(name="oidc_session")
    data = {"id_token": "i" * 1200, "access_token": "a" * 1200, "refresh_token": "r" * 600}
    headers = jar.write(
        codec.encode(data, cookie_name=jar.name), cookies={}, https=True, max_age=3600
    )
    assert len(headers) == 2
    browser = apply({}, headers)
    session = codec.decode(jar.read(browser), cookie_name=jar.name)
    assert session is not None
    assert session.data == data
    # A chunk swapped from another session's cookie breaks authentication: no session.
    other = apply({}, jar.write(codec.encode(data, cookie_name=jar.name), cookies={}, https=True,
                                max_age=3600))  # fmt: skip
    mixed = {**browser, "oidc_session.1": other["oidc_session.1"]}
    assert codec.decode(jar.read(mixed), cookie_name=jar.name) is None


@settings(max_examples=200, deadline=None)
@given(
    cookies=st.dictionaries(
        st.sampled_from(["s", "s.1", "s.2", "s.3", "s.01", "s.", "t"]), st.text(max_size=20)
    )
)
def test_property_read_never_raises(cookies: dict[str, str]) -> None:
    value = ChunkedCookie(name="s").read(cookies)
    assert value is None or isinstance(value, str)
