"""Testing tools: a development OpenID Provider, token minting helpers and a pytest plugin.

Nothing in ``oidc_asgi`` imports this package; it is for demos, tests and local development.

Example::

    from oidc_asgi.testing import DevProvider

    provider = DevProvider()  # the default clients, APIs and users; issuer http://127.0.0.1:9000
"""

from oidc_asgi.testing._config import DevAPI as DevAPI
from oidc_asgi.testing._config import DevClient as DevClient
from oidc_asgi.testing._config import DevProviderConfig as DevProviderConfig
from oidc_asgi.testing._config import DevUser as DevUser
from oidc_asgi.testing._keys import KeyRing as KeyRing
from oidc_asgi.testing._state import BackchannelDelivery as BackchannelDelivery
from oidc_asgi.testing.provider import DevProvider as DevProvider
from oidc_asgi.testing.signin import sign_in as sign_in
from oidc_asgi.testing.tokens import BadTokens as BadTokens
from oidc_asgi.testing.tokens import TokenFactory as TokenFactory
from oidc_asgi.testing.tokens import mint_access_token as mint_access_token

__all__ = [
    "BackchannelDelivery",
    "BadTokens",
    "DevAPI",
    "DevClient",
    "DevProvider",
    "DevProviderConfig",
    "DevUser",
    "KeyRing",
    "TokenFactory",
    "mint_access_token",
    "sign_in",
]
