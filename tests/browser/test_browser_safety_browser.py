"""In real Chromium: GraphiQL's dialogs and menus run under the strict CSP (no 'unsafe-inline'), and the
browser-safety rules hold for pages (CSRF prevention on GETs, no CORS for an origin not on the allowlist)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from websockets.asyncio.client import connect

from tests.browser import test_graphiql_browser as graphiql
from tests.browser.test_graphiql_browser import (
    BROWSER_TIMEOUT,
    CHROMIUM,
    CSP_PROBE,
    Browser,
    _devtools_endpoint,
    _spawn,
)

chromium = graphiql.chromium
gateway_url = graphiql.gateway_url
"""The same fixtures: a migrated, seeded gateway served by uvicorn, and Chromium."""

CLICK_SETTINGS = "document.querySelector('[aria-label=\"Open settings dialog\"]').click()"
CLOSE_DIALOG = "document.querySelector('.graphiql-dialog-close').click()"
DIALOG_OPEN = "!!document.querySelector('.graphiql-dialog')"
DIALOG_CLOSED = "!document.querySelector('.graphiql-dialog')"
TWO_OPERATIONS = """(() => {
  document.querySelector(".graphiql-query-editor .CodeMirror").CodeMirror.setValue(
    "query A { __typename }\\nquery B { products(first: 1) { totalCount } }");
  return true;
})()"""
OPEN_RUN_MENU = """(() => {
  // The run button becomes a menu once GraphiQL has parsed both operations; poke it until the menu is open.
  if (document.querySelectorAll("[role=menuitem]").length === 2) return true;
  const button = document.querySelector(".graphiql-execute-button");
  button.dispatchEvent(new PointerEvent("pointerdown", {bubbles: true, button: 0, pointerType: "mouse"}));
  return false;
})()"""
PICK_B = "Array.from(document.querySelectorAll('[role=menuitem]')).find((item) => item.textContent === 'B').click()"
RESULT = "(document.querySelector('.graphiql-response') || {innerText: ''}).innerText"
STATUS_OF = (
    "fetch({url}, {{method: {method}, headers: {headers}, body: {body}}}).then((r) => r.status, (e) => 'failed')"
)


def _fetch(url: str, method: str = "GET", headers: dict[str, str] | None = None, body: str | None = None) -> str:
    return STATUS_OF.format(
        url=json.dumps(url), method=json.dumps(method), headers=json.dumps(headers or {}), body=json.dumps(body)
    )


async def _session(ws_url: str, page_url: str, steps: Any) -> tuple[Browser, Any]:
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
                await browser.send("Page.addScriptToEvaluateOnNewDocument", source=CSP_PROBE)
                await browser.send("Page.navigate", url=page_url)
                await browser.wait_for("!!document.querySelector('.graphiql-execute-button')", "GraphiQL", deadline)
                result = await steps(browser, deadline)
                violations = await browser.evaluate("window.__cspViolations")
                browser.problems.extend(f"CSP violation: {v}" for v in violations or [])
        finally:
            pump.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await pump
    return browser, result


def _in_chromium(page_url: str, steps: Any) -> tuple[Browser, Any]:
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
            "--disable-dev-shm-usage",
            "--no-first-run",
            f"--user-data-dir={profile}",
            "--remote-debugging-port=0",
            "about:blank",
        ]
        with _spawn(args, log) as process:
            ws_url = _devtools_endpoint(profile, process, log)
            return asyncio.run(_session(ws_url, page_url, steps))


def test_graphiql_dialogs_and_menus_run_under_the_strict_csp(gateway_url: str) -> None:
    async def steps(browser: Browser, deadline: float) -> str:
        # Dialogs and menus lock scrolling with an injected <style>: allowed by its hash, not 'unsafe-inline'.
        await browser.evaluate(CLICK_SETTINGS)
        await browser.wait_for(DIALOG_OPEN, "the settings dialog", deadline)
        await browser.evaluate(CLOSE_DIALOG)
        await browser.wait_for(DIALOG_CLOSED, "the dialog to close", deadline)
        await browser.evaluate(TWO_OPERATIONS)
        await browser.wait_for(OPEN_RUN_MENU, "the run menu", deadline)
        await browser.evaluate(PICK_B)
        result: str = await browser.wait_for(
            f"(() => {{ const t = {RESULT}; return t.includes('totalCount') ? t : ''; }})()", "B's result", deadline
        )
        return result

    browser, result = _in_chromium(f"{gateway_url}/graphql#query={quote('{ __typename }')}", steps)
    assert not browser.problems, browser.problems
    assert '"totalCount"' in result


def test_pages_cannot_forge_gets_or_read_other_origins(gateway_url: str) -> None:
    port = urlsplit(gateway_url).port
    other_origin = f"http://localhost:{port}/graphql"  # another origin than 127.0.0.1 for the browser
    query = quote("{ __typename }")

    body = '{"query": "{ __typename }"}'
    fetches = {
        "get without header": _fetch(f"/graphql?query={query}"),
        "get with header": _fetch(f"/graphql?query={query}", headers={"GraphQL-Require-Preflight": "1"}),
        "json post": _fetch("/graphql", "POST", {"Content-Type": "application/json"}, body),
        "text/plain post": _fetch("/graphql", "POST", {"Content-Type": "text/plain"}, body),
        "cross-origin json post": _fetch(other_origin, "POST", {"Content-Type": "application/json"}, body),
    }

    async def steps(browser: Browser, deadline: float) -> dict[str, Any]:
        statuses = {}
        for name, expression in fetches.items():
            done = await browser.send("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
            statuses[name] = done["result"].get("value")
        return statuses

    _, statuses = _in_chromium(f"{gateway_url}/graphql", steps)
    assert statuses == {
        "get without header": 400,  # CSRF_PREVENTION
        "get with header": 200,
        "json post": 200,  # GraphiQL's own requests
        "text/plain post": 415,
        "cross-origin json post": "failed",  # no CORS allowlist: the preflight is refused
    }
