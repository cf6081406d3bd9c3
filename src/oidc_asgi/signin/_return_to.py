"""The one return-address check, used when a login starts and again at its callback.

A return address ("returnTo") comes from a query parameter or a form, so it is attacker input,
and browsers are generous parsers: ``//evil.example``, ``/\\evil.example``, ``\\\\evil.example``,
``/%2F%2Fevil.example`` (after a later decode), ``/\\t/evil.example`` (tabs and newlines are
stripped by the WHATWG URL parser) and ``https://app.example@evil.example`` all leave the site.
The rule is therefore an allow-list, not a deny-list: a path on this origin, made only of
visible ASCII, with no empty or dot segments and no encoded ``/`` or ``\\`` at any decoding
depth. Anything else becomes the default.
"""

from __future__ import annotations

import unicodedata
from urllib.parse import unquote, urlsplit

__all__ = ["normalize_return_to"]

_DEFAULT_PORTS = {"http": 80, "https": 443}
_MAX_DECODE_ROUNDS = 4


def normalize_return_to(
    value: str | None,
    *,
    default: str = "/",
    base_url: str | None = None,
    max_length: int = 2048,
) -> str:
    """Return ``value`` as a safe same-origin path (with query, without fragment), or ``default``.

    Accepted: ``/path`` and ``/path?query``; the fragment is dropped. An absolute URL is accepted
    only when ``base_url`` is given and it has exactly that scheme, host and port (no user info);
    it is reduced to its path and query and checked again. Rejected (``default`` is returned):
    ``//host``, any backslash, percent-encoded ``/`` or ``\\`` in the path (also double-encoded),
    empty, ``.`` or ``..`` path segments, control characters, spaces and any non-ASCII character,
    other schemes (``javascript:``, ``data:``), other origins, and values over ``max_length``.
    Percent-encoded text may decode to spaces and letters of any script, but never to controls,
    Unicode separators or characters that fold to ``/``, ``\\`` or ``.``. The result is a path
    of the app, which the middleware joins to ``base_url``: when ``base_url`` has a path (the
    app is served under a prefix such as ``/portal``), an absolute URL must lie under that
    prefix and comes back without it (outside it: ``default``); a path is taken as already
    relative to the prefix. ``default`` goes through the same check and falls back to ``"/"``.

    Example::

        assert normalize_return_to("/orders?id=7#top") == "/orders?id=7"
        assert normalize_return_to("//evil.example/") == "/"
        assert normalize_return_to("https://app.example/a", base_url="https://app.example") == "/a"
        assert normalize_return_to("https://app.example/portal/a",
                                   base_url="https://app.example/portal") == "/a"
    """
    checked = _check(value, base_url=base_url, max_length=max_length)
    if checked is not None:
        return checked
    fallback = _check(default, base_url=base_url, max_length=max_length)
    return "/" if fallback is None else fallback


def _check(value: object, *, base_url: str | None, max_length: int) -> str | None:
    if not isinstance(value, str) or not value or len(value) > max_length:
        return None
    # Visible ASCII only: no controls, no spaces (the URL parser strips tabs and newlines and
    # trims spaces, which is how "/\t/evil" becomes "//evil"), no Unicode look-alikes.
    if not all("\x21" <= ch <= "\x7e" for ch in value) or "\\" in value:
        return None
    value = value.split("#", 1)[0]
    if not value.startswith("/"):
        value_or_none = _same_origin_path(value, base_url)
        if value_or_none is None:
            return None
        value = value_or_none
    path, sep, query = value.partition("?")
    if not _safe_path(path):
        return None
    return f"{path}?{query}" if sep and query else path


def _same_origin_path(value: str, base_url: str | None) -> str | None:
    if base_url is None:
        return None
    try:
        target = urlsplit(value)
        base = urlsplit(base_url)
        target_port = target.port
        base_port = base.port
    except ValueError:
        return None
    scheme = target.scheme.lower()
    if scheme not in _DEFAULT_PORTS or scheme != base.scheme.lower():
        return None
    if "@" in target.netloc or not target.hostname or target.hostname != base.hostname:
        return None
    if (target_port or _DEFAULT_PORTS[scheme]) != (base_port or _DEFAULT_PORTS[scheme]):
        return None
    # Reduced to path and query, then checked again like any path (stops https://app//evil).
    path = target.path or "/"
    prefix = base.path.rstrip("/")
    if prefix:
        # The app's own path: the part under base_url's path (whole segments only).
        if path == prefix:
            path = "/"
        elif path.startswith(prefix + "/"):
            path = path[len(prefix) :]
        else:
            return None
    return f"{path}?{target.query}" if target.query else path


def _safe_path(path: str) -> bool:
    layer = path
    for _ in range(_MAX_DECODE_ROUNDS + 1):
        if not _safe_layer(layer, slashes=path.count("/")):
            return False
        if "%" not in layer:
            return True
        try:
            decoded = unquote(layer, errors="strict")
        except UnicodeDecodeError:
            return False  # escapes that are not UTF-8: not a path this app produced
        if decoded == layer:
            return True
        layer = decoded
    return False  # still decoding after several rounds: nobody needs that


def _safe_layer(layer: str, *, slashes: int) -> bool:
    if not layer.isascii():
        # Decoded text may be any language, but no control or separator characters, and
        # nothing that Unicode compatibility folding turns into "/", "\\" or "." (fullwidth
        # solidus and friends), in case something downstream normalises.
        if any(ch != " " and unicodedata.category(ch)[0] in "CZ" for ch in layer):
            return False
        folded = unicodedata.normalize("NFKC", layer)
        if folded.count("/") != layer.count("/") or folded.count(".") != layer.count("."):
            return False
        if "\\" in folded:
            return False
    if not layer.startswith("/") or "\\" in layer or layer.count("/") != slashes:
        return False  # the last test catches an encoded slash at any depth
    # A decoded space is a file name; a decoded tab, CR, LF or NUL is an attack.
    if any(ch < "\x20" or ch == "\x7f" for ch in layer):
        return False
    segments = layer.split("/")[1:]
    # "" is allowed only as the final segment ("/" and "/dir/"); "." and ".." never.
    return not (any(seg in ("", ".", "..") for seg in segments[:-1]) or segments[-1] in (".", ".."))
