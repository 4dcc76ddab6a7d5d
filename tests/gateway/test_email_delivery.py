"""Order confirmations travel from the outbox to a real SMTP server (aiosmtpd): by the app's worker, and by
`gateway worker` as a separate process, including while the SMTP server is down and after it comes back."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from typing import Any

from tests.conftest import GraphQLClient, app_settings_for, serve_in_process
from tests.schema.test_orders_stripe import order_input, seed_shop
from tests.support.smtp import SMTPServer

PLACE = """mutation($input: PlaceOrderInput!) {
  placeOrder(input: $input) { order { id number } userErrors { code } } }"""
EMAILS = "query($id: ID!) { node(id: $id) { ... on Order { emails { to subject status attempts sentAt lastError } } } }"


async def emails_of(client: GraphQLClient, order_id: str) -> list[dict[str, Any]]:
    return list((await client.execute(EMAILS, {"id": order_id}))["node"]["emails"])


async def wait_for(client: GraphQLClient, order_id: str, status: str) -> dict[str, Any]:
    async with asyncio.timeout(10):
        while True:
            emails = await emails_of(client, order_id)
            if emails and emails[0]["status"] == status:
                return emails[0]
            await asyncio.sleep(0.05)


async def run_worker_once(env: dict[str, str], cwd: Path) -> None:
    """`gateway worker --once` as its own process."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "gateway",
        "worker",
        "--once",
        env=env,
        cwd=cwd,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    _, stderr = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode == 0, stderr.decode()


async def test_the_app_worker_delivers_the_confirmation_over_smtp(store_url: str, tmp_path: Path) -> None:
    with SMTPServer() as smtp:
        settings = app_settings_for(
            store_url,
            tmp_path,
            EMAIL_URL=smtp.url(),
            GATEWAY_EMAIL_WORKER=True,
            EMAIL_POLL_INTERVAL=0.05,
            EMAIL_FROM="Demo Shop <orders@shop.example>",
            GATEWAY_SHOP_NAME="Demo Shop",
        )
        async with serve_in_process(settings) as client:
            customer, product = await seed_shop(client)
            order = (await client.execute(PLACE, order_input(customer, product, "mail-1", quantity=2)))["placeOrder"]
            sent = await wait_for(client, order["order"]["id"], "SENT")
        assert sent["attempts"] == 1
        assert sent["sentAt"] is not None
        (received,) = smtp.received
        message = received.message
        assert received.rcpt_tos == ["grace@example.com"]
        assert message["From"] == "Demo Shop <orders@shop.example>"
        assert message["Subject"] == f"Demo Shop: your order {order['order']['number']}"
        assert message["Message-ID"].endswith("@shop.example>")
        text = message.get_body(("plain",))
        assert text is not None
        assert "COBOL manual" in text.get_content()
        assert "$39.98" in text.get_content()


async def test_the_worker_command_retries_while_smtp_is_down_and_delivers_after(store_url: str, tmp_path: Path) -> None:
    smtp = SMTPServer()  # not started: the port refuses connections
    settings = app_settings_for(store_url, tmp_path)
    async with serve_in_process(settings) as client:
        customer, product = await seed_shop(client)
        order = (await client.execute(PLACE, order_input(customer, product, "mail-2")))["placeOrder"]["order"]

        env = {
            **{k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG")},
            "DATABASE_URL": store_url,
            "EMAIL_URL": smtp.url(),
            "EMAIL_MAX_ATTEMPTS": "5",
        }
        await run_worker_once(env, tmp_path)
        pending = (await emails_of(client, order["id"]))[0]
        assert (pending["status"], pending["attempts"]) == ("PENDING", 1)
        assert pending["lastError"]

        smtp.start()
        try:
            # The retry is scheduled a few seconds out (exponential backoff); run the worker until it is due.
            deadline = asyncio.get_running_loop().time() + 30
            while (await emails_of(client, order["id"]))[0]["status"] != "SENT":
                assert asyncio.get_running_loop().time() < deadline, "never delivered"
                await run_worker_once(env, tmp_path)
                await asyncio.sleep(0.5)
        finally:
            smtp.stop()
    assert [r.message["Subject"] for r in smtp.received] == [f"Gateway Shop: your order {order['number']}"]
