"""Security review of the session layer: what an attacker, a log or an error tracker can get
out of the codec, the cookies and the stores."""

from __future__ import annotations

import pytest

from oidc_asgi.sessions import (
    ChunkedCookie,
    CookieSessions,
    MemoryStore,
    ServerSessions,
    SessionBackend,
    SessionCodec,
)

SECRET = "review-secret-0123456789-abcdefghijklmnopqrstuvwxyz"
TOKEN = "eyJhbGciOiJSUzI1NiJ9.secret-access-token.signature"
T0 = 1_800_000_000.0


def _now() -> float:
    return T0


def _backends() -> list[object]:
    codec = SessionCodec(secrets=[SECRET], now=_now)
    return [
        pytest.param(
            CookieSessions(codec=codec, jar=ChunkedCookie(name="s"), now=_now), id="cookie"
        ),
        pytest.param(
            ServerSessions(
                store=MemoryStore(now=_now), secrets=[SECRET], cookie_name="s", now=_now
            ),
            id="memory",
        ),
    ]


def _jar(headers: list[str]) -> dict[str, str]:
    jar: dict[str, str] = {}
    for header in headers:
        name, _, value = header.split(";", 1)[0].partition("=")
        jar[name] = value
    return jar


@pytest.mark.parametrize("backend", _backends())
async def test_loaded_session_repr_holds_no_token(backend: SessionBackend) -> None:
    # Error trackers (Sentry's frame locals) and "%r" log lines print reprs: a loaded session
    # sits in a local of every request, and its data holds the ID, access and refresh tokens.
    data = {"u": {"sub": "alice", "rt": TOKEN, "tok": {"": {"access_token": TOKEN}}}}
    headers = await backend.save(data, previous=None, cookies={}, https=True)
    loaded = await backend.load(_jar(headers))
    assert loaded is not None
    assert loaded.data["u"]["rt"] == TOKEN  # the data is still there, only not shown
    assert TOKEN not in repr(loaded)
    assert "created_at=" in repr(loaded)


def test_decoded_session_repr_holds_no_token() -> None:
    codec = SessionCodec(secrets=[SECRET], now=_now)
    decoded = codec.decode(codec.encode({"rt": TOKEN}, cookie_name="s"), cookie_name="s")
    assert decoded is not None
    assert decoded.data == {"rt": TOKEN}
    assert TOKEN not in repr(decoded)
