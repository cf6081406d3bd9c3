"""Every error oidc-asgi raises, with a stable ``code`` on each.

Few classes, many codes. The tree::

    OIDCError                      root; ``code`` is a stable machine-readable string
    ├── ConfigurationError         a setting is wrong; raised at startup or on first discovery
    ├── ProviderUnavailable        the identity provider (or a shared store the check needs, such
    │                              as Redis for DPoP replay) cannot be reached and nothing usable
    │                              is cached; pillars answer 503 (never 401 or 500)
    ├── TokenError                 a token failed validation; carries ``claim``, ``expected``,
    │                              ``actual`` (never the token itself)
    └── OAuthError                 an OAuth endpoint answered with an error (RFC 6749 section 5.2);
        │                          carries ``error``, ``error_description``, ``claims``
        └── DownstreamChallenge    (``downstream.py``) an API we called asked for more: a claims
                                   challenge or step-up (RFC 9470) to pass back to our caller

Messages never contain a token, an authorization code, a secret or a cookie value: the values
put in ``expected`` and ``actual`` are claim values (issuer, audience, times, algorithm names),
which are safe to log.

Example::

    from oidc_asgi import TokenError

    try:
        claims = await validator.access_token(token, expect)
    except TokenError as exc:
        log.info("rejected: %s (claim=%s)", exc.code, exc.claim)
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "ConfigurationError",
    "OAuthError",
    "OIDCError",
    "ProviderUnavailable",
    "TokenError",
]

_MAX_REPR = 200


def _short(value: Any) -> str:
    """Render a value for a message, bounded so a hostile claim cannot bloat logs."""
    text = repr(value)
    return text if len(text) <= _MAX_REPR else text[: _MAX_REPR - 3] + "..."


class OIDCError(Exception):
    """Root of every error raised by oidc-asgi.

    ``code`` is stable across releases and safe to show; ``str(exc)`` is a human message.

    Example::

        try:
            await provider.metadata()
        except OIDCError as exc:
            print(exc.code)
    """

    code: str = "oidc_error"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={self.code!r}, message={str(self)!r})"


class ConfigurationError(OIDCError):
    """A setting is wrong: the developer must change configuration, retrying will not help.

    Example::

        Provider("http://idp.example")  # raises ConfigurationError(code="insecure_issuer")
    """

    code = "configuration_error"


class ProviderUnavailable(OIDCError):
    """A service a decision depends on cannot be reached and no usable data is cached.

    Usually the identity provider (timeout, 5xx, garbage); also a shared store whose answer a
    security check needs (Redis for DPoP replay detection), where failing open would be unsafe.

    Pillars turn this into 503 with ``Retry-After``, never 401 or 500, because the client's
    credentials were not judged.

    Example::

        try:
            keys = await provider.candidates(kid=kid, alg=alg)
        except ProviderUnavailable:
            return Response(status_code=503, headers={"Retry-After": "5"})
    """

    code = "provider_unavailable"

    def __init__(
        self, message: str, *, code: str | None = None, retry_after: int | None = None
    ) -> None:
        super().__init__(message, code=code)
        self.retry_after = retry_after


class TokenError(OIDCError):
    """A token failed one validation check.

    ``code`` names the check (``invalid_issuer``, ``token_expired``, ``alg_not_allowed``, ...);
    ``claim``, ``expected`` and ``actual`` say what was compared. The token is never included.

    Example::

        except TokenError as exc:
            assert exc.code == "invalid_audience" and exc.claim == "aud"
    """

    code = "invalid_token"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        claim: str | None = None,
        expected: Any = None,
        actual: Any = None,
    ) -> None:
        super().__init__(message, code=code)
        self.claim = claim
        self.expected = expected
        self.actual = actual

    def __str__(self) -> str:
        text = super().__str__()
        if self.claim is None:
            return text
        return (
            f"{text} (claim={self.claim!r}, expected={_short(self.expected)}, "
            f"actual={_short(self.actual)})"
        )


class OAuthError(OIDCError):
    """An OAuth 2.0 endpoint answered with an error response (RFC 6749 section 5.2).

    ``error`` is the OAuth error code (``invalid_grant``, ``authorization_pending``, ...) and is
    also the ``code``; ``claims`` carries a claims challenge when the provider sent one.

    Example::

        except OAuthError as exc:
            if exc.error == "invalid_grant":
                ...  # the refresh token is gone: sign in again
    """

    code = "oauth_error"

    def __init__(
        self,
        error: str,
        *,
        error_description: str | None = None,
        status_code: int | None = None,
        claims: str | None = None,
    ) -> None:
        message = error if not error_description else f"{error}: {error_description}"
        super().__init__(message, code=error)
        self.error = error
        self.error_description = error_description
        self.status_code = status_code
        self.claims = claims
