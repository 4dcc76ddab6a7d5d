"""`gateway serve` on a port that is already taken exits at once, non-zero, with one line naming the address;
`--workers N` without REDIS_URL says once what is then per process."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXIT_WITHIN = 30.0  # seconds; a healthy failed start takes about 2


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A 127.0.0.1 port someone else listens on."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield int(sock.getsockname()[1])


def serve(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG")}
    try:
        return subprocess.run(
            [sys.executable, "-m", "gateway", "serve", *args],
            env={**base, "PYTHONPATH": str(ROOT), **env},
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=EXIT_WITHIN,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:  # the process is killed by subprocess.run
        pytest.fail(f"`gateway serve {' '.join(args)}` was still running after {EXIT_WITHIN:g} s: {exc.stderr!r}")


def test_serve_exits_non_zero_when_the_port_is_in_use(
    taken_port: int, sqlite_url: str, redis_url: str, tmp_path: Path
) -> None:
    # With Redis the app starts an invalidation listener; before the fix, the failed bind left uvicorn waiting
    # forever for the app's shutdown (and SIGTERM did not end it).
    env = {
        "DATABASE_URL": sqlite_url,
        "REDIS_URL": redis_url,
        "GATEWAY_CACHE_PREFIX": f"gw-test-{uuid.uuid4().hex[:12]}:",
        "EMAIL_URL": f"file://{tmp_path / 'mail'}",
    }
    result = serve("--host", "127.0.0.1", "--port", str(taken_port), env=env, cwd=tmp_path)

    assert result.returncode != 0
    assert f"127.0.0.1:{taken_port}" in result.stderr
    assert "in use" in result.stderr


def test_several_workers_without_redis_warn_once_that_state_is_per_process(
    taken_port: int, sqlite_url: str, tmp_path: Path
) -> None:
    # The taken port ends the run right after the warning (uvicorn binds before it starts workers).
    env = {"DATABASE_URL": sqlite_url, "EMAIL_URL": f"file://{tmp_path / 'mail'}"}
    result = serve("--host", "127.0.0.1", "--port", str(taken_port), "--workers", "2", env=env, cwd=tmp_path)

    assert result.returncode != 0
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning: --workers 2")]
    assert len(warnings) == 1, result.stderr
    assert "response cache is off" in warnings[0]
    assert "rate limits" in warnings[0]
    assert "REDIS_URL" in warnings[0]
