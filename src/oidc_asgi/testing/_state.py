"""In-memory state of the development provider: sessions, grants, codes, tokens, device codes.

A *grant* is one user's (or client's) authorization; every code, refresh token and access token
points at it, so revoking the grant (a reused code, a replayed refresh token, logout) revokes
everything issued from it at once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal


@dataclass
class Session:
    """The provider's own login session (the ``op_session`` cookie points at it)."""

    id: str
    sid: str
    sub: str
    auth_time: int
    acr: str
    expires_at: float
    clients: set[str] = field(default_factory=set)


@dataclass
class AuthRequest:
    """A validated authorization request waiting for the user to log in."""

    id: str
    client_id: str
    redirect_uri: str
    scope: tuple[str, ...]
    state: str | None
    nonce: str | None
    code_challenge: str | None
    response_mode: str
    resources: tuple[str, ...]
    acr_values: tuple[str, ...]
    max_age: int | None
    login_hint: str | None
    prompt: tuple[str, ...]
    expires_at: float


@dataclass
class Grant:
    id: str
    client_id: str
    sub: str
    scope: tuple[str, ...]
    resources: tuple[str, ...] = ()
    sid: str | None = None
    auth_time: int | None = None
    acr: str | None = None
    revoked: bool = False


@dataclass
class CodeRecord:
    grant_id: str
    redirect_uri: str
    code_challenge: str | None
    nonce: str | None
    expires_at: float
    used: bool = False


@dataclass
class TokenRecord:
    """An issued access token (keyed by its opaque value or its JWT ``jti``) or refresh token."""

    kind: Literal["access_token", "refresh_token"]
    grant_id: str | None
    client_id: str
    sub: str
    scope: tuple[str, ...]
    audience: str | None
    issued_at: int
    expires_at: int
    claims: dict[str, Any] = field(default_factory=dict)
    revoked: bool = False
    used: bool = False  # refresh tokens: rotated away


DeviceStatus = Literal["pending", "approved", "denied", "consumed"]


@dataclass
class DeviceRecord:
    device_code: str
    user_code: str
    client_id: str
    scope: tuple[str, ...]
    resources: tuple[str, ...]
    expires_at: float
    interval: int
    status: DeviceStatus = "pending"
    sub: str | None = None
    auth_time: int | None = None
    sid: str | None = None
    last_poll: float | None = None


@dataclass
class BackchannelDelivery:
    """One back-channel logout POST attempt; ``status_code`` is None when delivery failed.

    Example::

        [delivery] = await provider.backchannel_logout(sub="alice")
        assert delivery.status_code == 200, delivery.error
    """

    client_id: str
    uri: str
    logout_token: str
    status_code: int | None
    error: str | None = None


@dataclass
class State:
    sessions: dict[str, Session] = field(default_factory=dict)
    auth_requests: dict[str, AuthRequest] = field(default_factory=dict)
    grants: dict[str, Grant] = field(default_factory=dict)
    codes: dict[str, CodeRecord] = field(default_factory=dict)
    tokens: dict[str, TokenRecord] = field(default_factory=dict)
    devices: dict[str, DeviceRecord] = field(default_factory=dict)
    used_assertion_jtis: dict[str, float] = field(default_factory=dict)
    deliveries: list[BackchannelDelivery] = field(default_factory=list)

    def revoke_grant(self, grant_id: str) -> None:
        grant = self.grants.get(grant_id)
        if grant is not None:
            grant.revoked = True
        for record in self.tokens.values():
            if record.grant_id == grant_id:
                record.revoked = True
