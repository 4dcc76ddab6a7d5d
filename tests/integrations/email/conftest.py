from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.smtp import SMTPServer


@pytest.fixture
def smtp_server() -> Iterator[SMTPServer]:
    """A real SMTP server (aiosmtpd) on 127.0.0.1 and a free port."""
    with SMTPServer() as server:
        yield server
