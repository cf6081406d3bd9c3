"""The exact HTTP answers: RFC 6750 section 3, RFC 9470 section 3, RFC 9449 section 7."""

from __future__ import annotations

import json
import logging
import re

import pytest

from oidc_asgi.bearer import challenge_for
from oidc_asgi.errors import ConfigurationError, OIDCError, ProviderUnavailable, TokenError

SECRET = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJl"


def err(code: str, **kwargs: object) -> TokenError:
    # The message deliberately contains a token: it must never reach the answer.
    return TokenError(f"rejected {SECRET}", code=code, **kwargs)  # type: ignore[arg-type]


CASES: list[tuple[str, OIDCError, int, str]] = [
    ("no-credentials-rfc6750-s3-1", err("missing_token"), 401, 'Bearer realm="api"'),
    (
        "two-tokens-invalid-request",
        err("multiple_tokens"),
        400,
        'Bearer realm="api", error="invalid_request", '
        'error_description="the request carries more than one access token"',
    ),
    (
        "malformed-header-invalid-request",
        err("malformed_authorization"),
        400,
        'Bearer realm="api", error="invalid_request", '
        'error_description="the Authorization header is malformed"',
    ),
    (
        "expired-invalid-token",
        err("token_expired", claim="exp", expected=1, actual=2),
        401,
        'Bearer realm="api", error="invalid_token", error_description="the access token expired"',
    ),
    (
        "missing-claim-names-claim",
        err("missing_claim", claim="sub"),
        401,
        'Bearer realm="api", error="invalid_token", '
        'error_description="the access token lacks a required claim (sub)"',
    ),
    (
        "hostile-claim-name-not-echoed",
        err("missing_claim", claim='x" ,error="y'),
        401,
        'Bearer realm="api", error="invalid_token", '
        'error_description="the access token lacks a required claim"',
    ),
    (
        "unknown-code-is-invalid-token",
        err("something_new"),
        401,
        'Bearer realm="api", error="invalid_token", '
        'error_description="the access token is not valid"',
    ),
    (
        "insufficient-scope-with-scope",
        err("insufficient_scope", expected=["read:messages", "write:messages"]),
        403,
        'Bearer realm="api", error="insufficient_scope", '
        'error_description="the access token lacks a required scope", '
        'scope="read:messages write:messages"',
    ),
    (
        "claim-rule-403",
        err("claim_rule_failed", claim="tid"),
        403,
        'Bearer realm="api", error="insufficient_scope", '
        'error_description="the access token does not grant access to this resource"',
    ),
    (
        "step-up-rfc9470-s3",
        err(
            "insufficient_user_authentication",
            claim="acr",
            expected={"acr_values": ["loa2", "loa3"], "max_age": 300},
        ),
        401,
        'Bearer realm="api", error="insufficient_user_authentication", '
        'error_description="a stronger or more recent user authentication is required", '
        'acr_values="loa2 loa3", max_age="300"',
    ),
]


@pytest.mark.parametrize(
    ("error", "status", "header"), [pytest.param(e, s, h, id=i) for i, e, s, h in CASES]
)
def test_challenge_table(error: OIDCError, status: int, header: str) -> None:
    challenge = challenge_for(error)
    assert challenge.status == status
    assert challenge.headers == (("WWW-Authenticate", header),)
    assert challenge.body == b""
    assert SECRET not in header


# RFC 6750 section 3: error_description uses %x20-21 / %x23-5B / %x5D-7E only.
_QUOTED_VALUE = re.compile(r'"([^"]*)"')
_ALLOWED = re.compile(r"[\x20\x21\x23-\x5b\x5d-\x7e]*")


@pytest.mark.parametrize("error", [pytest.param(e, id=i) for i, e, _, _ in CASES])
def test_descriptions_use_only_allowed_characters(error: OIDCError) -> None:
    challenge = challenge_for(error, json_body=True)
    for _, value in challenge.headers:
        for quoted in _QUOTED_VALUE.findall(value):
            assert _ALLOWED.fullmatch(quoted)
    body = json.loads(challenge.body)
    assert SECRET not in challenge.body.decode()
    if challenge.error:
        assert body == {"error": challenge.error, "error_description": challenge.description}


def test_realm_and_scope_are_filtered() -> None:
    challenge = challenge_for(
        err("insufficient_scope", expected=["ok", 'bad"scope', "spa ce"]), realm="my api"
    )
    assert challenge.headers[0][1].endswith(', scope="ok"')
    assert challenge.headers[0][1].startswith('Bearer realm="my api"')


@pytest.mark.parametrize(
    ("error", "retry"),
    [
        pytest.param(ProviderUnavailable("down", retry_after=12), "12", id="provider-retry-after"),
        pytest.param(ProviderUnavailable("down"), "5", id="provider-default-retry"),
        pytest.param(ConfigurationError("bad", code="issuer_mismatch"), "5", id="config-error"),
    ],
)
def test_outage_is_503_with_retry_after(error: OIDCError, retry: str) -> None:
    challenge = challenge_for(error, json_body=True)
    assert challenge.status == 503
    assert challenge.headers == (("Retry-After", retry),)
    assert json.loads(challenge.body)["error"] == "temporarily_unavailable"


def test_both_challenges_when_dpop_allowed_rfc9449_s7_1() -> None:
    error = err("token_expired")
    via_bearer = challenge_for(error, dpop_algs=["ES256", "EdDSA"])
    assert via_bearer.headers == (
        (
            "WWW-Authenticate",
            'Bearer realm="api", error="invalid_token", '
            'error_description="the access token expired"',
        ),
        ("WWW-Authenticate", 'DPoP algs="ES256 EdDSA"'),
    )
    via_dpop = challenge_for(error, scheme="DPoP", dpop_algs=["ES256"])
    assert via_dpop.headers == (
        ("WWW-Authenticate", 'Bearer realm="api"'),
        (
            "WWW-Authenticate",
            'DPoP realm="api", error="invalid_token", '
            'error_description="the access token expired", algs="ES256"',
        ),
    )
    assert via_dpop.header_dict() == {"WWW-Authenticate": ", ".join(v for _, v in via_dpop.headers)}


def test_dpop_errors_go_on_dpop_challenge_with_nonce_rfc9449_s9() -> None:
    challenge = challenge_for(
        err("use_dpop_nonce"), dpop_algs=["ES256"], dpop_nonce="n-123", bearer=False
    )
    assert challenge.status == 401
    assert challenge.headers == (
        (
            "WWW-Authenticate",
            'DPoP realm="api", error="use_dpop_nonce", '
            'error_description="the resource server requires a nonce in the DPoP proof", '
            'algs="ES256"',
        ),
        ("DPoP-Nonce", "n-123"),
    )


def test_no_credentials_json_body_has_no_error_code() -> None:
    challenge = challenge_for(err("missing_token"), json_body=True)
    assert challenge.error is None
    assert "error" not in json.loads(challenge.body)
    assert challenge.media_type == "application/json"
    assert (b"content-type", b"application/json") in challenge.raw_headers()


def test_debug_logs_reason_without_token(caplog: pytest.LogCaptureFixture) -> None:
    error = err("invalid_audience", claim="aud", expected=["https://api"], actual=["https://x"])
    with caplog.at_level(logging.DEBUG, logger="oidc_asgi"):
        challenge_for(error, debug=True)
    assert "invalid_audience" in caplog.text
    assert "claim=aud" in caplog.text
    assert "https://x" in caplog.text
    assert SECRET not in caplog.text


def test_without_debug_only_code_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    error = err("invalid_audience", claim="aud", expected=["https://api"], actual=["https://x"])
    with caplog.at_level(logging.DEBUG, logger="oidc_asgi"):
        challenge_for(error)
    assert "invalid_audience" in caplog.text
    assert "https://x" not in caplog.text


def test_unknown_error_class_is_a_bug() -> None:
    with pytest.raises(TypeError):
        challenge_for(OIDCError("x"))


@pytest.mark.parametrize(
    ("code", "says"),
    [
        ("provider_timeout", "the token issuer cannot be reached"),
        ("replay_store_unavailable", "the DPoP replay store cannot be reached"),
        ("replay_store_full", "the DPoP replay store is full; retry later"),
    ],
)
def test_outage_body_names_what_is_down(code: str, says: str) -> None:
    challenge = challenge_for(ProviderUnavailable("down", code=code), json_body=True)
    assert challenge.status == 503
    assert challenge.body is not None
    assert json.loads(challenge.body)["error_description"] == says
