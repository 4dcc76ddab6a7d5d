"""SMTP delivery with aiosmtplib: one connection per message, so a restarted server is never a stale connection.

URLs::

    smtp://[user:password@]host[:port][?starttls=opportunistic|required|off][&timeout=10][&cafile=/path/ca.pem]
    smtps://[user:password@]host[:port][?timeout=10][&cafile=/path/ca.pem]

``smtp`` (port 25 by default) upgrades with STARTTLS when the server offers it (``opportunistic``, the default),
insists on it (``required``) or never tries (``off``). ``smtps`` (port 465 by default) speaks TLS from the first
byte. Certificates are always verified, against the system's CAs or ``cafile``. User and password are
percent-decoded (``p%40ss`` is ``p@ss``). No error message or ``repr`` ever contains the password.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from typing import Literal
from urllib.parse import parse_qsl, unquote, urlsplit

import aiosmtplib

from integrations.email.base import EmailDeliveryError, OutgoingEmail
from integrations.email.message import build_message, envelope_address

StartTLS = Literal["opportunistic", "required", "off"]
_STARTTLS: dict[str, bool | None] = {"opportunistic": None, "required": True, "off": False}
MAX_ERROR_LENGTH = 300


class SMTPBackend:
    def __init__(
        self,
        *,
        hostname: str,
        port: int | None = None,
        username: str | None = None,
        password: str | None = None,
        implicit_tls: bool = False,
        starttls: StartTLS = "opportunistic",
        timeout: float = 10.0,
        cafile: str | None = None,
        tls_context: ssl.SSLContext | None = None,
        local_hostname: str | None = None,
    ) -> None:
        if implicit_tls and starttls == "required":
            raise ValueError("STARTTLS cannot be combined with implicit TLS (smtps://)")
        if timeout <= 0:
            raise ValueError("the SMTP timeout must be positive")
        if tls_context is not None and cafile is not None:
            raise ValueError("give either cafile or tls_context, not both")
        self.hostname = hostname
        self.port = port or (465 if implicit_tls else 25)
        self.username = username
        self._password = password
        self.implicit_tls = implicit_tls
        self.starttls = starttls
        self.timeout = timeout
        try:
            self._tls_context = tls_context or ssl.create_default_context(cafile=cafile)
        except (OSError, ssl.SSLError) as exc:
            raise ValueError(f"the SMTP CA file cannot be used: {exc}") from None
        self._local_hostname = local_hostname

    @classmethod
    def from_url(cls, url: str, *, tls_context: ssl.SSLContext | None = None) -> SMTPBackend:
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme not in ("smtp", "smtps"):
            raise ValueError(f"an SMTP email URL starts with smtp:// or smtps://, not {scheme}://")
        try:
            hostname, port = parts.hostname, parts.port
        except ValueError:
            raise ValueError("the SMTP email URL has an invalid port") from None
        if not hostname:
            raise ValueError("the SMTP email URL has no host")
        options = dict(parse_qsl(parts.query, keep_blank_values=True))
        unknown = sorted(set(options) - {"starttls", "timeout", "cafile"})
        if unknown:
            raise ValueError(f"unknown SMTP email URL option(s): {', '.join(unknown)}")
        starttls = options.get("starttls", "off" if scheme == "smtps" else "opportunistic")
        if starttls not in _STARTTLS:
            raise ValueError("the SMTP email URL option starttls must be opportunistic, required or off")
        if scheme == "smtps" and starttls != "off":
            raise ValueError("smtps:// uses implicit TLS; the starttls option does not apply")
        try:
            timeout = float(options.get("timeout", "10"))
        except ValueError:
            raise ValueError("the SMTP email URL option timeout must be a number of seconds") from None
        return cls(
            hostname=hostname,
            port=port,
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password is not None else None,
            implicit_tls=scheme == "smtps",
            starttls=starttls,  # type: ignore[arg-type]  # checked against _STARTTLS above
            timeout=timeout,
            cafile=options.get("cafile") or None,
            tls_context=tls_context,
        )

    def __repr__(self) -> str:
        scheme = "smtps" if self.implicit_tls else "smtp"
        user = f"{self.username}:***@" if self.username else ""
        return f"<SMTPBackend {scheme}://{user}{self.hostname}:{self.port}>"

    async def send(self, message: OutgoingEmail) -> None:
        mime = build_message(message)
        sender, recipient = envelope_address(mime, "From"), envelope_address(mime, "To")
        if self._local_hostname is None:
            self._local_hostname = await asyncio.to_thread(socket.getfqdn)
        client = aiosmtplib.SMTP(
            hostname=self.hostname,
            port=self.port,
            username=self.username,
            password=self._password,
            local_hostname=self._local_hostname,
            timeout=self.timeout,
            use_tls=self.implicit_tls,
            start_tls=False if self.implicit_tls else _STARTTLS[self.starttls],
            tls_context=self._tls_context,
        )
        try:
            async with client:
                await client.send_message(mime, sender=sender, recipients=[recipient])
        except aiosmtplib.SMTPRecipientsRefused as exc:
            codes = [refusal.code for refusal in exc.recipients]
            detail = "; ".join(f"{r.code} {r.message}" for r in exc.recipients)
            raise self._error(
                f"recipient refused: {detail}", permanent=all(c >= 500 for c in codes), code=codes[0]
            ) from exc
        except aiosmtplib.SMTPSenderRefused as exc:
            raise self._error(
                f"sender refused: {exc.code} {exc.message}", permanent=exc.code >= 500, code=exc.code
            ) from exc
        except aiosmtplib.SMTPDataError as exc:
            raise self._error(
                f"message refused: {exc.code} {exc.message}", permanent=exc.code >= 500, code=exc.code
            ) from exc
        except aiosmtplib.SMTPAuthenticationError as exc:
            # Wrong credentials are the gateway's configuration, not this message: retrying after a fix succeeds.
            raise self._error(
                f"authentication failed: {exc.code} {exc.message}", permanent=False, code=exc.code
            ) from exc
        except aiosmtplib.SMTPResponseException as exc:
            raise self._error(f"server error: {exc.code} {exc.message}", permanent=False, code=exc.code) from exc
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            # Connection refused or lost, timeouts, TLS failures (ssl.SSLError is an OSError), STARTTLS missing.
            raise self._error(f"{type(exc).__name__}: {exc}", permanent=False, code=None) from exc

    async def aclose(self) -> None:
        """Nothing to release: every message uses a connection of its own."""

    def _error(self, text: str, *, permanent: bool, code: int | None) -> EmailDeliveryError:
        if self._password:
            text = text.replace(self._password, "***")
        text = " ".join(text.split())[:MAX_ERROR_LENGTH]
        return EmailDeliveryError(f"SMTP {self.hostname}:{self.port}: {text}", permanent=permanent, smtp_code=code)
