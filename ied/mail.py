"""Sending email with stdlib smtplib, reporting what the server said in a form we can audit."""

import smtplib
import ssl
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage
from email.utils import formatdate

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


def _decode(reply: bytes | str | None) -> str | None:
    if reply is None:
        return None
    return reply.decode("utf-8", "replace") if isinstance(reply, bytes) else reply


def _connect(config) -> smtplib.SMTP:
    host, port, timeout = config["SMTP_HOST"], config["SMTP_PORT"], config["SMTP_TIMEOUT"]
    # The server's certificate is always verified, against SMTP_CA_FILE when one is given.
    tls = ssl.create_default_context(cafile=config["SMTP_CA_FILE"] or None)
    if config["SMTP_SSL"]:
        return smtplib.SMTP_SSL(host, port, timeout=timeout, context=tls)
    smtp = smtplib.SMTP(host, port, timeout=timeout)
    if config["SMTP_STARTTLS"]:
        smtp.starttls(context=tls)
    return smtp


def send_message(message: EmailMessage) -> SmtpOutcome:
    """One SMTP conversation for one message; never raises for SMTP or network trouble."""
    config = current_app.config
    if "From" not in message:
        message["From"] = config["MAIL_FROM"]
    if "Date" not in message:
        message["Date"] = formatdate(localtime=False)
    recipients = [address.strip() for address in message["To"].split(",")]
    try:
        smtp = _connect(config)
        try:
            if config["SMTP_USERNAME"]:
                smtp.login(config["SMTP_USERNAME"], config["SMTP_PASSWORD"])
            smtp.ehlo_or_helo_if_needed()
            code, reply = smtp.mail(_envelope_sender(config["MAIL_FROM"]))
            if code != 250:
                return SmtpOutcome(False, code >= 500, code, _decode(reply))
            for recipient in recipients:
                code, reply = smtp.rcpt(recipient)
                if code not in (250, 251):
                    smtp.rset()
                    return SmtpOutcome(False, code >= 500, code, _decode(reply))
            code, reply = smtp.data(message.as_bytes(policy=policy.SMTP))
            if code != 250:
                return SmtpOutcome(False, code >= 500, code, _decode(reply))
            return SmtpOutcome(True, False, code, _decode(reply))
        finally:
            try:
                smtp.quit()
            except (smtplib.SMTPException, OSError):
                smtp.close()
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


def _envelope_sender(mail_from: str) -> str:
    from email.utils import parseaddr

    return parseaddr(mail_from)[1] or mail_from
