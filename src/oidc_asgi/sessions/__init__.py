"""Session state for web sign-in: the encrypted cookie codec and cookie chunking.

``SessionCodec`` turns a JSON object into an AES-256-GCM envelope bound to its cookie name, with
keys derived by HKDF from a list of secrets (first encrypts, all decrypt) and absolute, rolling
and per-session lifetimes. ``ChunkedCookie`` spreads that envelope over as many cookies as the
per-cookie budget needs and expires the chunks a smaller session no longer uses.
``ValueSigner`` signs the random id a server-side store keeps in its cookie.
``CookieSessions`` and ``ServerSessions`` (over a ``MemoryStore`` or
``oidc_asgi.sessions.redis.RedisStore``) are the session backends of the sign-in middleware.

Example::

    from oidc_asgi.sessions import ChunkedCookie, SessionCodec

    codec = SessionCodec(secrets=[secret])
    jar = ChunkedCookie(name="oidc_session")
    headers = jar.write(codec.encode({"sub": "alice"}, cookie_name=jar.name),
                        cookies=request.cookies, https=True, max_age=3600)
    session = codec.decode(jar.read(request.cookies), cookie_name=jar.name)
"""

from oidc_asgi.sessions._codec import DecodedSession, SessionCodec, ValueSigner, derive_keys
from oidc_asgi.sessions.cookies import ChunkedCookie, CookieOptions
from oidc_asgi.sessions.revocation import (
    MemorySharedState,
    RedisSharedState,
    RevocationList,
    SharedState,
)
from oidc_asgi.sessions.stores import (
    CookieSessions,
    LoadedSession,
    MemoryStore,
    ServerSessions,
    SessionBackend,
    SessionStore,
    StoredRecord,
    index_key,
)

__all__ = [
    "ChunkedCookie",
    "CookieOptions",
    "CookieSessions",
    "DecodedSession",
    "LoadedSession",
    "MemorySharedState",
    "MemoryStore",
    "RedisSharedState",
    "RevocationList",
    "ServerSessions",
    "SessionBackend",
    "SessionCodec",
    "SessionStore",
    "SharedState",
    "StoredRecord",
    "ValueSigner",
    "derive_keys",
    "index_key",
]
