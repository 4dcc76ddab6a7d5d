"""End to end: the real gateway serves GraphiQL, headless Chromium runs a query, nothing leaves the host.

Chromium is driven over the Chrome DevTools Protocol with ``websockets`` (no Selenium/Playwright). Every
request the page makes is recorded through ``Network.requestWillBeSent`` (and ``webSocketCreated``) and
must target this machine.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect

from tests.support.services import unavailable

CHROMIUM = os.environ.get("CHROMIUM_BIN", "/usr/bin/chromium")
QUERY = "{ customers(first: 2) { edges { node { id name email } } } }"
EXPECTED = ('"customers"', '"edges"', '"email"')
BROWSER_TIMEOUT = 30.0
LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}
LOCAL_SCHEMES = {"data", "blob", "about"}

# Installed before any page script runs: records CSP violations so the test can assert there are none.
CSP_PROBE = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__cspViolations.push(e.effectiveDirective + " " + (e.blockedURI || "inline"));
});
"""
RESULT_JS = """(() => {
  const el = document.querySelector(".graphiql-response") || document.querySelector(".result-window");
  return el ? el.innerText : "";
})()"""
QUERY_EDITOR_JS = """(() => {
  const cm = document.querySelector(".graphiql-query-editor .CodeMirror");
  return cm && cm.CodeMirror ? cm.CodeMirror.getValue() : "";
})()"""
EDIT_QUERY_JS = """document.querySelector(".graphiql-query-editor .CodeMirror").CodeMirror.setValue("{ __typename }")"""


# ---------------------------------------------------------------------------------------------- processes


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _tail(path: Path, limit: int = 4000) -> str:
    try:
        return path.read_text(errors="replace")[-limit:]
    except FileNotFoundError:
        return ""


def _stop(proc: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    """Terminate a process started in its own session (and its children), then reap it."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout)
    else:
        # The leader exited; make sure no child it left behind lingers.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)


@contextlib.contextmanager
def _spawn(args: list[str], log: Path, env: dict[str, str] | None = None) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as out:
        proc = subprocess.Popen(
            args,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
        try:
            yield proc
        finally:
            _stop(proc)


@pytest.fixture
def chromium() -> str:
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        unavailable(f"chromium not installed: {CHROMIUM} (apt-get install chromium)")
    return CHROMIUM


@pytest.fixture
def gateway_url(chromium: str, tmp_path: Path) -> Iterator[str]:
    """Migrate and seed a fresh SQLite database, run ``python -m gateway serve`` and yield its base URL."""
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'gw.db'}",
        "GATEWAY_ENV": "development",
        "PYTHONUNBUFFERED": "1",
    }
    gateway = [sys.executable, "-m", "gateway"]
    steps = {
        "upgrade": ["db", "upgrade"],
        "seed": ["seed", "--customers", "3", "--products", "3", "--orders", "3"],
    }
    for name, args in steps.items():
        done = subprocess.run(
            [*gateway, *args],
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, f"gateway {name} failed:\n{done.stdout.decode()}\n{done.stderr.decode()}"

    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    log = tmp_path / "server.log"
    with _spawn([*gateway, "serve", "--host", "127.0.0.1", "--port", str(port)], log, env) as server:
        deadline = time.monotonic() + 20
        with httpx.Client(timeout=2, trust_env=False) as client:
            while True:
                assert server.poll() is None, f"server exited with {server.returncode}:\n{_tail(log)}"
                with contextlib.suppress(httpx.TransportError):
                    if client.get(f"{base}/healthz").status_code == 200:
                        break
                assert time.monotonic() < deadline, f"server not healthy within 20 s:\n{_tail(log)}"
                time.sleep(0.1)
        yield base


# ---------------------------------------------------------------------------------------------- CDP client


@dataclass
class Browser:
    """A minimal Chrome DevTools Protocol client over one browser websocket (flattened sessions)."""

    ws: ClientConnection
    session: str = ""
    requests: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    _ids: Iterator[int] = field(default_factory=lambda: itertools.count(1))
    _pending: dict[int, asyncio.Future[dict[str, Any]]] = field(default_factory=dict)

    async def pump(self) -> None:
        async for raw in self.ws:
            msg = json.loads(raw)
            if "id" in msg:
                fut = self._pending.pop(msg["id"], None)
                if fut is not None and not fut.done():
                    if "error" in msg:
                        fut.set_exception(RuntimeError(f"CDP error: {msg['error']}"))
                    else:
                        fut.set_result(msg.get("result", {}))
            else:
                self._on_event(msg["method"], msg.get("params", {}))

    def _on_event(self, method: str, params: dict[str, Any]) -> None:
        if method == "Network.requestWillBeSent":
            self.requests.append(params["request"]["url"][:200])  # data: URLs (inline fonts) are long
        elif method == "Network.webSocketCreated":
            self.requests.append(params["url"])
        elif method == "Runtime.exceptionThrown":
            details = params["exceptionDetails"]
            self.problems.append(f"exception: {details.get('exception', {}).get('description', details)}")
        elif method == "Log.entryAdded" and params["entry"]["level"] == "error":
            entry = params["entry"]
            self.problems.append(f"log {entry.get('source')}: {entry.get('text')} {entry.get('url', '')}")

    async def send(self, method: str, **params: Any) -> dict[str, Any]:
        msg_id = next(self._ids)
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[msg_id] = fut
        message: dict[str, Any] = {"id": msg_id, "method": method, "params": params}
        if self.session:
            message["sessionId"] = self.session
        await self.ws.send(json.dumps(message))
        return await fut

    async def evaluate(self, expression: str) -> Any:
        result = await self.send("Runtime.evaluate", expression=expression, returnByValue=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"evaluate failed: {result['exceptionDetails']}")
        return result["result"].get("value")

    async def wait_for(self, expression: str, what: str, deadline: float) -> Any:
        """Poll ``expression`` until it is truthy; fail with ``what`` at ``deadline`` (monotonic)."""
        while True:
            value = await self.evaluate(expression)
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}")
            await asyncio.sleep(0.1)

    async def screenshot(self, path: Path) -> None:
        shot = await self.send("Page.captureScreenshot", format="png")
        await asyncio.to_thread(path.write_bytes, base64.b64decode(shot["data"]))


def _devtools_endpoint(profile: Path, chromium: subprocess.Popen[bytes], log: Path) -> str:
    """Wait for Chromium to write ``DevToolsActivePort`` and return the browser websocket URL."""
    marker = profile / "DevToolsActivePort"
    deadline = time.monotonic() + 15
    while True:
        lines = marker.read_text().split() if marker.exists() else []
        if len(lines) >= 2:
            return f"ws://127.0.0.1:{lines[0]}{lines[1]}"
        assert chromium.poll() is None, f"chromium exited with {chromium.returncode}:\n{_tail(log)}"
        assert time.monotonic() < deadline, f"chromium did not open DevTools:\n{_tail(log)}"
        time.sleep(0.05)


async def _exercise(browser: Browser, page_url: str, deadline: float) -> str:
    """Load the page, check ``?query=`` reached the editor, press Run; return the rendered result text."""
    await browser.send("Page.navigate", url=page_url)
    await browser.wait_for("!!document.querySelector('.graphiql-execute-button')", "GraphiQL to render", deadline)
    editor = await browser.wait_for(QUERY_EDITOR_JS, "the query editor", deadline)
    assert editor.strip() == QUERY, f"#query= not loaded into the editor: {editor!r}"
    await browser.evaluate("document.querySelector('.graphiql-execute-button').click()")
    checks = " && ".join(f"t.includes({json.dumps(s)})" for s in EXPECTED)
    result: str = await browser.wait_for(
        f"(() => {{ const t = {RESULT_JS}; return {checks} ? t : ''; }})()",
        f"a rendered result containing {', '.join(EXPECTED)}",
        deadline,
    )
    # Edits are written back to the fragment so the URL can be shared.
    await browser.evaluate(EDIT_QUERY_JS)
    await browser.wait_for("location.hash.includes('__typename')", "the edited query in the URL", deadline)
    violations = await browser.evaluate("window.__cspViolations")
    browser.problems.extend(f"CSP violation: {v}" for v in violations or [])
    return result


async def _run_query(ws_url: str, page_url: str, shot: Path, always_shoot: bool) -> tuple[Browser, str]:
    deadline = time.monotonic() + BROWSER_TIMEOUT
    async with connect(ws_url, max_size=None, proxy=None, open_timeout=10) as ws:
        browser = Browser(ws)
        pump = asyncio.create_task(browser.pump())
        try:
            async with asyncio.timeout(BROWSER_TIMEOUT + 5):
                target = await browser.send("Target.createTarget", url="about:blank")
                attached = await browser.send("Target.attachToTarget", targetId=target["targetId"], flatten=True)
                browser.session = attached["sessionId"]
                for domain in ("Network", "Page", "Runtime", "Log"):
                    await browser.send(f"{domain}.enable")
                await browser.send(
                    "Emulation.setDeviceMetricsOverride",
                    width=1280,
                    height=800,
                    deviceScaleFactor=1,
                    mobile=False,
                )
                await browser.send("Page.addScriptToEvaluateOnNewDocument", source=CSP_PROBE)
                try:
                    result = await _exercise(browser, page_url, deadline)
                except BaseException:
                    with contextlib.suppress(Exception):
                        await browser.screenshot(shot)
                        print(f"screenshot of the failing page: {shot}")
                    raise
                if always_shoot:
                    await browser.screenshot(shot)
                await browser.send("Target.closeTarget", targetId=target["targetId"])
        finally:
            pump.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await pump
    return browser, result


def drive_graphiql(base_url: str, shot: Path) -> tuple[list[str], list[str], str]:
    """Open GraphiQL at ``base_url``, run QUERY; return (request URLs, problems, rendered result text).

    Set ``GRAPHIQL_SCREENSHOT=1`` to keep a screenshot of the final page at ``shot`` even on success.
    """
    # The fragment, not ?query=: a GET of the endpoint with ?query= is a GraphQL request, not GraphiQL.
    page_url = f"{base_url}/graphql#query={quote(QUERY)}"
    with tempfile.TemporaryDirectory(prefix="chromium-") as tmp:
        profile = Path(tmp) / "profile"
        log = Path(tmp) / "chromium.log"
        args = [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-extensions",
            "--disable-default-apps",
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-quic",
            "--disable-dev-shm-usage",
            f"--user-data-dir={profile}",
            "--remote-debugging-port=0",
            "about:blank",
        ]
        with _spawn(args, log) as chromium:
            ws_url = _devtools_endpoint(profile, chromium, log)
            browser, result = asyncio.run(
                _run_query(ws_url, page_url, shot, bool(os.environ.get("GRAPHIQL_SCREENSHOT")))
            )
    return browser.requests, browser.problems, result


def _is_local(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme in LOCAL_SCHEMES or (
        parts.scheme in {"http", "https", "ws", "wss"} and parts.hostname in LOCAL_HOSTS
    )


def test_graphiql_runs_query_without_leaving_host(gateway_url: str, tmp_path: Path) -> None:
    started = time.monotonic()
    requests, problems, result = drive_graphiql(gateway_url, tmp_path / "graphiql.png")

    remote = [url for url in requests if not _is_local(url)]
    assert not remote, f"requests left the host: {remote}"
    assert any(url.startswith(f"{gateway_url}/static/graphiql/") for url in requests), requests
    assert not problems, f"console errors / CSP violations: {problems}"
    for needle in EXPECTED:
        assert needle in result
    assert time.monotonic() - started < BROWSER_TIMEOUT + 20
