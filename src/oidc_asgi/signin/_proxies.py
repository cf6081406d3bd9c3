"""The request's own scheme and host, taken from forwarding headers of trusted proxies only.

``base_url`` stays authoritative for every URL the middleware builds (``redirect_uri``, return
addresses). Two decisions look at the request as the browser made it: whether cookies get
``Secure`` (``cookie_secure="auto"``) and which ``Origin`` counts as this site at logout. Behind a
TLS-terminating proxy the ASGI scope says ``http`` and the proxy's address, so the proxy's
``Forwarded`` (RFC 7239) or ``X-Forwarded-Proto``/``X-Forwarded-Host`` headers are read, but only
when the immediate peer is one of ``trusted_proxies``: from anyone else they are client input and
ignored.

With several proxies each one appends its hop, so entries are read from the right: the peer's
own entry first, then leftwards while the hop it names (``for``) is itself a trusted proxy. The
entry written by the outermost trusted proxy describes the browser's request.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from typing import NamedTuple

from starlette.types import Scope

from oidc_asgi.errors import ConfigurationError

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

_MAX_HOPS = 16


class Forwarded(NamedTuple):
    """What a trusted proxy says about the browser's request (either may be unknown)."""

    proto: str | None
    host: str | None


def parse_trusted_proxies(value: Sequence[str] | str) -> tuple[str, ...]:
    """Check ``trusted_proxies`` (IP addresses or CIDR blocks); return them normalised."""
    items = value.replace(",", " ").split() if isinstance(value, str) else list(value)
    result: list[str] = []
    for item in items:
        if not isinstance(item, str):
            raise ConfigurationError(
                "trusted_proxies must be IP addresses or CIDR blocks", code="invalid_proxy"
            )
        try:
            result.append(str(ipaddress.ip_network(item.strip(), strict=False)))
        except ValueError:
            raise ConfigurationError(
                f"trusted_proxies: {item[:64]!r} is not an IP address or CIDR block",
                code="invalid_proxy",
            ) from None
    return tuple(result)


class ProxyTrust:
    """Decides whether a peer is a trusted proxy and reads its forwarding headers."""

    __slots__ = ("_networks",)

    def __init__(self, proxies: Sequence[str]) -> None:
        self._networks: tuple[Network, ...] = tuple(ipaddress.ip_network(p) for p in proxies)

    def __bool__(self) -> bool:
        return bool(self._networks)

    def trusts(self, address: str | None) -> bool:
        if not address:
            return False
        try:
            ip = ipaddress.ip_address(address.strip().strip("[]"))
        except ValueError:
            return False
        return any(ip in network for network in self._networks)

    def forwarded(self, scope: Scope) -> Forwarded | None:
        """The browser's scheme and host as forwarded by a trusted peer, or ``None``."""
        if not self._networks:
            return None
        client = scope.get("client")
        if not client or not self.trusts(str(client[0])):
            return None
        headers: dict[bytes, list[str]] = {}
        for name, raw in scope.get("headers", ()):
            key = name.lower()
            if key in (b"forwarded", b"x-forwarded-proto", b"x-forwarded-host", b"x-forwarded-for"):
                headers.setdefault(key, []).append(raw.decode("latin-1"))
        if b"forwarded" in headers:
            entries = _rfc7239(",".join(headers[b"forwarded"]))
        else:
            protos = _split(headers.get(b"x-forwarded-proto"))
            hosts = _split(headers.get(b"x-forwarded-host"))
            fors = _split(headers.get(b"x-forwarded-for"))
            if not protos and not hosts:
                return None
            # Align from the right: each proxy appends one value to each header it sets.
            length = max(len(protos), len(hosts))
            entries = []
            for back in range(1, min(length, _MAX_HOPS) + 1):
                entries.insert(
                    0,
                    {
                        "proto": protos[-back] if back <= len(protos) else "",
                        "host": hosts[-back] if back <= len(hosts) else "",
                        "for": fors[-back] if back <= len(fors) else "",
                    },
                )
        if not entries:
            return None
        index = len(entries) - 1
        while index > 0 and self.trusts(_strip_port(entries[index].get("for", ""))):
            index -= 1
        entry = entries[index]
        proto = entry.get("proto", "").lower() or None
        if proto not in (None, "http", "https"):
            proto = None
        host = entry.get("host", "").lower() or None
        if host is not None and not _plausible_host(host):
            host = None
        return Forwarded(proto=proto, host=host)


def _split(values: list[str] | None) -> list[str]:
    if not values:
        return []
    return [part.strip() for part in ",".join(values).split(",")][-_MAX_HOPS:]


def _rfc7239(text: str) -> list[dict[str, str]]:
    """Forwarded elements (RFC 7239 section 4): ``for=...;proto=...;host=...``, comma-separated."""
    entries: list[dict[str, str]] = []
    for element in text.split(",")[-_MAX_HOPS:]:
        pairs: dict[str, str] = {}
        for pair in element.split(";"):
            name, sep, value = pair.strip().partition("=")
            if sep:
                pairs[name.strip().lower()] = value.strip().strip('"')
        entries.append(pairs)
    return entries


def _strip_port(node: str) -> str:
    node = node.strip()
    if node.startswith("["):  # "[2001:db8::1]:4711" (RFC 7239 section 6)
        return node[1:].split("]", 1)[0]
    if node.count(":") == 1:
        return node.split(":", 1)[0]
    return node


def _plausible_host(host: str) -> bool:
    # A host name or IP literal with an optional port: nothing that could smuggle a path.
    return (
        0 < len(host) <= 255
        and host.isascii()
        and all(ch.isalnum() or ch in "-.:[]_" for ch in host)
    )
