"""The MIME form of an `OutgoingEmail`: multipart/alternative, plain text first, HTML second."""

from __future__ import annotations

from datetime import UTC, datetime
from email import policy as email_policy
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime

from integrations.email.base import EmailDeliveryError, OutgoingEmail

# SMTP line endings and only 7-bit content (quoted-printable or base64 bodies), so the message passes unchanged
# through any server, with or without 8BITMIME.
POLICY = email_policy.SMTP.clone(cte_type="7bit")


def build_message(message: OutgoingEmail, *, date: datetime | None = None) -> EmailMessage:
    """Build the MIME message; raise a permanent `EmailDeliveryError` for what no retry can fix (a malformed
    address, a header with a line break, a Message-ID without angle brackets)."""
    try:
        mime = EmailMessage(policy=POLICY)
        mime["From"] = message.sender
        mime["To"] = message.recipient
        mime["Subject"] = message.subject
        mime["Date"] = format_datetime(date or datetime.now(UTC))
        mime["Message-ID"] = message.message_id
        mime.set_content(message.text_body)
        mime.add_alternative(message.html_body, subtype="html")
    except (ValueError, TypeError) as exc:
        raise EmailDeliveryError(f"the message cannot be built: {exc}", permanent=True) from exc
    for name in ("From", "To"):
        envelope_address(mime, name)
    message_id = message.message_id
    if not (message_id.startswith("<") and message_id.endswith(">") and "@" in message_id):
        raise EmailDeliveryError("the message cannot be built: Message-ID must look like <id@domain>", permanent=True)
    return mime


def envelope_address(mime: EmailMessage, header: str) -> str:
    """The single address (``user@domain``) of the `header` ("From" or "To"), for the SMTP envelope."""
    value = mime[header]
    addresses: tuple[Address, ...] = getattr(value, "addresses", ())
    if value is None or value.defects or len(addresses) != 1 or "@" not in addresses[0].addr_spec:
        raise EmailDeliveryError(f"the message cannot be built: {header} is not one valid address", permanent=True)
    return addresses[0].addr_spec
