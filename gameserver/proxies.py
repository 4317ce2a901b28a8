"""The client's address behind reverse proxies (sans-I/O).

Behind nginx or a cloud load balancer every TCP peer is the proxy. A proxy
names the client it forwards in ``Forwarded`` (RFC 7239: ``for=``) or in the
older ``X-Forwarded-For``. Either header is just text a client can also send,
so it is read only when the TCP peer is in ``trusted_proxies``, and then from
the right: each proxy appends the address it saw, so the rightmost entry that
is not itself a trusted proxy is the client. An entry that is no address
(``unknown``, an obfuscated ``_name``, garbage) ends the walk: the client
cannot be known, and the last trusted hop stands for it (so such clients share
one per-IP cap rather than escaping it).

``Forwarded`` wins when a request has both (it is the standard; proxies that
write it also write it correctly for IPv6).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

_PAIR = re.compile(r'\s*([A-Za-z0-9!#$%&\'*+.^_`|~-]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^;,\s]*)\s*')


def parse_address(text: str) -> Address | None:
    """An IP address from a header entry (port and IPv6 brackets removed); None if none."""
    text = text.strip()
    if text.startswith("["):
        host, bracket, _port = text[1:].partition("]")
        if not bracket:
            return None
        text = host
    elif text.count(":") == 1:  # IPv4 with a port; a bare IPv6 address has several colons
        text = text.partition(":")[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def forwarded_for(values: Iterable[str]) -> list[str]:
    """The ``for=`` of each element of ``Forwarded`` header lines, in order (RFC 7239 §4).

    An element without ``for=`` gives ``""`` (an unknown hop); quoted values are unquoted.
    """
    hops: list[str] = []
    for value in values:
        position = 0
        element: str | None = None
        while position < len(value):
            match = _PAIR.match(value, position)
            if match is None:
                return [*hops, ""]  # malformed: whatever follows is unknowable
            key, raw = match.group(1).lower(), match.group(2)
            if raw.startswith('"'):
                raw = re.sub(r"\\(.)", r"\1", raw[1:-1])
            if key == "for":
                element = raw
            position = match.end()
            separator = value[position : position + 1]
            position += 1
            if separator == ",":
                hops.append(element or "")
                element = None
            elif separator not in (";", ""):
                return [*hops, ""]
        hops.append(element or "")
    return hops


def x_forwarded_for(values: Iterable[str]) -> list[str]:
    """The entries of ``X-Forwarded-For`` header lines, in order."""
    return [entry.strip() for value in values for entry in value.split(",")]


class ProxyResolver:
    """Decides the client address of a request from its TCP peer and its headers."""

    def __init__(self, trusted: Iterable[str]) -> None:
        self.networks: list[Network] = [ipaddress.ip_network(t, strict=False) for t in trusted]

    def trusts(self, address: Address | None) -> bool:
        return address is not None and any(address in net for net in self.networks)

    def client_ip(self, peer_ip: str, headers: Iterable[tuple[str, str]]) -> str:
        """The client's address: ``peer_ip`` unless that is a trusted proxy naming another."""
        if not self.networks:
            return peer_ip
        peer = parse_address(peer_ip)
        if not self.trusts(peer):
            return peer_ip
        forwarded: list[str] = []
        xff: list[str] = []
        for name, value in headers:
            lowered = name.lower()
            if lowered == "forwarded":
                forwarded.append(value)
            elif lowered == "x-forwarded-for":
                xff.append(value)
        hops = forwarded_for(forwarded) if forwarded else x_forwarded_for(xff)
        client = str(peer)
        for hop in reversed(hops):
            address = parse_address(hop)
            if address is None:
                break  # unknown or obfuscated: the last trusted hop stands for the client
            client = str(address)
            if not self.trusts(address):
                break
        return client
