"""``oidc_asgi.testing.sign_in`` behaves like a browser, so it can start at a protected page."""

from __future__ import annotations

from ._support import Harness


async def test_sign_in_starts_at_a_protected_page(harness: Harness) -> None:
    app = harness.wrap(protect=["/private"])
    async with harness.client(app) as client:  # no default headers: sign_in sends its own
        before = await client.get("/private/report")
        assert before.status_code == 401  # an API-like request is not redirected
        response = await harness.sign_in(client, start="/private/report")
        assert response.status_code == 200, response.text
        assert response.text == "page /private/report"
        assert (await client.get("/me")).json()["sub"] is not None
