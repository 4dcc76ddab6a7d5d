"""`gateway serve --workers N` spreads connections over its workers (gateway/workers.py).

With uvicorn's shared listening socket, connections that arrive together were all accepted by one worker, and
kept there by keep-alive. Which worker holds a connection is read from /proc: the server-side TCP sockets on
the port (their inodes in /proc/net/tcp) against the socket descriptors each worker process holds.
"""

from __future__ import annotations

import os
import socket
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from tests.support.gateway_serve import gateway_serve

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="SO_REUSEPORT balancing and /proc are Linux's")

CONNECTIONS = 16
ESTABLISHED, LISTEN = "01", "0A"


def tcp_sockets(port: int) -> dict[str, str]:
    """Inode -> state of every IPv4 TCP socket whose local port is `port`."""
    found = {}
    with open("/proc/net/tcp") as table:
        next(table)
        for line in table:
            fields = line.split()
            if int(fields[1].rsplit(":", 1)[1], 16) == port:
                found[fields[9]] = fields[3]
    return found


def socket_inodes(pid: int) -> set[str]:
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:  # closed meanwhile
            continue
        if target.startswith("socket:["):
            inodes.add(target[len("socket:[") : -1])
    return inodes


def connections_by_worker(supervisor: int, port: int) -> Counter[int]:
    """Established connections on `port` per worker (a child of `supervisor` listening on it)."""
    with open(f"/proc/{supervisor}/task/{supervisor}/children") as children:
        pids = [int(pid) for pid in children.read().split()]
    states = tcp_sockets(port)
    counts: Counter[int] = Counter()
    for pid in pids:
        held = socket_inodes(pid)
        if any(states.get(inode) == LISTEN for inode in held):
            counts[pid] = sum(1 for inode in held if states.get(inode) == ESTABLISHED)
    return counts


def test_connections_opened_together_reach_every_worker(sqlite_url: str, tmp_path: Path) -> None:
    environment = {
        "DATABASE_URL": sqlite_url,
        "EMAIL_URL": f"file://{tmp_path / 'mail'}",
        "GATEWAY_EMAIL_WORKER": "false",
        "GATEWAY_METRICS": "false",
    }
    with gateway_serve(environment, "--workers", "2", cwd=tmp_path) as gateway:
        deadline = time.monotonic() + 30
        while len(connections_by_worker(gateway.process.pid, gateway.port)) < 2:  # one answered /healthz so far
            assert time.monotonic() < deadline, "the second worker never listened"
            time.sleep(0.1)
        clients = [socket.create_connection(("127.0.0.1", gateway.port), timeout=10) for _ in range(CONNECTIONS)]
        try:
            for client in clients:  # one keep-alive request each: answered, so accepted by some worker
                client.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            for client in clients:
                assert client.recv(4096).startswith(b"HTTP/1.1 200 ")
            counts = connections_by_worker(gateway.process.pid, gateway.port)
        finally:
            for client in clients:
                client.close()

    assert len(counts) == 2, counts
    assert sum(counts.values()) == CONNECTIONS, counts
    # Hashing 16 connections over 2 sockets leaves one empty with probability 2 / 2**16.
    assert all(count > 0 for count in counts.values()), counts
