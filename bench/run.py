"""Benchmark the gateway against the naive reference app on the same freshly seeded store, in one run.

    python -m bench.run [--duration 10] [--connections 16] [--database sqlite|postgresql] [--workers 1]
                        [--scenarios q1,q2] [--generator auto|wrk|python] [--json out.json] [--no-check]

Seeds a new store (a SQLite file in a temporary directory, or a new PostgreSQL database on 127.0.0.1:5432 that
is dropped at the end), starts both servers with uvicorn on free loopback ports with the same worker count,
checks that they answer Q1 and Q2 with identical `data`, loads each scenario on each server and prints rps,
p50, p99, SQL statements and upstream calls per request, and the gateway/reference throughput ratios against
the targets. Exits 1 when a target is missed (unless --no-check) and 2 when the run itself fails.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson

from bench.bare_app import BODY_ENV as BARE_BODY_ENV
from bench.load import LoadResult, python_load, wrk_load, wrk_path
from bench.serve_instrumented import APP_ENV, COUNTER_DIR_ENV, SQL_PATH
from gateway.auth.tokens import issue_token

SEED = {"customers": 1000, "products": 200, "orders": 5000, "lines_per_order": 3}
Q2_ORDER_POSITION = 2500  # Q2 reads the 2,500th order (id 2500 in a fresh store): the middle of the data
POSTGRES_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
SERVERS = ("reference", "gateway")
READY_TIMEOUT = 60.0

Q1 = """query Q1 {
  orders(first: 50) {
    edges {
      node {
        id number status total { amount currency }
        customer { id name email }
        lines { quantity unitPrice { amount } product { id sku name price { amount } } }
      }
    }
  }
}"""
Q2 = """query Q2($id: ID!) {
  order(id: $id) { id number status total { amount currency } customer { id name email } }
}"""


@dataclass(frozen=True)
class Scenario:
    name: str
    title: str
    query: str
    operation: str
    target: float  # gateway rps / reference rps must be at least this

    def body(self, variables: dict[str, Any]) -> bytes:
        payload: dict[str, Any] = {"query": self.query, "operationName": self.operation}
        if variables:
            payload["variables"] = variables
        return orjson.dumps(payload)


SCENARIOS = {
    "q1": Scenario("q1", "first 50 orders + customer, lines, products", Q1, "Q1", 15.0),
    "q2": Scenario("q2", "one order by id + customer", Q2, "Q2", 10.0),
}


@dataclass
class Row:
    server: str
    scenario: str
    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    errors: int
    sql_per_request: float | None
    upstream_per_request: float | None
    generator: str
    first_error: str | None


class BenchError(Exception):
    """The run could not be carried out (not a missed target)."""


# --- the store ------------------------------------------------------------------------------------------------


@contextmanager
def sqlite_store(directory: Path) -> Iterator[str]:
    yield f"sqlite+aiosqlite:///{directory / 'bench.db'}"


@contextmanager
def postgres_store() -> Iterator[str]:
    import asyncpg

    name = f"gw_bench_{secrets.token_hex(4)}"

    async def admin(statement: str) -> None:
        connection = await asyncpg.connect(POSTGRES_ADMIN_URL, timeout=10)
        try:
            await connection.execute(statement)
        finally:
            await connection.close()

    try:
        asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    except (OSError, asyncpg.PostgresError) as exc:
        raise BenchError(f"cannot create a PostgreSQL database at 127.0.0.1:5432 as postgres: {exc}") from exc
    print(f"created database {name}")
    try:
        yield f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"
    finally:
        asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        print(f"dropped database {name}")


def gateway_cli(args: Sequence[str], env: dict[str, str]) -> str:
    command = [sys.executable, "-m", "gateway", *args]
    completed = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600, check=False)
    if completed.returncode != 0:
        raise BenchError(f"`gateway {' '.join(args)}` failed:\n{completed.stderr or completed.stdout}")
    return completed.stdout.strip()


def seed_store(env: dict[str, str]) -> None:
    print(gateway_cli(["db", "upgrade"], env))
    started = time.perf_counter()
    print(
        gateway_cli(
            [
                "seed",
                "--customers",
                str(SEED["customers"]),
                "--products",
                str(SEED["products"]),
                "--orders",
                str(SEED["orders"]),
                "--lines-per-order",
                str(SEED["lines_per_order"]),
                "--reset",
            ],
            env,
        )
        + f" in {time.perf_counter() - started:.1f}s"
    )


def pick_order_pk(database_url: str) -> int:
    from sqlalchemy import select
    from sqlmodel import col

    from integrations.store.engine import create_engine
    from integrations.store.models import Order

    async def query() -> int | None:
        engine = create_engine(database_url)
        try:
            async with engine.connect() as connection:
                key = col(Order.id)
                statement = select(key).order_by(key).offset(Q2_ORDER_POSITION - 1).limit(1)
                return (await connection.execute(statement)).scalar()
        finally:
            await engine.dispose()

    pk = asyncio.run(query())
    if pk is None:
        raise BenchError(f"the store has fewer than {Q2_ORDER_POSITION} orders")
    return pk


def encode_order_id(pk: int) -> str:
    from schema.ids import encode_id  # the gateway's own format, which the reference app accepts too

    return encode_id("Order", pk)


# --- the servers ----------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    name: str
    port: int
    process: subprocess.Popen[bytes]
    log: Path
    cpus: frozenset[int] | None = None
    """The CPUs the server (all its threads) may run on; None: any."""

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def graphql(self) -> str:
        return f"{self.base}/graphql"


@contextmanager
def running_server(
    name: str,
    env: dict[str, str],
    workers: int,
    directory: Path,
    *,
    app: str | None = None,
    cpus: frozenset[int] | None = None,
) -> Iterator[Server]:
    """Serve `app` (gateway, reference or bare; `name` by default) under `name`, on `cpus` when given."""
    port = free_port()
    log = directory / f"{name}.log"
    server_env = {**env, APP_ENV: app or name, COUNTER_DIR_ENV: str(directory / f"{name}-counters")}
    # Served as `gateway serve` serves: with several workers, each on a listening socket of its own.
    command = [sys.executable, "-m", "bench.serve_instrumented", "--port", str(port), "--workers", str(workers)]
    with log.open("wb") as output:
        process = subprocess.Popen(
            command,
            env=server_env,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=(lambda: os.sched_setaffinity(0, cpus)) if cpus else None,
        )
    server = Server(name, port, process, log, cpus)
    try:
        wait_ready(server)
        yield server
    finally:
        stop(server)


def wait_ready(server: Server) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    with httpx.Client(timeout=2.0, trust_env=False) as client:
        while time.monotonic() < deadline:
            if server.process.poll() is not None:
                raise BenchError(f"{server.name} exited with {server.process.returncode}:\n{tail(server.log)}")
            try:
                if client.get(f"{server.base}/healthz").status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
    raise BenchError(f"{server.name} was not ready within {READY_TIMEOUT:.0f}s:\n{tail(server.log)}")


def stop(server: Server) -> None:
    """SIGTERM the server's process group (uvicorn and its workers), SIGKILL it if it lingers."""
    process = server.process
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=5)
    except ProcessLookupError:
        pass


def tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def sql_totals(server: Server, settle: float = 120.0) -> dict[str, int]:
    """The server's counters once no /graphql request is in flight (wrk leaves some behind when it stops)."""
    deadline = time.monotonic() + settle
    with httpx.Client(timeout=10.0, trust_env=False) as client:
        while True:
            response = client.get(f"{server.base}{SQL_PATH}")
            response.raise_for_status()
            totals: dict[str, int] = response.json()
            if totals["active"] == 0:
                return totals
            if time.monotonic() > deadline:
                raise BenchError(f"{server.name} still has {totals['active']} requests in flight after {settle:.0f}s")
            time.sleep(0.005)


# --- checks and load ------------------------------------------------------------------------------------------


def post(server: Server, body: bytes) -> dict[str, Any]:
    with httpx.Client(timeout=30.0, trust_env=False) as client:
        response = client.post(
            server.graphql, content=body, headers={"content-type": "application/json", "accept": "application/json"}
        )
    if response.status_code != 200:
        raise BenchError(f"{server.name} answered HTTP {response.status_code}: {response.text[:500]}")
    payload: dict[str, Any] = orjson.loads(response.content)
    if payload.get("errors"):
        raise BenchError(f"{server.name} answered with errors: {payload['errors']}")
    return payload


def expected_data(scenario: Scenario, body: bytes, servers: dict[str, Server]) -> Any:
    """Both servers' `data` for the scenario, which must be identical and non-empty."""
    answers = {name: post(server, body).get("data") for name, server in servers.items()}
    gateway, reference = answers["gateway"], answers["reference"]
    if not isinstance(gateway, dict) or gateway != reference:
        raise BenchError(
            f"{scenario.name}: the servers disagree\n"
            f" gateway:   {str(gateway)[:400]}\n reference: {str(reference)[:400]}"
        )
    if scenario.name == "q1" and len(gateway["orders"]["edges"]) != 50:
        raise BenchError(f"q1: expected 50 orders, got {len(gateway['orders']['edges'])}")
    if scenario.name == "q2" and not gateway.get("order"):
        raise BenchError("q2: the order was not found")
    return gateway


def data_checker(expected: Any) -> Callable[[bytes], str | None]:
    def check(body: bytes) -> str | None:
        data = orjson.loads(body).get("data")
        return None if data == expected else f"unexpected data: {body[:300]!r}"

    return check


def choose_generator(requested: str) -> str:
    if requested == "python":
        return "python"
    if wrk_path() is not None:
        return "wrk"
    if requested == "wrk":
        raise BenchError("--generator wrk: wrk is not installed (apt-get install wrk)")
    print(
        "note: wrk is not installed, so the Python (httpx) load generator is used; it shares the CPU with the "
        "server and can cap the fastest scenarios (apt-get install wrk for the reference numbers)"
    )
    return "python"


@dataclass(frozen=True)
class Placement:
    """`--pin`: single-worker servers on one CPU, the load generator (and this runner) on the others, so the two
    never take turns on one core. Opt-in: the cache-hit rounds still varied with it, and a pinned server's
    database thread (aiosqlite) shares the server's one CPU, which the executing scenarios need."""

    server: frozenset[int]
    load: frozenset[int]


def placement(pin: bool) -> Placement | None:
    cpus = sorted(os.sched_getaffinity(0))
    if not pin or len(cpus) < 2:
        return None
    return Placement(server=frozenset(cpus[-1:]), load=frozenset(cpus[:-1]))


@contextmanager
def load_cpus(server: Server, args: argparse.Namespace) -> Iterator[None]:
    """Run the block (and the wrk it starts) off the CPU a pinned server runs on."""
    plan: Placement | None = args.placement
    if plan is None or server.cpus is None:
        yield
        return
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, plan.load)
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


def server_cpus(args: argparse.Namespace, workers: int) -> frozenset[int] | None:
    plan: Placement | None = args.placement
    return plan.server if plan is not None and workers == 1 else None


def load(
    generator: str,
    url: str,
    body: bytes,
    args: argparse.Namespace,
    *,
    duration: float,
    check_first: Callable[[bytes], str | None] | None,
    headers: dict[str, str] | None = None,
    unique_marker: str | None = None,
) -> LoadResult:
    if generator == "wrk":
        return wrk_load(
            url,
            body,
            connections=args.connections,
            duration=duration,
            warmup=0,
            threads=args.wrk_threads,
            check_first=check_first,
            headers=headers,
            unique_marker=unique_marker,
        )
    return python_load(
        url,
        body,
        connections=args.connections,
        duration=duration,
        warmup=0,
        check_first=check_first,
        headers=headers,
        unique_marker=unique_marker,
    )


def measure(
    server: Server,
    scenario: str,
    body: bytes,
    generator: str,
    args: argparse.Namespace,
    expected: Any,
    headers: dict[str, str] | None = None,
    unique_marker: str | None = None,
) -> Row:
    """Warm up (checking the first answer), let the server drain, then load it and read its counters."""
    check: Callable[[bytes], str | None] | None = data_checker(expected)

    def run_load(duration: float) -> LoadResult:
        with load_cpus(server, args):
            return load(
                generator,
                server.graphql,
                body,
                args,
                duration=duration,
                check_first=check,
                headers=headers,
                unique_marker=unique_marker,
            )

    if args.warmup > 0:
        warm = run_load(args.warmup)
        if warm.errors:
            raise BenchError(f"{server.name} {scenario}: errors while warming up: {warm.first_error}")
        check = None  # the first answer is checked once
    before = sql_totals(server)  # waits until requests abandoned by the warm-up are done
    started = time.monotonic()
    result = run_load(args.duration)
    after = sql_totals(server)
    drained = time.monotonic()
    served = after["requests"] - before["requests"]
    statements = after["statements"] - before["statements"]
    return Row(
        server=server.name,
        scenario=scenario,
        # What the server did from the first request until the last one it accepted was done. The generator's own
        # count leaves out the requests in flight when it stops: up to one per connection, a quarter of a slow
        # server's total (16 connections, ~2 s a request, 8 s), and as much or nothing depending on the moment.
        rps=served / (drained - started),
        p50_ms=result.p50_ms,
        p99_ms=result.p99_ms,
        requests=served,
        errors=result.errors,
        sql_per_request=statements / served if served else None,
        upstream_per_request=None,  # the gateway has no upstream services yet
        generator=result.generator,
        first_error=result.first_error,
    )


# --- output ---------------------------------------------------------------------------------------------------


def render_table(rows: list[Row]) -> str:
    header = ("server", "scenario", "rps", "p50 ms", "p99 ms", "SQL/req", "upstream/req", "requests", "errors")
    lines = [header]
    for row in rows:
        lines.append(
            (
                row.server,
                row.scenario,
                f"{row.rps:,.1f}",
                f"{row.p50_ms:.2f}",
                f"{row.p99_ms:.2f}",
                "n/a" if row.sql_per_request is None else f"{row.sql_per_request:.1f}",
                "n/a" if row.upstream_per_request is None else f"{row.upstream_per_request:.1f}",
                f"{row.requests:,}",
                str(row.errors),
            )
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    out = []
    for index, line in enumerate(lines):
        cells = [cell.ljust(widths[i]) if i < 2 else cell.rjust(widths[i]) for i, cell in enumerate(line)]
        out.append("  ".join(cells))
        if index == 0:
            out.append("  ".join("-" * width for width in widths))
    return "\n".join(out)


def ratios(rows: list[Row], scenarios: list[Scenario]) -> list[dict[str, Any]]:
    by_key = {(row.server, row.scenario): row for row in rows}
    results = []
    for scenario in scenarios:
        gateway, reference = by_key.get(("gateway", scenario.name)), by_key.get(("reference", scenario.name))
        if gateway is None or reference is None or reference.rps == 0:
            continue
        ratio = gateway.rps / reference.rps
        results.append(
            {"scenario": scenario.name, "ratio": ratio, "target": scenario.target, "passed": ratio >= scenario.target}
        )
    return results


# --- the response cache ---------------------------------------------------------------------------------------

EXTRA_SCENARIOS = ("cache", "documents", "scale")
JWT_SECRET = secrets.token_urlsafe(32)
PRINCIPAL = {  # Q1 reads customers' emails: PRIVATE, so cached per principal
    "Authorization": "Bearer "
    + issue_token(
        JWT_SECRET,
        subject="bench",
        roles=["staff"],
        scopes=["customers:read", "orders:read"],
        issuer="gateway-dev",
        audience="gateway",
        ttl=24 * 3600,
    )
}
UNIQUE = "UNIQUEVALUE"
"""Replaced in each q1-miss request by a value of its own: a variable Q1 ignores, so every request misses."""
HIT_TARGET_VS_BARE = 0.5
HIT_TARGET_VS_MISS = 20.0


def miss_body(body: bytes) -> bytes:
    """`body` with a variable Q1 ignores, set to `UNIQUE` (which the load generators replace per request)."""
    return orjson.dumps(orjson.loads(body) | {"variables": {"nonce": UNIQUE}})


def cache_rows(
    gateway: Server,
    body: bytes,
    expected: Any,
    env: dict[str, str],
    generator: str,
    args: argparse.Namespace,
    directory: Path,
    stack: ExitStack,
) -> list[Row]:
    """Q1 as a cache hit, as a miss (looked up, executed, stored), and a bare endpoint serving the same bytes."""
    headers = {"content-type": "application/json", "accept": "application/json"} | PRINCIPAL
    unique_body = miss_body(body)
    with httpx.Client(timeout=30.0, trust_env=False) as client:
        client.post(gateway.graphql, content=body, headers=headers)
        hit = client.post(gateway.graphql, content=body, headers=headers)
        miss = client.post(gateway.graphql, content=unique_body.replace(UNIQUE.encode(), b"first"), headers=headers)
    if hit.headers.get("x-cache") != "HIT" or miss.headers.get("x-cache") != "MISS":
        raise BenchError(
            f"cache: expected HIT then MISS, got {hit.headers.get('x-cache')}, {miss.headers.get('x-cache')}"
        )
    bytes_file = directory / "q1-response.json"
    bytes_file.write_bytes(hit.content)
    bare = stack.enter_context(
        running_server(
            "bare",
            env | {BARE_BODY_ENV: str(bytes_file)},
            args.workers,
            directory,
            cpus=server_cpus(args, args.workers),
        )
    )
    # The ratio to bare is the one target near the machine's noise: the two servers are measured in alternating
    # rounds (so a slow spell of a shared machine does not fall on one of them only) and each keeps its median.
    bare_rounds, hit_rounds = [], []
    for _ in range(args.rounds):
        bare_rounds.append(measure(bare, "q1-bytes", body, generator, args, expected))
        hit_rounds.append(measure(gateway, "q1-hit", body, generator, args, expected, headers=PRINCIPAL))
    if args.rounds > 1:
        print(
            "  rounds (bare, hit rps): "
            + ", ".join(f"{b.rps:,.0f}/{h.rps:,.0f}" for b, h in zip(bare_rounds, hit_rounds, strict=True))
        )
    rows = [
        median_row(bare_rounds),
        median_row(hit_rounds),
        # Every request has a cache key of its own: each one looks up, misses, executes and stores its entry.
        measure(gateway, "q1-miss", unique_body, generator, args, expected, headers=PRINCIPAL, unique_marker=UNIQUE),
    ]
    for row in rows:
        print(f"  {row.server:<9} {row.scenario}: {row.rps:,.1f} rps, p50 {row.p50_ms:.2f} ms, p99 {row.p99_ms:.2f} ms")
    return rows


def median_row(rounds: list[Row]) -> Row:
    return sorted(rounds, key=lambda row: row.rps)[len(rounds) // 2]


def cache_ratios(rows: list[Row]) -> list[dict[str, Any]]:
    by_key = {(row.server, row.scenario): row for row in rows}
    cached, parsed = by_key.get(("gateway", "q2-documents-cached")), by_key.get(("no-doc-cache", "q2-parsed-each-time"))
    if cached is not None and parsed is not None and parsed.rps:
        print(
            f"document cache: Q2 {parsed.rps:,.1f} rps parsed each time -> {cached.rps:,.1f} rps cached "
            f"({cached.rps / parsed.rps:.2f}x)"
        )
    if ("gateway", "q1-hit") not in by_key:
        return []
    hit, miss, bare = by_key[("gateway", "q1-hit")], by_key[("gateway", "q1-miss")], by_key[("bare", "q1-bytes")]
    checks = []
    for name, ratio, target in (
        ("q1-hit/bare", hit.rps / bare.rps if bare.rps else 0.0, HIT_TARGET_VS_BARE),
        ("q1-hit/q1-miss", hit.rps / miss.rps if miss.rps else 0.0, HIT_TARGET_VS_MISS),
    ):
        checks.append({"scenario": name, "ratio": ratio, "target": target, "passed": ratio >= target})
    return checks


# --- scale-out: one worker against two ------------------------------------------------------------------------

SCALE_TARGET = 1.7
SCALE_CHECK = "q1-miss 2 workers / 1 worker"


def scale_rows(
    body: bytes, expected: Any, env: dict[str, str], generator: str, args: argparse.Namespace, directory: Path
) -> list[Row]:
    """Q1 cache misses (executed every time, as in `cache`) on a gateway with 1 uvicorn worker and on one with 2.

    Both are up at once but loaded in turn, in alternating rounds (so a slow spell of a shared machine, or a cache
    warmed by the first, does not favour one of them), and each keeps its median round."""
    unique_body = miss_body(body)
    rounds: dict[int, list[Row]] = {1: [], 2: []}
    with ExitStack() as stack:
        servers = {
            workers: stack.enter_context(running_server(f"gateway-{workers}w", env, workers, directory, app="gateway"))
            for workers in rounds
        }
        for _ in range(args.rounds):
            for workers, server in servers.items():
                rounds[workers].append(
                    measure(
                        server,
                        "q1-miss",
                        unique_body,
                        generator,
                        args,
                        expected,
                        headers=PRINCIPAL,
                        unique_marker=UNIQUE,
                    )
                )
    print(
        "  rounds (1 worker, 2 workers rps): "
        + ", ".join(f"{o.rps:,.1f}/{t.rps:,.1f}" for o, t in zip(*rounds.values(), strict=True))
    )
    rows = [median_row(rounds[1]), median_row(rounds[2])]
    for row in rows:
        print(
            f"  {row.server:<10} {row.scenario}: {row.rps:,.1f} rps, p50 {row.p50_ms:.2f} ms, p99 {row.p99_ms:.2f} ms"
        )
    return rows


def scale_ratios(rows: list[Row]) -> list[dict[str, Any]]:
    by_key = {(row.server, row.scenario): row for row in rows}
    one, two = by_key.get(("gateway-1w", "q1-miss")), by_key.get(("gateway-2w", "q1-miss"))
    if one is None or two is None:
        return []
    ratio = two.rps / one.rps if one.rps else 0.0
    return [{"scenario": SCALE_CHECK, "ratio": ratio, "target": SCALE_TARGET, "passed": ratio >= SCALE_TARGET}]


# --- the parsed-document cache --------------------------------------------------------------------------------


def document_rows(
    gateway: Server,
    body: bytes,
    expected: Any,
    env: dict[str, str],
    generator: str,
    args: argparse.Namespace,
    directory: Path,
    stack: ExitStack,
) -> list[Row]:
    """Q2 executed (not from the response cache) with the document cache on, and on a gateway without it."""
    uncached_env = env | {"GATEWAY_DOCUMENT_CACHE_SIZE": "0"}
    uncached = stack.enter_context(
        running_server(
            "no-doc-cache", uncached_env, args.workers, directory, app="gateway", cpus=server_cpus(args, args.workers)
        )
    )
    rows = [
        measure(gateway, "q2-documents-cached", body, generator, args, expected),
        measure(uncached, "q2-parsed-each-time", body, generator, args, expected),
    ]
    for row in rows:
        print(f"  {row.server:<12} {row.scenario}: {row.rps:,.1f} rps, p50 {row.p50_ms:.2f} ms")
    return rows


# --- main -----------------------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=10.0, help="seconds of load per scenario and server")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds of unmeasured load first (default 2)")
    parser.add_argument("--connections", type=int, default=16, help="concurrent connections (default 16)")
    parser.add_argument("--database", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--workers", type=int, default=1, help="uvicorn workers for each server (default 1)")
    parser.add_argument(
        "--scenarios",
        default="q1,q2,cache,documents",
        help="comma-separated: q1,q2 (gateway vs reference), cache (Q1 cache hit vs bare Starlette and vs a miss), "
        "documents (Q2 with and without the parsed-document cache), scale (Q1 cache misses on 1 and on 2 uvicorn "
        "workers; not in the default)",
    )
    parser.add_argument(
        "--redis",
        default="redis://127.0.0.1:6379/0",
        help="REDIS_URL for the gateway (its own key prefix), or 'memory' for the in-process cache",
    )
    parser.add_argument(
        "--generator",
        choices=("auto", "wrk", "python"),
        default="auto",
        help="load generator: wrk when installed (auto), else the Python one",
    )
    parser.add_argument(
        "--rounds", type=int, default=3, help="alternating rounds of bare and cache-hit load, median kept (default 3)"
    )
    parser.add_argument("--wrk-threads", type=int, default=1, help="wrk threads (default 1)")
    parser.add_argument(
        "--pin",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="single-worker servers on the last CPU, the load generator on the others (needs two CPUs or more; "
        "never the scale scenario). Off by default: a pinned server's SQLite thread shares its one CPU",
    )
    parser.add_argument("--json", type=Path, help="also write the results to this JSON file")
    parser.add_argument("--no-check", action="store_true", help="report the ratios without failing on targets")
    args = parser.parse_args(argv)
    names = [name.strip().lower() for name in args.scenarios.split(",") if name.strip()]
    unknown = [name for name in names if name not in SCENARIOS and name not in EXTRA_SCENARIOS]
    if unknown or not names:
        parser.error(
            f"--scenarios: unknown {', '.join(unknown) or '(none given)'}; choose from q1, q2, cache, documents, scale"
        )
    args.scenario_list = [SCENARIOS[name] for name in dict.fromkeys(names) if name in SCENARIOS]
    args.cache = "cache" in names
    args.documents = "documents" in names
    args.scale = "scale" in names
    if not 0 < args.duration <= 300 or not 0 <= args.warmup <= 60:
        parser.error("--duration must be in (0, 300] and --warmup in [0, 60]")
    if not 1 <= args.rounds <= 9:
        parser.error("--rounds must be in [1, 9]")
    if not 1 <= args.connections <= 512 or not 1 <= args.workers <= 16:
        parser.error("--connections must be in [1, 512] and --workers in [1, 16]")
    args.placement = placement(args.pin)
    return args


def run(args: argparse.Namespace) -> int:
    generator = choose_generator(args.generator)
    scenarios: list[Scenario] = args.scenario_list
    with ExitStack() as stack:
        directory = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="gw-bench-")))
        store = postgres_store() if args.database == "postgresql" else sqlite_store(directory)
        database_url = stack.enter_context(store)
        env = {
            **os.environ,
            "DATABASE_URL": database_url,
            "GATEWAY_ENV": "production",
            "GATEWAY_JWT_SECRET": JWT_SECRET,
            "GATEWAY_ANONYMOUS_SCOPES": "customers:read orders:read",  # Q1/Q2 compare with an app without auth
            "GATEWAY_LOG_LEVEL": "warning",
            "GATEWAY_EMAIL_WORKER": "false",  # its polling would add statements that no request made
            "GATEWAY_RATE_LIMIT": "false",  # the load comes from one address: it would be refused, not measured
            "EMAIL_URL": f"file://{directory / 'mail'}",
            "PYTHONUNBUFFERED": "1",
        }
        if args.redis != "memory":
            env |= {"REDIS_URL": args.redis, "GATEWAY_CACHE_PREFIX": f"bench-{secrets.token_hex(4)}:"}
        seed_store(env)
        order_id = encode_order_id(pick_order_pk(database_url))
        bodies = {"q1": SCENARIOS["q1"].body({}), "q2": SCENARIOS["q2"].body({"id": order_id})}
        cpus = server_cpus(args, args.workers)
        servers = {
            name: stack.enter_context(running_server(name, env, args.workers, directory, cpus=cpus)) for name in SERVERS
        }
        print(
            f"servers up ({args.workers} worker(s) each): "
            + ", ".join(f"{name} {server.base}" for name, server in servers.items())
        )
        expected = {s.name: expected_data(s, bodies[s.name], servers) for s in SCENARIOS.values()}
        print("both servers return identical data for " + ", ".join(SCENARIOS))
        print(
            f"load: {generator}, {args.connections} connections, {args.warmup:g}s warm-up + {args.duration:g}s "
            f"per scenario and server, database {args.database}, "
            + (
                f"single-worker servers on CPU {sorted(args.placement.server)}, load on {sorted(args.placement.load)}\n"
                if args.placement is not None
                else "unpinned\n"
            )
        )
        rows: list[Row] = []
        for scenario in scenarios:
            for name in SERVERS:
                row = measure(
                    servers[name], scenario.name, bodies[scenario.name], generator, args, expected[scenario.name]
                )
                rows.append(row)
                print(
                    f"  {name:<9} {scenario.name}: {row.rps:,.1f} rps, p50 {row.p50_ms:.2f} ms, "
                    f"p99 {row.p99_ms:.2f} ms, {row.errors} errors",
                    flush=True,
                )
        if args.documents:
            rows += document_rows(
                servers["gateway"], bodies["q2"], expected["q2"], env, generator, args, directory, stack
            )
        if args.cache:
            rows += cache_rows(servers["gateway"], bodies["q1"], expected["q1"], env, generator, args, directory, stack)
        if args.scale:
            rows += scale_rows(bodies["q1"], expected["q1"], env, generator, args, directory)
    print()
    print(render_table(rows))
    print()
    checks = ratios(rows, scenarios) + cache_ratios(rows) + scale_ratios(rows)
    for check in checks:
        verdict = "PASS" if check["passed"] else "FAIL"
        label = check["scenario"] if "/" in check["scenario"] else f"{check['scenario']}: gateway/reference"
        print(f"{label} = {check['ratio']:.2f}x (target >= {check['target']:g}x) {verdict}")
    errors = [row for row in rows if row.errors]
    for row in errors:
        print(f"{row.server} {row.scenario}: {row.errors} errors, first: {row.first_error}", file=sys.stderr)
    if args.json is not None:
        report = {
            "database": args.database,
            "workers": args.workers,
            "connections": args.connections,
            "duration": args.duration,
            "warmup": args.warmup,
            "generator": generator,
            "seed": SEED,
            "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
            "rows": [asdict(row) for row in rows],
            "ratios": checks,
        }
        args.json.write_bytes(orjson.dumps(report, option=orjson.OPT_INDENT_2))
        print(f"wrote {args.json}")
    if errors:
        return 2
    if args.no_check:
        return 0
    return 0 if all(check["passed"] for check in checks) else 1


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        return run(args)
    except (BenchError, RuntimeError, httpx.HTTPError) as error:
        print(f"bench: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("bench: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
