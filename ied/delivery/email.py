"""The installer email: plain text and HTML, with the signed link and a stable Message-ID.

It carries no personal data of the customer (name, phone, email, street address, full postcode,
assessment answers): those show only on the signed page, once the installer presses its button.
So "opened" counts every installer who saw the contact details, and withdrawing or revoking the
link withholds them.
"""

import base64
import secrets
from datetime import timedelta
from email.header import Header
from email.utils import formataddr, formatdate, parseaddr

from flask import current_app, render_template

from ied.delivery.links import link_url, max_age_seconds
from ied.delivery.models import Assignment
from ied.leads.models import PATH_LABELS, PATH_NOTES_FOR_INSTALLERS, PRODUCT_LABELS
from ied.mail import PreparedEmail
from ied.timestamps import utcnow

# SMTP allows 998 characters a line; a longer one goes base64 like non-ASCII text does.
LONGEST_LINE = 998


def installer_email(assignment: Assignment, message_id: str) -> PreparedEmail:
    """The multipart/alternative message (text, then HTML), written straight in its wire form.
    The email package's EmailMessage parses every header it is given and its generator folds
    each one again: together several milliseconds an email, more than the SMTP exchange. What
    goes out is the same MIME: headers RFC 2047-encoded when not ASCII, bodies 7bit when ASCII
    (base64 UTF-8 otherwise)."""
    lead = assignment.lead
    # Only what the email may say: no `lead` in the templates, so none of its personal fields
    # can slip into them.
    context = {
        "reference": lead.reference,
        "product": PRODUCT_LABELS.get(lead.product_interest, lead.product_interest),
        "path": PATH_LABELS.get(lead.selected_path, lead.selected_path),
        "path_note": PATH_NOTES_FOR_INSTALLERS.get(lead.selected_path),
        "area": lead.postcode_outward,
        "installer": assignment.installer,
        "link": link_url(assignment),
        "contact": current_app.config["IED_CONTACT"],
        # The link is signed now, so it opens until this moment (links.max_age_seconds).
        "link_expires_at": utcnow() + timedelta(seconds=max_age_seconds()),
    }
    recipient = assignment.installer.delivery_email
    parts = [
        (subtype, render_template(f"delivery/email/{template}", **context))
        for template, subtype in (("installer_lead.txt", "plain"), ("installer_lead.html", "html"))
    ]
    boundary = _boundary(body for _, body in parts)
    headers = {
        "Subject": _header(f"New lead {lead.reference}: {context['product']} in {context['area']}"),
        "From": formataddr(parseaddr(current_app.config["MAIL_FROM"]), charset="utf-8"),
        "To": recipient,
        "Message-ID": message_id,
        "Date": formatdate(localtime=False),
        "MIME-Version": "1.0",
        "Content-Type": f'multipart/alternative; boundary="{boundary}"',
    }
    lines = [f"{name}: {value}" for name, value in headers.items()]
    lines.append("")
    for subtype, body in parts:
        lines += [f"--{boundary}", *_text_part(subtype, body)]
    lines += [f"--{boundary}--", ""]
    return PreparedEmail((recipient,), "\r\n".join(lines).encode("ascii"))


def _header(value: str) -> str:
    return value if value.isascii() else Header(value, "utf-8").encode(linesep="\r\n")


def _boundary(bodies) -> str:
    bodies = list(bodies)
    while True:
        boundary = f"=_{secrets.token_hex(16)}"
        if not any(boundary in body for body in bodies):
            return boundary


def _text_part(subtype: str, body: str) -> list[str]:
    """A part's headers, blank line and body lines."""
    lines = body.splitlines()
    if body.isascii() and all(len(line) <= LONGEST_LINE for line in lines):
        return [
            f'Content-Type: text/{subtype}; charset="us-ascii"',
            "Content-Transfer-Encoding: 7bit",
            "",
            *lines,
        ]
    encoded = base64.encodebytes(body.encode("utf-8")).decode("ascii").splitlines()
    return [
        f'Content-Type: text/{subtype}; charset="utf-8"',
        "Content-Transfer-Encoding: base64",
        "",
        *encoded,
    ]
