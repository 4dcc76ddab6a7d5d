"""SMTP over TLS against aiosmtpd with a certificate from a throwaway CA (trustme): STARTTLS, implicit TLS, and
verification that refuses a certificate nobody vouched for."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme

from integrations.email import EmailDeliveryError, OutgoingEmail, email_backend
from tests.support.smtp import SMTPServer

CREDENTIALS = {"mailer": "tls p@ss"}
USERINFO = "mailer:tls%20p%40ss"


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module")
def server_context(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
    return context


@pytest.fixture(scope="module")
def cafile(ca: trustme.CA, tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("tls") / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return str(path)


@pytest.fixture
def starttls_server(server_context: ssl.SSLContext) -> Iterator[SMTPServer]:
    """Offers STARTTLS and accepts AUTH only after it."""
    with SMTPServer(credentials=CREDENTIALS, starttls_context=server_context) as server:
        yield server


def outgoing(message_id: str = "<tls@gateway.local>") -> OutgoingEmail:
    return OutgoingEmail(message_id, "shop@example.com", "ada@example.com", "TLS", "plain\n", "<p>html</p>\n")


@pytest.mark.parametrize("starttls", ["required", None])
async def test_starttls_then_auth(starttls_server: SMTPServer, cafile: str, starttls: str | None) -> None:
    """Required, or opportunistic (the default): the server offers STARTTLS, so the client upgrades, and only then
    may it authenticate."""
    query = f"cafile={cafile}" + (f"&starttls={starttls}" if starttls else "")
    await email_backend(starttls_server.url(userinfo=USERINFO, query=query)).send(outgoing())
    [received] = starttls_server.received
    assert received.tls
    assert received.login == "mailer"


async def test_implicit_tls_with_an_injected_context(ca: trustme.CA, server_context: ssl.SSLContext) -> None:
    client_context = ssl.create_default_context()
    ca.configure_trust(client_context)
    with SMTPServer(credentials=CREDENTIALS, implicit_tls_context=server_context) as server:
        await email_backend(server.url("smtps", userinfo=USERINFO), tls_context=client_context).send(outgoing())
        [received] = server.received
        assert received.tls
        assert received.login == "mailer"


async def test_an_untrusted_certificate_is_refused(starttls_server: SMTPServer) -> None:
    """Without the test CA (the system's CAs only), opportunistic STARTTLS still verifies and fails: never plain
    text after a failed upgrade, never an unverified server."""
    with pytest.raises(EmailDeliveryError) as caught:
        await email_backend(starttls_server.url(userinfo=USERINFO)).send(outgoing())
    assert not caught.value.permanent
    assert "certificate" in caught.value.message.lower()
    assert "tls p@ss" not in caught.value.message
    assert starttls_server.received == []


async def test_starttls_required_but_not_offered_is_a_temporary_error(cafile: str) -> None:
    with SMTPServer() as plain:
        with pytest.raises(EmailDeliveryError) as caught:
            await email_backend(plain.url(query=f"starttls=required&cafile={cafile}")).send(outgoing())
        assert not caught.value.permanent
        assert "STARTTLS" in caught.value.message
        assert plain.received == []


def test_cafile_must_exist(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="CA file"):
        email_backend(f"smtp://127.0.0.1?cafile={tmp_path / 'missing.pem'}")
