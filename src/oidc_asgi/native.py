"""Logins for command-line and desktop programs: device code (RFC 8628) and loopback (RFC 8252).

``device_login`` suits a program without a browser at hand (SSH session, container, TV): it
shows a short code and a URL, and polls the token endpoint until the user approved on another
device. ``loopback_login`` suits a program on the user's own machine: it opens the system
browser at the authorization endpoint and receives the authorization code on a one-shot HTTP
listener at ``http://127.0.0.1:<free port>/callback``.

Both are async, cancellable (cancel the task: asyncio's ``CancelledError`` stops polling or
closes the listener), take an injectable clock, and never print or log a token, a device code
or an authorization code.

``CliSession`` (or the one-call ``cached_login``) keeps the resulting tokens between runs in a
``TokenStorage`` such as ``FileTokenStorage`` (a private, atomically written JSON file under
``~/.config/<app>/``): a still-valid access token is reused, an old one is refreshed, and a
refused refresh token (``invalid_grant``) leads to a new login.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import errno
import hashlib
import hmac
import html
import inspect
import json
import logging
import os
import re
import secrets
import stat
import sys
import webbrowser
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

from oidc_asgi.client import OAuthClient, TokenResponse
from oidc_asgi.errors import ConfigurationError, OAuthError, OIDCError, ProviderUnavailable
from oidc_asgi.tokens import IDTokenExpectations, TokenValidator

__all__ = [
    "CliSession",
    "DeviceLoginPrompt",
    "FileTokenStorage",
    "TokenCipher",
    "TokenStorage",
    "cached_login",
    "default_token_path",
    "device_login",
    "loopback_login",
]

logger = logging.getLogger("oidc_asgi.native")

#: RFC 8628 section 3.5: each ``slow_down`` adds 5 seconds to the polling interval.
SLOW_DOWN_STEP = 5
#: Longest wait between polls after transport failures (exponential backoff, section 3.5).
MAX_BACKOFF = 60
_RETRYABLE = frozenset(
    {"provider_timeout", "provider_unreachable", "provider_http_error", "provider_rate_limited"}
)
_MAX_REQUEST_LINE = 8192
_MAX_HEADERS = 100
_READ_TIMEOUT = 10.0

Sleep = Callable[[float], Awaitable[None]]
RedirectHost = Literal["127.0.0.1", "[::1]", "localhost"]


# --------------------------------------------------------------------------- device code


@dataclass(frozen=True, kw_only=True)
class DeviceLoginPrompt:
    """What to show the user during a device-code login (RFC 8628 section 3.3).

    ``verification_uri_complete`` (when the server sent one) already holds the code and suits
    a QR code. ``verification_host`` is the host of the verification page: show it prominently
    so the user can spot a phishing page (section 5.4). ``message`` is a ready English text.
    The device code is deliberately absent: it must never be shown.

    Example::

        def show(prompt: DeviceLoginPrompt) -> None:
            print(prompt.message)

        tokens = await device_login(client, scope="openid offline_access", on_code=show)
    """

    user_code: str
    verification_uri: str
    verification_uri_complete: str | None
    expires_at: float

    @property
    def verification_host(self) -> str:
        """The host name of the verification page."""
        return urlsplit(self.verification_uri).hostname or self.verification_uri

    @property
    def message(self) -> str:
        """``To sign in, open <uri> and enter the code <user_code>`` (plus the direct link)."""
        text = f"To sign in, open {self.verification_uri} and enter the code {self.user_code}"
        if self.verification_uri_complete:
            text += f"\n(or open {self.verification_uri_complete} directly)"
        return text


def _print_prompt(prompt: DeviceLoginPrompt) -> None:
    print(prompt.message, file=sys.stderr, flush=True)


async def device_login(
    client: OAuthClient,
    *,
    scope: str | Sequence[str] | None = None,
    on_code: Callable[[DeviceLoginPrompt], object] | None = None,
    sleep: Sleep = asyncio.sleep,
    now: Callable[[], float] | None = None,
    **extra: str,
) -> TokenResponse:
    """Sign a user in with the device authorization grant (RFC 8628) and return the tokens.

    Starts the flow (section 3.1), hands a ``DeviceLoginPrompt`` to ``on_code`` (sync or async;
    by default it is printed to stderr), then polls the token endpoint (section 3.4): waits
    ``interval`` seconds between polls, adds 5 seconds on ``slow_down`` (section 3.5), backs off
    exponentially (up to 60 s) on timeouts, connection failures, 5xx and 429, and stops on
    ``access_denied``, ``expired_token`` or any other error by raising ``OAuthError``; when the
    ``expires_in`` deadline passes without an answer it raises ``OAuthError("expired_token")``
    with ``status_code=None``. Cancel the task to abort. ``sleep`` is injectable (tests);
    ``now`` defaults to ``client.now``, the clock that stamped the flow's ``expires_at`` (pass
    another only to simulate a skewed clock). ``extra`` goes to the device authorization
    request (e.g. ``audience``).

    Example::

        client = OAuthClient(client_id="cli", auth_method="none", token_endpoint=...,
                             device_authorization_endpoint=...)
        tokens = await device_login(client, scope="openid offline_access")
    """
    clock = client.now if now is None else now
    flow = await client.device_authorization(scope=scope, **extra)
    prompt = DeviceLoginPrompt(
        user_code=flow.user_code,
        verification_uri=flow.verification_uri,
        verification_uri_complete=flow.verification_uri_complete,
        expires_at=flow.expires_at,
    )
    shown = (on_code or _print_prompt)(prompt)
    if inspect.isawaitable(shown):
        await shown
    interval = float(flow.interval)
    wait = interval
    while True:
        if clock() + wait >= flow.expires_at:
            raise OAuthError(
                "expired_token",
                error_description="the device code expired before the user finished",
            )
        await sleep(wait)
        try:
            # RFC 8707 section 2.2: the API named at the start is named again for the tokens.
            return await client.device_code(
                device_code=flow.device_code, resource=extra.get("resource")
            )
        except OAuthError as exc:
            if exc.error == "authorization_pending":
                wait = interval
                continue
            if exc.error == "slow_down":
                interval += SLOW_DOWN_STEP
                wait = interval
                continue
            raise
        except ProviderUnavailable as exc:
            if exc.code not in _RETRYABLE:
                raise
            wait = min(max(wait, interval) * 2, MAX_BACKOFF)
            logger.warning("device login: token endpoint unavailable (%s); retrying", exc.code)


# --------------------------------------------------------------------------- loopback


_PAGE = (
    "<!doctype html><html lang=en><meta charset=utf-8><title>{title}</title>"
    "<body style='font-family:sans-serif;margin:3em'><h1>{title}</h1><p>{text}</p></body></html>"
)


@dataclass
class _Callback:
    params: dict[str, str]


def _pkce() -> tuple[str, str]:
    # RFC 7636 section 4.1-4.2: 32 random bytes give a 43-character verifier.
    verifier = secrets.token_urlsafe(32)
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def _add_query(url: str, params: Mapping[str, str]) -> str:
    parts = urlsplit(url)
    query = parts.query + ("&" if parts.query else "") + urlencode(params)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment))


def _respond(writer: asyncio.StreamWriter, status: str, title: str, text: str) -> None:
    body = _PAGE.format(title=html.escape(title), text=html.escape(text)).encode("utf-8")
    head = (
        f"HTTP/1.1 {status}\r\nContent-Type: text/html; charset=utf-8\r\n"
        f"Content-Length: {len(body)}\r\nCache-Control: no-store\r\n"
        "Referrer-Policy: no-referrer\r\nX-Content-Type-Options: nosniff\r\n"
        "Content-Security-Policy: default-src 'none'; style-src 'unsafe-inline'\r\n"
        "Connection: close\r\n\r\n"
    )
    writer.write(head.encode("ascii") + body)


async def _read_target(reader: asyncio.StreamReader) -> tuple[str, str] | None:
    """Method and request target of one HTTP/1.x request; headers are read and ignored."""
    line = await reader.readline()
    if not line or len(line) > _MAX_REQUEST_LINE:
        return None
    parts = line.decode("latin-1").split()
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        return None
    for _ in range(_MAX_HEADERS):
        header = await reader.readline()
        if header in (b"\r\n", b"\n", b""):
            return parts[0], parts[1]
    return None


class _Listener:
    """A one-shot HTTP listener for the authorization response (RFC 8252 section 7.3)."""

    def __init__(self, path: str, state: str) -> None:
        self.path = path
        self.state = state
        self.result: asyncio.Future[_Callback] = asyncio.get_running_loop().create_future()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await asyncio.wait_for(_read_target(reader), _READ_TIMEOUT)
            if request is None:
                _respond(writer, "400 Bad Request", "Bad request", "This is not a request.")
            else:
                self._answer(writer, *request)
            await writer.drain()
        except (OSError, asyncio.TimeoutError, ValueError):
            pass  # a browser that went away, or a port scanner: not our concern
        finally:
            writer.close()

    def _answer(self, writer: asyncio.StreamWriter, method: str, target: str) -> None:
        parts = urlsplit(target)
        if parts.path != self.path:
            _respond(writer, "404 Not Found", "Not found", "Nothing here.")
            return
        if method != "GET":
            _respond(writer, "405 Method Not Allowed", "Not allowed", "Use GET.")
            return
        params = {k: v[0] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        state = params.get("state", "")
        if self.result.done() or not hmac.compare_digest(
            state.encode("utf-8", "surrogatepass"), self.state.encode("utf-8")
        ):
            # RFC 8252 section 8.9 / RFC 6749 section 10.12: not the response to our request.
            _respond(
                writer,
                "400 Bad Request",
                "Sign-in not recognised",
                "This sign-in response does not belong to the waiting program.",
            )
            return
        if "error" in params:
            _respond(writer, "200 OK", "Sign-in failed", "Return to the program for details.")
        else:
            _respond(writer, "200 OK", "Signed in", "You can close this window.")
        self.result.set_result(_Callback(params))


async def _open(opener: Callable[[str], object], url: str) -> bool:
    try:
        if inspect.iscoroutinefunction(opener) or inspect.iscoroutinefunction(
            getattr(opener, "__call__", None)  # noqa: B004 - an async callable object
        ):
            opened = await opener(url)  # type: ignore[misc]
        else:
            # webbrowser.open may block (text-mode browsers run in the terminal).
            opened = await asyncio.to_thread(opener, url)
    except Exception:  # any opener failure means: show the URL instead
        logger.warning("could not open a browser", exc_info=True)
        return False
    return opened is not False


async def loopback_login(
    client: OAuthClient,
    *,
    authorization_endpoint: str,
    scope: str | Sequence[str] = "openid",
    open_browser: Callable[[str], object] = webbrowser.open,
    show_url: Callable[[str], object] | None = None,
    timeout: float = 300.0,
    redirect_host: RedirectHost = "127.0.0.1",
    port: int = 0,
    path: str = "/callback",
    issuer: str | None = None,
    require_iss: bool = False,
    validator: TokenValidator | None = None,
    extra_params: Mapping[str, str] | None = None,
) -> TokenResponse:
    """Sign a user in through the system browser with a loopback redirect (RFC 8252).

    Listens on ``127.0.0.1`` (or ``[::1]``; ``redirect_host="localhost"`` still binds
    127.0.0.1 but names ``localhost`` in the redirect URI, for providers such as Entra ID that
    register it) on a free port (``port=0``; pick a fixed one for servers that match ports
    exactly), opens ``open_browser(url)`` (default ``webbrowser.open``; when it fails the URL is
    passed to ``show_url``, by default printed to stderr), and waits for one callback whose
    ``state`` matches (section 8.9). Requests for other paths (``/favicon.ico``) and callbacks
    with another ``state`` are answered and ignored. The browser gets a small page without any
    token; the listener closes after the callback or after ``timeout`` seconds
    (``OIDCError(code="login_timeout")``).

    The request uses PKCE S256 (RFC 7636, RFC 8252 section 8.1), ``state`` and, for
    ``openid``, a ``nonce``. An ``error`` answer raises ``OAuthError``. When the response
    carries ``iss`` (RFC 9207) it must equal ``issuer`` (default: ``validator.issuer`` or
    ``client.issuer``), else ``OIDCError(code="authorization_response_iss_mismatch")``;
    ``require_iss=True`` also rejects a response without it (use it when the discovery document
    says ``authorization_response_iss_parameter_supported``). The code is redeemed with
    ``client.authorization_code``; with a ``validator`` the ID token is validated (signature,
    ``iss``, ``aud``, ``nonce``, times) and a failure raises ``TokenError``.

    Example::

        client = OAuthClient(client_id="native", auth_method="none", token_endpoint=token_url)
        tokens = await loopback_login(client, authorization_endpoint=authorize_url,
                                      scope="openid offline_access")
    """
    if redirect_host not in ("127.0.0.1", "[::1]", "localhost"):
        raise ConfigurationError(
            "redirect_host must be 127.0.0.1, [::1] or localhost", code="invalid_redirect_host"
        )
    if not path.startswith("/"):
        raise ConfigurationError("path must start with /", code="invalid_redirect_path")
    if not timeout > 0:
        raise ConfigurationError("timeout must be positive", code="invalid_timeout")
    expected_issuer = issuer or (validator.issuer if validator else None) or client.issuer
    if require_iss and expected_issuer is None:
        raise ConfigurationError("require_iss needs an issuer", code="missing_issuer")
    scopes = scope.split() if isinstance(scope, str) else list(scope)
    state = secrets.token_urlsafe(24)
    nonce = secrets.token_urlsafe(24) if "openid" in scopes else None
    verifier, challenge = _pkce()
    listener = _Listener(path, state)
    bind = "::1" if redirect_host == "[::1]" else "127.0.0.1"
    server = await asyncio.start_server(listener.handle, bind, port, limit=_MAX_REQUEST_LINE)
    opener_task: asyncio.Task[bool] | None = None
    try:
        bound_port = server.sockets[0].getsockname()[1]
        redirect_uri = f"http://{redirect_host}:{bound_port}{path}"
        params = {
            **dict(extra_params or {}),
            "response_type": "code",
            "client_id": client.client_id,
            "redirect_uri": redirect_uri,
            "scope": " ".join(scopes),
            "state": state,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        }
        if nonce is not None:
            params["nonce"] = nonce
        url = _add_query(authorization_endpoint, params)
        opener_task = asyncio.ensure_future(_open(open_browser, url))

        async def wait() -> _Callback:
            assert opener_task is not None
            if not await opener_task:
                shown = (show_url or _print_url)(url)
                if inspect.isawaitable(shown):
                    await shown
            return await listener.result

        try:
            callback = await asyncio.wait_for(wait(), timeout)
        except asyncio.TimeoutError:
            raise OIDCError(
                f"no sign-in response arrived within {timeout:g} seconds", code="login_timeout"
            ) from None
    finally:
        server.close()
        if opener_task is not None and not opener_task.done():
            opener_task.cancel()
    answer = callback.params
    returned_iss = answer.get("iss")
    if returned_iss is not None and expected_issuer is not None and returned_iss != expected_issuer:
        # RFC 9207 section 2.4: a mix-up defence.
        raise OIDCError(
            f"authorization response came from issuer {returned_iss[:200]!r}, "
            f"expected {expected_issuer!r}",
            code="authorization_response_iss_mismatch",
        )
    if returned_iss is None and require_iss:
        raise OIDCError(
            "authorization response has no iss parameter (RFC 9207)",
            code="authorization_response_iss_missing",
        )
    if "error" in answer:
        description = answer.get("error_description")
        raise OAuthError(
            answer["error"][:128], error_description=description[:300] if description else None
        )
    code = answer.get("code")
    if not code:
        raise OIDCError("authorization response has no code", code="missing_code")
    # RFC 8707 section 2.2: a resource named in the request is named again at redemption, or
    # providers that decide the token format there (node-oidc-provider) issue an opaque token.
    tokens = await client.authorization_code(
        code=code,
        redirect_uri=redirect_uri,
        code_verifier=verifier,
        resource=(extra_params or {}).get("resource"),
    )
    if validator is not None:
        if tokens.id_token is None:
            if nonce is not None:
                raise OIDCError("the token response has no id_token", code="missing_id_token")
        else:
            expect = IDTokenExpectations(
                client_id=client.client_id, nonce=nonce, access_token=tokens.access_token
            )
            await validator.id_token(tokens.id_token, expect)
    return tokens


def _print_url(url: str) -> None:
    print(f"Open this URL in your browser to sign in:\n{url}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- CLI token storage


#: Refuse token files larger than this: a token file is a few kilobytes.
MAX_TOKEN_FILE_BYTES = 1 << 20
_FILE_VERSION = 1
_APP_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_OPTIONAL_MEMBERS = ("refresh_token", "id_token", "scope", "issued_token_type")


class TokenCipher(Protocol):
    """Encrypts the token file as a whole; ``cryptography.fernet.Fernet`` fits as is.

    ``decrypt`` raises on a wrong key or tampered data; the file is then treated as corrupt.

    Example::

        storage = FileTokenStorage.for_app("mytool", cipher=Fernet(key_from_os_keyring))
    """

    def encrypt(self, data: bytes, /) -> bytes: ...

    def decrypt(self, data: bytes, /) -> bytes: ...


class TokenStorage(Protocol):
    """Where a ``CliSession`` keeps tokens between runs, one entry per ``key``.

    Methods are synchronous (a keyring or file API usually is); ``CliSession`` calls them in a
    worker thread so the event loop never blocks. ``load`` returns None for a missing or
    unusable entry rather than raising.

    Example::

        class KeyringStorage:
            def load(self, key: str) -> TokenResponse | None: ...
            def save(self, key: str, tokens: TokenResponse) -> None: ...
            def delete(self, key: str) -> None: ...
    """

    def load(self, key: str) -> TokenResponse | None: ...

    def save(self, key: str, tokens: TokenResponse) -> None: ...

    def delete(self, key: str) -> None: ...


def default_token_path(app: str) -> Path:
    """``$XDG_CONFIG_HOME/<app>/tokens.json``, else ``~/.config/<app>/tokens.json``.

    A relative ``XDG_CONFIG_HOME`` is ignored, as the XDG Base Directory specification asks.
    On Windows the base is ``%APPDATA%``. ``app`` is a plain name (letters, digits, ``.``,
    ``_``, ``-``), never a path.

    Example::

        default_token_path("mytool")  # PosixPath('/home/ada/.config/mytool/tokens.json')
    """
    if not isinstance(app, str) or not _APP_NAME.fullmatch(app) or set(app) == {"."}:
        raise ConfigurationError(
            "app must be a plain name of letters, digits, '.', '_' and '-'",
            code="invalid_app_name",
        )
    base = os.environ.get("APPDATA") if os.name == "nt" else os.environ.get("XDG_CONFIG_HOME")
    root = Path(base) if base and Path(base).is_absolute() else Path.home() / ".config"
    return root / app / "tokens.json"


class FileTokenStorage:
    """Tokens of a command-line program in one JSON file that only its user can read.

    The file holds one entry per key (a ``CliSession`` keys by token endpoint, client and
    profile), optionally encrypted as a whole by ``cipher``. Writing is atomic: a temporary file
    created with ``os.open(..., O_CREAT | O_EXCL, 0o600)`` in the same directory (never readable
    by others, not even briefly) is filled, flushed to disk and moved over the old file with
    ``os.replace``. A missing directory is created with mode 0700.

    Reading is defensive, and never raises for a bad file: a file that is a symlink, is not a
    regular file, belongs to another user or grants any permission to group or others
    (``mode & 0o077``) is *ignored with a warning* (code ``insecure_token_file``), as ssh does
    with an unprotected key; the next save replaces it with a private file. An unreadable,
    oversized, undecryptable or malformed file is ignored the same way (``corrupt_token_file``).
    The program then simply signs in again. Ownership and mode checks apply on POSIX systems.

    Concurrent runs of the same program are not locked against each other: the last save wins.

    Example::

        storage = FileTokenStorage.for_app("mytool")   # ~/.config/mytool/tokens.json
        storage = FileTokenStorage("/run/user/1000/mytool-tokens.json")
    """

    def __init__(self, path: str | os.PathLike[str], *, cipher: TokenCipher | None = None) -> None:
        self.path = Path(path)
        self.cipher = cipher

    @classmethod
    def for_app(cls, app: str, *, cipher: TokenCipher | None = None) -> FileTokenStorage:
        """Storage at ``default_token_path(app)``.

        Example::

            storage = FileTokenStorage.for_app("mytool")
        """
        return cls(default_token_path(app), cipher=cipher)

    def __repr__(self) -> str:
        return f"FileTokenStorage({str(self.path)!r}, encrypted={self.cipher is not None})"

    def load(self, key: str) -> TokenResponse | None:
        """The entry stored under ``key``, or None (missing, insecure or corrupt file)."""
        entry = self._read().get(key)
        if entry is None:
            return None
        tokens = _tokens_from_entry(entry)
        if tokens is None:
            self._warn("corrupt_token_file", "an entry is malformed")
        return tokens

    def save(self, key: str, tokens: TokenResponse) -> None:
        """Store ``tokens`` under ``key``, keeping the other entries, atomically."""
        entries = self._read()
        entries[key] = tokens.to_dict()
        self._write(entries)

    def delete(self, key: str) -> None:
        """Forget the entry under ``key``; the file goes when it holds nothing else."""
        entries = self._read()
        if entries.pop(key, None) is None:
            return
        if entries:
            self._write(entries)
        else:
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()

    # -- file handling ----------------------------------------------------------------------

    def _warn(self, code: str, why: str) -> None:
        logger.warning("%s: ignoring token file %s: %s", code, self.path, why)

    def _read(self) -> dict[str, Any]:
        # O_NONBLOCK: a FIFO planted at the path must not hang the program (no effect on files).
        flags = os.O_RDONLY | _flag("O_NOFOLLOW") | _flag("O_CLOEXEC") | _flag("O_NONBLOCK")
        try:
            fd = os.open(self.path, flags)
        except FileNotFoundError:
            return {}
        except OSError as exc:
            # ELOOP: the path is a symlink (O_NOFOLLOW); someone may be redirecting us.
            code = "insecure_token_file" if exc.errno == errno.ELOOP else "corrupt_token_file"
            self._warn(code, f"cannot open it ({exc.strerror})")
            return {}
        try:
            problem = _insecure(os.fstat(fd))  # the opened file itself: no check-then-use race
            if problem is not None:
                self._warn("insecure_token_file", problem)
                return {}
            raw = _read_at_most(fd, MAX_TOKEN_FILE_BYTES + 1)
        except OSError as exc:
            self._warn("corrupt_token_file", f"cannot read it ({exc.strerror})")
            return {}
        finally:
            os.close(fd)
        if len(raw) > MAX_TOKEN_FILE_BYTES:
            self._warn("corrupt_token_file", "it is too large")
            return {}
        try:
            plain = self.cipher.decrypt(raw) if self.cipher is not None else raw
            document = json.loads(plain)
        except Exception:  # any cipher's failure, bad UTF-8, bad JSON: all mean "unusable"
            self._warn("corrupt_token_file", "it cannot be decrypted or parsed")
            return {}
        if not isinstance(document, dict) or document.get("version") != _FILE_VERSION:
            self._warn("corrupt_token_file", "unknown format")
            return {}
        entries = document.get("entries")
        if not isinstance(entries, dict):
            self._warn("corrupt_token_file", "unknown format")
            return {}
        return entries

    def _write(self, entries: Mapping[str, Any]) -> None:
        directory = self.path.parent
        if not directory.exists():
            directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        data = json.dumps(
            {"version": _FILE_VERSION, "entries": entries}, separators=(",", ":")
        ).encode("utf-8")
        if self.cipher is not None:
            data = self.cipher.encrypt(data)
        temporary = directory / f".{self.path.name}.{secrets.token_hex(8)}.tmp"
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | _flag("O_NOFOLLOW") | _flag("O_CLOEXEC")
        fd = os.open(temporary, flags, 0o600)
        try:
            with os.fdopen(fd, "wb") as file:
                file.write(data)
                file.flush()
                os.fsync(file.fileno())
            os.replace(temporary, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
            raise


def _flag(name: str) -> int:
    # POSIX-only open flags are absent on Windows.
    value: int = getattr(os, name, 0)
    return value


def _read_at_most(fd: int, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while size < limit:
        chunk = os.read(fd, min(65536, limit - size))
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


def _insecure(info: os.stat_result) -> str | None:
    if not stat.S_ISREG(info.st_mode):
        return "it is not a regular file"
    if os.name != "posix":
        return None
    if info.st_uid != os.getuid():
        return "it belongs to another user"
    if info.st_mode & 0o077:
        return f"its mode {stat.S_IMODE(info.st_mode):04o} lets others in (chmod 600)"
    return None


def _tokens_from_entry(entry: object) -> TokenResponse | None:
    # Strict types: the file is input like any other.
    if not isinstance(entry, dict):
        return None
    access_token, token_type = entry.get("access_token"), entry.get("token_type")
    expires_at, extras = entry.get("expires_at"), entry.get("extras", {})
    if not (isinstance(access_token, str) and access_token and isinstance(token_type, str)):
        return None
    if expires_at is not None and (
        isinstance(expires_at, bool) or not isinstance(expires_at, (int, float))
    ):
        return None
    if not isinstance(extras, dict):
        return None
    optional = {name: entry.get(name) for name in _OPTIONAL_MEMBERS}
    if not all(value is None or isinstance(value, str) for value in optional.values()):
        return None
    return TokenResponse.from_dict({**entry, "extras": extras})


# --------------------------------------------------------------------------- CLI session


class CliSession:
    """Tokens for a command-line program: reuse, refresh or sign in, and remember the result.

    ``tokens()`` loads the stored entry and

    1. returns it when the access token is valid for at least ``margin`` seconds more (judged
       on ``client.now``);
    2. otherwise, when there is a refresh token, refreshes (RFC 6749 section 6) and stores the
       answer, keeping the old refresh token (and ID token) when the server sent no new one;
    3. when the refresh is refused with ``invalid_grant`` (expired, revoked, rotated away),
       forgets the entry and runs ``login()`` (``device_login`` or ``loopback_login``), then
       stores the new tokens.

    A stored token with unknown lifetime counts as stale when it can be refreshed. When the
    token endpoint is unavailable during a refresh, a stored access token that has not yet
    expired is still returned (with a warning); otherwise ``ProviderUnavailable`` propagates
    and the stored entry is kept for the next run. Other ``OAuthError`` answers propagate.
    A failure to save is logged and the tokens are still returned. ``profile`` separates
    entries of one client (another account, another scope). Concurrent calls within one
    process share one refresh; separate processes are not locked against each other.

    ``resource`` (RFC 8707) and/or ``audience`` (Auth0) name the API the login asked for, as
    the login named it; they are sent again on every refresh (RFC 8707 section 2.2), since
    providers such as node-oidc-provider decide the token's audience and format at the token
    endpoint: without them a refreshed token is an opaque one for userinfo, not a JWT for the
    API. The API also joins the storage key, so tokens for different APIs never overwrite each
    other.

    Example::

        client = OAuthClient(client_id="mytool", auth_method="none", token_endpoint=...,
                             device_authorization_endpoint=...)
        api = "https://orders.example/api"
        session = CliSession(
            client, storage=FileTokenStorage.for_app("mytool"), resource=api,
            login=lambda: device_login(client, scope="openid offline_access", resource=api),
        )
        token = await session.access_token()
    """

    def __init__(
        self,
        client: OAuthClient,
        *,
        storage: TokenStorage,
        login: Callable[[], Awaitable[TokenResponse]],
        profile: str = "default",
        margin: float = 60.0,
        resource: str | None = None,
        audience: str | None = None,
    ) -> None:
        if not isinstance(profile, str) or not profile:
            raise ConfigurationError("profile must be a non-empty string", code="invalid_profile")
        if not 0 <= margin < 86400:
            raise ConfigurationError("margin must be within [0, 86400)", code="invalid_margin")
        for name, target in (("resource", resource), ("audience", audience)):
            if target is not None and (not isinstance(target, str) or not target):
                raise ConfigurationError(
                    f"{name} must be a non-empty string", code="invalid_target"
                )
        self.resource = resource
        self.audience = audience
        self.client = client
        self.storage = storage
        self.login = login
        self.profile = profile
        self.margin = margin
        # One load-refresh-save at a time: two concurrent refreshes would replay a rotated
        # refresh token, and servers revoke the whole grant on replay (RFC 9700 4.14.2).
        self._lock = asyncio.Lock()

    @property
    def key(self) -> str:
        """The storage key: token endpoint, client id, profile and the API (no secret in it)."""
        key = f"{self.client.token_endpoint} {self.client.client_id} {self.profile}"
        target = self.resource or self.audience
        return key if target is None else f"{key} {target}"

    def __repr__(self) -> str:
        return (
            f"CliSession(client={self.client!r}, storage={self.storage!r}, "
            f"profile={self.profile!r})"
        )

    async def tokens(self) -> TokenResponse:
        """Usable tokens: stored, refreshed or from a fresh login (see the class docstring).

        Concurrent calls on one session share a single refresh or login.
        """
        async with self._lock:
            return await self._tokens()

    async def _tokens(self) -> TokenResponse:
        stored = await asyncio.to_thread(self.storage.load, self.key)
        now = self.client.now()
        if stored is not None:
            left = stored.expires_in(now)
            if left is not None and left >= self.margin:
                return stored
            if left is None and stored.refresh_token is None:
                return stored
            if stored.refresh_token is not None:
                refreshed = await self._refresh(stored, stored.refresh_token, now)
                if refreshed is not None:
                    return refreshed
            else:
                await asyncio.to_thread(self.storage.delete, self.key)
        tokens = await self.login()
        await self._save(tokens)
        return tokens

    async def access_token(self) -> str:
        """The access token of ``tokens()``.

        Example::

            headers = {"Authorization": f"Bearer {await session.access_token()}"}
        """
        return (await self.tokens()).access_token

    async def forget(self) -> None:
        """Delete the stored tokens (a local sign-out; nothing is revoked at the server).

        Example::

            await session.forget()
        """
        await asyncio.to_thread(self.storage.delete, self.key)

    async def _refresh(
        self, stored: TokenResponse, refresh_token: str, now: float
    ) -> TokenResponse | None:
        try:
            fresh = await self.client.refresh(
                refresh_token=refresh_token, resource=self.resource, audience=self.audience
            )
        except OAuthError as exc:
            if exc.error != "invalid_grant":
                raise
            logger.info("stored refresh token refused (invalid_grant); signing in again")
            await asyncio.to_thread(self.storage.delete, self.key)
            return None
        except ProviderUnavailable as exc:
            if stored.expires_at is not None and stored.expires_at > now:
                logger.warning("refresh failed (%s); using the stored access token", exc.code)
                return stored
            raise
        kept = dataclasses.replace(
            fresh,
            refresh_token=fresh.refresh_token or refresh_token,
            id_token=fresh.id_token or stored.id_token,
        )
        await self._save(kept)
        return kept

    async def _save(self, tokens: TokenResponse) -> None:
        try:
            await asyncio.to_thread(self.storage.save, self.key, tokens)
        except Exception:  # the tokens are good for this run even if the disk is not
            logger.warning("could not save tokens to %r", self.storage, exc_info=True)


async def cached_login(
    client: OAuthClient,
    *,
    storage: TokenStorage,
    login: Callable[[], Awaitable[TokenResponse]],
    profile: str = "default",
    margin: float = 60.0,
    resource: str | None = None,
    audience: str | None = None,
) -> TokenResponse:
    """One call for a CLI: stored tokens if still good, else refreshed, else a new login.

    Shorthand for ``await CliSession(client, ...).tokens()``; see ``CliSession`` (``resource``
    or ``audience`` names the API the login asked for, sent again on refresh).

    Example::

        tokens = await cached_login(
            client, storage=FileTokenStorage.for_app("mytool"),
            login=lambda: device_login(client, scope="openid offline_access"),
        )
    """
    session = CliSession(
        client,
        storage=storage,
        login=login,
        profile=profile,
        margin=margin,
        resource=resource,
        audience=audience,
    )
    return await session.tokens()
