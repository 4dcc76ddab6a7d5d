"""A real SMTP server for tests: aiosmtpd on 127.0.0.1 in a thread of its own, recording what it receives.

It can refuse recipients (``refuse_recipients = "550 5.1.1 No such user"`` or a 4xx), require AUTH, speak STARTTLS
or implicit TLS, and be stopped and started again on the same port to play "down, then back".
"""

from __future__ import annotations

import asyncio
import email
import ssl
import threading
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from tests.support.ports import free_port


@dataclass(frozen=True)
class ReceivedEmail:
    mail_from: str
    rcpt_tos: list[str]
    data: bytes
    login: str | None  # who authenticated, if anyone
    tls: bool  # whether the session was encrypted (STARTTLS or implicit TLS)

    @property
    def message(self) -> EmailMessage:
        parsed = email.message_from_bytes(self.data, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        return parsed

    @property
    def message_id(self) -> str:
        return str(self.message["Message-ID"])


class RecordingHandler:
    def __init__(self) -> None:
        self.received: list[ReceivedEmail] = []
        self.refuse_recipients: str | None = None  # an SMTP reply such as "550 5.1.1 No such user"
        self.accept_delay = 0.0  # seconds between receiving a message's data and answering it (a slow peer)
        self.data_started = threading.Event()  # set when a message's data has arrived, before `accept_delay`
        self._lock = threading.Lock()

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]) -> str:
        if self.refuse_recipients is not None:
            return self.refuse_recipients
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.data_started.set()
        if self.accept_delay:
            await asyncio.sleep(self.accept_delay)
        login = session.auth_data.decode() if isinstance(session.auth_data, bytes) else None
        with self._lock:
            self.received.append(
                ReceivedEmail(
                    mail_from=envelope.mail_from,
                    rcpt_tos=list(envelope.rcpt_tos),
                    data=bytes(envelope.original_content or envelope.content),
                    login=login,
                    tls=session.ssl is not None or server.transport.get_extra_info("ssl_object") is not None,
                )
            )
        return "250 Message accepted for delivery"

    def message_ids(self) -> list[str]:
        with self._lock:
            return [received.message_id for received in self.received]


class SMTPServer:
    """An aiosmtpd server on 127.0.0.1:`port` (a free one by default).

    `credentials` turns on AUTH: required, and offered only after STARTTLS, when `starttls_context` is given;
    offered (not required) otherwise. `starttls_context` offers STARTTLS; `implicit_tls_context` makes it an
    smtps server. The handler (and so what was received) survives `stop`/`start`.
    """

    def __init__(
        self,
        *,
        port: int | None = None,
        credentials: dict[str, str] | None = None,
        starttls_context: ssl.SSLContext | None = None,
        implicit_tls_context: ssl.SSLContext | None = None,
    ) -> None:
        self.port = port or free_port()
        self.handler = RecordingHandler()
        self.credentials = credentials
        self.starttls_context = starttls_context
        self.implicit_tls_context = implicit_tls_context
        self._controller: Controller | None = None

    @property
    def received(self) -> list[ReceivedEmail]:
        return self.handler.received

    def url(self, scheme: str = "smtp", *, userinfo: str = "", query: str = "") -> str:
        at = f"{userinfo}@" if userinfo else ""
        return f"{scheme}://{at}127.0.0.1:{self.port}" + (f"?{query}" if query else "")

    def start(self) -> None:
        assert self._controller is None, "already running"
        kwargs: dict[str, Any] = {"server_hostname": "localhost", "ident": "test SMTP"}
        if self.credentials is not None:
            # With STARTTLS, AUTH is required and offered only once encrypted. Otherwise it is offered, not required:
            # aiosmtpd warns about requiring AUTH without its own STARTTLS (it does not count implicit TLS), and
            # warnings are errors in this suite.
            starttls = self.starttls_context is not None
            kwargs.update(authenticator=self._authenticate, auth_required=starttls, auth_require_tls=starttls)
        if self.starttls_context is not None:
            kwargs["tls_context"] = self.starttls_context
        controller = Controller(
            self.handler, hostname="127.0.0.1", port=self.port, ssl_context=self.implicit_tls_context, **kwargs
        )
        controller.start()
        self._controller = controller

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def __enter__(self) -> SMTPServer:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _authenticate(self, server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
        assert self.credentials is not None
        if isinstance(auth_data, LoginPassword):
            login, password = auth_data.login.decode(), auth_data.password.decode()
            if self.credentials.get(login) == password:
                return AuthResult(success=True, auth_data=login.encode())
        return AuthResult(success=False, handled=False)
