"""The operators' work queue, the phone-in form, and the lead page with every route under
`/leads/<reference>/`: transitions, the assign dialog, the deliveries block's refresh and the
follow-up block; and resending or withdrawing a delivery (`/assignments/<id>/...`), which
answer with the queue's row or the lead page's blocks. Delivery and follow-up rules stay in
their services."""

from datetime import datetime

import sqlalchemy as sa
from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user
from wtforms.fields.choices import SelectChoice

from ied.auth.access import role_required
from ied.delivery import jobs
from ied.delivery import services as delivery
from ied.delivery.models import Assignment
from ied.delivery.queries import lead_deliveries
from ied.delivery.services import AssignmentRefused, assign_installers
from ied.errors import DomainError
from ied.extensions import db
from ied.followups import services as followups
from ied.followups.forms import CreateFollowUpForm, offer_installers
from ied.form_errors import show_field_errors
from ied.htmx import is_htmx, page_or_block, render_block
from ied.input_limits import id_or_none
from ied.installers.models import Installer
from ied.leads import queries, services
from ied.leads.forms import NewLeadForm
from ied.leads.models import (
    NEXT_ACTION_LABELS,
    PATH_LABELS,
    PRODUCT_LABELS,
    STATUS_LABELS,
)
from ied.leads.page import (
    LEAD_PAGE,
    QUEUE,
    approval_warning,
    lead_or_404,
    lead_page_parts,
    on_from_tab,
    queue_row_parts,
    queue_rows_context,
)
from ied.leads.search import SEARCH_HELP
from ied.local_paths import local_path
from ied.timestamps import utcnow

bp = Blueprint("leads", __name__)

PHONE_IN_SOURCE = "phone"
TAB_LABELS = {**STATUS_LABELS, queries.ATTENTION: "Needs attention"}


@bp.app_context_processor
def lead_labels():
    return {
        "STATUS_LABELS": STATUS_LABELS,
        "PRODUCT_LABELS": PRODUCT_LABELS,
        "PATH_LABELS": PATH_LABELS,
        "TAB_LABELS": TAB_LABELS,
        "NEXT_ACTION_LABELS": NEXT_ACTION_LABELS,
        "NOTE_LIMIT": services.NOTE_LIMIT,
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


@bp.get("/leads")
@role_required("operator")
def queue():
    tab = _choice(request.args.get("tab"), queries.QUEUE_TABS)
    order = _choice(request.args.get("order"), queries.ORDERS)
    q = request.args.get("q", "").strip()[:100]
    page = queries.queue_page(tab, q, order, request.args.get("after"))
    # The tab and follow-up counts stand outside the results block, all an htmx request (the
    # search box as the operator types, the pager) swaps: it does not count them.
    counts, follow_ups = (None, None) if is_htmx() else queries.queue_counts()
    return page_or_block(
        QUEUE,
        "results",
        tab=tab,
        order=order,
        q=q,
        page=page,
        counts=counts,
        follow_ups=follow_ups,
        search_help=SEARCH_HELP,
        **queue_rows_context(page.leads, tab, order, q),
    )


# Parts of the lead page a lead transition changes: its head first (the request's target).
TRANSITION_PARTS = ["lead_head", "history", "activity"]


@bp.post("/leads/<reference>/advance")
@role_required("operator")
def advance(reference: str):
    """One-click transitions, with an optional note: from a queue row (the row swaps, the tab
    counts follow out of band), from the lead page (its head, history and activity swap), or a
    plain form post and a redirect."""
    lead = queries.lead_by_reference(reference, lock=True) or abort(404)
    on_lead_page = request.form.get("place") == "lead"
    tab = _choice(request.form.get("tab"), queries.QUEUE_TABS)
    back = local_path(request.form.get("next"), url_for("leads.show", reference=lead.reference))
    to_status = request.form.get("to_status", "")
    warning = None
    if to_status == lead.next_status and not request.form.get("confirmed"):
        warning = approval_warning(lead)
    if warning:  # nothing changes until the operator says "approve anyway"
        if is_htmx() and not on_lead_page:
            return queue_row_parts(lead.reference, tab, status=409, row_warning=warning)
        parts = ["lead_head"] if is_htmx() else ["lead_body"]
        return lead_page_parts(
            lead_or_404(reference), parts, 409, head_warning=warning, transition_note=_note()
        )
    try:
        services.advance(lead, to_status, current_user, _note())
        if is_htmx() and not on_lead_page:
            # Drawn in the transaction that made the change (it sees it), from what is loaded;
            # answered only once the commit succeeded.
            row = queue_row_parts(lead.reference, tab, lead=lead)
        db.session.commit()
    except DomainError as error:
        db.session.rollback()
        status = 422 if error.field else 409  # the note refused, or the transition
        if on_lead_page:  # the head says why, the note typed still in its input
            return lead_page_parts(
                lead_or_404(reference),
                ["lead_head"] if is_htmx() else ["lead_body"],
                status,
                head_error=error.message,
                transition_note=_note(),
            )
        if is_htmx():
            return queue_row_parts(lead.reference, tab, status=status, row_error=error.message)
        flash(error.message, "error")
        return redirect(back, 303)
    if is_htmx() and on_lead_page:
        return lead_page_parts(lead_or_404(reference), TRANSITION_PARTS)
    if is_htmx():
        return row
    flash(f"{lead.reference} is now {STATUS_LABELS[lead.status].lower()}.", "success")
    return redirect(back, 303)


def _note() -> str | None:
    """The note as typed: the service trims it and refuses, by field, one it cannot keep."""
    return request.form.get("note")


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


@bp.get("/leads/<reference>")
@role_required("operator")
def show(reference: str):
    """The lead page; `tab` says which queue tab the operator came from (the way back, and
    the next lead of it), `assign=1` opens the assign dialog."""
    lead = lead_or_404(reference)
    return lead_page_parts(
        lead,
        ["lead_body"],
        assign_open=request.args.get("assign") == "1",
        **on_from_tab(_tab_or_none(request.args.get("tab")), lead),
    )


def _tab_or_none(value: str | None) -> str | None:
    return value if value in queries.QUEUE_TABS else None


@bp.get("/leads/<reference>/assign")
@role_required("operator")
def assign_dialog(reference: str):
    """The assign dialog, open: for htmx just the dialog over the page that asked (the queue,
    or the lead page: `place=lead`), else the lead page with it open."""
    lead = lead_or_404(reference)
    return lead_page_parts(
        lead,
        ["assign_dialog"],
        assign_open=True,
        over_queue=is_htmx() and request.args.get("place") != "lead",
        back_tab=_tab_or_none(request.args.get("tab")),
    )


@bp.post("/leads/<reference>/assign")
@role_required("operator")
def assign(reference: str):
    lead = lead_or_404(reference)
    # Each value an id, else none of them: one past PostgreSQL's integer would reach the query.
    installer_ids = [id_or_none(value) for value in request.form.getlist("installer_ids")]
    installer_ids = None if None in installer_ids else installer_ids
    try:
        if installer_ids is None:
            raise AssignmentRefused("Choose installers from the list.", field="installer_ids")
        assignments = assign_installers(lead, installer_ids, current_user, note=_note())
        assignment_ids = [assignment.id for assignment in assignments]
        names = ", ".join(assignment.installer.company_name for assignment in assignments)
        db.session.commit()
    except DomainError as error:
        db.session.rollback()
        # The note refused is the form's input; a choice refused is the rules' (409, as a
        # cap just filled by someone else is).
        status = 422 if isinstance(error, services.NoteRefused) else 409
        if is_htmx():
            # The dialog stays open with the choices made; only its error line changes.
            body = render_block(LEAD_PAGE, "assign_error", assign_error=error.message)
            return body, status, {"HX-Retarget": "#assign-error", "HX-Reswap": "innerHTML"}
        return lead_page_parts(
            lead_or_404(reference),
            ["lead_body"],
            status,
            assign_open=True,
            chosen=installer_ids or (),
            assign_error=error.message,
            assign_note=_note(),
        )
    jobs.enqueue_deliveries(assignment_ids)
    notice = f"{lead.reference} assigned to {names}. Deliveries are queued."
    tab = _tab_or_none(request.form.get("tab"))
    lead = lead_or_404(reference)
    if is_htmx() and request.form.get("over_queue") and tab:
        # Over the queue: the dialog says it is done and offers the next lead; the row and
        # the tab counts follow out of band.
        dialog, status, headers = lead_page_parts(
            lead, ["assign_dialog"], assigned_notice=notice, **on_from_tab(tab, lead)
        )
        row, _, _ = queue_row_parts(lead.reference, tab, oob=True)
        return dialog + row, status, headers
    lead_url = url_for("leads.show", reference=lead.reference, tab=tab)
    if is_htmx():
        body, status, headers = lead_page_parts(
            lead, ["lead_body"], notice=notice, **on_from_tab(tab or "ready_to_route", lead)
        )
        return body, status, {**headers, "HX-Push-Url": lead_url}
    flash(notice, "success")
    return redirect(
        url_for("leads.show", reference=lead.reference, tab=tab or "ready_to_route"), 303
    )


@bp.get("/leads/<reference>/deliveries")
@role_required("operator")
def deliveries(reference: str):
    """The deliveries block polling itself while a delivery waits; when the number sent has
    changed since the last poll (`sent`), the follow-up block and the timeline follow out of
    band."""
    lead = lead_or_404(reference)
    if not is_htmx():
        return redirect(url_for("leads.show", reference=lead.reference))
    parts = ["deliveries"]
    if request.args.get("sent", type=int) != lead_deliveries(lead).sent:
        parts += ["follow_up", "activity"]
    return lead_page_parts(lead, parts)


# What resending or withdrawing changes on the lead page: the deliveries block, and the activity
# timeline out of band (the assign dialog is fetched when opened, with the live count then).
ASSIGNMENT_PARTS = ["deliveries", "activity"]


def _act_on_assignment(assignment_id: int, action, done_message: str):
    """Answered where it was asked: a queue row (the form names its `tab`) or the lead page."""
    assignment = db.session.get(Assignment, assignment_id) or abort(404)
    reference = assignment.lead.reference
    tab = _tab_or_none(request.form.get("tab"))
    back = url_for("leads.queue", tab=tab) if tab else url_for("leads.show", reference=reference)
    try:
        action(assignment, current_user)
        db.session.commit()
    except DomainError as error:
        db.session.rollback()
        if is_htmx():
            return _assignment_answer(reference, tab, 409, error.message)
        flash(error.message, "error")
        return redirect(back, 303)
    if assignment.status == "queued":
        jobs.enqueue_deliveries([assignment.id])
    if is_htmx():
        return _assignment_answer(reference, tab)
    flash(done_message.format(installer=assignment.installer.company_name), "success")
    return redirect(back, 303)


def _assignment_answer(
    reference: str, tab: str | None, status: int = 200, error: str | None = None
):
    if tab:
        return queue_row_parts(reference, tab, status=status, row_error=error)
    return lead_page_parts(lead_or_404(reference), ASSIGNMENT_PARTS, status, delivery_error=error)


@bp.post("/assignments/<int:assignment_id>/resend")
@role_required("operator")
def resend(assignment_id: int):
    return _act_on_assignment(assignment_id, delivery.resend, "Resending to {installer}.")


@bp.post("/assignments/<int:assignment_id>/withdraw")
@role_required("operator")
def withdraw(assignment_id: int):
    return _act_on_assignment(
        assignment_id, delivery.withdraw, "Withdrawn from {installer}; its link no longer opens."
    )


@bp.get("/leads/<reference>/follow-up/new")
@role_required("operator")
def new_follow_up(reference: str):
    """The follow-up block with its create form (the lead page without JavaScript), or, for
    htmx, re-drawn when the installer changes so the default due date follows its delivery."""
    lead = lead_or_404(reference)
    return lead_page_parts(
        lead, ["follow_up"], follow_up_installer=request.args.get("installer_id", type=int)
    )


@bp.post("/leads/<reference>/follow-up")
@role_required("operator")
def create_follow_up(reference: str):
    lead = lead_or_404(reference)
    reason = followups.why_no_follow_up(lead)
    if reason:
        return lead_page_parts(lead, ["follow_up"], 409, panel_refusal=reason)
    form = CreateFollowUpForm()
    offer_installers(form, followups.sent_assignments(lead))
    if not form.validate():
        return lead_page_parts(lead, ["follow_up"], 422, follow_up_form=form)
    try:
        follow_up = followups.create_follow_up(
            lead,
            form.installer_id.data,
            followups.due_at_end_of(form.due_date.data),
            current_user,
            form.notes.data,
        )
        db.session.commit()
    except DomainError as error:
        db.session.rollback()
        lead = lead_or_404(reference)
        if error.field in form:
            form[error.field].errors.append(error.message)
            return lead_page_parts(lead, ["follow_up"], 422, follow_up_form=form)
        return lead_page_parts(lead, ["follow_up"], 409, panel_refusal=error.message)
    if is_htmx():
        return lead_page_parts(lead_or_404(reference), ["follow_up"], follow_up_created=True)
    flash(f"Follow-up created for {lead.reference}, due {form.due_date.data:%d %b %Y}.", "success")
    return redirect(url_for("followups.show", follow_up_id=follow_up.id), 303)
