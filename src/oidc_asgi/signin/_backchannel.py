"""Back-channel logout (OpenID Connect Back-Channel Logout 1.0) for every session backend.

The provider POSTs a form-encoded ``logout_token`` (section 2.5) with no browser and no cookie.
The route checks the request (POST, ``application/x-www-form-urlencoded``, a size cap, exactly
one ``logout_token``), validates the token per section 2.6 with
``TokenValidator.logout_token`` (signature with the issuer's keys and an algorithm allow-list,
``typ``, ``iss``, ``aud``, ``iat``/``exp``, ``events``, no ``nonce``, ``sub`` or ``sid``), refuses
a ``jti`` seen before (kept until the token's ``exp``), and ends every matching session
(section 2.7): by (``iss``, ``sid``), or by (``iss``, ``sub``) when there is no ``sid``.

Server-side sessions are deleted through their index (one lookup, no scan). Cookie sessions
cannot be deleted, so the logout goes into a ``RevocationList`` (in memory, or in Redis when
several instances run) that ``screen`` checks on every request; a session signed in after the
logout event is not affected. The app's own logout (``end_session``) goes into the same list,
by the session's random id, so a copy of a logged-out cookie is refused too.

Answers (section 2.8): 200 with ``Cache-Control: no-store`` on success; 400 with
``{"error": "invalid_request", ...}`` for any invalid request or token, naming nothing about why
(the log says, with the check's code, never the token); 503 when keys or stores are unreachable.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

from starlette.datastructures import Headers
from starlette.responses import JSONResponse, Response
from starlette.types import Receive, Scope

from oidc_asgi.errors import ProviderUnavailable, TokenError
from oidc_asgi.sessions.revocation import RevocationList, SharedState, shared_key
from oidc_asgi.sessions.stores import LoadedSession, ServerSessions, SessionBackend, index_key
from oidc_asgi.tokens import LogoutTokenExpectations, TokenValidator

if TYPE_CHECKING:
    from oidc_asgi.signin._config import SignInConfig

__all__ = ["BackchannelLogout"]

log = logging.getLogger("oidc_asgi.signin")

#: Largest request body accepted: a signed (even encrypted) logout token is far smaller.
MAX_BODY = 16 * 1024
_NO_STORE = {"Cache-Control": "no-store"}
_MAX_REPLAY_TTL = 24 * 3600.0
#: Seconds a "not revoked" answer from a shared (Redis) revocation list is reused on this
#: instance: a back-channel logout delivered to another instance ends the session here at
#: most this much later. With the in-memory list the reuse is exact (until the next write).
REMOTE_REVOCATION_CACHE = 1.0


def _signed_in_at(loaded: LoadedSession) -> float:
    """When this sign-in happened, on the provider's clock like the logout token's iat: the
    ID token's iat.

    Not auth_time: a sign-in through the provider's still-open session (SSO) after a logout by
    sub carries the *old* auth_time and would be revoked again on every request (section 2.7
    ends the sessions that exist).
    """
    auth = loaded.data.get("u")
    claims = auth.get("idc") if isinstance(auth, dict) else None
    at = claims.get("iat") if isinstance(claims, dict) else None
    if not isinstance(at, (int, float)) or isinstance(at, bool):
        at = auth.get("at") if isinstance(auth, dict) else None
    if isinstance(at, (int, float)) and not isinstance(at, bool):
        return float(at)
    return loaded.created_at


class _Refused(Exception):
    def __init__(self, reason: str, status: int = 400) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status


def _refusal(status: int, *, headers: dict[str, str] | None = None) -> Response:
    descriptions = {
        400: "the logout request or logout token is not valid",
        405: "use POST",
        413: "the request body is too large",
        503: "the logout cannot be processed now; retry later",
    }
    body = {"error": "invalid_request" if status < 500 else "temporarily_unavailable"}
    body["error_description"] = descriptions.get(status, "invalid request")
    return JSONResponse(body, status_code=status, headers={**_NO_STORE, **(headers or {})})


class BackchannelLogout:
    """The back-channel logout route and the per-request revocation check of ``OIDCAuth``.

    Built by the middleware from its configuration (``backchannel_logout_path``,
    ``logout_token_algorithms``, ``absolute_ttl`` for how long a revocation is kept) and its
    session backend and shared state.

    Example::

        backchannel = BackchannelLogout(config=config, validator=validator,
                                        sessions=backend, shared=MemorySharedState())
    """

    def __init__(
        self,
        *,
        config: SignInConfig,
        validator: TokenValidator,
        sessions: SessionBackend,
        shared: SharedState,
    ) -> None:
        self.config = config
        self._validator = validator
        self._sessions = sessions
        self._shared = shared
        self._now = config.now
        self.revocations = RevocationList(
            shared,
            ttl=config.absolute_ttl + config.leeway,
            cache_ttl=REMOTE_REVOCATION_CACHE,
            now=config.now,
        )
        self._expect = LogoutTokenExpectations(
            client_id=config.client_id, algorithms=config.logout_token_algorithms
        )

    def __repr__(self) -> str:
        return f"BackchannelLogout(sessions={type(self._sessions).__name__})"

    # ------------------------------------------------------------------ the route

    async def route(self, scope: Scope, receive: Receive, state: Any) -> Response:
        """Handle one delivery (section 2.5); ``state`` (the caller's session) is unused."""
        if scope["method"] != "POST":
            return _refusal(405, headers={"Allow": "POST"})
        try:
            token = await self._read_token(scope, receive)
            claims = await self._validator.logout_token(token, self._expect)
        except _Refused as refused:
            log.info("back-channel logout refused: %s", refused.reason)
            return _refusal(refused.status)
        except TokenError as exc:
            log.info("back-channel logout refused: %s (claim=%s)", exc.code, exc.claim)
            return _refusal(400)
        except ProviderUnavailable as exc:
            log.warning("back-channel logout: provider keys unavailable: %s", exc.code)
            return _refusal(503, headers={"Retry-After": "5"})
        issuer = str(claims["iss"])
        jti = claims.get("jti")
        if not isinstance(jti, str) or not jti:
            log.info("back-channel logout refused: invalid_jti")
            return _refusal(400)
        sid = claims.get("sid")
        sub = claims.get("sub")
        sid = sid if isinstance(sid, str) and sid else None
        sub = sub if isinstance(sub, str) and sub else None
        if sid is None and sub is None:
            log.info("back-channel logout refused: missing_sub_and_sid")
            return _refusal(400)
        exp = claims.get("exp")
        now = self._now()
        lifetime = float(exp) - now if isinstance(exp, (int, float)) else _MAX_REPLAY_TTL
        replay_ttl = min(max(lifetime, 0.0) + self.config.leeway, _MAX_REPLAY_TTL)
        replay_key = shared_key("logout-jti", issuer, jti)
        try:
            if not await self._shared.add(replay_key, "1", ttl=replay_ttl):
                log.info("back-channel logout refused: replayed_jti")
                return _refusal(400)
            try:
                ended = await self._end(issuer, sid=sid, sub=sub, event_time=claims.get("iat"))
            except ProviderUnavailable:
                # Let the provider's retry through: forget the jti of a logout not done.
                await self._shared.delete_if(replay_key, "1")
                raise
        except ProviderUnavailable as exc:
            log.warning("back-channel logout not done: %s", exc.code)
            return _refusal(503, headers={"Retry-After": "1"})
        log.info("back-channel logout: %s", ended)
        return Response(status_code=200, headers=_NO_STORE)

    async def _read_token(self, scope: Scope, receive: Receive) -> str:
        content_type = Headers(scope=scope).get("content-type", "")
        if content_type.split(";")[0].strip().lower() != "application/x-www-form-urlencoded":
            raise _Refused("unsupported_content_type")
        declared = Headers(scope=scope).get("content-length")
        # ASCII digits only: str.isdigit() is also true for "\xb2" ("²"), which int() refuses.
        if (
            declared is not None
            and declared.isascii()
            and declared.isdigit()
            and int(declared) > MAX_BODY
        ):
            raise _Refused("body_too_large", 413)
        body = bytearray()
        more = True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                raise _Refused("client_disconnected")
            body += message.get("body", b"")
            if len(body) > MAX_BODY:
                raise _Refused("body_too_large", 413)
            more = bool(message.get("more_body", False))
        try:
            text = bytes(body).decode("ascii")
        except UnicodeDecodeError:
            raise _Refused("non_ascii_body") from None
        values = [v for k, v in parse_qsl(text, keep_blank_values=True) if k == "logout_token"]
        if len(values) != 1:
            raise _Refused("missing_logout_token" if not values else "repeated_logout_token")
        if not values[0]:
            raise _Refused("missing_logout_token")
        return values[0]

    async def _end(
        self, issuer: str, *, sid: str | None, sub: str | None, event_time: object
    ) -> str:
        kind, value = ("sid", sid) if sid is not None else ("sub", sub)
        assert value is not None
        when = float(event_time) if isinstance(event_time, (int, float)) else self._now()
        if isinstance(self._sessions, ServerSessions):
            # The same rule as for cookie sessions: a sign-in after the logout event (between
            # the token's issuance and its delivery) is not one the provider ended.
            count = await self._sessions.end_sessions(
                index_key(kind, issuer, value), only=lambda loaded: _signed_in_at(loaded) <= when
            )
            return f"{count} server session(s) ended by {kind}"
        await self.revocations.revoke(issuer, sid=sid, sub=sub, event_time=when)
        return f"cookie sessions revoked by {kind}"

    async def end_session(self, loaded: LoadedSession | None) -> None:
        """Remember that the user logged out of the cookie session ``loaded``.

        The browser's cookie is expired, but a copy of it (or one re-sent by a request that
        started before the logout) would otherwise open until its rolling or absolute limit:
        its random id goes into the revocation list for as long as it could still live.
        Server sessions need nothing here (logout deletes the record). Raises
        ``ProviderUnavailable`` when a shared state cannot be reached.
        """
        if loaded is None or isinstance(self._sessions, ServerSessions):
            return
        auth = loaded.data.get("u")
        if not isinstance(auth, dict):
            return
        issuer = auth.get("iss")
        session_id = auth.get("x")
        if type(issuer) is not str or type(session_id) is not str:
            return
        ends = loaded.created_at + self.config.absolute_ttl
        if loaded.ceiling is not None:
            ends = min(ends, loaded.ceiling)
        remaining = ends - self._now()
        if remaining > 0:
            # The leeway covers a shared state whose TTLs run on another clock (Redis).
            await self.revocations.end_session(
                issuer, session_id, ttl=remaining + self.config.leeway
            )

    # ------------------------------------------------------------------ every request

    async def screen(self, loaded: LoadedSession | None) -> LoadedSession | None:
        """``loaded``, or an empty session to expire when a logout ended it (back-channel, or
        the app's own logout of another copy of the cookie).

        Only cookie sessions need this (server sessions are deleted); one lookup of at most two
        keys (``MGET`` on Redis) per signed-in request, skipped while a remembered "not revoked"
        holds (see ``RevocationList``: exact in memory, at most ``REMOTE_REVOCATION_CACHE``
        seconds stale for a logout delivered to another instance).
        """
        if loaded is None or isinstance(self._sessions, ServerSessions):
            return loaded
        auth = loaded.data.get("u")
        if not isinstance(auth, dict):
            return loaded
        issuer = auth.get("iss")
        if not isinstance(issuer, str):
            return loaded
        sid = auth.get("sid")
        sid = sid if type(sid) is str else None
        sub = auth.get("sub")
        sub = sub if type(sub) is str else None
        x = auth.get("x")
        x = x if type(x) is str else None  # the sign-in's random id (end_session)
        signed_in_at = _signed_in_at(loaded)
        revocations = self.revocations
        if revocations.known_clean(
            issuer, sid=sid, sub=sub, signed_in_at=signed_in_at, session_id=x
        ):
            return loaded  # the common case: no I/O, no hashing
        if not await revocations.is_revoked(
            issuer, sid=sid, sub=sub, signed_in_at=signed_in_at, session_id=x
        ):
            return loaded
        log.info("session ended by logout")
        # Nothing of the session survives; needs_touch makes the response expire the cookie.
        return dataclasses.replace(loaded, data={}, needs_touch=True)
