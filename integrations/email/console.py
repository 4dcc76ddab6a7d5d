"""``console://``: print each message, as it would go over SMTP, to stdout (or a given text stream). For development."""

from __future__ import annotations

import sys
from email import policy as email_policy
from typing import TextIO

from integrations.email.base import OutgoingEmail
from integrations.email.message import build_message

SEPARATOR = "-" * 79


class ConsoleBackend:
    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream

    @classmethod
    def from_url(cls, url: str, *, stream: TextIO | None = None) -> ConsoleBackend:
        if not url.lower().startswith("console:"):
            raise ValueError("a console email URL is console://")
        return cls(stream)

    def __repr__(self) -> str:
        return "<ConsoleBackend>"

    async def send(self, message: OutgoingEmail) -> None:
        text = build_message(message).as_string(policy=email_policy.default.clone(cte_type="7bit"))
        stream = self._stream if self._stream is not None else sys.stdout  # looked up late: redirections apply
        stream.write(f"{text.rstrip()}\n{SEPARATOR}\n")
        stream.flush()

    async def aclose(self) -> None:
        """The stream belongs to the caller and stays open."""
