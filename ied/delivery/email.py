"""The installer email: plain text and HTML, with the signed link and a stable Message-ID.

It carries no personal data of the customer (name, phone, email, street address, full postcode,
assessment answers): those show only on the signed page, once the installer presses its button.
So "opened" counts every installer who saw the contact details, and withdrawing or revoking the
link withholds them.
"""

from email.message import EmailMessage

from flask import current_app, render_template

from ied.delivery.links import link_url
from ied.delivery.models import Assignment
from ied.leads.models import PATH_LABELS, PRODUCT_LABELS


def installer_email(assignment: Assignment, message_id: str) -> EmailMessage:
    lead = assignment.lead
    # Only what the email may say: no `lead` in the templates, so none of its personal fields
    # can slip into them.
    context = {
        "reference": lead.reference,
        "product": PRODUCT_LABELS.get(lead.product_interest, lead.product_interest),
        "path": PATH_LABELS.get(lead.selected_path, lead.selected_path),
        "compares_quotes": lead.selected_path == "compare_quotes",
        "area": lead.postcode_outward,
        "installer": assignment.installer,
        "link": link_url(assignment),
        "contact": current_app.config["IED_CONTACT"],
        "link_days": current_app.config["DELIVERY_LINK_MAX_AGE_DAYS"],
    }
    message = EmailMessage()
    message["Subject"] = f"New lead {lead.reference}: {context['product']} in {context['area']}"
    message["From"] = current_app.config["MAIL_FROM"]
    message["To"] = assignment.installer.delivery_email
    message["Message-ID"] = message_id
    message.set_content(render_template("delivery/email/installer_lead.txt", **context))
    message.add_alternative(
        render_template("delivery/email/installer_lead.html", **context), subtype="html"
    )
    return message
