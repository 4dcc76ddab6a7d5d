"""How settings become services: the Message-ID domain and the sender address."""

from __future__ import annotations

import pytest

from gateway.services import email_domain, payment_lease
from gateway.settings import SettingsError, load_settings


@pytest.mark.parametrize(
    ("sender", "domain"),
    [
        ("Shop <no-reply@Shop.Example>", "shop.example"),
        ("orders@mail.shop.example", "mail.shop.example"),
        ("x@[127.0.0.1]", "gateway.local"),  # an address literal is no Message-ID domain
        ("a@bücher.de", "gateway.local"),
    ],
)
def test_message_ids_use_the_senders_domain_when_it_is_a_plain_hostname(sender: str, domain: str) -> None:
    assert email_domain(sender) == domain


@pytest.mark.parametrize("sender", ["nobody", "Shop <>", "a@b.example\nBcc: x@y.example"])
def test_a_sender_that_is_not_an_address_stops_start_up(sender: str) -> None:
    with pytest.raises(SettingsError, match="EMAIL_FROM"):
        load_settings(_env_file=None, EMAIL_FROM=sender)


def test_the_payment_lease_outlasts_every_attempt() -> None:
    settings = load_settings(_env_file=None, PAYMENTS_CONNECT_TIMEOUT=1, PAYMENTS_READ_TIMEOUT=4, PAYMENTS_RETRIES=2)
    assert payment_lease(settings) > (1 + 4) * 3


def test_stripe_needs_an_api_key() -> None:
    with pytest.raises(SettingsError, match="STRIPE_API_KEY is required"):
        load_settings(_env_file=None, PAYMENTS_PROVIDER="stripe")
