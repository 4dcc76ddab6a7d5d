"""A gateway in a process of its own (uvicorn, the app factory, settings from the environment)."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

from tests.support.ports import free_port
from tests.support.processes import stop, wait_until_healthy


@contextmanager
def gateway_process(environment: dict[str, str], *, timeout: float = 30.0) -> Iterator[str]:
    """Yield the base URL of a gateway serving with `environment` added to this process's, until exit."""
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        "gateway.app:create_app_from_env",
        "--factory",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--log-level",
        "warning",
    ]
    log = tempfile.TemporaryFile()  # noqa: SIM115 (closed in `finally`; a pipe nobody reads could block the server)
    process = subprocess.Popen(command, env=os.environ | environment, stderr=log)
    url = f"http://127.0.0.1:{port}"
    try:

        def output() -> str:
            log.seek(0)
            return log.read().decode(errors="replace")

        wait_until_healthy(process, url, timeout=timeout, output=output)
        yield url
    finally:
        stop(process)
        log.close()
