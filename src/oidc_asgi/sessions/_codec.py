"""Session codec: authenticated encryption of a JSON payload into a cookie-safe string.

Envelope (version 2, written)::

    v2.<kid>.<seed || ciphertext || tag>

* ``kid``: 8 base64url characters naming the key (a hash of the *derived* key, never of the
  secret), so decryption opens the one matching key instead of trying every secret in the list.
* the body in standard, padded base64 (RFC 4648 section 4): ``+``, ``/`` and ``=`` are
  cookie-octets (RFC 6265 section 4.1.1), and skipping the base64url translation of ~4 KB is
  most of the encoding cost. Decoding is strict: the text must be the canonical encoding of
  the bytes it decodes to.
* ``seed``: 24 bytes. The first 12 (random) derive a subkey from the purpose key, the last 12
  are a random AES-256-GCM nonce (the XAES-256-GCM idea, with HMAC-SHA256 as the derivation):
  a plain random 96-bit nonce under one key would be safe only for about 2**32 messages, and an
  attacker can make a server mint cookies as fast as it answers requests. The encoder keeps a
  subkey for a bounded number of messages (see ``_SUBKEY_USES``); the decoder derives it from
  the seed of each value.
* associated data: the envelope header (``v2.<kid>``) and the cookie name, so a value cannot be
  replayed under another cookie name, with a swapped key id or under another version.

Version 1 (``v1.<kid>.<body>``, the body base64url without padding, otherwise the same) is
still decoded, so cookies issued before the upgrade stay valid until they are re-issued.

Keys come from a list of secrets by HKDF-SHA256 (RFC 5869) with the purpose in ``info``; the
first secret encrypts, every secret decrypts (pallets/itsdangerous style rotation).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import math
import os
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from itsdangerous import BadSignature, Signer

from oidc_asgi.errors import ConfigurationError, OIDCError

__all__ = ["DecodedSession", "SessionCodec", "ValueSigner", "derive_keys"]

MIN_SECRET_BYTES = 32
_VERSION = "v2"
_V1 = "v1"
_SEED_BYTES = 24
_TAG_BYTES = 16
_KID_CHARS = 8
_HKDF_SALT = b"oidc-asgi"
_SUBKEY_LABEL = b"oidc-asgi/subkey\x00"
_KID_LABEL = b"oidc-asgi/kid\x00"
_DEFAULT_MAX_BYTES = 16 * 1024
# Cache key length: "vN.<kid>." (12) and 48 body characters (36 bytes: the subkey seed, the
# random nonce and the start of the ciphertext), so two sealed values never share one.
_CACHE_KEY_CHARS = 60
_B64URL_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


_TO_URLSAFE = bytes.maketrans(b"+/", b"-_")
# Subkey reuse bound for encryption. Each message under a subkey gets a fresh random 96-bit
# nonce, so the only way to repeat a nonce under one key is a random collision: at most
# q**2 / 2**97 for q messages, 2**-65 for q = 2**16 (NIST SP 800-38D section 8.3 allows 2**32
# random nonces per key). Subkeys come from fresh random 96-bit seeds through HMAC, so they are
# independent keys; even 2**32 of them (2**48 cookies) keep the total under 2**-33. Nonces are
# never counted or derived from state, so a race between threads or a forked worker that
# inherits the subkey can only spend a few more random nonces under it, never repeat one
# (a new process still re-keys on its first encode, see ``_Sealer``).
_SUBKEY_USES = 1 << 16


def _b64e(data: bytes) -> str:
    # base64url without padding: key ids and version 1 bodies.
    return binascii.b2a_base64(data, newline=False).translate(_TO_URLSAFE).rstrip(b"=").decode()


def _b64d_std(text: str) -> bytes:
    # Strict and canonical standard base64 (version 2 bodies): padded, and re-encoding the
    # bytes must give the text back, so one byte string has exactly one text form (a2b_base64
    # alone would skip foreign characters and accept non-zero spare bits).
    if not text.isascii() or len(text) % 4:
        raise ValueError("not base64")
    raw = text.encode("ascii")
    try:
        blob = binascii.a2b_base64(raw)
    except binascii.Error:
        raise ValueError("not base64") from None
    if binascii.b2a_base64(blob, newline=False) != raw:
        raise ValueError("not canonical base64")
    return blob


def _b64d(text: str) -> bytes:
    # Strict and canonical: only the base64url alphabet, no padding, and the unused low bits of
    # the last character must be zero, so one byte string has exactly one text form (otherwise
    # a changed character could still open). bytes.translate keeps this cheap on 4 KB values.
    if not text.isascii() or len(text) % 4 == 1:
        raise ValueError("not base64url")
    raw = text.encode("ascii")
    if raw.translate(None, _B64URL_ALPHABET):
        raise ValueError("not base64url")
    spare_bits = {0: 0, 2: 4, 3: 2}[len(raw) % 4]
    if spare_bits and _B64URL_ALPHABET.index(raw[-1]) & ((1 << spare_bits) - 1):
        raise ValueError("not canonical base64url")
    try:
        return base64.urlsafe_b64decode(raw + b"=" * (-len(raw) % 4))
    except (binascii.Error, ValueError) as exc:  # pragma: no cover - checked above
        raise ValueError("not base64url") from exc


def _secret_bytes(secret: object, index: int) -> bytes:
    if isinstance(secret, str):
        raw = secret.encode("utf-8")
    elif isinstance(secret, bytes):
        raw = secret
    else:
        raise ConfigurationError(
            f"secrets[{index}] must be str or bytes, not {type(secret).__name__}",
            code="invalid_secret",
        )
    if len(raw) < MIN_SECRET_BYTES:
        # Only the position and length are reported, never the secret.
        raise ConfigurationError(
            f"secrets[{index}] is {len(raw)} bytes; at least {MIN_SECRET_BYTES} are required "
            '(generate one with: python -c "import secrets; print(secrets.token_urlsafe(48))")',
            code="weak_secret",
        )
    return raw


def derive_keys(secrets: Sequence[str | bytes], *, purpose: str) -> tuple[bytes, ...]:
    """Derive one 32-byte key per secret for ``purpose`` with HKDF-SHA256 (RFC 5869).

    Different purposes (``"session"``, ``"transaction"``, ``"store"``) give unrelated keys from
    the same secrets, so a value made for one use never opens under another. The order of the
    secrets is kept: the first key is the one to encrypt or sign with.

    Raises ``ConfigurationError`` (``no_secrets``, ``weak_secret``, ``invalid_secret``,
    ``invalid_purpose``) for an empty list, a secret under 32 bytes, or a bare string.

    Example::

        keys = derive_keys(["a-long-random-secret-of-at-least-32-bytes"], purpose="session")
        assert len(keys[0]) == 32
    """
    if isinstance(secrets, (str, bytes)):
        raise ConfigurationError(
            "secrets must be a list of secrets (newest first), not a single string",
            code="invalid_secret",
        )
    if not isinstance(purpose, str) or not purpose:
        raise ConfigurationError("purpose must be a non-empty string", code="invalid_purpose")
    raw = [_secret_bytes(secret, i) for i, secret in enumerate(secrets)]
    if not raw:
        raise ConfigurationError("at least one secret is required", code="no_secrets")
    info = b"oidc-asgi/v1/" + purpose.encode("utf-8")
    return tuple(
        HKDF(algorithm=hashes.SHA256(), length=32, salt=_HKDF_SALT, info=info).derive(secret)
        for secret in raw
    )


def _kid(key: bytes) -> str:
    return _b64e(hashlib.sha256(_KID_LABEL + key).digest()[:6])


@dataclass(frozen=True)
class _Key:
    kid: str
    key: bytes
    index: int


@dataclass(frozen=True, kw_only=True)
class DecodedSession:
    """A session payload opened by ``SessionCodec.load``/``decode``, with its timestamps.

    ``data`` is the application's JSON object. ``created_at`` is when the session began (kept
    across re-issues, it drives the absolute lifetime); ``touched_at`` is when the cookie was last
    issued (it drives the rolling lifetime); ``ceiling`` is an extra hard end such as the
    provider's ``session_expiry`` claim; ``expires_at`` is the earliest of all of them.
    ``key_index`` is the position of the secret that opened it: anything but 0 means the cookie
    was made with an older secret and should be re-issued.

    Example::

        session = codec.decode(cookie, cookie_name="oidc_session")
        if session is not None:
            user = session.data["sub"]
    """

    # Not in repr: it holds tokens, and error trackers record frame locals by repr.
    data: dict[str, Any] = field(repr=False)
    created_at: float
    touched_at: float
    expires_at: float
    ceiling: float | None = None
    key_index: int = 0
    size: int = field(default=0, compare=False)


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _reject_constant(name: str) -> Any:
    raise ValueError(f"non-finite number {name}")


# One encoder and one decoder for every call: json.dumps/loads with keyword arguments build
# a new one per call.
_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False)
_DECODER = json.JSONDecoder(parse_constant=_reject_constant)


_encode_key = json.encoder.encode_basestring  # what the encoder above does to a str key


def _make_dumps() -> Callable[[Any], str]:
    # The C encoder that JSONEncoder.encode builds on every call, built once. Without a
    # circular-reference table (it must be fresh per call): a cycle ends in RecursionError,
    # which callers treat like any other unserialisable value.
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:  # pragma: no cover - CPython always has the C accelerator
        return _ENCODER.encode
    try:
        encoder = make(None, _ENCODER.default, _encode_key, None, ":", ",", False, False, False)
    except TypeError:  # pragma: no cover - a future signature: fall back
        return _ENCODER.encode

    def dumps(value: Any) -> str:
        return "".join(encoder(value, 0))

    return dumps


_dumps = _make_dumps()


def _float_json(value: float) -> str:
    if not math.isfinite(value):
        raise ValueError("non-finite number")
    return repr(value)


def _copy_json(value: Any) -> Any:
    # A deep copy of parsed JSON (dicts, lists, immutable scalars), far cheaper than
    # copy.deepcopy: every caller gets objects it may change without touching the cache.
    # Containers are copied flat and only nested containers recursed into (most values are
    # strings and numbers, which are immutable).
    kind = type(value)
    if kind is dict:
        out = value.copy()
        for k, v in out.items():
            if type(v) is dict or type(v) is list:
                out[k] = _copy_json(v)
        return out
    if kind is list:
        return [_copy_json(v) if type(v) is dict or type(v) is list else v for v in value]
    return value


_READ_ONLY = "sign-in session data is read-only; build a new dict to change it"


class _FrozenDict(dict[str, Any]):
    # A dict the codec hands out shared across requests (see ``frozen_keys``): still a dict
    # for isinstance checks, JSON encoding and ``{**d}``/``dict(d)`` copies, but every
    # mutator raises, so no request can change what the next request with the same cookie
    # sees. ``_json`` keeps its JSON text (UTF-8) once encoded, so a re-issue splices it
    # instead of encoding it again.
    __slots__ = ("_json",)

    def _utf8(self) -> bytes:
        try:
            return self._json
        except AttributeError:
            self._json: bytes = _dumps(self).encode("utf-8")
            return self._json

    def _refuse(self, *args: object, **kwargs: object) -> Any:
        raise TypeError(_READ_ONLY)

    __setitem__ = __delitem__ = __ior__ = _refuse
    clear = pop = popitem = setdefault = update = _refuse

    def __copy__(self) -> dict[str, Any]:
        return dict(self)

    def __deepcopy__(self, memo: object) -> dict[str, Any]:
        thawed: dict[str, Any] = _thaw(self)
        return thawed

    def __reduce__(self) -> tuple[Any, ...]:
        return (dict, (_thaw(self),))


class _FrozenList(list[Any]):
    __slots__ = ()

    def _refuse(self, *args: object, **kwargs: object) -> Any:
        raise TypeError(_READ_ONLY)

    __setitem__ = __delitem__ = __iadd__ = __imul__ = _refuse
    append = extend = insert = pop = remove = clear = sort = reverse = _refuse

    def __copy__(self) -> list[Any]:
        return list(self)

    def __deepcopy__(self, memo: object) -> list[Any]:
        thawed: list[Any] = _thaw(self)
        return thawed

    def __reduce__(self) -> tuple[Any, ...]:
        return (list, (_thaw(self),))


def _freeze(value: Any) -> Any:
    # Parsed JSON -> read-only containers (strings and numbers are immutable already).
    kind = type(value)
    if kind is dict or kind is _FrozenDict:
        return _FrozenDict({k: _freeze(v) for k, v in value.items()})
    if kind is list or kind is _FrozenList:
        return _FrozenList([_freeze(v) for v in value])
    return value


def _thaw(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _thaw(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_thaw(v) for v in value]
    return value


class _Sealer:
    """The encrypting side's current subkey: its seed, its AEAD, how many uses are left."""

    __slots__ = ("aead", "left", "pid", "seed")

    def __init__(self, key: bytes) -> None:
        self.seed = os.urandom(12)
        self.aead = _aead(key, self.seed)
        self.left = _SUBKEY_USES
        # A forked worker re-keys on its first encode instead of sharing the parent's subkey.
        self.pid = os.getpid()


@dataclass(slots=True)
class _Opened:
    """An authenticated payload before the clock is consulted (what the cache keeps)."""

    data: dict[str, Any]
    created: float
    touched: float
    cap: float | None
    key_index: int
    size: int


class SessionCodec:
    """Encrypt and decrypt session payloads for cookies (AES-256-GCM, HKDF-derived keys).

    ``secrets`` is a list, newest first: the first secret encrypts, all of them decrypt, so a
    secret is rotated by putting a new one in front and dropping the old one after the longest
    session lifetime. Each secret must be at least 32 bytes.

    ``purpose`` separates keys: session cookies and per-login transaction cookies use different
    purposes, so one can never be read as the other. Every value is also bound to the cookie name
    it is written under.

    Lifetimes (seconds): ``absolute_ttl`` from sign-in, ``rolling_ttl`` since the cookie was last
    issued (``None`` disables idle expiry), and an optional per-session ``ceiling`` given to
    ``encode``. ``touch_after`` is how old an issue may get before ``needs_reissue`` says the
    rolling window should be renewed, so an unchanged session is not re-sent on every response.
    ``max_bytes`` bounds the JSON payload (encode raises, decode rejects). ``cache_size``
    keeps that many opened values in memory (0, the default, keeps none): a browser sends the
    same cookie on every request until it changes, so a hit skips base64, the key derivation,
    the decryption and the JSON parse. Only values that authenticated (or that this codec
    sealed) are kept, keyed by cookie name and exact value; expiry is still checked on every
    hit and callers get a fresh copy of the data.

    ``frozen_keys`` names top-level keys whose object values are handed out read-only and
    shared instead of copied: a dict whose mutators raise ``TypeError`` (nested lists and
    dicts too), so the cached value can never be changed by a request. ``encode`` splices
    such a value's JSON text, kept from its first encoding, instead of encoding it again:
    for a session whose bulk never changes (the sign-in tokens), a re-issue only encodes the
    small part that did. To change a frozen value, store a new dict (``{**old, "k": v}``).

    Decoding never raises for bad input: ``decode`` returns ``None`` for anything tampered,
    truncated, foreign, expired or oversized; ``load`` raises ``OIDCError`` with a stable
    ``code`` saying which, for logs and metrics. Neither message contains the cookie value.

    Example::

        codec = SessionCodec(secrets=[os.environ["OIDC_SECRET"]])
        cookie = codec.encode({"sub": "248289761001"}, cookie_name="oidc_session")
        session = codec.decode(cookie, cookie_name="oidc_session")
        assert session is not None and session.data == {"sub": "248289761001"}
    """

    __slots__ = (
        "_by_kid",
        "_cache",
        "_cache_size",
        "_frozen",
        "_keys",
        "_max_bytes",
        "_max_envelope",
        "_now",
        "_sealer",
        "absolute_ttl",
        "purpose",
        "rolling_ttl",
        "touch_after",
    )

    def __init__(
        self,
        *,
        secrets: Sequence[str | bytes],
        purpose: str = "session",
        absolute_ttl: float = 7 * 24 * 3600,
        rolling_ttl: float | None = 24 * 3600,
        touch_after: float = 60,
        max_bytes: int = _DEFAULT_MAX_BYTES,
        cache_size: int = 0,
        frozen_keys: Collection[str] = (),
        now: Callable[[], float] = time.time,
    ) -> None:
        keys = derive_keys(secrets, purpose=purpose)
        if isinstance(frozen_keys, str) or not all(isinstance(k, str) for k in frozen_keys):
            raise ConfigurationError(
                "frozen_keys must be a collection of key names", code="invalid_setting"
            )
        self._frozen = frozenset(frozen_keys)
        if _number(absolute_ttl) is None or absolute_ttl <= 0:
            raise ConfigurationError("absolute_ttl must be > 0 seconds", code="invalid_ttl")
        if rolling_ttl is not None and (
            _number(rolling_ttl) is None or not 0 < rolling_ttl <= absolute_ttl
        ):
            raise ConfigurationError(
                "rolling_ttl must be > 0 and at most absolute_ttl (or None)", code="invalid_ttl"
            )
        window = absolute_ttl if rolling_ttl is None else rolling_ttl
        if _number(touch_after) is None or not 0 <= touch_after < window:
            raise ConfigurationError(
                "touch_after must be >= 0 and shorter than the rolling (or absolute) lifetime",
                code="invalid_ttl",
            )
        if isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or max_bytes < 256:
            raise ConfigurationError("max_bytes must be an int >= 256", code="invalid_size")
        if isinstance(cache_size, bool) or not isinstance(cache_size, int) or cache_size < 0:
            raise ConfigurationError("cache_size must be an int >= 0", code="invalid_size")
        self._cache_size = cache_size
        # Keyed by cookie name and the value's first characters (header, seed and nonce: unique
        # per sealed value), holding the whole value, compared on every hit: hashing a 4 KB
        # value on every request costs more than comparing it.
        self._cache: dict[tuple[str, str], tuple[str, bytes | _Opened]] = {}
        self._sealer: _Sealer | None = None
        self.purpose = purpose
        self.absolute_ttl = float(absolute_ttl)
        self.rolling_ttl = None if rolling_ttl is None else float(rolling_ttl)
        self.touch_after = float(touch_after)
        self._max_bytes = max_bytes
        # Envelope length bound checked before any decoding work: header + base64 of
        # seed + payload + tag.
        self._max_envelope = (
            len(_VERSION) + 2 + _KID_CHARS + 4 * (_SEED_BYTES + max_bytes + _TAG_BYTES + 2) // 3
        )
        self._now = now
        self._keys = tuple(_Key(kid=_kid(key), key=key, index=i) for i, key in enumerate(keys))
        by_kid: dict[str, list[_Key]] = {}
        for entry in self._keys:
            by_kid.setdefault(entry.kid, []).append(entry)
        self._by_kid = {kid: tuple(entries) for kid, entries in by_kid.items()}

    def __repr__(self) -> str:
        return (
            f"SessionCodec(purpose={self.purpose!r}, secrets=<{len(self._keys)}>, "
            f"absolute_ttl={self.absolute_ttl}, rolling_ttl={self.rolling_ttl})"
        )

    @property
    def max_bytes(self) -> int:
        """Largest JSON payload, in bytes, that ``encode`` accepts and ``decode`` opens."""
        return self._max_bytes

    def encode(
        self,
        data: Mapping[str, Any],
        *,
        cookie_name: str,
        created_at: float | None = None,
        ceiling: float | None = None,
    ) -> str:
        """Encrypt ``data`` (a JSON object) for the cookie ``cookie_name``.

        Pass the ``created_at`` and ``ceiling`` of the decoded session when re-issuing, so the
        absolute lifetime keeps counting from sign-in; leave them out for a new session.
        Raises ``OIDCError(code="session_too_large")`` over ``max_bytes`` and
        ``OIDCError(code="session_not_serializable")`` for non-JSON data.

        Example::

            cookie = codec.encode(session.data | {"n": 2}, cookie_name="oidc_session",
                                  created_at=session.created_at, ceiling=session.ceiling)
        """
        now = self._now()
        created = now if created_at is None else float(created_at)
        cap = None if ceiling is None else float(ceiling)
        opened: dict[str, Any] | None = None
        try:
            if self._frozen:
                # One encode of what is not frozen; frozen values splice their kept UTF-8
                # text, and the payload is joined once. The numbers are written as the encoder
                # would (float repr, finite only).
                tail = "" if cap is None else f',"cap":{_float_json(cap)}'
                head = f'{{"iat":{_float_json(created)},"uat":{_float_json(float(now))}{tail},"d":'
                pieces, opened = self._encode_spliced(data, head.encode("ascii"))
                plaintext = b"".join(pieces)
            else:
                payload: dict[str, Any] = {"iat": created, "uat": now, "d": data}
                if cap is not None:
                    payload["cap"] = cap
                plaintext = _dumps(payload).encode("utf-8")
        except (TypeError, ValueError, RecursionError) as exc:
            raise OIDCError(
                f"session data is not JSON-serializable ({type(exc).__name__})",
                code="session_not_serializable",
            ) from None
        if len(plaintext) > self._max_bytes:
            raise OIDCError(
                f"session payload is {len(plaintext)} bytes, over the {self._max_bytes}-byte "
                "limit; keep tokens in a server-side store or raise max_bytes",
                code="session_too_large",
            )
        key = self._keys[0]
        header = f"{_VERSION}.{key.kid}"
        sealer = self._sealer
        if sealer is None or sealer.left <= 0 or sealer.pid != os.getpid():
            sealer = self._sealer = _Sealer(key.key)
        sealer.left -= 1  # a lost update between threads only spends a few more (see above)
        nonce = os.urandom(12)
        sealed = sealer.aead.encrypt(nonce, plaintext, _aad(header, cookie_name))
        body = binascii.b2a_base64(b"".join((sealer.seed, nonce, sealed)), newline=False)
        value = f"{header}.{body.decode('ascii')}"
        if self._cache_size:
            # The next request carries this value: it opens from memory (parsed on first use,
            # or already opened when the frozen parts are at hand).
            entry: bytes | _Opened = plaintext
            if opened is not None:
                entry = _Opened(opened, created, now, cap, 0, len(plaintext))
            self._remember(cookie_name, value, entry)
        return value

    def _encode_spliced(
        self, data: Mapping[str, Any], head: bytes
    ) -> tuple[list[bytes], dict[str, Any]]:
        """UTF-8 pieces of ``head`` + the JSON of ``data`` + ``}`` with frozen values spliced,
        and the data as it will open."""
        pieces = [head]
        opened: dict[str, Any] = {}
        sep = "{"
        for key, value in data.items():
            if not isinstance(key, str):
                raise TypeError("session keys must be strings")
            if type(value) is _FrozenDict:
                pieces.append(f"{sep}{_encode_key(key)}:".encode())
                pieces.append(value._utf8())
                opened[key] = value
            else:
                text = _dumps(value)
                if key in self._frozen and isinstance(value, dict):
                    frozen = _freeze(_DECODER.decode(text))
                    frozen._json = text.encode("utf-8")
                    opened[key] = frozen
                else:
                    # As the next request will read it (tuples become lists, and so on); small.
                    opened[key] = _DECODER.decode(text)
                pieces.append(f"{sep}{_encode_key(key)}:{text}".encode())
            sep = ","
        pieces.append(b"}}" if opened else b"{}}")
        return pieces, opened

    def decode(self, value: str | None, *, cookie_name: str) -> DecodedSession | None:
        """Open a cookie value, or return ``None`` if it is not a live session of ours.

        Example::

            session = codec.decode(request.cookies.get("oidc_session"), cookie_name="oidc_session")
        """
        if value is None:
            return None
        try:
            return self.load(value, cookie_name=cookie_name)
        except OIDCError:
            return None

    def load(self, value: str, *, cookie_name: str) -> DecodedSession:
        """Open a cookie value or raise ``OIDCError`` with a code saying why it was refused.

        Codes: ``session_malformed`` (not our envelope, bad encoding, too large),
        ``session_unsupported_version``, ``session_unknown_key`` (no secret has that key id:
        rotated out or foreign), ``session_invalid`` (authentication failed: tampered, moved to
        another cookie name, truncated), ``session_expired``. The value is never in the message.

        Example::

            try:
                session = codec.load(raw, cookie_name="oidc_session")
            except OIDCError as exc:
                log.info("no session: %s", exc.code)
        """
        if not isinstance(value, str) or len(value) > self._max_envelope:
            raise OIDCError("session cookie is not a session envelope", code="session_malformed")
        if self._cache_size:
            hit = self._cache.get((cookie_name, value[:_CACHE_KEY_CHARS]))
            if hit is not None and hit[0] == value:
                cached = hit[1]
                if isinstance(cached, bytes):
                    cached = self._open(cached, 0)
                    self._cache[(cookie_name, value[:_CACHE_KEY_CHARS])] = (value, cached)
                return self._live(cached, copy=True)
        version, sep1, rest = value.partition(".")
        kid, sep2, body = rest.partition(".")
        if not (sep1 and sep2):
            raise OIDCError("session cookie is not a session envelope", code="session_malformed")
        if version == _VERSION:
            decode_body = _b64d_std
        elif version == _V1:
            decode_body = _b64d
        else:
            raise OIDCError(
                "session envelope version is not supported", code="session_unsupported_version"
            )
        candidates = self._by_kid.get(kid)
        if candidates is None:
            raise OIDCError(
                "session was encrypted with a secret that is not configured",
                code="session_unknown_key",
            )
        try:
            blob = decode_body(body)
        except ValueError:
            raise OIDCError("session cookie is not base64", code="session_malformed") from None
        if len(blob) < _SEED_BYTES + _TAG_BYTES:
            raise OIDCError("session envelope is truncated", code="session_invalid")
        seed, sealed = blob[:_SEED_BYTES], blob[_SEED_BYTES:]
        aad = _aad(f"{version}.{kid}", cookie_name)
        for entry in candidates:
            try:
                plaintext = _aead(entry.key, seed).decrypt(seed[12:], sealed, aad)
            except InvalidTag:
                continue
            opened = self._open(plaintext, entry.index)
            if self._cache_size:
                self._remember(cookie_name, value, opened)
            return self._live(opened, copy=self._cache_size > 0)
        raise OIDCError("session failed authentication", code="session_invalid")

    def _remember(self, cookie_name: str, value: str, entry: bytes | _Opened) -> None:
        # Only values that authenticated (or that this codec sealed) get here: a forged value
        # sharing a cached prefix misses on the full comparison and never replaces the entry.
        cache = self._cache
        key = (cookie_name, value[:_CACHE_KEY_CHARS])
        if key not in cache and len(cache) >= self._cache_size:
            del cache[next(iter(cache))]  # oldest first
        cache[key] = (value, entry)

    def needs_reissue(self, session: DecodedSession) -> bool:
        """Whether an unchanged session should still be re-sent (rolling window or rotation).

        True when the cookie was issued more than ``touch_after`` seconds ago (so the idle
        window moves forward) or was made with a secret other than the first.

        Example::

            if changed or codec.needs_reissue(session):
                headers += chunker.write(codec.encode(...), ...)
        """
        return session.key_index != 0 or self._now() - session.touched_at >= self.touch_after

    def _open(self, plaintext: bytes, key_index: int) -> _Opened:
        # The payload is authenticated, so failures here mean a format bug or a codec from
        # another version: still a clean refusal.
        if len(plaintext) > self._max_bytes:
            raise OIDCError("session payload is over the size limit", code="session_malformed")
        try:
            payload = _DECODER.decode(plaintext.decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError):
            raise OIDCError("session payload is not JSON", code="session_malformed") from None
        if not isinstance(payload, dict):
            raise OIDCError("session payload is not an object", code="session_malformed")
        data = payload.get("d")
        created = _number(payload.get("iat"))
        touched = _number(payload.get("uat"))
        raw_cap = payload.get("cap")
        cap = None if raw_cap is None else _number(raw_cap)
        if not isinstance(data, dict) or created is None or touched is None:
            raise OIDCError("session payload lacks fields", code="session_malformed")
        if raw_cap is not None and cap is None:
            raise OIDCError("session payload has a bad ceiling", code="session_malformed")
        for key in self._frozen:
            value = data.get(key)
            if type(value) is dict:
                data[key] = _freeze(value)
        return _Opened(data, created, touched, cap, key_index, len(plaintext))

    def _hand_out(self, data: dict[str, Any]) -> dict[str, Any]:
        # A copy the caller may change, except frozen values: read-only, so shared as they are.
        if not self._frozen:
            copied: dict[str, Any] = _copy_json(data)
            return copied
        out = data.copy()
        for key, value in out.items():
            if type(value) is not _FrozenDict and (type(value) is dict or type(value) is list):
                out[key] = _copy_json(value)
        return out

    def _live(self, opened: _Opened, *, copy: bool) -> DecodedSession:
        expires = opened.created + self.absolute_ttl
        if self.rolling_ttl is not None:
            expires = min(expires, opened.touched + self.rolling_ttl)
        if opened.cap is not None:
            expires = min(expires, opened.cap)
        if self._now() >= expires:
            raise OIDCError("session has expired", code="session_expired")
        return DecodedSession(
            data=self._hand_out(opened.data) if copy else opened.data,
            created_at=opened.created,
            touched_at=opened.touched,
            expires_at=expires,
            ceiling=opened.cap,
            key_index=opened.key_index,
            size=opened.size,
        )


def _aad(header: str, cookie_name: str) -> bytes:
    return header.encode("ascii") + b"\x00" + cookie_name.encode("utf-8")


def _aead(key: bytes, seed: bytes) -> AESGCM:
    return AESGCM(hmac.digest(key, _SUBKEY_LABEL + seed[:12], "sha256"))


class ValueSigner:
    """Sign short non-secret values, such as the random id of a server-side session.

    The value stays readable; the signature only proves this application issued it. Never use
    it for tokens or personal data: those go through ``SessionCodec``, which encrypts. Built on
    ``itsdangerous.Signer`` (HMAC-SHA256) with keys derived from the same secret list for
    ``purpose``; the first secret signs, all verify.

    Example::

        signer = ValueSigner(secrets=[secret], purpose="session-id")
        cookie = signer.sign(session_id)
        assert signer.unsign(cookie) == session_id
    """

    __slots__ = ("_max_length", "_signer")

    def __init__(
        self, *, secrets: Sequence[str | bytes], purpose: str, max_length: int = 1024
    ) -> None:
        keys = derive_keys(secrets, purpose=f"signed/{purpose}")
        # itsdangerous signs with the *last* key of its list and verifies newest-first.
        self._signer = Signer(
            list(reversed(keys)),
            salt=purpose,
            key_derivation="none",
            digest_method=hashlib.sha256,
        )
        self._max_length = max_length

    def __repr__(self) -> str:
        return "ValueSigner(<keys hidden>)"

    def sign(self, value: str) -> str:
        """Return ``value`` with its signature appended (``value.signature``).

        Example::

            cookie_value = signer.sign("f3a9c2")
        """
        return self._signer.sign(value).decode("utf-8")

    def unsign(self, signed: str | None) -> str | None:
        """The original value, or ``None`` if the signature does not verify under any secret.

        Example::

            assert signer.unsign("f3a9c2.forged") is None
        """
        if not isinstance(signed, str) or len(signed) > self._max_length:
            return None
        try:
            return self._signer.unsign(signed).decode("utf-8")
        except (BadSignature, UnicodeError):
            return None
