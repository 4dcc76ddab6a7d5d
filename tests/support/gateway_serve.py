"""`gateway serve`, the real command line, in a process of its own, for tests of how it starts and stops.

Unlike `gateway_process` (uvicorn started directly, stopped at the end whatever its exit status), this one hands
out the process, so a test can signal it and check its exit status and logs.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from tests.support.ports import free_port
from tests.support.processes import stop, wait_until_healthy

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class ServedGateway:
    url: str
    port: int
    process: subprocess.Popen[bytes]
    log: IO[bytes]

    def terminate(self) -> None:
        """Send SIGTERM, as an orchestrator does to begin a graceful stop."""
        self.process.send_signal(signal.SIGTERM)

    def wait(self, timeout: float) -> int | None:
        """The exit status, or None if the process is still running after `timeout` seconds."""
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def logs(self) -> str:
        self.log.flush()
        with open(self.log.name, "rb") as log:  # a second handle: the first one's position is the writer's
            return log.read().decode(errors="replace")


@contextmanager
def gateway_serve(environment: dict[str, str], *args: str, cwd: Path, timeout: float = 30.0) -> Iterator[ServedGateway]:
    """Yield a `gateway serve ARGS` listening on a free 127.0.0.1 port once it answers /healthz; the environment
    is this process's plus `environment`, the working directory `cwd` (so no stray `.env` is read). Stopped with
    SIGTERM, then SIGKILL, at the end if it still runs."""
    port = free_port()
    command = [sys.executable, "-m", "gateway", "serve", "--host", "127.0.0.1", "--port", str(port), *args]
    log = tempfile.NamedTemporaryFile(prefix="gateway-serve-", suffix=".log")  # noqa: SIM115 (closed in `finally`)
    env = os.environ | {"PYTHONPATH": str(ROOT)} | environment
    process = subprocess.Popen(command, env=env, cwd=cwd, stdout=log, stderr=subprocess.STDOUT)
    served = ServedGateway(url=f"http://127.0.0.1:{port}", port=port, process=process, log=log)
    try:
        wait_until_healthy(process, served.url, timeout=timeout, output=served.logs)
        yield served
    finally:
        if process.poll() is None:
            stop(process)
        log.close()
