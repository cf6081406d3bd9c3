"""Running the demos (``demo_apps``) against node-oidc-provider: settings, servers, user tokens.

The demos are registered at node-oidc-provider under the development provider's client ids and
secrets (``webapp``, ``spa``, ``native``, ``daemon``, ``cli``, ``gateway``), so the only
settings that change are the issuer and the ports chosen for this test session.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from typing import Any
from urllib.parse import urlencode

import httpx
from demo_apps._settings import DemoName, DemoSettings

from _services import serve as serve  # the demos' tests import it from here
from oidc_asgi.client import OAuthClient

from ._browser import Browser
from ._node_op import NodeOP


def node_settings(node_op: NodeOP, demo: DemoName, **changes: Any) -> DemoSettings:
    """The settings of ``demo`` with node-oidc-provider as the issuer."""
    return DemoSettings.for_demo(demo, issuer=node_op.issuer, **changes)


def _pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


async def user_token(
    node_op: NodeOP, http: httpx.AsyncClient, *, user: str, resource: str, scope: str
) -> str:
    """An access token (RFC 9068 JWT) of ``user`` for ``resource``, from the ``web`` client's
    code flow with PKCE, ``resource`` at both endpoints (RFC 8707 2.1 and 2.2)."""
    redirect_uri = node_op.redirect_uris[0]
    verifier, challenge = _pkce()
    query = {
        "client_id": "web",
        "response_type": "code",
        "redirect_uri": redirect_uri,
        "scope": scope,
        "state": secrets.token_urlsafe(16),
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        "resource": resource,
    }
    browser = Browser(http, user=user)
    outcome = await browser.run(f"{node_op.issuer}/auth?{urlencode(query)}", until=redirect_uri)
    assert outcome.params is not None, browser.pages
    client = OAuthClient(
        client_id="web",
        client_secret=node_op.web_secret,
        token_endpoint=f"{node_op.issuer}/token",
        http_client=http,
    )
    tokens = await client.authorization_code(
        code=outcome.params["code"],
        redirect_uri=redirect_uri,
        code_verifier=verifier,
        resource=resource,
    )
    return tokens.access_token
