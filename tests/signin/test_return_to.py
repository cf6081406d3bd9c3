"""The return-address normaliser against open-redirect payloads, and what it lets through."""

from __future__ import annotations

from urllib.parse import urljoin, urlsplit

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from oidc_asgi.signin import normalize_return_to

BASE = "https://app.example"
DEFAULT = "/home"

OPEN_REDIRECTS = {
    # protocol-relative and slash/backslash mixes (browsers treat "\" as "/")
    "protocol-relative": "//evil.example",
    "protocol-relative-path": "//evil.example/path",
    "triple-slash": "///evil.example",
    "slash-backslash": "/\\evil.example",
    "backslash-slash": "\\/evil.example",
    "double-backslash": "\\\\evil.example",
    "single-backslash": "\\evil.example",
    "backslash-later-in-path": "/ok\\..\\..\\evil.example",
    "backslash-in-query": "/ok?x=\\",
    # encoded slashes and backslashes, single and double encoded
    "encoded-slash-lower": "/%2fevil.example",
    "encoded-slash-upper": "/%2Fevil.example",
    "encoded-double-slash": "%2F%2Fevil.example",
    "encoded-backslash": "/%5cevil.example",
    "encoded-backslash-upper": "/%5Cevil.example",
    "double-encoded-slash": "/%252f%252fevil.example",
    "double-encoded-backslash": "/%255cevil.example",
    "triple-encoded-slash": "/%25252fevil.example",
    "deeply-encoded-slash": "/%2525252525252fevil.example",
    "encoded-slash-mid-path": "/a%2fb",
    # control characters and whitespace tricks (the URL parser strips tab/CR/LF)
    "tab-between-slashes": "/\t/evil.example",
    "newline-between-slashes": "/\n/evil.example",
    "cr-between-slashes": "/\r/evil.example",
    "leading-space": " //evil.example",
    "leading-tab": "\t/ok",
    "space-in-path": "/a b",
    "nul-byte": "/ok\x00",
    "del-char": "/ok\x7f",
    "crlf-header-injection": "/ok\r\nSet-Cookie: x=y",
    "encoded-tab-between-slashes": "/%09/evil.example",
    "encoded-crlf": "/ok%0d%0aSet-Cookie:x",
    "encoded-nul": "/ok%00",
    "nbsp": "/\u00a0/evil.example",
    "ideographic-space": "/\u3000/evil.example",
    "line-separator": "/\u2028/evil.example",
    "fullwidth-solidus": "/\uff0fevil.example",
    "encoded-fullwidth-solidus": "/%EF%BC%8Fevil.example",
    "encoded-fullwidth-reverse-solidus": "/%EF%BC%BCevil.example",
    "encoded-one-dot-leader": "/%E2%80%A4%E2%80%A4/x",
    "encoded-nbsp": "/%C2%A0/evil.example",
    "encoded-invalid-utf8": "/%ff%fe",
    # other schemes
    "javascript": "javascript:alert(1)",
    "javascript-upper": "JaVaScRiPt:alert(1)",
    "javascript-comment-newline": "javascript://%0aalert(1)",
    "data-url": "data:text/html,<script>alert(1)</script>",
    "vbscript": "vbscript:msgbox(1)",
    "ftp": "ftp://evil.example/",
    "scheme-relative-path-trick": "https:/evil.example",
    "scheme-no-slashes": "https:evil.example",
    "http-downgrade-same-host": "http://app.example/x",
    # absolute URLs to other origins and origin confusion
    "other-origin": "https://evil.example/",
    "other-port": "https://app.example:8443/x",
    "subdomain": "https://evil.app.example/",
    "suffix-domain": "https://app.example.evil.example/",
    "userinfo": "https://app.example@evil.example/",
    "userinfo-empty": "https://@evil.example/",
    "same-host-userinfo": "https://user@app.example/",
    "same-origin-double-slash-path": "https://app.example//evil.example",
    "same-origin-encoded-slash-path": "https://app.example/%2f%2fevil.example",
    "same-origin-backslash-path": "https://app.example/\\evil.example",
    "bad-port": "https://app.example:99999/",
    "empty-host": "https:///evil.example",
    # dot segments, empty segments, relative forms
    "dot-dot-segment": "/a/../b",
    "dot-segment": "/a/./b",
    "trailing-dot-dot": "/a/..",
    "encoded-dot-dot": "/a/%2e%2e/b",
    "double-encoded-dot-dot": "/a/%252e%252e/b",
    "empty-segment": "/a//b",
    "relative-path": "dashboard",
    "relative-dot": "./dashboard",
    "query-only": "?next=/x",
    "fragment-only": "#/x",
    "empty": "",
    # size
    "overlong": "/" + "a" * 3000,
}


@pytest.mark.parametrize("payload", [pytest.param(v, id=k) for k, v in OPEN_REDIRECTS.items()])
def test_open_redirect_payloads_fall_back_to_default(payload: str) -> None:
    assert normalize_return_to(payload, default=DEFAULT, base_url=BASE) == DEFAULT


@pytest.mark.parametrize("payload", [pytest.param(v, id=k) for k, v in OPEN_REDIRECTS.items()])
def test_open_redirect_payloads_fall_back_without_base_url(payload: str) -> None:
    assert normalize_return_to(payload, default=DEFAULT) == DEFAULT


ACCEPTED = [
    ("root", "/", "/"),
    ("path", "/orders", "/orders"),
    ("nested-trailing-slash", "/a/b/", "/a/b/"),
    ("query", "/search?q=oidc&page=2", "/search?q=oidc&page=2"),
    ("fragment-dropped", "/docs#intro", "/docs"),
    ("query-and-fragment", "/docs?x=1#intro", "/docs?x=1"),
    ("empty-query-dropped", "/docs?", "/docs"),
    ("encoded-slash-in-query-is-data", "/login?next=%2F%2Fx", "/login?next=%2F%2Fx"),
    ("absolute-url-in-query-is-data", "/a?u=https://evil.example", "/a?u=https://evil.example"),
    ("encoded-space", "/a%20b", "/a%20b"),
    ("encoded-utf8", "/caf%C3%A9", "/caf%C3%A9"),
    ("literal-percent", "/100%25", "/100%25"),
    ("dots-in-names", "/file.v1.2/..x", "/file.v1.2/..x"),
    ("same-origin-absolute", "https://app.example/a?b=1#c", "/a?b=1"),
    ("same-origin-uppercase", "HTTPS://APP.EXAMPLE/a", "/a"),
    ("same-origin-default-port", "https://app.example:443/a", "/a"),
    ("same-origin-no-path", "https://app.example", "/"),
]


@pytest.mark.parametrize(
    ("payload", "expected"), [pytest.param(v, e, id=k) for k, v, e in ACCEPTED]
)
def test_same_origin_paths_are_kept(payload: str, expected: str) -> None:
    assert normalize_return_to(payload, default=DEFAULT, base_url=BASE) == expected


def test_absolute_urls_need_a_base_url() -> None:
    assert normalize_return_to("https://app.example/a", default=DEFAULT) == DEFAULT


def test_base_url_with_explicit_port() -> None:
    base = "http://localhost:8000"
    assert normalize_return_to("http://localhost:8000/x", base_url=base) == "/x"
    assert normalize_return_to("http://localhost/x", base_url=base) == "/"
    assert normalize_return_to("http://localhost:8001/x", base_url=base) == "/"


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        pytest.param("/x?a=1", "/x?a=1", id="relative-is-an-app-path"),
        pytest.param("https://app.example/portal/x?a=1#f", "/x?a=1", id="absolute-under-prefix"),
        pytest.param("https://app.example/portal", "/", id="absolute-prefix-itself"),
        pytest.param("https://app.example/portal/", "/", id="absolute-prefix-slash"),
        pytest.param("https://app.example/other/x", DEFAULT, id="absolute-outside-prefix"),
        pytest.param("https://app.example/portalx", DEFAULT, id="absolute-partial-segment"),
        pytest.param("https://app.example/PORTAL/x", DEFAULT, id="absolute-other-case"),
        pytest.param("https://app.example/%70ortal/x", DEFAULT, id="absolute-encoded-prefix"),
        pytest.param("https://app.example/portal//evil.example", DEFAULT, id="prefix-then-//"),
        pytest.param("https://app.example/portal/%2f%2fevil", DEFAULT, id="prefix-then-%2f"),
        pytest.param("https://evil.example/portal/x", DEFAULT, id="other-origin"),
    ],
)
@pytest.mark.parametrize("base", ["https://app.example/portal", "https://app.example/portal/"])
def test_base_url_path_prefix(payload: str, expected: str, base: str) -> None:
    assert normalize_return_to(payload, default=DEFAULT, base_url=base) == expected


@pytest.mark.parametrize(
    "value", [pytest.param(None, id="none"), pytest.param(42, id="not-a-string")]
)
def test_missing_value_gives_default(value: object) -> None:
    assert normalize_return_to(value, default=DEFAULT) == DEFAULT  # type: ignore[arg-type]


def test_max_length_is_configurable() -> None:
    assert normalize_return_to("/abcdef", max_length=5) == "/"
    assert normalize_return_to("/abcd", max_length=5) == "/abcd"


@pytest.mark.parametrize(
    "default",
    [
        pytest.param("//evil.example", id="unsafe-default"),
        pytest.param("https://evil.example", id="foreign-default"),
        pytest.param("", id="empty-default"),
    ],
)
def test_an_unsafe_default_falls_back_to_root(default: str) -> None:
    assert normalize_return_to("//x", default=default, base_url=BASE) == "/"


def test_default_is_normalised_too() -> None:
    assert normalize_return_to(None, default="/start#frag") == "/start"


@settings(max_examples=500, deadline=None)
@given(
    value=st.text(max_size=60)
    | st.from_regex(r"[/\\%2fFc5.:@a-z]{0,20}", fullmatch=True)
    | st.builds(lambda s: "https://app.example" + s, st.text(max_size=30))
)
def test_property_result_is_always_a_same_origin_path(value: str) -> None:
    result = normalize_return_to(value, default=DEFAULT, base_url=BASE)
    assert result.startswith("/")
    assert not result.startswith("//")
    assert "\\" not in result
    assert all("\x21" <= ch <= "\x7e" for ch in result)
    resolved = urlsplit(urljoin(BASE + "/some/page", result))
    assert (resolved.scheme, resolved.netloc) == ("https", "app.example")
    # Idempotent: what comes out passes again unchanged.
    assert normalize_return_to(result, default=DEFAULT, base_url=BASE) == result
