"""The client's address: the socket peer, unless the peer is a trusted proxy; then X-Forwarded-For, from the right."""

from __future__ import annotations

from ipaddress import ip_address

import pytest
from starlette.requests import Request

from gateway.client_ip import ClientIP, parse_ip

PROXIES = ClientIP(["10.0.0.0/8", "2001:db8:ffff::/48", "192.0.2.1"])


def request(peer: str | None, *forwarded_for: str) -> Request:
    headers = [(b"x-forwarded-for", value.encode()) for value in forwarded_for]
    client = (peer, 51_234) if peer is not None else None
    return Request({"type": "http", "method": "GET", "path": "/", "headers": headers, "client": client})


@pytest.mark.parametrize(
    ("peer", "forwarded_for", "client"),
    [
        ("203.0.113.7", (), "203.0.113.7"),
        ("203.0.113.7", ("198.51.100.1",), "203.0.113.7"),  # not a proxy of ours: its header is the client's word
        ("10.0.0.2", (), "10.0.0.2"),  # a proxy without the header: the proxy itself
        ("10.0.0.2", ("198.51.100.1",), "198.51.100.1"),
        ("10.0.0.2", ("6.6.6.6, 198.51.100.1, 10.1.2.3",), "198.51.100.1"),  # right-most untrusted; 6.6.6.6 forged
        ("10.0.0.2", ("6.6.6.6", "198.51.100.1, 192.0.2.1"), "198.51.100.1"),  # repeated headers are one list
        ("10.0.0.2", ("10.9.9.9, 10.1.2.3",), "10.9.9.9"),  # only proxies: the furthest one
        ("10.0.0.2", ("198.51.100.1, not-an-ip",), "10.0.0.2"),  # garbage: nothing from there on is believed
        ("10.0.0.2", (" , ,198.51.100.1 ,",), "198.51.100.1"),
        ("::ffff:10.0.0.2", ("198.51.100.1",), "198.51.100.1"),  # a dual-stack socket's IPv4 peer
        ("2001:db8:ffff::5", ("[2001:db8:1::9]:443",), "2001:db8:1::9"),
        ("192.0.2.1", ("198.51.100.1:8080",), "198.51.100.1"),
        ("192.0.2.2", ("198.51.100.1",), "192.0.2.2"),  # a single trusted address is not its neighbours
    ],
)
def test_forwarded_for_is_read_only_from_trusted_proxies(
    peer: str, forwarded_for: tuple[str, ...], client: str
) -> None:
    assert PROXIES(request(peer, *forwarded_for)) == ip_address(client)


def test_without_trusted_proxies_the_header_is_never_read() -> None:
    assert ClientIP()(request("127.0.0.1", "198.51.100.1")) == ip_address("127.0.0.1")


def test_an_unknown_peer_is_none() -> None:
    assert PROXIES(request(None, "198.51.100.1")) is None
    assert PROXIES(request("testclient")) is None  # not an address (Starlette's TestClient)


@pytest.mark.parametrize(
    ("text", "address"),
    [
        ("192.0.2.1", "192.0.2.1"),
        (" 192.0.2.1:80 ", "192.0.2.1"),
        ("2001:db8::1", "2001:db8::1"),
        ("[2001:db8::1]", "2001:db8::1"),
        ("[2001:db8::1]:8443", "2001:db8::1"),
        ("fe80::1%eth0", "fe80::1"),
        ("::ffff:192.0.2.1", "192.0.2.1"),
        ("unknown", None),
        ("", None),
        ("192.0.2.300", None),
    ],
)
def test_addresses_in_the_forms_proxies_write_them(text: str, address: str | None) -> None:
    assert parse_ip(text) == (ip_address(address) if address is not None else None)
