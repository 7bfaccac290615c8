"""Sending email with stdlib smtplib, reporting what the server said in a form we can audit.

Each thread keeps its SMTP session open for the next message (a worker sends thousands of
emails over one connection, not one connection each). A session that went stale while idle
(the server hung up, or answers 421 to MAIL) is replaced once, before any of the message was
sent; any failed message closes the session, so the next one starts on a fresh connection.
"""

import os
import smtplib
import ssl
import threading
from dataclasses import dataclass
from email import policy
from email.errors import HeaderParseError
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import formatdate, getaddresses, parseaddr

from flask import current_app


@dataclass(frozen=True)
class SmtpOutcome:
    accepted: bool
    permanent: bool  # a failure that retrying will not fix (5xx, refused recipient)
    code: int | None = None
    reply: str | None = None
    error: str | None = None

    @property
    def summary(self) -> str:
        if self.code is not None:
            return f"{self.code} {self.reply or ''}".strip()
        return self.error or ""


class _StaleSession(Exception):
    """A kept session failed its first command: nothing of the message went out."""


_SESSION_SETTINGS = (
    "SMTP_HOST",
    "SMTP_PORT",
    "SMTP_SSL",
    "SMTP_STARTTLS",
    "SMTP_CA_FILE",
    "SMTP_TIMEOUT",
    "SMTP_USERNAME",
    "SMTP_PASSWORD",
)
_local = threading.local()


def _decode(reply: bytes | str | None) -> str | None:
    if reply is None:
        return None
    return reply.decode("utf-8", "replace") if isinstance(reply, bytes) else reply


def _connect(config) -> smtplib.SMTP:
    host, port, timeout = config["SMTP_HOST"], config["SMTP_PORT"], config["SMTP_TIMEOUT"]
    # The server's certificate is always verified, against SMTP_CA_FILE when one is given.
    tls = ssl.create_default_context(cafile=config["SMTP_CA_FILE"] or None)
    if config["SMTP_SSL"]:
        smtp = smtplib.SMTP_SSL(host, port, timeout=timeout, context=tls)
    else:
        smtp = smtplib.SMTP(host, port, timeout=timeout)
        if config["SMTP_STARTTLS"]:
            smtp.starttls(context=tls)
    if config["SMTP_USERNAME"]:
        smtp.login(config["SMTP_USERNAME"], config["SMTP_PASSWORD"])
    smtp.ehlo_or_helo_if_needed()
    return smtp


def _session(config) -> tuple[smtplib.SMTP, bool]:
    """This thread's open session for these settings, or a new one; True when it was kept."""
    key = (os.getpid(), *(config[name] for name in _SESSION_SETTINGS))
    kept = getattr(_local, "session", None)
    if kept is not None and kept[0] == key:
        return kept[1], True
    close_smtp_session()
    smtp = _connect(config)
    _local.session = (key, smtp)
    return smtp, False


def close_smtp_session(*, polite: bool = True) -> None:
    """End this thread's kept session, if there is one (with QUIT when `polite`)."""
    kept = getattr(_local, "session", None)
    _local.session = None
    if kept is None:
        return
    key, smtp = kept
    if key[0] != os.getpid():
        return  # a forked child's copy: the connection belongs to the parent
    if not polite:
        smtp.close()
        return
    try:
        smtp.quit()
    except (smtplib.SMTPException, OSError):
        smtp.close()


@dataclass(frozen=True)
class PreparedEmail:
    """A message in its wire form (headers encoded, CRLF line endings, Date set), for a sender
    that writes it itself: the email package's generator costs more than the SMTP exchange."""

    recipients: tuple[str, ...]
    data: bytes


def _transaction(smtp: smtplib.SMTP, kept: bool, config, recipients, data: bytes) -> SmtpOutcome:
    try:
        code, reply = smtp.mail(_envelope_sender(config["MAIL_FROM"]))
    except (smtplib.SMTPServerDisconnected, OSError):
        if kept:
            raise _StaleSession from None
        raise
    if code != 250:
        if kept and code == 421:
            raise _StaleSession
        return SmtpOutcome(False, code >= 500, code, _decode(reply))
    for recipient in recipients:
        code, reply = smtp.rcpt(recipient)
        if code not in (250, 251):
            return SmtpOutcome(False, code >= 500, code, _decode(reply))
    code, reply = smtp.data(data)
    if code != 250:
        return SmtpOutcome(False, code >= 500, code, _decode(reply))
    return SmtpOutcome(True, False, code, _decode(reply))


def is_one_plain_address(text: str) -> bool:
    """One `local@domain` address in ASCII, as SMTP without SMTPUTF8 carries it: no name, no
    list, no quoting (`a@x.test, b@y.test` is two people)."""
    if not text.isascii() or '"' in text:
        return False
    try:
        return Address(addr_spec=text).addr_spec == text
    except (ValueError, IndexError, HeaderParseError):  # what the parser raises on bad input
        return False


def send_message(message: EmailMessage) -> SmtpOutcome:
    """One SMTP transaction for one message; never raises for SMTP or network trouble."""
    config = current_app.config
    if "From" not in message:
        message["From"] = config["MAIL_FROM"]
    if "Date" not in message:
        message["Date"] = formatdate(localtime=False)
    recipients = tuple(address for _, address in getaddresses([message["To"]]))
    return send_prepared(PreparedEmail(recipients, message.as_bytes(policy=policy.SMTP)))


def send_prepared(email: PreparedEmail) -> SmtpOutcome:
    """send_message for a message already in its wire form."""
    config = current_app.config
    recipients, data = email.recipients, email.data
    outcome = None
    try:
        smtp, kept = _session(config)
        try:
            outcome = _transaction(smtp, kept, config, recipients, data)
        except _StaleSession:
            close_smtp_session(polite=False)
            smtp, kept = _session(config)
            outcome = _transaction(smtp, kept, config, recipients, data)
        return outcome
    except smtplib.SMTPResponseException as error:
        return SmtpOutcome(
            False, error.smtp_code >= 500, error.smtp_code, _decode(error.smtp_error)
        )
    except smtplib.SMTPServerDisconnected as error:
        return SmtpOutcome(False, False, error=f"connection dropped: {error}")
    except TimeoutError as error:
        return SmtpOutcome(False, False, error=f"timed out: {error or 'no answer'}")
    except ConnectionRefusedError as error:
        return SmtpOutcome(False, False, error=f"connection refused: {error}")
    except (smtplib.SMTPException, OSError) as error:
        return SmtpOutcome(False, False, error=f"{type(error).__name__}: {error}")
    except UnicodeEncodeError as error:
        # smtplib writes commands in ASCII: a non-ASCII address needs SMTPUTF8, not used here.
        addresses = ", ".join(recipients)
        return SmtpOutcome(False, True, error=f"not an ASCII address ({error.reason}): {addresses}")
    finally:
        # A refused message, a broken conversation or a job stopped in the middle of one
        # leaves the session in doubt: the next message starts on a fresh connection.
        if outcome is None:
            close_smtp_session(polite=False)
        elif not outcome.accepted:
            close_smtp_session()


def _envelope_sender(mail_from: str) -> str:
    return parseaddr(mail_from)[1] or mail_from
