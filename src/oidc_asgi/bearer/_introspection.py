"""Opaque tokens through introspection (RFC 7662). Filled in below."""

from __future__ import annotations

from oidc_asgi.bearer._principal import Principal


class Introspector:
    async def introspect(self, token: str) -> tuple[Principal, float]:
        raise NotImplementedError
