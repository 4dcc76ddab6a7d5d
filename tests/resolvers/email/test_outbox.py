"""The outbox row lives and dies with the caller's transaction; the order confirmation template."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from integrations.store.models import Customer, EmailStatus, OutboxEmail
from integrations.store.session import StoreSession
from integrations.store.types import utcnow
from resolvers.email.outbox import ORDER_CONFIRMATION, enqueue, new_message_id, order_confirmation


async def outbox_rows(sessionmaker: async_sessionmaker[AsyncSession]) -> list[OutboxEmail]:
    async with sessionmaker() as session:
        return list((await session.scalars(select(OutboxEmail))).all())


async def test_an_email_commits_with_the_business_change(
    store: StoreSession, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    before = utcnow()
    async with store.transaction() as session:
        customer = Customer(email="ada@example.com", name="Ada")
        session.add(customer)
        email = enqueue(
            session,
            kind="welcome",
            recipient="ada@example.com",
            subject="Welcome,\r\n  Ada",
            text_body="Hello",
            html_body="<p>Hello</p>",
            domain="shop.example.com",
        )
    [row] = await outbox_rows(sessionmaker)
    assert row.id == email.id
    assert row.status == EmailStatus.PENDING
    assert row.attempts == 0
    assert row.locked_until is None
    assert row.sent_at is None
    assert row.subject == "Welcome, Ada"  # no line break can reach a header
    assert before <= row.next_attempt_at <= utcnow()
    assert re.fullmatch(r"<[0-9a-f]{32}@shop\.example\.com>", row.message_id)


async def test_a_rolled_back_transaction_leaves_no_email(
    store: StoreSession, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    async def place_order() -> None:
        async with store.transaction() as session:
            session.add(Customer(email="ada@example.com", name="Ada"))
            for n in range(3):
                enqueue(
                    session, kind="welcome", recipient="ada@example.com", subject=f"S{n}", text_body="", html_body=""
                )
            await session.flush()  # the rows reached the database inside the transaction...
            raise RuntimeError("the business change failed")

    with pytest.raises(RuntimeError, match="the business change failed"):
        await place_order()
    assert await outbox_rows(sessionmaker) == []  # ...and left with it
    async with sessionmaker() as session:
        assert await session.scalar(select(func.count()).select_from(Customer)) == 0


def test_enqueue_refuses_programming_errors() -> None:
    session = AsyncSession()
    with pytest.raises(ValueError, match="kind"):
        enqueue(session, kind="", recipient="a@example.com", subject="S", text_body="", html_body="")
    with pytest.raises(ValueError, match="recipient"):
        enqueue(session, kind="k", recipient="a@example.com\r\nBcc: x@y", subject="S", text_body="", html_body="")
    with pytest.raises(ValueError, match="subject"):
        enqueue(session, kind="k", recipient="a@example.com", subject="x" * 256, text_body="", html_body="")
    with pytest.raises(ValueError, match="domain"):
        new_message_id("evil.com> <x")
    assert not session.new


def test_message_ids_are_unique() -> None:
    assert len({new_message_id() for _ in range(1000)}) == 1000


def test_order_confirmation_lists_lines_and_total_and_escapes_html() -> None:
    mail = order_confirmation(
        number="ORD-7K3M9Q2XPR",
        customer_name="Ada <script>alert(1)</script>",
        lines=[("Widget & Sons", 2, "$20.00"), ('Gadget "Pro"', 1, "€1,234.50")],
        total="$1,254.50",
        shop_name="Acme",
    )
    assert ORDER_CONFIRMATION == "order_confirmation"
    assert mail.subject == "Acme: your order ORD-7K3M9Q2XPR"
    assert "Hello Ada <script>alert(1)</script>," in mail.text_body  # plain text is not HTML: nothing to escape
    assert "    2 x Widget & Sons  $20.00" in mail.text_body
    assert '    1 x Gadget "Pro"   €1,234.50' in mail.text_body
    assert "Total: $1,254.50" in mail.text_body
    assert "<script>" not in mail.html_body
    assert "Ada &lt;script&gt;alert(1)&lt;/script&gt;" in mail.html_body
    assert "<td>Widget &amp; Sons</td>" in mail.html_body
    assert "<td>Gadget &quot;Pro&quot;</td>" in mail.html_body
    assert ">2</td>" in mail.html_body
    assert ">$1,254.50</th>" in mail.html_body
    assert "<strong>ORD-7K3M9Q2XPR</strong>" in mail.html_body
