"""One careful way to call an identity provider: every outbound request in oidc-asgi goes here.

Discovery, JWKS, token-endpoint POSTs and introspection all share the same guarantees:

* **https only.** Plain ``http`` is refused (``ConfigurationError(code="insecure_url")``) unless
  the host is loopback or the caller opted in with ``allow_insecure_http=True``. Loopback
  (``localhost``, ``127.0.0.0/8``, ``::1``) is allowed without the switch because traffic to it
  never leaves the machine, the same judgement RFC 8252 section 8.3 makes for loopback redirects
  and browsers make for "potentially trustworthy" origins; it keeps a local Keycloak on
  ``http://localhost:8080`` working without teaching developers to flip a dangerous switch.
* **One deadline per request** (default 5 s) covering connect, every redirect hop and the whole
  body, so a server trickling one byte a second cannot hold a caller for longer.
* **No redirect to another origin.** GET follows at most a few redirects, each to the same
  scheme, host and port: providers do sometimes normalise paths, but a hop to another origin
  would let whoever controls a redirect choose our keys (the JWKS spoofing that RFC 8725
  section 3.10 warns about). POST follows none: re-sending a token request, with its client
  credentials, to a URL the server chose is never right.
* **A size cap enforced while streaming** (after content decoding, so a gzip bomb is cut off
  too), not after everything has been read.
* **Strict JSON** (RFC 8259): UTF-8, a top-level object, no duplicate member names, no
  ``NaN``/``Infinity``.
* **Errors with stable codes, never bodies.** Failures become ``ProviderUnavailable`` with one of
  the codes below; messages carry the URL without its query string and the status, never
  response content (a token response holds tokens).

Codes: ``provider_timeout``, ``provider_unreachable``, ``provider_http_error`` (raised as
``ProviderStatusError``, which also carries ``status_code``), ``provider_redirect``,
``provider_response_too_large``, ``provider_bad_response``; and ``ConfigurationError`` with
``insecure_url`` or ``invalid_url`` for a URL we refuse to call.

Why ``warnings.warn`` for ``allow_insecure_http=True`` rather than a log line: the switch is set
once, in code, by a developer, and a warning of a dedicated category (``InsecureTransportWarning``,
like urllib3's ``InsecureRequestWarning``) points at the line that set it, shows up in test runs
(where ``filterwarnings = error`` makes it impossible to miss), and can be silenced precisely by
category where the choice is deliberate (``oidc_asgi.testing`` does exactly that).
"""

from __future__ import annotations

import ipaddress
import json
import warnings
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlsplit

import anyio
import httpx

from oidc_asgi.errors import ConfigurationError, ProviderUnavailable

__all__ = [
    "DEFAULT_MAX_BYTES",
    "DEFAULT_TIMEOUT",
    "InsecureTransportWarning",
    "JsonResponse",
    "ProviderStatusError",
    "cache_max_age",
    "fetch_json",
    "is_loopback_url",
    "parse_json_object",
    "require_https",
    "safe_url",
    "warn_insecure_http",
]

DEFAULT_TIMEOUT = 5.0
DEFAULT_MAX_BYTES = 256 * 1024
_MAX_REDIRECTS = 3
_LOOPBACK_NAMES = frozenset({"localhost"})
_REDIRECTS = frozenset({301, 302, 303, 307, 308})


class InsecureTransportWarning(UserWarning):
    """``allow_insecure_http=True`` is in effect: provider traffic may travel unencrypted.

    Example::

        warnings.simplefilter("ignore", InsecureTransportWarning)  # a deliberate local demo
    """


def warn_insecure_http(what: str, *, stacklevel: int = 3) -> None:
    """Emit the loud ``InsecureTransportWarning`` for an object built with the switch on."""
    warnings.warn(
        f"{what}: allow_insecure_http=True lets tokens and keys travel over plain http; "
        "never use it in production",
        InsecureTransportWarning,
        stacklevel=stacklevel,
    )


class ProviderStatusError(ProviderUnavailable):
    """The provider answered with an HTTP status the caller did not expect.

    ``code`` is ``provider_http_error``; ``status_code`` is the status. Callers that treat some
    statuses specially (discovery falls back to RFC 8414 on a 404) catch this subclass.
    """

    def __init__(self, message: str, *, status_code: int, retry_after: int | None = None) -> None:
        super().__init__(message, code="provider_http_error", retry_after=retry_after)
        self.status_code = status_code


@dataclass(frozen=True)
class JsonResponse:
    """A provider response that passed every check.

    ``data`` is the parsed JSON object (empty when ``not_modified``); ``max_age`` is the
    freshness lifetime from ``Cache-Control`` (see ``cache_max_age``), ``None`` when absent.
    """

    status: int
    url: str
    data: Mapping[str, Any]
    max_age: float | None
    etag: str | None
    headers: httpx.Headers = field(repr=False)
    not_modified: bool = False


def safe_url(url: str | httpx.URL) -> str:
    """The URL without query string, fragment or user info: safe for messages and logs."""
    parts = urlsplit(str(url))
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    try:
        port = f":{parts.port}" if parts.port is not None else ""
    except ValueError:
        port = ""
    return f"{parts.scheme}://{host}{port}{parts.path}"


def is_loopback_url(url: str) -> bool:
    """True when ``url``'s host is ``localhost``, in ``127.0.0.0/8`` or ``::1``."""
    host = (urlsplit(url).hostname or "").lower()
    if host in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def require_https(
    url: str, *, allow_insecure_http: bool, what: str = "URL", code: str = "insecure_url"
) -> None:
    """Refuse a URL we must not call: not absolute http(s), or plain http without a reason.

    Raises ``ConfigurationError`` with ``invalid_url`` or ``code`` (default ``insecure_url``).
    """
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - validates the port
    except ValueError:
        raise ConfigurationError(f"{what} is not a valid URL", code="invalid_url") from None
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ConfigurationError(f"{what} must be an absolute https URL", code="invalid_url")
    if parts.scheme == "http" and not allow_insecure_http and not is_loopback_url(url):
        raise ConfigurationError(
            f"{what} {safe_url(url)} uses plain http; use https "
            "(or allow_insecure_http=True for local development only)",
            code=code,
        )


def cache_max_age(headers: httpx.Headers) -> float | None:
    """Freshness lifetime in seconds from ``Cache-Control`` (RFC 9111 sections 4.2.1, 5.2.2).

    ``max-age`` minus the ``Age`` header; ``no-store`` or ``no-cache`` count as 0 (the caller
    clamps to its minimum TTL, so a provider cannot make us fetch on every request); ``None``
    when the header says nothing usable, so the caller's default applies.
    """
    values = headers.get_list("cache-control", split_commas=True)
    found: float | None = None
    for directive in values:
        name, _, value = directive.strip().partition("=")
        name = name.strip().lower()
        if name in ("no-store", "no-cache"):
            return 0.0
        if name == "max-age":
            value = value.strip().strip('"')
            if value.isdigit() and value.isascii():
                seconds = float(int(value))
                found = seconds if found is None else min(found, seconds)
    if found is None:
        return None
    age = headers.get("age", "").strip()
    if age.isdigit() and age.isascii():
        found = max(0.0, found - int(age))
    return found


def _reject_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError("duplicate member name")
        result[key] = value
    return result


def _reject_constant(name: str) -> Any:
    raise ValueError("NaN and Infinity are not JSON")


def parse_json_object(body: bytes) -> dict[str, Any]:
    """Parse ``body`` as one strict JSON object (RFC 8259 sections 4 and 8.1).

    Raises ``ValueError`` for invalid UTF-8, duplicate member names, ``NaN``/``Infinity``,
    excessive nesting, or a top-level value that is not an object.
    """
    # Messages are fixed strings or json's position-only text: never a piece of the body.
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError("invalid UTF-8") from None
    try:
        value = json.loads(
            text, object_pairs_hook=_reject_duplicates, parse_constant=_reject_constant
        )
    except json.JSONDecodeError as exc:
        raise ValueError(f"invalid JSON: {exc.msg} at offset {exc.pos}") from None
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None
    if not isinstance(value, dict):
        raise ValueError("JSON value is not an object")
    return value


def _origin(url: httpx.URL) -> tuple[str, str, int | None]:
    default = {"https": 443, "http": 80}.get(url.scheme)
    return (url.scheme, url.host, url.port or default)


def _retry_after(headers: httpx.Headers) -> int | None:
    value = headers.get("retry-after", "").strip()
    if value.isdigit() and value.isascii():
        return min(int(value), 3600)
    return None


async def _read_capped(response: httpx.Response, max_bytes: int, where: str) -> bytes:
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise ProviderUnavailable(
            f"{where}: response larger than {max_bytes} bytes",
            code="provider_response_too_large",
        )
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > max_bytes:
            raise ProviderUnavailable(
                f"{where}: response larger than {max_bytes} bytes",
                code="provider_response_too_large",
            )
        chunks.append(chunk)
    return b"".join(chunks)


async def fetch_json(
    client: httpx.AsyncClient,
    url: str,
    *,
    method: Literal["GET", "POST"] = "GET",
    form: Mapping[str, str] | None = None,
    headers: Mapping[str, str] | None = None,
    # The deadline is part of the contract (one bound over all hops and the body), applied
    # inside with anyio.fail_after, so callers need not wrap every call themselves.
    timeout: float = DEFAULT_TIMEOUT,  # noqa: ASYNC109
    max_bytes: int = DEFAULT_MAX_BYTES,
    accept: Collection[int] = (200,),
    etag: str | None = None,
    allow_insecure_http: bool = False,
    max_redirects: int = _MAX_REDIRECTS,
) -> JsonResponse:
    """Fetch one JSON object from a provider, with every guard described in the module docstring.

    ``accept`` lists the statuses whose body is parsed and returned (a token endpoint passes
    ``(200, 400, 401)`` to read RFC 6749 section 5.2 error objects); any other status raises
    ``ProviderStatusError``. With ``etag`` a GET is conditional (RFC 9110 section 13.1.2) and a
    304 comes back as ``JsonResponse(not_modified=True, data={})``. ``form`` makes the request an
    ``application/x-www-form-urlencoded`` POST.

    Example::

        doc = await fetch_json(client, "https://idp.example/.well-known/openid-configuration")
        jwks_uri = doc.data["jwks_uri"]
    """
    require_https(url, allow_insecure_http=allow_insecure_http)
    if form is not None:
        method = "POST"
    send_headers = {"Accept": "application/json"}
    if headers:
        send_headers.update(headers)
    if etag is not None and method == "GET":
        send_headers["If-None-Match"] = etag
    where = f"{method} {safe_url(url)}"
    try:
        with anyio.fail_after(timeout):
            return await _exchange(
                client,
                httpx.URL(url),
                method=method,
                form=form,
                headers=send_headers,
                phase_timeout=timeout,
                max_bytes=max_bytes,
                accept=accept,
                conditional=etag is not None,
                max_redirects=max_redirects if method == "GET" else 0,
                where=where,
            )
    except TimeoutError:
        raise ProviderUnavailable(
            f"{where}: no complete answer within {timeout:g} s", code="provider_timeout"
        ) from None
    except httpx.TimeoutException:
        raise ProviderUnavailable(
            f"{where}: no complete answer within {timeout:g} s", code="provider_timeout"
        ) from None
    except httpx.DecodingError:
        raise ProviderUnavailable(
            f"{where}: response content could not be decoded", code="provider_bad_response"
        ) from None
    except httpx.HTTPError as exc:
        # The exception class names the failure (ConnectError, ReadError, ...); its text may
        # echo request details, so it is not included.
        raise ProviderUnavailable(
            f"{where}: request failed ({type(exc).__name__})", code="provider_unreachable"
        ) from None


async def _exchange(
    client: httpx.AsyncClient,
    url: httpx.URL,
    *,
    method: str,
    form: Mapping[str, str] | None,
    headers: Mapping[str, str],
    phase_timeout: float,
    max_bytes: int,
    accept: Collection[int],
    conditional: bool,
    max_redirects: int,
    where: str,
) -> JsonResponse:
    origin = _origin(url)
    for _hop in range(max_redirects + 1):
        async with client.stream(
            method,
            url,
            data=dict(form) if form is not None else None,
            headers=headers,
            timeout=phase_timeout,
            follow_redirects=False,
        ) as response:
            if response.status_code in _REDIRECTS and "location" in response.headers:
                try:
                    target = url.join(response.headers["location"])
                except httpx.InvalidURL:
                    target = None
                if target is None or _origin(target) != origin:
                    raise ProviderUnavailable(
                        f"{where}: redirect to another origin refused", code="provider_redirect"
                    )
                url = target
                continue
            if response.status_code == 304 and conditional:
                return JsonResponse(
                    status=304,
                    url=str(response.url),
                    data={},
                    max_age=cache_max_age(response.headers),
                    etag=response.headers.get("etag") or None,
                    headers=response.headers,
                    not_modified=True,
                )
            if response.status_code not in accept:
                raise ProviderStatusError(
                    f"{where}: unexpected HTTP status {response.status_code}",
                    status_code=response.status_code,
                    retry_after=_retry_after(response.headers),
                )
            body = await _read_capped(response, max_bytes, where)
        try:
            data = parse_json_object(body)
        except ValueError as exc:
            raise ProviderUnavailable(
                f"{where}: response is not a strict JSON object ({exc})",
                code="provider_bad_response",
            ) from None
        return JsonResponse(
            status=response.status_code,
            url=str(response.url),
            data=data,
            max_age=cache_max_age(response.headers),
            etag=response.headers.get("etag") or None,
            headers=response.headers,
        )
    raise ProviderUnavailable(
        f"{where}: more than {max_redirects} redirects" if max_redirects else f"{where}: redirect",
        code="provider_redirect",
    )
