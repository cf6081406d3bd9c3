"""``Principal``: who is calling, as established from a validated access token."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeAlias

from oidc_asgi.tokens import Claims

__all__ = ["ClaimPath", "Principal", "claim_at", "claim_values"]

#: A claim name, or a path into nested objects (Keycloak's ``("realm_access", "roles")``).
#: A tuple rather than a dotted string because claim names may contain dots
#: (Auth0's namespaced ``"https://example.com/roles"``).
ClaimPath: TypeAlias = "str | tuple[str, ...]"

_MAX_ACT_DEPTH = 16
_EMPTY = frozenset({""})


def claim_at(claims: Mapping[str, Any], path: ClaimPath) -> Any:
    """The value at ``path`` in ``claims``, or ``None`` when any step is missing.

    Example::

        roles = claim_at(claims, ("realm_access", "roles"))
    """
    if isinstance(path, str):
        return claims.get(path)
    value: Any = claims
    for step in path:
        if not isinstance(value, Mapping):
            return None
        value = value.get(step)
    return value


def claim_values(value: Any) -> frozenset[str]:
    """The values a scope-like claim grants, matched exactly and case-sensitively.

    A string is a space-delimited list (RFC 6749 section 3.3, RFC 9068 2.2.3); an array holds
    one value per item and items are **not** split, so ``["read write"]`` grants neither
    ``read`` nor ``write`` (attack catalogue row 22). Anything else grants nothing.

    Example::

        assert claim_values("read write") == {"read", "write"}
    """
    if isinstance(value, str):
        values = frozenset(value.split(" "))
        return values - _EMPTY if "" in values else values  # "a  b": the empty item is no value
    if value is None:
        return frozenset()
    if isinstance(value, list):
        return frozenset(v for v in value if isinstance(v, str) and v)
    return frozenset()


def _values(view: Mapping[str, Any], paths: Sequence[ClaimPath]) -> frozenset[str]:
    if len(paths) == 1:  # the usual configuration: one claim name
        path = paths[0]
        return claim_values(view.get(path) if type(path) is str else claim_at(view, path))
    values: frozenset[str] = frozenset()
    for path in paths:
        values |= claim_values(claim_at(view, path))
    return values


def _act_chain(claims: Mapping[str, Any]) -> tuple[Mapping[str, Any], ...]:
    chain: list[Mapping[str, Any]] = []
    act = claims.get("act")
    while isinstance(act, Mapping) and len(chain) < _MAX_ACT_DEPTH:
        chain.append({k: v for k, v in act.items() if k != "act"})
        act = act.get("act")
    return tuple(chain)


@dataclass(frozen=True, eq=False)
class Principal:
    """The caller behind a validated access token.

    ``claims`` are the verified claims; ``scopes`` are the values of the configured scope
    claims (``scope``, ``scp``, ``permissions``, ...), ``roles`` those of the role claims;
    ``subject`` is ``sub``; ``client_id`` the first configured client claim present
    (``client_id``, ``azp``, ``cid``, ``appid``); ``actors`` is the RFC 8693 section 4.1
    ``act`` chain, current actor first (each without its nested ``act``); ``token_type`` is
    ``"DPoP"`` for a sender-constrained token, ``"Bearer"`` otherwise; ``jkt`` the DPoP key
    thumbprint the token is bound to (``cnf.jkt``).

    Example::

        @app.get("/me")
        async def me(user: Annotated[Principal, Security(auth, scopes=["read:messages"])]):
            return {"sub": user.subject, "client": user.client_id, "scopes": sorted(user.scopes)}
    """

    claims: Mapping[str, Any]
    issuer: str
    subject: str | None
    client_id: str | None
    scopes: frozenset[str]
    roles: frozenset[str]
    actors: tuple[Mapping[str, Any], ...]
    expires_at: float | None
    token_type: Literal["Bearer", "DPoP"] = "Bearer"
    jkt: str | None = None

    @classmethod
    def from_claims(
        cls,
        claims: Mapping[str, Any],
        *,
        scope_claims: Sequence[ClaimPath],
        role_claims: Sequence[ClaimPath],
        client_id_claims: Sequence[str],
    ) -> Principal:
        """Build a principal from verified claims, reading scopes and roles where configured.

        Example::

            principal = Principal.from_claims(
                claims, scope_claims=("scp",), role_claims=("roles",), client_id_claims=("azp",)
            )
        """
        # Claims is an ABC Mapping whose get() runs in Python; its read-only dict view is
        # read at C speed (this runs once per distinct token on the hot path).
        view: Mapping[str, Any] = (
            claims.as_mapping() if type(claims) is Claims or isinstance(claims, Claims) else claims
        )
        scopes = _values(view, scope_claims)
        roles = _values(view, role_claims)
        client_id = None
        for name in client_id_claims:
            value = view.get(name)
            if isinstance(value, str) and value:
                client_id = value
                break
        sub = view.get("sub")
        exp = view.get("exp")
        cnf = view.get("cnf")
        jkt = cnf.get("jkt") if isinstance(cnf, Mapping) else None
        iss = view.get("iss", "")
        fields: dict[str, Any] = {
            "claims": claims,
            "issuer": iss if type(iss) is str else str(iss),
            "subject": sub if isinstance(sub, str) else None,
            "client_id": client_id,
            "scopes": scopes,
            "roles": roles,
            "actors": _act_chain(view) if "act" in view else (),
            "expires_at": float(exp)
            if isinstance(exp, (int, float)) and not isinstance(exp, bool)
            else None,
            "token_type": "DPoP" if isinstance(jkt, str) else "Bearer",
            "jkt": jkt if isinstance(jkt, str) else None,
        }
        if cls is not Principal:
            return cls(**fields)
        # Every field is set here, so the frozen dataclass's __init__ (one object.__setattr__
        # per field) is skipped: this runs once per distinct token.
        principal = object.__new__(Principal)
        object.__setattr__(principal, "__dict__", fields)
        return principal

    @property
    def actor(self) -> Mapping[str, Any] | None:
        """The current actor (the outermost ``act``), or ``None`` when nobody acts for ``sub``."""
        return self.actors[0] if self.actors else None

    def has_scopes(self, *scopes: str) -> bool:
        """True when every named scope is granted (exact, case-sensitive).

        Example::

            if principal.has_scopes("read:messages"): ...
        """
        return all(s in self.scopes for s in scopes)

    def __repr__(self) -> str:
        return (
            f"Principal(issuer={self.issuer!r}, subject={self.subject!r}, "
            f"client_id={self.client_id!r}, scopes={sorted(self.scopes)!r})"
        )
