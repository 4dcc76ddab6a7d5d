"""Choose an email backend by URL scheme (the pattern of encode/broadcaster): each backend's module, and so its
library, is imported only when its scheme is used."""

from __future__ import annotations

import ssl
from typing import TextIO

from integrations.email.base import EmailBackend

SCHEMES = ("smtp", "smtps", "file", "console")


def email_backend(url: str, *, tls_context: ssl.SSLContext | None = None, stream: TextIO | None = None) -> EmailBackend:
    """The backend for `url`: ``smtp://``, ``smtps://``, ``file://`` or ``console://``.

    `tls_context` replaces the default (system CAs, or the URL's ``cafile``) for SMTP; `stream` replaces stdout for
    the console. Raises ValueError for an unknown scheme or an invalid URL; the message never repeats the URL,
    which may hold a password.
    """
    scheme = url.partition(":")[0].lower() if ":" in url else ""
    if scheme in ("smtp", "smtps"):
        from integrations.email.smtp import SMTPBackend

        return SMTPBackend.from_url(url, tls_context=tls_context)
    if scheme == "file":
        from integrations.email.file import FileBackend

        return FileBackend.from_url(url)
    if scheme == "console":
        from integrations.email.console import ConsoleBackend

        return ConsoleBackend.from_url(url, stream=stream)
    shown = f"{scheme!r}" if scheme else "none"
    raise ValueError(f"unknown email backend scheme {shown}: expected one of " + ", ".join(f"{s}://" for s in SCHEMES))
