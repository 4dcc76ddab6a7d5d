"""Drive the gateway (or the reference app) in process, without HTTP: CPU per request, a profile, or an
instruction count under callgrind.

    python -m bench.inprocess --database-url URL [--app gateway|reference] [--query q1|q2|typename]
                              [--requests 2000] [--concurrency 16] [--warmup 200] [--profile N] [--callgrind]

The app is built as the bench serves it (production settings, anonymous read scopes, no rate limit, no email
worker, the in-process cache store unless `REDIS_URL` is set) and called as an ASGI app with a POST per request,
`--concurrency` at a time. Prints CPU and wall time per request. The store must be seeded as `bench.run` seeds it
(`gateway db upgrade` and `gateway seed --customers 1000 --products 200 --orders 5000 --lines-per-order 3`);
Q2 reads the 2,500th order.

Wall-clock A/B runs on a shared VM cannot separate changes of a few per cent. `--callgrind` runs this driver
twice under valgrind's callgrind (`--requests` 200 and 600 after the warm-up) and prints the difference in
instructions per request: the cost of one request, without start-up, repeatable within about 2% whatever else
the machine is doing. `--profile N` prints cProfile's top N functions (by own time) for the measured requests.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import pstats
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any

import orjson

from bench.run import JWT_SECRET, SCENARIOS, encode_order_id, pick_order_pk

TYPENAME = "query T { __typename }"
ASGIApp = Callable[[MutableMapping[str, Any], Any, Any], Awaitable[None]]


def configure(database_url: str) -> None:
    """The environment `bench.run` serves the gateway with."""
    os.environ |= {
        "DATABASE_URL": database_url,
        "GATEWAY_ENV": "production",
        "GATEWAY_JWT_SECRET": JWT_SECRET,
        "GATEWAY_ANONYMOUS_SCOPES": "customers:read orders:read",
        "GATEWAY_LOG_LEVEL": "warning",
        "GATEWAY_EMAIL_WORKER": "false",
        "GATEWAY_RATE_LIMIT": "false",
    }


def build_app(name: str) -> Any:
    if name == "reference":
        from bench.reference_app import create_app

        return create_app()
    from gateway.app import create_app as create_gateway
    from gateway.settings import load_settings

    return create_gateway(load_settings())


def body_for(query: str, database_url: str) -> bytes:
    if query == "typename":
        return orjson.dumps({"query": TYPENAME, "operationName": "T"})
    variables = {"id": encode_order_id(pick_order_pk(database_url))} if query == "q2" else {}
    return SCENARIOS[query].body(variables)


async def post(app: ASGIApp, body: bytes) -> tuple[int, bytes]:
    """One POST /graphql through the ASGI interface; the status and the body."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/graphql",
        "raw_path": b"/graphql",
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"127.0.0.1"),
            (b"content-type", b"application/json"),
            (b"accept", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }
    sent = False
    status = 0
    chunks: list[bytes] = []

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            await asyncio.Event().wait()  # no disconnect while the request runs
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    await app(scope, receive, send)
    return status, b"".join(chunks)


async def drive(app: ASGIApp, body: bytes, requests: int, concurrency: int) -> None:
    remaining = requests

    async def worker() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            status, answer = await post(app, body)
            if status != 200 or b'"errors"' in answer:
                raise SystemExit(f"unexpected answer {status}: {answer[:300]!r}")

    await asyncio.gather(*(worker() for _ in range(concurrency)))


async def measure(args: argparse.Namespace, body: bytes) -> None:
    app = build_app(args.app)
    async with app.router.lifespan_context(app):
        await drive(app, body, args.warmup, args.concurrency)
        profiler = cProfile.Profile() if args.profile else None
        cpu, wall = time.process_time(), time.perf_counter()
        if profiler is not None:
            profiler.enable()
        await drive(app, body, args.requests, args.concurrency)
        if profiler is not None:
            profiler.disable()
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    print(
        f"{args.app} {args.query}: {args.requests} requests, {args.concurrency} concurrent: "
        f"{cpu / args.requests * 1e3:.3f} ms CPU, {wall / args.requests * 1e3:.3f} ms wall per request"
    )
    if profiler is not None:
        pstats.Stats(profiler).sort_stats("tottime").print_stats(args.profile)


def callgrind(args: argparse.Namespace) -> None:
    """Instructions per request: the difference between 600 and 200 measured requests, over 400."""
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        raise SystemExit("valgrind is not installed (apt-get install valgrind)")
    counts = []
    for requests in (200, 600):
        with tempfile.TemporaryDirectory() as directory:
            out = Path(directory) / "callgrind.out"
            command = [
                valgrind,
                "--tool=callgrind",
                f"--callgrind-out-file={out}",
                sys.executable,
                "-m",
                "bench.inprocess",
                *_forwarded(args),
                "--requests",
                str(requests),
            ]
            subprocess.run(command, check=True, capture_output=True)
            summary = re.search(rb"^summary: (\d+)", out.read_bytes(), re.MULTILINE)
            if summary is None:
                raise SystemExit("callgrind wrote no summary")
            counts.append(int(summary.group(1)))
    per_request = (counts[1] - counts[0]) / 400
    print(f"{args.app} {args.query}: {per_request / 1e6:.3f}M instructions per request (callgrind, 600 - 200)")


def _forwarded(args: argparse.Namespace) -> list[str]:
    return [
        "--database-url",
        args.database_url,
        "--app",
        args.app,
        "--query",
        args.query,
        "--concurrency",
        str(args.concurrency),
        "--warmup",
        str(args.warmup),
    ]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.inprocess", description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", required=True, help="a store seeded as bench.run seeds it")
    parser.add_argument("--app", choices=("gateway", "reference"), default="gateway")
    parser.add_argument("--query", choices=("q1", "q2", "typename"), default="q2")
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--profile", type=int, default=0, metavar="N", help="print cProfile's top N functions")
    parser.add_argument("--callgrind", action="store_true", help="instructions per request under callgrind")
    args = parser.parse_args(argv)
    if args.callgrind:
        callgrind(args)
        return
    configure(args.database_url)
    body = body_for(args.query, args.database_url)
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvicorn[standard] installs it
        asyncio.run(measure(args, body))
    else:
        uvloop.run(measure(args, body))


if __name__ == "__main__":
    main()
