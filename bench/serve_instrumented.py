"""Serve the gateway or the reference app with SQL statement and request counters, for the benchmark runner.

``BENCH_APP=gateway|reference BENCH_COUNTER_DIR=/tmp/dir uvicorn --factory bench.serve_instrumented:create_app``

The wrapped app is unchanged: an observer of every statement its engine (``app.state.engine``) runs, through
SQLAlchemy or directly (``integrations.store.statements.observe_statements``), counts them, and a thin ASGI
layer counts ``/graphql`` requests and answers ``GET /__bench/sql`` with the totals. Every worker process keeps
its counters in its own small memory-mapped file in ``BENCH_COUNTER_DIR``, and ``/__bench/sql`` sums all of
them, so the totals are right whichever worker answers and however many there are. Totals only grow: the
runner waits until no request is in flight, reads them before and after a scenario and divides the differences
(resetting would race with other workers).
"""

from __future__ import annotations

import mmap
import os
import struct
from pathlib import Path
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.types import Receive, Scope, Send

APP_ENV = "BENCH_APP"
COUNTER_DIR_ENV = "BENCH_COUNTER_DIR"
SQL_PATH = "/__bench/sql"
GRAPHQL_PATH = "/graphql"

_LAYOUT = struct.Struct("<qqq")  # statements, completed /graphql requests, /graphql requests in flight


class Counters:
    """This process's counters, mirrored into ``<dir>/<pid>.counters`` so any worker can sum them all."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / f"{os.getpid()}.counters"
        with path.open("wb") as file:
            file.write(bytes(_LAYOUT.size))
        self._file = path.open("r+b")
        self._map = mmap.mmap(self._file.fileno(), _LAYOUT.size)
        self.statements = 0
        self.requests = 0
        self.active = 0

    def _publish(self) -> None:
        _LAYOUT.pack_into(self._map, 0, self.statements, self.requests, self.active)

    def on_statement(self, *_args: Any) -> None:
        self.statements += 1
        _LAYOUT.pack_into(self._map, 0, self.statements, self.requests, self.active)

    def request_started(self) -> None:
        self.active += 1
        self._publish()

    def request_finished(self) -> None:
        self.active -= 1
        self.requests += 1
        self._publish()

    def totals(self) -> dict[str, int]:
        totals = {"statements": 0, "requests": 0, "active": 0, "processes": 0}
        for path in self.directory.glob("*.counters"):
            data = path.read_bytes()
            if len(data) == _LAYOUT.size:
                statements, requests, active = _LAYOUT.unpack(data)
                totals["statements"] += statements
                totals["requests"] += requests
                totals["active"] += active
                totals["processes"] += 1
        return totals


class Instrumented:
    """ASGI wrapper: counts ``/graphql`` requests (in flight and done), serves ``GET /__bench/sql``, passes the rest."""

    def __init__(self, app: Starlette, counters: Counters) -> None:
        self.app = app
        self.counters = counters
        self.state = app.state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path = scope["path"]
            if path == SQL_PATH:
                body = orjson.dumps(self.counters.totals())
                headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
                await send({"type": "http.response.start", "status": 200, "headers": headers})
                await send({"type": "http.response.body", "body": body})
                return
            if path == GRAPHQL_PATH:
                self.counters.request_started()
                try:
                    await self.app(scope, receive, send)
                finally:
                    self.counters.request_finished()
                return
        await self.app(scope, receive, send)


def instrument(app: Starlette, counter_dir: Path) -> Instrumented:
    from integrations.store.statements import observe_statements

    counters = Counters(counter_dir)
    engine = getattr(app.state, "engine", None)  # the bare endpoint has no database
    if engine is not None:
        observe_statements(engine, counters.on_statement)
    return Instrumented(app, counters)


def create_app() -> Instrumented:
    """Factory for ``uvicorn --factory``: the app named by ``BENCH_APP``, instrumented."""
    kind = os.environ.get(APP_ENV, "gateway")
    app: Starlette
    if kind == "gateway":
        from gateway.app import create_app_from_env

        app = create_app_from_env()
    elif kind == "reference":
        from bench.reference_app import create_app as create_reference_app

        app = create_reference_app()
    elif kind == "bare":
        from bench.bare_app import create_app as create_bare_app

        app = create_bare_app()
    else:
        raise RuntimeError(f"{APP_ENV} must be 'gateway', 'reference' or 'bare' (got {kind!r})")
    directory = os.environ.get(COUNTER_DIR_ENV)
    if not directory:
        raise RuntimeError(f"set {COUNTER_DIR_ENV} to a directory for the counters")
    return instrument(app, Path(directory))


def main(argv: list[str] | None = None) -> None:
    """``python -m bench.serve_instrumented --port P [--workers N]``: serve `create_app` as ``gateway serve``
    would, several workers on sockets of their own (gateway/workers.py) rather than uvicorn's shared one."""
    import argparse

    import uvicorn

    from gateway.workers import run_workers

    parser = argparse.ArgumentParser(prog="python -m bench.serve_instrumented")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args(argv)
    config = uvicorn.Config(
        "bench.serve_instrumented:create_app",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        access_log=False,
        log_level="warning",
        server_header=False,
    )
    if args.workers > 1:
        run_workers(config)
    else:
        uvicorn.Server(config).run()


if __name__ == "__main__":
    main()
