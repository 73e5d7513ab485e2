"""Who the client is, behind reverse proxies (issue 10; docs/DEPLOYMENT.md, "TLS at the proxy").

The TCP peer is the client unless it is one of `PUSHGATE_TRUSTED_PROXIES`. Only then are the
forwarded headers read, and only as far as the trusted hops go: anyone can write an
`X-Forwarded-For` header, but the last entry was appended by the trusted proxy that spoke to
us, the one before it by the proxy before that, and so on. Walking the list from the right,
the first address that is not a trusted proxy is the client; whatever lies to its left was
written by the client itself and is never believed.

One header is read, the first present of `X-Forwarded-For` (what load balancers append to),
`Forwarded` (RFC 7239 `for=`) and `X-Real-IP` (one address, set by the proxy). Pure: text in,
an address out.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Sequence

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address
MAX_HOPS = 32  # forwarded entries looked at, from the right (STYLE.md §15: every input bound)
MAX_HEADER_CHARS = 4096


@functools.lru_cache(maxsize=8)
def trusted_networks(spec: str) -> tuple[Network, ...]:
    """The networks of a `PUSHGATE_TRUSTED_PROXIES` value: comma-separated addresses or CIDR
    networks (an address is a /32 or /128; host bits are ignored). ValueError names the entry
    that is neither."""
    networks = []
    for part in spec.split(","):
        entry = part.strip()
        if not entry:
            continue
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            raise ValueError(
                "comma-separated IP addresses or CIDR networks such as 10.0.0.0/8 or ::1"
                f" ({entry!r} is neither)"
            ) from None
    return tuple(networks)


def client_ip(
    peer: str | None, headers: Sequence[tuple[str, str]], trusted: Sequence[Network]
) -> str | None:
    """The client's address. `peer` is the TCP peer's address, `headers` the request's
    (lower-case names, in order, repeated headers included)."""
    nearest = _address(peer) if peer is not None else None
    if nearest is None:
        return peer
    if not _is_trusted(nearest, trusted):
        return str(nearest)
    for entry in reversed(_forwarded_chain(headers)[-MAX_HOPS:]):
        hop = _address(entry)
        if hop is None:
            break  # what the trusted proxy saw cannot be read: it is the nearest we know
        if not _is_trusted(hop, trusted):
            return str(hop)
        nearest = hop
    return str(nearest)


def _forwarded_chain(headers: Sequence[tuple[str, str]]) -> list[str]:
    """The addresses of the one forwarded header in use, client first."""
    for name, split in (
        ("x-forwarded-for", _split_list),
        ("forwarded", _forwarded_for),
        ("x-real-ip", _split_list),
    ):
        values = [value for key, value in headers if key == name]
        if values:
            # Repeated header lines are one comma-separated list (RFC 9110 §5.3).
            return split(",".join(values)[-MAX_HEADER_CHARS:])
    return []


def _split_list(value: str) -> list[str]:
    return [part.strip() for part in value.split(",")]


def _forwarded_for(value: str) -> list[str]:
    """The `for=` of each RFC 7239 element; an element without one counts as unreadable."""
    found = []
    for element in value.split(","):
        found.append("")
        for pair in element.split(";"):
            key, _, param = pair.strip().partition("=")
            if key.strip().lower() == "for":
                found[-1] = param.strip().strip('"')
    return found


def _address(text: str) -> Address | None:
    """An address as proxies write it: bare, `[v6]`, `[v6]:port` or `v4:port`."""
    text = text.strip()
    if text.startswith("["):
        text = text[1:].partition("]")[0]
    elif text.count(":") == 1:
        text = text.partition(":")[0]  # IPv4 with a port
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None  # "unknown", an obfuscated name (RFC 7239 §6.3), garbage
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped  # a dual-stack socket's view of an IPv4 peer
    return address


def _is_trusted(address: Address, trusted: Sequence[Network]) -> bool:
    return any(address.version == net.version and address in net for net in trusted)
