"""Security review of the web sign-in middleware: hostile input that used to end in a 500,
and attacks on the back-channel logout, token refresh and logout paths.

Each case names the attack; a finding stays fixed only while its row here passes.
"""

from __future__ import annotations

import pytest

from ._support import Harness, set_cookies

# Login requests an attacker can make a browser send (a link or an <img>): each must end in
# a redirect to the provider or a 4xx, never a 500, and never set an oversized cookie.
HOSTILE_LOGINS = [
    pytest.param("/login?max_age=%C2%B2", id="max_age-superscript-digit"),
    pytest.param("/login?max_age=%D9%A3", id="max_age-arabic-indic-digit"),
    pytest.param("/login?max_age=%EF%BC%95", id="max_age-fullwidth-digit"),
    pytest.param("/login?acr_values=" + "urn:acr:x+" * 600, id="acr_values-6kb"),
    pytest.param(
        "/login?acr_values=" + "a" * 2000 + "&return_to=/" + "b" * 2000, id="acr-and-return-to"
    ),
    pytest.param(
        "/login?acr_values=" + "a" * 900 + "&return_to=/" + "b" * 2000,
        id="payload-fits-codec-cookie-does-not",
    ),
]


@pytest.mark.parametrize("path", HOSTILE_LOGINS)
async def test_hostile_login_requests_never_answer_500(harness: Harness, path: str) -> None:
    app = harness.wrap()
    async with harness.client(app) as client:
        response = await client.get(path)
    assert response.status_code in (302, 400), response.text
    for header in set_cookies(response).values():
        # RFC 6265 section 6.1: browsers keep about 4096 bytes per cookie; more is dropped.
        assert len(header) <= 4096


async def test_non_ascii_max_age_is_ignored_not_sent(harness: Harness) -> None:
    app = harness.wrap()
    async with harness.client(app) as client:
        response = await client.get("/login?max_age=%C2%B2")
    assert response.status_code == 302
    assert "max_age" not in response.headers["location"]


async def test_oversized_login_request_is_a_coded_400(harness: Harness) -> None:
    app = harness.wrap()
    async with harness.client(app) as client:
        response = await client.get(
            "/login?acr_values=" + "urn:acr:x+" * 600, headers={"accept": "application/json"}
        )
    assert response.status_code == 400
    assert response.json()["error"] == "login_request_too_large"
    assert "set-cookie" not in response.headers
