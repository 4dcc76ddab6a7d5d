"""`gateway serve --workers 2` with PROMETHEUS_MULTIPROC_DIR: a scrape of either worker counts both."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
from prometheus_client.mmap_dict import MmapedDict
from prometheus_client.parser import text_string_to_metric_families

from tests.support.ports import free_port
from tests.support.processes import stop, wait_until_healthy


@contextmanager
def served_by_workers(environment: dict[str, str], workers: int) -> Iterator[str]:
    port = free_port()
    command = [sys.executable, "-m", "gateway", "serve", "--workers", str(workers), "--port", str(port)]
    process = subprocess.Popen(command, env=os.environ | environment, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_healthy(process, url)
        yield url
    finally:
        stop(process)


def requests_per_process(directory: Path) -> Counter[str]:
    """gateway_requests_total as each worker wrote it (counter_<pid>.db)."""
    per_process: Counter[str] = Counter()
    for path in directory.glob("counter_*.db"):
        for key, value, _timestamp, _position in MmapedDict.read_all_values_from_file(str(path)):  # type: ignore[no-untyped-call]
            if json.loads(key)[1] == "gateway_requests_total":
                per_process[path.stem] += int(value)
    return per_process


def scraped_total(url: str) -> float:
    text = httpx.get(f"{url}/metrics", timeout=5).text
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "gateway_requests_total" and sample.labels["operation"] == "Ping"
    )


def test_both_workers_count_and_a_scrape_adds_them_up(sqlite_url: str, tmp_path: Path) -> None:
    directory = tmp_path / "metrics"
    (directory).mkdir()
    (directory / "counter_999999.db").write_bytes(b"stale")  # a previous run's file: removed by serve
    environment = {
        "DATABASE_URL": sqlite_url,
        "EMAIL_URL": f"file://{tmp_path / 'mail'}",
        "GATEWAY_EMAIL_WORKER": "false",
        "GATEWAY_RATE_LIMIT": "false",
        "PROMETHEUS_MULTIPROC_DIR": str(directory),
    }
    sent = 0
    with served_by_workers(environment, workers=2) as url:
        while len(requests_per_process(directory)) < 2 and sent < 400:
            with httpx.Client(base_url=url) as http:  # a new connection each time: the kernel spreads them
                response = http.post("/graphql", json={"query": "query Ping { __typename }"})
            assert response.status_code == 200
            sent += 1
        per_process = requests_per_process(directory)
        assert len(per_process) == 2, per_process
        assert sum(per_process.values()) == sent
        assert scraped_total(url) == sent
        assert scraped_total(url) == sent  # whichever worker answers the scrape
