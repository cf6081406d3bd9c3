"""Helpers for the demo tests."""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from oidc_asgi.testing import DevProvider

ISSUER = "http://127.0.0.1:9000"
WEBAPP = "http://127.0.0.1:8000"
API = "http://127.0.0.1:8001"
GATEWAY = "http://127.0.0.1:8002"
SPA = "http://127.0.0.1:8003"
API_AUDIENCE = f"{API}/api"
GATEWAY_AUDIENCE = f"{GATEWAY}/api"


@dataclass
class Demo:
    """The provider and the API, in-process, with clients that reach them."""

    provider: DevProvider
    op_http: httpx.AsyncClient
    api_http: httpx.AsyncClient

    def token(self, *scopes: str, sub: str = "alice", audience: str = API_AUDIENCE) -> str:
        """An access token from the provider, as a user's client would get it."""
        return self.provider.mint_access_token(sub=sub, audience=audience, scopes=list(scopes))


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
