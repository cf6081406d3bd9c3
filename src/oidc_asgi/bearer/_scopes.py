"""Authorization rules judged on a valid token: scopes, roles, claim predicates, step-up.

A rule runs only after the token passed every validation check, so a failing rule is never a
401 ``invalid_token``: it raises ``TokenError`` with code ``insufficient_scope`` or
``claim_rule_failed`` (both answered 403 ``insufficient_scope``, RFC 6750 section 3.1), or
``insufficient_user_authentication`` (401 with ``acr_values`` / ``max_age``, RFC 9470 section 3).

Scope matching is exact and case-sensitive (RFC 6749 section 3.3): ``read`` is not granted by
``read:all``, ``READ`` or an array item ``"read write"``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

from oidc_asgi.bearer._principal import ClaimPath, Principal, claim_at, claim_values
from oidc_asgi.errors import ConfigurationError, TokenError

__all__ = [
    "AnyOf",
    "ClaimCheck",
    "ClaimEquals",
    "ClaimIncludes",
    "Rule",
    "Scopes",
    "ScopesOrRoles",
    "StepUp",
    "check_rules",
]

Match = Literal["all", "any"]


@runtime_checkable
class Rule(Protocol):
    """Something that judges a principal: returns quietly, or raises ``TokenError``.

    Example::

        class Tenant:
            def check(self, principal: Principal, now: float) -> None:
                if principal.claims.get("tid") != "t1":
                    raise TokenError("wrong tenant", code="claim_rule_failed", claim="tid")
    """

    def check(self, principal: Principal, now: float) -> None:
        """Raise ``TokenError`` when the principal does not satisfy the rule."""
        ...


def _names(values: Collection[str], what: str) -> tuple[str, ...]:
    if isinstance(values, str):
        values = (values,)
    items = tuple(values)
    for item in items:
        if not isinstance(item, str) or not item or " " in item:
            raise ConfigurationError(
                f"{what} must be non-empty strings without spaces, got {item!r}",
                code="invalid_rule",
            )
    return items


def _match(match: str) -> None:
    if match not in ("all", "any"):
        raise ConfigurationError("match must be 'all' or 'any'", code="invalid_rule")


def _satisfied(granted: frozenset[str], needed: tuple[str, ...], match: Match) -> bool:
    if match == "all":
        return all(n in granted for n in needed)
    return any(n in granted for n in needed)


@dataclass(frozen=True)
class Scopes:
    """Require scopes from the configured scope claims: all of them, or any of them.

    Example::

        Scopes("read:messages", "write:messages")           # both
        Scopes("read:messages", "admin", match="any")       # either
    """

    scopes: tuple[str, ...]
    match: Match
    _needed: frozenset[str] = field(default=frozenset(), init=False, repr=False, compare=False)

    def __init__(self, *scopes: str, match: Match = "all") -> None:
        object.__setattr__(self, "scopes", _names(scopes, "scopes"))
        _match(match)
        object.__setattr__(self, "match", match)
        # The set form, for C-speed checks (not compared, not shown).
        object.__setattr__(self, "_needed", frozenset(self.scopes))

    def check(self, principal: Principal, now: float) -> None:
        """Raise ``insufficient_scope`` unless the scopes are granted."""
        needed = self._needed
        granted = principal.scopes
        if needed and not (
            needed <= granted if self.match == "all" else not needed.isdisjoint(granted)
        ):
            raise TokenError(
                "the token lacks a required scope",
                code="insufficient_scope",
                claim="scope",
                expected=list(self.scopes),
                actual=sorted(principal.scopes),
            )


@dataclass(frozen=True, kw_only=True)
class ScopesOrRoles:
    """Delegated scopes **or** application roles (Entra ID's ``scp`` / ``roles`` split).

    A user's token (delegated) carries scopes, a daemon's token (client credentials) carries
    roles; a route serving both accepts either kind. ``match`` applies within each kind. A
    token carrying neither fails (Microsoft.Identity.Web's default: Entra issues app tokens for
    any API in the tenant, so "no roles" must not mean "anything goes").

    Example::

        ScopesOrRoles(scopes=["Messages.Read"], roles=["Messages.Read.All"])
    """

    scopes: Collection[str] = ()
    roles: Collection[str] = ()
    match: Match = "any"

    def __post_init__(self) -> None:
        object.__setattr__(self, "scopes", _names(self.scopes, "scopes"))
        object.__setattr__(self, "roles", _names(self.roles, "roles"))
        _match(self.match)
        if not self.scopes and not self.roles:
            raise ConfigurationError("ScopesOrRoles needs scopes or roles", code="invalid_rule")

    def check(self, principal: Principal, now: float) -> None:
        """Raise ``insufficient_scope`` unless the scopes or the roles are granted."""
        scopes = tuple(self.scopes)
        roles = tuple(self.roles)
        if scopes and _satisfied(principal.scopes, scopes, self.match):
            return
        if roles and _satisfied(principal.roles, roles, self.match):
            return
        raise TokenError(
            "the token has neither the delegated scopes nor the application roles",
            code="insufficient_scope",
            claim="scope",
            expected=list(scopes),
            actual=sorted(principal.scopes),
        )


def _rule_failed(claim: ClaimPath, expected: Any, actual: Any) -> TokenError:
    name = claim if isinstance(claim, str) else ".".join(claim)
    return TokenError(
        "the token does not satisfy a claim rule",
        code="claim_rule_failed",
        claim=name,
        expected=expected,
        actual=actual,
    )


@dataclass(frozen=True)
class ClaimEquals:
    """Require a claim to equal a value exactly (type included: ``1`` is not ``"1"``).

    Example::

        ClaimEquals("tid", "72f988bf-86f1-41af-91ab-2d7cd011db47")
    """

    claim: ClaimPath
    value: Any

    def check(self, principal: Principal, now: float) -> None:
        """Raise ``claim_rule_failed`` unless the claim equals the value."""
        actual = claim_at(principal.claims, self.claim)
        if type(actual) is not type(self.value) or actual != self.value:
            raise _rule_failed(self.claim, self.value, actual)


@dataclass(frozen=True)
class ClaimIncludes:
    """Require a list claim (or space-delimited string) to include values: all, or any.

    Example::

        ClaimIncludes("groups", "admins")
        ClaimIncludes(("realm_access", "roles"), "editor", "admin", match="any")
    """

    claim: ClaimPath
    values: tuple[str, ...]
    match: Match

    def __init__(self, claim: ClaimPath, *values: str, match: Match = "all") -> None:
        if not values:
            raise ConfigurationError("ClaimIncludes needs values", code="invalid_rule")
        object.__setattr__(self, "claim", claim)
        object.__setattr__(self, "values", _names(values, "values"))
        _match(match)
        object.__setattr__(self, "match", match)

    def check(self, principal: Principal, now: float) -> None:
        """Raise ``claim_rule_failed`` unless the claim includes the values."""
        granted = claim_values(claim_at(principal.claims, self.claim))
        if not _satisfied(granted, self.values, self.match):
            raise _rule_failed(self.claim, list(self.values), sorted(granted))


@dataclass(frozen=True)
class ClaimCheck:
    """A custom predicate on the verified claims; ``name`` appears in debug logs.

    Only a predicate returning exactly ``True`` passes (a truthy string does not).

    Example::

        ClaimCheck("email_verified", lambda claims: claims.get("email_verified") is True)
    """

    name: str
    predicate: Callable[[Mapping[str, Any]], object]

    def check(self, principal: Principal, now: float) -> None:
        """Raise ``claim_rule_failed`` unless the predicate returns ``True``."""
        if self.predicate(principal.claims) is not True:
            raise _rule_failed(self.name, "predicate true", "false")


@dataclass(frozen=True, kw_only=True)
class StepUp:
    """Require a stronger or more recent user authentication (RFC 9470).

    ``acr_values`` lists acceptable ``acr`` values in preference order; ``max_age`` is the
    longest time in seconds since ``auth_time``. A shortfall is a 401
    ``insufficient_user_authentication`` challenge naming both, so the client can ask the
    authorization server for a fresh login (RFC 9470 section 4).

    Example::

        StepUp(acr_values=["urn:oidc-asgi:loa:2"], max_age=300)
    """

    acr_values: Sequence[str] = ()
    max_age: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "acr_values", _names(self.acr_values, "acr_values"))
        if self.max_age is not None and (
            isinstance(self.max_age, bool) or not isinstance(self.max_age, int) or self.max_age < 0
        ):
            raise ConfigurationError("max_age must be an int >= 0", code="invalid_rule")
        if not self.acr_values and self.max_age is None:
            raise ConfigurationError("StepUp needs acr_values or max_age", code="invalid_rule")

    def _fail(self, claim: str, actual: Any) -> TokenError:
        expected: dict[str, Any] = {}
        if self.acr_values:
            expected["acr_values"] = list(self.acr_values)
        if self.max_age is not None:
            expected["max_age"] = self.max_age
        return TokenError(
            "the user authentication is not strong or recent enough",
            code="insufficient_user_authentication",
            claim=claim,
            expected=expected,
            actual=actual,
        )

    def check(self, principal: Principal, now: float) -> None:
        """Raise ``insufficient_user_authentication`` on a weak or old authentication."""
        claims = principal.claims
        if self.acr_values:
            acr = claims.get("acr")
            if not isinstance(acr, str) or acr not in self.acr_values:
                raise self._fail("acr", acr)
        if self.max_age is not None:
            auth_time = claims.get("auth_time")
            if (
                isinstance(auth_time, bool)
                or not isinstance(auth_time, (int, float))
                or not math.isfinite(auth_time)
                or now - auth_time > self.max_age
            ):
                raise self._fail("auth_time", auth_time)


@dataclass(frozen=True)
class AnyOf:
    """Pass when any of the rules passes; otherwise raise the first rule's error.

    Example::

        AnyOf(Scopes("messages:admin"), ClaimIncludes("groups", "support"))
    """

    rules: tuple[Rule, ...] = field(default=())

    def __init__(self, *rules: Rule) -> None:
        if not rules:
            raise ConfigurationError("AnyOf needs rules", code="invalid_rule")
        object.__setattr__(self, "rules", rules)

    def check(self, principal: Principal, now: float) -> None:
        """Raise the first rule's error when no rule passes."""
        first: TokenError | None = None
        for rule in self.rules:
            try:
                rule.check(principal, now)
            except TokenError as exc:
                first = first or exc
            else:
                return
        assert first is not None
        raise first


def check_rules(principal: Principal, rules: Sequence[Rule], now: float) -> None:
    """Run every rule in order (all must pass); the first failure is raised.

    Example::

        check_rules(principal, [Scopes("read:messages"), StepUp(max_age=300)], time.time())
    """
    for rule in rules:
        rule.check(principal, now)
