"""Web sign-in: the ``OIDCAuth`` middleware, its configuration, and what the app sees.

``OIDCAuth`` signs users in with OpenID Connect (authorization code + PKCE, per-login
transaction cookies, RFC 9207, RP-Initiated Logout) and keeps them signed in with an encrypted
session (cookie, memory or Redis). ``normalize_return_to`` is the single check every return
address passes, when a login starts and again at its callback.

Example::

    from oidc_asgi.signin import OIDCAuth, get_user

    app.add_middleware(OIDCAuth, issuer="https://login.example.com/", client_id="webapp",
                       client_secret=secret, secrets=[session_secret],
                       base_url="https://app.example.com", protect=["/account"])

    async def home(request):
        user = get_user(request)
        return PlainTextResponse(f"Hello {user.display_name}" if user else "Hello stranger")
"""

from oidc_asgi.signin._api_tokens import AccessTokenUnavailable, get_access_token
from oidc_asgi.signin._config import ENV_VARIABLES, SignInConfig, SignInWarning
from oidc_asgi.signin._context import SignedInUser, SignInContext, get_context, get_user
from oidc_asgi.signin._guards import (
    AccessDenied,
    LoginRequired,
    login_required,
    require_login,
    require_user,
)
from oidc_asgi.signin._return_to import normalize_return_to
from oidc_asgi.signin.auth import UserTokenAuth
from oidc_asgi.signin.middleware import OIDCAuth

__all__ = [
    "AccessDenied",
    "AccessTokenUnavailable",
    "ENV_VARIABLES",
    "LoginRequired",
    "OIDCAuth",
    "SignInConfig",
    "SignInContext",
    "SignInWarning",
    "SignedInUser",
    "UserTokenAuth",
    "get_access_token",
    "get_context",
    "get_user",
    "login_required",
    "normalize_return_to",
    "require_login",
    "require_user",
]
