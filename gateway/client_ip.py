"""The client's IP address: the socket peer, or, when the peer is a trusted proxy, what the proxies say.

`X-Forwarded-For` is read only when the peer is in `trusted_proxies`, and then from the right: each proxy appends
the address it received the request from, so the right-most address that is not one of our proxies is the
client as our outermost proxy saw it. Everything to its left was written by the client and is ignored:

    peer 10.0.0.2 (trusted), X-Forwarded-For: 6.6.6.6, 203.0.113.9, 10.0.0.1   ->  203.0.113.9
    peer 198.51.100.7 (not trusted), X-Forwarded-For: 6.6.6.6                  ->  198.51.100.7

IPv4-mapped IPv6 addresses (`::ffff:192.0.2.1`, as dual-stack sockets report them) are read as IPv4.
"""

from __future__ import annotations

from collections.abc import Iterable
from ipaddress import IPv4Address, IPv6Address, ip_address, ip_network

from starlette.requests import HTTPConnection

IPAddress = IPv4Address | IPv6Address


class ClientIP:
    def __init__(self, trusted_proxies: Iterable[str] = ()) -> None:
        self._trusted = tuple(ip_network(cidr, strict=False) for cidr in trusted_proxies)

    def __call__(self, connection: HTTPConnection) -> IPAddress | None:
        """None only when the server does not know the peer (a Unix socket without a proxy in front)."""
        peer = parse_ip(connection.client.host) if connection.client is not None else None
        if peer is None or not self.trusted(peer):
            return peer
        client = peer
        for entry in reversed(forwarded_for(connection.headers.getlist("x-forwarded-for"))):
            address = parse_ip(entry)
            if address is None:  # not an address: nothing left of it can be trusted either
                break
            client = address
            if not self.trusted(address):
                break
        return client

    def trusted(self, address: IPAddress) -> bool:
        return any(address.version == network.version and address in network for network in self._trusted)


def forwarded_for(headers: list[str]) -> list[str]:
    """Every hop of every `X-Forwarded-For` header, in order (repeated headers are one list, RFC 9110 5.3)."""
    return [hop.strip() for header in headers for hop in header.split(",") if hop.strip()]


def parse_ip(text: str) -> IPAddress | None:
    """An address, tolerating the forms proxies write: `[2001:db8::1]:443`, `192.0.2.1:8080`, `fe80::1%eth0`."""
    text = text.strip()
    if text.startswith("["):
        text = text[1:].partition("]")[0]
    elif text.count(":") == 1:  # IPv4 with a port (IPv6 has at least two colons)
        text = text.partition(":")[0]
    try:
        address = ip_address(text.partition("%")[0])
    except ValueError:
        return None
    if isinstance(address, IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address
