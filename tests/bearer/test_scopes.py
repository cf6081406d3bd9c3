"""Authorization rules on a valid token: exact scopes, roles, claim predicates, step-up."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from oidc_asgi.bearer import (
    AnyOf,
    ClaimCheck,
    ClaimEquals,
    ClaimIncludes,
    Principal,
    Rule,
    Scopes,
    ScopesOrRoles,
    StepUp,
)
from oidc_asgi.bearer._scopes import check_rules
from oidc_asgi.errors import ConfigurationError, TokenError

NOW = 1_800_000_000.0


def principal(
    claims: Mapping[str, Any],
    *,
    scope_claims: Sequence[str | tuple[str, ...]] = ("scope",),
    role_claims: Sequence[str | tuple[str, ...]] = ("roles",),
) -> Principal:
    full = {"iss": "https://idp.example", "sub": "alice", "exp": NOW + 60, **claims}
    return Principal.from_claims(
        full, scope_claims=scope_claims, role_claims=role_claims, client_id_claims=("client_id",)
    )


# Attack catalogue row 22 and RFC 6749 section 3.3: exact, case-sensitive scope tokens.
SCOPE_DENIALS: list[tuple[str, dict[str, Any], Sequence[str]]] = [
    ("prefix-read-all", {"scope": "read:all"}, ("scope",)),
    ("uppercase", {"scope": "READ"}, ("scope",)),
    ("prefix-of-need", {"scope": "rea"}, ("scope",)),
    ("space-joined-array-item", {"scp": ["read write"]}, ("scp",)),
    ("comma-joined", {"scope": "read,write"}, ("scope",)),
    ("tab-joined", {"scope": "read\twrite"}, ("scope",)),
    ("scope-not-string", {"permissions": {"read": True}}, ("permissions",)),
    ("scope-number-items", {"permissions": [1, 2]}, ("permissions",)),
    ("no-scope-claim", {}, ("scope",)),
    ("other-claim-not-configured", {"scp": "read"}, ("scope",)),
    ("role-is-not-scope", {"roles": ["read"]}, ("scope",)),
]


@pytest.mark.parametrize(
    ("claims", "sources"), [pytest.param(c, s, id=i) for i, c, s in SCOPE_DENIALS]
)
def test_scope_matching_is_exact(claims: dict[str, Any], sources: Sequence[str]) -> None:
    with pytest.raises(TokenError) as info:
        Scopes("read").check(principal(claims, scope_claims=sources), NOW)
    assert info.value.code == "insufficient_scope"
    assert info.value.expected == ["read"]


@pytest.mark.parametrize(
    ("claims", "sources"),
    [
        pytest.param({"scope": "write read"}, ("scope",), id="space-delimited"),
        pytest.param({"scope": "  read  "}, ("scope",), id="extra-spaces"),
        pytest.param({"scp": ["write", "read"]}, ("scp",), id="array"),
        pytest.param({"permissions": ["read"]}, ("scope", "permissions"), id="second-source"),
        pytest.param(
            {"realm_access": {"roles": ["read"]}}, (("realm_access", "roles"),), id="nested-path"
        ),
        pytest.param(
            {"https://x.example/perm": ["read"]}, ("https://x.example/perm",), id="dotted-name"
        ),
    ],
)
def test_scope_sources(claims: dict[str, Any], sources: Sequence[str]) -> None:
    Scopes("read").check(principal(claims, scope_claims=sources), NOW)


@pytest.mark.parametrize(
    ("rule", "scope", "ok"),
    [
        pytest.param(Scopes("a", "b"), "a b c", True, id="all-of-present"),
        pytest.param(Scopes("a", "b"), "a", False, id="all-of-missing-one"),
        pytest.param(Scopes("a", "b", match="any"), "b", True, id="any-of-one"),
        pytest.param(Scopes("a", "b", match="any"), "c", False, id="any-of-none"),
        pytest.param(Scopes(), "", True, id="no-scopes-required"),
    ],
)
def test_all_of_and_any_of(rule: Scopes, scope: str, ok: bool) -> None:
    p = principal({"scope": scope})
    if ok:
        rule.check(p, NOW)
    else:
        with pytest.raises(TokenError) as info:
            rule.check(p, NOW)
        assert info.value.code == "insufficient_scope"


DELEGATED_OR_APP = ScopesOrRoles(scopes=["Messages.Read"], roles=["Messages.Read.All"])


@pytest.mark.parametrize(
    ("claims", "ok"),
    [
        pytest.param({"scp": "Messages.Read"}, True, id="delegated-user-token"),
        pytest.param({"roles": ["Messages.Read.All"]}, True, id="app-token"),
        pytest.param({"scp": "Messages.Write"}, False, id="other-scope"),
        pytest.param({"roles": ["Messages.Read"]}, False, id="scope-name-as-role"),
        pytest.param({"scp": "Messages.Read.All"}, False, id="role-name-as-scope"),
        pytest.param({}, False, id="neither-scp-nor-roles"),
    ],
)
def test_delegated_scopes_or_app_roles(claims: dict[str, Any], ok: bool) -> None:
    p = principal(claims, scope_claims=("scp",))
    if ok:
        DELEGATED_OR_APP.check(p, NOW)
    else:
        with pytest.raises(TokenError) as info:
            DELEGATED_OR_APP.check(p, NOW)
        assert info.value.code == "insufficient_scope"


CLAIM_RULES: list[tuple[str, Rule, dict[str, Any], bool]] = [
    ("equals-ok", ClaimEquals("tid", "t1"), {"tid": "t1"}, True),
    ("equals-other", ClaimEquals("tid", "t1"), {"tid": "t2"}, False),
    ("equals-absent", ClaimEquals("tid", "t1"), {}, False),
    ("equals-type", ClaimEquals("level", 1), {"level": "1"}, False),
    ("equals-bool-not-int", ClaimEquals("level", 1), {"level": True}, False),
    ("equals-nested", ClaimEquals(("org", "id"), "o1"), {"org": {"id": "o1"}}, True),
    ("includes-list", ClaimIncludes("groups", "admins"), {"groups": ["users", "admins"]}, True),
    ("includes-string", ClaimIncludes("groups", "admins"), {"groups": "users admins"}, True),
    ("includes-missing", ClaimIncludes("groups", "admins"), {"groups": ["users"]}, False),
    ("includes-case", ClaimIncludes("groups", "admins"), {"groups": ["Admins"]}, False),
    ("includes-all", ClaimIncludes("groups", "a", "b"), {"groups": ["a"]}, False),
    ("includes-any", ClaimIncludes("groups", "a", "b", match="any"), {"groups": ["b"]}, True),
    (
        "check-true",
        ClaimCheck("verified", lambda c: c.get("email_verified") is True),
        {"email_verified": True},
        True,
    ),
    (
        "check-truthy-not-true",
        ClaimCheck("verified", lambda c: c.get("email_verified")),
        {"email_verified": "yes"},
        False,
    ),
    (
        "anyof-second",
        AnyOf(Scopes("admin"), ClaimIncludes("groups", "support")),
        {"groups": ["support"]},
        True,
    ),
]


@pytest.mark.parametrize(
    ("rule", "claims", "ok"), [pytest.param(r, c, o, id=i) for i, r, c, o in CLAIM_RULES]
)
def test_claim_predicates(rule: Rule, claims: dict[str, Any], ok: bool) -> None:
    p = principal(claims)
    if ok:
        rule.check(p, NOW)
    else:
        with pytest.raises(TokenError) as info:
            rule.check(p, NOW)
        assert info.value.code == "claim_rule_failed"


def test_any_of_raises_first_failure() -> None:
    with pytest.raises(TokenError) as info:
        AnyOf(Scopes("admin"), ClaimIncludes("groups", "support")).check(principal({}), NOW)
    assert info.value.code == "insufficient_scope"


STEP_UP: list[tuple[str, StepUp, dict[str, Any], str | None]] = [
    ("acr-ok", StepUp(acr_values=["loa2", "loa3"]), {"acr": "loa3"}, None),
    ("acr-weaker", StepUp(acr_values=["loa2"]), {"acr": "loa1"}, "acr"),
    ("acr-absent", StepUp(acr_values=["loa2"]), {}, "acr"),
    ("acr-not-string", StepUp(acr_values=["loa2"]), {"acr": ["loa2"]}, "acr"),
    ("max-age-ok", StepUp(max_age=300), {"auth_time": NOW - 300}, None),
    ("max-age-old", StepUp(max_age=300), {"auth_time": NOW - 301}, "auth_time"),
    ("max-age-absent", StepUp(max_age=300), {}, "auth_time"),
    ("max-age-bool", StepUp(max_age=300), {"auth_time": True}, "auth_time"),
    (
        "both-acr-fails",
        StepUp(acr_values=["loa2"], max_age=60),
        {"acr": "loa1", "auth_time": NOW},
        "acr",
    ),
]


@pytest.mark.parametrize(
    ("rule", "claims", "claim"), [pytest.param(r, c, x, id=i) for i, r, c, x in STEP_UP]
)
def test_step_up_rfc9470(rule: StepUp, claims: dict[str, Any], claim: str | None) -> None:
    p = principal(claims)
    if claim is None:
        rule.check(p, NOW)
        return
    with pytest.raises(TokenError) as info:
        rule.check(p, NOW)
    assert info.value.code == "insufficient_user_authentication"
    assert info.value.claim == claim


def test_check_rules_runs_all_in_order() -> None:
    p = principal({"scope": "read", "tid": "t1"})
    check_rules(p, [Scopes("read"), ClaimEquals("tid", "t1")], NOW)
    with pytest.raises(TokenError) as info:
        check_rules(p, [Scopes("read"), ClaimEquals("tid", "t2"), Scopes("write")], NOW)
    assert info.value.code == "claim_rule_failed"


@pytest.mark.parametrize(
    "build",
    [
        pytest.param(lambda: Scopes("read write"), id="scope-with-space"),
        pytest.param(lambda: Scopes(""), id="empty-scope"),
        pytest.param(lambda: Scopes("a", match="some"), id="bad-match"),  # type: ignore[arg-type]
        pytest.param(lambda: ScopesOrRoles(), id="scopes-or-roles-empty"),
        pytest.param(lambda: ClaimIncludes("groups"), id="includes-no-values"),
        pytest.param(lambda: StepUp(), id="step-up-empty"),
        pytest.param(lambda: StepUp(max_age=-1), id="step-up-negative"),
        pytest.param(lambda: AnyOf(), id="any-of-empty"),
    ],
)
def test_rule_configuration_errors(build: Any) -> None:
    with pytest.raises(ConfigurationError):
        build()
