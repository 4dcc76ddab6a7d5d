"""Email backends against real receivers: an aiosmtpd server, a directory, a text stream."""

from __future__ import annotations

import email
import io
import re
from email import policy
from email.message import EmailMessage
from pathlib import Path

import pytest

from integrations.email import EmailDeliveryError, OutgoingEmail, email_backend
from integrations.email.console import ConsoleBackend
from integrations.email.file import FileBackend, eml_filename
from integrations.email.smtp import SMTPBackend
from tests.support.ports import free_port
from tests.support.smtp import SMTPServer

PASSWORD = "s3cret p@ss/word:%"  # percent-encoded in URLs as below
PASSWORD_IN_URL = "s3cret%20p%40ss%2Fword%3A%25"


def outgoing(**changes: str) -> OutgoingEmail:
    values = {
        "message_id": "<0123456789abcdef@gateway.local>",
        "sender": "Shop <shop@example.com>",
        "recipient": "Ada Lövelace <ada@example.com>",
        "subject": "Your order ORD-1 — thank you",
        "text_body": "Hello Ada,\n\n2 \u00d7 Widget  €20.00\n",
        "html_body": "<p>Hello Ada,</p><p>2 &times; Widget &euro;20.00</p>",
    }
    return OutgoingEmail(**{**values, **changes})


def assert_is_the_email(message: EmailMessage, sent: OutgoingEmail) -> None:
    assert message.get_content_type() == "multipart/alternative"
    plain, html = message.iter_parts()
    assert plain.get_content_type() == "text/plain"
    assert html.get_content_type() == "text/html"
    assert isinstance(plain, EmailMessage)
    assert isinstance(html, EmailMessage)
    # Text travels in canonical form (CRLF line breaks inside the quoted-printable or base64 body).
    assert plain.get_content().replace("\r\n", "\n") == sent.text_body
    assert html.get_content().replace("\r\n", "\n").rstrip("\n") == sent.html_body
    assert message["From"] == sent.sender
    assert message["To"] == sent.recipient
    assert message["Subject"] == sent.subject
    assert message["Message-ID"] == sent.message_id
    assert message["Date"] is not None


async def test_smtp_delivers_a_multipart_alternative_message(smtp_server: SMTPServer) -> None:
    sent = outgoing()
    backend = email_backend(smtp_server.url())
    await backend.send(sent)
    await backend.aclose()

    [received] = smtp_server.received
    assert received.mail_from == "shop@example.com"
    assert received.rcpt_tos == ["ada@example.com"]
    assert not received.tls  # aiosmtpd offers no STARTTLS here; opportunistic mode goes on in plain text
    assert_is_the_email(received.message, sent)
    assert max(len(line) for line in received.data.splitlines()) <= 78
    assert received.data.isascii()  # 7-bit clean: quoted-printable or base64 bodies, RFC 2047 headers


async def test_smtp_reconnects_for_every_message_so_a_restarted_server_just_works(smtp_server: SMTPServer) -> None:
    backend = email_backend(smtp_server.url())
    await backend.send(outgoing(message_id="<first@gateway.local>"))
    smtp_server.stop()
    with pytest.raises(EmailDeliveryError):
        await backend.send(outgoing(message_id="<lost@gateway.local>"))
    smtp_server.start()
    await backend.send(outgoing(message_id="<second@gateway.local>"))
    assert smtp_server.handler.message_ids() == ["<first@gateway.local>", "<second@gateway.local>"]


async def test_smtp_authenticates_with_percent_decoded_credentials() -> None:
    with SMTPServer(credentials={"mailer@example.com": PASSWORD}) as server:
        backend = email_backend(server.url(userinfo=f"mailer%40example.com:{PASSWORD_IN_URL}"))
        await backend.send(outgoing())
        [received] = server.received
        assert received.login == "mailer@example.com"


async def test_wrong_smtp_password_is_a_temporary_error_that_does_not_show_the_password() -> None:
    with SMTPServer(credentials={"mailer": "right"}) as server:
        backend = email_backend(server.url(userinfo=f"mailer:{PASSWORD_IN_URL}"))
        with pytest.raises(EmailDeliveryError) as caught:
            await backend.send(outgoing())
        assert not caught.value.permanent
        assert caught.value.smtp_code == 535
        assert "authentication failed" in caught.value.message
        assert PASSWORD not in caught.value.message
        assert PASSWORD not in repr(backend)
        assert PASSWORD_IN_URL not in repr(backend)
        assert server.received == []


async def test_an_unreachable_smtp_server_is_a_temporary_error() -> None:
    backend = email_backend(f"smtp://127.0.0.1:{free_port()}?timeout=2")
    with pytest.raises(EmailDeliveryError) as caught:
        await backend.send(outgoing())
    assert not caught.value.permanent
    assert caught.value.smtp_code is None
    assert "SMTP 127.0.0.1:" in caught.value.message


@pytest.mark.parametrize(
    ("reply", "permanent"),
    [("550 5.1.1 No such user here", True), ("451 4.3.0 Mailbox busy, try later", False)],
)
async def test_a_refused_recipient_is_permanent_on_5xx_and_temporary_on_4xx(
    smtp_server: SMTPServer, reply: str, permanent: bool
) -> None:
    smtp_server.handler.refuse_recipients = reply
    with pytest.raises(EmailDeliveryError) as caught:
        await email_backend(smtp_server.url()).send(outgoing())
    assert caught.value.permanent is permanent
    assert caught.value.smtp_code == int(reply[:3])
    assert reply[4:] in caught.value.message
    assert smtp_server.received == []


@pytest.mark.parametrize(
    "bad",
    [
        {"subject": "line\nbreak"},
        {"recipient": "not an address"},
        {"recipient": "a@example.com, b@example.com"},
        {"message_id": "no-angle-brackets@x"},
    ],
)
async def test_a_message_that_cannot_be_built_is_a_permanent_error(
    smtp_server: SMTPServer, bad: dict[str, str]
) -> None:
    with pytest.raises(EmailDeliveryError) as caught:
        await email_backend(smtp_server.url()).send(outgoing(**bad))
    assert caught.value.permanent
    assert smtp_server.received == []


def test_smtp_url_options() -> None:
    backend = email_backend("SMTP://u%40x:p%3Aw@mail.example.com:2525?starttls=required&timeout=3.5")
    assert isinstance(backend, SMTPBackend)
    assert (backend.hostname, backend.port, backend.username) == ("mail.example.com", 2525, "u@x")
    assert (backend.starttls, backend.implicit_tls, backend.timeout) == ("required", False, 3.5)
    assert "p:w" not in repr(backend)
    assert "p%3Aw" not in repr(backend)

    default = email_backend("smtp://mail.example.com")
    assert isinstance(default, SMTPBackend)
    assert (default.port, default.starttls, default.username) == (25, "opportunistic", None)
    implicit = email_backend("smtps://mail.example.com")
    assert isinstance(implicit, SMTPBackend)
    assert (implicit.port, implicit.implicit_tls) == (465, True)


@pytest.mark.parametrize(
    ("url", "complaint"),
    [
        ("smtp://user:hunter2@mail.example.com?starttls=maybe", "starttls must be"),
        ("smtp://user:hunter2@mail.example.com?tls=1", "unknown SMTP email URL option(s): tls"),
        ("smtp://user:hunter2@mail.example.com?timeout=soon", "timeout must be"),
        ("smtp://user:hunter2@mail.example.com?timeout=0", "must be positive"),
        ("smtp://user:hunter2@mail.example.com:99999", "invalid port"),
        ("smtps://user:hunter2@mail.example.com?starttls=required", "implicit TLS"),
        ("smtp://user:hunter2@mail.example.com?cafile=/nonexistent/ca.pem", "CA file"),
        ("smtp://", "no host"),
    ],
)
def test_invalid_smtp_urls_are_refused_without_repeating_the_password(url: str, complaint: str) -> None:
    with pytest.raises(ValueError, match=re.escape(complaint)) as caught:
        email_backend(url)
    assert "hunter2" not in str(caught.value)


@pytest.mark.parametrize("url", ["imap://user:hunter2@mail.example.com", "mail.example.com", "", "sendgrid://key"])
def test_an_unknown_scheme_is_a_clear_value_error(url: str) -> None:
    with pytest.raises(ValueError, match="unknown email backend scheme") as caught:
        email_backend(url)
    assert "smtp://, smtps://, file://, console://" in str(caught.value)
    assert "hunter2" not in str(caught.value)


async def test_file_backend_writes_one_parseable_eml_per_message(tmp_path: Path) -> None:
    directory = tmp_path / "var" / "mail"
    backend = email_backend(f"file://{directory}")
    assert isinstance(backend, FileBackend)
    sent = outgoing()
    await backend.send(sent)
    await backend.send(sent)  # a resend (at-least-once delivery) replaces the file
    await backend.send(outgoing(message_id="<other/../../id@gateway.local>"))
    await backend.aclose()

    files = sorted(path.name for path in directory.iterdir())
    assert files == sorted([eml_filename(sent.message_id), eml_filename("<other/../../id@gateway.local>")])
    assert all(name.endswith(".eml") and "/" not in name and not name.startswith(".") for name in files)
    parsed = email.message_from_bytes((directory / eml_filename(sent.message_id)).read_bytes(), policy=policy.default)
    assert isinstance(parsed, EmailMessage)
    assert_is_the_email(parsed, sent)


def test_file_urls_may_be_relative_or_absolute() -> None:
    relative = email_backend("file://./var/mail")
    absolute = email_backend("file:///tmp/gateway%20mail")
    assert isinstance(relative, FileBackend)
    assert isinstance(absolute, FileBackend)
    assert relative.directory == Path("var/mail")
    assert absolute.directory == Path("/tmp/gateway mail")
    with pytest.raises(ValueError, match="no directory"):
        email_backend("file://")


def test_eml_file_names_are_safe_and_distinct() -> None:
    names = {eml_filename(m) for m in ("<a/b@x>", "<a_b@x>", "<../../etc/passwd@x>", "<.hidden@x>", "<>")}
    assert len(names) == 5
    assert all("/" not in name and not name.startswith(".") for name in names)


async def test_an_unwritable_directory_is_a_temporary_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(EmailDeliveryError) as caught:
        await email_backend(f"file://{blocker}/mail").send(outgoing())
    assert not caught.value.permanent


async def test_console_backend_writes_the_message_to_the_stream() -> None:
    stream = io.StringIO()
    backend = email_backend("console://", stream=stream)
    assert isinstance(backend, ConsoleBackend)
    sent = outgoing()
    await backend.send(sent)
    output = stream.getvalue()
    assert f"Message-ID: {sent.message_id}" in output
    assert "To: Ada =?utf-8?q?L=C3=B6velace?= <ada@example.com>" in output
    parsed = email.message_from_string(output.split("\n" + "-" * 79)[0], policy=policy.default)
    assert isinstance(parsed, EmailMessage)
    assert_is_the_email(parsed, sent)


async def test_console_backend_defaults_to_stdout(capsys: pytest.CaptureFixture[str]) -> None:
    await email_backend("console://").send(outgoing())
    assert "Message-ID: <0123456789abcdef@gateway.local>" in capsys.readouterr().out
