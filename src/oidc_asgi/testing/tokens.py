"""Token minting for tests: valid access tokens and a catalogue of deliberately bad ones.

The bad tokens follow the JWT attacks of RFC 8725 and the OpenID Foundation relying-party tests:
each differs from a valid token in exactly one way, so a validator that accepts one of them has
exactly one bug.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from oidc_asgi.testing._keys import (
    SigningKey,
    b64url,
    encode_jws,
    hs256,
    random_token,
    split_jws,
)
from oidc_asgi.testing._state import TokenRecord

if TYPE_CHECKING:
    from oidc_asgi.testing.provider import DevProvider

__all__ = ["BadTokens", "TokenFactory", "mint_access_token"]


def _default_audience(provider: DevProvider) -> str:
    for api in provider.config.apis:
        if api.token_format == "jwt":
            return api.identifier
    return provider.issuer


def _claims(
    provider: DevProvider,
    *,
    sub: str,
    scopes: Sequence[str],
    audience: str | None,
    lifetime: int | None,
    claims: Mapping[str, Any] | None,
    client_id: str,
) -> dict[str, Any]:
    now = int(provider.now())
    api = provider.config.api(audience) if audience else None
    body: dict[str, Any] = {
        "iss": provider.issuer,
        "sub": sub,
        "aud": audience or _default_audience(provider),
        "exp": now
        + (lifetime if lifetime is not None else (api.access_token_lifetime if api else 3600)),
        "iat": now,
        "jti": random_token("", 16),
        "client_id": client_id,
        "scope": " ".join(scopes),
    }
    for name, value in (claims or {}).items():
        if value is None:
            body.pop(name, None)
        else:
            body[name] = value
    return body


def mint_access_token(
    provider: DevProvider,
    *,
    sub: str = "alice",
    scopes: Sequence[str] = (),
    audience: str | None = None,
    lifetime: int | None = None,
    claims: Mapping[str, Any] | None = None,
    client_id: str = "webapp",
    alg: str | None = None,
    typ: str = "at+jwt",
) -> str:
    """A valid RFC 9068 access token from ``provider``; recorded so introspection knows it.

    Example::

        token = mint_access_token(provider, audience="http://127.0.0.1:8001/api",
                                  scopes=["read:messages"], claims={"tenant": "t1"})
    """
    body = _claims(
        provider,
        sub=sub,
        scopes=scopes,
        audience=audience,
        lifetime=lifetime,
        claims=claims,
        client_id=client_id,
    )
    api = provider.config.api(str(body.get("aud")))
    key = provider.signing_key(alg or (api.signing_alg if api else "RS256"))
    provider.state.tokens[str(body.get("jti"))] = TokenRecord(
        kind="access_token",
        grant_id=None,
        client_id=client_id,
        sub=sub,
        scope=tuple(scopes),
        audience=body.get("aud") if isinstance(body.get("aud"), str) else None,
        issued_at=int(body.get("iat", 0)),
        expires_at=int(body.get("exp", 0)),
        claims=body,
    )
    return key.sign(body, typ=typ)


class BadTokens:
    """Deliberately broken access tokens, each wrong in exactly one way.

    ``as_dict()`` gives ``{case_name: token}`` for parametrized negative tests; the names are
    stable: ``wrong-issuer``, ``wrong-audience``, ``expired``, ``not-yet-valid``, ``unknown-kid``,
    ``hs256-with-public-key``, ``alg-none``, ``bad-signature``, ``wrong-typ``,
    ``missing-<claim>`` for iss, sub, aud, exp, iat.

    Example::

        bad = BadTokens(provider, audience="http://127.0.0.1:8001/api", scopes=["read:messages"])
        for case, token in bad.as_dict().items():
            assert (await client.get("/messages", headers=auth(token))).status_code == 401, case
    """

    MISSING = ("iss", "sub", "aud", "exp", "iat")

    def __init__(
        self,
        provider: DevProvider,
        *,
        sub: str = "alice",
        scopes: Sequence[str] = (),
        audience: str | None = None,
        client_id: str = "webapp",
        leeway: int = 300,
    ) -> None:
        self.provider = provider
        self.sub = sub
        self.scopes = tuple(scopes)
        self.audience = audience or _default_audience(provider)
        self.client_id = client_id
        self.leeway = leeway

    def _mint(self, claims: Mapping[str, Any] | None = None, **kwargs: Any) -> str:
        return mint_access_token(
            self.provider,
            sub=self.sub,
            scopes=self.scopes,
            audience=self.audience,
            client_id=self.client_id,
            claims=claims,
            **kwargs,
        )

    def valid(self) -> str:
        """The reference token the others deviate from."""
        return self._mint()

    def wrong_issuer(self) -> str:
        return self._mint({"iss": "http://127.0.0.1:9999"})

    def wrong_audience(self) -> str:
        return self._mint({"aud": "http://127.0.0.1:9999/other-api"})

    def expired(self) -> str:
        now = int(self.provider.now())
        return self._mint({"iat": now - 2 * self.leeway - 3600, "exp": now - 2 * self.leeway})

    def not_yet_valid(self) -> str:
        now = int(self.provider.now())
        later = now + 2 * self.leeway
        return self._mint({"nbf": later, "iat": later, "exp": later + 3600})

    def wrong_typ(self) -> str:
        """``typ: JWT`` instead of ``at+jwt`` (RFC 9068 section 4), e.g. an ID token."""
        return self._mint(typ="JWT")

    def missing(self, claim: str) -> str:
        return self._mint({claim: None})

    def unknown_kid(self) -> str:
        """Signed by a key the provider never published."""
        stranger = SigningKey.generate("ES256")
        header, claims, _, _ = split_jws(self.valid())
        return stranger.sign(claims, typ=header.get("typ", "at+jwt"))

    def hs256_with_public_key(self) -> str:
        """Algorithm confusion (RFC 8725 section 2.1): HMAC keyed with the RSA public key PEM."""
        key = self.provider.signing_key("RS256")
        header, claims, _, _ = split_jws(self.valid())
        forged = {**header, "alg": "HS256", "kid": key.kid}
        return encode_jws(forged, claims, hs256(key.public_pem()))

    def alg_none(self) -> str:
        """Unsecured JWS (RFC 7519 section 6): ``alg: none`` and an empty signature."""
        header, claims, _, _ = split_jws(self.valid())
        return encode_jws({**header, "alg": "none"}, claims, lambda _: b"")

    def bad_signature(self) -> str:
        """A valid token whose claims were altered after signing."""
        head, _, sig = self.valid().split(".")
        _, claims, _, _ = split_jws(self.valid())
        claims["sub"] = "mallory"
        import json

        body = b64url(json.dumps(claims, separators=(",", ":")).encode())
        return f"{head}.{body}.{sig}"

    def as_dict(self) -> dict[str, str]:
        """Every bad token by case name (use the names as pytest ids)."""
        cases = {
            "wrong-issuer": self.wrong_issuer(),
            "wrong-audience": self.wrong_audience(),
            "expired": self.expired(),
            "not-yet-valid": self.not_yet_valid(),
            "unknown-kid": self.unknown_kid(),
            "hs256-with-public-key": self.hs256_with_public_key(),
            "alg-none": self.alg_none(),
            "bad-signature": self.bad_signature(),
            "wrong-typ": self.wrong_typ(),
        }
        cases.update({f"missing-{c}": self.missing(c) for c in self.MISSING})
        return cases


class TokenFactory:
    """Callable minting access tokens for one API with defaults; ``.bad`` gives ``BadTokens``.

    Example::

        make = TokenFactory(provider, audience="http://127.0.0.1:8001/api")
        token = make(scopes=["read:messages"])
        expired = make.bad(scopes=["read:messages"]).expired()
    """

    def __init__(
        self,
        provider: DevProvider,
        *,
        audience: str | None = None,
        sub: str = "alice",
        client_id: str = "webapp",
    ) -> None:
        self.provider = provider
        self.audience = audience or _default_audience(provider)
        self.sub = sub
        self.client_id = client_id

    def __call__(
        self,
        *,
        sub: str | None = None,
        scopes: Sequence[str] = (),
        audience: str | None = None,
        lifetime: int | None = None,
        claims: Mapping[str, Any] | None = None,
        alg: str | None = None,
    ) -> str:
        return mint_access_token(
            self.provider,
            sub=sub or self.sub,
            scopes=scopes,
            audience=audience or self.audience,
            lifetime=lifetime,
            claims=claims,
            client_id=self.client_id,
            alg=alg,
        )

    def bad(self, *, scopes: Sequence[str] = (), sub: str | None = None) -> BadTokens:
        return BadTokens(
            self.provider,
            sub=sub or self.sub,
            scopes=scopes,
            audience=self.audience,
            client_id=self.client_id,
        )
