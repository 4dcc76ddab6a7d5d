"""uvicorn's access log is written only when asked (`--access-log` or GATEWAY_ACCESS_LOG).

It used to be written by every `gateway serve`: the app's logging set-up let uvicorn's access logger reach the
root handler, and uvicorn builds (and at INFO writes) a line per request whenever that logger has a handler.
"""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from tests.support.gateway_serve import gateway_serve

PROBE = "/readyz?access-log-probe=1"


def access_lines(environment: dict[str, str], tmp_path: Path, *args: str) -> int:
    with gateway_serve(environment, *args, cwd=tmp_path) as gateway:
        assert httpx.get(gateway.url + PROBE, timeout=5).status_code == 200
        time.sleep(0.3)  # let the line reach the log file
        return gateway.logs().count("access-log-probe")


@pytest.mark.parametrize(
    ("args", "setting", "expected"),
    [((), None, 0), (("--access-log",), None, 1), ((), "true", 1), ((), "false", 0)],
    ids=["default", "flag", "setting", "setting-off"],
)
def test_access_lines_only_when_asked(
    sqlite_url: str, tmp_path: Path, args: tuple[str, ...], setting: str | None, expected: int
) -> None:
    environment = {
        "DATABASE_URL": sqlite_url,
        "EMAIL_URL": f"file://{tmp_path / 'mail'}",
        "GATEWAY_EMAIL_WORKER": "false",
        "GATEWAY_LOG_LEVEL": "info",
    }
    if setting is not None:
        environment["GATEWAY_ACCESS_LOG"] = setting
    assert access_lines(environment, tmp_path, *args) == expected
