"""The guarded JSON fetch under every provider call: https, deadline, redirects, size, JSON."""

from __future__ import annotations

import asyncio
import gzip
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from oidc_asgi._http import (
    InsecureTransportWarning,
    ProviderStatusError,
    cache_max_age,
    fetch_json,
    parse_json_object,
    require_https,
    warn_insecure_http,
)
from oidc_asgi.errors import ConfigurationError, ProviderUnavailable

URL = "https://idp.example/doc"
Handler = Callable[[httpx.Request], Any]


class Recorder:
    """A MockTransport handler that records every request and answers from a table."""

    def __init__(self, answer: Handler) -> None:
        self.answer = answer
        self.requests: list[httpx.Request] = []

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        result = self.answer(request)
        if asyncio.iscoroutine(result):
            result = await result
        assert isinstance(result, httpx.Response)
        return result

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=httpx.MockTransport(self))

    def urls(self) -> list[str]:
        return [str(r.url) for r in self.requests]


async def fetch(answer: Handler, url: str = URL, **kwargs: Any) -> Any:
    recorder = Recorder(answer)
    async with recorder.client() as client:
        return await fetch_json(client, url, **kwargs)


async def test_returns_object_with_cache_metadata() -> None:
    result = await fetch(
        lambda r: httpx.Response(
            200, json={"a": 1}, headers={"Cache-Control": "max-age=300", "ETag": '"v1"'}
        )
    )
    assert result.data == {"a": 1}
    assert result.max_age == 300
    assert result.etag == '"v1"'
    assert result.status == 200
    assert not result.not_modified


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b"[1, 2]", id="array-not-object"),
        pytest.param(b'"text"', id="string-not-object"),
        pytest.param(b'{"a": 1, "a": 2}', id="duplicate-member-rfc8259-4"),
        pytest.param(b'{"a": {"b": 1, "b": 1}}', id="nested-duplicate-member"),
        pytest.param(b'{"a": NaN}', id="nan"),
        pytest.param(b'{"a": Infinity}', id="infinity"),
        pytest.param(b'{"a": -Infinity}', id="minus-infinity"),
        pytest.param(b'{"a": "\xff"}', id="invalid-utf8-rfc8259-8-1"),
        pytest.param(b"\xef\xbb\xbf{}", id="byte-order-mark"),
        pytest.param(b'{"a": 1', id="truncated"),
        pytest.param(b"<html>503</html>", id="html"),
        pytest.param(b"", id="empty"),
        pytest.param(b"[" * 100_000 + b"]" * 100_000, id="deep-nesting"),
    ],
)
async def test_non_strict_json_is_a_bad_response(body: bytes) -> None:
    with pytest.raises(ProviderUnavailable) as info:
        await fetch(lambda r: httpx.Response(200, content=body), max_bytes=1_000_000)
    assert info.value.code == "provider_bad_response"


def test_parse_json_object_accepts_plain_object() -> None:
    assert parse_json_object(b'{"n": 1.5, "l": [true, null]}') == {"n": 1.5, "l": [True, None]}


@pytest.mark.parametrize(
    ("status", "retry_after", "expected_retry"),
    [
        pytest.param(500, None, None, id="500"),
        pytest.param(502, None, None, id="502"),
        pytest.param(503, "7", 7, id="503-retry-after"),
        pytest.param(429, "99999", 3600, id="429-retry-after-capped"),
        pytest.param(404, None, None, id="404"),
        pytest.param(503, "Wed, 21 Oct 2015 07:28:00 GMT", None, id="503-http-date-ignored"),
    ],
)
async def test_unexpected_status_is_provider_http_error(
    status: int, retry_after: str | None, expected_retry: int | None
) -> None:
    headers = {"Retry-After": retry_after} if retry_after else {}
    with pytest.raises(ProviderStatusError) as info:
        await fetch(lambda r: httpx.Response(status, json={"error": "x"}, headers=headers))
    assert info.value.code == "provider_http_error"
    assert info.value.status_code == status
    assert info.value.retry_after == expected_retry


@pytest.mark.parametrize(
    ("exc", "code"),
    [
        pytest.param(httpx.ConnectTimeout("t"), "provider_timeout", id="connect-timeout"),
        pytest.param(httpx.ReadTimeout("t"), "provider_timeout", id="read-timeout"),
        pytest.param(httpx.PoolTimeout("t"), "provider_timeout", id="pool-timeout"),
        pytest.param(httpx.ConnectError("refused"), "provider_unreachable", id="connect-error"),
        pytest.param(httpx.ReadError("reset"), "provider_unreachable", id="read-error"),
        pytest.param(httpx.RemoteProtocolError("bad"), "provider_unreachable", id="protocol-error"),
    ],
)
async def test_transport_failures_have_distinct_codes(exc: Exception, code: str) -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        raise exc

    with pytest.raises(ProviderUnavailable) as info:
        await fetch(answer)
    assert info.value.code == code


async def test_deadline_covers_a_body_that_never_finishes() -> None:
    """A server trickling its body is cut off by the one overall deadline, not per read."""
    never = asyncio.Event()

    async def trickle() -> AsyncIterator[bytes]:
        yield b'{"a":'
        await never.wait()
        yield b"1}"  # pragma: no cover - the deadline fires first

    with pytest.raises(ProviderUnavailable) as info:
        await fetch(lambda r: httpx.Response(200, content=trickle()), timeout=0.01)
    assert info.value.code == "provider_timeout"


async def test_declared_oversize_is_rejected_before_reading() -> None:
    with pytest.raises(ProviderUnavailable) as info:
        await fetch(lambda r: httpx.Response(200, content=b"{}" + b" " * 2000), max_bytes=1000)
    assert info.value.code == "provider_response_too_large"


async def test_streamed_oversize_stops_reading_at_the_cap() -> None:
    produced: list[int] = []

    async def endless() -> AsyncIterator[bytes]:
        for i in range(1000):
            produced.append(i)
            yield b" " * 100

    with pytest.raises(ProviderUnavailable) as info:
        await fetch(lambda r: httpx.Response(200, content=endless()), max_bytes=1000)
    assert info.value.code == "provider_response_too_large"
    assert len(produced) <= 11  # stopped right after crossing the cap, not at the end


async def test_size_cap_applies_after_gzip_decoding() -> None:
    bomb = gzip.compress(b'{"a": "' + b"x" * 200_000 + b'"}')
    assert len(bomb) < 1000
    with pytest.raises(ProviderUnavailable) as info:
        await fetch(
            lambda r: httpx.Response(200, content=bomb, headers={"Content-Encoding": "gzip"}),
            max_bytes=10_000,
        )
    assert info.value.code == "provider_response_too_large"


async def test_cross_origin_redirect_is_refused_and_target_never_called() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.host == "idp.example":
            return httpx.Response(302, headers={"Location": "https://evil.example/doc"})
        return httpx.Response(200, json={"keys": []})

    recorder = Recorder(answer)
    async with recorder.client() as client:
        with pytest.raises(ProviderUnavailable) as info:
            await fetch_json(client, URL)
    assert info.value.code == "provider_redirect"
    assert recorder.urls() == [URL]


@pytest.mark.parametrize(
    "location",
    [
        pytest.param("https://evil.example/doc", id="other-host"),
        pytest.param("http://idp.example/doc", id="downgrade-to-http"),
        pytest.param("https://idp.example:8443/doc", id="other-port"),
        pytest.param("//evil.example/doc", id="scheme-relative"),
    ],
)
async def test_redirect_to_another_origin_is_refused(location: str) -> None:
    recorder = Recorder(lambda r: httpx.Response(301, headers={"Location": location}))
    async with recorder.client() as client:
        with pytest.raises(ProviderUnavailable) as info:
            await fetch_json(client, URL)
    assert info.value.code == "provider_redirect"
    assert len(recorder.requests) == 1


async def test_same_origin_redirect_is_followed() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/doc":
            return httpx.Response(308, headers={"Location": "/doc/"})
        return httpx.Response(200, json={"ok": True})

    result = await fetch(answer)
    assert result.data == {"ok": True}
    assert result.url == "https://idp.example/doc/"


async def test_redirect_loop_stops_after_a_few_hops() -> None:
    recorder = Recorder(lambda r: httpx.Response(302, headers={"Location": "/doc"}))
    async with recorder.client() as client:
        with pytest.raises(ProviderUnavailable) as info:
            await fetch_json(client, URL)
    assert info.value.code == "provider_redirect"
    assert len(recorder.requests) == 4


async def test_client_follow_redirects_setting_is_overridden() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.host == "idp.example":
            return httpx.Response(302, headers={"Location": "https://evil.example/doc"})
        return httpx.Response(200, json={})  # pragma: no cover - must not be reached

    recorder = Recorder(answer)
    transport = httpx.MockTransport(recorder)
    async with httpx.AsyncClient(transport=transport, follow_redirects=True) as client:
        with pytest.raises(ProviderUnavailable):
            await fetch_json(client, URL)
    assert recorder.urls() == [URL]


async def test_post_never_follows_redirects() -> None:
    recorder = Recorder(lambda r: httpx.Response(307, headers={"Location": "/token2"}))
    async with recorder.client() as client:
        with pytest.raises(ProviderUnavailable) as info:
            await fetch_json(client, "https://idp.example/token", form={"grant_type": "x"})
    assert info.value.code == "provider_redirect"
    assert len(recorder.requests) == 1


async def test_form_post_with_accepted_error_status() -> None:
    """A token endpoint's 400 carries an RFC 6749 section 5.2 error object the caller reads."""
    recorder = Recorder(lambda r: httpx.Response(400, json={"error": "invalid_grant"}))
    async with recorder.client() as client:
        result = await fetch_json(
            client,
            "https://idp.example/token",
            form={"grant_type": "authorization_code", "code": "abc"},
            headers={"Authorization": "Basic eDp5"},
            accept=(200, 400, 401),
        )
    assert result.status == 400
    assert result.data == {"error": "invalid_grant"}
    sent = recorder.requests[0]
    assert sent.method == "POST"
    assert sent.headers["content-type"] == "application/x-www-form-urlencoded"
    assert sent.headers["authorization"] == "Basic eDp5"
    assert sent.content == b"grant_type=authorization_code&code=abc"


async def test_messages_never_include_body_or_query() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(500, json={"access_token": "SECRET-TOKEN"})

    with pytest.raises(ProviderUnavailable) as info:
        await fetch(answer, "https://user:pw@idp.example/token?code=SECRET-CODE")
    text = str(info.value) + repr(info.value)
    assert "SECRET" not in text
    assert "pw" not in text
    assert "https://idp.example/token" in text


async def test_bad_json_message_holds_no_body() -> None:
    with pytest.raises(ProviderUnavailable) as info:
        await fetch(lambda r: httpx.Response(200, content=b'{"id_token": "SECRET", "x": NaN}'))
    assert "SECRET" not in str(info.value)


async def test_conditional_get_returns_not_modified() -> None:
    recorder = Recorder(
        lambda r: httpx.Response(304, headers={"ETag": '"v1"', "Cache-Control": "max-age=60"})
    )
    async with recorder.client() as client:
        result = await fetch_json(client, URL, etag='"v1"')
    assert result.not_modified
    assert result.data == {}
    assert result.max_age == 60
    assert recorder.requests[0].headers["if-none-match"] == '"v1"'


async def test_304_without_conditional_request_is_an_error() -> None:
    with pytest.raises(ProviderStatusError):
        await fetch(lambda r: httpx.Response(304))


@pytest.mark.parametrize(
    ("url", "allow", "code"),
    [
        pytest.param("http://idp.example/x", False, "insecure_url", id="plain-http"),
        pytest.param("ftp://idp.example/x", True, "invalid_url", id="ftp"),
        pytest.param("/relative", True, "invalid_url", id="relative"),
        pytest.param("https://", False, "invalid_url", id="no-host"),
        pytest.param("https://idp.example:99999/", False, "invalid_url", id="bad-port"),
    ],
)
def test_refused_urls(url: str, allow: bool, code: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        require_https(url, allow_insecure_http=allow)
    assert info.value.code == code


@pytest.mark.parametrize(
    "url",
    [
        pytest.param("https://idp.example/x", id="https"),
        pytest.param("http://localhost:8080/x", id="localhost"),
        pytest.param("http://127.0.0.1:8080/x", id="ipv4-loopback"),
        pytest.param("http://127.8.9.1/x", id="ipv4-loopback-range"),
        pytest.param("http://[::1]:8080/x", id="ipv6-loopback"),
    ],
)
def test_allowed_urls_without_the_switch(url: str) -> None:
    require_https(url, allow_insecure_http=False)


def test_insecure_switch_allows_plain_http() -> None:
    require_https("http://idp.example/x", allow_insecure_http=True)


async def test_fetch_refuses_plain_http_before_any_request() -> None:
    recorder = Recorder(lambda r: httpx.Response(200, json={}))
    async with recorder.client() as client:
        with pytest.raises(ConfigurationError) as info:
            await fetch_json(client, "http://idp.example/doc")
    assert info.value.code == "insecure_url"
    assert recorder.requests == []


def test_insecure_warning_is_a_dedicated_category() -> None:
    with pytest.warns(InsecureTransportWarning, match="allow_insecure_http"):
        warn_insecure_http("Thing()")


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        pytest.param({}, None, id="absent"),
        pytest.param({"Cache-Control": "max-age=300"}, 300, id="max-age"),
        pytest.param({"Cache-Control": "public, max-age=60, must-revalidate"}, 60, id="list"),
        pytest.param({"Cache-Control": "MAX-AGE=60"}, 60, id="case-insensitive"),
        pytest.param({"Cache-Control": 'max-age="30"'}, 30, id="quoted"),
        pytest.param({"Cache-Control": "max-age=abc"}, None, id="not-a-number"),
        pytest.param({"Cache-Control": "max-age=-5"}, None, id="negative"),
        pytest.param({"Cache-Control": "no-store"}, 0, id="no-store"),
        pytest.param({"Cache-Control": "no-cache, max-age=600"}, 0, id="no-cache-wins"),
        pytest.param({"Cache-Control": "max-age=600, max-age=60"}, 60, id="duplicate-smallest"),
        pytest.param({"Cache-Control": "max-age=300", "Age": "100"}, 200, id="age-rfc9111-4-2-3"),
        pytest.param({"Cache-Control": "max-age=300", "Age": "900"}, 0, id="age-beyond"),
        pytest.param({"Cache-Control": "s-maxage=300"}, None, id="shared-cache-only"),
    ],
)
def test_cache_max_age(headers: dict[str, str], expected: float | None) -> None:
    assert cache_max_age(httpx.Headers(headers)) == expected
