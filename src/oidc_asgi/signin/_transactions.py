"""Per-login transaction cookies: one small encrypted cookie per login attempt.

Each login gets its own cookie, named after a hash of its ``state`` (``oidc_tx.<16 chars>``)
and scoped to the callback path, so logins started in several tabs never overwrite each other
(express-openid-connect #43, authlib #285) and the cookies are sent nowhere else. The value is
a ``SessionCodec`` envelope (purpose ``transaction``) bound to the cookie name, with the
transaction TTL as its absolute lifetime, holding the issuer, ``redirect_uri``, PKCE verifier,
nonce, ``max_age``, ``acr_values``, response mode and return address.

A cap keeps headers small (ASP.NET's correlation cookies pile up, aspnet/Security #999): a tiny
signed index cookie at the application root lists the open transactions with their start times;
a new login evicts the oldest beyond ``max_transactions``. The index is advisory: if two tabs
race and one entry is lost, that transaction still works and still expires by its own
``Max-Age``.

``form_post`` (OAuth 2.0 Form Post Response Mode) delivers the response as a cross-site POST,
on which browsers send only ``SameSite=None`` cookies, so on https the transaction cookie is
``SameSite=None; Secure``. That is safe here: the cookie is encrypted, single-use, sent only to
the callback path, and useless without the matching ``state``. Over plain http ``SameSite=None``
is impossible (browsers require ``Secure``), so it stays ``Lax``; that works for loopback
development because ``http://127.0.0.1:9000`` and ``http://127.0.0.1:8000`` are the same site
(ports do not count), and the configuration warns for any other http origin. An app on
``http://localhost`` with a provider on another site sets ``cookie_secure=True``: browsers take
``Secure`` cookies from localhost, so the cookie is ``SameSite=None; Secure`` there too.
"""

from __future__ import annotations

import base64
import hashlib
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from oidc_asgi.errors import OIDCError
from oidc_asgi.sessions import CookieOptions, SessionCodec, ValueSigner
from oidc_asgi.signin._config import SignInConfig

_HASH_CHARS = 16


def state_hash(state: str) -> str:
    """A short, cookie-safe name part derived from ``state``."""
    digest = hashlib.sha256(state.encode("utf-8", "surrogatepass")).digest()
    return base64.urlsafe_b64encode(digest).decode("ascii")[:_HASH_CHARS]


class Transactions:
    """Writes, opens and removes the per-login cookies of one middleware."""

    def __init__(self, config: SignInConfig, *, now: Callable[[], float] = time.time) -> None:
        self._prefix = config.transaction_cookie
        self._ttl = config.transaction_ttl
        self._cap = config.max_transactions
        self._https = config.https
        self._now = now
        self.codec = SessionCodec(
            secrets=config.secrets,
            purpose="transaction",
            absolute_ttl=config.transaction_ttl,
            rolling_ttl=None,
            touch_after=0,
            max_bytes=4096,
            now=now,
        )
        self._signer = ValueSigner(secrets=config.secrets, purpose="transaction-index")
        secure = config.cookie_secure
        same_site: Any = "lax"
        # form_post needs SameSite=None, which browsers accept only with Secure: on https, or
        # when cookie_secure=True was asked for explicitly (browsers take Secure cookies from
        # http://localhost, so a provider on another site works in development too).
        if config.response_mode == "form_post" and (
            (config.https and secure is not False) or secure is True
        ):
            same_site = "none"
        callback = config.base_path + (config.callback_path or "/callback")
        self.options = CookieOptions(
            path=callback, domain=config.cookie_domain, secure=secure, same_site=same_site
        )
        self.index_options = CookieOptions(
            path=config.base_path or "/", domain=config.cookie_domain, secure=secure
        )

    def name(self, state: str) -> str:
        """The cookie name of the transaction whose state is ``state``."""
        return f"{self._prefix}.{state_hash(state)}"

    def start(
        self,
        state: str,
        data: Mapping[str, Any],
        cookies: Mapping[str, str],
        *,
        https: bool | None = None,
    ) -> list[str]:
        """``Set-Cookie`` values for a new transaction, evicting the oldest over the cap.

        ``https`` is whether the browser's request came over https (``base_url`` by default).
        """
        https = self._https if https is None else https
        name = self.name(state)
        value = self.codec.encode(data, cookie_name=name)
        headers = [self.options.set_cookie(name, value, https=https, max_age=self._ttl)]
        now = self._now()
        entries = [(h, t) for h, t in self._read_index(cookies) if now - t < self._ttl]
        entries.append((name.rsplit(".", 1)[1], now))
        entries.sort(key=lambda entry: entry[1])
        while len(entries) > self._cap:
            evicted, _ = entries.pop(0)
            headers.append(self.options.expire_cookie(f"{self._prefix}.{evicted}", https=https))
        headers.append(self._write_index(entries, https))
        return headers

    def open(self, state: str, cookies: Mapping[str, str]) -> dict[str, Any]:
        """Open the transaction of ``state``; ``OIDCError``: unknown_state, login_expired."""
        name = self.name(state)
        raw = cookies.get(name)
        if raw is None:
            raise OIDCError("no login transaction for this state", code="unknown_state")
        try:
            decoded = self.codec.load(raw, cookie_name=name)
        except OIDCError as exc:
            if exc.code == "session_expired":
                raise OIDCError("the login took too long", code="login_expired") from None
            raise OIDCError("login transaction unreadable", code="unknown_state") from None
        return decoded.data

    def finish(
        self, state: str | None, cookies: Mapping[str, str], *, https: bool | None = None
    ) -> list[str]:
        """``Set-Cookie`` values removing the transaction of ``state`` (success or error)."""
        https = self._https if https is None else https
        headers: list[str] = []
        if state is not None:
            name = self.name(state)
            headers.append(self.options.expire_cookie(name, https=https))
            entries = self._read_index(cookies)
            if entries:
                kept = [(h, t) for h, t in entries if h != name.rsplit(".", 1)[1]]
                if len(kept) != len(entries):
                    headers.append(self._write_index(kept, https))
        return headers

    def _read_index(self, cookies: Mapping[str, str]) -> list[tuple[str, float]]:
        raw = self._signer.unsign(cookies.get(self._prefix))
        if not raw:
            return []
        entries = []
        for item in raw.split("!"):
            hashed, _, stamp = item.partition("~")
            if len(hashed) == _HASH_CHARS and stamp.isdigit():
                entries.append((hashed, float(stamp)))
        return entries[: 4 * self._cap]

    def _write_index(self, entries: Sequence[tuple[str, float]], https: bool) -> str:
        if not entries:
            return self.index_options.expire_cookie(self._prefix, https=https)
        text = "!".join(f"{h}~{int(t)}" for h, t in entries)
        return self.index_options.set_cookie(
            self._prefix, self._signer.sign(text), https=https, max_age=self._ttl
        )
