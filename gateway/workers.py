"""Several worker processes on one port, each with a listening socket of its own (`SO_REUSEPORT`).

uvicorn's `--workers` shares one listening socket between its workers, and whichever worker wakes first accepts
every connection waiting: a client (a load balancer, a benchmark) that opens its keep-alive connections at once
hands all of them to one worker while the others idle (measured: 16 connections out of 16 on one of two workers,
so two workers served no more than one). Here every worker listens on a socket of its own bound to the same
address with `SO_REUSEPORT`, and the kernel spreads new connections across them by hashing each connection's
addresses and ports.

Supervision stays uvicorn's own (`Multiprocess`: health checks, replacing a dead worker, SIGTERM/SIGINT/HUP and
TTIN/TTOU): only the socket each new worker gets differs. A replaced worker gets a new socket; the parent's copy
of an old one is closed with the worker's process handle, so no socket stays in the group that nobody accepts on.
"""

from __future__ import annotations

import socket

from uvicorn import Config
from uvicorn.supervisors.multiprocess import Multiprocess


def reuse_port_socket(host: str, port: int) -> socket.socket:
    """A TCP socket bound to (host, port) with SO_REUSEADDR and SO_REUSEPORT, inheritable by a worker (not yet
    listening: the worker's server listens with its configured backlog)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


class ReusePortWorkers(Multiprocess):
    """uvicorn's supervisor, handing each worker it starts a new `reuse_port_socket` on the configured address."""

    def __init__(self, config: Config) -> None:
        self._address = (config.host, config.port)
        super().__init__(config, sockets=[])

    @property
    def sockets(self) -> list[socket.socket]:
        """Read once per worker started: a socket of its own. (Port 0 is resolved by the first bind.)"""
        host, port = self._address
        sock = reuse_port_socket(host, port)
        if port == 0:
            self._address = (host, sock.getsockname()[1])
        return [sock]

    @sockets.setter
    def sockets(self, _shared: list[socket.socket]) -> None:
        """uvicorn's constructor stores the one shared socket here; there is none."""


def run_workers(config: Config) -> None:
    """Serve `config.app` (an import string) on `config.workers` processes until SIGTERM or SIGINT."""
    ReusePortWorkers(config).run()
