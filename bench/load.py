"""HTTP load generators: a Python one (httpx, N connections kept busy) and wrk (C) when it is installed.

Both send the same POST to a loopback URL for a fixed time after a short warm-up and report requests per
second, p50/p99 latency and errors. An error is a response other than 200, or a 200 whose body holds a
GraphQL `errors` member, or a transport failure/timeout.
"""

from __future__ import annotations

import asyncio
import itertools
import math
import secrets
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from ipaddress import ip_address
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import orjson

MAX_DURATION = 300.0  # seconds; a run never goes on longer than this, whatever it is asked
REQUEST_TIMEOUT = 30.0
HEADERS = {"content-type": "application/json", "accept": "application/json"}
ERRORS_MEMBER = b'"errors"'


@dataclass(frozen=True)
class LoadResult:
    generator: str
    requests: int
    errors: int
    seconds: float
    p50_ms: float
    p99_ms: float
    first_error: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds > 0 else 0.0


def check_loopback(url: str) -> None:
    """Refuse any target but this machine: the benchmark only ever loads its own servers."""
    host = urlsplit(url).hostname or ""
    if host != "localhost" and not ip_address(host).is_loopback:
        raise ValueError(f"the load generator only targets loopback addresses, not {host!r}")


def percentile(sorted_values: list[float], fraction: float) -> float:
    """Nearest-rank percentile of an ascending list (0.0 for an empty one)."""
    if not sorted_values:
        return 0.0
    rank = max(1, math.ceil(fraction * len(sorted_values)))
    return sorted_values[rank - 1]


def response_error(status: int, body: bytes) -> str | None:
    if status != 200:
        return f"HTTP {status}: {body[:200]!r}"
    if ERRORS_MEMBER in body:
        return f"GraphQL errors: {body[:300]!r}"
    return None


# --- Python (httpx) -------------------------------------------------------------------------------------------


async def _python_load(
    url: str,
    body: bytes,
    *,
    connections: int,
    duration: float,
    warmup: float,
    check_first: Callable[[bytes], str | None] | None,
    headers: dict[str, str] | None = None,
    unique_marker: str | None = None,
) -> LoadResult:
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    timeout = httpx.Timeout(REQUEST_TIMEOUT)
    latencies: list[float] = []
    errors = 0
    first_error: str | None = None
    all_headers = HEADERS | (headers or {})
    async with httpx.AsyncClient(limits=limits, timeout=timeout, trust_env=False, headers=all_headers) as client:
        if check_first is not None:
            response = await client.post(url, content=body)
            problem = response_error(response.status_code, response.content) or check_first(response.content)
            if problem is not None:
                return LoadResult("python", 0, 1, 0.0, 0.0, 0.0, first_error=f"first response: {problem}")

        # Unique across runs too: the response cache keeps what earlier runs stored, so a value seen before is a hit.
        run = secrets.token_hex(4)
        sequence = itertools.count()

        async def worker(deadline: float, record: bool) -> None:
            nonlocal errors, first_error
            clock = time.perf_counter
            while clock() < deadline:
                start = clock()
                unique = f"bench{run}n{next(sequence)}".encode()
                content = body.replace(unique_marker.encode(), unique) if unique_marker else body
                try:
                    response = await client.post(url, content=content)
                    problem = response_error(response.status_code, response.content)
                except httpx.HTTPError as exc:
                    problem = f"{type(exc).__name__}: {exc}"
                elapsed = clock() - start
                if not record:
                    continue
                latencies.append(elapsed)
                if problem is not None:
                    errors += 1
                    first_error = first_error or problem

        if warmup > 0:
            deadline = time.perf_counter() + warmup
            await asyncio.gather(*(worker(deadline, False) for _ in range(connections)))
        began = time.perf_counter()
        await asyncio.gather(*(worker(began + duration, True) for _ in range(connections)))
        seconds = time.perf_counter() - began
    latencies.sort()
    return LoadResult(
        "python",
        requests=len(latencies),
        errors=errors,
        seconds=seconds,
        p50_ms=percentile(latencies, 0.50) * 1000,
        p99_ms=percentile(latencies, 0.99) * 1000,
        first_error=first_error,
    )


def python_load(
    url: str,
    body: bytes,
    *,
    connections: int = 16,
    duration: float = 10.0,
    warmup: float = 2.0,
    check_first: Callable[[bytes], str | None] | None = None,
    headers: dict[str, str] | None = None,
    unique_marker: str | None = None,
) -> LoadResult:
    """Keep `connections` requests in flight for `duration` seconds (after `warmup`) with one httpx client.

    `unique_marker`, when given, is a text in the body replaced by a different value on every request (e.g. a
    variable no operation uses, so that every request has a cache key of its own). Letters and digits only.
    `check_first` sees the body of one request sent before the load and returns a problem or None; a problem
    stops the run before any load is sent.
    """
    check_loopback(url)
    duration = min(duration, MAX_DURATION)
    warmup = min(warmup, MAX_DURATION)
    return asyncio.run(
        _python_load(
            url,
            body,
            connections=connections,
            duration=duration,
            warmup=warmup,
            check_first=check_first,
            headers=headers,
            unique_marker=unique_marker,
        )
    )


# --- wrk -------------------------------------------------------------------------------------------------------

_WRK_SCRIPT = """
wrk.method = "POST"
wrk.body = [==[%(body)s]==]
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Accept"] = "application/json"
%(headers)s

local threads = {}
local unique_marker = [==[%(unique_marker)s]==]
local thread_id = 0
local counter = 0

function setup(thread)
  thread_id = thread_id + 1
  thread:set("thread_id", thread_id)
  table.insert(threads, thread)
end

function request()
  if unique_marker ~= "" then
    counter = counter + 1
    local value = "bench%(run)st" .. (thread_id or 0) .. "n" .. counter
    return wrk.format(nil, nil, nil, (string.gsub(wrk.body, unique_marker, value, 1)))
  end
  return wrk.format()
end

function init(args)
  body_errors = 0
end

function response(status, headers, body)
  if status == 200 and string.find(body, '"errors"', 1, true) then
    body_errors = body_errors + 1
  end
end

function done(summary, latency, requests)
  local body_errors = 0
  for _, thread in ipairs(threads) do
    body_errors = body_errors + (thread:get("body_errors") or 0)
  end
  local e = summary.errors
  io.write(string.format(
    "BENCH_RESULT %%d %%d %%d %%d %%d %%d %%d %%d %%d %%d\\n",
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout, body_errors,
    latency:percentile(50), latency:percentile(99)))
end
"""


def wrk_path() -> str | None:
    return shutil.which("wrk")


def _wrk_once(
    wrk: str, script: Path, url: str, *, connections: int, threads: int, seconds: float
) -> subprocess.CompletedProcess[str]:
    command = [
        wrk,
        f"-t{threads}",
        f"-c{connections}",
        f"-d{max(1, round(seconds))}s",
        f"--timeout={int(REQUEST_TIMEOUT)}s",
        "-s",
        str(script),
        url,
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=seconds + REQUEST_TIMEOUT + 30, check=False)


def wrk_load(
    url: str,
    body: bytes,
    *,
    connections: int = 16,
    duration: float = 10.0,
    warmup: float = 2.0,
    threads: int = 1,
    check_first: Callable[[bytes], str | None] | None = None,
    headers: dict[str, str] | None = None,
    unique_marker: str | None = None,
) -> LoadResult:
    """The same load with wrk (one thread by default: the server needs the other core)."""
    check_loopback(url)
    wrk = wrk_path()
    if wrk is None:
        raise RuntimeError("wrk is not installed")
    if b"]==]" in body:
        raise ValueError("the request body cannot be embedded in the wrk script")
    duration = min(duration, MAX_DURATION)
    threads = max(1, min(threads, connections))
    if check_first is not None:
        with httpx.Client(timeout=REQUEST_TIMEOUT, trust_env=False, headers=HEADERS | (headers or {})) as client:
            response = client.post(url, content=body)
        problem = response_error(response.status_code, response.content) or check_first(response.content)
        if problem is not None:
            return LoadResult("wrk", 0, 1, 0.0, 0.0, 0.0, first_error=f"first response: {problem}")
    with tempfile.TemporaryDirectory(prefix="bench-wrk-") as directory:
        extra = "\n".join(f'wrk.headers["{name}"] = [==[{value}]==]' for name, value in (headers or {}).items())
        values = {"body": body.decode(), "headers": extra, "unique_marker": unique_marker or ""}

        def script() -> Path:
            """A script of its own per wrk run: its unique values must differ from every earlier run's, which
            the response cache may still hold (a repeated value would be a hit, not the miss it stands for)."""
            path = Path(directory) / f"post-{secrets.token_hex(4)}.lua"
            path.write_text(_WRK_SCRIPT % (values | {"run": secrets.token_hex(4)}), encoding="utf-8")
            return path

        if warmup > 0:
            _wrk_once(wrk, script(), url, connections=connections, threads=threads, seconds=warmup)
        completed = _wrk_once(wrk, script(), url, connections=connections, threads=threads, seconds=duration)
    line = next((x for x in completed.stdout.splitlines() if x.startswith("BENCH_RESULT ")), None)
    if completed.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({completed.returncode}): {completed.stderr.strip() or completed.stdout}")
    requests, duration_us, connect, read, write, status, timeouts, body_errors, p50_us, p99_us = (
        int(x) for x in line.split()[1:]
    )
    errors = connect + read + write + status + timeouts + body_errors
    detail = {
        "connect": connect,
        "read": read,
        "write": write,
        "status": status,
        "timeout": timeouts,
        "graphql_errors": body_errors,
    }
    first_error = None if errors == 0 else "wrk errors: " + orjson.dumps(detail).decode()
    return LoadResult(
        "wrk",
        requests=requests,
        errors=errors,
        seconds=duration_us / 1e6,
        p50_ms=p50_us / 1000,
        p99_ms=p99_us / 1000,
        first_error=first_error,
        extra=detail,
    )
