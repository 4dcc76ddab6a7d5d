"""`gateway db backup` / `gateway db restore` on real SQLite files and a real PostgreSQL database of their own.

Round trips go through the console script as a subprocess (the real entry point, real pg_dump and pg_restore);
refusals run `main()` in process, where a traceback would fail the test just as well.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sqlite3
import stat
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import closing
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import MetaData, insert, select, text
from sqlalchemy.engine import Connection

from gateway.cli import main
from integrations.store import migrate
from integrations.store.backup import backup
from integrations.store.engine import create_engine, create_sessionmaker
from integrations.store.models import Customer, Order, OrderLine, OrderStatus
from integrations.store.session import StoreSession
from integrations.store.types import utcnow
from resolvers.seed import SeedSize, seed
from tests.conftest import POSTGRES_ADMIN_URL, postgres_admin_execute, postgres_url
from tests.gateway.conftest import Gateway, Result
from tests.support.services import unavailable

ROOT = Path(__file__).resolve().parents[2]
Snapshot = dict[str, list[tuple[Any, ...]]]


def gateway_process(*args: str, env: dict[str, str], cwd: Path) -> Result:
    """`gateway ARGS...` as a subprocess with DATABASE_URL and the rest of its environment from `env`."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("GATEWAY_", "DATABASE_URL", "REDIS_URL"))}
    done = subprocess.run(
        [sys.executable, "-m", "gateway", *args],
        env={**base, "PYTHONPATH": str(ROOT), **env},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert "Traceback" not in done.stderr, done.stderr
    return Result(done.returncode, done.stdout, done.stderr)


def one_error_line(result: Result) -> str:
    """The single line a refused command prints (exit 1, nothing on stdout)."""
    assert result.code == 1, result
    lines = result.err.strip().splitlines()
    assert len(lines) == 1, result.err
    assert lines[0].startswith("gateway: ")
    return lines[0]


async def snapshot(url: str) -> Snapshot:
    """Every row of every table (and SQLite's id counters / PostgreSQL's sequences), in primary-key order."""
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(_snapshot)
    finally:
        await engine.dispose()


def _snapshot(connection: Connection) -> Snapshot:
    metadata = MetaData()
    metadata.reflect(connection)
    rows: Snapshot = {}
    for table in metadata.sorted_tables:
        order = list(table.primary_key.columns) or list(table.columns)
        rows[table.name] = [tuple(row) for row in connection.execute(select(table).order_by(*order))]
    counters = (
        "SELECT name, seq FROM sqlite_sequence ORDER BY name"
        if connection.dialect.name == "sqlite"
        else "SELECT sequencename, last_value FROM pg_sequences WHERE schemaname = 'public' ORDER BY 1"
    )
    rows["(id counters)"] = [tuple(row) for row in connection.execute(text(counters))]
    return rows


async def mutate(url: str) -> None:
    """What happens after a backup: deletions, updates, inserts and a new table."""
    engine = create_engine(url)
    try:
        async with engine.begin() as connection:
            await connection.execute(text('DELETE FROM order_line WHERE order_id IN (SELECT id FROM "order" LIMIT 3)'))
            await connection.execute(text("UPDATE customer SET name = 'Changed after the backup'"))
            await connection.execute(insert(Customer).values(email="new@example.com", name="New", created_at=utcnow()))
            await connection.execute(text("CREATE TABLE scratch (x INTEGER)"))
    finally:
        await engine.dispose()


def previous_revision() -> str:
    """The revision just before head: what an older backup is at."""
    script = ScriptDirectory.from_config(migrate.alembic_config("sqlite://"))
    head = script.get_revision(migrate.head_revision() or "head")
    assert head is not None
    assert isinstance(head.down_revision, str)
    return head.down_revision


@pytest.mark.parametrize("command", ["backup", "restore"])
def test_both_commands_have_help(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["db", command, "--help"])
    assert exited.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: gateway db {command} ")
    assert "PATH" in out
    assert "PostgreSQL" in out


# SQLite


def test_sqlite_round_trip_restores_every_row_exactly(tmp_path: Path) -> None:
    env = {"DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'live.db'}"}
    assert gateway_process("db", "upgrade", env=env, cwd=tmp_path).code == 0
    seeded = gateway_process("seed", "--customers", "30", "--orders", "40", env=env, cwd=tmp_path)
    assert seeded.code == 0, seeded.err
    url = env["DATABASE_URL"]
    before = asyncio.run(snapshot(url))
    assert len(before["order"]) == 45  # seeded orders and the five placed through the payment provider

    made = gateway_process("db", "backup", "backup.db", env=env, cwd=tmp_path)
    assert made.code == 0, made.err
    assert made.out.startswith(f"backed up {tmp_path / 'live.db'} to backup.db (")
    copy = tmp_path / "backup.db"
    assert stat.S_IMODE(copy.stat().st_mode) == 0o600  # customer data: readable by its owner only
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("backup")) == ["backup.db"]
    with closing(sqlite3.connect(copy)) as backup_file:  # a self-contained file, not a WAL one
        assert backup_file.execute("PRAGMA journal_mode").fetchone() == ("delete",)

    asyncio.run(mutate(url))
    assert asyncio.run(snapshot(url)) != before

    restored = gateway_process("db", "restore", "backup.db", env=env, cwd=tmp_path)
    assert restored.code == 0, restored.err
    assert restored.out.splitlines() == [
        f"restored {tmp_path / 'live.db'} from backup.db",
        f"database at revision {migrate.head_revision()}, this gateway's latest: ready to serve",
    ]
    assert asyncio.run(snapshot(url)) == before  # every row, the id counters, and no `scratch` table

    again = gateway_process("db", "backup", "backup.db", env=env, cwd=tmp_path)
    assert "already exists" in one_error_line(again)
    forced = gateway_process("db", "backup", "backup.db", "--force", env=env, cwd=tmp_path)
    assert forced.code == 0, forced.err


async def test_a_backup_taken_during_continuous_writes_is_consistent(tmp_path: Path) -> None:
    """A writer commits orders of three lines, one transaction each, while backups are taken: each backup holds
    exactly the orders committed before some instant (a prefix of the writer's), all whole, and passes SQLite's
    integrity and foreign-key checks."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'busy.db'}"
    await asyncio.to_thread(migrate.upgrade, url)
    engine = create_engine(url)
    store = StoreSession(create_sessionmaker(engine))
    try:
        await seed(store, SeedSize(customers=500, products=50, orders=3000, lines_per_order=3))
    finally:
        await store.close()

    committed: list[int] = []
    stop = asyncio.Event()

    async def write_orders() -> None:
        while not stop.is_set():
            order = {"number": f"W{len(committed) + 1:08d}", "customer_id": 1, "status": OrderStatus.PAID}
            order |= {"total": 6, "currency": "USD", "created_at": utcnow()}
            async with engine.begin() as connection:
                inserted = insert(Order).values(order).returning(Order.__table__.c.id)  # type: ignore[attr-defined]
                order_id = (await connection.execute(inserted)).scalar_one()
                await connection.execute(
                    insert(OrderLine),
                    [{"order_id": order_id, "product_id": p, "quantity": 1, "unit_price": 2} for p in (1, 2, 3)],
                )
            committed.append(order_id)

    writer = asyncio.create_task(write_orders())
    brackets: list[tuple[int, int]] = []
    try:
        await asyncio.sleep(0.2)
        for attempt in range(3):
            first = len(committed)
            await backup(url, tmp_path / f"backup-{attempt}.db", environ=os.environ)
            brackets.append((first, len(committed)))
            await asyncio.sleep(0.1)
    finally:
        stop.set()
        await writer
        await engine.dispose()

    assert all(after > before for before, after in brackets), brackets  # the writer kept committing meanwhile
    for attempt, (before, after) in enumerate(brackets):
        with closing(sqlite3.connect(tmp_path / f"backup-{attempt}.db")) as copy:
            assert copy.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
            assert copy.execute("PRAGMA foreign_key_check").fetchall() == []
            ids = [row[0] for row in copy.execute("SELECT id FROM \"order\" WHERE number LIKE 'W%' ORDER BY id")]
            assert before <= len(ids) <= after
            assert ids == committed[: len(ids)]
            lines = copy.execute(
                'SELECT count(*), sum(l.quantity * l.unit_price) = o.total FROM "order" o '
                "JOIN order_line l ON l.order_id = o.id WHERE o.number LIKE 'W%' GROUP BY o.id"
            ).fetchall()
            assert lines == [(3, 1)] * len(ids)
            assert copy.execute('SELECT count(*) FROM "order"').fetchone() == (3000 + len(ids),)


async def test_restore_refuses_a_database_in_use_and_changes_nothing(gateway: Gateway, tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'live.db'}"
    await asyncio.to_thread(migrate.upgrade, url)
    made = await gateway("db", "backup", "backup.db", database_url=url)
    assert made.code == 0, made.err
    await mutate(url)
    changed = await snapshot(url)

    engine = create_engine(url)  # a gateway that is running: its pool keeps a connection that has read the file
    try:
        async with engine.connect() as connection:
            await connection.execute(text("SELECT count(*) FROM customer"))
        refused = await gateway("db", "restore", "backup.db", database_url=url)
        assert one_error_line(refused) == (
            f"gateway: {tmp_path / 'live.db'} is in use (a running gateway or worker has it open): "
            "stop them, then restore"
        )
    finally:
        await engine.dispose()
    assert await snapshot(url) == changed

    restored = await gateway("db", "restore", "backup.db", database_url=url)
    assert restored.code == 0, restored.err


async def test_restoring_an_older_backup_says_to_upgrade(gateway: Gateway, tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'live.db'}"
    older = previous_revision()
    await asyncio.to_thread(migrate.upgrade, url, older)
    assert (await gateway("db", "backup", "old.db", database_url=url)).code == 0
    await asyncio.to_thread(migrate.upgrade, url)

    restored = await gateway("db", "restore", "old.db", database_url=url)
    assert restored.code == 0, restored.err
    assert restored.out.splitlines()[-1] == (
        f"database at revision {older}, behind this gateway's {migrate.head_revision()}: run `gateway db upgrade`"
    )
    upgraded = await gateway("db", "upgrade", database_url=url)
    assert upgraded.code == 0, upgraded.err
    assert await migrate.current_revision(url) == migrate.head_revision()


@pytest.mark.parametrize(
    ("version", "expected"),
    [
        (None, "the restored database has no Alembic revision: run `gateway db upgrade`"),
        (
            "9999_future",
            "database at revision 9999_future, which this gateway does not know (a backup from a newer "
            "version?): run a gateway that has it",
        ),
    ],
)
async def test_restore_names_a_missing_or_unknown_revision(
    gateway: Gateway, tmp_path: Path, version: str | None, expected: str
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'live.db'}"
    await asyncio.to_thread(migrate.upgrade, url)
    with closing(sqlite3.connect(tmp_path / "live.db")) as database, database:
        database.execute("DELETE FROM alembic_version")
        if version is not None:
            database.execute("INSERT INTO alembic_version VALUES (?)", (version,))
    assert (await gateway("db", "backup", "backup.db", database_url=url)).code == 0

    restored = await gateway("db", "restore", "backup.db", database_url=url)
    assert restored.code == 0, restored.err
    assert restored.out.splitlines()[-1] == expected


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (
            ["backup", "missing-dir/backup.db"],
            "cannot write missing-dir/backup.db: directory missing-dir does not exist",
        ),
        (["backup", "a-directory"], "a-directory is a directory; give the backup file's path"),
        (["backup", "live.db"], "live.db is the database itself; give another path"),
        (["backup", "live.db-wal", "--force"], "live.db-wal is the database itself; give another path"),
        (["restore", "missing.db"], "cannot read missing.db: No such file or directory"),
        (["restore", "a-directory"], "a-directory is a directory, not a backup file"),
        (["restore", "notes.txt"], "notes.txt is neither a SQLite backup nor a pg_dump custom-format archive"),
        (["restore", "archive.dump"], "archive.dump is a PostgreSQL archive, but DATABASE_URL is a sqlite database"),
        (["restore", "other.db"], "other.db is not a backup of the gateway's store (it has no alembic_version table)"),
        (["restore", "truncated.db"], "cannot read truncated.db: database disk image is malformed"),
        (["restore", "live.db"], "live.db is the database itself; give another path"),
    ],
)
async def test_bad_paths_give_one_clear_line(gateway: Gateway, tmp_path: Path, args: list[str], expected: str) -> None:
    url = "sqlite+aiosqlite:///./live.db"  # relative, as users write it: messages show paths as given
    await asyncio.to_thread(migrate.upgrade, f"sqlite+aiosqlite:///{tmp_path / 'live.db'}")
    (tmp_path / "a-directory").mkdir()
    (tmp_path / "notes.txt").write_text("not a backup\n", encoding="utf-8")
    (tmp_path / "archive.dump").write_bytes(b"PGDMP\x01\x0e\x00" + bytes(64))
    with closing(sqlite3.connect(tmp_path / "other.db")) as other:
        other.execute("CREATE TABLE t (x INTEGER)")
    assert (await gateway("db", "backup", "good.db", database_url=url)).code == 0
    (tmp_path / "truncated.db").write_bytes((tmp_path / "good.db").read_bytes()[:8192])
    before = await snapshot(url.replace("./", f"{tmp_path}/"))

    result = await gateway("db", *args, database_url=url)

    assert one_error_line(result) == f"gateway: {expected}"
    assert result.out == ""
    assert await snapshot(url.replace("./", f"{tmp_path}/")) == before
    assert not [name for name in os.listdir(tmp_path) if name.endswith(".tmp")]  # no half-written backup left


async def test_nothing_to_back_up_is_one_clear_line(gateway: Gateway, tmp_path: Path) -> None:
    missing = await gateway("db", "backup", "b.db", database_url="sqlite+aiosqlite:///./nothing.db")
    assert one_error_line(missing) == "gateway: no database at nothing.db: nothing to back up"
    assert not (tmp_path / "nothing.db").exists()  # not created by looking
    memory = await gateway("db", "backup", "b.db", database_url="sqlite+aiosqlite://")
    assert "in-memory SQLite database" in one_error_line(memory)


# PostgreSQL


@pytest.fixture
async def own_postgres() -> AsyncIterator[str]:
    """A database of this test's own (a restore replaces everything in it), dropped afterwards."""
    name = f"gw_backup_{uuid.uuid4().hex[:12]}"
    try:
        await postgres_admin_execute(f'CREATE DATABASE "{name}"')
    except (OSError, asyncpg.PostgresError) as exc:
        unavailable(f"PostgreSQL not reachable at {POSTGRES_ADMIN_URL}: {exc}")
    try:
        yield postgres_url(name)
    finally:
        await postgres_admin_execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def recording_tools(directory: Path) -> str:
    """A PATH whose pg_dump and pg_restore record their arguments and PGPASSWORD, then run the real tools."""
    directory.mkdir()
    for tool in ("pg_dump", "pg_restore"):
        real = shutil.which(tool)
        if real is None:
            unavailable(f"{tool} is not installed (Debian: apt-get install postgresql-client)")
        script = directory / tool
        script.write_text(
            "#!/bin/sh\n"
            f"{{ printf 'argv:'; printf ' %s' \"$@\"; printf '\\npassword:%s\\n' \"$PGPASSWORD\"; }} >> \"$TOOL_LOG\"\n"
            f'exec "{real}" "$@"\n',
            encoding="utf-8",
        )
        script.chmod(0o755)
    return f"{directory}{os.pathsep}{os.environ.get('PATH', os.defpath)}"


async def test_postgresql_round_trip_restores_every_row_exactly(own_postgres: str, tmp_path: Path) -> None:
    password = f"secret-{uuid.uuid4().hex}"  # trust auth ignores it; it must still travel only as PGPASSWORD
    url = own_postgres.replace("postgres@", f"postgres:{password}@")
    assert password in url
    log = tmp_path / "tools.log"
    env = {
        "DATABASE_URL": url,
        "PATH": recording_tools(tmp_path / "bin"),
        "TOOL_LOG": str(log),
        "PGSERVICE": "an-inherited-service-that-does-not-exist",  # the caller's PG* variables must not leak in
    }

    def run(*args: str) -> Result:
        result = gateway_process(*args, env=env, cwd=tmp_path)
        assert result.code == 0, result.err
        assert password not in result.out + result.err
        return result

    run("db", "upgrade")
    run("seed", "--customers", "30", "--orders", "40")
    before = await snapshot(own_postgres)
    assert len(before["order"]) == 45

    made = run("db", "backup", "backup.dump")
    assert made.out.startswith(f"backed up database {own_postgres.rsplit('/', 1)[1]} on 127.0.0.1:5432 to backup.dump")
    assert (tmp_path / "backup.dump").read_bytes().startswith(b"PGDMP")
    assert stat.S_IMODE((tmp_path / "backup.dump").stat().st_mode) == 0o600

    await mutate(own_postgres)
    assert await snapshot(own_postgres) != before

    restored = run("db", "restore", "backup.dump")
    assert restored.out.splitlines()[1:] == [
        f"database at revision {migrate.head_revision()}, this gateway's latest: ready to serve",
        "note: tables not in the backup were left as they are: scratch (drop them if `gateway db upgrade` fails on "
        "them)",
    ]
    after = await snapshot(own_postgres)
    assert after.pop("scratch") == []
    assert after == before  # every row and every sequence position

    calls = log.read_text(encoding="utf-8").splitlines()
    assert [line for line in calls if line.startswith("password:")] == [f"password:{password}"] * 3
    argv = [line for line in calls if line.startswith("argv:")]
    assert len(argv) == 3  # pg_dump; pg_restore --list; pg_restore
    assert not [line for line in argv if password in line]
    assert "--clean --if-exists --no-owner --single-transaction" in argv[2]


async def test_postgresql_restore_refuses_a_database_in_use(own_postgres: str, tmp_path: Path) -> None:
    await asyncio.to_thread(migrate.upgrade, own_postgres)
    env = {"DATABASE_URL": own_postgres}
    assert (await asyncio.to_thread(gateway_process, "db", "backup", "b.dump", env=env, cwd=tmp_path)).code == 0

    engine = create_engine(own_postgres)
    try:
        async with engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
            refused = await asyncio.to_thread(gateway_process, "db", "restore", "b.dump", env=env, cwd=tmp_path)
    finally:
        await engine.dispose()
    assert one_error_line(refused).startswith("gateway: the database is in use by 1 other connection (")


@pytest.mark.parametrize("command", ["backup", "restore"])
def test_missing_postgresql_tools_are_named_with_how_to_install_them(command: str, tmp_path: Path) -> None:
    (tmp_path / "bin").mkdir()
    (tmp_path / "backup.dump").write_bytes(b"PGDMP")
    env = {
        "DATABASE_URL": "postgresql+asyncpg://gateway:secret@127.0.0.1:9/gateway",  # never contacted
        "PATH": str(tmp_path / "bin"),
    }
    result = gateway_process(
        "db", command, "backup.dump" if command == "restore" else "new.dump", env=env, cwd=tmp_path
    )
    tool = "pg_dump" if command == "backup" else "pg_restore"
    assert one_error_line(result) == (
        f"gateway: {tool} not found on PATH: install the PostgreSQL client tools of the server's major version or "
        "newer (Debian/Ubuntu: apt-get install postgresql-client; macOS: brew install libpq)"
    )
    assert not (tmp_path / "new.dump").exists()
