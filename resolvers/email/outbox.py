"""Write emails into the outbox in the same transaction as the change they report, and the templates for them.

`enqueue` only adds a row to the caller's session: the email exists exactly when the business change commits, and
disappears with it on rollback. `OutboxWorker` (resolvers.email.delivery) sends it afterwards.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

from sqlalchemy.ext.asyncio import AsyncSession

from integrations.store.models import EMAIL_MAX, EmailStatus, OutboxEmail
from integrations.store.types import utcnow

ORDER_CONFIRMATION = "order_confirmation"
KIND_MAX = 64
SUBJECT_MAX = 255
_DOMAIN = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?$")


def new_message_id(domain: str = "gateway.local") -> str:
    """A globally unique RFC 5322 Message-ID, ``<32 hex digits@domain>``."""
    if not _DOMAIN.match(domain):
        raise ValueError(f"invalid Message-ID domain {domain!r}")
    return f"<{uuid.uuid4().hex}@{domain}>"


def enqueue(
    session: AsyncSession,
    *,
    kind: str,
    recipient: str,
    subject: str,
    text_body: str,
    html_body: str,
    order_id: int | None = None,
    domain: str = "gateway.local",
) -> OutboxEmail:
    """Add a PENDING email to `session` (the caller's transaction; nothing is flushed or committed here).

    The subject's whitespace (line breaks included) is folded to single spaces. Raises ValueError for an empty or
    over-long kind, recipient or subject, or a recipient with a line break: those are programming errors.
    """
    subject = " ".join(subject.split())
    if not 0 < len(kind) <= KIND_MAX:
        raise ValueError(f"an email kind has 1 to {KIND_MAX} characters")
    if not 0 < len(recipient) <= EMAIL_MAX or "\r" in recipient or "\n" in recipient:
        raise ValueError("invalid recipient address")
    if not 0 < len(subject) <= SUBJECT_MAX:
        raise ValueError(f"an email subject has 1 to {SUBJECT_MAX} characters")
    email = OutboxEmail(
        order_id=order_id,
        kind=kind,
        message_id=new_message_id(domain),
        recipient=recipient,
        subject=subject,
        text_body=text_body,
        html_body=html_body,
        status=EmailStatus.PENDING,
        attempts=0,
        next_attempt_at=utcnow(),
    )
    session.add(email)
    return email


@dataclass(frozen=True)
class RenderedEmail:
    subject: str
    text_body: str
    html_body: str


def order_confirmation(
    *,
    number: str,
    customer_name: str,
    lines: Sequence[tuple[str, int, str]],
    total: str,
    shop_name: str = "Our shop",
) -> RenderedEmail:
    """The confirmation of a placed order. `lines` are (product name, quantity, formatted subtotal); `total` is
    formatted too (see resolvers.money.format_money). Every value is HTML-escaped in the HTML part."""
    subject = f"{shop_name}: your order {number}"
    width = max((len(name) for name, _, _ in lines), default=0)
    text_lines = [f"  {quantity:>3} x {name:<{width}}  {subtotal}" for name, quantity, subtotal in lines]
    text_body = "\n".join(
        [
            f"Hello {customer_name},",
            "",
            f"thank you for your order {number}.",
            "",
            *text_lines,
            "",
            f"Total: {total}",
            "",
            shop_name,
            "",
        ]
    )
    e = escape
    rows = "\n".join(
        f'<tr><td>{e(name)}</td><td style="text-align:right">{quantity}</td>'
        f'<td style="text-align:right">{e(subtotal)}</td></tr>'
        for name, quantity, subtotal in lines
    )
    html_body = f"""<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>{e(subject)}</title></head>
<body>
<p>Hello {e(customer_name)},</p>
<p>thank you for your order <strong>{e(number)}</strong>.</p>
<table>
<thead><tr><th style="text-align:left">Product</th><th>Quantity</th><th>Subtotal</th></tr></thead>
<tbody>
{rows}
</tbody>
<tfoot><tr><th style="text-align:left" colspan="2">Total</th><th style="text-align:right">{e(total)}</th></tr></tfoot>
</table>
<p>{e(shop_name)}</p>
</body>
</html>
"""
    return RenderedEmail(subject=subject, text_body=text_body, html_body=html_body)
