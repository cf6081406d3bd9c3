"""DPoP at the resource server (RFC 9449): proof checks, replay store, server nonces.

A DPoP-bound access token (``cnf.jkt``, section 6.1) comes with the ``DPoP`` scheme and a
``DPoP`` header holding a proof JWT signed by the client's key. ``DPoPVerifier.verify`` runs
every check of sections 4.3 and 7.1, in this order, each failure a ``TokenError`` with code
``invalid_dpop_proof`` (``claim`` names the check) unless noted:

1. exactly one ``DPoP`` header (two are ``multiple_dpop_proofs``, a 400) holding one
   well-formed JWT within the size cap;
2. header ``typ`` is ``dpop+jwt``; ``alg`` is an allow-listed asymmetric algorithm (never
   ``none`` or MAC); ``jwk`` is a public key (no private members) fitting ``alg``; no ``crit``;
3. the signature verifies with that ``jwk``;
4. claims ``jti``, ``htm``, ``htu``, ``iat`` and ``ath`` are present and strings / numbers;
5. ``htm`` equals the request method; ``htu`` equals the request URI without query and
   fragment, both normalised per RFC 3986 sections 6.2.2 and 6.2.3; scheme and host come from
   ``public_origin`` when set (the trusted way behind a proxy), else from the ASGI scope;
6. with ``use_nonce``, ``nonce`` is one this server issued recently (else ``use_dpop_nonce``
   with a fresh ``DPoP-Nonce``, section 9);
7. ``iat`` lies within the acceptance window (section 11.1);
8. ``ath`` is the SHA-256 of the access token and ``cnf.jkt`` the RFC 7638 thumbprint of the
   proof key (both compared in constant time);
9. ``jti`` was not seen before for this key within the window (the replay store, 11.1); it is
   recorded only here, after every other check passed. A replay store that cannot answer (Redis
   down, or the memory store full of live entries) raises ``ProviderUnavailable`` (503): it
   never forgets a live ``jti``.
"""

from __future__ import annotations

import base64
import hashlib
import heapq
import hmac
import json
import logging
import math
import os
import re
import struct
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlsplit

from oidc_asgi._jose import parse_compact, verify_signature
from oidc_asgi._jwks import ALGORITHM_KEYS, parse_jwks
from oidc_asgi.bearer._principal import Principal
from oidc_asgi.errors import ConfigurationError, ProviderUnavailable, TokenError

__all__ = [
    "DPoPSettings",
    "DPoPVerifier",
    "MemoryReplayStore",
    "ReplayStore",
    "jwk_thumbprint",
    "normalize_htu",
]

_PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})
_THUMBPRINT_MEMBERS = {
    "RSA": ("e", "kty", "n"),
    "EC": ("crv", "kty", "x", "y"),
    "OKP": ("crv", "kty", "x"),
}
_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
_PCT = re.compile(r"%([0-9A-Fa-f]{2})")
_DEFAULT_PORTS = {"http": 80, "https": 443}
_MAX_JTI = 256

log = logging.getLogger("oidc_asgi.bearer")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def jwk_thumbprint(jwk: Mapping[str, Any]) -> str:
    """The RFC 7638 SHA-256 thumbprint of a public JWK (the value of ``cnf.jkt``).

    Example::

        assert jwk_thumbprint(proof_header["jwk"]) == claims["cnf"]["jkt"]
    """
    members = _THUMBPRINT_MEMBERS.get(str(jwk.get("kty")))
    if members is None or any(not isinstance(jwk.get(m), str) for m in members):
        raise ValueError("not a public JWK with the required members")
    canonical = json.dumps({m: jwk[m] for m in members}, separators=(",", ":"), sort_keys=True)
    return _b64(hashlib.sha256(canonical.encode("utf-8")).digest())


def _normalize_path(path: str) -> str:
    # RFC 3986 6.2.2.2: percent-encodings in upper case, unreserved characters decoded.
    def fix(match: re.Match[str]) -> str:
        char = chr(int(match.group(1), 16))
        return char if char in _UNRESERVED else "%" + match.group(1).upper()

    path = _PCT.sub(fix, path)
    # RFC 3986 6.2.2.3 / 5.2.4: remove dot segments.
    output: list[str] = []
    for segment in path.split("/"):
        if segment == "..":
            if len(output) > 1:
                output.pop()
        elif segment != ".":
            output.append(segment)
    if path.endswith(("/.", "/..")):
        output.append("")
    result = "/".join(output)
    return result if result.startswith("/") else "/" + result


def normalize_htu(url: str) -> str | None:
    """An ``htu`` (or request URI) in comparable form, or ``None`` when it is not a valid
    http(s) URI: query and fragment dropped, scheme and host lower-cased, default port removed,
    percent-encoding and dot segments normalised, empty path as ``/`` (RFC 9449 4.3 step 9,
    RFC 3986 6.2.2-6.2.3).

    Example::

        assert normalize_htu("HTTPS://API.example.com:443/a/./b?x=1") == "https://api.example.com/a/b"
    """
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    host = parts.hostname
    if scheme not in _DEFAULT_PORTS or not host or "@" in parts.netloc:
        return None
    if ":" in host:
        host = f"[{host}]"
    netloc = host if port is None or port == _DEFAULT_PORTS[scheme] else f"{host}:{port}"
    return f"{scheme}://{netloc}{_normalize_path(parts.path)}"


class ReplayStore(Protocol):
    """Where proof identifiers are remembered (RFC 9449 section 11.1); share one across
    replicas (e.g. in Redis) so a proof replayed to another instance is caught too.

    Example::

        class RedisReplayStore:
            async def seen(self, key: str, expires_at: float) -> bool:
                ttl = max(1, int(expires_at - time.time()))
                return not await redis.set(f"dpop:{key}", 1, nx=True, ex=ttl)
    """

    async def seen(self, key: str, expires_at: float) -> bool:
        """Record ``key`` until ``expires_at``; return ``True`` when it was already recorded."""
        ...


class MemoryReplayStore:
    """An in-process replay store, bounded, that never forgets a live proof (RFC 9449 11.1).

    Entries are kept until their own expiry (a heap orders them by it: expiry follows each
    client's ``iat``, so insertion order is not expiry order). When ``max_entries`` is reached,
    expired entries are dropped first; if every entry is still live, :meth:`seen` fails closed
    with ``ProviderUnavailable`` (code ``replay_store_full``, answered 503 with ``Retry-After``
    until the oldest entry expires), exactly as the Redis store does on an outage: evicting a
    live ``jti`` would let that proof be replayed. Only proofs that passed every other check
    (token, signature, ``ath``, ``cnf``) are recorded, so filling the store takes valid tokens.

    Example::

        verifier = DPoPVerifier(DPoPSettings(), replay_store=MemoryReplayStore(max_entries=10_000))
    """

    def __init__(self, *, max_entries: int = 100_000, now: Callable[[], float] = time.time) -> None:
        if isinstance(max_entries, bool) or not isinstance(max_entries, int) or max_entries < 1:
            raise ConfigurationError("max_entries must be an int >= 1", code="invalid_setting")
        self.max_entries = max_entries
        self._now = now
        self._entries: dict[str, float] = {}
        # (expires_at, key), earliest first; an item whose key was re-recorded since is stale
        # and skipped when popped (its expiry no longer matches the dict).
        self._expiries: list[tuple[float, str]] = []

    def __len__(self) -> int:
        return len(self._entries)

    def _purge(self, now: float) -> None:
        entries, expiries = self._entries, self._expiries
        while expiries and expiries[0][0] <= now:
            expiry, key = heapq.heappop(expiries)
            if entries.get(key) == expiry:
                del entries[key]

    async def seen(self, key: str, expires_at: float) -> bool:
        """Record ``key`` until ``expires_at``; ``True`` when it is already recorded.

        Raises ``ProviderUnavailable`` (``replay_store_full``) when the store is full of live
        entries.
        """
        now = self._now()
        entries = self._entries
        expiry = entries.get(key)
        if expiry is not None and expiry > now:
            return True
        self._purge(now)
        if expires_at <= now:
            return False  # nothing to remember: the proof is outside the window already
        if len(entries) >= self.max_entries:
            wait = self._expiries[0][0] - now
            log.warning("bearer: DPoP replay store full (%d live entries)", len(entries))
            raise ProviderUnavailable(
                "the DPoP replay store is full",
                code="replay_store_full",
                retry_after=max(1, math.ceil(wait)),
            )
        entries[key] = expires_at
        heapq.heappush(self._expiries, (expires_at, key))
        return False


@dataclass(frozen=True, kw_only=True)
class DPoPSettings:
    """How this API accepts DPoP-bound tokens (RFC 9449).

    ``required``: only DPoP-bound tokens are accepted (the ``Bearer`` scheme is refused and
    only the ``DPoP`` challenge is sent); otherwise both schemes work. ``algorithms``: proof
    algorithms accepted, advertised in ``algs``. ``iat_window``: how old a proof may be;
    ``leeway``: clock skew for proofs from the future. ``use_nonce``: demand server nonces
    (section 9) valid for ``nonce_lifetime`` seconds, derived statelessly with ``nonce_secret``
    (random per process when not given: give one shared secret to every replica).
    ``public_origin``: the scheme and host clients use (``https://api.example.com``), needed
    behind a proxy; without it they come from the ASGI scope and the ``Host`` header.

    Example::

        BearerConfig(issuer=ISSUER, audience=API, dpop=DPoPSettings(required=True))
    """

    required: bool = False
    algorithms: Collection[str] = ("ES256", "EdDSA", "PS256", "RS256")
    iat_window: float = 300.0
    leeway: float = 5.0
    use_nonce: bool = False
    nonce_lifetime: float = 300.0
    nonce_secret: bytes | None = None
    public_origin: str | None = None
    max_proof_bytes: int = 4096

    def __post_init__(self) -> None:
        algs = tuple(self.algorithms) if not isinstance(self.algorithms, str) else ()
        if not algs or any(a not in ALGORITHM_KEYS for a in algs):
            raise ConfigurationError(
                "DPoP algorithms must be asymmetric signature algorithms (RFC 9449 4.3)",
                code="invalid_setting",
            )
        object.__setattr__(self, "algorithms", frozenset(algs))
        for name in ("iat_window", "leeway", "nonce_lifetime"):
            value = getattr(self, name)
            if (
                isinstance(value, bool)
                or not isinstance(value, (int, float))
                or not (math.isfinite(value) and value >= 0)
            ):
                raise ConfigurationError(f"{name} must be >= 0", code="invalid_setting")
        if self.nonce_secret is not None and len(self.nonce_secret) < 32:
            raise ConfigurationError("nonce_secret needs at least 32 bytes", code="weak_secret")
        if self.public_origin is not None:
            parts = urlsplit(self.public_origin)
            origin = normalize_htu(self.public_origin)
            if origin is None or parts.path not in ("", "/") or parts.query or parts.fragment:
                raise ConfigurationError(
                    "public_origin must be scheme://host[:port] without a path",
                    code="invalid_setting",
                )
            object.__setattr__(self, "public_origin", origin.rstrip("/"))
        if self.max_proof_bytes < 256:
            raise ConfigurationError("max_proof_bytes must be >= 256", code="invalid_setting")


def _fail(claim: str, message: str, *, expected: Any = None, actual: Any = None) -> TokenError:
    return TokenError(
        message, code="invalid_dpop_proof", claim=claim, expected=expected, actual=actual
    )


def _request_uri(scope: Mapping[str, Any], public_origin: str | None) -> str | None:
    raw = scope.get("raw_path")
    path = (
        raw.decode("latin-1")
        if isinstance(raw, bytes)
        else str(scope.get("root_path", "")) + str(scope.get("path", "/"))
    )
    path = path.split("?", 1)[0]
    if public_origin is not None:
        return normalize_htu(public_origin + path)
    scheme = {"ws": "http", "wss": "https"}.get(
        scope.get("scheme", "http"), scope.get("scheme", "http")
    )
    host = None
    for name, value in scope.get("headers", ()):
        if name == b"host":
            host = value.decode("latin-1")
            break
    if host is None:
        server = scope.get("server")
        if not server:
            return None
        host = f"{server[0]}:{server[1]}" if server[1] is not None else str(server[0])
    return normalize_htu(f"{scheme}://{host}{path}")


class DPoPVerifier:
    """Checks the DPoP proof of a request against its bound access token (RFC 9449 4.3, 7.1).

    Built by ``BearerValidator`` from ``BearerConfig.dpop``; build one yourself to share a
    ``replay_store`` across replicas. ``now`` is the clock.

    Example::

        verifier = DPoPVerifier(DPoPSettings(use_nonce=True), replay_store=MemoryReplayStore())
        validator = BearerValidator(config, dpop_verifier=verifier)
    """

    def __init__(
        self,
        settings: DPoPSettings,
        *,
        replay_store: ReplayStore | None = None,
        now: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.now = now
        self.replay_store: ReplayStore = (
            replay_store if replay_store is not None else MemoryReplayStore(now=now)
        )
        self._nonce_key = settings.nonce_secret or os.urandom(32)

    # -- nonces (section 9) ------------------------------------------------------------------

    def new_nonce(self) -> str:
        """A fresh server nonce: the issue time and an HMAC over it (stateless, section 9).

        Example::

            response.headers["DPoP-Nonce"] = verifier.new_nonce()
        """
        stamp = struct.pack(">Q", int(self.now()))
        mac = hmac.new(self._nonce_key, stamp, hashlib.sha256).digest()[:16]
        return _b64(stamp + mac)

    def _nonce_ok(self, nonce: object) -> bool:
        if not isinstance(nonce, str) or len(nonce) != 32:
            return False
        try:
            raw = base64.urlsafe_b64decode(nonce + "==")
        except ValueError:
            return False
        if len(raw) != 24:
            return False
        stamp, mac = raw[:8], raw[8:]
        expected = hmac.new(self._nonce_key, stamp, hashlib.sha256).digest()[:16]
        if not hmac.compare_digest(mac, expected):
            return False
        issued: int = struct.unpack(">Q", stamp)[0]
        now = self.now()
        return issued <= now + self.settings.leeway and now - issued <= self.settings.nonce_lifetime

    # -- the checks ----------------------------------------------------------------------------

    async def verify(self, scope: Mapping[str, Any], token: str, principal: Principal) -> None:
        """Check the request's DPoP proof for ``token`` (bound to ``principal.jkt``).

        Raises ``TokenError`` (``invalid_dpop_proof``, ``multiple_dpop_proofs``,
        ``use_dpop_nonce``), or ``ProviderUnavailable`` from the replay store (e.g.
        ``replay_store_full``).

        Example::

            await verifier.verify(request.scope, token, principal)
        """
        settings = self.settings
        proofs = [v for n, v in scope.get("headers", ()) if n == b"dpop"]
        if len(proofs) > 1:
            raise TokenError("more than one DPoP header", code="multiple_dpop_proofs")
        if not proofs:
            raise _fail("DPoP", "the request has no DPoP proof")
        raw_proof = proofs[0]
        if len(raw_proof) > settings.max_proof_bytes:
            raise _fail("DPoP", "the DPoP proof is too large")
        try:
            jws = parse_compact(raw_proof.decode("ascii"), settings.max_proof_bytes)
        except (TokenError, UnicodeDecodeError):
            raise _fail("DPoP", "the DPoP proof is not a well-formed JWT") from None
        header, claims = jws.header, jws.payload

        typ = header.get("typ")
        if not isinstance(typ, str) or typ.lower() not in ("dpop+jwt", "application/dpop+jwt"):
            raise _fail("typ", "proof typ is not dpop+jwt", expected="dpop+jwt", actual=typ)
        alg = header.get("alg")
        if not isinstance(alg, str) or alg not in settings.algorithms:
            raise _fail(
                "alg",
                "proof algorithm not allowed",
                expected=sorted(settings.algorithms),
                actual=alg,
            )
        if "crit" in header:
            raise _fail("crit", "critical header extensions are not understood")
        jwk = header.get("jwk")
        if not isinstance(jwk, dict):
            raise _fail("jwk", "the proof header has no jwk")
        if _PRIVATE_MEMBERS & jwk.keys():
            raise _fail("jwk", "the proof jwk holds private key material")
        if not isinstance(jwk.get("alg", alg), str):
            # parse_jwks looks a jwk's alg up in a dict: a list or object there is no key.
            raise _fail("jwk", "the proof jwk alg is not a string")
        keys = parse_jwks({"keys": [jwk]})
        if not keys or not keys[0].can_verify(alg):
            raise _fail("jwk", "the proof jwk is not a usable public key for alg", actual=alg)
        if not verify_signature(alg, keys[0], jws.signing_input, jws.signature):
            raise _fail("signature", "the proof signature does not verify")

        jti, htm, htu, iat = (
            claims.get("jti"),
            claims.get("htm"),
            claims.get("htu"),
            claims.get("iat"),
        )
        if not isinstance(jti, str) or not jti or len(jti) > _MAX_JTI:
            raise _fail("jti", "the proof has no valid jti")
        if htm != scope.get("method", "GET"):
            raise _fail(
                "htm",
                "proof htm is not the request method",
                expected=scope.get("method"),
                actual=htm,
            )
        request_uri = _request_uri(scope, settings.public_origin)
        if not isinstance(htu, str) or request_uri is None or normalize_htu(htu) != request_uri:
            raise _fail(
                "htu",
                "proof htu is not the request URI",
                expected=request_uri,
                actual=htu if isinstance(htu, str) else None,
            )
        if settings.use_nonce and not self._nonce_ok(claims.get("nonce")):
            raise TokenError("a fresh DPoP nonce is required", code="use_dpop_nonce", claim="nonce")
        now = self.now()
        if isinstance(iat, bool) or not isinstance(iat, (int, float)):
            raise _fail("iat", "the proof has no numeric iat")
        # Compared, never subtracted: an int iat beyond float range cannot meet a float clock
        # in arithmetic (OverflowError), while int/float comparisons are exact.
        if iat > now + settings.leeway or iat < now - settings.iat_window - settings.leeway:
            raise _fail("iat", "the proof is too old or from the future", expected=now, actual=iat)
        ath = claims.get("ath")
        expected_ath = _b64(hashlib.sha256(token.encode("ascii")).digest())
        if not isinstance(ath, str) or not hmac.compare_digest(
            ath.encode("utf-8", "surrogatepass"), expected_ath.encode()
        ):
            raise _fail("ath", "proof ath is not the hash of this access token")
        thumbprint = jwk_thumbprint(jwk)
        jkt = principal.jkt or ""
        if not hmac.compare_digest(thumbprint.encode(), jkt.encode("utf-8", "surrogatepass")):
            raise _fail("cnf", "the proof key is not the key the token is bound to")
        if await self.replay_store.seen(
            f"{thumbprint}:{jti}", iat + settings.iat_window + settings.leeway
        ):
            raise _fail("jti", "the proof was used before")
