"""Provider presets: each accepts its provider's real token shape and relaxes nothing more."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from oidc_asgi._jwks import StaticKeys
from oidc_asgi.bearer import BearerConfig, BearerValidator, Scopes, ScopesOrRoles
from oidc_asgi.errors import TokenError
from oidc_asgi.testing import DevProvider

from ._support import START, Clock

NOW = int(START)
TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
APP = "6e74172b-be56-4843-9ff4-e66a39bb12e3"


def sign(dev: DevProvider, claims: dict[str, Any], typ: str | None = "JWT") -> str:
    key = dev.signing_key("RS256")
    if typ is None:
        from oidc_asgi.testing._keys import encode_jws, raw_sign

        header = {"alg": "RS256", "kid": key.kid}
        return encode_jws(header, claims, lambda data: raw_sign(key.private_key, "RS256", data))
    return key.sign(claims, typ=typ)


def times(**extra: Any) -> dict[str, Any]:
    return {"iat": NOW - 10, "exp": NOW + 3600, **extra}


# (id, config, claims of a real-shaped token, typ header, check on the principal)
PRESETS: list[tuple[str, BearerConfig, dict[str, Any], str | None, Callable[[Any], bool]]] = [
    (
        "auth0",
        BearerConfig.auth0(domain="example.eu.auth0.com", audience="https://api.example.com"),
        times(
            iss="https://example.eu.auth0.com/",
            sub="auth0|123",
            aud=["https://api.example.com", "https://example.eu.auth0.com/userinfo"],
            azp="spa-client",
            scope="openid read:messages",
        ),
        "JWT",
        lambda p: p.client_id == "spa-client" and p.scopes == {"openid", "read:messages"},
    ),
    (
        "auth0-rbac-permissions",
        BearerConfig.auth0(
            domain="example.eu.auth0.com", audience="https://api.example.com", permissions=True
        ),
        times(
            iss="https://example.eu.auth0.com/",
            sub="client@clients",
            aud="https://api.example.com",
            azp="client",
            gty="client-credentials",
            permissions=["read:messages"],
        ),
        "JWT",
        lambda p: p.scopes == {"read:messages"},
    ),
    (
        "entra-v2-delegated",
        BearerConfig.entra_id_v2(tenant_id=TENANT, client_id=APP),
        times(
            iss=f"https://login.microsoftonline.com/{TENANT}/v2.0",
            aud=APP,
            sub="AAAAAAAAAAAAAAAAAAAAAIkzqFVrSaSaFHy782bbtaQ",
            azp="caller-app",
            scp="Messages.Read User.Read",
            tid=TENANT,
            ver="2.0",
            nbf=NOW - 10,
        ),
        "JWT",
        lambda p: p.client_id == "caller-app" and "Messages.Read" in p.scopes,
    ),
    (
        "entra-v2-app-roles",
        BearerConfig.entra_id_v2(tenant_id=TENANT, client_id=APP),
        times(
            iss=f"https://login.microsoftonline.com/{TENANT}/v2.0",
            aud=APP,
            sub="daemon-oid",
            azp="daemon",
            roles=["Messages.Read.All"],
            ver="2.0",
        ),
        "JWT",
        lambda p: p.roles == {"Messages.Read.All"} and not p.scopes,
    ),
    (
        "entra-v1",
        BearerConfig.entra_id_v1(tenant_id=TENANT, client_id=APP),
        times(
            iss=f"https://sts.windows.net/{TENANT}/",
            aud=f"api://{APP}",
            sub="user-sub",
            appid="caller-app",
            scp="Messages.Read",
            ver="1.0",
        ),
        "JWT",
        lambda p: p.client_id == "caller-app" and p.scopes == {"Messages.Read"},
    ),
    (
        "okta",
        BearerConfig.okta(domain="example.okta.com"),
        times(
            iss="https://example.okta.com/oauth2/default",
            aud="api://default",
            sub="alice@example.com",
            cid="0oa1",
            jti="AT.abc",
            scp=["openid", "read:messages"],
            ver=1,
        ),
        None,
        lambda p: p.client_id == "0oa1" and p.scopes == {"openid", "read:messages"},
    ),
    (
        "keycloak",
        BearerConfig.keycloak(base_url="https://sso.example.com/", realm="acme", audience="api"),
        times(
            iss="https://sso.example.com/realms/acme",
            aud=["api", "account"],
            sub="f:1",
            jti="j1",
            azp="frontend",
            typ="Bearer",
            scope="openid profile",
            realm_access={"roles": ["editor"]},
        ),
        "JWT",
        lambda p: p.client_id == "frontend" and p.roles == {"editor"},
    ),
    (
        "cognito",
        BearerConfig.cognito(region="eu-west-1", user_pool_id="eu-west-1_AbC", client_ids=["c1"]),
        times(
            iss="https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_AbC",
            sub="u1",
            jti="j1",
            client_id="c1",
            token_use="access",
            scope="aws.cognito.signin.user.admin",
            **{"cognito:groups": ["admins"]},
        ),
        None,
        lambda p: p.client_id == "c1" and p.roles == {"admins"},
    ),
    (
        "google",
        BearerConfig.google(audience="https://svc.a.run.app"),
        times(
            iss="https://accounts.google.com",
            aud="https://svc.a.run.app",
            sub="1234567890",
            azp="sa@project.iam.gserviceaccount.com",
            email="sa@project.iam.gserviceaccount.com",
            email_verified=True,
        ),
        "JWT",
        lambda p: p.client_id == "sa@project.iam.gserviceaccount.com" and not p.scopes,
    ),
    (
        "google-issuer-without-scheme",
        BearerConfig.google(audience="https://svc.a.run.app"),
        times(iss="accounts.google.com", aud="https://svc.a.run.app", sub="1"),
        "JWT",
        lambda p: p.issuer == "accounts.google.com",
    ),
]


def validator_for(config: BearerConfig, dev: DevProvider) -> BearerValidator:
    return BearerValidator(config, keys=StaticKeys(dev.jwks()), now=Clock())


@pytest.mark.parametrize(
    ("config", "claims", "typ", "check"),
    [pytest.param(c, cl, t, ch, id=i) for i, c, cl, t, ch in PRESETS],
)
async def test_preset_accepts_provider_token(
    dev: DevProvider,
    config: BearerConfig,
    claims: dict[str, Any],
    typ: str | None,
    check: Callable[[Any], bool],
) -> None:
    principal = await validator_for(config, dev).validate(sign(dev, claims, typ))
    assert check(principal)


def _preset(name: str) -> tuple[BearerConfig, dict[str, Any]]:
    row = next(r for r in PRESETS if r[0] == name)
    return row[1], dict(row[2])


# (id, preset, claim changes, expected code): what each preset still rejects.
STILL_REJECTED: list[tuple[str, str, dict[str, Any], str]] = [
    (
        "auth0-issuer-without-slash",
        "auth0",
        {"iss": "https://example.eu.auth0.com"},
        "invalid_issuer",
    ),
    ("auth0-id-token-nonce", "auth0", {"nonce": "n"}, "token_kind_mismatch"),
    ("auth0-other-api", "auth0", {"aud": "https://other.example.com"}, "invalid_audience"),
    (
        "entra-v2-other-tenant",
        "entra-v2-delegated",
        {"iss": "https://login.microsoftonline.com/other/v2.0"},
        "invalid_issuer",
    ),
    (
        "entra-v2-graph-token",
        "entra-v2-delegated",
        {"aud": "00000003-0000-0000-c000-000000000000"},
        "invalid_audience",
    ),
    ("entra-v2-id-token", "entra-v2-delegated", {"at_hash": "x"}, "token_kind_mismatch"),
    (
        "entra-v1-v2-issuer",
        "entra-v1",
        {"iss": f"https://login.microsoftonline.com/{TENANT}/v2.0"},
        "invalid_issuer",
    ),
    (
        "okta-other-server",
        "okta",
        {"iss": "https://example.okta.com/oauth2/other"},
        "invalid_issuer",
    ),
    ("okta-missing-jti", "okta", {"jti": None}, "missing_claim"),
    ("keycloak-account-only", "keycloak", {"aud": "account"}, "invalid_audience"),
    ("cognito-id-token", "cognito", {"token_use": "id"}, "invalid_claim_value"),
    ("cognito-other-client", "cognito", {"client_id": "c2"}, "client_not_allowed"),
    ("cognito-expired", "cognito", {"exp": NOW - 3600}, "token_expired"),
    # No audience is configured, so a token naming one is meant for someone else.
    ("cognito-token-with-aud", "cognito", {"aud": "c1"}, "invalid_audience"),
    (
        "cognito-foreign-pool",
        "cognito",
        {"iss": "https://cognito-idp.eu-west-1.amazonaws.com/x"},
        "invalid_issuer",
    ),
    ("google-browser-id-token", "google", {"nonce": "n"}, "token_kind_mismatch"),
    ("google-http-issuer", "google", {"iss": "http://accounts.google.com"}, "invalid_issuer"),
]


@pytest.mark.parametrize(
    ("preset", "changes", "code"),
    [pytest.param(p, ch, c, id=i) for i, p, ch, c in STILL_REJECTED],
)
async def test_preset_relaxes_nothing_else(
    dev: DevProvider, preset: str, changes: dict[str, Any], code: str
) -> None:
    config, claims = _preset(preset)
    for name, value in changes.items():
        if value is None:
            claims.pop(name, None)
        else:
            claims[name] = value
    typ = next(r[3] for r in PRESETS if r[0] == preset)
    with pytest.raises(TokenError) as info:
        await validator_for(config, dev).validate(sign(dev, claims, typ))
    assert info.value.code == code


async def test_strict_default_rejects_untyped_tokens(dev: DevProvider) -> None:
    config, claims = _preset("auth0")
    strict = config.with_changes(typ_policy="strict")
    with pytest.raises(TokenError) as info:
        await validator_for(strict, dev).validate(sign(dev, claims, "JWT"))
    assert info.value.code == "invalid_typ"


async def test_entra_delegated_or_app_rule(dev: DevProvider) -> None:
    rule = ScopesOrRoles(scopes=["Messages.Read"], roles=["Messages.Read.All"])
    for name in ("entra-v2-delegated", "entra-v2-app-roles"):
        config, claims = _preset(name)
        principal = await validator_for(config, dev).validate(sign(dev, claims))
        rule.check(principal, START)
    config, claims = _preset("entra-v2-app-roles")
    principal = await validator_for(config, dev).validate(sign(dev, claims))
    with pytest.raises(TokenError):
        Scopes("Messages.Read").check(principal, START)


def test_preset_overrides_and_discovery_shortcut() -> None:
    config = BearerConfig.entra_id_v1(tenant_id=TENANT, client_id=APP, leeway=0)
    assert config.leeway == 0
    assert config.jwks_uris == {
        f"https://sts.windows.net/{TENANT}/": (
            f"https://login.microsoftonline.com/{TENANT}/discovery/keys"
        )
    }
    validator = BearerValidator(config)
    provider = validator.providers[f"https://sts.windows.net/{TENANT}/"]
    assert provider.issuer == f"https://sts.windows.net/{TENANT}/"
