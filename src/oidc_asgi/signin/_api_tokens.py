"""Access tokens for APIs, from the signed-in user's session: refreshed early, once, safely.

The session keeps token sets per audience (``u.tok``) and one refresh token (``u.rt``), all
encrypted with the rest of the session. ``get_access_token`` returns a token that stays valid
for at least a margin, refreshing it (RFC 6749 section 6) when needed:

* **single-flight**: every refresh of a session runs under a lock keyed by a hash of its
  refresh token (an ``asyncio.Lock`` in the process; plus a Redis lock when the app shares
  Redis state between instances), so fifty parallel requests cost one token request;
* **rotation grace**: the result of a refresh is kept for ``refresh_grace`` seconds under a hash
  of the refresh token it consumed (encrypted). A request that still holds the old refresh
  token (a waiter, a parallel request with an older cookie, another instance) follows that
  entry to the new tokens instead of replaying a used refresh token, which providers answer
  with ``invalid_grant`` and, with reuse detection, by revoking the whole grant;
* **write-back**: the new set goes into this request's session, written at
  ``http.response.start`` like every session change (so call this before the response starts);
  a server-side store is updated at once (compare-and-set) so other requests see it;
* **other audiences** through the same refresh token (RFC 8707 ``resource``, or Auth0's
  ``audience``): providers such as node-oidc-provider grant those named at sign-in
  (``SignInConfig.audiences``); one that refuses raises ``AccessTokenUnavailable`` with code
  ``audience_not_granted``, saying the user must sign in again with that audience (and, for
  an API not in ``audiences``, to add it there);
* ``invalid_grant`` ends the session (the refresh token is dead) and raises
  ``AccessTokenUnavailable(code="session_ended")``: a ``LoginRequired``, so an unhandled one
  sends a browser to sign in again and gives other clients 401 with a login URL.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import secrets as _secrets
from collections.abc import AsyncIterator, Collection, Mapping
from typing import TYPE_CHECKING, Any, Protocol

from starlette.requests import HTTPConnection

from oidc_asgi.client import OAuthClient
from oidc_asgi.errors import ConfigurationError, OAuthError, OIDCError, ProviderUnavailable
from oidc_asgi.provider import Provider
from oidc_asgi.sessions import SessionCodec
from oidc_asgi.sessions.revocation import SharedState, shared_key
from oidc_asgi.sessions.stores import LoadedSession, ServerSessions, SessionBackend
from oidc_asgi.signin._guards import GUARD_KEY, LoginRequired

if TYPE_CHECKING:
    from oidc_asgi.signin._config import SignInConfig

__all__ = ["TOKENS_KEY", "AccessTokenUnavailable", "ApiTokens", "get_access_token"]

log = logging.getLogger("oidc_asgi.signin")

#: Scope key of the per-request token handle the middleware puts there.
TOKENS_KEY = "oidc.tokens"
_MAX_HOPS = 4
_LOCK_TTL = 15.0  # longer than a token request may take (OAuthClient's timeout)
_SCOPE_ERRORS = frozenset({"invalid_target", "invalid_scope", "access_denied", "consent_required"})


class AccessTokenUnavailable(LoginRequired):
    """No access token can be had without signing in again; ``code`` says why.

    ``login_required`` (nobody is signed in), ``session_ended`` (the provider refused the
    refresh token with ``invalid_grant``; the session was ended), ``refresh_unavailable`` (the
    token expired and the session holds no refresh token: ask for ``offline_access``),
    ``audience_not_granted`` (the provider will not issue a token for ``audience`` or those
    ``scopes`` from this sign-in: sign in again asking for them). A ``LoginRequired``, so
    letting it escape a route answers a browser with a new sign-in and other clients with 401.

    Example::

        try:
            token = await get_access_token(request, audience="https://api.example")
        except AccessTokenUnavailable as exc:
            log.info("re-login needed: %s", exc.code)
            raise
    """

    def __init__(self, code: str, message: str, *, audience: str | None = None) -> None:
        super().__init__(reason=code)
        self.code = code
        self.message = message
        self.audience = audience

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"

    def __repr__(self) -> str:
        return f"AccessTokenUnavailable(code={self.code!r}, audience={self.audience!r})"


class _State(Protocol):
    """What this module needs of the middleware's per-request session state."""

    auth: dict[str, Any] | None
    auth_changed: bool
    clear: bool
    loaded: LoadedSession | None
    cookies: dict[str, str]


def _hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def _slot(audience: str, scopes: frozenset[str]) -> str:
    return audience if not scopes else f"{audience} {' '.join(sorted(scopes))}"


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def _newer(candidate: Mapping[str, Any], current: object) -> bool:
    if not isinstance(current, Mapping):
        return True
    new_exp, old_exp = _number(candidate.get("expires_at")), _number(current.get("expires_at"))
    if new_exp is None or old_exp is None:
        return True
    return new_exp >= old_exp


def _apply(auth: Mapping[str, Any], entry: Mapping[str, Any]) -> dict[str, Any] | None:
    """``auth`` with a refresh result applied, or ``None`` when nothing would change."""
    if (auth.get("iss"), auth.get("sub")) != (entry.get("iss"), entry.get("sub")):
        return None
    tok = dict(auth.get("tok") or {})
    changed = False
    for slot, token_set in dict(entry.get("tok") or {}).items():
        if tok.get(slot) != token_set and _newer(token_set, tok.get(slot)):
            tok[slot] = token_set
            changed = True
    new_rt = entry.get("rt")
    if isinstance(new_rt, str) and new_rt != auth.get("rt"):
        changed = True
    if not changed:
        return None
    result = dict(auth)
    result["tok"] = tok
    if isinstance(new_rt, str):
        result["rt"] = new_rt
    return result


class ApiTokens:
    """The middleware's access-token service; routes reach it through ``get_access_token``.

    Built by ``OIDCAuth`` from its configuration: ``token_min_ttl`` (the margin),
    ``refresh_grace`` (the rotation grace window), ``audience_parameter`` (``resource`` per
    RFC 8707 or ``audience`` for Auth0) and the shared state for locks and grace entries.

    Example::

        tokens = ApiTokens(config=config, provider=provider, sessions=backend,
                           shared=MemorySharedState(), distributed=False)
    """

    def __init__(
        self,
        *,
        config: SignInConfig,
        provider: Provider,
        sessions: SessionBackend,
        shared: SharedState,
        distributed: bool,
    ) -> None:
        self.config = config
        self._now = config.now
        self._provider = provider
        self._sessions = sessions
        self._server = isinstance(sessions, ServerSessions)
        self.shared = shared
        self._distributed = distributed
        self._locks: dict[str, tuple[asyncio.Lock, list[int]]] = {}
        self._client: OAuthClient | None = None
        self._codec = SessionCodec(
            secrets=config.secrets,
            purpose="refresh-grace",
            absolute_ttl=config.refresh_grace,
            rolling_ttl=None,
            touch_after=0,
            max_bytes=64 * 1024,
            now=config.now,
        )

    def __repr__(self) -> str:
        return f"ApiTokens(margin={self.config.token_min_ttl}, grace={self.config.refresh_grace})"

    async def aclose(self) -> None:
        """Close the token client's own HTTP client (an injected one stays open)."""
        if self._client is not None:
            await self._client.aclose()

    def bind(self, state: _State, scope: Mapping[str, Any]) -> _RequestTokens:
        """The handle for one request (put in the scope by the middleware)."""
        return _RequestTokens(self, state, scope)

    # ------------------------------------------------------------------ the token client

    async def _oauth_client(self) -> OAuthClient:
        if self._client is None:
            metadata = await self._provider.metadata()
            if not metadata.token_endpoint:
                raise ConfigurationError(
                    "the provider has no token_endpoint", code="missing_token_endpoint"
                )
            config = self.config
            settings: dict[str, Any] = {
                "auth_method": config.auth_method,
                "private_key": config.private_key,
                "key_id": config.key_id,
                "http_client": config.http_client,
                "allow_insecure_http": config.allow_insecure_http,
                "now": config.now,
            }
            if config.auth_method != "none":
                settings["client_secret"] = config.client_secret
            self._client = OAuthClient(
                client_id=config.client_id,
                token_endpoint=metadata.token_endpoint,
                issuer=metadata.issuer,
                **settings,
            )
        return self._client

    # ------------------------------------------------------------------ locking

    @contextlib.asynccontextmanager
    async def _locked(self, key: str) -> AsyncIterator[None]:
        lock, users = self._locks.setdefault(key, (asyncio.Lock(), [0]))
        users[0] += 1
        try:
            async with lock:
                if self._distributed:
                    async with self._shared_lock(key):
                        yield
                else:
                    yield
        finally:
            users[0] -= 1
            if users[0] == 0:
                self._locks.pop(key, None)

    @contextlib.asynccontextmanager
    async def _shared_lock(self, key: str) -> AsyncIterator[None]:
        name = shared_key("refresh-lock", key)
        owner = _secrets.token_urlsafe(16)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + _LOCK_TTL
        delay = 0.005
        # Another instance holds it: poll (its refresh takes one token request) until it is
        # released or its TTL frees it after a crash.
        while not await self.shared.add(name, owner, ttl=_LOCK_TTL):
            if loop.time() > deadline:
                raise ProviderUnavailable(
                    "another instance kept the refresh lock", code="refresh_lock_timeout"
                )
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.1)
        try:
            yield
        finally:
            await self.shared.delete_if(name, owner)

    # ------------------------------------------------------------------ the work

    def audience_key(self, audience: str | None) -> str:
        """The session slot audience: ``audience``, else the sign-in's own (``""`` if none)."""
        if audience is None:
            return self.config.audience or ""
        if not isinstance(audience, str) or not audience:
            raise ConfigurationError("audience must be a non-empty string", code="invalid_target")
        return audience

    def _pick(
        self,
        auth: Mapping[str, Any],
        audience: str,
        scopes: frozenset[str],
        margin: float,
        reject: str | None,
    ) -> dict[str, Any] | None:
        now = self._now()
        wanted_slot = _slot(audience, scopes)
        tok = auth.get("tok")
        if not isinstance(tok, Mapping):
            return None
        for slot, token_set in sorted(tok.items(), key=lambda item: item[0] != wanted_slot):
            if not isinstance(token_set, Mapping) or token_set.get("aud", slot) != audience:
                continue
            access_token = token_set.get("access_token")
            if not isinstance(access_token, str) or access_token == reject:
                continue
            if scopes and slot != wanted_slot:
                granted = str(token_set.get("scope") or "").split()
                if not scopes <= frozenset(granted):
                    continue
            expires_at = _number(token_set.get("expires_at"))
            if expires_at is not None:
                obtained = _number(token_set.get("ia"))
                # A token shorter-lived than twice the margin is still usable for half its life.
                need = margin if obtained is None else min(margin, (expires_at - obtained) / 2)
                if expires_at - now < need:
                    continue
            return dict(token_set)
        return None

    async def token_set(
        self,
        state: _State,
        scope: Mapping[str, Any],
        *,
        audience: str | None,
        scopes: Collection[str] | None,
        min_ttl: float | None,
        reject: str | None = None,
    ) -> dict[str, Any]:
        """A fresh token set for ``audience``/``scopes``; see ``get_access_token``."""
        key = self.audience_key(audience)
        if isinstance(scopes, str):
            scopes = scopes.split()
        wanted = frozenset(scopes or ())
        margin = self.config.token_min_ttl if min_ttl is None else float(min_ttl)
        if state.auth is None:
            raise self._raise(scope, "login_required", "nobody is signed in")
        found = self._pick(state.auth, key, wanted, margin, reject)
        if found is not None:
            return found
        for _ in range(_MAX_HOPS):
            await self._follow(state)
            auth = state.auth
            if auth is None:  # pragma: no cover - ended by a concurrent call of this request
                raise self._raise(scope, "session_ended", "the session has ended")
            found = self._pick(auth, key, wanted, margin, reject)
            if found is not None:
                return found
            refresh_token = auth.get("rt")
            if not isinstance(refresh_token, str) or not refresh_token:
                raise self._raise(
                    scope,
                    "refresh_unavailable",
                    "the access token expired and the session has no refresh token; sign in "
                    "again (ask for the offline_access scope to get one)",
                )
            async with self._locked(_hash(refresh_token)):
                if await self._follow(state):
                    continue  # another request refreshed while this one waited
                if await self._reread(state, scope):
                    continue
                return await self._refresh(state, scope, refresh_token, key, wanted)
        raise ProviderUnavailable("the refresh token kept changing", code="refresh_conflict")

    async def _follow(self, state: _State) -> bool:
        """Apply the rotation grace entries of the session's refresh token; whether any did."""
        changed = False
        for _ in range(_MAX_HOPS):
            auth = state.auth
            refresh_token = None if auth is None else auth.get("rt")
            if auth is None or not isinstance(refresh_token, str):
                break
            name = shared_key("refresh-grace", _hash(refresh_token))
            raw = await self.shared.get(name)
            entry = None if raw is None else self._codec.decode(raw, cookie_name=name)
            if entry is None:
                break
            updated = _apply(auth, entry.data)
            if updated is None:
                break
            await self._store(state, entry.data)
            changed = True
            if entry.data.get("rt") == refresh_token:
                break
        return changed

    async def _reread(self, state: _State, scope: Mapping[str, Any]) -> bool:
        """Server stores: take what another instance wrote since this request loaded."""
        if not self._server or state.loaded is None or state.loaded.handle is None:
            return False
        fresh = await self._sessions.load(state.cookies)
        if fresh is None:
            raise self._raise(scope, "session_ended", "the session has ended")
        stored = fresh.data.get("u")
        current = state.auth or {}
        if not isinstance(stored, dict) or stored.get("rt") == current.get("rt"):
            return False
        if (stored.get("iss"), stored.get("sub")) != (current.get("iss"), current.get("sub")):
            return False
        state.loaded = fresh
        state.auth = stored
        return True

    async def _refresh(
        self,
        state: _State,
        scope: Mapping[str, Any],
        refresh_token: str,
        audience: str,
        wanted: frozenset[str],
    ) -> dict[str, Any]:
        client = await self._oauth_client()
        by_resource = self.config.audience_parameter == "resource"
        try:
            tokens = await client.refresh(
                refresh_token=refresh_token,
                scope=sorted(wanted) if wanted else None,
                resource=audience if audience and by_resource else None,
                audience=audience if audience and not by_resource else None,
            )
        except OAuthError as exc:
            if exc.error == "invalid_grant":
                log.info("refresh refused (invalid_grant): session ended")
                await self._end(state)
                raise self._raise(
                    scope,
                    "session_ended",
                    "the provider no longer accepts this sign-in; sign in again",
                ) from None
            if exc.error in _SCOPE_ERRORS:
                log.info("refresh for another audience refused: %s", exc.error)
                if audience and audience not in self.config.audiences:
                    # RFC 8707 section 2.2: providers grant only what the sign-in asked for.
                    remedy = (
                        "it was not named at sign-in: add it to SignInConfig.audiences so "
                        "every sign-in asks for it, then the user must sign in again"
                    )
                else:
                    remedy = "the user must sign in again asking for that audience and scope"
                raise self._raise(
                    scope,
                    "audience_not_granted",
                    f"the provider will not issue a token for {audience or 'the sign-in'!r} "
                    f"from this sign-in ({exc.error}); {remedy}",
                    audience=audience or None,
                ) from None
            raise
        auth = state.auth or {}
        slot = _slot(audience, wanted)
        previous = (auth.get("tok") or {}).get(slot)
        granted = tokens.scope
        if granted is None:
            # RFC 6749 section 5.1: an omitted scope is the one requested (or the previous).
            granted = " ".join(sorted(wanted)) if wanted else (previous or {}).get("scope")
        token_set: dict[str, Any] = {
            "access_token": tokens.access_token,
            "token_type": tokens.token_type,
            "expires_at": tokens.expires_at,
            "scope": granted,
            "ia": self._now(),
            "aud": audience,
        }
        entry = {
            "iss": auth.get("iss"),
            "sub": auth.get("sub"),
            "rt": tokens.refresh_token or refresh_token,
            "tok": {slot: token_set},
        }
        name = shared_key("refresh-grace", _hash(refresh_token))
        # The grace entry first, so every waiter finds the successor before the lock opens.
        await self.shared.set(
            name, self._codec.encode(entry, cookie_name=name), ttl=self.config.refresh_grace
        )
        await self._store(state, entry)
        return token_set

    async def _store(self, state: _State, entry: Mapping[str, Any]) -> None:
        """Put a refresh result into the session: now for a server store, at response start
        for the cookie."""
        auth = state.auth
        updated = None if auth is None else _apply(auth, entry)
        if updated is None:
            return
        state.auth = updated
        loaded = state.loaded
        if not self._server or loaded is None or loaded.handle is None:
            state.auth_changed = True
            return

        def merge(current: dict[str, Any]) -> dict[str, Any]:
            stored = current.get("u")
            applied = _apply(stored, entry) if isinstance(stored, dict) else None
            return current if applied is None else {**current, "u": applied}

        # Read first: parallel requests following the same grace entry find it applied by the
        # first of them and write nothing (no compare-and-set storm).
        fresh = await self._sessions.load(state.cookies)
        stored = None if fresh is None else fresh.data.get("u")
        if fresh is None or not isinstance(stored, dict):
            return  # ended meanwhile: nothing to write back, this request keeps its tokens
        applied = _apply(stored, entry)
        if applied is not None:
            try:
                await self._sessions.save(
                    {**fresh.data, "u": applied},
                    previous=fresh,
                    cookies=state.cookies,
                    https=self.config.https,
                    merge=merge,
                )
            except OIDCError as exc:
                if exc.code != "session_store_conflict":
                    raise
                state.auth_changed = True  # written (merged) at response start instead
                return
            fresh = await self._sessions.load(state.cookies)
            stored = None if fresh is None else fresh.data.get("u")
        if fresh is not None and isinstance(stored, dict):
            state.loaded = fresh
            state.auth = stored

    async def _end(self, state: _State) -> None:
        state.clear = True
        if self._server and state.loaded is not None:
            await self._sessions.clear(state.loaded, cookies=state.cookies, https=self.config.https)

    @staticmethod
    def _raise(
        scope: Mapping[str, Any], code: str, message: str, *, audience: str | None = None
    ) -> AccessTokenUnavailable:
        exc = AccessTokenUnavailable(code, message, audience=audience)
        if isinstance(scope, dict):
            scope[GUARD_KEY] = exc  # so OIDCAuth answers it like a guard (see _guards)
        return exc


class _RequestTokens:
    """One request's view of ``ApiTokens`` (at ``scope[TOKENS_KEY]``)."""

    __slots__ = ("_scope", "_service", "_state")

    def __init__(self, service: ApiTokens, state: _State, scope: Mapping[str, Any]) -> None:
        self._service = service
        self._state = state
        self._scope = scope

    async def token_set(
        self,
        *,
        audience: str | None,
        scopes: Collection[str] | None,
        min_ttl: float | None,
        reject: str | None = None,
    ) -> dict[str, Any]:
        return await self._service.token_set(
            self._state,
            self._scope,
            audience=audience,
            scopes=scopes,
            min_ttl=min_ttl,
            reject=reject,
        )


def _handle(conn: HTTPConnection) -> _RequestTokens:
    handle = conn.scope.get(TOKENS_KEY)
    if not isinstance(handle, _RequestTokens):
        raise RuntimeError("OIDCAuth middleware is not installed around this app")
    return handle


async def get_access_token(
    conn: HTTPConnection,
    *,
    audience: str | None = None,
    scopes: Collection[str] | None = None,
    min_ttl: float | None = None,
) -> str:
    """An access token of the signed-in user for ``audience``, valid for at least ``min_ttl``.

    ``audience`` defaults to the sign-in's own (``SignInConfig.audience``); another audience is
    asked for with the refresh token (RFC 8707 ``resource``, or ``audience`` when
    ``audience_parameter="audience"``), as are ``scopes`` the stored token lacks. ``min_ttl``
    defaults to ``SignInConfig.token_min_ttl``. Refreshes are single-flight per session,
    survive refresh-token rotation races, and are written back to the session (call this
    before the response starts). Raises ``AccessTokenUnavailable`` when only a new sign-in
    can help (its ``code`` says why), ``ProviderUnavailable`` when the provider is down.

    Example::

        async def orders(request):
            token = await get_access_token(request, audience="https://orders.example/api")
            async with httpx.AsyncClient() as http:
                answer = await http.get("https://orders.example/api/orders",
                                        headers={"Authorization": f"Bearer {token}"})
    """
    token_set = await _handle(conn).token_set(audience=audience, scopes=scopes, min_ttl=min_ttl)
    return str(token_set["access_token"])


async def _token_set(
    conn: HTTPConnection,
    *,
    audience: str | None,
    scopes: Collection[str] | None,
    min_ttl: float | None,
    reject: str | None,
) -> dict[str, Any]:
    """For ``UserTokenAuth``: the whole set, skipping a token an API just refused."""
    return await _handle(conn).token_set(
        audience=audience, scopes=scopes, min_ttl=min_ttl, reject=reject
    )
