"""oidc-asgi: OpenID Connect and OAuth 2.0 for ASGI applications.

The names below are the public API; everything in a module whose name starts with ``_`` is not.

Example::

    from oidc_asgi import Provider

    provider = Provider("https://login.example.com/")
"""

from oidc_asgi.errors import ConfigurationError as ConfigurationError
from oidc_asgi.errors import OAuthError as OAuthError
from oidc_asgi.errors import OIDCError as OIDCError
from oidc_asgi.errors import ProviderUnavailable as ProviderUnavailable
from oidc_asgi.errors import TokenError as TokenError

__version__ = "0.1.0"

__all__ = [
    "ConfigurationError",
    "OAuthError",
    "OIDCError",
    "ProviderUnavailable",
    "TokenError",
]
