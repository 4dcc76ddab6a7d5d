"""The `gateway` console script, run as a real subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from integrations.store import migrate

ROOT = Path(__file__).resolve().parents[2]


def gateway(*args: str, env: dict[str, str] | None = None, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("GATEWAY_", "DATABASE_URL", "REDIS_URL"))}
    return subprocess.run(
        [sys.executable, "-m", "gateway", *args],
        env={**base, "PYTHONPATH": str(ROOT), **(env or {})},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize(
    "command",
    [
        [],
        ["serve"],
        ["db"],
        ["db", "upgrade"],
        ["db", "downgrade"],
        ["seed"],
        ["schema"],
        ["schema", "export"],
        ["schema", "check"],
        ["persisted"],
        ["persisted", "import"],
        ["persisted", "list"],
        ["persisted", "remove"],
        ["persisted", "policy"],
    ],
)
def test_every_command_has_help(command: list[str]) -> None:
    result = gateway(*command, "--help")
    assert result.returncode == 0, result.stderr
    assert "usage: gateway" in result.stdout


def test_invalid_setting_stops_with_one_line_naming_it(tmp_path: Path) -> None:
    result = gateway("db", "upgrade", env={"GATEWAY_PORT": "eighty"}, cwd=tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "GATEWAY_PORT" in lines[0]
    result = gateway("serve", env={"DATABASE_URL": "mysql://localhost/x"}, cwd=tmp_path)
    assert result.returncode == 2
    expected = "invalid setting DATABASE_URL: unsupported database 'mysql'; use sqlite+aiosqlite or postgresql+asyncpg"
    assert result.stderr.strip().splitlines() == [f"gateway: {expected}"]


def test_db_upgrade_seed_and_schema_commands(tmp_path: Path) -> None:
    env = {"DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/cli.db"}
    for _ in range(2):  # idempotent
        result = gateway("db", "upgrade", env=env, cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        assert f"database at revision {migrate.head_revision()}" in result.stdout
    seeded = gateway("seed", "--customers", "3", "--products", "2", "--orders", "4", env=env, cwd=tmp_path)
    assert "seeded 3 customers, 2 products, 4 orders, 8 order lines" in seeded.stdout
    again = gateway("seed", env=env, cwd=tmp_path)
    assert "left as it is" in again.stdout
    down = gateway("db", "downgrade", "base", env=env, cwd=tmp_path)
    assert down.returncode == 0, down.stderr

    exported = gateway("schema", "export", "--output", str(tmp_path / "s.graphql"), env=env, cwd=tmp_path)
    assert exported.returncode == 0
    assert gateway("schema", "check", "--file", str(tmp_path / "s.graphql"), cwd=tmp_path).returncode == 0
    (tmp_path / "s.graphql").write_text("type Query { gone: Int }\n", encoding="utf-8")
    drift = gateway("schema", "check", "--file", str(tmp_path / "s.graphql"), cwd=tmp_path)
    assert drift.returncode == 1
    assert "BREAKING changes" in drift.stderr
    assert "gone" in drift.stderr
