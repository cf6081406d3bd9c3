"""Which requests need sign-in, and how an unauthenticated request is answered."""

from __future__ import annotations

import pytest

from ._support import APP, BROWSER_HEADERS, ISSUER, LOA2, Harness, location, query_of, set_cookies


@pytest.mark.parametrize(
    ("headers", "navigation"),
    [
        pytest.param(BROWSER_HEADERS, True, id="fetch-metadata-navigate"),
        pytest.param({"accept": "text/html"}, True, id="accept-html-no-fetch-metadata"),
        pytest.param({"sec-fetch-mode": "cors", "accept": "text/html"}, False, id="fetch-cors"),
        pytest.param({"accept": "text/html", "x-requested-with": "XMLHttpRequest"}, False,
                     id="xhr"),
        pytest.param({"accept": "text/html", "hx-request": "true"}, False, id="htmx"),
        pytest.param({"accept": "application/json"}, False, id="json-api"),
        pytest.param({"accept": "*/*"}, False, id="no-preference"),
    ],
)  # fmt: skip
async def test_challenge_knows_the_request_type(
    harness: Harness, headers: dict[str, str], navigation: bool
) -> None:
    app = harness.wrap()
    async with harness.client(app) as client:
        response = await client.get("/private/report?q=1", headers=headers)
        if navigation:
            assert response.status_code == 302
            assert location(response).startswith(f"{ISSUER}/authorize?")
            assert any(name.startswith("oidc_tx.") for name in set_cookies(response))
        else:
            assert response.status_code == 401
            assert response.json() == {
                "error": "login_required",
                "login_url": f"{APP}/login?return_to=%2Fprivate%2Freport%3Fq%3D1",
            }
            assert response.headers["www-authenticate"].startswith("OIDC ")
            assert not set_cookies(response)


async def test_post_to_protected_path_is_401_not_a_redirect(harness: Harness) -> None:
    app = harness.wrap()
    async with harness.client(app, browser=True) as client:
        assert (await client.post("/private/x")).status_code == 401


async def test_public_paths_inside_protected_prefix(harness: Harness) -> None:
    app = harness.wrap(protect=["/"], public_paths=["/public"])
    async with harness.client(app) as client:
        assert (await client.get("/public/x")).status_code == 200
        assert (await client.get("/", headers={"accept": "application/json"})).status_code == 401
        # the sign-in routes themselves always work
        assert (await client.get("/login")).status_code == 302


async def test_prefix_matches_whole_segments(harness: Harness) -> None:
    app = harness.wrap(protect=["/priv"])
    async with harness.client(app) as client:
        response = await client.get("/private/x", headers={"accept": "application/json"})
        assert response.status_code == 200


async def test_decorator_guards_a_route(harness: Harness) -> None:
    app = harness.wrap()
    async with harness.client(app) as client:
        anonymous = await client.get("/guarded", headers={"accept": "application/json"})
        assert anonymous.status_code == 401
        await harness.sign_in(client)
        assert (await client.get("/guarded")).text == "guarded Alice Liddell"


async def test_claim_requirement_is_403(harness: Harness) -> None:
    app = harness.wrap()
    async with harness.client(app) as client:
        await harness.sign_in(client)
        response = await client.get("/bob", headers={"accept": "application/json"})
        assert response.status_code == 403
        assert response.json()["error"] == "insufficient_claims"
        assert response.json()["claim"] == "email"


async def test_step_up_sends_acr_values_and_checks_them_at_the_callback(
    harness: Harness,
) -> None:
    app = harness.wrap()
    async with harness.client(app) as client:
        await harness.sign_in(client)
        assert (await client.get("/me")).json()["acr"] != LOA2
        challenge = await client.get("/strong", headers=BROWSER_HEADERS)
        assert challenge.status_code == 302
        assert query_of(location(challenge))["acr_values"] == LOA2
        answer = await harness.provider_login(location(challenge))
        done = await client.get("/callback", params=answer)
        assert location(done) == f"{APP}/strong"
        assert (await client.get("/strong")).text == "strong"
        assert (await client.get("/me")).json()["acr"] == LOA2


async def test_login_forwards_only_allow_listed_parameters(harness: Harness) -> None:
    app = harness.wrap(
        authorization_params={"ui_locales": "fr"}, audience="http://127.0.0.1:8001/api"
    )
    async with harness.client(app) as client:
        response = await client.get(
            "/login",
            params={
                "login_hint": "bob",
                "prompt": "login",
                "redirect_uri": "https://evil.example/cb",
                "client_id": "other",
                "state": "chosen",
                "foo": "bar",
            },
        )
        params = query_of(location(response))
        assert params["login_hint"] == "bob"
        assert params["prompt"] == "login"
        assert params["redirect_uri"] == f"{APP}/callback"
        assert params["client_id"] == "rp"
        assert params["state"] != "chosen"
        assert "foo" not in params
        assert params["ui_locales"] == "fr"
        assert params["resource"] == "http://127.0.0.1:8001/api"  # audience_parameter default


OPEN_REDIRECTS = [
    "//evil.example/",
    "/\\evil.example",
    "\\\\evil.example",
    "https://evil.example/",
    "/%2F%2Fevil.example",
    "/%5Cevil.example",
    "/\t/evil.example",
    "javascript:alert(1)",
    "https://127.0.0.1:8000@evil.example/",
    "http://127.0.0.1:8001/other-port",
]


@pytest.mark.parametrize("target", OPEN_REDIRECTS)
async def test_open_redirect_attempts_land_on_the_default(harness: Harness, target: str) -> None:
    app = harness.wrap()
    async with harness.client(app) as client:
        start = await client.get("/login", params={"return_to": target})
        answer = await harness.provider_login(location(start))
        done = await client.get("/callback", params=answer)
        assert done.status_code == 303
        assert location(done) == f"{APP}/"


async def test_same_origin_absolute_return_address_is_reduced_to_a_path(harness: Harness) -> None:
    app = harness.wrap()
    async with harness.client(app) as client:
        start = await client.get("/login", params={"return_to": f"{APP}/private/a?b=1"})
        done = await client.get("/callback", params=await harness.provider_login(location(start)))
        assert location(done) == f"{APP}/private/a?b=1"


async def test_websocket_on_protected_path_is_closed(harness: Harness) -> None:
    app = harness.wrap()
    sent: list[dict[str, object]] = []

    async def receive() -> dict[str, object]:
        return {"type": "websocket.connect"}

    async def send(message: dict[str, object]) -> None:
        sent.append(message)

    scope = {"type": "websocket", "path": "/private/ws", "headers": [], "query_string": b""}
    await app(scope, receive, send)  # type: ignore[arg-type]
    assert sent == [{"type": "websocket.close", "code": 1008}]


async def test_lifespan_passes_through(harness: Harness) -> None:
    seen: list[str] = []

    async def inner(scope: dict[str, object], receive: object, send: object) -> None:
        seen.append(str(scope["type"]))

    app = harness.wrap(inner)  # type: ignore[arg-type]
    await app({"type": "lifespan"}, None, None)  # type: ignore[arg-type]
    assert seen == ["lifespan"]
