"""localstripe (a fake of Stripe's API, from PyPI) as a real process on a free loopback port.

It ignores ``Idempotency-Key`` and knows only some of Stripe's test payment methods: ``pm_card_visa``
succeeds, ``pm_card_chargeCustomerFail`` is declined when charged; a card that needs 3-D Secure is created
from its test number (see `create_card`). It writes a pickle of its state to /tmp on every POST.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx

from tests.support.ports import free_port
from tests.support.processes import stop
from tests.support.services import unavailable

API_KEY = "sk_test_gateway_localstripe_0123456789"
DECLINED_CARD = "pm_card_chargeCustomerFail"
AUTHENTICATION_REQUIRED_NUMBER = "4000002500003155"


@dataclass(frozen=True)
class LocalStripe:
    url: str
    process: subprocess.Popen[bytes]

    def client(self) -> httpx.Client:
        return httpx.Client(
            base_url=self.url, headers={"Authorization": f"Bearer {API_KEY}"}, timeout=10, trust_env=False
        )

    def create_card(self, number: str) -> str:
        """A PaymentMethod for a test card number (localstripe lacks most ``pm_card_*`` shortcuts)."""
        with self.client() as client:
            response = client.post(
                "/v1/payment_methods",
                data={
                    "type": "card",
                    "card[number]": number,
                    "card[exp_month]": "12",
                    "card[exp_year]": "2034",
                    "card[cvc]": "123",
                },
            )
            response.raise_for_status()
            return str(response.json()["id"])

    def payment_intents(self) -> list[dict[str, Any]]:
        with self.client() as client:
            response = client.get("/v1/payment_intents", params={"limit": "100"})
            response.raise_for_status()
            return list(response.json()["data"])


@contextmanager
def run_localstripe(port: int | None = None) -> Iterator[LocalStripe]:
    port = port or free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "localstripe", "--port", str(port), "--from-scratch"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            if process.poll() is not None:
                unavailable(f"localstripe exited with status {process.returncode}")
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    unavailable("localstripe did not start listening within 20 s")
                time.sleep(0.05)
        yield LocalStripe(url=url, process=process)
    finally:
        stop(process)
