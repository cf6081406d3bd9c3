"""DPoP at the resource server (RFC 9449). Filled in below."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from oidc_asgi.bearer._principal import Principal


@dataclass(frozen=True, kw_only=True)
class DPoPSettings:
    required: bool = False
    algorithms: Collection[str] = ("ES256",)


class DPoPVerifier:
    def __init__(self, settings: DPoPSettings, *, now: Any) -> None:
        self.settings = settings

    def new_nonce(self) -> str:
        raise NotImplementedError

    async def verify(self, scope: Mapping[str, Any], token: str, principal: Principal) -> None:
        raise NotImplementedError
