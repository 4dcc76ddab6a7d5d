"""Back up and restore the store: SQLite through its online backup API, PostgreSQL through pg_dump/pg_restore.

SQLite: a backup is one consistent snapshot, copied in one step by the backup API, so the gateway may keep serving
and writing meanwhile (WAL mode: writers are not blocked). The copy is a self-contained file (rollback journal, no
`-wal`), integrity-checked, written next to its destination and renamed into place, readable by its owner only. A
restore takes SQLite's exclusive lock first, so it refuses a database that a running gateway or worker has open
(in WAL mode every connection that has read the file holds a shared lock on it until it closes), then copies the
backup in through the same API in one transaction: a failed restore leaves the database as it was.

PostgreSQL: `pg_dump --format=custom` of the whole database, and `pg_restore --clean --if-exists --no-owner
--single-transaction` (all or nothing) into the configured database, which must exist. The restore refuses while
other clients are connected to that database (best effort: one may connect right after the check). Tables the
archive does not have are left as they are and reported. Connection parameters reach the tools through libpq's
environment variables, the password as `PGPASSWORD`: never on a command line.

Environment variables are handed in by the caller (`environ`): only `gateway/` reads the environment.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import sqlite3
import tempfile
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql.elements import TextClause

from integrations.errors import StoreUnavailableError
from integrations.store import migrate
from integrations.store.engine import create_engine

SQLITE_HEADER = b"SQLite format 3\x00"
PG_ARCHIVE_HEADER = b"PGDMP"
IN_USE_WAIT = 1.0  # seconds a SQLite restore waits for the exclusive lock before calling the database in use
CONNECT_TIMEOUT = 15.0  # seconds to reach PostgreSQL (the checks here, and the tools' PGCONNECT_TIMEOUT)
INSTALL_HINT = (
    "install the PostgreSQL client tools of the server's major version or newer "
    "(Debian/Ubuntu: apt-get install postgresql-client; macOS: brew install libpq)"
)
# SQLAlchemy URL query parameters that have a libpq environment variable of their own.
_LIBPQ_QUERY = {
    "sslmode": "PGSSLMODE",
    "ssl": "PGSSLMODE",
    "sslrootcert": "PGSSLROOTCERT",
    "sslcert": "PGSSLCERT",
    "sslkey": "PGSSLKEY",
    "host": "PGHOST",
    "port": "PGPORT",
    "connect_timeout": "PGCONNECT_TIMEOUT",
    "options": "PGOPTIONS",
}
_ARCHIVE_TABLE = re.compile(r"^\d+; \d+ \d+ TABLE (\S+) (\S+) ")

RevisionState = Literal["current", "behind", "unknown", "empty"]


class BackupError(Exception):
    """A backup or restore that cannot be done, or failed; the message is one line for the user."""


@dataclass(frozen=True)
class BackedUp:
    source: str
    """The database, described without credentials."""
    path: Path
    size: int


@dataclass(frozen=True)
class Restored:
    target: str
    """The database, described without credentials."""
    revision: str | None
    head: str | None
    state: RevisionState
    left_alone: tuple[str, ...] = ()
    """PostgreSQL tables the archive does not have, which the restore left as they were."""

    def describe(self) -> list[str]:
        """What to tell the user: the restored revision and what to do about it."""
        lines = {
            "current": f"database at revision {self.revision}, this gateway's latest: ready to serve",
            "behind": f"database at revision {self.revision}, behind this gateway's {self.head}: "
            "run `gateway db upgrade`",
            "empty": "the restored database has no Alembic revision: run `gateway db upgrade`",
            "unknown": f"database at revision {self.revision}, which this gateway does not know (a backup from a "
            "newer version?): run a gateway that has it",
        }
        described = [lines[self.state]]
        if self.left_alone:
            described.append(
                f"note: tables not in the backup were left as they are: {', '.join(self.left_alone)} "
                "(drop them if `gateway db upgrade` fails on them)"
            )
        return described


async def backup(database_url: str, path: Path, *, environ: Mapping[str, str], force: bool = False) -> BackedUp:
    """Write a consistent backup of the store to `path` (refusing an existing file unless `force`)."""
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        database = _sqlite_file(url)
        if not database.is_file():
            raise BackupError(f"no database at {database}: nothing to back up")
        _refuse_database_files(path, database)
        size = await _write_atomically(path, force, lambda tmp: asyncio.to_thread(_sqlite_backup, database, tmp))
        return BackedUp(str(database), path, size)
    pg_dump = _tool("pg_dump", environ)
    env = _libpq_environ(url, environ)

    async def dump(tmp: Path) -> None:
        await _run([pg_dump, "--format=custom", "--no-password", f"--file={tmp}"], env)

    size = await _write_atomically(path, force, dump)
    return BackedUp(_describe_postgres(url), path, size)


async def restore(database_url: str, path: Path, *, environ: Mapping[str, str]) -> Restored:
    """Replace the store's content with the backup at `path`; report the Alembic revision it is at."""
    url = make_url(database_url)
    left_alone: tuple[str, ...] = ()
    if url.get_backend_name() == "sqlite":
        database = _sqlite_file(url)
        _refuse_database_files(path, database)
        _check_backup_file(path, expected="sqlite")
        await asyncio.to_thread(_sqlite_restore, path, database)
        target = str(database)
    else:
        pg_restore = _tool("pg_restore", environ)
        if not url.database:
            raise BackupError("DATABASE_URL names no database to restore into")
        _check_backup_file(path, expected="postgresql")
        env = _libpq_environ(url, environ)
        archive_tables = _archive_tables(await _run([pg_restore, "--list", str(path)], env))
        await _refuse_postgres_in_use(database_url)
        conninfo = f"dbname='{_conninfo_quote(url.database)}'"  # only the name: the rest comes from PG* variables
        await _run(
            [
                pg_restore,
                "--clean",
                "--if-exists",
                "--no-owner",
                "--single-transaction",
                "--exit-on-error",
                "--no-password",
                f"--dbname={conninfo}",
                str(path),
            ],
            env,
        )
        left_alone = tuple(sorted(await _postgres_tables(database_url, archive_tables)))
        target = _describe_postgres(url)
    revision = await _revision(database_url)
    head = migrate.head_revision()
    return Restored(target, revision, head, _revision_state(revision, head), left_alone)


# SQLite


def _sqlite_file(url: URL) -> Path:
    if not url.database or url.database == ":memory:" or url.query.get("mode") == "memory":
        raise BackupError("DATABASE_URL is an in-memory SQLite database: there is no file to back up or restore")
    return Path(url.database)


def _connect(database: Path, mode: Literal["ro", "rw"], timeout: float) -> sqlite3.Connection:
    """Open an existing database (never create one) in autocommit mode."""
    uri = f"{database.resolve().as_uri()}?mode={mode}"
    return sqlite3.connect(uri, uri=True, timeout=timeout, isolation_level=None)


def _sqlite_backup(database: Path, tmp: Path) -> None:
    try:
        source = _connect(database, "rw", timeout=30.0)  # rw: it may have to create the -shm of a WAL database
        try:
            source.execute("PRAGMA query_only=ON")
            target = sqlite3.connect(tmp, isolation_level=None)
            try:
                source.backup(target)  # all pages in one step: one read transaction, one snapshot
                target.execute("PRAGMA journal_mode=DELETE")  # a self-contained file: no -wal beside it
                _check_integrity(target, "the backup")
            finally:
                target.close()
        finally:
            source.close()
    except sqlite3.Error as exc:
        raise BackupError(f"cannot back up {database}: {exc}") from exc


def _sqlite_restore(path: Path, database: Path) -> None:
    if not database.parent.is_dir():
        raise BackupError(f"cannot restore into {database}: directory {database.parent} does not exist")
    try:
        target = sqlite3.connect(database, timeout=IN_USE_WAIT, isolation_level=None)
    except sqlite3.Error as exc:
        raise BackupError(f"cannot open {database}: {exc}") from exc
    try:
        target.execute("PRAGMA locking_mode=EXCLUSIVE")  # held until we close: nobody reads a half-restored file
        try:
            target.execute("BEGIN EXCLUSIVE")
            target.execute("COMMIT")
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) and "busy" not in str(exc):
                raise
            raise BackupError(
                f"{database} is in use (a running gateway or worker has it open): stop them, then restore"
            ) from exc
        mode = str(target.execute("PRAGMA journal_mode").fetchone()[0])
        if mode == "wal":
            target.execute("PRAGMA journal_mode=DELETE")  # the backup may have another page size than WAL allows
        source = _connect(path, "ro", timeout=IN_USE_WAIT)
        try:
            source.backup(target)  # one transaction: on failure the database is as it was
        finally:
            source.close()
        if mode == "wal":
            target.execute("PRAGMA journal_mode=WAL")
    except sqlite3.Error as exc:
        raise BackupError(f"cannot restore into {database}: {exc}") from exc
    finally:
        target.close()


def _check_sqlite_backup(path: Path) -> None:
    try:
        connection = _connect(path, "ro", timeout=IN_USE_WAIT)
        try:
            _check_integrity(connection, str(path))
            has_revision = connection.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'alembic_version'"
            ).fetchone()
        finally:
            connection.close()
    except sqlite3.Error as exc:
        raise BackupError(f"cannot read {path}: {exc}") from exc
    if not has_revision:
        raise BackupError(f"{path} is not a backup of the gateway's store (it has no alembic_version table)")


def _check_integrity(connection: sqlite3.Connection, what: str) -> None:
    problems = [str(row[0]) for row in connection.execute("PRAGMA integrity_check")]
    if problems != ["ok"]:
        raise BackupError(f"{what} fails SQLite's integrity check: {problems[0]}")


# PostgreSQL


def _tool(name: str, environ: Mapping[str, str]) -> str:
    found = shutil.which(name, path=environ.get("PATH", os.defpath))
    if found is None:
        raise BackupError(f"{name} not found on PATH: {INSTALL_HINT}")
    return found


def _libpq_environ(url: URL, environ: Mapping[str, str]) -> dict[str, str]:
    """The tools' environment: the caller's without its own PG* variables, plus libpq's parameters from `url`."""
    env = {name: value for name, value in environ.items() if not name.startswith("PG")}
    parameters = {
        "PGHOST": url.host,
        "PGPORT": str(url.port) if url.port else None,
        "PGUSER": url.username,
        "PGPASSWORD": url.password if isinstance(url.password, str) else None,
        "PGDATABASE": url.database,
    }
    for key, variable in _LIBPQ_QUERY.items():
        value = url.query.get(key)
        if isinstance(value, str) and value:
            if key == "ssl":  # asyncpg's spelling
                value = {"true": "require", "false": "disable"}.get(value.lower(), value)
            parameters[variable] = value
    env.update({name: value for name, value in parameters.items() if value})
    env.setdefault("PGCONNECT_TIMEOUT", str(int(CONNECT_TIMEOUT)))
    env["PGAPPNAME"] = "gateway-backup"
    return env


def _conninfo_quote(value: str) -> str:
    return value.replace("\\", "\\\\").replace("'", "\\'")


def _describe_postgres(url: URL) -> str:
    return f"database {url.database} on {url.host or 'localhost'}:{url.port or 5432}"


async def _run(command: list[str], env: dict[str, str]) -> str:
    """Run a client tool; its stdout, or a `BackupError` with the first error line it printed."""
    tool = Path(command[0]).name
    try:
        process = await asyncio.create_subprocess_exec(
            *command, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
        )
    except OSError as exc:
        raise BackupError(f"cannot run {tool}: {exc.strerror or exc}") from exc
    stdout, stderr = await process.communicate()
    if process.returncode != 0:
        lines = [line.strip() for line in stderr.decode(errors="replace").splitlines() if line.strip()]
        errors = [line for line in lines if "error:" in line] or lines or [f"exit status {process.returncode}"]
        raise BackupError(f"{tool} failed: {errors[0].removeprefix(f'{tool}: error: ')}")
    return stdout.decode(errors="replace")


def _archive_tables(listing: str) -> set[tuple[str, str]]:
    """(schema, table) of every table in a `pg_restore --list` table of contents."""
    return {(match[1], match[2]) for line in listing.splitlines() if (match := _ARCHIVE_TABLE.match(line))}


async def _refuse_postgres_in_use(database_url: str) -> None:
    query = text(
        "SELECT count(*), string_agg(DISTINCT coalesce(nullif(application_name, ''), usename::text, '?'), ', ') "
        "FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() "
        "AND backend_type = 'client backend'"
    )
    count, clients = (await _query(database_url, query))[0]
    if count:
        raise BackupError(
            f"the database is in use by {count} other connection{'' if count == 1 else 's'} ({clients}): "
            "stop the gateway and its workers, then restore"
        )


async def _postgres_tables(database_url: str, archive: set[tuple[str, str]]) -> set[str]:
    """Tables in the archive's schemas that the archive does not have."""
    schemas = {schema for schema, _table in archive} or {"public"}
    query = text(
        "SELECT table_schema, table_name FROM information_schema.tables WHERE table_type = 'BASE TABLE' "
        "AND table_schema::text = ANY(:schemas)"
    ).bindparams(schemas=sorted(schemas))
    rows = await _query(database_url, query)
    return {str(table) for schema, table in rows if (schema, table) not in archive}


async def _query(database_url: str, query: TextClause) -> list[tuple[object, ...]]:
    engine = create_engine(database_url)
    try:
        async with asyncio.timeout(CONNECT_TIMEOUT), engine.connect() as connection:
            return [tuple(row) for row in await connection.execute(query)]
    except (DBAPIError, OSError, TimeoutError, StoreUnavailableError) as exc:
        raise BackupError(f"cannot use the database: {_first_line(exc)}") from exc
    finally:
        await engine.dispose()


# Both


def _check_backup_file(path: Path, *, expected: Literal["sqlite", "postgresql"]) -> None:
    """A readable backup of the kind the configured database takes, else a `BackupError` saying what it is."""
    if path.is_dir():
        raise BackupError(f"{path} is a directory, not a backup file")
    try:
        with path.open("rb") as file:
            header = file.read(len(SQLITE_HEADER))
    except OSError as exc:
        raise BackupError(f"cannot read {path}: {exc.strerror or exc}") from exc
    kind = "sqlite" if header == SQLITE_HEADER else "postgresql" if header.startswith(PG_ARCHIVE_HEADER) else None
    if kind is None:
        raise BackupError(f"{path} is neither a SQLite backup nor a pg_dump custom-format archive")
    if kind != expected:
        made = "a SQLite backup" if kind == "sqlite" else "a PostgreSQL archive"
        raise BackupError(f"{path} is {made}, but DATABASE_URL is a {expected} database")
    if kind == "sqlite":
        _check_sqlite_backup(path)


def _refuse_database_files(path: Path, database: Path) -> None:
    """The backup must not be the database itself (or its -wal/-shm): the copy would clobber the live file."""
    for name in (database, database.with_name(database.name + "-wal"), database.with_name(database.name + "-shm")):
        if path.resolve() == name.resolve():
            raise BackupError(f"{path} is the database itself; give another path")


async def _write_atomically(path: Path, force: bool, write: Callable[[Path], Awaitable[None]]) -> int:
    """Let `write` fill a temporary file beside `path`, then rename it into place (no half-written backups)."""
    tmp = _temporary_beside(path, force)
    try:
        await write(tmp)
        return _move_into_place(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _temporary_beside(path: Path, force: bool) -> Path:
    if path.is_dir():
        raise BackupError(f"{path} is a directory; give the backup file's path")
    if not path.parent.is_dir():
        raise BackupError(f"cannot write {path}: directory {path.parent} does not exist")
    if path.exists() and not force:
        raise BackupError(f"{path} already exists; give another path, or --force to replace it")
    try:
        fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)  # mode 0600
    except OSError as exc:
        raise BackupError(f"cannot write in {path.parent}: {exc.strerror or exc}") from exc
    os.close(fd)
    return Path(name)


def _move_into_place(tmp: Path, path: Path) -> int:
    """Flush `tmp`, rename it to `path` and flush the directory; the size written."""
    try:
        _fsync(tmp)
        os.replace(tmp, path)
        _fsync(path.parent)
        return path.stat().st_size
    except OSError as exc:
        raise BackupError(f"cannot write {path}: {exc.strerror or exc}") from exc


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


async def _revision(database_url: str) -> str | None:
    try:
        async with asyncio.timeout(CONNECT_TIMEOUT):
            return await migrate.current_revision(database_url)
    except (DBAPIError, OSError, TimeoutError, StoreUnavailableError) as exc:
        raise BackupError(f"restored, but cannot read the database's revision: {_first_line(exc)}") from exc


def _revision_state(revision: str | None, head: str | None) -> RevisionState:
    if revision is None:
        return "empty"
    if revision == head:
        return "current"
    try:
        known = ScriptDirectory.from_config(migrate.alembic_config("sqlite://")).get_revision(revision) is not None
    except CommandError:
        known = False
    return "behind" if known else "unknown"


def _first_line(exc: BaseException) -> str:
    reason = exc.orig if isinstance(exc, DBAPIError) and exc.orig is not None else exc
    return (str(reason).strip().splitlines() or [type(reason).__name__])[0]
