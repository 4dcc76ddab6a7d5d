"""What every email backend is: the message it sends, the protocol it follows, the error it raises."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from integrations.errors import ErrorCode, GatewayError


@dataclass(frozen=True)
class OutgoingEmail:
    """One message to one recipient. `message_id` (``<unique@domain>``) is stable across retries of the same email,
    so receivers can drop the duplicates that at-least-once delivery may produce."""

    message_id: str
    sender: str
    recipient: str
    subject: str
    text_body: str
    html_body: str


class EmailBackend(Protocol):
    async def send(self, message: OutgoingEmail) -> None:
        """Deliver `message` or raise `EmailDeliveryError`."""

    async def aclose(self) -> None:
        """Release whatever the backend holds (connections, files)."""


class EmailDeliveryError(GatewayError):
    """A message could not be delivered.

    `permanent` is True when sending the same message again cannot succeed (the server refused the recipient or the
    sender with a 5xx, the message cannot be built); False when a later attempt may (connection refused, timeout,
    TLS or authentication trouble, a 4xx). `smtp_code` is the server's reply code when there was one. The message
    never contains credentials.
    """

    def __init__(self, message: str, *, permanent: bool, smtp_code: int | None = None) -> None:
        super().__init__(message, code=ErrorCode.UPSTREAM_ERROR if permanent else ErrorCode.UPSTREAM_UNAVAILABLE)
        self.permanent = permanent
        self.smtp_code = smtp_code
