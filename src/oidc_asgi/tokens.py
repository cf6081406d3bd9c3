"""Validation of ID tokens, JWT access tokens and logout tokens, as one pipeline of small checks.

Every token goes through the same fixed order (RFC 8725; panva/oauth4webapi's order):

1. structure (``_jose.parse_compact``): size cap before any decoding, exactly three segments
   (five is JWE: ``unsupported_token_type``), canonical base64url, UTF-8 JSON objects without
   duplicate members, NaN or Infinity;
2. header: ``enc`` (JWE), ``alg`` on the allow-list (never ``none``, never HMAC: keys come from a
   JWKS), ``crit`` (RFC 7515 4.1.11: we understand no extension, so any ``crit`` is rejected),
   ``b64`` (RFC 7797) and ``zip`` rejected, ``kid`` a short string;
3. key: ``KeySource.candidates(kid=..., alg=...)``; none is ``unknown_key``; each candidate is
   tried; the ``jwk``, ``jku``, ``x5u``, ``x5c`` and ``x5t`` headers are **ignored**: they never
   select a key and are never fetched, so a token carrying them verifies only when one of the
   issuer's own keys signed it;
4. signature (``cryptography`` directly);
5. claims, all on the verified payload: ``typ``, presence, types, ``iss`` (exact), ``aud`` /
   ``azp``, ``exp`` / ``nbf`` / ``iat`` with leeway, then the checks of the token kind.

Each check raises :class:`~oidc_asgi.errors.TokenError` with its own stable ``code`` and
``claim`` / ``expected`` / ``actual``; the token itself never appears in an error.
"""

from __future__ import annotations

import hmac
import math
import time
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, cast

from oidc_asgi._jose import ParsedJWS, parse_compact, token_hash, verify_signature
from oidc_asgi._jwks import ALGORITHM_KEYS, KeySource, VerificationKey
from oidc_asgi.errors import ConfigurationError, TokenError

# DEFAULT_ALGORITHMS stays importable from here but is not re-exported at the top: constants
# carry no docstring of their own for the front door's documentation check.
__all__ = [
    "AccessTokenExpectations",
    "Claims",
    "IDTokenExpectations",
    "LogoutTokenExpectations",
    "TokenValidator",
]

#: Signature algorithms accepted unless configured otherwise (RFC 7518, RFC 8037).
#:
#: Example::
#:
#:     TokenValidator(issuer=iss, keys=keys, algorithms=(*DEFAULT_ALGORITHMS, "ES384"))
DEFAULT_ALGORITHMS: tuple[str, ...] = ("RS256", "PS256", "ES256", "EdDSA")

BACKCHANNEL_LOGOUT_EVENT = "http://schemas.openid.net/event/backchannel-logout"

_MAX_KID = 256
# NumericDate sanity bound (RFC 7519 section 2): 9999-12-31T23:59:59Z. A larger value (1e308)
# would make a token that never expires.
_MAX_NUMERIC_DATE = 253_402_300_799
_NON_EMPTY_STRING_CLAIMS = (
    "iss",
    "sub",
    "jti",
    "client_id",
    "azp",
    "sid",
    "nonce",
    "at_hash",
    "c_hash",
    "acr",
)
_TIME_CLAIMS = ("exp", "nbf", "iat", "auth_time")
_STRING, _TIME, _AUD, _SCOPE, _AMR = range(5)
_CLAIM_KINDS: Mapping[str, int] = {
    **dict.fromkeys(_NON_EMPTY_STRING_CLAIMS, _STRING),
    **dict.fromkeys(_TIME_CLAIMS, _TIME),
    "aud": _AUD,
    "scope": _SCOPE,
    "amr": _AMR,
}
_ID_TOKEN_MARKERS = ("nonce", "at_hash", "c_hash")

_ID_TYP = frozenset({None, "jwt"})
_AT_TYP = frozenset({"at+jwt"})
_AT_TYP_UNTYPED = frozenset({"at+jwt", "jwt", None})
_LOGOUT_TYP = frozenset({"logout+jwt", "jwt", None})


# ---------------------------------------------------------------------------------------------
# configuration


def _algorithms(value: Collection[str], where: str) -> frozenset[str]:
    if isinstance(value, str):
        raise ConfigurationError(
            f"{where}: algorithms must be a collection of names, not one string",
            code="invalid_algorithms",
        )
    algs = frozenset(value)
    if not algs:
        raise ConfigurationError(f"{where}: algorithms is empty", code="invalid_algorithms")
    for alg in algs:
        if not isinstance(alg, str):
            raise ConfigurationError(f"{where}: {alg!r} is not a name", code="invalid_algorithms")
        if alg.lower() == "none" or alg.upper().startswith("HS"):
            # RFC 8725 3.1-3.2: unsigned tokens and MAC keys published in a JWKS are never ok.
            raise ConfigurationError(
                f"{where}: algorithm {alg!r} is not allowed with keys from a key set",
                code="insecure_algorithm",
            )
        if alg not in ALGORITHM_KEYS:
            raise ConfigurationError(
                f"{where}: unknown algorithm {alg!r} (known: {', '.join(sorted(ALGORITHM_KEYS))})",
                code="invalid_algorithms",
            )
    return algs


def _strings(value: Collection[str], what: str, *, allow_empty: bool = True) -> frozenset[str]:
    if isinstance(value, str):
        raise ConfigurationError(f"{what} must be a collection of strings, not one string")
    items = frozenset(value)
    if not allow_empty and not items:
        raise ConfigurationError(f"{what} is empty")
    if not all(isinstance(v, str) and v for v in items):
        raise ConfigurationError(f"{what} must hold non-empty strings")
    return items


def _non_empty(value: object, what: str) -> None:
    if not isinstance(value, str) or not value:
        raise ConfigurationError(f"{what} must be a non-empty string")


def _duration(value: float | None, what: str) -> None:
    if value is not None and (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or value < 0
    ):
        raise ConfigurationError(f"{what} must be a finite number of seconds >= 0")


@dataclass(frozen=True, kw_only=True)
class IDTokenExpectations:
    """What the client expects of one ID token (OpenID Connect Core 1.0 section 3.1.3.7).

    Built per login: ``nonce`` is the value sent in the authorization request; ``max_age`` and
    ``acr_values`` are what was asked for; ``access_token`` and ``code`` enable the
    ``at_hash`` / ``c_hash`` checks (3.1.3.8, 3.3.2.11) when those claims are present (or always,
    with ``require_at_hash`` / ``require_c_hash`` for the implicit and hybrid flows).
    ``trusted_audiences`` lists audiences besides ``client_id`` the client accepts in ``aud``
    (an ID token with any other audience is rejected, 3.1.3.7 step 3); ``allowed_azp`` lists
    authorized parties besides ``client_id`` (``azp``, when present, must be one of them).
    ``algorithms`` narrows the validator's allow-list for this token kind: only algorithms in
    both are accepted; if none is in both, the call raises ``ConfigurationError``
    (``invalid_algorithms``), since no token could pass.

    Example::

        expect = IDTokenExpectations(client_id="app", nonce=nonce, max_age=300)
        claims = await validator.id_token(id_token, expect)
    """

    client_id: str
    nonce: str | None = None
    max_age: float | None = None
    acr_values: Collection[str] | None = None
    access_token: str | None = None
    code: str | None = None
    require_auth_time: bool = False
    require_at_hash: bool = False
    require_c_hash: bool = False
    trusted_audiences: Collection[str] = ()
    allowed_azp: Collection[str] = ()
    algorithms: Collection[str] | None = None

    def __post_init__(self) -> None:
        _non_empty(self.client_id, "client_id")
        if self.nonce is not None:
            _non_empty(self.nonce, "nonce")
        _duration(self.max_age, "max_age")
        if self.acr_values is not None:
            object.__setattr__(
                self, "acr_values", _strings(self.acr_values, "acr_values", allow_empty=False)
            )
        if self.require_at_hash and self.access_token is None:
            raise ConfigurationError("require_at_hash needs access_token")
        if self.require_c_hash and self.code is None:
            raise ConfigurationError("require_c_hash needs code")
        object.__setattr__(
            self, "trusted_audiences", _strings(self.trusted_audiences, "trusted_audiences")
        )
        object.__setattr__(self, "allowed_azp", _strings(self.allowed_azp, "allowed_azp"))
        if self.algorithms is not None:
            object.__setattr__(
                self, "algorithms", _algorithms(self.algorithms, "IDTokenExpectations")
            )


@dataclass(frozen=True, kw_only=True)
class AccessTokenExpectations:
    """What a resource server expects of a JWT access token (RFC 9068 section 4).

    ``audience`` is this API's identifier (or several); the token's ``aud`` must contain one.
    ``iss``, ``aud`` and ``exp`` are always required (``aud`` unless
    ``allow_missing_audience``, below); ``required_claims`` lists the others
    (RFC 9068 section 2.2 by default). ``typ`` must be ``at+jwt`` (RFC 9068 2.1, RFC 8725 3.11);
    ``allow_untyped=True`` relaxes that for providers that do not type their access tokens
    (Entra ID, Auth0 by default): then ``typ`` may be absent or ``JWT``, and tokens carrying ID
    token claims (``nonce``, ``at_hash``, ``c_hash``) are rejected instead (RFC 8725 3.12).
    ``max_token_age`` rejects tokens issued longer ago than that many seconds. ``algorithms``
    narrows the validator's allow-list (as in ``IDTokenExpectations``; never widens it).

    ``allow_missing_audience=True`` is the loud switch for providers that break RFC 9068
    section 4 (which requires ``aud``): Amazon Cognito access tokens carry no ``aud`` at all.
    With it, a token **without** ``aud`` passes the audience step, so nothing in the token
    binds it to this API any more: **the caller must then bind it another way**, typically by
    checking ``client_id`` against the app clients allowed to call the API (``BearerConfig``
    does this with ``allowed_client_ids``). A token that does carry ``aud`` is still checked:
    against ``audience`` when given, and rejected when ``audience`` is ``None`` (it names some
    other audience). ``audience=None`` is a configuration error without this switch.

    Example::

        expect = AccessTokenExpectations(audience="https://api.example.com")
        claims = await validator.access_token(bearer_token, expect)

        # Cognito: no aud; the caller checks claims["client_id"] itself.
        cognito = AccessTokenExpectations(audience=None, allow_missing_audience=True)
    """

    audience: str | Collection[str] | None
    required_claims: Collection[str] = ("sub", "client_id", "iat", "jti")
    allow_untyped: bool = False
    max_token_age: float | None = None
    algorithms: Collection[str] | None = None
    allow_missing_audience: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.allow_missing_audience, bool):
            raise ConfigurationError("allow_missing_audience must be a bool")
        if self.audience is None:
            if not self.allow_missing_audience:
                raise ConfigurationError(
                    "audience is required (RFC 9068 section 4); audience=None needs "
                    "allow_missing_audience=True and a client_id check by the caller",
                    code="missing_audience",
                )
        elif isinstance(self.audience, str):
            _non_empty(self.audience, "audience")
            object.__setattr__(self, "audience", frozenset({self.audience}))
        else:
            object.__setattr__(
                self, "audience", _strings(self.audience, "audience", allow_empty=False)
            )
        required = _strings(self.required_claims, "required_claims")
        always = {"iss", "exp"} if self.allow_missing_audience else {"iss", "aud", "exp"}
        object.__setattr__(self, "required_claims", required | always)
        _duration(self.max_token_age, "max_token_age")
        if self.algorithms is not None:
            object.__setattr__(
                self, "algorithms", _algorithms(self.algorithms, "AccessTokenExpectations")
            )


@dataclass(frozen=True, kw_only=True)
class LogoutTokenExpectations:
    """What a relying party expects of a back-channel logout token (Back-Channel Logout 1.0 2.6).

    ``client_id`` must be in ``aud``. ``exp`` is required (section 2.4 of the final
    specification); ``allow_missing_exp=True`` accepts tokens from providers built on the
    drafts that omitted it. Replay detection is the caller's job: remember ``claims["jti"]``
    until ``exp``. ``algorithms`` narrows the validator's allow-list (as in
    ``IDTokenExpectations``; never widens it).

    Example::

        claims = await validator.logout_token(form["logout_token"],
                                              LogoutTokenExpectations(client_id="app"))
        await sessions.revoke(sid=claims.get("sid"), sub=claims.get("sub"))
    """

    client_id: str
    allow_missing_exp: bool = False
    trusted_audiences: Collection[str] = ()
    algorithms: Collection[str] | None = None

    def __post_init__(self) -> None:
        _non_empty(self.client_id, "client_id")
        object.__setattr__(
            self, "trusted_audiences", _strings(self.trusted_audiences, "trusted_audiences")
        )
        if self.algorithms is not None:
            object.__setattr__(
                self, "algorithms", _algorithms(self.algorithms, "LogoutTokenExpectations")
            )


# ---------------------------------------------------------------------------------------------
# result


def _read_only(value: Mapping[str, Any]) -> MappingProxyType[str, Any]:
    if type(value) is MappingProxyType:
        return value
    return MappingProxyType(value if type(value) is dict else dict(value))


class Claims(Mapping[str, Any]):
    """The verified claims of a token: a read-only mapping, plus the protected ``header``.

    Only returned after every check passed. Nested values (lists, objects) are the parsed JSON;
    treat them as read-only.

    Example::

        claims = await validator.access_token(token, expect)
        user = claims.sub
        scopes = claims.get("scope", "").split()
    """

    __slots__ = ("_claims", "_header")

    _claims: MappingProxyType[str, Any]
    _header: Mapping[str, Any]

    def __init__(self, header: Mapping[str, Any], claims: Mapping[str, Any]) -> None:
        # The validator hands over freshly parsed dicts (or a header the parser already made
        # read-only): wrap them without copying.
        object.__setattr__(self, "_header", _read_only(header))
        object.__setattr__(self, "_claims", _read_only(claims))

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("Claims is read-only")

    def __getitem__(self, key: str) -> Any:
        return self._claims[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._claims)

    def __len__(self) -> int:
        return len(self._claims)

    def __repr__(self) -> str:
        return f"Claims(iss={self._claims.get('iss')!r}, sub={self._claims.get('sub')!r})"

    def as_mapping(self) -> MappingProxyType[str, Any]:
        """The claims as a read-only ``MappingProxyType`` over the parsed dict (no copy).

        ``Claims`` is a ``collections.abc.Mapping`` whose ``get`` and ``in`` run in Python;
        the proxy answers them at C speed, for code that reads many claims per request.

        Example::

            view = claims.as_mapping()
            scopes = view.get("scope", "").split()
        """
        return self._claims

    @property
    def header(self) -> Mapping[str, Any]:
        """The JOSE header (``alg``, ``kid``, ``typ``, ...)."""
        return self._header

    @property
    def iss(self) -> str:
        """The issuer (always present and equal to the configured issuer)."""
        return str(self._claims["iss"])

    @property
    def sub(self) -> str | None:
        """The subject, or ``None`` (a logout token may carry only ``sid``)."""
        value = self._claims.get("sub")
        return value if isinstance(value, str) else None

    @property
    def aud(self) -> tuple[str, ...]:
        """The audiences, always as a tuple."""
        value = self._claims.get("aud")
        if isinstance(value, str):
            return (value,)
        return tuple(value) if isinstance(value, list) else ()

    @property
    def exp(self) -> float | None:
        """Expiry as a POSIX timestamp, or ``None``."""
        value = self._claims.get("exp")
        return float(value) if isinstance(value, (int, float)) else None

    @property
    def jti(self) -> str | None:
        """The token identifier, for replay detection by the caller."""
        value = self._claims.get("jti")
        return value if isinstance(value, str) else None


# ---------------------------------------------------------------------------------------------
# the checks, in pipeline order


def _check_header(header: Mapping[str, Any], algorithms: frozenset[str]) -> tuple[str, str | None]:
    if "enc" in header:
        raise TokenError(
            "encrypted tokens (JWE) are not accepted",
            code="unsupported_token_type",
            claim="enc",
            expected="JWS",
            actual="JWE",
        )
    alg = header.get("alg")
    if not isinstance(alg, str) or alg not in algorithms:
        raise TokenError(
            "signature algorithm is not allowed",
            code="alg_not_allowed",
            claim="alg",
            expected=sorted(algorithms),
            actual=alg if isinstance(alg, str) else type(alg).__name__,
        )
    if "crit" in header:
        crit = header["crit"]
        well_formed = (
            isinstance(crit, list) and crit and all(isinstance(n, str) and n for n in crit)
        )
        raise TokenError(
            "critical header extensions are not understood"
            if well_formed
            else "malformed crit header",
            code="unsupported_crit",
            claim="crit",
            expected=[],
            actual=crit if well_formed else type(crit).__name__,
        )
    for name in ("b64", "zip"):
        # b64 (RFC 7797) changes what is signed; zip is a JWE-only parameter (RFC 7516 4.1.3).
        if name in header:
            raise TokenError(
                f"header parameter {name!r} is not supported",
                code="unsupported_header",
                claim=name,
                expected=None,
                actual=header[name] if isinstance(header[name], (bool, str)) else "present",
            )
    if "kid" not in header:
        return alg, None
    kid = header["kid"]
    if not isinstance(kid, str) or len(kid) > _MAX_KID:
        # RFC 7515 4.1.4: kid is a string; a huge or non-string kid names no key we hold, and
        # is not passed on to the key source (no lookup, no refetch).
        raise TokenError(
            "no key for this kid",
            code="unknown_key",
            claim="kid",
            expected=f"a string of at most {_MAX_KID} characters",
            actual=type(kid).__name__ if not isinstance(kid, str) else f"{len(kid)} characters",
        )
    return alg, kid


def _verified_by(
    jws: ParsedJWS, alg: str, kid: str | None, candidates: Sequence[VerificationKey]
) -> VerificationKey:
    if not candidates:
        raise TokenError(
            "no key of the issuer matches the token",
            code="unknown_key",
            claim="kid",
            expected="a key of the issuer",
            actual=kid,
        )
    for key in candidates:
        if verify_signature(alg, key, jws.signing_input, jws.signature):
            return key
    raise TokenError("signature does not verify", code="invalid_signature", claim="alg", actual=alg)


def _check_typ(header: Mapping[str, Any], accepted: frozenset[str | None]) -> None:
    typ = header.get("typ")
    norm: str | None
    if typ is None:
        norm = None
    elif isinstance(typ, str):
        # RFC 7515 4.1.9: compared case-insensitively, "application/" may be omitted.
        norm = typ.lower()
        if norm.startswith("application/"):
            norm = norm[12:]
    else:
        norm = "?"
    if norm not in accepted:
        raise TokenError(
            "token type is not the one expected here",
            code="invalid_typ",
            claim="typ",
            expected=sorted(t for t in accepted if t is not None),
            actual=typ if isinstance(typ, str) or typ is None else type(typ).__name__,
        )


def _check_present(claims: Mapping[str, Any], required: Collection[str]) -> None:
    if type(claims) is dict and type(required) is frozenset and claims.keys() >= required:
        return  # all present, decided at C speed; otherwise find the first missing one
    for name in required:
        if name not in claims:
            raise TokenError("required claim is missing", code="missing_claim", claim=name)


def _type_error(name: str, expected: str, value: object) -> TokenError:
    return TokenError(
        "claim has the wrong type",
        code="invalid_claim_type",
        claim=name,
        expected=expected,
        actual=type(value).__name__,
    )


def _check_types(claims: Mapping[str, Any]) -> None:
    # One pass over the claims present (usually ~10), dispatching on the registered name.
    for name, value in claims.items():
        kind = _CLAIM_KINDS.get(name)
        if kind is None:
            continue
        if kind == _STRING:
            if type(value) is not str or not value:
                raise _type_error(name, "non-empty string", value)
        elif kind == _TIME:
            # bool is an int in Python, so exact types; NaN/Infinity never pass the parser.
            if (type(value) is not int and type(value) is not float) or not (
                0 <= value <= _MAX_NUMERIC_DATE
            ):
                raise _type_error(name, "NumericDate (seconds since the epoch)", value)
        elif kind == _AUD:
            if not (
                (type(value) is str and value)
                or (type(value) is list and value and all(type(a) is str and a for a in value))
            ):
                raise _type_error(name, "non-empty string or list of them", value)
        elif kind == _SCOPE:
            if type(value) is not str:
                raise _type_error(name, "space-separated string", value)
        elif not (type(value) is list and all(type(a) is str for a in value)):  # amr
            raise _type_error(name, "list of strings", value)


def _check_issuer(claims: Mapping[str, Any], issuer: str) -> None:
    # RFC 9068 4 step 3, OIDC Core 3.1.3.7 step 2, RFC 8725 3.8: exact string comparison.
    if claims["iss"] != issuer:
        raise TokenError(
            "issuer is not the configured issuer",
            code="invalid_issuer",
            claim="iss",
            expected=issuer,
            actual=claims["iss"],
        )


def _audiences(claims: Mapping[str, Any]) -> tuple[str, ...]:
    aud = claims["aud"]
    return (aud,) if isinstance(aud, str) else tuple(aud)


def _check_client_audience(
    claims: Mapping[str, Any], client_id: str, trusted: frozenset[str]
) -> tuple[str, ...]:
    aud = _audiences(claims)
    if client_id not in aud:
        raise TokenError(
            "token is not meant for this client",
            code="invalid_audience",
            claim="aud",
            expected=client_id,
            actual=list(aud),
        )
    untrusted = [a for a in aud if a != client_id and a not in trusted]
    if untrusted:
        # OIDC Core 3.1.3.7 step 3: reject additional audiences the client does not trust.
        raise TokenError(
            "token names audiences this client does not trust",
            code="invalid_audience",
            claim="aud",
            expected=sorted({client_id, *trusted}),
            actual=list(aud),
        )
    return aud


def _check_times(
    claims: Mapping[str, Any], now: float, leeway: float, *, max_age: float | None = None
) -> None:
    exp = claims.get("exp")
    if exp is not None and now - leeway >= exp:
        raise TokenError(
            "token has expired", code="token_expired", claim="exp", expected=exp, actual=now
        )
    nbf = claims.get("nbf")
    if nbf is not None and nbf > now + leeway:
        raise TokenError(
            "token is not valid yet",
            code="token_not_yet_valid",
            claim="nbf",
            expected=nbf,
            actual=now,
        )
    iat = claims.get("iat")
    if iat is not None and iat > now + leeway:
        raise TokenError(
            "token was issued in the future",
            code="invalid_iat",
            claim="iat",
            expected=now,
            actual=iat,
        )
    if max_age is not None and iat is not None and now - iat > max_age + leeway:
        raise TokenError(
            "token was issued too long ago",
            code="token_too_old",
            claim="iat",
            expected=max_age,
            actual=now - iat,
        )


def _check_hash(
    claims: Mapping[str, Any],
    name: str,
    value: str | None,
    required: bool,
    alg: str,
    key: VerificationKey,
) -> None:
    if value is None or (name not in claims and not required):
        return
    if name not in claims:
        raise TokenError("required claim is missing", code="missing_claim", claim=name)
    actual = str(claims[name]).encode("utf-8", "surrogatepass")
    if not hmac.compare_digest(actual, token_hash(alg, key, value).encode("ascii")):
        raise TokenError(f"{name} does not match", code=f"invalid_{name}", claim=name)


# ---------------------------------------------------------------------------------------------
# the validator


class TokenValidator:
    """Validates tokens from one issuer against keys from a ``KeySource``.

    One validator per issuer; the per-call ``*Expectations`` say what this call expects.
    Configuration is checked here, so a wrong setting fails at startup: an empty issuer,
    ``none`` or an HMAC algorithm (keys come from a JWKS: RFC 8725 3.1-3.2), an unknown
    algorithm or a negative leeway raise ``ConfigurationError``. ``leeway`` (seconds) applies to
    ``exp``, ``nbf``, ``iat``, ``auth_time``; ``max_token_bytes`` caps the token before any
    decoding; ``now`` is the clock (inject one in tests).

    Example::

        validator = TokenValidator(issuer="https://idp.example.com", keys=provider)
        claims = await validator.access_token(
            token, AccessTokenExpectations(audience="https://api.example.com")
        )
    """

    def __init__(
        self,
        *,
        issuer: str,
        keys: KeySource,
        algorithms: Collection[str] = DEFAULT_ALGORITHMS,
        leeway: float = 60,
        max_token_bytes: int = 16 * 1024,
        now: Callable[[], float] = time.time,
    ) -> None:
        _non_empty(issuer, "issuer")
        if not callable(getattr(keys, "candidates", None)):
            raise ConfigurationError("keys must be a KeySource (a Provider or StaticKeys)")
        _duration(leeway, "leeway")
        if isinstance(max_token_bytes, bool) or not isinstance(max_token_bytes, int):
            raise ConfigurationError("max_token_bytes must be an int")
        if max_token_bytes < 256:
            raise ConfigurationError("max_token_bytes must be at least 256")
        if not callable(now):
            raise ConfigurationError("now must be a callable returning POSIX seconds")
        self.issuer = issuer
        self.keys = keys
        self.algorithms = _algorithms(algorithms, "TokenValidator")
        self.leeway = float(leeway)
        self.max_token_bytes = max_token_bytes
        self.now = now

    async def _signed(
        self, token: str, algorithms: Collection[str] | None
    ) -> tuple[ParsedJWS, str, VerificationKey]:
        algs = self.algorithms
        if algorithms is not None:
            # Expectations narrow the allow-list, never widen it (RFC 8725 3.1): an alg this
            # validator does not allow cannot be re-enabled per call.
            algs = algs & frozenset(algorithms)
            if not algs:
                raise ConfigurationError(
                    "the expected algorithms are all outside this validator's allow-list "
                    f"({', '.join(sorted(self.algorithms))}); add them to TokenValidator",
                    code="invalid_algorithms",
                )
        jws = parse_compact(token, self.max_token_bytes)
        alg, kid = _check_header(jws.header, algs)
        candidates: Sequence[VerificationKey] = await self.keys.candidates(kid=kid, alg=alg)
        return jws, alg, _verified_by(jws, alg, kid, candidates)

    def _common(
        self,
        jws: ParsedJWS,
        typ: frozenset[str | None],
        required: Collection[str],
    ) -> Mapping[str, Any]:
        claims = jws.payload
        _check_typ(jws.header, typ)
        _check_present(claims, required)
        _check_types(claims)
        _check_issuer(claims, self.issuer)
        return claims

    async def id_token(self, token: str, expect: IDTokenExpectations) -> Claims:
        """Validate an ID token (OpenID Connect Core 1.0 section 3.1.3.7) and return its claims.

        Example::

            claims = await validator.id_token(
                id_token, IDTokenExpectations(client_id="app", nonce=nonce)
            )
        """
        jws, alg, key = await self._signed(token, expect.algorithms)
        required = ["iss", "sub", "aud", "exp", "iat"]
        if expect.nonce is not None:
            required.append("nonce")
        if expect.max_age is not None or expect.require_auth_time:
            required.append("auth_time")
        if expect.acr_values is not None:
            required.append("acr")
        claims = self._common(jws, _ID_TYP, required)
        aud = _check_client_audience(claims, expect.client_id, frozenset(expect.trusted_audiences))
        azp = claims.get("azp")
        allowed_azp = {expect.client_id, *expect.allowed_azp}
        if (azp is not None and azp not in allowed_azp) or (azp is None and len(aud) > 1):
            # OIDC Core 3.1.3.7 steps 4-5: with several audiences azp must be present, and
            # when present it must name this client.
            raise TokenError(
                "authorized party is not this client",
                code="invalid_azp",
                claim="azp",
                expected=sorted(allowed_azp),
                actual=azp,
            )
        now = self.now()
        leeway = self.leeway
        _check_times(claims, now, leeway)
        if expect.nonce is not None and not hmac.compare_digest(
            str(claims["nonce"]).encode("utf-8", "surrogatepass"),
            expect.nonce.encode("utf-8", "surrogatepass"),
        ):
            raise TokenError("nonce does not match", code="invalid_nonce", claim="nonce")
        auth_time = claims.get("auth_time")
        if auth_time is not None:
            if auth_time > now + leeway:
                raise TokenError(
                    "authentication time is in the future",
                    code="invalid_auth_time",
                    claim="auth_time",
                    expected=now,
                    actual=auth_time,
                )
            if expect.max_age is not None and now - auth_time > expect.max_age + leeway:
                # OIDC Core 3.1.2.1 max_age, 3.1.3.7 step 11.
                raise TokenError(
                    "authentication is older than max_age",
                    code="auth_time_too_old",
                    claim="auth_time",
                    expected=expect.max_age,
                    actual=now - auth_time,
                )
        if expect.acr_values is not None and claims["acr"] not in expect.acr_values:
            raise TokenError(
                "authentication context is not one requested",
                code="invalid_acr",
                claim="acr",
                expected=sorted(expect.acr_values),
                actual=claims["acr"],
            )
        _check_hash(claims, "at_hash", expect.access_token, expect.require_at_hash, alg, key)
        _check_hash(claims, "c_hash", expect.code, expect.require_c_hash, alg, key)
        return Claims(jws.header, claims)

    async def access_token(self, token: str, expect: AccessTokenExpectations) -> Claims:
        """Validate a JWT access token (RFC 9068 section 4) and return its claims.

        Scopes are not judged here (that is the bearer pillar's job); ``cnf`` (sender-constrained
        tokens, RFC 9449 / RFC 8705) is returned for the caller to enforce.

        Example::

            claims = await validator.access_token(
                token, AccessTokenExpectations(audience="https://api.example.com")
            )
        """
        jws, _alg, _key = await self._signed(token, expect.algorithms)
        claims = self._common(
            jws, _AT_TYP_UNTYPED if expect.allow_untyped else _AT_TYP, expect.required_claims
        )
        # Normalized in __post_init__; None only with allow_missing_audience.
        audience = cast("frozenset[str] | None", expect.audience)
        if "aud" in claims:
            aud = _audiences(claims)
            if audience is None or audience.isdisjoint(aud):
                raise TokenError(
                    "token is not meant for this API",
                    code="invalid_audience",
                    claim="aud",
                    expected=sorted(audience) if audience is not None else None,
                    actual=list(aud),
                )
        # else: allow_missing_audience (aud is otherwise required by _common): the caller
        # binds the token to the API by client_id.
        _check_times(claims, self.now(), self.leeway, max_age=expect.max_token_age)
        if expect.max_token_age is not None and "iat" not in claims:
            raise TokenError("required claim is missing", code="missing_claim", claim="iat")
        if expect.allow_untyped:
            for marker in _ID_TOKEN_MARKERS:
                if marker in claims:
                    # RFC 8725 3.12: without explicit typing, the kinds must be told apart by
                    # mutually exclusive claims; an ID token is not an access token.
                    raise TokenError(
                        "an ID token is not an access token",
                        code="token_kind_mismatch",
                        claim=marker,
                        expected="no ID token claims",
                        actual="present",
                    )
        return Claims(jws.header, claims)

    async def logout_token(self, token: str, expect: LogoutTokenExpectations) -> Claims:
        """Validate a back-channel logout token (Back-Channel Logout 1.0 section 2.6).

        The caller must still reject a replayed ``jti`` and act on ``sub`` / ``sid``.

        Example::

            claims = await validator.logout_token(token, LogoutTokenExpectations(client_id="app"))
        """
        jws, _alg, _key = await self._signed(token, expect.algorithms)
        required = ["iss", "aud", "iat", "jti", "events"]
        if not expect.allow_missing_exp:
            required.append("exp")
        claims = self._common(jws, _LOGOUT_TYP, required)
        _check_client_audience(claims, expect.client_id, frozenset(expect.trusted_audiences))
        _check_times(claims, self.now(), self.leeway)
        events = claims["events"]
        if not isinstance(events, dict) or not isinstance(
            events.get(BACKCHANNEL_LOGOUT_EVENT), dict
        ):
            raise TokenError(
                "events must hold the back-channel logout event as a JSON object",
                code="invalid_events",
                claim="events",
                expected={BACKCHANNEL_LOGOUT_EVENT: {}},
                actual=sorted(events) if isinstance(events, dict) else type(events).__name__,
            )
        if "nonce" in claims:
            # Section 2.4: a nonce is prohibited, so an ID token can never pass as logout token.
            raise TokenError(
                "a logout token must not contain a nonce", code="nonce_not_allowed", claim="nonce"
            )
        if "sub" not in claims and "sid" not in claims:
            raise TokenError(
                "a logout token needs sub or sid", code="missing_sub_and_sid", claim="sub"
            )
        return Claims(jws.header, claims)
