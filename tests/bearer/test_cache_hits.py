"""A token answered from the verified-token cache is judged like a fresh one (RFC 6750 2.1, 3.1).

``authenticate`` answers a ``Bearer`` header whose token was verified before without awaiting
anything; these tests pin that the shortcut never accepts a request the full path would refuse.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from oidc_asgi.bearer import BearerValidator, Scopes
from oidc_asgi.bearer._scopes import Rule
from oidc_asgi.errors import TokenError

from ._support import Clock, bearer, http_scope
from .conftest import MakeValidator, MintToken


async def test_a_cache_hit_is_the_same_principal_without_key_lookups(
    validator: BearerValidator, mint: MintToken
) -> None:
    token = mint()
    first = await validator.authenticate(http_scope(bearer(token)))
    provider = validator.providers[validator.config.issuers[0]]
    misses = provider.stats.kid_misses
    for header in (f"Bearer {token}", f"bearer {token}", f"Bearer   {token}"):
        again = await validator.authenticate(http_scope([("Authorization", header)]))
        assert again is first
    assert await validator.validate(token) is first
    assert provider.stats.kid_misses == misses


@pytest.mark.parametrize(
    ("headers", "rules", "form", "code"),
    [
        pytest.param(
            "twice", [], None, "multiple_authorization_headers", id="two-headers-rfc6750-s3-1"
        ),
        pytest.param("once", [], ["abc"], "multiple_tokens", id="header-and-form-rfc6750-s2"),
        pytest.param(
            "once", [Scopes("write:messages")], None, "insufficient_scope", id="scope-rule"
        ),
        pytest.param("padded", [], None, "malformed_authorization", id="padding-in-middle"),
    ],
)
async def test_cached_token_in_a_bad_request_is_refused(
    make_validator: MakeValidator,
    mint: MintToken,
    headers: str,
    rules: Sequence[Rule],
    form: list[str] | None,
    code: str,
) -> None:
    validator = make_validator(token_sources=("header", "form"))
    token = mint()
    await validator.authenticate(http_scope(bearer(token)))
    request = {
        "once": bearer(token),
        "twice": [*bearer(token), *bearer(token)],
        "padded": [("Authorization", f"Bearer {token[:10]}={token[10:]}")],
    }[headers]
    with pytest.raises(TokenError) as info:
        await validator.authenticate(http_scope(request), form_tokens=form, rules=rules)
    assert info.value.code == code


async def test_cached_token_still_expires_on_the_header_path(
    validator: BearerValidator, mint: MintToken, clock: Clock
) -> None:
    token = mint(lifetime=100)
    await validator.authenticate(http_scope(bearer(token)))
    clock.advance(100 + validator.config.leeway + 1)
    with pytest.raises(TokenError) as info:
        await validator.authenticate(http_scope(bearer(token)))
    assert info.value.code == "token_expired"


@pytest.mark.parametrize(
    ("claims", "code"),
    [
        pytest.param(
            {"cnf": {"jkt": "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"}},
            "dpop_bound_token",
            id="dpop-bound-rfc9449-s7-2",
        ),
        pytest.param(
            {"cnf": {"x5t#S256": "bwcK0esc3ACC3DB2Y5_lESsXE8o9ltc05O89jdN-dg2"}},
            "unsupported_token_binding",
            id="mtls-bound",
        ),
    ],
)
async def test_cached_sender_constrained_token_is_still_not_a_bearer_token(
    validator: BearerValidator, mint: MintToken, claims: dict[str, Any], code: str
) -> None:
    token = mint(claims=claims)
    await validator.validate(token)  # cached: the binding is judged per request
    for _ in range(2):
        with pytest.raises(TokenError) as info:
            await validator.authenticate(http_scope(bearer(token)))
        assert info.value.code == code
