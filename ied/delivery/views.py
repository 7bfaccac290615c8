"""Deliveries on the lead page (panel, resend, withdraw) and the installer's signed link."""

import sqlalchemy as sa
from flask import Blueprint, abort, flash, redirect, render_template, url_for
from flask_login import current_user
from sqlalchemy.orm import selectinload

from ied.auth.access import public, role_required
from ied.delivery import services
from ied.delivery.jobs import enqueue_deliveries
from ied.delivery.links import LinkExpired, LinkInvalid, LinkPending, LinkRevoked, resolve_link
from ied.delivery.models import Assignment
from ied.errors import DomainError
from ied.extensions import csrf, db
from ied.htmx import is_htmx
from ied.leads.assessment import readable_answers
from ied.leads.models import PATH_LABELS, PRODUCT_LABELS, Lead

bp = Blueprint("delivery", __name__)

PANEL = "delivery/_assignments_panel.html"
INSTALLER_LINK_HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Robots-Tag": "noindex",
}


def lead_with_deliveries(reference: str) -> Lead:
    lead = db.session.scalars(
        sa.select(Lead)
        .where(Lead.reference == reference)
        .options(
            selectinload(Lead.assignments).joinedload(Assignment.installer),
            selectinload(Lead.assignments).selectinload(Assignment.audits),
        )
    ).first()
    if lead is None:
        abort(404)
    return lead


def lead_page_url(lead: Lead) -> str:
    return url_for("leads.show", reference=lead.reference)


def _panel(lead: Lead, status: int = 200, error: str | None = None):
    """The panel alone, for htmx; it also refreshes the follow-up panel once deliveries settle."""
    body = render_template(PANEL, lead=lead, delivery_error=error, refresh_follow_up_panel=True)
    return body, status, {"Vary": "HX-Request"}


@bp.get("/leads/<reference>/deliveries")
@role_required("operator")
def panel(reference: str):
    lead = lead_with_deliveries(reference)
    if not is_htmx():
        return redirect(lead_page_url(lead))
    return _panel(lead)


def _act_on_assignment(assignment_id: int, action, done_message: str):
    assignment = db.session.get(Assignment, assignment_id) or abort(404)
    reference = assignment.lead.reference
    try:
        action(assignment, current_user)
        db.session.commit()
    except DomainError as error:
        db.session.rollback()
        if is_htmx():
            return _panel(lead_with_deliveries(reference), 409, error.message)
        flash(error.message, "error")
        return redirect(url_for("leads.show", reference=reference), 303)
    if assignment.status == "queued":
        enqueue_deliveries([assignment.id])
    if is_htmx():
        return _panel(lead_with_deliveries(reference))
    flash(done_message.format(installer=assignment.installer.company_name), "success")
    return redirect(url_for("leads.show", reference=reference), 303)


@bp.post("/assignments/<int:assignment_id>/resend")
@role_required("operator")
def resend(assignment_id: int):
    return _act_on_assignment(assignment_id, services.resend, "Resending to {installer}.")


@bp.post("/assignments/<int:assignment_id>/withdraw")
@role_required("operator")
def withdraw(assignment_id: int):
    return _act_on_assignment(
        assignment_id, services.withdraw, "Withdrawn from {installer}; its link no longer opens."
    )


@bp.get("/d/<token>")
@public
def installer_link(token: str):
    """What the email link lands on: the link's state and a button to show the lead.

    Mail scanners and link previews fetch links (GET, HEAD, prefetch) with no person behind
    them, so fetching this page records nothing: only pressing "Show the lead" counts.
    """
    assignment = _resolve_or_problem(token)
    if not isinstance(assignment, Assignment):
        return assignment
    body = render_template(
        "delivery/installer_link.html", assignment=assignment, **_lead_facts(assignment)
    )
    return body, 200, INSTALLER_LINK_HEADERS


@bp.post("/d/<token>")
@public
@csrf.exempt  # the signed token in the URL is the credential; the page sets no cookie
def open_installer_link(token: str):
    """The installer pressed "Show the lead": count the open and show the customer's details."""
    assignment = _resolve_or_problem(token)
    if not isinstance(assignment, Assignment):
        return assignment
    services.record_link_open(assignment)
    db.session.commit()
    return render_installer_lead(assignment)


def render_installer_lead(assignment: Assignment, status: int = 200):
    """The lead's details for the installer it was delivered to."""
    body = render_template(
        "delivery/installer_lead.html",
        assignment=assignment,
        answers=readable_answers(assignment.lead.assessment),
        **_lead_facts(assignment),
    )
    return body, status, INSTALLER_LINK_HEADERS


def _lead_facts(assignment: Assignment) -> dict:
    lead = assignment.lead
    return {
        "lead": lead,
        "installer": assignment.installer,
        "product": PRODUCT_LABELS.get(lead.product_interest, lead.product_interest),
        "path": PATH_LABELS.get(lead.selected_path, lead.selected_path),
    }


def _resolve_or_problem(token: str):
    """The link's assignment, or the page saying why it does not open."""
    try:
        return resolve_link(token)
    except LinkExpired:
        return _link_problem("expired", 410)
    except LinkRevoked:
        return _link_problem("revoked", 410)
    except LinkPending:
        return _link_problem("pending", 409)
    except LinkInvalid:
        return _link_problem("invalid", 404)


def _link_problem(kind: str, status: int):
    return render_template("delivery/link_problem.html", kind=kind), status, INSTALLER_LINK_HEADERS
