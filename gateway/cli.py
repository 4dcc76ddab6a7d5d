"""The `gateway` command: serve, db upgrade/downgrade/backup/restore, seed, worker, schema export/check, persisted
documents, partner API keys."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from gateway.auth.token_command import add_token_command
from gateway.settings import Settings, SettingsError, load_settings

if TYPE_CHECKING:
    from graphql import GraphQLSchema
    from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

    from gateway.trusted_documents import InvalidDocument

SCHEMA_FILE = Path("schema.graphql")
API_KEY_CACHE_TTL = 30.0  # seconds a gateway keeps a verified key: a revoke takes effect within it
STORE_TIMEOUT = 15.0  # seconds a command waits for the database before giving up
T = TypeVar("T")


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "run"):
        parser.print_help()
        return 2
    try:
        settings = load_settings()
    except SettingsError as error:
        print(f"gateway: {error}", file=sys.stderr)
        return 2
    try:
        return int(args.run(args, settings) or 0)
    except _Exit as exc:
        print(f"gateway: {exc}", file=sys.stderr)
        return exc.code


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gateway", description="GraphQL API gateway.")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")

    serve = commands.add_parser("serve", help="run the HTTP server", description="Run the HTTP server (uvicorn).")
    serve.add_argument("--host", help="bind address (default: GATEWAY_HOST or 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (default: GATEWAY_PORT or 8000)")
    serve.add_argument("--workers", type=int, default=1, help="worker processes (default: 1)")
    serve.add_argument("--reload", action="store_true", help="restart on code changes (development)")
    serve.add_argument("--access-log", action="store_true", help="log every request (default: GATEWAY_ACCESS_LOG)")
    serve.add_argument(
        "--graceful-timeout",
        type=_seconds,
        metavar="SECONDS",
        help="on SIGTERM/SIGINT, wait this long for in-flight requests, then as long again for the email worker's "
        "current message (default: GATEWAY_GRACEFUL_TIMEOUT or 30)",
    )
    serve.set_defaults(run=_serve)

    db = commands.add_parser(
        "db",
        help="database migrations, backup and restore",
        description="Database migrations (Alembic), backup and restore.",
    )
    db_commands = db.add_subparsers(title="commands", metavar="COMMAND", required=True)
    upgrade = db_commands.add_parser(
        "upgrade",
        help="migrate to a newer revision (idempotent)",
        description="Migrate the database to REVISION (default: head).",
    )
    upgrade.add_argument("revision", nargs="?", default="head")
    upgrade.set_defaults(run=_db_upgrade)
    downgrade = db_commands.add_parser(
        "downgrade",
        help="migrate to an older revision",
        description="Migrate the database down to REVISION (default: -1).",
    )
    downgrade.add_argument("revision", nargs="?", default="-1")
    downgrade.set_defaults(run=_db_downgrade)
    backup = db_commands.add_parser(
        "backup",
        help="write a consistent backup (the gateway may keep serving)",
        description="Write a consistent backup of the database to PATH; the gateway may keep serving and writing "
        "meanwhile. SQLite: one self-contained file made with SQLite's online backup API. PostgreSQL: pg_dump "
        "--format=custom of the whole database (needs the PostgreSQL client tools on PATH). The file is readable "
        "by its owner only and appears only once complete.",
    )
    backup.add_argument("path", type=Path, metavar="PATH", help="the backup file to write")
    backup.add_argument("--force", action="store_true", help="replace PATH if it exists")
    backup.set_defaults(run=_db_backup)
    restore = db_commands.add_parser(
        "restore",
        help="replace the database's content with a backup",
        description="Replace the database's content with the backup at PATH in one transaction (a failed restore "
        "changes nothing), then report its Alembic revision: run `gateway db upgrade` when it is behind. Stop the "
        "gateway and its workers first: a database in use is refused. SQLite: the whole file's content is "
        "replaced. PostgreSQL: pg_restore --clean --if-exists --no-owner into the existing database; tables the "
        "backup does not have are left as they are, and listed.",
    )
    restore.add_argument("path", type=Path, metavar="PATH", help="a file written by `gateway db backup`")
    restore.set_defaults(run=_db_restore)

    seed = commands.add_parser(
        "seed",
        help="load demo data",
        description="Load deterministic demo data into an "
        "empty store (a store with data is left as it is unless --reset).",
    )
    seed.add_argument("--customers", type=_count, default=20)
    seed.add_argument("--products", type=_count, default=12)
    seed.add_argument("--orders", type=_count, default=60)
    seed.add_argument("--lines-per-order", type=_count, default=3)
    seed.add_argument("--reset", action="store_true", help="delete all existing data first")
    seed.set_defaults(run=_seed)

    worker = commands.add_parser(
        "worker",
        help="deliver the email outbox",
        description="Deliver queued emails until interrupted (SIGINT/SIGTERM). Several workers may run at once; "
        "the app also runs one unless GATEWAY_EMAIL_WORKER=false.",
    )
    worker.add_argument("--once", action="store_true", help="deliver what is due now, then exit")
    worker.set_defaults(run=_worker)

    schema = commands.add_parser(
        "schema",
        help="schema.graphql export and drift check",
        description="Export the SDL or check schema.graphql for drift.",
    )
    schema_commands = schema.add_subparsers(title="commands", metavar="COMMAND", required=True)
    export = schema_commands.add_parser("export", help="write the SDL", description="Write the schema's SDL.")
    export.add_argument("--output", type=Path, default=SCHEMA_FILE, help="file to write, or - for stdout")
    export.set_defaults(run=_schema_export)
    check = schema_commands.add_parser(
        "check",
        help="fail on drift from schema.graphql or on broken trusted documents",
        description="Fail when the schema differs from the file (listing breaking changes), or when a stored "
        "trusted document no longer validates against the schema. Without a reachable, migrated database the "
        "documents are skipped with a note.",
    )
    check.add_argument("--file", type=Path, default=SCHEMA_FILE)
    check.set_defaults(run=_schema_check)

    _persisted_parser(commands)
    _apikey_parser(commands)
    add_token_command(commands)
    return parser


def _persisted_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    persisted = commands.add_parser(
        "persisted",
        help="trusted documents of partner clients",
        description="Trusted documents (persisted operations) registered by partner clients, and whether a "
        "client may run only those (safelist) or any valid operation (open).",
    )
    persisted_commands = persisted.add_subparsers(title="commands", metavar="COMMAND", required=True)

    imported = persisted_commands.add_parser(
        "import",
        help="validate a manifest and store its documents",
        description="Validate every document of MANIFEST against the schema and store them for the client in "
        "one transaction; if any is invalid, list them all and store nothing. MANIFEST is Apollo's "
        "persisted-query manifest or a Relay-style JSON map of id to query text. Re-importing is a no-op; an id "
        "already stored with different text is an error (ids are immutable).",
    )
    imported.add_argument("manifest", type=Path, metavar="MANIFEST", help="the manifest (JSON) file")
    imported.add_argument("--client", required=True, metavar="NAME", help="the client the documents belong to")
    imported.add_argument(
        "--safelist",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="also safelist the client (--no-safelist: open it); default: leave its policy as it is",
    )
    imported.set_defaults(run=_persisted_import)

    listed = persisted_commands.add_parser(
        "list", help="list stored documents", description="List stored trusted documents by client and id."
    )
    listed.add_argument("--client", metavar="NAME", help="only this client's documents")
    listed.set_defaults(run=_persisted_list)

    remove = persisted_commands.add_parser(
        "remove",
        help="remove documents of a client",
        description="Remove the client's documents with the given ids (all or none: an unknown id removes "
        "nothing), or all of its documents.",
    )
    remove.add_argument("document_ids", nargs="*", metavar="ID", help="document ids to remove")
    remove.add_argument("--client", required=True, metavar="NAME")
    remove.add_argument("--all", action="store_true", dest="all_documents", help="remove every document")
    remove.set_defaults(run=_persisted_remove)

    policy = persisted_commands.add_parser(
        "policy",
        help="safelist or open a client",
        description="Safelist a client (only its trusted documents run) or open it (any valid operation runs).",
    )
    policy.add_argument("--client", required=True, metavar="NAME")
    choice = policy.add_mutually_exclusive_group(required=True)
    choice.add_argument("--safelist", action="store_const", const=True, dest="safelist", help="trusted only")
    choice.add_argument("--open", action="store_const", const=False, dest="safelist", help="any valid operation")
    policy.set_defaults(run=_persisted_policy)


def _apikey_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    apikey = commands.add_parser(
        "apikey",
        help="API keys of partner clients",
        description="API keys partner services send as `X-API-Key: <key>` (or `Authorization: Bearer <key>`). "
        "A key acts for its client, whose trusted-document policy applies, with its scopes. Only a hash of each "
        "key is stored.",
    )
    apikey_commands = apikey.add_subparsers(title="commands", metavar="COMMAND", required=True)

    create = apikey_commands.add_parser(
        "create",
        help="create a key and print it (once)",
        description="Create an API key for a client and print it. This is the only time the key is shown: only "
        "its hash is stored.",
    )
    create.add_argument("--client", required=True, metavar="NAME", help="the partner client the key acts for")
    create.add_argument(
        "--scopes",
        required=True,
        metavar="SCOPES",
        help='what the key may do, space-separated, e.g. "orders:read products:read"',
    )
    create.add_argument("--label", metavar="TEXT", help="a note for people, e.g. where the key is deployed")
    create.set_defaults(run=_apikey_create)

    listed = apikey_commands.add_parser(
        "list",
        help="list keys (never the keys themselves)",
        description="List API keys with their client, scopes, creation, last use (recorded at most once a "
        "minute) and revocation. Neither keys nor their hashes are shown.",
    )
    listed.add_argument("--client", metavar="NAME", help="only this client's keys")
    listed.set_defaults(run=_apikey_list)

    revoke = apikey_commands.add_parser(
        "revoke",
        help="revoke a key",
        description="Revoke the API key with this id (as `gateway apikey list` shows it). Revoking a revoked key "
        "changes nothing. Running gateways refuse the key once their cached copy expires (within "
        f"{API_KEY_CACHE_TTL:g} seconds).",
    )
    revoke.add_argument("public_id", metavar="ID", help="the key's id (the 12 hex digits after gwk_)")
    revoke.set_defaults(run=_apikey_revoke)


def _count(value: str) -> int:
    number = int(value)
    if number < 0:
        raise argparse.ArgumentTypeError("must not be negative")
    return number


def _seconds(value: str) -> int:
    number = int(value)
    if not 1 <= number <= 3600:
        raise argparse.ArgumentTypeError("must be 1 to 3600 seconds")
    return number


APP = "gateway.app:create_app_from_env"


def _serve(args: argparse.Namespace, settings: Settings) -> int:
    """Run uvicorn. On SIGTERM (or SIGINT) it stops accepting connections, waits up to the graceful timeout for
    in-flight requests (then cancels them), runs the app's shutdown (which gives the email worker as long again to
    finish its current message) and exits 0."""
    import os

    import uvicorn

    from gateway.observability.logging import configure_logging

    graceful_timeout = args.graceful_timeout or settings.graceful_timeout
    # The app (built by the factory, in this process or in each worker) bounds its own shutdown by the same value.
    os.environ["GATEWAY_GRACEFUL_TIMEOUT"] = str(graceful_timeout)
    if args.workers > 1 and not args.reload and not settings.redis_url:
        # Each worker would keep its own in-memory cache, and a write through one would not invalidate the others.
        os.environ["GATEWAY_RESPONSE_CACHE"] = "false"
        print(
            f"warning: --workers {args.workers} without REDIS_URL: the response cache is off, and rate limits, "
            "persisted queries and caches are per worker process (each allows the whole GATEWAY_RATE_LIMIT_REQUESTS); "
            "set REDIS_URL to share them",
            file=sys.stderr,
        )
    if not args.reload:
        _check_bind(args.host or settings.host, args.port or settings.port)
    if args.workers > 1 and not args.reload and settings.metrics:
        _multiprocess_metrics_dir()

    access_log = args.access_log or settings.access_log
    os.environ["GATEWAY_ACCESS_LOG"] = "true" if access_log else "false"  # for the factory, in each worker too
    configure_logging(settings.log_level, settings.log_format_resolved, access_log=access_log)
    _exit_zero_on_sigterm()
    options: dict[str, Any] = {
        "factory": True,
        "host": args.host or settings.host,
        "port": args.port or settings.port,
        "log_level": settings.log_level,
        "log_config": None,  # the workers' factory (create_app_from_env) routes uvicorn's logs through structlog
        "access_log": access_log,
        "server_header": False,
        "proxy_headers": False,
        "timeout_graceful_shutdown": graceful_timeout,
    }
    if args.workers > 1 and not args.reload:
        from gateway.workers import run_workers

        # uvicorn's own --workers share one socket, and one worker may take every connection (gateway/workers.py).
        run_workers(uvicorn.Config(APP, workers=args.workers, **options))
        return 0
    uvicorn.run(
        APP,
        reload=args.reload,
        reload_dirs=["gateway", "schema", "resolvers", "integrations"] if args.reload else None,
        **options,
    )
    return 0


def _exit_zero_on_sigterm() -> None:
    """Make a graceful stop on SIGTERM end with status 0.

    uvicorn takes SIGTERM over while it serves and, once its graceful shutdown is complete, raises the signal again
    under the handler it found. Python's default one would then kill the finished process (status 143, -15 to a
    parent), so orchestrators and tests would see a failure after a clean stop. This handler exits with 0 instead,
    and ends start-up the same way when SIGTERM arrives before uvicorn has taken it over. (With --workers or
    --reload the supervisor handles the signal itself and returns normally.)"""
    import signal

    def exit_zero(_signum: int, _frame: object) -> None:
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, exit_zero)


def _check_bind(host: str, port: int) -> None:
    """Fail now if (host, port) cannot be bound. With one worker uvicorn starts the app before it binds, and after a
    failed bind it waits for the app's shutdown, which can hang (the Redis invalidation listener, cancelled while it
    subscribes). With several workers it also keeps their SO_REUSEPORT sockets (gateway/workers.py) from joining
    a port another program of the same user listens on that way. Same options as uvicorn's bind."""
    import socket

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            raise _Exit(f"cannot listen on {host}:{port}: {exc.strerror or exc}", 1) from exc


def _multiprocess_metrics_dir() -> None:
    """Workers share metrics through files in `PROMETHEUS_MULTIPROC_DIR`: a fresh temporary directory unless one
    is set, and a set one is emptied of a previous run's files (prometheus-client's rule)."""
    import os
    import tempfile

    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if not directory:
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="gateway-metrics-")
        return
    Path(directory).mkdir(parents=True, exist_ok=True)
    for stale in Path(directory).glob("*.db"):
        stale.unlink()


def _db_upgrade(args: argparse.Namespace, settings: Settings) -> int:
    from integrations.store import migrate

    migrate.upgrade(settings.database_url, args.revision)
    print(f"database at revision {migrate.current_revision_sync(settings.database_url)}")
    return 0


def _db_downgrade(args: argparse.Namespace, settings: Settings) -> int:
    from integrations.store import migrate

    migrate.downgrade(settings.database_url, args.revision)
    print(f"database at revision {migrate.current_revision_sync(settings.database_url) or 'base (empty)'}")
    return 0


def _db_backup(args: argparse.Namespace, settings: Settings) -> int:
    import os

    from integrations.store.backup import BackupError, backup

    try:
        done = asyncio.run(backup(settings.database_url, args.path, environ=os.environ, force=args.force))
    except BackupError as exc:
        raise _Exit(str(exc), 1) from exc
    print(f"backed up {done.source} to {done.path} ({done.size:,} bytes)")
    return 0


def _db_restore(args: argparse.Namespace, settings: Settings) -> int:
    import os

    from integrations.store.backup import BackupError, restore

    try:
        done = asyncio.run(restore(settings.database_url, args.path, environ=os.environ))
    except BackupError as exc:
        raise _Exit(str(exc), 1) from exc
    print(f"restored {done.target} from {args.path}")
    print("\n".join(done.describe()))
    return 0


def _seed(args: argparse.Namespace, settings: Settings) -> int:
    from gateway.services import running_services
    from integrations.store.engine import create_engine, create_sessionmaker
    from integrations.store.session import StoreSession
    from resolvers.seed import SeedSize, seed, seed_payments

    async def run() -> str:
        engine = create_engine(settings.database_url)
        sessionmaker = create_sessionmaker(engine)
        store = StoreSession(sessionmaker)
        try:
            size = SeedSize(args.customers, args.products, args.orders, args.lines_per_order)
            report = await seed(store, size, reset=args.reset)
            if report.skipped:
                return "store already has data; left as it is (use --reset to replace it)"
            async with running_services(settings, sessionmaker, start_worker=False) as running:
                placed = await seed_payments(store, running.services)
        finally:
            await store.close()
            await engine.dispose()
        lines = [
            f"seeded {report.customers} customers, {report.products} products, "
            f"{report.orders} orders, {report.lines} order lines",
            f"placed {len(placed)} orders through the {settings.payments_provider} payment provider:",
            *(f"  {line}" for line in placed),
        ]
        return "\n".join(lines)

    print(asyncio.run(run()))
    return 0


def _worker(args: argparse.Namespace, settings: Settings) -> int:
    import signal

    from gateway.services import outbox_worker
    from integrations.cache.tagged import tagged_store_from_url
    from integrations.store.changes import ChangeFeed
    from integrations.store.engine import create_engine, create_sessionmaker

    async def run() -> int:
        engine = create_engine(settings.database_url)
        changes = ChangeFeed()
        # Delivery changes what `Order.emails` shows: drop the gateways' cached copies (shared only through Redis).
        responses = (
            tagged_store_from_url(settings.redis_url, prefix=settings.cache_prefix) if settings.redis_url else None
        )
        if responses is not None and settings.response_cache:
            changes.listen(responses.invalidate)
        worker = outbox_worker(settings, create_sessionmaker(engine, changes=changes))
        delivered = 0
        try:
            if args.once:
                while handled := await worker.run_once():
                    delivered += handled
            else:
                stop = asyncio.Event()
                loop = asyncio.get_running_loop()
                for signum in (signal.SIGINT, signal.SIGTERM):
                    loop.add_signal_handler(signum, stop.set)
                print("email worker running; stop with Ctrl-C", flush=True)
                await worker.run(stop, settings.email_poll_interval)
        finally:
            await worker.backend.aclose()
            await changes.drain()
            if responses is not None:
                await responses.aclose()
            await engine.dispose()
        return delivered

    handled = asyncio.run(run())
    if args.once:
        print(f"handled {handled} emails")
    return 0


def _schema_export(args: argparse.Namespace, _settings: Settings) -> int:
    from gateway.schema_file import render
    from schema import build_schema

    sdl = render(build_schema())
    if str(args.output) == "-":
        sys.stdout.write(sdl)
    else:
        args.output.write_text(sdl, encoding="utf-8")
        print(f"wrote {args.output}")
    return 0


def _schema_check(args: argparse.Namespace, settings: Settings) -> int:
    from gateway.schema_file import check
    from schema import build_schema

    schema = build_schema()
    drift = check(schema, args.file)
    if drift.clean:
        print(f"{args.file} is up to date")
    else:
        print(f"{args.file} differs from the schema (run `gateway schema export`):", file=sys.stderr)
        print("\n".join(drift.diff), file=sys.stderr)
        for title, changes in (("BREAKING changes", drift.breaking), ("dangerous changes", drift.dangerous)):
            if changes:
                print(f"\n{title}:", file=sys.stderr)
                print("\n".join(f"  - {change}" for change in changes), file=sys.stderr)
    documents = _check_trusted_documents(settings, schema._schema)
    return 0 if drift.clean and documents == 0 else 1


def _check_trusted_documents(settings: Settings, schema: GraphQLSchema) -> int:
    """1 when a stored trusted document no longer validates; a database we cannot read is a note, not a failure."""
    from gateway.trusted_documents import check_stored
    from resolvers.trusted_documents import list_documents

    try:
        documents = _with_store(settings, list_documents)
    except _StoreProblem as problem:
        print(f"note: trusted documents not checked: {problem}", file=sys.stderr)
        return 0
    if invalid := check_stored(documents, schema):
        _print_invalid(f"{len(invalid)} of {len(documents)} trusted documents fail against the schema:", invalid)
        return 1
    print(f"{len(documents)} trusted documents validate against the schema")
    return 0


def _persisted_import(args: argparse.Namespace, settings: Settings) -> int:
    from gateway.trusted_documents import ManifestError, load_manifest, validate_documents
    from resolvers.trusted_documents import import_documents

    try:
        documents = load_manifest(args.manifest)
    except OSError as exc:
        raise _Exit(f"cannot read {args.manifest}: {exc.strerror or exc}", 2) from exc
    except ManifestError as exc:
        raise _Exit(str(exc), 1) from exc
    if invalid := validate_documents(documents):
        _print_invalid(f"{len(invalid)} of {len(documents)} documents are invalid; nothing imported:", invalid)
        return 1
    result = _persisted(settings, lambda sm: import_documents(sm, args.client, documents, safelist=args.safelist))
    policy = {None: "", True: "; client safelisted", False: "; client open"}[args.safelist]
    print(f"{args.client}: {len(result.added)} documents added, {len(result.unchanged)} already present{policy}")
    return 0


def _persisted_list(args: argparse.Namespace, settings: Settings) -> int:
    from resolvers.trusted_documents import list_documents

    documents = _persisted(settings, lambda sm: list_documents(sm, args.client))
    if not documents:
        print("no trusted documents" + (f" for client {args.client}" if args.client else ""))
        return 0
    rows = [("CLIENT", "ID", "OPERATION", "SHA256")]
    rows += [(d.client, d.document_id, d.operation_name or "-", d.sha256[:12]) for d in documents]
    widths = [max(len(row[column]) for row in rows) for column in range(3)]
    for row in rows:
        print("  ".join([*(value.ljust(width) for value, width in zip(row, widths, strict=False)), row[3]]))
    return 0


def _persisted_remove(args: argparse.Namespace, settings: Settings) -> int:
    from resolvers.trusted_documents import remove_documents

    if args.all_documents == bool(args.document_ids):
        raise _Exit("persisted remove: give document ids or --all, not both", 2)
    ids, everything = args.document_ids, args.all_documents
    removed = _persisted(settings, lambda sm: remove_documents(sm, args.client, ids, all_documents=everything))
    print(f"{args.client}: {removed} documents removed")
    return 0


def _persisted_policy(args: argparse.Namespace, settings: Settings) -> int:
    from resolvers.trusted_documents import set_policy

    _persisted(settings, lambda sm: set_policy(sm, args.client, safelist=args.safelist))
    state = "safelisted (only its trusted documents run)" if args.safelist else "open (any valid operation runs)"
    print(f"{args.client}: {state}")
    return 0


def _apikey_create(args: argparse.Namespace, settings: Settings) -> int:
    from resolvers.access.api_keys import create_api_key

    created = _persisted(
        settings, lambda sm: create_api_key(sm, args.client, args.scopes, label=args.label), table="api_key"
    )
    record = created.record
    label = f", label {record.label!r}" if record.label else ""
    print(f"API key {record.public_id} created for client {record.client} (scopes: {' '.join(record.scopes)}{label})")
    print()
    print(f"    {created.key}")
    print()
    print("Copy the key now: it will not be shown again (only its hash is stored).")
    print(f"Partners send it as `X-API-Key: <key>`; revoke it with `gateway apikey revoke {record.public_id}`.")
    return 0


def _apikey_list(args: argparse.Namespace, settings: Settings) -> int:
    from resolvers.access.api_keys import list_api_keys

    keys = _persisted(settings, lambda sm: list_api_keys(sm, args.client), table="api_key")
    if not keys:
        print("no API keys" + (f" for client {args.client}" if args.client else ""))
        return 0
    rows = [("ID", "CLIENT", "SCOPES", "CREATED", "LAST USED", "REVOKED", "LABEL")]
    rows += [
        (
            key.public_id,
            key.client,
            ",".join(key.scopes),
            _timestamp(key.created_at),
            _timestamp(key.last_used_at, "never"),
            _timestamp(key.revoked_at, "-"),
            key.label or "-",
        )
        for key in keys
    ]
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]) - 1)]
    for row in rows:
        print("  ".join([*(value.ljust(width) for value, width in zip(row, widths, strict=False)), row[-1]]))
    return 0


def _apikey_revoke(args: argparse.Namespace, settings: Settings) -> int:
    from resolvers.access.api_keys import revoke_api_key

    revoked = _persisted(settings, lambda sm: revoke_api_key(sm, args.public_id), table="api_key")
    record = revoked.record
    if revoked.already:
        print(
            f"API key {record.public_id} of client {record.client} was already revoked at "
            f"{_timestamp(record.revoked_at)}"
        )
    else:
        print(
            f"API key {record.public_id} of client {record.client} revoked; running gateways refuse it within "
            f"{API_KEY_CACHE_TTL:g} seconds"
        )
    return 0


def _timestamp(value: datetime | None, missing: str = "-") -> str:
    return missing if value is None else value.strftime("%Y-%m-%dT%H:%M:%SZ")


class _Exit(Exception):
    """Ends a command with one line on stderr and an exit code (1: refused input, 2: usage or configuration)."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


class _StoreProblem(Exception):
    """The database cannot be used: missing, unreachable or not migrated far enough."""


def _persisted(
    settings: Settings,
    work: Callable[[async_sessionmaker[AsyncSession]], Awaitable[T]],
    *,
    table: str = "trusted_document",
) -> T:
    """Run `work` on the store (which must have `table`), turning what a user can fix into an `_Exit`."""
    from integrations.errors import InputErrors, NotFoundError, UserInputError
    from resolvers.trusted_documents import DocumentConflictError

    try:
        return _with_store(settings, work, table=table)
    except _StoreProblem as exc:
        raise _Exit(str(exc), 2) from exc
    except UserInputError as exc:
        raise _Exit(exc.message, 2) from exc
    except (InputErrors, DocumentConflictError, NotFoundError) as exc:
        raise _Exit(exc.message, 1) from exc


def _with_store(
    settings: Settings,
    work: Callable[[async_sessionmaker[AsyncSession]], Awaitable[T]],
    *,
    table: str = "trusted_document",
) -> T:
    """Run `work` with a session factory on a database that has `table` (migrated far enough), else `_StoreProblem`.

    A SQLite file that does not exist is reported, not created.
    """
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import DBAPIError

    from integrations.errors import StoreUnavailableError
    from integrations.store.engine import create_engine, create_sessionmaker

    url = make_url(settings.database_url)
    sqlite_file = url.database if url.get_backend_name() == "sqlite" and url.database != ":memory:" else None
    if sqlite_file and not Path(sqlite_file).exists():
        raise _StoreProblem(f"no database at {sqlite_file} (run `gateway db upgrade`)")

    async def run() -> T:
        engine = create_engine(settings.database_url)
        try:
            sessionmaker = create_sessionmaker(engine)
            async with asyncio.timeout(STORE_TIMEOUT):
                migrated = await _has_table(sessionmaker, table)
            if not migrated:
                raise _StoreProblem(f"the database has no {table} table (run `gateway db upgrade`)")
            return await work(sessionmaker)
        finally:
            await engine.dispose()

    try:
        return asyncio.run(run())
    except (StoreUnavailableError, DBAPIError, OSError, TimeoutError) as exc:
        reason = exc.orig if isinstance(exc, DBAPIError) else exc
        first_line = (str(reason).strip().splitlines() or [type(reason).__name__])[0]
        raise _StoreProblem(f"cannot use the database: {first_line}") from exc


async def _has_table(sessionmaker: async_sessionmaker[AsyncSession], table: str) -> bool:
    from sqlalchemy import inspect

    async with sessionmaker() as session:
        return await session.run_sync(lambda sync: inspect(sync.connection()).has_table(table))


def _print_invalid(title: str, invalid: Sequence[InvalidDocument]) -> None:
    print(title, file=sys.stderr)
    for document in invalid:
        print(f"  {document}", file=sys.stderr)
