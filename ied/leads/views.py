"""The operators' work queue, the lead page with its assign dialog, and the phone-in form."""

from datetime import datetime
from urllib.parse import urlsplit

import sqlalchemy as sa
from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user
from wtforms.fields.choices import SelectChoice

from ied.auth.access import role_required
from ied.delivery.services import (
    ASSIGNABLE_LEAD_STATUSES,
    AssignmentRefused,
    assign_installers,
    max_installers,
    path_rule,
)
from ied.errors import DomainError
from ied.extensions import db
from ied.form_errors import show_field_errors
from ied.htmx import is_htmx, page_or_block, render_block
from ied.installers.models import Installer
from ied.installers.services import installer_choices
from ied.leads import queries, services
from ied.leads.assessment import readable_answers
from ied.leads.forms import NewLeadForm
from ied.leads.models import PATH_LABELS, PRODUCT_LABELS, STATUS_LABELS, Lead
from ied.timestamps import utcnow

bp = Blueprint("leads", __name__)

QUEUE = "leads/queue.html"
LEAD_PAGE = "leads/lead.html"
PHONE_IN_SOURCE = "phone"
TAB_LABELS = {**STATUS_LABELS, queries.ATTENTION: "Needs attention"}


@bp.app_context_processor
def lead_labels():
    return {
        "STATUS_LABELS": STATUS_LABELS,
        "PRODUCT_LABELS": PRODUCT_LABELS,
        "PATH_LABELS": PATH_LABELS,
        "TAB_LABELS": TAB_LABELS,
    }


@bp.app_template_filter("age")
def age(moment: datetime) -> str:
    """How long ago, in the largest whole unit: 4 min, 3 h, 12 d."""
    seconds = max((utcnow() - moment).total_seconds(), 0)
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{int(seconds // size)} {unit}"
    return "just now"


def _choice(value: str | None, allowed: tuple[str, ...]) -> str:
    return value if value in allowed else allowed[0]


def _local_path(target: str | None, fallback: str) -> str:
    """Only paths on this site, so a form field cannot send people elsewhere."""
    if not target or not target.startswith("/") or target.startswith("//"):
        return fallback
    parts = urlsplit(target)
    return fallback if parts.scheme or parts.netloc else target


@bp.get("/leads")
@role_required("operator")
def queue():
    tab = _choice(request.args.get("tab"), queries.QUEUE_TABS)
    order = _choice(request.args.get("order"), queries.ORDERS)
    q = request.args.get("q", "").strip()[:100]
    page = queries.queue_page(tab, q, order, request.args.get("after"))
    return page_or_block(
        QUEUE, "results", tab=tab, order=order, q=q, page=page, counts=queries.tab_counts()
    )


@bp.post("/leads/<reference>/advance")
@role_required("operator")
def advance(reference: str):
    """The queue's one-click transitions: an htmx row swap, or a form post and a redirect."""
    lead = queries.lead_for_row(reference) or abort(404)
    to_status = request.form.get("to_status", "")
    back = _local_path(request.form.get("next"), url_for("leads.show", reference=lead.reference))
    try:
        services.advance(lead, to_status, current_user)
        db.session.commit()
    except DomainError as error:
        db.session.rollback()
        if is_htmx():
            return _row_with_counts(lead.reference, error=error.message, status=409)
        flash(error.message, "error")
        return redirect(back, 303)
    if is_htmx():
        return _row_with_counts(lead.reference)
    flash(f"{lead.reference} is now {STATUS_LABELS[lead.status].lower()}.", "success")
    return redirect(back, 303)


def _row_with_counts(reference: str, error: str | None = None, status: int = 200):
    """The row, swapped in place, and the tab counts, swapped out of band."""
    lead = queries.lead_for_row(reference)
    tab = _choice(request.form.get("tab"), queries.QUEUE_TABS)
    context = {"lead": lead, "row_error": error, "tab": tab, "order": "newest", "q": ""}
    body = render_block(QUEUE, "queue_row", **context) + render_block(
        QUEUE, "tabs", counts=queries.tab_counts(), oob=True, **context
    )
    return body, status, {"Vary": "HX-Request"}


@bp.route("/leads/new", methods=["GET", "POST"])
@role_required("operator")
def new():
    form = NewLeadForm()
    installers = db.session.scalars(
        sa.select(Installer).where(Installer.active).order_by(Installer.company_name)
    )
    form.recommended_installer_id.choices = [SelectChoice("", "None")] + [
        SelectChoice(installer.id, installer.company_name) for installer in installers
    ]
    if form.validate_on_submit():
        try:
            lead = services.create_lead(
                form.lead_input(), source=PHONE_IN_SOURCE, actor=current_user
            )
        except services.LeadValidationError as error:
            db.session.rollback()
            show_field_errors(form, error.errors)
        else:
            db.session.commit()
            message = f"{lead.reference} created."
            if lead.possible_duplicate_of:
                message += f" It may duplicate {lead.possible_duplicate_of.reference}."
            flash(message, "warning" if lead.possible_duplicate_of else "success")
            return redirect(url_for("leads.show", reference=lead.reference), 303)
    status = 422 if request.method == "POST" else 200
    return render_template("leads/new.html", form=form), status


def _lead_page_context(lead: Lead, *, assign_open: bool = False, chosen=(), error=None) -> dict:
    assignable = lead.status in ASSIGNABLE_LEAD_STATUSES
    return {
        "lead": lead,
        "answers": readable_answers(lead.assessment),
        "assignable": assignable,
        "choices": installer_choices(lead) if assignable else [],
        "path_rule": path_rule(lead),
        "max_installers": max_installers(lead),
        "assign_open": assign_open,
        "chosen": set(chosen),
        "assign_error": error,
    }


@bp.get("/leads/<reference>")
@role_required("operator")
def show(reference: str):
    lead = queries.lead_for_page(reference) or abort(404)
    return render_template(
        LEAD_PAGE, **_lead_page_context(lead, assign_open=request.args.get("assign") == "1")
    )


@bp.post("/leads/<reference>/assign")
@role_required("operator")
def assign(reference: str):
    lead = queries.lead_for_page(reference) or abort(404)
    raw_ids = request.form.getlist("installer_ids")
    try:
        installer_ids = [int(value) for value in raw_ids]
    except ValueError:
        installer_ids = None
    try:
        if installer_ids is None:
            raise AssignmentRefused("Choose installers from the list.", field="installer_ids")
        assignments = assign_installers(lead, installer_ids, current_user)
        assignment_ids = [assignment.id for assignment in assignments]
        db.session.commit()
    except DomainError as error:
        db.session.rollback()
        if is_htmx():
            # The dialog stays open with the choices made; only its error line changes.
            body = render_block(LEAD_PAGE, "assign_error", assign_error=error.message)
            return body, 409, {"HX-Retarget": "#assign-error", "HX-Reswap": "innerHTML"}
        lead = queries.lead_for_page(reference)
        context = _lead_page_context(
            lead, assign_open=True, chosen=installer_ids or (), error=error.message
        )
        return render_template(LEAD_PAGE, **context), 409

    from ied.delivery.jobs import enqueue_deliveries

    enqueue_deliveries(assignment_ids)
    names = ", ".join(assignment.installer.company_name for assignment in assignments)
    notice = f"{lead.reference} assigned to {names}. Deliveries are queued."
    lead_url = url_for("leads.show", reference=lead.reference)
    if is_htmx():
        context = _lead_page_context(queries.lead_for_page(reference))
        body = render_block(LEAD_PAGE, "lead_body", notice=notice, **context)
        return body, 200, {"Vary": "HX-Request", "HX-Push-Url": lead_url}
    flash(notice, "success")
    return redirect(lead_url, 303)
