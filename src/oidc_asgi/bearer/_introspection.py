"""Opaque access tokens through token introspection (RFC 7662).

``Introspector`` asks the authorization server about a token it cannot read itself: a POST of
``token`` and ``token_type_hint=access_token`` to the introspection endpoint, authenticated
with this API's own client credentials (RFC 7662 section 2.1; the client authentication of
``OAuthClient`` is reused, so every method works: secret basic/post, ``private_key_jwt``).
The answer must say ``"active": true`` (exactly); ``BearerValidator`` then applies the same
checks as to a JWT (RFC 7662 section 4): ``iss``, ``aud``, ``exp``, ``token_type``, the
configured extra checks, and the route's scopes.

Caching (section 4 asks for care with revocation): an active answer is remembered by the
validator's verified-token cache until ``exp`` but never longer than ``max_cache_ttl``; an
inactive answer is remembered for ``negative_ttl`` seconds (short: a token may become active
only by being a new token, but a flood of random tokens must not become a flood of calls).
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any

from oidc_asgi.client import OAuthClient
from oidc_asgi.errors import ConfigurationError, OAuthError, TokenError
from oidc_asgi.provider import Provider

__all__ = ["Introspector"]

log = logging.getLogger("oidc_asgi.bearer")


class Introspector:
    """Token introspection (RFC 7662) for opaque access tokens.

    ``client`` is this API as an OAuth client of the authorization server (its credentials
    authenticate the introspection request). ``endpoint`` defaults to the issuer's
    ``introspection_endpoint`` from discovery. ``max_cache_ttl`` bounds how long an active
    answer is trusted; ``negative_ttl`` how long an inactive one is remembered.

    Example::

        client = OAuthClient(client_id="messages-api", client_secret=SECRET,
                             token_endpoint="https://idp.example.com/token")
        validator = BearerValidator(config, introspection=Introspector(client))
    """

    def __init__(
        self,
        client: OAuthClient,
        *,
        endpoint: str | None = None,
        provider: Provider | None = None,
        max_cache_ttl: float = 300.0,
        negative_ttl: float = 10.0,
        negative_cache_size: int = 4096,
        now: Callable[[], float] = time.time,
    ) -> None:
        if not isinstance(client, OAuthClient):
            raise ConfigurationError("client must be an OAuthClient", code="invalid_setting")
        if not (max_cache_ttl >= 0 and negative_ttl >= 0 and negative_cache_size >= 0):
            raise ConfigurationError(
                "cache lifetimes and sizes must be >= 0", code="invalid_setting"
            )
        self.client = client
        self.endpoint = endpoint
        self.provider = provider
        self.max_cache_ttl = float(max_cache_ttl)
        self.negative_ttl = float(negative_ttl)
        self.negative_cache_size = negative_cache_size
        self.now = now
        self.calls = 0
        self._inactive: OrderedDict[bytes, float] = OrderedDict()

    async def _endpoint(self) -> str:
        if self.endpoint is not None:
            return self.endpoint
        if self.provider is None:
            raise ConfigurationError(
                "no introspection endpoint: pass endpoint= or use a Provider",
                code="missing_endpoint",
            )
        meta = await self.provider.metadata()
        return meta.endpoint("introspection_endpoint")

    async def introspect(self, token: str) -> Mapping[str, Any]:
        """The introspection answer for an active token; ``TokenError(code="inactive_token")``
        otherwise. Raises ``ProviderUnavailable`` when the server cannot be asked, and
        ``ConfigurationError`` when it refuses this API's credentials.

        Example::

            claims = await introspector.introspect(opaque_token)
        """
        key = hashlib.sha256(token.encode("ascii", "surrogateescape")).digest()
        now = self.now()
        until = self._inactive.get(key)
        if until is not None:
            if now < until:
                raise _inactive()
            del self._inactive[key]
        url = await self._endpoint()
        self.calls += 1
        try:
            answer = await self.client.post_form(
                url, [("token", token), ("token_type_hint", "access_token")]
            )
        except OAuthError as exc:
            # The server refused *us* (invalid_client, ...): the token was not judged.
            log.error("bearer: the introspection endpoint refused this API (%s)", exc.error)
            raise ConfigurationError(
                f"introspection refused: {exc.error}", code="introspection_refused"
            ) from None
        if answer.get("active") is not True:
            # RFC 7662 2.2: anything but active true means the token is not to be used.
            if self.negative_ttl and self.negative_cache_size:
                self._inactive[key] = now + self.negative_ttl
                while len(self._inactive) > self.negative_cache_size:
                    self._inactive.popitem(last=False)
            raise _inactive()
        return answer


def _inactive() -> TokenError:
    return TokenError(
        "the authorization server says the token is not active",
        code="inactive_token",
        claim="active",
        expected=True,
        actual=False,
    )
