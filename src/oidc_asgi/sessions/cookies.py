"""Cookie writing and chunking: ``Set-Cookie`` values to append, never to overwrite.

Browsers keep about 4 KB per cookie (RFC 6265 section 6.1 asks for at least 4096 bytes of name,
value and attributes), and Starlette drops a larger cookie without a word (starlette #2412). A
value that does not fit is split over ``name``, ``name.1``, ``name.2``, ... . The first cookie
says how many chunks belong to it (``name=3~<part>``), so a chunk left behind by an older, longer
session is ignored instead of corrupting the read (auth0/nextjs-auth0 #1293), and every write
expires the higher chunks the request still carries.

Everything here returns header *values*; the middleware appends them at
``http.response.start`` next to the application's own ``Set-Cookie`` headers.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from oidc_asgi.errors import ConfigurationError, OIDCError

__all__ = ["ChunkedCookie", "CookieOptions"]

SameSite = Literal["lax", "strict", "none"]

# RFC 6265 section 4.1.1: cookie-name is an RFC 2616 token, cookie-octet excludes CTLs,
# whitespace, DQUOTE, comma, semicolon and backslash.
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_COOKIE_VALUE = re.compile(r"[\x21\x23-\x2b\x2d-\x3a\x3c-\x5b\x5d-\x7e]*")
_ATTRIBUTE_VALUE = re.compile(r"[\x21-\x3a\x3c-\x7e]+")  # no CTL, no space, no ';'
_COUNT = re.compile(r"[1-9][0-9]?")
# The same cookie-octet set as bytes, for a check of long values without a regex (hot path).
_COOKIE_OCTETS = bytes([0x21, *range(0x23, 0x2C), *range(0x2D, 0x3B), *range(0x3C, 0x5C),
                        *range(0x5D, 0x7F)])  # fmt: skip
_EXPIRED = "Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT"
_LONGEST_MAX_AGE = 10 * 365 * 24 * 3600
_MIN_ROOM = 64
_MAX_CHUNK_INDEX = 999


@dataclass(frozen=True, kw_only=True)
class CookieOptions:
    """Attributes for the cookies oidc-asgi writes.

    ``secure="auto"`` adds ``Secure`` when the request came over https (the middleware decides
    from the scope scheme, or from ``X-Forwarded-Proto`` of a trusted proxy); ``True`` always,
    ``False`` never. ``SameSite=None`` and the ``__Secure-``/``__Host-`` name prefixes always get
    ``Secure``, because browsers drop those cookies otherwise. ``HttpOnly`` is on by default.

    Example::

        options = CookieOptions(path="/", same_site="lax")
        header = options.set_cookie("oidc_tx", "abc", https=True, max_age=600)
        # 'oidc_tx=abc; Path=/; Max-Age=600; Secure; HttpOnly; SameSite=Lax'
    """

    path: str = "/"
    domain: str | None = None
    secure: bool | Literal["auto"] = "auto"
    same_site: SameSite = "lax"
    http_only: bool = True

    def __post_init__(self) -> None:
        if not isinstance(self.path, str) or not self.path.startswith("/"):
            raise ConfigurationError("cookie path must start with '/'", code="invalid_cookie_path")
        if not _ATTRIBUTE_VALUE.fullmatch(self.path):
            raise ConfigurationError(
                "cookie path has a character not allowed in a cookie attribute",
                code="invalid_cookie_path",
            )
        if self.domain is not None and not (
            isinstance(self.domain, str) and _ATTRIBUTE_VALUE.fullmatch(self.domain)
        ):
            raise ConfigurationError(
                "cookie domain has a character not allowed in a cookie attribute",
                code="invalid_cookie_domain",
            )
        if self.secure not in (True, False, "auto"):
            raise ConfigurationError(
                "secure must be True, False or 'auto'", code="invalid_cookie_secure"
            )
        if self.same_site not in ("lax", "strict", "none"):
            raise ConfigurationError(
                "same_site must be 'lax', 'strict' or 'none'", code="invalid_cookie_samesite"
            )
        if self.same_site == "none" and self.secure is False:
            raise ConfigurationError(
                "SameSite=None cookies must be Secure; browsers reject them otherwise",
                code="invalid_cookie_samesite",
            )

    def is_secure(self, *, https: bool) -> bool:
        """Whether cookies for a request over ``https`` (or not) get the ``Secure`` attribute.

        Example::

            assert CookieOptions().is_secure(https=True)
        """
        if self.same_site == "none":
            return True
        return https if self.secure == "auto" else bool(self.secure)

    def set_cookie(self, name: str, value: str, *, https: bool, max_age: int | None) -> str:
        """One ``Set-Cookie`` header value; ``max_age=None`` makes a browser-session cookie.

        Raises ``OIDCError(code="invalid_cookie_value")`` for a value with characters a cookie
        cannot carry (the value itself is not put in the message).

        Example::

            headers.append((b"set-cookie", options.set_cookie("n", "v", https=True,
                                                              max_age=60).encode("latin-1")))
        """
        _check_name(name)
        if not _COOKIE_VALUE.fullmatch(value):
            raise OIDCError(
                f"value for cookie {name!r} has characters a cookie cannot carry",
                code="invalid_cookie_value",
            )
        if max_age is not None and (isinstance(max_age, bool) or max_age < 0):
            raise OIDCError("max_age must be >= 0 or None", code="invalid_cookie_max_age")
        return f"{name}={value}{self._attributes(name, https=https, max_age=max_age)}"

    def expire_cookie(self, name: str, *, https: bool) -> str:
        """A ``Set-Cookie`` header value that deletes ``name`` (same path and domain).

        Example::

            header = CookieOptions().expire_cookie("oidc_tx", https=False)
        """
        _check_name(name)
        return f"{name}={self._attributes(name, https=https, max_age=None, expire=True)}"

    def _attributes(
        self, name: str, *, https: bool, max_age: int | None, expire: bool = False
    ) -> str:
        parts = []
        if self.domain is not None:
            parts.append(f"Domain={self.domain}")
        parts.append(f"Path={self.path}")
        if expire:
            parts.append(_EXPIRED)
        elif max_age is not None:
            parts.append(f"Max-Age={max_age}")
        if self.is_secure(https=https) or name.startswith(("__Secure-", "__Host-")):
            parts.append("Secure")
        if self.http_only:
            parts.append("HttpOnly")
        parts.append(f"SameSite={self.same_site.capitalize()}")
        return "; " + "; ".join(parts)


def _check_name(name: str) -> None:
    if not isinstance(name, str) or not _TOKEN.fullmatch(name):
        raise ConfigurationError(
            f"{name!r} is not a valid cookie name (RFC 6265 section 4.1.1)",
            code="invalid_cookie_name",
        )


@dataclass(frozen=True, kw_only=True)
class ChunkedCookie:
    """A value stored across as many cookies as it needs, each under ``budget`` bytes.

    ``budget`` bounds each whole ``Set-Cookie`` value (name, value and attributes);
    ``max_chunks`` caps the number of cookies: a value that needs more is refused with
    ``OIDCError(code="session_too_large")``, which the middleware turns into a clean failure
    (a request with that many cookie bytes would hit the server's header limit anyway: 8 KB
    per header line in nginx by default, 16 KB of headers in uvicorn/h11).

    ``read`` reassembles from the request's cookies, ``write`` returns the headers that store a
    new value and expire stale higher chunks, ``clear`` returns the headers that remove it all.

    Example::

        jar = ChunkedCookie(name="oidc_session")
        headers = jar.write(value, cookies=request.cookies, https=True, max_age=3600)
        same = jar.read({"oidc_session": "1~" + value})
    """

    name: str
    options: CookieOptions = field(default_factory=CookieOptions)
    budget: int = 4000
    max_chunks: int = 4
    _attrs_cache: dict[tuple[bool, int | None], str] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )
    # Per attribute length: (room for the chunk values, chunk names) for 1..max_chunks cookies.
    _plans: dict[int, list[tuple[int, list[int], list[str]]]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        _check_name(self.name)
        if self.name.startswith("__Host-") and (
            self.options.domain is not None or self.options.path != "/"
        ):
            raise ConfigurationError(
                "a __Host- cookie needs path '/' and no domain", code="invalid_cookie_name"
            )
        if self.name.startswith(("__Secure-", "__Host-")) and self.options.secure is False:
            raise ConfigurationError(
                "a __Secure-/__Host- cookie must be Secure", code="invalid_cookie_secure"
            )
        if isinstance(self.max_chunks, bool) or not 1 <= self.max_chunks <= 99:
            raise ConfigurationError("max_chunks must be 1..99", code="invalid_cookie_chunks")
        if isinstance(self.budget, bool) or not 512 <= self.budget <= 8192:
            raise ConfigurationError(
                "budget must be 512..8192 bytes", code="cookie_budget_too_small"
            )
        worst = self.options._attributes(self.name, https=True, max_age=_LONGEST_MAX_AGE)
        room = self.budget - len(self._chunk_name(self.max_chunks - 1)) - 1 - len(worst) - 3
        if room < _MIN_ROOM:
            raise ConfigurationError(
                "budget leaves too little room for a value after the name and attributes",
                code="cookie_budget_too_small",
            )

    def _chunk_name(self, index: int) -> str:
        return self.name if index == 0 else f"{self.name}.{index}"

    def read(self, cookies: Mapping[str, str]) -> str | None:
        """The stored value, or ``None`` when the cookies are missing, partial or malformed.

        Example::

            value = ChunkedCookie(name="s").read({"s": "2~ab", "s.1": "cd", "s.2": "stale"})
            assert value == "abcd"
        """
        head = cookies.get(self.name)
        if head is None:
            return None
        count_text, sep, first = head.partition("~")
        if not sep or not _COUNT.fullmatch(count_text):
            return None
        count = int(count_text)
        if count > self.max_chunks:
            return None
        parts = [first]
        for index in range(1, count):
            part = cookies.get(self._chunk_name(index))
            if part is None:
                return None
            parts.append(part)
        return "".join(parts)

    def present(self, cookies: Mapping[str, str]) -> bool:
        """Whether the request carries the head cookie or any chunk of it.

        Example::

            assert ChunkedCookie(name="s").present({"s.1": "x"})
        """
        return self.name in cookies or bool(self._chunk_indexes(cookies))

    def write(
        self,
        value: str,
        *,
        cookies: Mapping[str, str],
        https: bool,
        max_age: int | None,
    ) -> list[str]:
        """``Set-Cookie`` values storing ``value``, then expiring stale chunks of ``cookies``.

        ``cookies`` are the request's cookies: every ``name.N`` among them that the new value
        does not use is expired, so a session that shrinks leaves nothing behind.

        Example::

            for header in jar.write(value, cookies=request.cookies, https=True, max_age=3600):
                raw_headers.append((b"set-cookie", header.encode("latin-1")))
        """
        if not (value.isascii() and not value.encode("ascii").translate(None, _COOKIE_OCTETS)):
            raise OIDCError(
                f"value for cookie {self.name!r} has characters a cookie cannot carry",
                code="invalid_cookie_value",
            )
        if max_age is not None and (isinstance(max_age, bool) or max_age < 0):
            raise OIDCError("max_age must be >= 0 or None", code="invalid_cookie_max_age")
        return self._write(value, cookies=cookies, https=https, max_age=max_age)

    def _write(
        self, value: str, *, cookies: Mapping[str, str], https: bool, max_age: int | None
    ) -> list[str]:
        # ``write`` without the checks, for values that cannot fail them: a session codec's
        # envelope (base64url and dots) and a non-negative int max-age.
        # The value and the names were checked once above and in __post_init__, and every
        # chunk name shares the head's prefix, so the attributes are built once per
        # (https, max_age) and kept: max-age changes at most once a second (hot path).
        attrs = self._attrs_cache.get((https, max_age))
        if attrs is None:
            attrs = self.options._attributes(self.name, https=https, max_age=max_age)
            if len(self._attrs_cache) >= 8:
                self._attrs_cache.clear()
            self._attrs_cache[(https, max_age)] = attrs
        parts, names = self._split(value, attrs=len(attrs))
        headers = [f"{names[0]}={len(parts)}~{parts[0]}{attrs}"]
        for index in range(1, len(parts)):
            headers.append(f"{names[index]}={parts[index]}{attrs}")
        prefix = self.name + "."
        if any(key.startswith(prefix) for key in cookies):
            headers.extend(
                self.options.expire_cookie(self._chunk_name(index), https=https)
                for index in self._chunk_indexes(cookies)
                if index >= len(parts)
            )
        return headers

    def clear(self, cookies: Mapping[str, str], *, https: bool) -> list[str]:
        """``Set-Cookie`` values that delete the head cookie and every chunk in ``cookies``.

        Example::

            headers = jar.clear(request.cookies, https=True)  # on logout
        """
        names = [self.name] + [self._chunk_name(i) for i in self._chunk_indexes(cookies)]
        return [self.options.expire_cookie(name, https=https) for name in names]

    def _chunk_indexes(self, cookies: Mapping[str, str]) -> list[int]:
        prefix = self.name + "."
        found = []
        for key in cookies:
            if key.startswith(prefix):
                suffix = key[len(prefix) :]
                if suffix.isascii() and suffix.isdigit() and suffix[0] != "0":
                    index = int(suffix)
                    if index <= _MAX_CHUNK_INDEX:
                        found.append(index)
        return sorted(found)

    def _split(self, value: str, *, attrs: int) -> tuple[list[str], list[str]]:
        plans = self._plans.get(attrs)
        if plans is None:
            # Built once per attribute length (a handful): what fits in 1, 2, ... cookies.
            plans = []
            for count in range(1, self.max_chunks + 1):
                caps = [self.budget - len(self.name) - 1 - attrs - len(f"{count}~")]
                caps += [
                    self.budget - len(self._chunk_name(i)) - 1 - attrs for i in range(1, count)
                ]
                names = [self._chunk_name(i) for i in range(count)]
                plans.append((sum(caps), caps, names))
            if len(self._plans) >= 8:
                self._plans.clear()
            self._plans[attrs] = plans
        size = len(value)
        for room, caps, names in plans:
            if room >= size:
                parts = []
                start = 0
                for cap in caps:
                    parts.append(value[start : start + cap])
                    start += cap
                # ``count`` is the smallest that fits, so every chunk but the last is full and
                # the last is non-empty: the count written in the head is the count used.
                return parts, names
        raise OIDCError(
            f"value for cookie {self.name!r} needs more than {self.max_chunks} cookies of "
            f"{self.budget} bytes; keep tokens in a server-side store or raise max_chunks",
            code="session_too_large",
        )
