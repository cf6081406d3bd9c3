"""OAuthClient and TokenCache against the development provider, in-process (real peer, no mocks).

The provider runs behind ``httpx.ASGITransport``; a thin ASGI wrapper counts the token requests
that reach it, so single-flight is measured at the provider.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import functools
import hashlib
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from joserfc import jwk

from _doubles import T0, Clock, CountingApp
from oidc_asgi.client import OAuthClient, TokenResponse, TokenType
from oidc_asgi.errors import OAuthError
from oidc_asgi.provider import Provider
from oidc_asgi.testing import DevClient, DevProvider, DevProviderConfig
from oidc_asgi.token_cache import TokenCache, token_cache_key

API_1 = "http://127.0.0.1:8001/api"
API_2 = "http://127.0.0.1:8002/api"
WEIRD_SECRET = "p:a+s%s wörd/é"
SIGNER_KEY = dict(
    jwk.RSAKey.generate_key(2048, parameters={"kid": "signer-1"}).as_dict(private=True)
)


@dataclass
class Peer:
    provider: DevProvider
    counter: CountingApp
    http: httpx.AsyncClient
    clock: Clock

    def client(self, client_id: str, **settings: Any) -> OAuthClient:
        return OAuthClient(
            client_id=client_id,
            token_endpoint=self.provider.endpoint("token"),
            device_authorization_endpoint=self.provider.endpoint("device_authorization"),
            issuer=self.provider.issuer,
            http_client=self.http,
            now=self.clock,
            **settings,
        )


def _public(key: dict[str, Any]) -> dict[str, Any]:
    return {k: key[k] for k in ("kty", "n", "e", "kid")}


EXTRA_CLIENTS = (
    DevClient(
        client_id="poster",
        client_secret="poster-secret",
        token_endpoint_auth_method="client_secret_post",
        grant_types=("client_credentials",),
    ),
    DevClient(
        client_id="weird id:1",
        client_secret=WEIRD_SECRET,
        grant_types=("client_credentials",),
    ),
    DevClient(
        client_id="signer",
        token_endpoint_auth_method="private_key_jwt",
        jwks={"keys": [_public(SIGNER_KEY)]},
        grant_types=("client_credentials",),
    ),
)


@pytest.fixture
async def peer() -> AsyncIterator[Peer]:
    clock = Clock()
    base = DevProviderConfig.default()
    config = dataclasses.replace(base, clients=base.clients + EXTRA_CLIENTS)
    provider = DevProvider(config, now=clock)
    counter = CountingApp(provider)
    transport = httpx.ASGITransport(app=counter)
    async with httpx.AsyncClient(transport=transport, base_url=provider.issuer) as http:
        yield Peer(provider, counter, http, clock)


def _s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


async def _authorization_code(peer: Peer, verifier: str) -> str:
    """Drive the provider's login page as alice and return the authorization code."""
    answer = await peer.http.get(
        "/authorize",
        params={
            "response_type": "code",
            "client_id": "webapp",
            "redirect_uri": "http://127.0.0.1:8000/callback",
            "scope": "openid offline_access",
            "state": "st",
            "nonce": "n",
            "code_challenge": _s256(verifier),
            "code_challenge_method": "S256",
        },
    )
    found = re.search(r'name="tx" value="([^"]+)"', answer.text)
    assert found is not None, answer.text
    answer = await peer.http.post(
        "/login", data={"tx": found.group(1), "username": "alice", "password": "any"}
    )
    assert answer.is_redirect
    return parse_qs(urlsplit(answer.headers["location"]).query)["code"][0]


# --------------------------------------------------------------------------- client auth


@pytest.mark.parametrize(
    ("client_id", "settings"),
    [
        pytest.param("daemon", {"client_secret": "daemon-secret"}, id="client_secret_basic"),
        pytest.param(
            "weird id:1",
            {"client_secret": WEIRD_SECRET},
            id="client_secret_basic-form-encoded-rfc6749-2.3.1",
        ),
        pytest.param(
            "poster",
            {"client_secret": "poster-secret", "auth_method": "client_secret_post"},
            id="client_secret_post",
        ),
        pytest.param(
            "signer",
            {"auth_method": "private_key_jwt", "private_key": SIGNER_KEY},
            id="private_key_jwt",
        ),
    ],
)
async def test_client_credentials_with_each_auth_method(
    peer: Peer, client_id: str, settings: dict[str, Any]
) -> None:
    client = peer.client(client_id, **settings)
    tokens = await client.client_credentials(scope="read:messages", audience=API_1)
    claims = peer.provider.verify_jwt(tokens.access_token)
    assert claims["sub"] == client_id
    assert claims["aud"] == API_1
    assert tokens.token_type == "Bearer"
    assert tokens.expires_at == T0 + 3600
    assert tokens.scopes == frozenset({"read:messages"})
    # A fresh jti each time: the provider refuses a replayed assertion (RFC 7523 section 3).
    again = await client.client_credentials(scope="read:messages", audience=API_1)
    assert again.access_token != tokens.access_token


async def test_wrong_secret_is_invalid_client(peer: Peer) -> None:
    client = peer.client("daemon", client_secret="not-the-secret")
    with pytest.raises(OAuthError) as info:
        await client.client_credentials(audience=API_1)
    assert info.value.error == "invalid_client"
    assert info.value.status_code == 401
    assert "not-the-secret" not in str(info.value)


async def test_from_provider_uses_discovery(peer: Peer) -> None:
    provider = Provider(peer.provider.issuer, http_client=peer.http, now=peer.clock)
    client = await OAuthClient.from_provider(
        provider, client_id="daemon", client_secret="daemon-secret", http_client=peer.http,
        now=peer.clock,
    )  # fmt: skip
    assert client.token_endpoint == peer.provider.endpoint("token")
    tokens = await client.client_credentials(audience=API_2)
    assert peer.provider.verify_jwt(tokens.access_token)["aud"] == API_2


# --------------------------------------------------------------------------- user grants


async def test_authorization_code_then_refresh_with_rotation(peer: Peer) -> None:
    client = peer.client("webapp", client_secret="webapp-secret")
    verifier = "v" * 50
    code = await _authorization_code(peer, verifier)
    tokens = await client.authorization_code(
        code=code, redirect_uri="http://127.0.0.1:8000/callback", code_verifier=verifier
    )
    assert tokens.id_token is not None
    assert tokens.refresh_token is not None
    assert peer.provider.verify_jwt(tokens.id_token)["sub"] == "alice"
    peer.clock.now += 10
    refreshed = await client.refresh(refresh_token=tokens.refresh_token)
    assert refreshed.refresh_token not in (None, tokens.refresh_token)
    assert refreshed.expires_at is not None
    assert refreshed.expires_at > T0 + 10
    with pytest.raises(OAuthError) as info:  # a code is single-use (RFC 6749 section 4.1.2)
        await client.authorization_code(
            code=code, redirect_uri="http://127.0.0.1:8000/callback", code_verifier=verifier
        )
    assert info.value.error == "invalid_grant"
    assert refreshed.refresh_token is not None
    with pytest.raises(OAuthError) as info:  # ...and its reuse revoked what it had issued
        await client.refresh(refresh_token=refreshed.refresh_token)
    assert info.value.error == "invalid_grant"


async def test_authorization_code_with_wrong_verifier_is_invalid_grant(peer: Peer) -> None:
    client = peer.client("webapp", client_secret="webapp-secret")
    code = await _authorization_code(peer, "v" * 50)
    with pytest.raises(OAuthError) as info:
        await client.authorization_code(
            code=code, redirect_uri="http://127.0.0.1:8000/callback", code_verifier="w" * 50
        )
    assert info.value.error == "invalid_grant"


async def test_device_flow_every_answer_rfc8628(peer: Peer) -> None:
    client = peer.client("cli", auth_method="none")
    flow = await client.device_authorization(scope="openid offline_access")
    assert flow.verification_uri.startswith(peer.provider.issuer)
    assert flow.expires_at > T0
    with pytest.raises(OAuthError) as info:
        await client.device_code(device_code=flow.device_code)
    assert info.value.error == "authorization_pending"
    with pytest.raises(OAuthError) as info:  # polled again without waiting the interval
        await client.device_code(device_code=flow.device_code)
    assert info.value.error == "slow_down"
    approved = await peer.http.post(
        "/device",
        data={"user_code": flow.user_code, "username": "alice", "password": "x",
              "action": "approve"},
    )  # fmt: skip
    assert approved.status_code == 200
    peer.clock.now += flow.interval + 10
    tokens = await client.device_code(device_code=flow.device_code)
    assert tokens.refresh_token is not None
    with pytest.raises(OAuthError) as info:
        await client.device_code(device_code=flow.device_code)
    assert info.value.error == "invalid_grant"


async def test_device_grant_without_scope_rfc6749_5_1(peer: Peer) -> None:
    # The provider omits an empty scope (RFC 6749 section 5.1: optional); the client reads it
    # as "no scope" either way.
    client = peer.client("cli", auth_method="none")
    flow = await client.device_authorization()
    approved = await peer.http.post(
        "/device",
        data={"user_code": flow.user_code, "username": "alice", "password": "x",
              "action": "approve"},
    )  # fmt: skip
    assert approved.status_code == 200
    peer.clock.now += flow.interval + 1
    raw = await peer.http.post(
        "/token",
        data={"grant_type": "urn:ietf:params:oauth:grant-type:device_code",
              "device_code": flow.device_code, "client_id": "cli"},
    )  # fmt: skip
    assert raw.status_code == 200
    body = raw.json()
    assert "scope" not in body
    assert body["access_token"]


async def test_device_login_without_scope_gives_tokens(peer: Peer) -> None:
    client = peer.client("cli", auth_method="none")
    flow = await client.device_authorization()
    await peer.http.post(
        "/device",
        data={"user_code": flow.user_code, "username": "alice", "password": "x",
              "action": "approve"},
    )  # fmt: skip
    peer.clock.now += flow.interval + 1
    tokens = await client.device_code(device_code=flow.device_code)
    assert tokens.scope is None
    assert tokens.scopes == frozenset()


# --------------------------------------------------------------------------- API to API


async def test_token_exchange_rfc8693(peer: Peer) -> None:
    subject = peer.provider.mint_access_token(sub="alice", audience=API_2, scopes=["read:summary"])
    client = peer.client("gateway", client_secret="gateway-secret")
    tokens = await client.token_exchange(
        subject_token=subject,
        subject_token_type=TokenType.ACCESS_TOKEN,
        audience=API_2,
        requested_token_type=TokenType.JWT,
    )
    assert tokens.issued_token_type == TokenType.JWT
    claims = peer.provider.verify_jwt(tokens.access_token)
    assert claims["sub"] == "alice"
    assert claims["aud"] == API_2
    assert claims["act"] == {"sub": "gateway"}


async def test_token_exchange_with_a_bad_subject_is_an_oauth_error(peer: Peer) -> None:
    client = peer.client("gateway", client_secret="gateway-secret")
    with pytest.raises(OAuthError) as info:
        await client.token_exchange(
            subject_token="not-a-token", subject_token_type=TokenType.ACCESS_TOKEN, audience=API_2
        )
    assert info.value.error == "invalid_request"
    assert "not-a-token" not in str(info.value)


async def test_on_behalf_of_entra_dialect(peer: Peer) -> None:
    incoming = peer.provider.mint_access_token(sub="bob", audience=API_2, scopes=["read:summary"])
    client = peer.client("gateway", client_secret="gateway-secret")
    tokens = await client.on_behalf_of(assertion=incoming, scope=f"{API_2}/.default")
    claims = peer.provider.verify_jwt(tokens.access_token)
    assert (claims["sub"], claims["aud"]) == ("bob", API_2)
    assert "ext_expires_in" in tokens.extras


# --------------------------------------------------------------------------- cache


async def test_a_thousand_callers_one_token_request_at_the_provider(peer: Peer) -> None:
    client = peer.client("daemon", client_secret="daemon-secret")
    cache: TokenCache[TokenResponse] = TokenCache(now=peer.clock)
    key = token_cache_key(
        client_id="daemon", issuer=peer.provider.issuer, audience=API_1, scopes="read:messages"
    )

    async def fetch() -> TokenResponse:
        return await client.client_credentials(scope="read:messages", audience=API_1)

    results = await asyncio.gather(*(cache.get_or_fetch(key, fetch) for _ in range(1000)))
    assert peer.counter.token_requests == 1
    assert len({r.access_token for r in results}) == 1
    peer.clock.now += 3600 - 60  # the margin: renewed a minute before expiry
    await cache.get_or_fetch(key, fetch)
    assert peer.counter.token_requests == 2


async def test_on_behalf_of_cache_never_shares_between_users(peer: Peer) -> None:
    client = peer.client("gateway", client_secret="gateway-secret")
    cache: TokenCache[TokenResponse] = TokenCache(now=peer.clock)
    scope = f"{API_2}/.default"
    seen: dict[str, str] = {}
    for user in ("alice", "bob", "alice"):
        incoming = peer.provider.mint_access_token(
            sub=user, audience=API_2, scopes=["read:summary"], lifetime=600
        )
        key = token_cache_key(
            client_id="gateway", issuer=peer.provider.issuer, grant="on_behalf_of",
            scopes=scope, subject_token=incoming,
        )  # fmt: skip
        exp = float(peer.provider.unverified_claims(incoming)["exp"])
        tokens = await cache.get_or_fetch(
            key,
            functools.partial(client.on_behalf_of, assertion=incoming, scope=scope),
            not_after=exp,
        )
        seen.setdefault(user, peer.provider.verify_jwt(tokens.access_token)["sub"])
        assert peer.provider.verify_jwt(tokens.access_token)["sub"] == user
    assert seen == {"alice": "alice", "bob": "bob"}
    assert peer.counter.token_requests == 3  # alice's second incoming token is a new subject


# --------------------------------------------------------------------------- revocation


async def test_revoked_refresh_token_no_longer_refreshes_rfc7009_2_1(peer: Peer) -> None:
    provider = Provider(peer.provider.issuer, http_client=peer.http, now=peer.clock)
    client = await OAuthClient.from_provider(
        provider, client_id="webapp", client_secret="webapp-secret", http_client=peer.http,
        now=peer.clock,
    )  # fmt: skip
    assert client.revocation_endpoint == peer.provider.endpoint("revoke")
    verifier = "v" * 50
    tokens = await client.authorization_code(
        code=await _authorization_code(peer, verifier),
        redirect_uri="http://127.0.0.1:8000/callback",
        code_verifier=verifier,
    )
    assert tokens.refresh_token is not None
    await client.revoke(tokens.refresh_token, token_type_hint="refresh_token")
    await client.revoke(tokens.refresh_token)  # again: still 200 (section 2.2)
    with pytest.raises(OAuthError) as info:
        await client.refresh(refresh_token=tokens.refresh_token)
    assert info.value.error == "invalid_grant"
    # Section 2.1: the grant's access tokens went with the refresh token.
    assert peer.provider.active_token(tokens.access_token) is None


async def test_revoke_with_an_unknown_hint_is_unsupported_token_type(peer: Peer) -> None:
    client = peer.client("webapp", client_secret="webapp-secret")
    with pytest.raises(OAuthError) as info:
        await client.revoke(
            "anything",
            token_type_hint="id_token",
            endpoint=peer.provider.endpoint("revoke"),
        )
    assert info.value.error == "unsupported_token_type"
