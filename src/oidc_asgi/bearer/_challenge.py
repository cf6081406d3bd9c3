"""HTTP answers for rejected requests: RFC 6750 section 3, RFC 9470 section 3, RFC 9449 section 7.

One function, :func:`challenge_for`, turns an error raised while authenticating or authorizing
a request into a :class:`Challenge` (status, headers, optional JSON body). Every framework glue
uses it, so the FastAPI dependency, the Starlette backend and the decorator answer identically.

The table, by error ``code``:

====================================  ======  ==========================================
code                                  status  ``WWW-Authenticate``
====================================  ======  ==========================================
``missing_token``                     401     ``Bearer realm="..."`` (no ``error``, 3.1)
``invalid_request`` family            400     ``error="invalid_request"``
``insufficient_scope``,               403     ``error="insufficient_scope"`` (+ ``scope``)
``claim_rule_failed``
``insufficient_user_authentication``  401     RFC 9470: + ``acr_values`` / ``max_age``
``invalid_dpop_proof``,               401     on the ``DPoP`` challenge (RFC 9449 7.1, 9)
``use_dpop_nonce``                            (+ ``DPoP-Nonce`` header)
any other ``TokenError``              401     ``error="invalid_token"``
``ProviderUnavailable``               503     none; ``Retry-After`` instead
====================================  ======  ==========================================

Descriptions come from a fixed table, never from exception messages, so a token (or any other
request value) can never be echoed; every quoted value is filtered to the characters RFC 6750
section 3 allows (``%x20-21 / %x23-5B / %x5D-7E``).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from oidc_asgi.errors import ConfigurationError, OIDCError, ProviderUnavailable, TokenError

__all__ = ["INVALID_REQUEST_CODES", "Challenge", "challenge_for"]

log = logging.getLogger("oidc_asgi.bearer")

#: Codes answered with 400 ``invalid_request`` (RFC 6750 section 3.1).
INVALID_REQUEST_CODES = frozenset(
    {
        "invalid_request",
        "multiple_tokens",
        "multiple_authorization_headers",
        "malformed_authorization",
        "authorization_too_large",
        "multiple_dpop_proofs",
    }
)
_FORBIDDEN_CODES = frozenset({"insufficient_scope", "claim_rule_failed"})
_DPOP_CODES = frozenset({"invalid_dpop_proof", "use_dpop_nonce"})

_DESCRIPTIONS: Mapping[str, str] = {
    "multiple_tokens": "the request carries more than one access token",
    "multiple_authorization_headers": "the request carries more than one Authorization header",
    "malformed_authorization": "the Authorization header is malformed",
    "authorization_too_large": "the Authorization header is too large",
    "multiple_dpop_proofs": "the request carries more than one DPoP proof",
    "token_expired": "the access token expired",
    "token_not_yet_valid": "the access token is not valid yet",
    "token_too_old": "the access token was issued too long ago",
    "invalid_iat": "the access token was issued in the future",
    "invalid_issuer": "the access token comes from an issuer this API does not trust",
    "invalid_audience": "the access token is not meant for this API",
    "invalid_signature": "the access token signature does not verify",
    "unknown_key": "the access token was signed by a key the issuer does not publish",
    "alg_not_allowed": "the access token signature algorithm is not allowed",
    "invalid_typ": "the token is not an access token",
    "token_kind_mismatch": "the token is not an access token",
    "missing_claim": "the access token lacks a required claim",
    "invalid_claim_type": "an access token claim has the wrong type",
    "invalid_claim_value": "an access token claim has a value this API does not accept",
    "client_not_allowed": "the access token was issued to a client this API does not accept",
    "malformed_token": "the access token is malformed",
    "token_too_large": "the access token is too large",
    "unsupported_token_type": "encrypted access tokens are not accepted",
    "unsupported_crit": "the access token uses critical header extensions",
    "unsupported_header": "the access token uses an unsupported header parameter",
    "dpop_bound_token": "the access token is bound to a DPoP key and must be sent with DPoP",
    "unbound_token": "the access token is not bound to a DPoP key",
    "dpop_required": "the access token must be sent with DPoP",
    "unsupported_token_binding": "the access token is bound in a way this API cannot verify",
    "inactive_token": "the access token is not active",
    "introspection_refused": "the token could not be checked",
    "insufficient_scope": "the access token lacks a required scope",
    "claim_rule_failed": "the access token does not grant access to this resource",
    "insufficient_user_authentication": (
        "a stronger or more recent user authentication is required"
    ),
    "invalid_dpop_proof": "the DPoP proof is invalid",
    "use_dpop_nonce": "the resource server requires a nonce in the DPoP proof",
}
_DEFAULT_DESCRIPTION = "the access token is not valid"
_UNAVAILABLE: Mapping[str, str] = {
    "replay_store_unavailable": "the DPoP replay store cannot be reached",
    "replay_store_full": "the DPoP replay store is full; retry later",
}

# RFC 6750 section 3: error and error_description use %x20-21 / %x23-5B / %x5D-7E; scope
# values are scope-tokens (%x21 / %x23-5B / %x5D-7E) separated by single spaces.
_NOT_QUOTABLE = re.compile(r"[^\x20\x21\x23-\x5b\x5d-\x7e]")
_SCOPE_TOKEN = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]+")
_CLAIM_NAME = re.compile(r"[A-Za-z0-9_:.\-]{1,64}")


def _short(value: object) -> str:
    # Bounded repr: a hostile claim value cannot bloat or forge log lines (repr escapes them).
    text = repr(value)
    return text if len(text) <= 200 else text[:197] + "..."


def _quoted(value: str, limit: int = 512) -> str:
    return '"' + _NOT_QUOTABLE.sub("", value)[:limit] + '"'


def _scope_value(scopes: Collection[str]) -> str | None:
    tokens = [s for s in scopes if isinstance(s, str) and _SCOPE_TOKEN.fullmatch(s)]
    return " ".join(tokens) if tokens else None


def _params(items: Sequence[tuple[str, str]]) -> str:
    return ", ".join(f"{name}={_quoted(value)}" for name, value in items)


@dataclass(frozen=True)
class Challenge:
    """An HTTP answer to a rejected request: status, headers and an optional JSON body.

    ``error`` is the RFC 6750 / RFC 9449 / RFC 9470 error code sent (``None`` for "no
    credentials" and for 503); ``headers`` may hold ``WWW-Authenticate`` twice (``Bearer`` and
    ``DPoP``), ``Retry-After`` or ``DPoP-Nonce``.

    Example::

        challenge = challenge_for(exc, realm="api")
        return Response(challenge.body, challenge.status, headers=dict(challenge.headers))
    """

    status: int
    error: str | None
    description: str | None
    headers: tuple[tuple[str, str], ...]
    body: bytes = b""

    @property
    def media_type(self) -> str | None:
        """``application/json`` when there is a body, else ``None``."""
        return "application/json" if self.body else None

    def header_dict(self) -> dict[str, str]:
        """Headers as a dict; repeated names are joined with ``", "`` (RFC 9110 5.3).

        Example::

            raise HTTPException(challenge.status, headers=challenge.header_dict())
        """
        merged: dict[str, str] = {}
        for name, value in self.headers:
            merged[name] = f"{merged[name]}, {value}" if name in merged else value
        return merged

    def raw_headers(self) -> list[tuple[bytes, bytes]]:
        """Headers as ASGI ``(name, value)`` byte pairs, content headers included."""
        raw = [(n.lower().encode("latin-1"), v.encode("latin-1")) for n, v in self.headers]
        raw.append((b"content-length", str(len(self.body)).encode("ascii")))
        if self.body:
            raw.append((b"content-type", b"application/json"))
        return raw


def _description(exc: TokenError) -> str:
    text = _DESCRIPTIONS.get(exc.code, _DEFAULT_DESCRIPTION)
    claim = exc.claim
    if (
        exc.code in ("missing_claim", "invalid_claim_type", "invalid_claim_value")
        and isinstance(claim, str)
        and _CLAIM_NAME.fullmatch(claim)
    ):
        # Naming the claim helps the developer (pain point 9) and reveals nothing secret:
        # claim names are fixed by the configuration, never taken from the request.
        text = f"{text} ({claim})"
    return text


def _step_up_params(expected: Any) -> list[tuple[str, str]]:
    items: list[tuple[str, str]] = []
    if isinstance(expected, Mapping):
        acr = expected.get("acr_values")
        if isinstance(acr, (list, tuple)) and acr:
            items.append(("acr_values", " ".join(str(a) for a in acr)))
        max_age = expected.get("max_age")
        if isinstance(max_age, int) and not isinstance(max_age, bool):
            items.append(("max_age", str(max_age)))
    return items


def challenge_for(
    error: OIDCError,
    *,
    realm: str = "api",
    scheme: Literal["Bearer", "DPoP"] = "Bearer",
    bearer: bool = True,
    dpop_algs: Collection[str] | None = None,
    dpop_nonce: str | None = None,
    json_body: bool = False,
    debug: bool = False,
    retry_after: int = 5,
    resource_metadata: str | None = None,
) -> Challenge:
    """The exact HTTP answer for ``error`` (RFC 6750 section 3, RFC 9470 3, RFC 9449 7).

    ``scheme`` is the scheme the client used: error parameters go on that challenge. With
    ``dpop_algs`` a ``DPoP algs="..."`` challenge is sent as well (both when ``bearer``; DPoP
    only when ``bearer=False``, i.e. DPoP is required). ``dpop_nonce`` adds the ``DPoP-Nonce``
    header (RFC 9449 section 9). ``resource_metadata`` (the URL of this API's protected
    resource metadata, RFC 9728 section 5.1) is added to every challenge, so a client can
    discover which authorization server to ask. ``json_body`` adds
    ``{"error": ..., "error_description": ...}``.
    ``debug`` logs the precise reason (claim, expected, actual) at INFO; the token is never in
    an error, so it is never logged.

    Example::

        try:
            principal = await validator.authenticate(scope)
        except (TokenError, ProviderUnavailable) as exc:
            challenge = challenge_for(exc, realm="messages")
    """
    if isinstance(error, (ProviderUnavailable, ConfigurationError)):
        # The client's credentials were not judged: never 401, never a challenge.
        if isinstance(error, ConfigurationError):
            log.error("bearer: configuration error while validating a token: %s", error.code)
        seconds = error.retry_after if isinstance(error, ProviderUnavailable) else None
        retry = (("Retry-After", str(max(1, int(seconds or retry_after)))),)
        body = b""
        if json_body:
            body = json.dumps(
                {
                    "error": "temporarily_unavailable",
                    "error_description": _UNAVAILABLE.get(
                        error.code, "the token issuer cannot be reached"
                    ),
                }
            ).encode()
        log.warning("bearer: answering 503 (%s)", error.code)
        return Challenge(503, None, None, retry, body)
    if not isinstance(error, TokenError):
        raise TypeError(f"cannot build a challenge for {type(error).__name__}")

    code = error.code
    if debug:
        log.info(
            "bearer: rejected %s (claim=%s, expected=%s, actual=%s)",
            code,
            error.claim,
            _short(error.expected),
            _short(error.actual),
        )
    else:
        log.debug("bearer: rejected %s", code)

    status = 401
    wire_error: str | None
    extra: list[tuple[str, str]] = []
    if code == "missing_token":
        wire_error = None
    elif code in INVALID_REQUEST_CODES:
        status, wire_error = 400, "invalid_request"
    elif code in _FORBIDDEN_CODES:
        status, wire_error = 403, "insufficient_scope"
        if code == "insufficient_scope" and isinstance(error.expected, (list, tuple)):
            scope = _scope_value(error.expected)
            if scope:
                extra.append(("scope", scope))
    elif code == "insufficient_user_authentication":
        wire_error = code
        extra = _step_up_params(error.expected)
    elif code in _DPOP_CODES:
        wire_error = code
        scheme = "DPoP"
    else:
        wire_error = "invalid_token"
    description = None if wire_error is None else _description(error)

    error_params: list[tuple[str, str]] = []
    if wire_error is not None:
        error_params = [("error", wire_error), ("error_description", description or ""), *extra]
    headers: list[tuple[str, str]] = []
    metadata = [("resource_metadata", resource_metadata)] if resource_metadata else []
    send_bearer = bearer or dpop_algs is None
    if send_bearer:
        params = [("realm", realm)]
        if scheme == "Bearer" or dpop_algs is None:
            params += error_params
        headers.append(("WWW-Authenticate", f"Bearer {_params([*params, *metadata])}"))
    if dpop_algs is not None:
        params = [("algs", " ".join(sorted(dpop_algs)))]
        if scheme == "DPoP" or not send_bearer:
            params = [("realm", realm), *error_params, *params]
        headers.append(("WWW-Authenticate", f"DPoP {_params([*params, *metadata])}"))
    if dpop_nonce is not None:
        headers.append(("DPoP-Nonce", dpop_nonce))
    body = b""
    if json_body:
        payload: dict[str, str] = {}
        if wire_error is not None:
            payload["error"] = wire_error
            payload["error_description"] = description or ""
        else:
            payload["error_description"] = "authentication required"
        body = json.dumps(payload).encode()
    return Challenge(status, wire_error, description, tuple(headers), body)
