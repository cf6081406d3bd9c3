"""Testing tools: a development OpenID Provider, token minting helpers and a pytest plugin.

Nothing in ``oidc_asgi`` imports this package; it is for demos, tests and local development.
Names load lazily (PEP 562), so the pytest plugin can import this package without pulling in
starlette or cryptography for projects that never use the provider.

Example::

    from oidc_asgi.testing import DevProvider

    provider = DevProvider()  # the default clients, APIs and users; issuer http://127.0.0.1:9000
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from oidc_asgi._lazy import lazy_exports

if TYPE_CHECKING:
    from oidc_asgi.testing._config import DevAPI as DevAPI
    from oidc_asgi.testing._config import DevClient as DevClient
    from oidc_asgi.testing._config import DevProviderConfig as DevProviderConfig
    from oidc_asgi.testing._config import DevUser as DevUser
    from oidc_asgi.testing._keys import KeyRing as KeyRing
    from oidc_asgi.testing._state import BackchannelDelivery as BackchannelDelivery
    from oidc_asgi.testing.provider import DevProvider as DevProvider
    from oidc_asgi.testing.signin import sign_in as sign_in
    from oidc_asgi.testing.tokens import BadIDTokens as BadIDTokens
    from oidc_asgi.testing.tokens import BadIDTokenServed as BadIDTokenServed
    from oidc_asgi.testing.tokens import BadTokens as BadTokens
    from oidc_asgi.testing.tokens import TokenFactory as TokenFactory
    from oidc_asgi.testing.tokens import mint_access_token as mint_access_token
    from oidc_asgi.testing.tokens import serve_bad_id_token as serve_bad_id_token

_WHERE = {
    "BackchannelDelivery": "oidc_asgi.testing._state",
    "BadIDTokenServed": "oidc_asgi.testing.tokens",
    "BadIDTokens": "oidc_asgi.testing.tokens",
    "BadTokens": "oidc_asgi.testing.tokens",
    "DevAPI": "oidc_asgi.testing._config",
    "DevClient": "oidc_asgi.testing._config",
    "DevProvider": "oidc_asgi.testing.provider",
    "DevProviderConfig": "oidc_asgi.testing._config",
    "DevUser": "oidc_asgi.testing._config",
    "KeyRing": "oidc_asgi.testing._keys",
    "TokenFactory": "oidc_asgi.testing.tokens",
    "mint_access_token": "oidc_asgi.testing.tokens",
    "serve_bad_id_token": "oidc_asgi.testing.tokens",
    "sign_in": "oidc_asgi.testing.signin",
}

__all__ = [
    "BackchannelDelivery",
    "BadIDTokenServed",
    "BadIDTokens",
    "BadTokens",
    "DevAPI",
    "DevClient",
    "DevProvider",
    "DevProviderConfig",
    "DevUser",
    "KeyRing",
    "TokenFactory",
    "mint_access_token",
    "serve_bad_id_token",
    "sign_in",
]

__getattr__, __dir__ = lazy_exports(globals(), _WHERE)
