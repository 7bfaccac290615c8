"""smtplib against a real aiosmtpd server over STARTTLS, implicit TLS, and with a login."""

import ssl
import subprocess
import time
from email.message import EmailMessage

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult

from ied.mail import send_message
from tests.support.postgres import free_port


@pytest.fixture(scope="module")
def certificate(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


class Inbox:
    def __init__(self):
        self.messages = []
        self.peers = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append((session.authenticated, envelope.content))
        self.peers.append(session.peer)  # one per connection
        return "250 2.0.0 Accepted"


def only_user(server, session, envelope, mechanism, auth_data):
    good = auth_data.login == b"ied" and auth_data.password == b"s3cret"
    return AuthResult(success=good)


def server_tls(certificate) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*map(str, certificate))
    return context


def message() -> EmailMessage:
    email = EmailMessage()
    email["To"] = "installer@example.test"
    email["Subject"] = "Transport check"
    email.set_content("hello")
    return email


@pytest.fixture
def smtp_with(app):
    started = []

    def start(**options):
        inbox, port = Inbox(), free_port()
        controller = Controller(inbox, hostname="127.0.0.1", port=port, **options)
        controller.start()
        started.append(controller)
        app.config.update(SMTP_HOST="127.0.0.1", SMTP_PORT=port, SMTP_TIMEOUT=5)
        return inbox

    yield start
    for controller in started:
        controller.stop()


def test_starttls_with_login(app, smtp_with, certificate):
    inbox = smtp_with(
        tls_context=server_tls(certificate),
        require_starttls=True,
        authenticator=only_user,
        auth_required=True,
    )
    app.config.update(
        SMTP_STARTTLS=True,
        SMTP_CA_FILE=str(certificate[0]),
        SMTP_USERNAME="ied",
        SMTP_PASSWORD="s3cret",
    )
    outcome = send_message(message())
    assert (outcome.accepted, outcome.code) == (True, 250), outcome
    assert inbox.messages[0][0] is True


def test_an_untrusted_certificate_is_refused(app, smtp_with, certificate):
    inbox = smtp_with(tls_context=server_tls(certificate), require_starttls=True)
    app.config.update(SMTP_STARTTLS=True, SMTP_CA_FILE="")
    outcome = send_message(message())
    assert not outcome.accepted and "CERTIFICATE_VERIFY_FAILED" in outcome.error
    assert inbox.messages == []


def test_implicit_tls(app, certificate):
    inbox, port = Inbox(), free_port()
    controller = Controller(
        inbox, hostname="127.0.0.1", port=port, ssl_context=server_tls(certificate)
    )
    controller.start()
    try:
        app.config.update(
            SMTP_HOST="127.0.0.1",
            SMTP_PORT=port,
            SMTP_SSL=True,
            SMTP_CA_FILE=str(certificate[0]),
            SMTP_TIMEOUT=5,
        )
        assert send_message(message()).accepted
        assert len(inbox.messages) == 1
    finally:
        controller.stop()


def test_one_session_carries_many_messages_and_a_stale_one_is_replaced(app, smtp_with):
    inbox = smtp_with(timeout=1)  # the server drops a session idle for a second
    for _ in range(3):
        assert send_message(message()).accepted
    assert len(set(inbox.peers)) == 1
    time.sleep(1.5)  # the server hung up meanwhile: the kept session is stale
    outcome = send_message(message())
    assert outcome.accepted, outcome
    assert len(inbox.messages) == 4 and len(set(inbox.peers)) == 2
