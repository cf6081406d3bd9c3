"""OAuthClient: construction checks, request shapes per auth method and grant, response checks,
and fault injection at the token endpoint (httpx.MockTransport)."""

from __future__ import annotations

import base64
import json
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, unquote_plus

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from joserfc import jwk, jwt
from joserfc.errors import SecurityWarning

from oidc_asgi._http import InsecureTransportWarning
from oidc_asgi.client import (
    DEVICE_CODE_GRANT,
    JWT_BEARER_GRANT,
    TOKEN_EXCHANGE_GRANT,
    OAuthClient,
    TokenResponse,
    TokenType,
)
from oidc_asgi.errors import ConfigurationError, OAuthError, ProviderUnavailable

NOW = 1_700_000_000.0
TOKEN_URL = "https://idp.example/oauth/token"
DEVICE_URL = "https://idp.example/oauth/device"
ISSUER = "https://idp.example"
SECRET = "s3cr3t-value-that-is-long-enough-for-hs256!"
ACCESS = "AT-secret-access-token-value"
REFRESH = "RT-secret-refresh-token-value"
ID_TOKEN = "IDT-secret-id-token-value"


def clock() -> float:
    return NOW


@dataclass
class Endpoint:
    """A scripted token endpoint: records each request, answers from a list (last one repeats)."""

    answers: list[httpx.Response | Exception] = field(default_factory=list)
    requests: list[httpx.Request] = field(default_factory=list)

    def handler(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, Exception):
            raise answer
        return answer

    @property
    def form(self) -> dict[str, list[str]]:
        return parse_qs(self.requests[-1].content.decode("ascii"), keep_blank_values=True)

    def field(self, name: str) -> str:
        values = self.form[name]
        assert len(values) == 1
        return values[0]


def token_json(**extra: Any) -> httpx.Response:
    body: dict[str, Any] = {"access_token": ACCESS, "token_type": "Bearer", "expires_in": 3600}
    body.update(extra)
    return httpx.Response(200, json={k: v for k, v in body.items() if v is not None})


def make(
    endpoint: Endpoint, *, auth_method: Any = "client_secret_basic", **settings: Any
) -> OAuthClient:
    if auth_method in ("client_secret_basic", "client_secret_post", "client_secret_jwt"):
        settings.setdefault("client_secret", SECRET)
    settings.setdefault("client_id", "app")
    settings.setdefault("token_endpoint", TOKEN_URL)
    return OAuthClient(
        auth_method=auth_method,
        http_client=httpx.AsyncClient(transport=httpx.MockTransport(endpoint.handler)),
        now=clock,
        **settings,
    )


def rsa_jwk(kid: str = "rsa-1") -> dict[str, Any]:
    key = jwk.RSAKey.generate_key(2048, parameters={"kid": kid})
    return dict(key.as_dict(private=True))


def pem(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


# --------------------------------------------------------------------------- construction

_EC_PEM = pem(ec.generate_private_key(ec.SECP256R1()))
_PUBLIC_JWK = {k: v for k, v in rsa_jwk().items() if k in ("kty", "n", "e")}


async def _assertion() -> str:
    return "external-assertion"


@pytest.mark.parametrize(
    ("settings", "code"),
    [
        pytest.param({"client_id": ""}, "invalid_client_id", id="empty-client-id"),
        pytest.param(
            {"auth_method": "tls_client_auth"}, "invalid_auth_method", id="unknown-method"
        ),
        pytest.param({"client_secret": None}, "missing_client_secret", id="basic-without-secret"),
        pytest.param(
            {"auth_method": "client_secret_post", "client_secret": ""},
            "missing_client_secret",
            id="post-with-empty-secret",
        ),
        pytest.param(
            {"auth_method": "client_secret_jwt", "client_secret": None},
            "missing_client_secret",
            id="secret-jwt-without-secret",
        ),
        pytest.param(
            {"auth_method": "client_secret_jwt", "client_secret": "x" * 31},
            "weak_client_secret",
            id="secret-jwt-31-bytes-rfc7518-3.2",
        ),
        pytest.param(
            {"auth_method": "client_secret_jwt", "client_secret": SECRET, "signing_alg": "RS256"},
            "invalid_signing_alg",
            id="secret-jwt-asymmetric-alg",
        ),
        pytest.param(
            {"auth_method": "none", "client_secret": SECRET},
            "unexpected_client_secret",
            id="public-client-with-secret",
        ),
        pytest.param({"auth_method": "private_key_jwt"}, "missing_private_key", id="pkjwt-no-key"),
        pytest.param(
            {
                "auth_method": "private_key_jwt",
                "private_key": _EC_PEM,
                "assertion_provider": _assertion,
            },
            "conflicting_key_sources",
            id="pkjwt-key-and-provider",
        ),
        pytest.param(
            {"private_key": _EC_PEM, "client_secret": SECRET},
            "unexpected_key_source",
            id="key-with-basic",
        ),
        pytest.param(
            {"auth_method": "private_key_jwt", "private_key": b"not a pem"},
            "invalid_private_key",
            id="garbage-pem",
        ),
        pytest.param(
            {"auth_method": "private_key_jwt", "private_key": _PUBLIC_JWK},
            "invalid_private_key",
            id="public-jwk-only",
        ),
        pytest.param(
            {"auth_method": "private_key_jwt", "private_key": {"kty": "oct", "k": "AAAA"}},
            "invalid_private_key",
            id="symmetric-jwk",
        ),
        pytest.param(
            {"auth_method": "private_key_jwt", "private_key": _EC_PEM, "signing_alg": "RS256"},
            "invalid_signing_alg",
            id="rs256-on-ec-key",
        ),
        pytest.param(
            {"auth_method": "private_key_jwt", "private_key": _EC_PEM, "signing_alg": "ES384"},
            "invalid_signing_alg",
            id="es384-on-p256-key",
        ),
        pytest.param(
            {"auth_method": "private_key_jwt", "private_key": _EC_PEM, "signing_alg": "none"},
            "invalid_signing_alg",
            id="alg-none",
        ),
        pytest.param(
            {
                "auth_method": "private_key_jwt",
                "private_key": _EC_PEM,
                "assertion_audience": "issuer",
            },
            "missing_issuer",
            id="issuer-audience-without-issuer",
        ),
        pytest.param(
            {"token_endpoint": "http://idp.example/token"}, "insecure_url", id="plain-http"
        ),
        pytest.param({"token_endpoint": "idp.example/token"}, "invalid_url", id="relative-url"),
        pytest.param(
            {"device_authorization_endpoint": "http://idp.example/device"},
            "insecure_url",
            id="plain-http-device-endpoint",
        ),
        pytest.param({"timeout": 0}, "invalid_timeout", id="zero-timeout"),
        pytest.param({"max_response_bytes": 10}, "invalid_max_response_bytes", id="tiny-size-cap"),
    ],
)
def test_construction_refuses_bad_settings(settings: dict[str, Any], code: str) -> None:
    settings.setdefault("client_id", "app")
    settings.setdefault("token_endpoint", TOKEN_URL)
    if "client_secret" not in settings and settings.get("auth_method") in (
        None,
        "client_secret_basic",
    ):
        settings["client_secret"] = SECRET
    with pytest.raises(ConfigurationError) as info:
        OAuthClient(**settings)
    assert info.value.code == code
    assert SECRET not in str(info.value)


def test_rsa_key_below_2048_bits_is_refused() -> None:
    small = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    with pytest.raises(ConfigurationError) as info:
        OAuthClient(
            client_id="app", token_endpoint=TOKEN_URL, auth_method="private_key_jwt",
            private_key=pem(small),
        )  # fmt: skip
    assert info.value.code == "weak_private_key"


def test_secret_jwt_counts_bytes_not_characters() -> None:
    # 16 two-byte characters are 32 bytes: enough for HS256 (RFC 7518 section 3.2).
    OAuthClient(
        client_id="app", token_endpoint=TOKEN_URL, auth_method="client_secret_jwt",
        client_secret="é" * 16,
    )  # fmt: skip


def test_loopback_http_is_accepted_without_warning() -> None:
    client = OAuthClient(
        client_id="app", token_endpoint="http://127.0.0.1:9000/token", auth_method="none"
    )
    assert client.token_endpoint == "http://127.0.0.1:9000/token"


def test_allow_insecure_http_warns_loudly() -> None:
    with pytest.warns(InsecureTransportWarning):
        OAuthClient(
            client_id="app", token_endpoint="http://idp.internal/token", auth_method="none",
            allow_insecure_http=True,
        )  # fmt: skip


def test_repr_shows_no_secret() -> None:
    client = OAuthClient(client_id="app", client_secret=SECRET, token_endpoint=TOKEN_URL)
    assert SECRET not in repr(client)
    assert "app" in repr(client)


# --------------------------------------------------------------------------- client auth


async def test_client_secret_basic_form_encodes_before_base64_rfc6749_2_3_1() -> None:
    endpoint = Endpoint([token_json()])
    secret = "p:a+s%s wörd/é"
    client = make(endpoint, client_id="my app:1", client_secret=secret)
    await client.client_credentials()
    header = endpoint.requests[-1].headers["Authorization"]
    scheme, _, encoded = header.partition(" ")
    assert scheme == "Basic"
    decoded = base64.b64decode(encoded).decode("ascii")
    assert decoded == "my+app%3A1:p%3Aa%2Bs%25s+w%C3%B6rd%2F%C3%A9"
    user, _, password = decoded.partition(":")  # exactly one raw ":" separates them
    assert (unquote_plus(user), unquote_plus(password)) == ("my app:1", secret)
    assert "client_secret" not in endpoint.form
    assert "client_id" not in endpoint.form


async def test_client_secret_post_sends_credentials_in_body() -> None:
    endpoint = Endpoint([token_json()])
    client = make(endpoint, auth_method="client_secret_post")
    await client.client_credentials()
    assert "Authorization" not in endpoint.requests[-1].headers
    assert endpoint.field("client_id") == "app"
    assert endpoint.field("client_secret") == SECRET
    assert endpoint.requests[-1].headers["Content-Type"] == "application/x-www-form-urlencoded"


async def test_public_client_sends_only_client_id() -> None:
    endpoint = Endpoint([token_json()])
    client = make(endpoint, auth_method="none")
    await client.authorization_code(code="c", redirect_uri="https://app.example/cb")
    assert "Authorization" not in endpoint.requests[-1].headers
    assert endpoint.field("client_id") == "app"
    assert "client_secret" not in endpoint.form
    assert "client_assertion" not in endpoint.form


def _verify(assertion: str, public: Any, alg: str) -> dict[str, Any]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SecurityWarning)  # EdDSA, see helper-rules
        token = jwt.decode(assertion, public, algorithms=[alg])
    assert token.header["alg"] == alg
    return dict(token.claims)


def _ed25519_key() -> ed25519.Ed25519PrivateKey:
    return ed25519.Ed25519PrivateKey.generate()


@pytest.mark.parametrize(
    ("make_key", "alg"),
    [
        pytest.param(lambda: rsa_jwk("rsa-1"), "RS256", id="rsa-jwk"),
        pytest.param(lambda: pem(ec.generate_private_key(ec.SECP256R1())), "ES256", id="p256-pem"),
        pytest.param(lambda: pem(ec.generate_private_key(ec.SECP384R1())), "ES384", id="p384-pem"),
        pytest.param(lambda: pem(_ed25519_key()), "EdDSA", id="ed25519-pem"),
    ],
)
async def test_private_key_jwt_assertion_rfc7523_3(make_key: Callable[[], Any], alg: str) -> None:
    key_material = make_key()
    endpoint = Endpoint([token_json()])
    client = make(endpoint, auth_method="private_key_jwt", private_key=key_material)
    await client.client_credentials()
    first = endpoint.form
    await client.client_credentials()
    second = endpoint.form
    assert first["client_assertion_type"] == [
        "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
    ]
    assert "client_secret" not in first
    assert "Authorization" not in endpoint.requests[-1].headers
    if isinstance(key_material, dict):
        public = jwk.import_key(key_material, "RSA")
    else:
        loaded = serialization.load_pem_private_key(key_material, password=None)
        kty = "OKP" if isinstance(loaded, ed25519.Ed25519PrivateKey) else "EC"
        public = jwk.import_key(key_material, kty)  # type: ignore[call-overload]
    claims = _verify(first["client_assertion"][0], public, alg)
    assert claims["iss"] == claims["sub"] == "app"
    assert claims["aud"] == TOKEN_URL
    assert claims["iat"] == int(NOW)
    assert claims["exp"] == int(NOW) + 60
    again = _verify(second["client_assertion"][0], public, alg)
    assert claims["jti"] != again["jti"]
    header = json.loads(base64.urlsafe_b64decode(first["client_assertion"][0].split(".")[0] + "=="))
    expected_kid = (
        "rsa-1" if isinstance(key_material, dict) else jwk.thumbprint(public.as_dict(private=False))
    )
    assert header["kid"] == expected_kid


async def test_private_key_jwt_audience_can_be_the_issuer() -> None:
    endpoint = Endpoint([token_json()])
    key = rsa_jwk()
    client = make(
        endpoint, auth_method="private_key_jwt", private_key=key, key_id="chosen",
        assertion_audience="issuer", issuer=ISSUER,
    )  # fmt: skip
    await client.client_credentials()
    assertion = endpoint.field("client_assertion")
    claims = _verify(assertion, jwk.import_key(key, "RSA"), "RS256")
    assert claims["aud"] == ISSUER
    header = json.loads(base64.urlsafe_b64decode(assertion.split(".")[0] + "=="))
    assert header["kid"] == "chosen"


async def test_client_secret_jwt_signs_hs256_with_the_secret() -> None:
    endpoint = Endpoint([token_json()])
    client = make(endpoint, auth_method="client_secret_jwt")
    await client.client_credentials()
    assertion = endpoint.field("client_assertion")
    claims = _verify(assertion, jwk.import_key(SECRET.encode(), "oct"), "HS256")
    assert claims["iss"] == claims["sub"] == "app"
    assert claims["aud"] == TOKEN_URL
    assert claims["exp"] - claims["iat"] == 60
    assert "client_secret" not in endpoint.form
    assert SECRET not in endpoint.requests[-1].content.decode()


async def test_assertion_provider_is_asked_on_every_request() -> None:
    calls: list[int] = []

    async def workload_token() -> str:
        calls.append(1)
        return f"k8s-token-{len(calls)}"

    endpoint = Endpoint([token_json()])
    client = make(endpoint, auth_method="private_key_jwt", assertion_provider=workload_token)
    await client.client_credentials()
    assert endpoint.field("client_assertion") == "k8s-token-1"
    await client.client_credentials()
    assert endpoint.field("client_assertion") == "k8s-token-2"
    assert endpoint.field("client_id") == "app"


async def test_assertion_provider_returning_nothing_is_a_configuration_error() -> None:
    async def empty() -> str:
        return ""

    endpoint = Endpoint([token_json()])
    client = make(endpoint, auth_method="private_key_jwt", assertion_provider=empty)
    with pytest.raises(ConfigurationError) as info:
        await client.client_credentials()
    assert info.value.code == "invalid_client_assertion"
    assert endpoint.requests == []


# --------------------------------------------------------------------------- grants


async def test_authorization_code_with_pkce_rfc6749_4_1_3() -> None:
    endpoint = Endpoint([token_json(refresh_token=REFRESH, id_token=ID_TOKEN, scope="openid")])
    client = make(endpoint)
    tokens = await client.authorization_code(
        code="the-code", redirect_uri="https://app.example/cb", code_verifier="v" * 43
    )
    assert endpoint.requests[-1].url == TOKEN_URL
    assert endpoint.requests[-1].method == "POST"
    assert endpoint.form == {
        "grant_type": ["authorization_code"],
        "code": ["the-code"],
        "redirect_uri": ["https://app.example/cb"],
        "code_verifier": ["v" * 43],
    }
    assert tokens.access_token == ACCESS
    assert tokens.refresh_token == REFRESH
    assert tokens.id_token == ID_TOKEN
    assert tokens.expires_at == NOW + 3600
    assert tokens.scopes == frozenset({"openid"})


@pytest.mark.parametrize(
    "scope",
    [pytest.param("", id="empty-string"), pytest.param(None, id="absent")],
)
async def test_rfc6749_5_1_empty_or_absent_scope_means_no_scope(scope: str | None) -> None:
    # scope is OPTIONAL in a token response; a tolerant reader takes "" as "not listed".
    tokens = await make(Endpoint([token_json(scope=scope)])).client_credentials()
    assert tokens.scope is None
    assert tokens.scopes == frozenset()


def test_clock_is_public() -> None:
    def frozen() -> float:
        return 10.0

    client = OAuthClient(client_id="app", auth_method="none", token_endpoint=TOKEN_URL, now=frozen)
    assert client.now is frozen


async def test_expires_at_uses_the_public_clock() -> None:
    client = make(Endpoint([token_json()]))
    client.now = lambda: 5.0
    tokens = await client.client_credentials()
    assert tokens.expires_at == 5.0 + 3600


async def test_refresh_with_scope_list_and_repeated_resource_rfc8707() -> None:
    endpoint = Endpoint([token_json(refresh_token="rotated")])
    client = make(endpoint)
    tokens = await client.refresh(
        refresh_token=REFRESH,
        scope=["read", "write"],
        resource=["https://a.example", "https://b.example"],
    )
    assert endpoint.form == {
        "grant_type": ["refresh_token"],
        "refresh_token": [REFRESH],
        "scope": ["read write"],
        "resource": ["https://a.example", "https://b.example"],
    }
    assert tokens.refresh_token == "rotated"


async def test_client_credentials_with_audience() -> None:
    endpoint = Endpoint([token_json()])
    client = make(endpoint)
    await client.client_credentials(scope="read:messages", audience="https://api.example")
    assert endpoint.form == {
        "grant_type": ["client_credentials"],
        "scope": ["read:messages"],
        "audience": ["https://api.example"],
    }


async def test_device_authorization_and_one_poll_rfc8628() -> None:
    endpoint = Endpoint(
        [
            httpx.Response(
                200,
                json={
                    "device_code": "DC-secret",
                    "user_code": "WDJB-MJHT",
                    "verification_uri": "https://idp.example/device",
                    "verification_uri_complete": "https://idp.example/device?user_code=WDJB-MJHT",
                    "expires_in": 1800,
                },
            ),
            httpx.Response(400, json={"error": "authorization_pending"}),
            token_json(),
        ]
    )
    client = make(endpoint, auth_method="none", device_authorization_endpoint=DEVICE_URL)
    flow = await client.device_authorization(scope=["openid", "offline_access"])
    assert endpoint.requests[-1].url == DEVICE_URL
    assert endpoint.form == {"scope": ["openid offline_access"], "client_id": ["app"]}
    assert flow.device_code == "DC-secret"
    assert flow.user_code == "WDJB-MJHT"
    assert flow.interval == 5  # RFC 8628 section 3.2 default
    assert flow.expires_at == NOW + 1800
    assert "DC-secret" not in repr(flow)
    assert "WDJB-MJHT" not in repr(flow)
    with pytest.raises(OAuthError) as info:
        await client.device_code(device_code=flow.device_code)
    assert info.value.error == "authorization_pending"
    assert endpoint.form == {
        "grant_type": [DEVICE_CODE_GRANT],
        "device_code": ["DC-secret"],
        "client_id": ["app"],
    }
    tokens = await client.device_code(device_code=flow.device_code)
    assert tokens.access_token == ACCESS


@pytest.mark.parametrize(
    ("body", "code"),
    [
        pytest.param({"user_code": "U", "verification_uri": "https://x", "expires_in": 5},
                     "invalid_token_response", id="no-device-code"),
        pytest.param({"device_code": "D", "user_code": "U", "verification_uri": "https://x"},
                     "invalid_token_response", id="no-expires-in"),
        pytest.param({"device_code": "D", "user_code": "U", "verification_uri": "https://x",
                      "expires_in": 5, "interval": True},
                     "invalid_token_response", id="bool-interval"),
    ],
)  # fmt: skip
async def test_device_authorization_response_checks(body: dict[str, Any], code: str) -> None:
    endpoint = Endpoint([httpx.Response(200, json=body)])
    client = make(endpoint, auth_method="none", device_authorization_endpoint=DEVICE_URL)
    with pytest.raises(ProviderUnavailable) as info:
        await client.device_authorization(scope="openid")
    assert info.value.code == code


async def test_device_authorization_accepts_google_verification_url_and_interval() -> None:
    endpoint = Endpoint([httpx.Response(200, json={
        "device_code": "D", "user_code": "U", "verification_url": "https://g.example/device",
        "expires_in": 1800, "interval": 7,
    })])  # fmt: skip
    client = make(endpoint, auth_method="none", device_authorization_endpoint=DEVICE_URL)
    flow = await client.device_authorization(scope="openid")
    assert flow.verification_uri == "https://g.example/device"
    assert flow.interval == 7


async def test_device_authorization_needs_its_endpoint() -> None:
    client = make(Endpoint([token_json()]), auth_method="none")
    with pytest.raises(ConfigurationError) as info:
        await client.device_authorization(scope="openid")
    assert info.value.code == "missing_device_authorization_endpoint"


async def test_token_exchange_request_shape_rfc8693_2_1() -> None:
    endpoint = Endpoint([token_json(issued_token_type=TokenType.ACCESS_TOKEN)])
    client = make(endpoint)
    tokens = await client.token_exchange(
        subject_token="subject",
        subject_token_type=TokenType.ACCESS_TOKEN,
        actor_token="actor",
        actor_token_type=TokenType.JWT,
        audience=["orders", "billing"],
        resource="https://orders.example",
        scope="read",
        requested_token_type=TokenType.ACCESS_TOKEN,
    )
    assert endpoint.form == {
        "grant_type": [TOKEN_EXCHANGE_GRANT],
        "subject_token": ["subject"],
        "subject_token_type": [TokenType.ACCESS_TOKEN],
        "actor_token": ["actor"],
        "actor_token_type": [TokenType.JWT],
        "requested_token_type": [TokenType.ACCESS_TOKEN],
        "scope": ["read"],
        "resource": ["https://orders.example"],
        "audience": ["orders", "billing"],
    }
    assert tokens.issued_token_type == TokenType.ACCESS_TOKEN


async def test_token_exchange_accepts_n_a_token_type_rfc8693_2_2_1() -> None:
    endpoint = Endpoint([token_json(token_type="N_A", issued_token_type=TokenType.JWT)])
    tokens = await make(endpoint).token_exchange(
        subject_token="s", subject_token_type=TokenType.ACCESS_TOKEN
    )
    assert tokens.token_type == "N_A"


@pytest.mark.parametrize(
    ("answer", "requested", "code"),
    [
        pytest.param(token_json(), None, "missing_issued_token_type", id="issued-type-absent"),
        pytest.param(
            token_json(issued_token_type=TokenType.JWT),
            TokenType.ACCESS_TOKEN,
            "issued_token_type_mismatch",
            id="issued-type-differs-from-requested",
        ),
    ],
)
async def test_token_exchange_checks_issued_token_type(
    answer: httpx.Response, requested: str | None, code: str
) -> None:
    client = make(Endpoint([answer]))
    with pytest.raises(ProviderUnavailable) as info:
        await client.token_exchange(
            subject_token="s",
            subject_token_type=TokenType.ACCESS_TOKEN,
            requested_token_type=requested,
        )
    assert info.value.code == code


@pytest.mark.parametrize(
    ("settings", "code"),
    [
        pytest.param({"actor_token": "a"}, "actor_token_type_mismatch", id="actor-without-type"),
        pytest.param(
            {"actor_token_type": TokenType.JWT},
            "actor_token_type_mismatch",
            id="type-without-actor",
        ),
        pytest.param({"subject_token": ""}, "missing_subject_token", id="empty-subject"),
        pytest.param({"audience": [""]}, "invalid_target", id="empty-audience"),
    ],
)
async def test_token_exchange_refuses_bad_arguments(settings: dict[str, Any], code: str) -> None:
    endpoint = Endpoint([token_json(issued_token_type=TokenType.ACCESS_TOKEN)])
    arguments: dict[str, Any] = {"subject_token": "s", "subject_token_type": TokenType.ACCESS_TOKEN}
    arguments.update(settings)
    with pytest.raises(ConfigurationError) as info:
        await make(endpoint).token_exchange(**arguments)
    assert info.value.code == code
    assert endpoint.requests == []


async def test_on_behalf_of_is_entra_jwt_bearer() -> None:
    endpoint = Endpoint([token_json()])
    client = make(endpoint, auth_method="client_secret_post")
    await client.on_behalf_of(assertion="incoming-user-token", scope=["api://orders/.default"])
    assert endpoint.form == {
        "grant_type": [JWT_BEARER_GRANT],
        "assertion": ["incoming-user-token"],
        "requested_token_use": ["on_behalf_of"],
        "scope": ["api://orders/.default"],
        "client_id": ["app"],
        "client_secret": [SECRET],
    }


async def test_on_behalf_of_needs_a_scope() -> None:
    with pytest.raises(ConfigurationError) as info:
        await make(Endpoint([token_json()])).on_behalf_of(assertion="t", scope=[])
    assert info.value.code == "missing_scope"


# --------------------------------------------------------------------------- responses


async def test_token_response_normalises_and_keeps_extras() -> None:
    endpoint = Endpoint([token_json(token_type="bearer", ext_expires_in=7200, expires_in="3599")])
    tokens = await make(endpoint).client_credentials()
    assert tokens.token_type == "Bearer"
    assert tokens.expires_at == NOW + 3599
    assert tokens.expires_in(NOW + 99) == 3500
    assert dict(tokens.extras) == {"ext_expires_in": 7200}


async def test_token_response_without_expires_in_has_no_expiry() -> None:
    tokens = await make(Endpoint([token_json(expires_in=None)])).client_credentials()
    assert tokens.expires_at is None
    assert tokens.expires_in(NOW) is None


def test_token_response_repr_never_shows_tokens() -> None:
    tokens = TokenResponse(
        access_token=ACCESS, token_type="Bearer", expires_at=NOW, refresh_token=REFRESH,
        id_token=ID_TOKEN, scope="read", extras={"secret_thing": "x"},
    )  # fmt: skip
    for text in (repr(tokens), str(tokens), f"{tokens}", repr([tokens])):
        assert ACCESS not in text
        assert REFRESH not in text
        assert ID_TOKEN not in text
    assert "refresh_token=<hidden>" in repr(tokens)
    assert "scope='read'" in repr(tokens)


def test_token_response_round_trips_through_dict() -> None:
    tokens = TokenResponse(
        access_token=ACCESS, token_type="DPoP", expires_at=NOW, refresh_token=REFRESH,
        issued_token_type=TokenType.ACCESS_TOKEN, extras={"a": 1},
    )  # fmt: skip
    again = TokenResponse.from_dict(json.loads(json.dumps(tokens.to_dict())))
    assert again.to_dict() == tokens.to_dict()


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({"token_type": "Bearer"}, id="no-access-token"),
        pytest.param({"access_token": 42, "token_type": "Bearer"}, id="access-token-not-string"),
        pytest.param({"access_token": "", "token_type": "Bearer"}, id="access-token-empty"),
        pytest.param({"access_token": "a"}, id="no-token-type"),
        pytest.param({"access_token": "a", "token_type": "mac"}, id="unknown-token-type"),
        pytest.param({"access_token": "a", "token_type": "N_A"}, id="n-a-outside-token-exchange"),
        pytest.param({"access_token": "a", "token_type": "Bearer", "expires_in": True},
                     id="expires-in-bool"),
        pytest.param({"access_token": "a", "token_type": "Bearer", "expires_in": -1},
                     id="expires-in-negative"),
        pytest.param({"access_token": "a", "token_type": "Bearer", "expires_in": 1.5},
                     id="expires-in-float"),
        pytest.param({"access_token": "a", "token_type": "Bearer", "expires_in": "soon"},
                     id="expires-in-word"),
        pytest.param({"access_token": "a", "token_type": "Bearer", "expires_in": 10**12},
                     id="expires-in-absurd"),
        pytest.param({"access_token": "a", "token_type": "Bearer", "refresh_token": 1},
                     id="refresh-token-not-string"),
        pytest.param({"access_token": "a", "token_type": "Bearer", "scope": ["a"]},
                     id="scope-not-string"),
    ],
)  # fmt: skip
async def test_invalid_token_responses_rfc6749_5_1(body: dict[str, Any]) -> None:
    client = make(Endpoint([httpx.Response(200, json=body)]))
    with pytest.raises(ProviderUnavailable) as info:
        await client.client_credentials()
    assert info.value.code == "invalid_token_response"


# --------------------------------------------------------------------------- errors


async def test_oauth_error_carries_error_description_status_and_claims_challenge() -> None:
    challenge = '{"access_token":{"acrs":{"essential":true,"value":"c1"}}}'
    endpoint = Endpoint([httpx.Response(400, json={
        "error": "interaction_required",
        "error_description": "AADSTS50079: MFA required",
        "claims": challenge,
    })])  # fmt: skip
    with pytest.raises(OAuthError) as info:
        await make(endpoint).on_behalf_of(assertion="user-token", scope="api://x/.default")
    assert info.value.code == info.value.error == "interaction_required"
    assert info.value.error_description == "AADSTS50079: MFA required"
    assert info.value.status_code == 400
    assert info.value.claims == challenge
    assert "user-token" not in str(info.value)
    assert SECRET not in str(info.value)


async def test_oauth_error_claims_object_is_serialised() -> None:
    endpoint = Endpoint([httpx.Response(401, json={"error": "invalid_client", "claims": {"a": 1}})])
    with pytest.raises(OAuthError) as info:
        await make(endpoint).client_credentials()
    assert info.value.status_code == 401
    assert info.value.claims == '{"a":1}'


async def test_oauth_error_fields_are_sanitised_rfc6749_5_2() -> None:
    endpoint = Endpoint([httpx.Response(400, json={
        "error": "bad\nerror\"code", "error_description": "line1\nline2\x00" + "x" * 1000,
    })])  # fmt: skip
    with pytest.raises(OAuthError) as info:
        await make(endpoint).client_credentials()
    assert info.value.error == "invalid_error_code"
    assert info.value.error_description is not None
    assert "\n" not in info.value.error_description
    assert len(info.value.error_description) <= 300


@pytest.mark.parametrize(
    ("answer", "code"),
    [
        pytest.param(httpx.ReadTimeout("slow"), "provider_timeout", id="read-timeout"),
        pytest.param(httpx.ConnectTimeout("slow"), "provider_timeout", id="connect-timeout"),
        pytest.param(httpx.ConnectError("refused"), "provider_unreachable", id="connect-error"),
        pytest.param(httpx.Response(500, text="boom"), "provider_http_error", id="http-500"),
        pytest.param(httpx.Response(503, json={"error": "temporarily_unavailable"}),
                     "provider_http_error", id="http-503-oauth-body"),
        pytest.param(httpx.Response(429), "provider_rate_limited", id="http-429"),
        pytest.param(httpx.Response(404, text="nope"), "provider_http_error", id="http-404"),
        pytest.param(httpx.Response(302, headers={"Location": "https://evil.example/token"}),
                     "provider_redirect", id="redirect-not-followed"),
        pytest.param(httpx.Response(200, text="<html>"), "provider_bad_response", id="html-200"),
        pytest.param(httpx.Response(200, json=["a"]), "provider_bad_response", id="json-array"),
        pytest.param(httpx.Response(200, content=b'{"access_token":"a","access_token":"b"}'),
                     "provider_bad_response", id="duplicate-members"),
        pytest.param(httpx.Response(200, content=b"{" + b" " * 300_000 + b"}"),
                     "provider_response_too_large", id="oversize"),
        pytest.param(httpx.Response(400, text="bad request"), "provider_bad_response",
                     id="400-not-json"),
        pytest.param(httpx.Response(400, json={"message": "no"}), "provider_bad_response",
                     id="400-without-error-member"),
    ],
)  # fmt: skip
async def test_faults_become_provider_unavailable(
    answer: httpx.Response | Exception, code: str
) -> None:
    endpoint = Endpoint([answer])
    with pytest.raises(ProviderUnavailable) as info:
        await make(endpoint).refresh(refresh_token=REFRESH)
    assert info.value.code == code
    assert REFRESH not in str(info.value)
    assert SECRET not in str(info.value)
    assert len(endpoint.requests) == 1


async def test_retry_after_is_passed_on() -> None:
    endpoint = Endpoint([httpx.Response(503, headers={"Retry-After": "17"})])
    with pytest.raises(ProviderUnavailable) as info:
        await make(endpoint).client_credentials()
    assert info.value.retry_after == 17


async def test_timeout_setting_reaches_the_request() -> None:
    endpoint = Endpoint([token_json()])
    await make(endpoint, timeout=2.5).client_credentials()
    assert endpoint.requests[-1].extensions["timeout"]["read"] == 2.5


# --------------------------------------------------------------------------- lifecycle


@dataclass(frozen=True)
class _Meta:
    issuer: str
    token_endpoint: str | None
    device_authorization_endpoint: str | None = None


@dataclass
class _Source:
    meta: _Meta

    async def metadata(self) -> _Meta:
        return self.meta


async def test_from_provider_takes_endpoints_and_issuer() -> None:
    source = _Source(
        _Meta(issuer=ISSUER, token_endpoint=TOKEN_URL, device_authorization_endpoint=DEVICE_URL)
    )
    client = await OAuthClient.from_provider(
        source, client_id="app", auth_method="private_key_jwt", private_key=rsa_jwk(),
        assertion_audience="issuer",
    )  # fmt: skip
    assert client.token_endpoint == TOKEN_URL
    assert client.device_authorization_endpoint == DEVICE_URL
    assert client.issuer == ISSUER


async def test_from_provider_without_token_endpoint_fails() -> None:
    with pytest.raises(ConfigurationError) as info:
        await OAuthClient.from_provider(
            _Source(_Meta(issuer=ISSUER, token_endpoint=None)), client_id="app", auth_method="none"
        )
    assert info.value.code == "missing_token_endpoint"


async def test_aclose_leaves_an_injected_client_open() -> None:
    http = httpx.AsyncClient(transport=httpx.MockTransport(Endpoint([token_json()]).handler))
    async with OAuthClient(
        client_id="app", token_endpoint=TOKEN_URL, auth_method="none", http_client=http
    ) as client:
        await client.client_credentials()
    assert not http.is_closed
    await http.aclose()


async def test_authorization_code_sends_resource_rfc8707_2_2() -> None:
    """The API the token is for goes to the token endpoint too (RFC 8707 section 2.2)."""
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"access_token": "at", "token_type": "Bearer"})

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
        client = OAuthClient(
            client_id="app",
            client_secret="s3cret",
            token_endpoint="https://idp.example/token",
            http_client=http,
        )
        await client.authorization_code(
            code="c", redirect_uri="https://app.example/cb", resource="https://api.example"
        )
    form = parse_qs(seen[0].content.decode())
    assert form["resource"] == ["https://api.example"]
    assert form["grant_type"] == ["authorization_code"]


INTROSPECTION_URL = "https://idp.example/oauth/introspect"


async def test_post_form_authenticates_like_the_grants_rfc7662_2_1() -> None:
    endpoint = Endpoint([httpx.Response(200, json={"active": True, "sub": "u1"})])
    client = make(endpoint)
    answer = await client.post_form(
        INTROSPECTION_URL, {"token": ACCESS, "token_type_hint": "access_token"}
    )
    assert dict(answer) == {"active": True, "sub": "u1"}
    request = endpoint.requests[-1]
    assert str(request.url) == INTROSPECTION_URL
    assert request.headers["Authorization"].startswith("Basic ")
    assert endpoint.form == {"token": [ACCESS], "token_type_hint": ["access_token"]}


async def test_post_form_private_key_jwt_assertion_names_the_posted_url_rfc7523_3() -> None:
    key_material = rsa_jwk("rsa-1")
    endpoint = Endpoint([httpx.Response(200, json={"active": False})])
    client = make(endpoint, auth_method="private_key_jwt", private_key=key_material)
    await client.post_form(INTROSPECTION_URL, [("token", ACCESS)])
    assertion = endpoint.field("client_assertion")
    claims = _verify(assertion, jwk.import_key(key_material, "RSA"), "RS256")
    assert claims["aud"] == INTROSPECTION_URL
    assert endpoint.field("token") == ACCESS


POST_FORM_FAILURES = [
    pytest.param(
        httpx.Response(401, json={"error": "invalid_client"}), OAuthError, id="oauth-error"
    ),
    pytest.param(httpx.Response(500, text="boom"), ProviderUnavailable, id="server-error"),
    pytest.param(httpx.Response(200, text="not json"), ProviderUnavailable, id="garbage"),
]


@pytest.mark.parametrize(("response", "error"), POST_FORM_FAILURES)
async def test_post_form_failures(response: httpx.Response, error: type[Exception]) -> None:
    client = make(Endpoint([response]))
    with pytest.raises(error):
        await client.post_form(INTROSPECTION_URL, {"token": ACCESS})


async def test_post_form_refuses_malformed_forms() -> None:
    endpoint = Endpoint([token_json()])
    client = make(endpoint)
    with pytest.raises(ConfigurationError) as info:
        await client.post_form(INTROSPECTION_URL, [("token", 5)])  # type: ignore[list-item]
    assert info.value.code == "invalid_form"
    assert endpoint.requests == []


# --------------------------------------------------------------------------- revocation

REVOKE_URL = "https://idp.example/oauth/revoke"


@pytest.mark.parametrize(
    "answer",
    [
        pytest.param(httpx.Response(200), id="empty-200"),
        pytest.param(httpx.Response(200, text="revoked"), id="text-200-body-ignored"),
        pytest.param(httpx.Response(200, json={}), id="json-200"),
    ],
)
async def test_revoke_any_200_is_success_rfc7009_2_2(answer: httpx.Response) -> None:
    endpoint = Endpoint([answer])
    client = make(endpoint, revocation_endpoint=REVOKE_URL)
    await client.revoke(REFRESH, token_type_hint="refresh_token")
    request = endpoint.requests[-1]
    assert str(request.url) == REVOKE_URL
    assert request.method == "POST"
    assert endpoint.form == {"token": [REFRESH], "token_type_hint": ["refresh_token"]}
    assert request.headers["authorization"].startswith("Basic ")  # client-authenticated (2.1)


async def test_revoke_without_hint_and_with_explicit_endpoint() -> None:
    endpoint = Endpoint([httpx.Response(200)])
    await make(endpoint, auth_method="client_secret_post").revoke(ACCESS, endpoint=REVOKE_URL)
    assert endpoint.form == {"token": [ACCESS], "client_id": ["app"], "client_secret": [SECRET]}


@pytest.mark.parametrize(
    ("answer", "error", "status"),
    [
        pytest.param(httpx.Response(400, json={"error": "unsupported_token_type"}),
                     "unsupported_token_type", 400, id="unsupported-token-type-rfc7009-2.2.1"),
        pytest.param(httpx.Response(401, json={"error": "invalid_client"}), "invalid_client",
                     401, id="invalid-client"),
        pytest.param(httpx.Response(400, json={"error": "invalid_request"}), "invalid_request",
                     400, id="invalid-request"),
    ],
)  # fmt: skip
async def test_revoke_errors_are_oauth_errors(
    answer: httpx.Response, error: str, status: int
) -> None:
    endpoint = Endpoint([answer])
    with pytest.raises(OAuthError) as info:
        await make(endpoint, revocation_endpoint=REVOKE_URL).revoke(REFRESH)
    assert (info.value.error, info.value.status_code) == (error, status)
    assert REFRESH not in str(info.value)


@pytest.mark.parametrize(
    ("answer", "code"),
    [
        pytest.param(httpx.ConnectError("refused"), "provider_unreachable", id="connect-error"),
        pytest.param(httpx.ReadTimeout("slow"), "provider_timeout", id="read-timeout"),
        pytest.param(httpx.Response(503, headers={"Retry-After": "3"}), "provider_http_error",
                     id="http-503-retry-later-rfc7009-2.2.1"),
        pytest.param(httpx.Response(429), "provider_rate_limited", id="http-429"),
        pytest.param(httpx.Response(500, text="boom"), "provider_http_error", id="http-500"),
        pytest.param(httpx.Response(400, text="nope"), "provider_bad_response", id="400-not-json"),
        pytest.param(httpx.Response(400, json={"message": "no"}), "provider_bad_response",
                     id="400-without-error-member"),
        pytest.param(httpx.Response(307, headers={"Location": "https://evil.example/r"}),
                     "provider_redirect", id="redirect-not-followed"),
    ],
)  # fmt: skip
async def test_revoke_faults_become_provider_unavailable(
    answer: httpx.Response | Exception, code: str
) -> None:
    endpoint = Endpoint([answer])
    with pytest.raises(ProviderUnavailable) as info:
        await make(endpoint, revocation_endpoint=REVOKE_URL).revoke(REFRESH)
    assert info.value.code == code
    assert REFRESH not in str(info.value)
    assert SECRET not in str(info.value)


@pytest.mark.parametrize(
    ("settings", "args", "code"),
    [
        pytest.param({}, {}, "missing_revocation_endpoint", id="no-endpoint"),
        pytest.param({"revocation_endpoint": REVOKE_URL}, {"token_type_hint": ""},
                     "invalid_token_type_hint", id="empty-hint"),
        pytest.param({"revocation_endpoint": REVOKE_URL}, {"token": ""}, "missing_token",
                     id="empty-token"),
    ],
)  # fmt: skip
async def test_revoke_refuses_bad_arguments(
    settings: dict[str, Any], args: dict[str, Any], code: str
) -> None:
    endpoint = Endpoint([httpx.Response(200)])
    token = args.pop("token", REFRESH)
    with pytest.raises(ConfigurationError) as info:
        await make(endpoint, **settings).revoke(token, **args)
    assert info.value.code == code
    assert not endpoint.requests


def test_revocation_endpoint_must_be_https() -> None:
    with pytest.raises(ConfigurationError):
        make(Endpoint([httpx.Response(200)]), revocation_endpoint="http://idp.example/revoke")


async def test_from_provider_takes_the_revocation_endpoint() -> None:
    @dataclass(frozen=True)
    class Meta(_Meta):
        revocation_endpoint: str | None = REVOKE_URL

    client = await OAuthClient.from_provider(
        _Source(Meta(issuer=ISSUER, token_endpoint=TOKEN_URL)), client_id="app", auth_method="none"
    )
    assert client.revocation_endpoint == REVOKE_URL
