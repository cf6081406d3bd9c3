"""The ``api`` demo: four routes, scopes (RFC 6750 section 3.1), the JSON shape, CORS."""

from __future__ import annotations

import pytest

from oidc_asgi.testing import TokenFactory

from ._support import SPA, Demo, bearer


async def test_public_needs_no_token(demo: Demo) -> None:
    response = await demo.api_http.get("/api/public")
    assert response.status_code == 200
    assert response.json() == {"message": "Public: no token needed."}


@pytest.mark.parametrize(
    ("method", "path", "scopes"),
    [
        pytest.param("GET", "/api/private", [], id="private-any-token"),
        pytest.param("GET", "/api/messages", ["read:messages"], id="read-messages"),
        pytest.param("POST", "/api/messages", ["write:messages"], id="write-messages"),
    ],
)
async def test_right_scope_answers_who_called(
    demo: Demo, method: str, path: str, scopes: list[str]
) -> None:
    token = demo.token(*scopes, sub="bob")
    response = await demo.api_http.request(
        method, path, headers=bearer(token), json={"text": "hi"} if method == "POST" else None
    )
    assert response.status_code == (201 if method == "POST" else 200), response.text
    body = response.json()
    assert body["sub"] == "bob"
    assert body["client_id"] == "webapp"
    assert body["scopes"] == sorted(scopes)
    assert body["act"] is None


async def test_messages_round_trip(demo: Demo) -> None:
    writer = demo.token("write:messages", sub="bob")
    posted = await demo.api_http.post("/api/messages", headers=bearer(writer), json={"text": "x"})
    assert posted.json()["message"] == {"from": "bob", "text": "x"}
    reader = demo.token("read:messages")
    messages = (await demo.api_http.get("/api/messages", headers=bearer(reader))).json()
    assert messages["messages"][-1] == {"from": "bob", "text": "x"}
    assert messages["sub"] == "alice"
    assert messages["scopes"] == ["read:messages"]


@pytest.mark.parametrize(
    ("method", "path", "scopes", "status", "error"),
    [
        pytest.param("GET", "/api/private", None, 401, None, id="private-no-token"),
        pytest.param("GET", "/api/messages", None, 401, None, id="read-no-token"),
        pytest.param("POST", "/api/messages", None, 401, None, id="write-no-token"),
        pytest.param("GET", "/api/messages", [], 403, "insufficient_scope", id="read-no-scope"),
        pytest.param(
            "GET", "/api/messages", ["write:messages"], 403, "insufficient_scope",
            id="read-with-write-scope",
        ),
        pytest.param(
            "POST", "/api/messages", ["read:messages"], 403, "insufficient_scope",
            id="write-with-read-scope",
        ),
    ],
)  # fmt: skip
async def test_wrong_or_missing_scope_is_refused(
    demo: Demo, method: str, path: str, scopes: list[str] | None, status: int, error: str | None
) -> None:
    headers = bearer(demo.token(*scopes)) if scopes is not None else {}
    response = await demo.api_http.request(method, path, headers=headers, json={"text": "hi"})
    assert response.status_code == status
    challenge = response.headers["www-authenticate"]
    assert challenge.startswith("Bearer")
    if error is None:
        assert "error=" not in challenge  # RFC 6750 3.1: no error code without credentials
    else:
        assert f'error="{error}"' in challenge


@pytest.mark.parametrize(
    "audience",
    [
        pytest.param("http://127.0.0.1:8002/api", id="other-api-audience"),
        pytest.param("http://127.0.0.1:8004/api", id="unknown-audience"),
    ],
)
async def test_token_for_another_api_is_invalid(demo: Demo, audience: str) -> None:
    token = demo.token("read:messages", audience=audience)
    response = await demo.api_http.get("/api/messages", headers=bearer(token))
    assert response.status_code == 401
    assert 'error="invalid_token"' in response.headers["www-authenticate"]


async def test_bad_tokens_are_refused(demo: Demo) -> None:
    factory = TokenFactory(demo.provider)
    for case, token in factory.bad(scopes=["read:messages"]).as_dict().items():
        response = await demo.api_http.get("/api/messages", headers=bearer(token))
        assert response.status_code == 401, case


@pytest.mark.parametrize(
    ("origin", "allowed"),
    [
        pytest.param(SPA, True, id="spa-origin"),
        pytest.param("http://127.0.0.1:8000", False, id="webapp-origin"),
        pytest.param("https://evil.example", False, id="foreign-origin"),
    ],
)
async def test_cors_allows_the_spa_origin_only(demo: Demo, origin: str, allowed: bool) -> None:
    preflight = await demo.api_http.options(
        "/api/messages",
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "authorization",
        },
    )
    assert (preflight.headers.get("access-control-allow-origin") == origin) is allowed
    token = demo.token("read:messages")
    actual = await demo.api_http.get("/api/messages", headers={**bearer(token), "Origin": origin})
    assert (actual.headers.get("access-control-allow-origin") == origin) is allowed


async def test_openapi_documents_the_scopes(demo: Demo) -> None:
    document = (await demo.api_http.get("/openapi.json")).json()
    security = document["paths"]["/api/messages"]["post"]["security"]
    assert {"OAuth2": ["write:messages"]} in security or any(
        "write:messages" in scopes for item in security for scopes in item.values()
    )
