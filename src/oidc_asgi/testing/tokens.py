"""Token minting for tests: valid tokens and catalogues of deliberately bad ones.

The bad tokens follow the JWT attacks of RFC 8725 and the OpenID Foundation relying-party tests:
each differs from a valid token in exactly one way, so a validator that accepts one of them has
exactly one bug.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from oidc_asgi.testing._keys import (
    SigningKey,
    b64url,
    b64url_decode,
    encode_jws,
    hs256,
    left_hash,
    override_claims,
    random_token,
    raw_sign,
    split_jws,
)
from oidc_asgi.testing._state import Grant, TokenRecord

if TYPE_CHECKING:
    from oidc_asgi.testing._config import DevClient
    from oidc_asgi.testing.provider import DevProvider

__all__ = [
    "BadIDTokenServed",
    "BadIDTokens",
    "BadTokens",
    "TokenFactory",
    "mint_access_token",
    "serve_bad_id_token",
]


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
    return override_claims(body, claims)


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


# --------------------------------------------------------------------------- ID tokens


def _resign_broken(token: str) -> str:
    """The same token with one signature byte changed: the signature no longer verifies."""
    head, body, signature = token.split(".")
    raw = bytearray(b64url_decode(signature))
    raw[0] ^= 0x01
    return f"{head}.{body}.{b64url(bytes(raw))}"


class BadIDTokens:
    """ID tokens as the OpenID Foundation's relying-party tests send them, each wrong in one way.

    The case names are the conformance modules' (``oidcc-client-test-<case>``, OIDC Core 1.0
    section 3.1.3.7): ``invalid-iss``, ``missing-sub``, ``invalid-aud``, ``missing-aud``,
    ``missing-iat``, ``nonce-invalid``, ``invalid-sig-rs256``, ``invalid-sig-es256``,
    ``invalid-sig-hs256`` (HMAC keyed with the client secret, then broken),
    ``idtoken-sig-none``, ``expired``, ``invalid-athash``, ``invalid-chash`` (all in
    ``REJECT``), and the two that a relying party may accept (``ACCEPTABLE``):
    ``kid-absent-single-jwks`` (no ``kid``, one RSA key published) and
    ``kid-absent-multiple-jwks`` (no ``kid``, signed by the *second* of several published RSA
    keys; the provider's keys are rotated once if it publishes only one).

    Every token starts from a valid one for ``client_id`` with this login's ``nonce`` (and
    ``at_hash`` / ``c_hash`` of ``access_token`` / ``code`` when given), so a validator that
    accepts a ``REJECT`` token has exactly one bug. To make the provider's token endpoint
    return one of them at the next code redemption, use ``serve_bad_id_token``.

    Example::

        bad = BadIDTokens(provider, client_id="webapp", nonce="n-1")
        for case in BadIDTokens.REJECT:
            with pytest.raises(TokenError):
                await validator.id_token(bad.make(case), IDTokenExpectations(
                    client_id="webapp", nonce="n-1"))
    """

    REJECT: tuple[str, ...] = (
        "invalid-iss",
        "missing-sub",
        "invalid-aud",
        "missing-aud",
        "missing-iat",
        "nonce-invalid",
        "invalid-sig-rs256",
        "invalid-sig-es256",
        "invalid-sig-hs256",
        "idtoken-sig-none",
        "expired",
        "invalid-athash",
        "invalid-chash",
    )
    ACCEPTABLE: tuple[str, ...] = ("kid-absent-single-jwks", "kid-absent-multiple-jwks")
    CASES: tuple[str, ...] = REJECT + ACCEPTABLE

    def __init__(
        self,
        provider: DevProvider,
        *,
        client_id: str = "webapp",
        nonce: str | None = None,
        sub: str = "alice",
        access_token: str | None = None,
        code: str | None = None,
        client_secret: str | None = None,
        claims: Mapping[str, Any] | None = None,
        alg: str = "RS256",
        leeway: int = 300,
    ) -> None:
        self.provider = provider
        self.client_id = client_id
        self.alg = alg
        self.leeway = leeway
        registered = provider.config.client(client_id)
        secret = client_secret or (registered.client_secret if registered else None)
        self.client_secret = secret or "client-secret"
        token = provider.mint_id_token(sub=sub, client_id=client_id, nonce=nonce, claims=claims)
        self.claims: dict[str, Any] = split_jws(token)[1]
        if access_token is not None:
            self.claims["at_hash"] = left_hash(access_token, alg)
        if code is not None:
            self.claims["c_hash"] = left_hash(code, alg)

    @classmethod
    def from_id_token(
        cls, provider: DevProvider, id_token: str, *, client_secret: str | None = None
    ) -> BadIDTokens:
        """Variants of a genuine ID token (its claims and ``alg``), e.g. one just issued.

        Example::

            bad = BadIDTokens.from_id_token(provider, token_response["id_token"])
        """
        header, claims, _, _ = split_jws(id_token)
        aud = claims.get("aud")
        client_id = str(aud[0] if isinstance(aud, list) and aud else aud)
        bad = cls(
            provider,
            client_id=client_id,
            client_secret=client_secret,
            alg=str(header.get("alg", "RS256")),
        )
        bad.claims = dict(claims)
        return bad

    # -- building blocks ----------------------------------------------------------------------

    def _with(self, **changes: Any) -> dict[str, Any]:
        return override_claims(dict(self.claims), changes)

    def _sign(self, claims: Mapping[str, Any], alg: str | None = None) -> str:
        return self.provider.signing_key(alg or self.alg).sign(claims)

    def _wrong_hash(self) -> str:
        return left_hash(random_token("", 16), self.alg)

    def valid(self) -> str:
        """The reference token the others deviate from."""
        return self._sign(self.claims)

    def with_claims(self, **changes: Any) -> str:
        """The reference token with claims set (``None``: removed), signed again.

        Example::

            token = bad.with_claims(azp="someone-else")
        """
        return self._sign(self._with(**changes))

    # -- the cases ----------------------------------------------------------------------------

    def invalid_iss(self) -> str:
        return self.with_claims(iss="https://evil.example")

    def missing(self, claim: str) -> str:
        """Without ``claim`` (``missing-sub``, ``missing-aud``, ``missing-iat``)."""
        return self.with_claims(**{claim: None})

    def invalid_aud(self) -> str:
        return self.with_claims(aud="someone-else")

    def nonce_invalid(self) -> str:
        return self.with_claims(nonce="not-the-nonce-that-was-sent")

    def expired(self) -> str:
        """Expired by more than twice ``leeway`` (OIDC Core 3.1.3.7 item 9)."""
        now = int(self.provider.now())
        exp = now - 2 * self.leeway
        return self.with_claims(exp=exp, iat=exp - 3600, auth_time=exp - 3600)

    def invalid_athash(self) -> str:
        return self.with_claims(at_hash=self._wrong_hash())

    def invalid_chash(self) -> str:
        return self.with_claims(c_hash=self._wrong_hash())

    def invalid_sig(self, alg: str = "RS256") -> str:
        """Signed with the provider's published ``alg`` key, then one signature byte changed."""
        return _resign_broken(self._sign(self.claims, alg))

    def invalid_sig_hs256(self) -> str:
        """HS256 keyed with the client secret (OIDC Core 10.1), then one byte changed."""
        secret = self.client_secret.encode("utf-8")
        token = encode_jws({"alg": "HS256", "typ": "JWT"}, self.claims, hs256(secret))
        return _resign_broken(token)

    def sig_none(self) -> str:
        """Unsecured JWS (RFC 7519 section 6): ``alg: none``, empty signature."""
        return encode_jws({"alg": "none", "typ": "JWT"}, self.claims, lambda _: b"")

    def kid_absent(self, *, multiple: bool = False) -> str:
        """RS256 without ``kid``; ``multiple``: signed by the second of several RSA keys.

        With ``multiple`` the provider's keys are rotated once when it publishes only one RSA
        key, so the JWKS holds two and the token's key is not the first candidate.
        """
        key = self.provider.signing_key("RS256")
        if multiple:
            rsa_keys = _published_rsa(self.provider)
            if len(rsa_keys) < 2:
                self.provider.rotate_keys()
                rsa_keys = _published_rsa(self.provider)
            key = rsa_keys[1]
        header = {"alg": "RS256", "typ": "JWT"}
        return encode_jws(
            header, self.claims, lambda data: raw_sign(key.private_key, "RS256", data)
        )

    def make(self, case: str) -> str:
        """The token of one case name (see ``CASES``); ``ValueError`` for an unknown name."""
        builders: dict[str, Callable[[], str]] = {
            "invalid-iss": self.invalid_iss,
            "missing-sub": lambda: self.missing("sub"),
            "invalid-aud": self.invalid_aud,
            "missing-aud": lambda: self.missing("aud"),
            "missing-iat": lambda: self.missing("iat"),
            "nonce-invalid": self.nonce_invalid,
            "invalid-sig-rs256": lambda: self.invalid_sig("RS256"),
            "invalid-sig-es256": lambda: self.invalid_sig("ES256"),
            "invalid-sig-hs256": self.invalid_sig_hs256,
            "idtoken-sig-none": self.sig_none,
            "expired": self.expired,
            "invalid-athash": self.invalid_athash,
            "invalid-chash": self.invalid_chash,
            "kid-absent-single-jwks": self.kid_absent,
            "kid-absent-multiple-jwks": lambda: self.kid_absent(multiple=True),
        }
        builder = builders.get(case)
        if builder is None:
            raise ValueError(f"unknown bad ID token case {case!r}")
        return builder()

    def as_dict(self) -> dict[str, str]:
        """Every case by name (use the names as pytest ids); rotates keys once, see above."""
        return {case: self.make(case) for case in self.CASES}


def _published_rsa(provider: DevProvider) -> list[SigningKey]:
    published = provider.keys.published(provider.now(), provider.config.retired_key_lifetime)
    return [key for key in published if key.alg == "RS256"]


class BadIDTokenServed:
    """Handle returned by ``serve_bad_id_token``: ``served`` holds the token once issued.

    ``genuine`` is the ID token the provider would have returned instead.

    Example::

        served = serve_bad_id_token(provider, "invalid-iss")
        ...  # drive a login
        assert not served.pending
        assert provider.unverified_claims(served.served)["iss"] == "https://evil.example"
    """

    def __init__(
        self,
        case: str | Callable[[BadIDTokens], str],
        client_id: str | None,
        client_secret: str | None,
    ) -> None:
        self.case = case
        self.client_id = client_id
        self.client_secret = client_secret
        self.served: str | None = None
        self.genuine: str | None = None

    @property
    def pending(self) -> bool:
        """True until the provider has issued the bad token."""
        return self.served is None


class _IssueHook:
    """Stands in for ``DevProvider.issue_id_token`` on one provider while bad tokens wait."""

    def __init__(self, provider: DevProvider) -> None:
        self.provider = provider
        self.waiting: list[BadIDTokenServed] = []

    def __call__(
        self,
        client: DevClient,
        grant: Grant,
        *,
        nonce: str | None = None,
        access_token: str | None = None,
    ) -> str:
        provider = self.provider
        genuine = type(provider).issue_id_token(
            provider, client, grant, nonce=nonce, access_token=access_token
        )
        for handle in self.waiting:
            if handle.client_id in (None, client.client_id):
                break
        else:
            return genuine
        self.waiting.remove(handle)
        if not self.waiting:
            vars(provider).pop("issue_id_token", None)
        bad = BadIDTokens.from_id_token(provider, genuine, client_secret=handle.client_secret)
        token = bad.make(handle.case) if isinstance(handle.case, str) else handle.case(bad)
        handle.genuine, handle.served = genuine, token
        return token


def serve_bad_id_token(
    provider: DevProvider,
    case: str | Callable[[BadIDTokens], str],
    *,
    client_id: str | None = None,
    client_secret: str | None = None,
) -> BadIDTokenServed:
    """Make ``provider`` answer its next token request for ``client_id`` with a bad ID token.

    The provider issues the genuine ID token (this login's ``nonce``, ``sid``, ``at_hash``),
    then returns ``BadIDTokens.from_id_token(...).make(case)`` instead, once; ``case`` is a
    ``BadIDTokens`` case name or a function of a ``BadIDTokens``. ``client_id=None`` takes the
    next ID token for any client. Calls queue up in order. Use it to drive a relying party's
    whole login against the OpenID Foundation's negative ID-token tests.

    Example::

        served = serve_bad_id_token(provider, "nonce-invalid", client_id="webapp")
        response = await client.get("/callback", params=answer)  # the app redeems the code
        assert not served.pending and response.status_code == 400
    """
    if isinstance(case, str) and case not in BadIDTokens.CASES:
        raise ValueError(f"unknown bad ID token case {case!r}")
    hook = vars(provider).get("issue_id_token")
    if not isinstance(hook, _IssueHook):
        hook = _IssueHook(provider)
        # DevProvider.token_response calls self.issue_id_token: an instance attribute wins over
        # the method, so only this provider changes, and only until the queue is empty.
        vars(provider)["issue_id_token"] = hook
    handle = BadIDTokenServed(case, client_id, client_secret)
    hook.waiting.append(handle)
    return handle
