"""The library against node-oidc-provider, an OpenID Certified provider, over real HTTP.

Each test drives the provider on 127.0.0.1 (started once per session by ``node_op``) with
``httpx.AsyncClient``; the user's side is ``Browser``, which fills the provider's development
login, consent, device and logout pages. The provider's quirks are listed in
``shared/research/node-oidc-provider-notes.md`` (cited as "note N"); test names cite the
specification that decides the behaviour.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import urlencode

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from joserfc.jwk import ECKey

from oidc_asgi.client import OAuthClient, TokenResponse, TokenType
from oidc_asgi.errors import ConfigurationError, OAuthError
from oidc_asgi.native import (
    CliSession,
    DeviceLoginPrompt,
    FileTokenStorage,
    device_login,
    loopback_login,
)
from oidc_asgi.provider import Provider
from oidc_asgi.tokens import (
    AccessTokenExpectations,
    Claims,
    IDTokenExpectations,
    LogoutTokenExpectations,
    TokenValidator,
)

from ._browser import Browser
from ._node_op import API, GATEWAY, NodeOP

pytestmark = pytest.mark.service("node")

ResponseMode = Literal["query", "form_post"]


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=10) as client:
        yield client


@pytest.fixture
def provider(node_op: NodeOP, http: httpx.AsyncClient) -> Provider:
    return Provider(node_op.issuer, http_client=http)


@pytest.fixture
def validator(node_op: NodeOP, provider: Provider) -> TokenValidator:
    return TokenValidator(issuer=node_op.issuer, keys=provider)


@pytest.fixture
async def web(node_op: NodeOP, provider: Provider, http: httpx.AsyncClient) -> OAuthClient:
    """The confidential web client; its secret needs form-urlencoding (RFC 6749 2.3.1)."""
    return await OAuthClient.from_provider(
        provider, client_id="web", client_secret=node_op.web_secret, http_client=http
    )


@dataclass(frozen=True)
class SignIn:
    """One finished authorization request: what the client sent and what came back."""

    params: dict[str, str]
    state: str
    nonce: str
    verifier: str
    redirect_uri: str
    browser: Browser


def _pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


async def _authorize(
    provider: Provider,
    http: httpx.AsyncClient,
    redirect_uri: str,
    *,
    user: str,
    response_mode: ResponseMode = "query",
    scope: str = "openid offline_access email read:messages",
    resources: tuple[str, ...] = (API,),
    max_age: int | None = None,
) -> SignIn:
    """Authorization code request with PKCE (RFC 7636) for client ``web``, approved by ``user``.

    ``prompt=consent`` keeps ``offline_access`` (note 5); ``resource`` (RFC 8707) lets the token
    endpoint issue JWT access tokens for those APIs (note 1).
    """
    meta = await provider.metadata()
    state, nonce = secrets.token_urlsafe(16), secrets.token_urlsafe(16)
    verifier, challenge = _pkce()
    query = [
        ("client_id", "web"),
        ("response_type", "code"),
        ("response_mode", response_mode),
        ("redirect_uri", redirect_uri),
        ("scope", scope),
        ("state", state),
        ("nonce", nonce),
        ("code_challenge", challenge),
        ("code_challenge_method", "S256"),
        ("prompt", "consent"),
    ] + [("resource", r) for r in resources]
    if max_age is not None:
        query.append(("max_age", str(max_age)))  # OIDC Core 3.1.2.1: auth_time then required
    browser = Browser(http, user=user)
    outcome = await browser.run(
        f"{meta.endpoint('authorization_endpoint')}?{urlencode(query)}", until=redirect_uri
    )
    assert outcome.params is not None, browser.pages
    assert outcome.method == ("POST" if response_mode == "form_post" else "GET")
    return SignIn(outcome.params, state, nonce, verifier, redirect_uri, browser)


async def _sign_in(
    node_op: NodeOP,
    provider: Provider,
    http: httpx.AsyncClient,
    web: OAuthClient,
    *,
    user: str,
    resources: tuple[str, ...] = (API,),
    scope: str = "openid offline_access email read:messages",
) -> tuple[SignIn, TokenResponse]:
    signin = await _authorize(
        provider, http, node_op.redirect_uris[0], user=user, resources=resources, scope=scope
    )
    tokens = await web.authorization_code(
        code=signin.params["code"], redirect_uri=signin.redirect_uri, code_verifier=signin.verifier
    )
    return signin, tokens


async def _logout_token_for(node_op: NodeOP, validator: TokenValidator, sid: str) -> Claims:
    """The validated logout token for session ``sid`` (others, from other tests, are skipped)."""
    expect = LogoutTokenExpectations(client_id="web")
    for _ in range(20):
        token = await asyncio.to_thread(node_op.logout_receiver.tokens.get, True, 5.0)
        claims = await validator.logout_token(token, expect)
        if claims.get("sid") == sid:
            return claims
    raise AssertionError("no logout token for this session")


# --------------------------------------------------------------------------- discovery


async def test_discovery_issuer_exact_and_jwks_keys_parsed(
    node_op: NodeOP, provider: Provider
) -> None:
    meta = await provider.metadata()
    assert meta.issuer == node_op.issuer
    assert meta.authorization_response_iss_parameter_supported  # RFC 9207 section 3
    assert meta.backchannel_logout_session_supported
    assert meta.token_endpoint == f"{node_op.issuer}/token"
    assert meta.device_authorization_endpoint == f"{node_op.issuer}/device/auth"
    rsa = await provider.candidates(kid="rsa-1", alg="RS256")
    ec_keys = await provider.candidates(kid="ec-1", alg="ES256")
    assert [k.kid for k in rsa] == ["rsa-1"]
    assert [k.kid for k in ec_keys] == ["ec-1"]
    assert await provider.candidates(kid="rsa-1", alg="ES256") == []
    assert provider.stats.jwks_fetches == 1


async def test_discovery_rejects_issuer_differing_by_trailing_slash_oidc_discovery_4_3(
    node_op: NodeOP, http: httpx.AsyncClient
) -> None:
    with pytest.raises(ConfigurationError) as caught:
        await Provider(node_op.issuer + "/", http_client=http).metadata()
    assert caught.value.code == "issuer_mismatch"


# --------------------------------------------------------------------------- client credentials


def _pkjwt(node_op: NodeOP, http: httpx.AsyncClient, audience: str) -> OAuthClient:
    return OAuthClient(
        client_id="pkjwt",
        auth_method="private_key_jwt",
        private_key=node_op.pkjwt_key,
        assertion_audience="issuer" if audience == "issuer" else "token_endpoint",
        issuer=node_op.issuer,
        token_endpoint=f"{node_op.issuer}/token",
        http_client=http,
    )


@pytest.mark.parametrize(
    "auth",
    ["client-secret-basic", "private-key-jwt-aud-token-endpoint", "private-key-jwt-aud-issuer"],
)
async def test_client_credentials_with_resource_is_rfc9068_jwt(
    node_op: NodeOP, http: httpx.AsyncClient, validator: TokenValidator, auth: str
) -> None:
    if auth == "client-secret-basic":
        client_id = "daemon"
        client = OAuthClient(
            client_id=client_id,
            client_secret="daemon-secret",
            token_endpoint=f"{node_op.issuer}/token",
            http_client=http,
        )
    else:
        client_id = "pkjwt"
        client = _pkjwt(node_op, http, auth.rsplit("-", 1)[-1])
    tokens = await client.client_credentials(scope="read:messages", resource=API)
    claims = await validator.access_token(
        tokens.access_token, AccessTokenExpectations(audience=API)
    )
    assert claims.header["typ"] == "at+jwt"  # RFC 9068 section 2.1
    assert claims["client_id"] == client_id
    assert claims.sub == client_id
    assert claims["scope"] == "read:messages"
    assert tokens.scopes == frozenset({"read:messages"})
    assert tokens.token_type == "Bearer"


async def test_private_key_jwt_assertions_are_single_use_rfc7523_3(
    node_op: NodeOP, http: httpx.AsyncClient
) -> None:
    # Note 8: the provider refuses a replayed jti, so each request needs a fresh assertion.
    client = _pkjwt(node_op, http, "token_endpoint")
    first = await client.client_credentials(resource=API)
    second = await client.client_credentials(resource=API)
    assert first.access_token != second.access_token


def _wrong_secret(node_op: NodeOP, http: httpx.AsyncClient) -> OAuthClient:
    return OAuthClient(
        client_id="web",
        client_secret=node_op.web_secret + "x",
        token_endpoint=f"{node_op.issuer}/token",
        http_client=http,
    )


def _unknown_key(node_op: NodeOP, http: httpx.AsyncClient) -> OAuthClient:
    other = ECKey.import_key(ec.generate_private_key(ec.SECP256R1()))
    return OAuthClient(
        client_id="pkjwt",
        auth_method="private_key_jwt",
        private_key=other.as_dict(private=True, kid="pkjwt-1", alg="ES256"),
        token_endpoint=f"{node_op.issuer}/token",
        http_client=http,
    )


@pytest.mark.parametrize(
    "make", [_wrong_secret, _unknown_key], ids=["wrong-secret", "unknown-signing-key"]
)
async def test_client_authentication_rejected_rfc6749_5_2(
    node_op: NodeOP,
    http: httpx.AsyncClient,
    make: Callable[[NodeOP, httpx.AsyncClient], OAuthClient],
) -> None:
    client = make(node_op, http)
    with pytest.raises(OAuthError) as caught:
        await client.refresh(refresh_token="not-a-refresh-token")
    assert caught.value.error == "invalid_client"
    assert caught.value.status_code == 401


async def test_client_secret_basic_with_special_characters_authenticates_rfc6749_2_3_1(
    web: OAuthClient,
) -> None:
    # Authentication succeeds, so the grant itself is judged: invalid_grant, not invalid_client.
    with pytest.raises(OAuthError) as caught:
        await web.refresh(refresh_token="not-a-refresh-token")
    assert caught.value.error == "invalid_grant"


# --------------------------------------------------------------------------- code flow


@pytest.mark.parametrize("response_mode", ["query", "form_post"])
async def test_authorization_code_pkce_signs_in_with_iss_rfc9207(
    node_op: NodeOP,
    provider: Provider,
    http: httpx.AsyncClient,
    web: OAuthClient,
    validator: TokenValidator,
    response_mode: ResponseMode,
) -> None:
    signin = await _authorize(
        provider,
        http,
        node_op.redirect_uris[0],
        user="alice",
        response_mode=response_mode,
        max_age=600,
    )
    assert signin.params["iss"] == node_op.issuer  # RFC 9207 section 2 (note 3)
    assert signin.params["state"] == signin.state
    tokens = await web.authorization_code(
        code=signin.params["code"], redirect_uri=signin.redirect_uri, code_verifier=signin.verifier
    )
    assert tokens.id_token is not None
    claims = await validator.id_token(
        tokens.id_token,
        IDTokenExpectations(
            client_id="web", nonce=signin.nonce, access_token=tokens.access_token, max_age=600
        ),
    )
    assert claims.sub == "alice"
    assert claims.aud == ("web",)
    assert isinstance(claims.get("sid"), str)  # registered for back-channel logout (note 6)
    assert tokens.refresh_token is not None  # offline_access kept by prompt=consent (note 5)


async def test_authorization_code_reuse_is_refused_rfc6749_4_1_2(
    node_op: NodeOP, provider: Provider, http: httpx.AsyncClient, web: OAuthClient
) -> None:
    signin, _tokens = await _sign_in(node_op, provider, http, web, user="bob")
    with pytest.raises(OAuthError) as caught:
        await web.authorization_code(
            code=signin.params["code"],
            redirect_uri=signin.redirect_uri,
            code_verifier=signin.verifier,
        )
    assert caught.value.error == "invalid_grant"


async def test_authorization_code_wrong_pkce_verifier_refused_rfc7636_4_6(
    node_op: NodeOP, provider: Provider, http: httpx.AsyncClient, web: OAuthClient
) -> None:
    signin = await _authorize(provider, http, node_op.redirect_uris[0], user="carol")
    with pytest.raises(OAuthError) as caught:
        await web.authorization_code(
            code=signin.params["code"],
            redirect_uri=signin.redirect_uri,
            code_verifier=_pkce()[0],
        )
    assert caught.value.error == "invalid_grant"


async def test_authorization_code_with_resource_gives_jwt_access_token_rfc8707_2_2(
    node_op: NodeOP,
    provider: Provider,
    http: httpx.AsyncClient,
    web: OAuthClient,
    validator: TokenValidator,
) -> None:
    # Note 1: node-oidc-provider decides the access-token format at the token endpoint, so the
    # code redemption itself must carry `resource` (RFC 8707 section 2.2).
    signin = await _authorize(provider, http, node_op.redirect_uris[0], user="dave")
    tokens = await web.authorization_code(
        code=signin.params["code"],
        redirect_uri=signin.redirect_uri,
        code_verifier=signin.verifier,
        resource=API,
    )
    claims = await validator.access_token(
        tokens.access_token, AccessTokenExpectations(audience=API)
    )
    assert claims.sub == "dave"
    assert claims["scope"] == "read:messages"


async def test_refresh_with_resource_gives_jwt_for_each_audience_rfc8707_2_2(
    node_op: NodeOP,
    provider: Provider,
    http: httpx.AsyncClient,
    web: OAuthClient,
    validator: TokenValidator,
) -> None:
    _signin, tokens = await _sign_in(
        node_op,
        provider,
        http,
        web,
        user="erin",
        resources=(API, GATEWAY),
        scope="openid offline_access read:messages read:summary",
    )
    assert tokens.access_token.count(".") != 2  # no resource at the token endpoint: opaque
    assert tokens.refresh_token is not None
    for audience, scope in ((API, "read:messages"), (GATEWAY, "read:summary")):
        fresh = await web.refresh(refresh_token=tokens.refresh_token, resource=audience)
        claims = await validator.access_token(
            fresh.access_token, AccessTokenExpectations(audience=audience)
        )
        assert claims.sub == "erin"
        assert claims["scope"] == scope  # only this API's scopes (note 1)
        assert fresh.id_token is not None
        await validator.id_token(fresh.id_token, IDTokenExpectations(client_id="web"))


async def test_token_exchange_for_another_audience_rfc8693(
    node_op: NodeOP,
    provider: Provider,
    http: httpx.AsyncClient,
    web: OAuthClient,
    validator: TokenValidator,
) -> None:
    _signin, user_tokens = await _sign_in(
        node_op,
        provider,
        http,
        web,
        user="frank",
        resources=(API, GATEWAY),
        scope="openid offline_access read:messages read:summary",
    )
    assert user_tokens.refresh_token is not None
    incoming = await web.refresh(refresh_token=user_tokens.refresh_token, resource=GATEWAY)
    gateway = await OAuthClient.from_provider(
        provider, client_id="gateway", client_secret="gateway-secret", http_client=http
    )
    exchanged = await gateway.token_exchange(
        subject_token=incoming.access_token,
        subject_token_type=TokenType.ACCESS_TOKEN,
        resource=API,
        scope="read:messages",
    )
    assert exchanged.issued_token_type == TokenType.ACCESS_TOKEN
    claims = await validator.access_token(
        exchanged.access_token, AccessTokenExpectations(audience=API)
    )
    assert claims.sub == "frank"
    assert claims["act"] == {"sub": "gateway"}  # RFC 8693 section 4.1
    assert claims["scope"] == "read:messages"


# --------------------------------------------------------------------------- native


def _native(node_op: NodeOP, http: httpx.AsyncClient) -> OAuthClient:
    return OAuthClient(
        client_id="native",
        auth_method="none",
        issuer=node_op.issuer,
        token_endpoint=f"{node_op.issuer}/token",
        device_authorization_endpoint=f"{node_op.issuer}/device/auth",
        http_client=http,
    )


async def test_device_login_approved_on_device_pages_then_refresh_rotates_rfc8628(
    node_op: NodeOP, http: httpx.AsyncClient, validator: TokenValidator
) -> None:
    prompts: list[DeviceLoginPrompt] = []
    waits: list[float] = []

    async def approve_on_second_wait(seconds: float) -> None:
        # Instead of sleeping: the first poll finds the login pending, then the user approves.
        waits.append(seconds)
        if len(waits) == 2:
            browser = Browser(http, user="grace", user_code=prompts[0].user_code)
            outcome = await browser.run(prompts[0].verification_uri)
            assert outcome.title == "Sign-in Success", browser.pages

    native = _native(node_op, http)
    tokens = await device_login(
        native,
        scope="openid offline_access",
        on_code=prompts.append,
        sleep=approve_on_second_wait,
    )
    assert waits == [5.0, 5.0]  # no interval sent: the RFC 8628 3.5 default (note 13)
    assert prompts[0].verification_host == "127.0.0.1"
    assert tokens.id_token is not None
    claims = await validator.id_token(tokens.id_token, IDTokenExpectations(client_id="native"))
    assert claims.sub == "grace"
    # Note 7: a public client gets a new refresh token on every refresh; the old one is spent.
    assert tokens.refresh_token is not None
    rotated = await native.refresh(refresh_token=tokens.refresh_token)
    assert rotated.refresh_token not in (None, tokens.refresh_token)
    with pytest.raises(OAuthError) as caught:
        await native.refresh(refresh_token=tokens.refresh_token)
    assert caught.value.error == "invalid_grant"


@pytest.mark.parametrize("named", [True, False], ids=["resource-named", "resource-not-named"])
async def test_cli_session_refresh_keeps_the_api_rfc8707_2_2(
    node_op: NodeOP,
    http: httpx.AsyncClient,
    validator: TokenValidator,
    tmp_path: Path,
    named: bool,
) -> None:
    """Note 1: the token endpoint decides the format, so a refresh without ``resource`` gives
    an opaque token, not the API's JWT. ``CliSession(resource=...)`` names the login's API
    again: after a device login and a forced refresh the token is still a JWT for the API."""
    clock = [time.time()]
    native = OAuthClient(
        client_id="native",
        auth_method="none",
        issuer=node_op.issuer,
        token_endpoint=f"{node_op.issuer}/token",
        device_authorization_endpoint=f"{node_op.issuer}/device/auth",
        http_client=http,
        now=lambda: clock[0],
    )
    prompts: list[DeviceLoginPrompt] = []

    async def approve(seconds: float) -> None:
        browser = Browser(http, user="yuri", user_code=prompts[-1].user_code)
        outcome = await browser.run(prompts[-1].verification_uri)
        assert outcome.title == "Sign-in Success", browser.pages

    def login() -> Awaitable[TokenResponse]:
        return device_login(
            native,
            scope="openid offline_access read:messages",
            on_code=prompts.append,
            sleep=approve,
            resource=API,
        )

    session = CliSession(
        native,
        storage=FileTokenStorage(tmp_path / "tokens.json"),
        login=login,
        resource=API if named else None,
    )
    first = await session.tokens()
    claims = await validator.access_token(first.access_token, AccessTokenExpectations(audience=API))
    assert claims.sub == "yuri"
    assert first.expires_at is not None
    clock[0] = first.expires_at  # forced refresh
    second = await session.tokens()
    assert len(prompts) == 1  # refreshed, not a new login
    assert second.refresh_token not in (None, first.refresh_token)  # rotated (note 7)
    if named:
        claims = await validator.access_token(
            second.access_token, AccessTokenExpectations(audience=API)
        )
        assert claims.header["typ"] == "at+jwt"
        assert (claims.sub, claims["scope"]) == ("yuri", "read:messages")
    else:
        assert second.access_token.count(".") != 2  # opaque: what a plain refresh gets


async def test_loopback_login_any_port_rfc8252_7_3(
    node_op: NodeOP, provider: Provider, http: httpx.AsyncClient, validator: TokenValidator
) -> None:
    browsers: list[Browser] = []

    async def browser(url: str) -> bool:
        browsers.append(Browser(http, user="heidi"))
        # Follows the provider's redirect into loopback_login's own listener.
        outcome = await browsers[0].run(url)
        return outcome.params is None

    meta = await provider.metadata()
    tokens = await loopback_login(
        _native(node_op, http),
        authorization_endpoint=meta.endpoint("authorization_endpoint"),
        scope="openid",
        open_browser=browser,
        require_iss=meta.authorization_response_iss_parameter_supported,
        validator=validator,
        timeout=15,
    )
    assert tokens.id_token is not None
    claims = await validator.id_token(tokens.id_token, IDTokenExpectations(client_id="native"))
    assert claims.sub == "heidi"


# --------------------------------------------------------------------------- introspection


async def test_introspection_of_opaque_client_credentials_token_rfc7662(
    node_op: NodeOP, provider: Provider, http: httpx.AsyncClient
) -> None:
    daemon = await OAuthClient.from_provider(
        provider, client_id="daemon", client_secret="daemon-secret", http_client=http
    )
    tokens = await daemon.client_credentials()  # no resource: an opaque token (note 1)
    assert tokens.access_token.count(".") != 2
    meta = await provider.metadata()
    answer = await http.post(
        meta.endpoint("introspection_endpoint"),
        data={"token": tokens.access_token},
        auth=("daemon", "daemon-secret"),
    )
    assert answer.status_code == 200
    body = answer.json()
    assert body["active"] is True
    assert body["client_id"] == "daemon"
    assert body["iss"] == node_op.issuer


# --------------------------------------------------------------------------- logout


async def _end_session(
    node_op: NodeOP, provider: Provider, http: httpx.AsyncClient, id_token: str, browser: Browser
) -> dict[str, str]:
    meta = await provider.metadata()
    state = secrets.token_urlsafe(16)
    query = {
        "id_token_hint": id_token,
        "post_logout_redirect_uri": node_op.post_logout_redirect_uri,
        "client_id": "web",
        "state": state,
    }
    outcome = await browser.run(
        f"{meta.endpoint('end_session_endpoint')}?{urlencode(query)}",
        until=node_op.post_logout_redirect_uri,
    )
    assert outcome.params is not None, browser.pages
    assert outcome.params["state"] == state  # note 11
    return outcome.params


async def test_rp_initiated_logout_confirmed_returns_with_state_rp_initiated_logout_3(
    node_op: NodeOP, provider: Provider, http: httpx.AsyncClient, web: OAuthClient
) -> None:
    signin, tokens = await _sign_in(node_op, provider, http, web, user="ivan")
    assert tokens.id_token is not None
    seen = len(signin.browser.pages)
    await _end_session(node_op, provider, http, tokens.id_token, signin.browser)
    assert signin.browser.pages[seen:] == ["200 Logout Request"]  # confirmation page (note 11)


async def test_back_channel_logout_token_validated_backchannel_logout_2_6(
    node_op: NodeOP,
    provider: Provider,
    http: httpx.AsyncClient,
    web: OAuthClient,
    validator: TokenValidator,
) -> None:
    signin, tokens = await _sign_in(node_op, provider, http, web, user="judy")
    assert tokens.id_token is not None
    id_claims = await validator.id_token(
        tokens.id_token, IDTokenExpectations(client_id="web", nonce=signin.nonce)
    )
    await _end_session(node_op, provider, http, tokens.id_token, signin.browser)
    claims = await _logout_token_for(node_op, validator, id_claims["sid"])
    assert claims.header["typ"] == "logout+jwt"
    assert claims.sub == "judy"
    assert "nonce" not in claims
