"""Waiting for and stopping the service processes tests start."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable

import httpx


def stop(process: subprocess.Popen[bytes], *, timeout: float = 10.0) -> None:
    """SIGTERM, then SIGKILL if it has not exited within `timeout` seconds; always reaped."""
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def wait_until_healthy(
    process: subprocess.Popen[bytes], url: str, *, timeout: float = 30.0, output: Callable[[], str] = lambda: ""
) -> None:
    """Return once `url`/healthz answers 200; raise if `process` exits first (with the end of its `output`) or
    `timeout` seconds pass."""
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args!r} exited with {process.returncode}: {output()[-2000:]}")
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{process.args!r} did not answer /healthz within {timeout} s")
        time.sleep(0.05)
