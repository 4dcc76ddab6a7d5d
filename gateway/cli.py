"""The `gateway` command: serve, db upgrade/downgrade, seed, worker, schema export/check."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from pathlib import Path

from gateway.settings import Settings, SettingsError, load_settings

SCHEMA_FILE = Path("schema.graphql")


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
    return int(args.run(args, settings) or 0)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gateway", description="GraphQL API gateway.")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")

    serve = commands.add_parser("serve", help="run the HTTP server", description="Run the HTTP server (uvicorn).")
    serve.add_argument("--host", help="bind address (default: GATEWAY_HOST or 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (default: GATEWAY_PORT or 8000)")
    serve.add_argument("--workers", type=int, default=1, help="worker processes (default: 1)")
    serve.add_argument("--reload", action="store_true", help="restart on code changes (development)")
    serve.add_argument("--access-log", action="store_true", help="log every request")
    serve.set_defaults(run=_serve)

    db = commands.add_parser("db", help="database migrations", description="Database migrations (Alembic).")
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
        help="fail on drift from schema.graphql",
        description="Fail when the schema differs from the file; list breaking changes.",
    )
    check.add_argument("--file", type=Path, default=SCHEMA_FILE)
    check.set_defaults(run=_schema_check)
    return parser


def _count(value: str) -> int:
    number = int(value)
    if number < 0:
        raise argparse.ArgumentTypeError("must not be negative")
    return number


def _serve(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn

    uvicorn.run(
        "gateway.app:create_app_from_env",
        factory=True,
        host=args.host or settings.host,
        port=args.port or settings.port,
        workers=None if args.reload else args.workers,
        reload=args.reload,
        reload_dirs=["gateway", "schema", "resolvers", "integrations"] if args.reload else None,
        log_level=settings.log_level,
        access_log=args.access_log,
        server_header=False,
        proxy_headers=False,
    )
    return 0


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
    from integrations.store.engine import create_engine, create_sessionmaker

    async def run() -> int:
        engine = create_engine(settings.database_url)
        worker = outbox_worker(settings, create_sessionmaker(engine))
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


def _schema_check(args: argparse.Namespace, _settings: Settings) -> int:
    from gateway.schema_file import check
    from schema import build_schema

    drift = check(build_schema(), args.file)
    if drift.clean:
        print(f"{args.file} is up to date")
        return 0
    print(f"{args.file} differs from the schema (run `gateway schema export`):", file=sys.stderr)
    print("\n".join(drift.diff), file=sys.stderr)
    for title, changes in (("BREAKING changes", drift.breaking), ("dangerous changes", drift.dangerous)):
        if changes:
            print(f"\n{title}:", file=sys.stderr)
            print("\n".join(f"  - {change}" for change in changes), file=sys.stderr)
    return 1
