"""Security review findings outside the bearer pillar, each pinned by a test.

A downstream API's ``WWW-Authenticate`` challenge is input from another service: it must never
crash the calling API, and what the API passes back to its own caller must keep RFC 6750's
character rules.
"""

from __future__ import annotations

import re

import pytest

from oidc_asgi.downstream import DownstreamChallenge, parse_www_authenticate

# RFC 6750 section 3: error, error_description (and scope) use %x20-21 / %x23-5B / %x5D-7E.
_RFC6750_VALUE = re.compile(r'"([\x20\x21\x23-\x5b\x5d-\x7e]*)"')


@pytest.mark.parametrize(
    ("max_age", "expected"),
    [
        pytest.param("9" * 5000, None, id="max-age-beyond-int-digit-limit"),
        pytest.param("300", 300, id="max-age-ordinary"),
    ],
)
def test_step_up_challenge_with_hostile_max_age_does_not_crash_rfc9470_s3(
    max_age: str, expected: int | None
) -> None:
    header = f'Bearer error="insufficient_user_authentication", max_age="{max_age}"'
    (scheme, params), *_ = parse_www_authenticate([header])
    exc = DownstreamChallenge.from_params(params, status_code=401)
    assert (scheme, exc.error, exc.max_age) == (
        "bearer",
        "insufficient_user_authentication",
        expected,
    )


@pytest.mark.parametrize(
    "description",
    [
        pytest.param('say "hi"', id="double-quote"),
        pytest.param("back\\slash", id="backslash"),
        pytest.param("line\r\nSet-Cookie: x=1", id="crlf"),
        pytest.param("caf\u00e9", id="non-ascii"),
    ],
)
def test_passed_back_challenge_keeps_rfc6750_s3_characters(description: str) -> None:
    exc = DownstreamChallenge(
        "insufficient_user_authentication",
        error_description=description,
        acr_values='urn:a "b"',
        status_code=401,
    )
    header = exc.www_authenticate(realm='gate"way')
    assert not set("\r\n\\") & set(header)
    body = header.removeprefix("Bearer ")
    for part in body.split(", "):
        name, _, value = part.partition("=")
        assert _RFC6750_VALUE.fullmatch(value), (name, value)
    reparsed = dict(parse_www_authenticate([header])[0][1])
    assert reparsed["error"] == "insufficient_user_authentication"
    assert set(reparsed) == {"realm", "error", "error_description", "acr_values"}
