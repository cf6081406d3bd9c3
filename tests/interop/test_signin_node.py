"""``OIDCAuth`` signs a user in and out against node-oidc-provider (OpenID Certified).

The app runs in-process (``httpx.ASGITransport`` mounted at the redirect URI's origin, so the
scripted browser reaches it and the provider with one cookie jar); the middleware's own
``httpx.AsyncClient`` talks to the real provider over 127.0.0.1.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, Literal
from urllib.parse import urlencode

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from oidc_asgi.provider import Provider
from oidc_asgi.sessions import MemoryStore
from oidc_asgi.signin import (
    AccessTokenUnavailable,
    OIDCAuth,
    SignInWarning,
    get_access_token,
    get_user,
)
from oidc_asgi.tokens import AccessTokenExpectations, TokenValidator

from ._browser import Browser
from ._node_op import API, GATEWAY, NodeOP

pytestmark = pytest.mark.service("node")


async def _home(request: Request) -> JSONResponse:
    user = get_user(request)
    return JSONResponse(
        {"sub": user.sub, "email": user.get("email")} if user else {"sub": None, "email": None}
    )


@pytest.fixture
async def outbound() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=10) as client:
        yield client


@pytest.mark.parametrize("response_mode", ["query", "form_post"])
async def test_oidcauth_signs_in_and_out_with_node_oidc_provider(
    node_op: NodeOP,
    outbound: httpx.AsyncClient,
    response_mode: Literal["query", "form_post"],
) -> None:
    base = f"http://127.0.0.1:{node_op.signin_port}"
    app = OIDCAuth(
        Starlette(routes=[Route("/", _home)]),
        issuer=node_op.issuer,
        client_id="web",
        client_secret=node_op.web_secret,
        secrets=["interop-session-secret-0123456789abcdef"],
        base_url=base,
        response_mode=response_mode,
        scope=("openid", "email"),
        fetch_userinfo=True,  # email comes from userinfo, not the ID token (note 6)
        http_client=outbound,
    )
    mounts = {base: httpx.ASGITransport(app=app)}
    async with httpx.AsyncClient(mounts=mounts, timeout=10) as http:
        start = await http.get(f"{base}/login")
        assert start.status_code in (302, 303)
        browser = Browser(http, user="kim")
        answer = await browser.run(start.headers["location"], until=f"{base}/callback")
        assert answer.params is not None, browser.pages
        assert answer.params["iss"] == node_op.issuer  # RFC 9207 (note 3)
        if response_mode == "form_post":
            assert answer.method == "POST"
            callback = await http.post(f"{base}/callback", data=answer.params)
        else:
            callback = await http.get(f"{base}/callback?{urlencode(answer.params)}")
        assert callback.status_code == 303, callback.text
        home = await http.get(f"{base}/")
        assert home.json() == {"sub": "kim", "email": "kim@example.test"}

        logout = await http.post(f"{base}/logout", headers={"Origin": base})
        assert logout.status_code == 303
        assert logout.headers["location"].startswith(f"{node_op.issuer}/session/end?")
        landing = await browser.run(logout.headers["location"], until=f"{base}/logged-out")
        assert landing.params is not None, browser.pages
        assert "200 Logout Request" in browser.pages  # the provider asked (note 11)
        back = await http.get(f"{base}/logged-out?{urlencode(landing.params)}")
        assert back.status_code == 303
        home = await http.get(f"{base}/")
        assert home.json() == {"sub": None, "email": None}


async def test_first_access_token_is_a_jwt_for_the_api_rfc8707_2_2(
    node_op: NodeOP, outbound: httpx.AsyncClient
) -> None:
    """Note 1: node-oidc-provider decides the token format at the token endpoint, so OIDCAuth
    names ``audience`` (as ``resource``) there too: the token from sign-in is an RFC 9068 JWT
    for the API, with only that API's scopes, before any refresh."""
    base = f"http://127.0.0.1:{node_op.signin_port}"

    async def token(request: Request) -> JSONResponse:
        return JSONResponse({"access_token": await get_access_token(request)})

    app = OIDCAuth(
        Starlette(routes=[Route("/token", token)]),
        issuer=node_op.issuer,
        client_id="web",
        client_secret=node_op.web_secret,
        secrets=["interop-session-secret-0123456789abcdef"],
        base_url=base,
        scope=("openid", "email", "read:messages"),
        audience=API,
        http_client=outbound,
    )
    mounts = {base: httpx.ASGITransport(app=app)}
    async with httpx.AsyncClient(mounts=mounts, timeout=10) as http:
        start = await http.get(f"{base}/login")
        browser = Browser(http, user="lena")
        answer = await browser.run(start.headers["location"], until=f"{base}/callback")
        assert answer.params is not None, browser.pages
        callback = await http.get(f"{base}/callback?{urlencode(answer.params)}")
        assert callback.status_code == 303, callback.text
        access_token = (await http.get(f"{base}/token")).json()["access_token"]
    validator = TokenValidator(
        issuer=node_op.issuer, keys=Provider(node_op.issuer, http_client=outbound)
    )
    claims = await validator.access_token(access_token, AccessTokenExpectations(audience=API))
    assert claims.header["typ"] == "at+jwt"  # RFC 9068 section 2.1
    assert claims.sub == "lena"
    assert claims["client_id"] == "web"
    assert claims["scope"] == "read:messages"  # the API's scopes only, no openid/email


async def _signed_in(
    node_op: NodeOP, outbound: httpx.AsyncClient, app: OIDCAuth, user: str
) -> httpx.AsyncClient:
    base = f"http://127.0.0.1:{node_op.signin_port}"
    http = httpx.AsyncClient(mounts={base: httpx.ASGITransport(app=app)}, timeout=10)
    start = await http.get(f"{base}/login")
    browser = Browser(http, user=user)
    answer = await browser.run(start.headers["location"], until=f"{base}/callback")
    assert answer.params is not None, browser.pages
    callback = await http.get(f"{base}/callback?{urlencode(answer.params)}")
    assert callback.status_code == 303, callback.text
    return http


async def test_audience_not_named_at_sign_in_asks_for_a_new_sign_in_rfc8707_2_2(
    node_op: NodeOP, outbound: httpx.AsyncClient
) -> None:
    """``get_access_token(audience=...)`` for an API other than the sign-in's uses the refresh
    token with ``resource`` naming it. node-oidc-provider grants only resources named in the
    authorization request; this one was not, so it refuses. The library answers
    ``audience_not_granted`` with a login URL instead of failing the request, its message says
    to add the API to ``SignInConfig.audiences``, and the first API's token still works."""
    base = f"http://127.0.0.1:{node_op.signin_port}"
    refused: list[AccessTokenUnavailable] = []

    async def token(request: Request) -> JSONResponse:
        audience = request.query_params.get("aud")
        try:
            access_token = await get_access_token(request, audience=audience)
        except AccessTokenUnavailable as exc:
            refused.append(exc)
            raise
        return JSONResponse({"access_token": access_token})

    app = OIDCAuth(
        Starlette(routes=[Route("/token", token)]),
        issuer=node_op.issuer,
        client_id="web",
        client_secret=node_op.web_secret,
        secrets=["interop-session-secret-0123456789abcdef"],
        base_url=base,
        scope=("openid", "offline_access", "read:messages", "read:summary"),
        audience=API,
        authorization_params={"prompt": "consent"},  # keeps offline_access (note 5)
        session_store=MemoryStore(),
        http_client=outbound,
    )
    http = await _signed_in(node_op, outbound, app, "sam")
    try:
        first_answer = await http.get(f"{base}/token")
        second_answer = await http.get(f"{base}/token", params={"aud": GATEWAY})
    finally:
        await http.aclose()
    validator = TokenValidator(
        issuer=node_op.issuer, keys=Provider(node_op.issuer, http_client=outbound)
    )
    first = await validator.access_token(
        first_answer.json()["access_token"], AccessTokenExpectations(audience=API)
    )
    assert first.sub == "sam"
    assert first["scope"] == "read:messages"
    assert second_answer.status_code == 401
    assert second_answer.json()["error"] == "audience_not_granted"
    assert second_answer.json()["login_url"].startswith(f"{base}/login?")
    [exc] = refused
    assert exc.audience == GATEWAY
    assert "not named at sign-in" in exc.message
    assert "SignInConfig.audiences" in exc.message


async def _token_route(request: Request) -> JSONResponse:
    audience = request.query_params.get("aud")
    return JSONResponse({"access_token": await get_access_token(request, audience=audience)})


async def _me_route(request: Request) -> JSONResponse:
    user = get_user(request)
    assert user is not None
    return JSONResponse({"sub": user.sub, "email": user.get("email")})


def _api_app(node_op: NodeOP, outbound: httpx.AsyncClient, **settings: Any) -> OIDCAuth:
    config: dict[str, Any] = {
        "issuer": node_op.issuer,
        "client_id": "web",
        "client_secret": node_op.web_secret,
        "secrets": ["interop-session-secret-0123456789abcdef"],
        "base_url": f"http://127.0.0.1:{node_op.signin_port}",
        "scope": ("openid", "email", "offline_access", "read:messages", "read:summary"),
        "authorization_params": {"prompt": "consent"},  # keeps offline_access (note 5)
        "session_store": MemoryStore(),
        "http_client": outbound,
    }
    config.update(settings)
    routes = [Route("/token", _token_route), Route("/me", _me_route)]
    return OIDCAuth(Starlette(routes=routes), **config)


async def test_second_api_named_at_sign_in_is_granted_by_refresh_rfc8707_2_2(
    node_op: NodeOP, outbound: httpx.AsyncClient
) -> None:
    """``audiences`` names both APIs at the authorization endpoint (repeated ``resource``), the
    first is redeemed with the code, and node-oidc-provider then issues the second API's JWT
    through the refresh token because the sign-in asked for it."""
    base = f"http://127.0.0.1:{node_op.signin_port}"
    app = _api_app(node_op, outbound, audiences=[API, GATEWAY])
    http = await _signed_in(node_op, outbound, app, "uma")
    try:
        first_answer = await http.get(f"{base}/token")
        second_answer = await http.get(f"{base}/token", params={"aud": GATEWAY})
    finally:
        await http.aclose()
    assert second_answer.status_code == 200, second_answer.text
    validator = TokenValidator(
        issuer=node_op.issuer, keys=Provider(node_op.issuer, http_client=outbound)
    )
    first = await validator.access_token(
        first_answer.json()["access_token"], AccessTokenExpectations(audience=API)
    )
    second = await validator.access_token(
        second_answer.json()["access_token"], AccessTokenExpectations(audience=GATEWAY)
    )
    assert (first.sub, first["scope"]) == ("uma", "read:messages")
    assert (second.sub, second["scope"]) == ("uma", "read:summary")  # note 1: its own scopes


async def test_userinfo_and_an_api_token_from_one_sign_in_rfc8707_2_2(
    node_op: NodeOP, outbound: httpx.AsyncClient
) -> None:
    """Note 2: userinfo refuses a JWT for an API. With ``audience`` and ``fetch_userinfo`` the
    code is redeemed without ``resource`` (an opaque token good at userinfo, note 1), userinfo
    adds the email, and the refresh token with ``resource`` gives the API's JWT."""
    base = f"http://127.0.0.1:{node_op.signin_port}"
    app = _api_app(node_op, outbound, audience=API, fetch_userinfo=True)
    http = await _signed_in(node_op, outbound, app, "vera")
    try:
        me = (await http.get(f"{base}/me")).json()
        access_token = (await http.get(f"{base}/token")).json()["access_token"]
    finally:
        await http.aclose()
    assert me == {"sub": "vera", "email": "vera@example.test"}
    validator = TokenValidator(
        issuer=node_op.issuer, keys=Provider(node_op.issuer, http_client=outbound)
    )
    claims = await validator.access_token(access_token, AccessTokenExpectations(audience=API))
    assert claims.header["typ"] == "at+jwt"
    assert (claims.sub, claims["scope"]) == ("vera", "read:messages")


async def test_userinfo_with_an_api_but_no_refresh_token_is_a_sign_in_error(
    node_op: NodeOP, outbound: httpx.AsyncClient
) -> None:
    """Note 5: without ``prompt=consent`` node-oidc-provider drops ``offline_access``, so no
    refresh token can fetch the API's token after userinfo: a clear 400
    ``refresh_token_missing``, never a 503 "provider unavailable"."""
    base = f"http://127.0.0.1:{node_op.signin_port}"
    app = _api_app(node_op, outbound, audience=API, fetch_userinfo=True, authorization_params={})
    async with httpx.AsyncClient(mounts={base: httpx.ASGITransport(app=app)}, timeout=10) as http:
        start = await http.get(f"{base}/login")
        browser = Browser(http, user="wim")
        answer = await browser.run(start.headers["location"], until=f"{base}/callback")
        assert answer.params is not None, browser.pages
        callback = await http.get(
            f"{base}/callback?{urlencode(answer.params)}", headers={"accept": "application/json"}
        )
    assert callback.status_code == 400, callback.text
    assert callback.json()["error"] == "refresh_token_missing"


async def test_userinfo_skipped_without_offline_access_api_token_from_the_code(
    node_op: NodeOP,
) -> None:
    """Without ``offline_access`` the code is redeemed for the API (a startup warning says
    userinfo is skipped): the sign-in works, userinfo is never called, and the token is the
    API's JWT. node-oidc-provider then puts the claims in the ID token itself, as no token
    for userinfo was issued."""
    base = f"http://127.0.0.1:{node_op.signin_port}"
    sent: list[str] = []

    async def record(request: httpx.Request) -> None:
        sent.append(str(request.url.copy_with(query=None)))

    async with httpx.AsyncClient(timeout=10, event_hooks={"request": [record]}) as outbound:
        with pytest.warns(SignInWarning, match="userinfo is skipped"):
            app = _api_app(
                node_op,
                outbound,
                audience=API,
                fetch_userinfo=True,
                scope=("openid", "email", "read:messages"),
            )
        http = await _signed_in(node_op, outbound, app, "xena")
        try:
            me = (await http.get(f"{base}/me")).json()
            access_token = (await http.get(f"{base}/token")).json()["access_token"]
        finally:
            await http.aclose()
        metadata = await Provider(node_op.issuer, http_client=outbound).metadata()
        validator = TokenValidator(
            issuer=node_op.issuer, keys=Provider(node_op.issuer, http_client=outbound)
        )
        claims = await validator.access_token(access_token, AccessTokenExpectations(audience=API))
    assert metadata.userinfo_endpoint is not None
    assert metadata.userinfo_endpoint not in sent
    assert f"{node_op.issuer}/token" in sent
    assert me == {"sub": "xena", "email": "xena@example.test"}  # from the ID token
    assert claims.sub == "xena"


async def test_userinfo_with_the_opaque_sign_in_token_oidc_core_5_3(
    node_op: NodeOP, outbound: httpx.AsyncClient
) -> None:
    """Without an API audience the sign-in's access token is opaque and good at userinfo,
    whose claims (email, name: note 6) join the ID token's."""
    base = f"http://127.0.0.1:{node_op.signin_port}"

    async def me(request: Request) -> JSONResponse:
        user = get_user(request)
        assert user is not None
        return JSONResponse({"sub": user.sub, "name": user.get("name"), "email": user.get("email")})

    app = OIDCAuth(
        Starlette(routes=[Route("/me", me)]),
        issuer=node_op.issuer,
        client_id="web",
        client_secret=node_op.web_secret,
        secrets=["interop-session-secret-0123456789abcdef"],
        base_url=base,
        scope=("openid", "profile", "email"),
        fetch_userinfo=True,
        http_client=outbound,
    )
    http = await _signed_in(node_op, outbound, app, "tara")
    try:
        me_answer = (await http.get(f"{base}/me")).json()
    finally:
        await http.aclose()
    assert me_answer == {"sub": "tara", "name": "tara", "email": "tara@example.test"}
