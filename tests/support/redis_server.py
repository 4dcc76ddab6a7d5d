"""redis-server processes of the tests' own (own port, no persistence) that can be stopped, frozen and restarted,
to see what a client does while Redis is away; optionally a single-node Redis Cluster."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.support import processes
from tests.support.ports import free_port
from tests.support.services import unavailable


class RedisServer:
    """A redis-server process on a fixed 127.0.0.1 port that can be stopped, frozen and started again."""

    def __init__(
        self, executable: str, port: int, *, cluster_dir: Path | None = None, data_dir: Path | None = None
    ) -> None:
        self.executable = executable
        self.port = port
        self.cluster_dir = cluster_dir  # a single-node Redis Cluster keeps its nodes.conf there
        self.data_dir = data_dir  # with one, data survives a stop and start (append-only file, fsync always)
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        arguments = [
            self.executable,
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
        ]
        if self.data_dir is not None:
            arguments += ["--appendonly", "yes", "--appendfsync", "always", "--dir", str(self.data_dir)]
        else:
            arguments += ["--appendonly", "no"]
        if self.cluster_dir is not None:
            # The cluster bus gets a free port of its own (by default it is port + 10000, possibly above 65535).
            bus = str(free_port())
            arguments += ["--cluster-enabled", "yes", "--cluster-port", bus, "--dir", str(self.cluster_dir)]
        self.process = subprocess.Popen(arguments, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self._wait_for(b"PING", b"+PONG")
        if self.cluster_dir is not None:  # one node serving every slot
            self.command(b"CLUSTER ADDSLOTSRANGE 0 16383")
            self._wait_for(b"CLUSTER INFO", b"cluster_state:ok")

    def ensure_started(self) -> RedisServer:
        """Start it again if an earlier test left it stopped."""
        if self.process is None:
            self.start()
        return self

    def command(self, line: bytes) -> bytes:
        """One inline command over a plain socket (the client under test is not used to set the server up)."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
            sock.sendall(line + b"\r\n")
            return sock.recv(4096)

    def _wait_for(self, line: bytes, answer: bytes) -> None:
        assert self.process is not None
        deadline = time.monotonic() + 10
        while True:
            if self.process.poll() is not None:
                unavailable(f"redis-server exited with status {self.process.returncode}")
            try:
                if answer in self.command(line):
                    return
            except OSError:
                pass
            if time.monotonic() > deadline:
                unavailable(f"redis-server did not answer {line.decode()} with {answer.decode()} within 10 s")
            time.sleep(0.02)

    def stop(self) -> None:
        if self.process is None:
            return
        os.kill(self.process.pid, signal.SIGCONT)  # in case a test froze it
        processes.stop(self.process)
        self.process = None

    def freeze(self) -> None:
        """Stop answering (SIGSTOP): the kernel still accepts connections, nothing replies."""
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGSTOP)

    def thaw(self) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGCONT)


def redis_server_executable() -> str:
    """The installed redis-server (the test skips, or fails under CI=true, without one)."""
    executable = shutil.which("redis-server")
    if executable is None:
        unavailable("redis-server is not installed")
    return executable


@contextmanager
def run_redis_server(*, cluster_dir: Path | None = None, data_dir: Path | None = None) -> Iterator[RedisServer]:
    """A started redis-server on a free port (a single-node cluster when `cluster_dir` is given, persistent when
    `data_dir` is), stopped on exit."""
    server = RedisServer(redis_server_executable(), free_port(), cluster_dir=cluster_dir, data_dir=data_dir)
    try:
        server.start()
        yield server
    finally:
        server.stop()
