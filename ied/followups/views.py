"""Follow-ups: the managers' due/overdue list, the follow-up page and its actions, and the
lead page's follow-up panel. Every action answers htmx with the parts it changed and a plain
post with a 303 back to the page."""

from collections.abc import Callable
from dataclasses import dataclass

import sqlalchemy as sa
from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy.orm import joinedload, selectinload

from ied.auth.access import role_required
from ied.capped_counts import CappedCount
from ied.delivery.models import Assignment
from ied.errors import DomainError
from ied.extensions import db
from ied.followups import services
from ied.followups.forms import (
    ContactAttemptForm,
    CreateFollowUpForm,
    FollowUpFilterForm,
    OutcomeForm,
    choices,
)
from ied.followups.models import (
    CONTACT_OUTCOME_LABELS,
    FOLLOW_UP_STATUS_LABELS,
    ContactAttempt,
    FollowUp,
)
from ied.followups.queries import (
    DUE_STATE_LABELS,
    DUE_STATES,
    due_state_counts,
    due_state_of,
    follow_up_filter,
    follow_up_page,
    overdue_label,
)
from ied.formatting import local_date
from ied.htmx import is_htmx, page_or_blocks
from ied.installers.models import Installer
from ied.leads.models import Lead
from ied.timestamps import utcnow

bp = Blueprint("followups", __name__)

LIST_PAGE = "followups/index.html"
FOLLOW_UP_PAGE = "followups/show.html"
LEAD_PANEL = "followups/_lead_panel.html"
NEW_PAGE = "followups/new.html"
HTMX_VARY = {"Vary": "HX-Request"}


@bp.app_context_processor
def follow_up_labels():
    return {
        "follow_up_status_labels": FOLLOW_UP_STATUS_LABELS,
        "contact_outcome_labels": CONTACT_OUTCOME_LABELS,
        "due_state_labels": DUE_STATE_LABELS,
        "overdue_label": overdue_label,
    }


# The list ---------------------------------------------------------------------------------


@bp.get("/follow-ups")
@role_required("operator")
def index():
    filters = FollowUpFilterForm(formdata=request.args)
    filters.installer.choices = choices(
        [("", "Any installer")]
        + [
            (installer.id, installer.company_name)
            for installer in db.session.scalars(
                sa.select(Installer)
                .where(Installer.id.in_(sa.select(FollowUp.installer_id)))
                .order_by(Installer.company_name)
            )
        ]
    )
    filters.validate()
    now = utcnow()
    other_filters = follow_up_filter(
        status=filters.status.data,
        issue="open" if filters.issue.data else None,
        installer=filters.installer.data,
        q=filters.q.data,
        now=now,
    )
    due = filters.due.data
    conditions = other_filters + follow_up_filter(due=due, now=now)
    page = follow_up_page(conditions, after=filters.after.data, newest_first=due == "done", now=now)
    counts = due_state_counts(now, other_filters)
    return page_or_blocks(
        LIST_PAGE,
        ["results", "due_tabs"],
        filters=filters,
        page=page,
        now=now,
        counts=counts,
        all_count=CappedCount(sum(counts.values())),
        due_states=DUE_STATES,
    )


# The follow-up page ------------------------------------------------------------------------


def follow_up_or_404(follow_up_id: int) -> FollowUp:
    follow_up = db.session.scalars(
        sa.select(FollowUp)
        .where(FollowUp.id == follow_up_id)
        .options(
            joinedload(FollowUp.lead),
            joinedload(FollowUp.installer),
            selectinload(FollowUp.contact_attempts).joinedload(ContactAttempt.contacted_by),
        )
        .execution_options(populate_existing=True)
    ).first()
    if follow_up is None:
        abort(404)
    return follow_up


def _follow_up_page(
    follow_up: FollowUp,
    parts: list[str],
    status: int = 200,
    *,
    attempt_form: ContactAttemptForm | None = None,
    outcome_form: OutcomeForm | None = None,
    refusal: str | None = None,
):
    """The page, or for htmx the changed parts: the first one is the request's target and
    shows the refusal if there is one; the rest swap out of band."""
    now = utcnow()
    return page_or_blocks(
        FOLLOW_UP_PAGE,
        parts,
        status,
        follow_up=follow_up,
        lead=follow_up.lead,
        now=now,
        due_state=due_state_of(follow_up.id, now),
        attempt_form=attempt_form or ContactAttemptForm(formdata=None),
        outcome_form=outcome_form or OutcomeForm(formdata=None, obj=follow_up),
        why_not_closable=services.why_not_closable(follow_up),
        refusal=refusal,
        refused_part=parts[0] if refusal else None,
    )


@bp.get("/follow-ups/<int:follow_up_id>")
@role_required("operator")
def show(follow_up_id: int):
    return _follow_up_page(follow_up_or_404(follow_up_id), ["summary"])


@dataclass(frozen=True)
class FollowUpAction:
    """What an action changes on the page (its target first) and what it says when done."""

    parts: list[str]
    done: str
    form_name: str | None = None


def _act(
    follow_up_id: int, action: FollowUpAction, perform: Callable[[FollowUp], object], form=None
):
    follow_up = follow_up_or_404(follow_up_id)
    forms = {action.form_name: form} if action.form_name else {}
    if form is not None and not form.validate():
        return _follow_up_page(follow_up, action.parts, 422, **forms)
    try:
        perform(follow_up)
        db.session.commit()
    except DomainError as error:
        db.session.rollback()
        follow_up = follow_up_or_404(follow_up_id)
        if form is not None and error.field in form:
            form[error.field].errors.append(error.message)
            return _follow_up_page(follow_up, action.parts, 422, **forms)
        if is_htmx():
            return _follow_up_page(follow_up, action.parts, 409, refusal=error.message)
        flash(error.message, "error")
        return redirect(url_for(".show", follow_up_id=follow_up_id), 303)
    if is_htmx():
        return _follow_up_page(follow_up_or_404(follow_up_id), action.parts)
    flash(action.done, "success")
    return redirect(url_for(".show", follow_up_id=follow_up_id), 303)


START = FollowUpAction(["summary"], "Follow-up started.")
LOG_ATTEMPT = FollowUpAction(["attempts", "summary"], "Contact attempt logged.", "attempt_form")
RECORD_OUTCOME = FollowUpAction(["outcome", "summary"], "Outcome recorded.", "outcome_form")
CLOSE = FollowUpAction(["summary", "attempts", "outcome"], "Follow-up closed.")
RESOLVE_ISSUE = FollowUpAction(["summary", "outcome"], "Issue marked resolved.")


@bp.post("/follow-ups/<int:follow_up_id>/start")
@role_required("operator")
def start(follow_up_id: int):
    return _act(follow_up_id, START, lambda follow_up: services.start(follow_up, current_user))


@bp.post("/follow-ups/<int:follow_up_id>/attempts")
@role_required("operator")
def log_attempt(follow_up_id: int):
    form = ContactAttemptForm()
    return _act(
        follow_up_id,
        LOG_ATTEMPT,
        lambda follow_up: services.log_contact_attempt(
            follow_up, form.outcome.data, current_user, form.note.data
        ),
        form,
    )


@bp.post("/follow-ups/<int:follow_up_id>/outcome")
@role_required("operator")
def record_outcome(follow_up_id: int):
    form = OutcomeForm()
    return _act(
        follow_up_id,
        RECORD_OUTCOME,
        lambda follow_up: services.record_outcome(follow_up, form.outcome(), current_user),
        form,
    )


@bp.post("/follow-ups/<int:follow_up_id>/close")
@role_required("operator")
def close(follow_up_id: int):
    return _act(follow_up_id, CLOSE, lambda follow_up: services.close(follow_up, current_user))


@bp.post("/follow-ups/<int:follow_up_id>/resolve-issue")
@role_required("operator")
def resolve_issue(follow_up_id: int):
    return _act(
        follow_up_id,
        RESOLVE_ISSUE,
        lambda follow_up: services.mark_issue_resolved(follow_up, current_user),
    )


# Creating one from the lead page -----------------------------------------------------------


@dataclass(frozen=True)
class LeadFollowUpPanel:
    """What the lead page's follow-up panel shows: the follow-up, or why none can be made,
    or the form to make one."""

    follow_up: FollowUp | None
    reason: str | None
    form: CreateFollowUpForm | None
    sent: list[Assignment]


def _create_form(sent: list[Assignment], installer_id: int | None = None) -> CreateFollowUpForm:
    """A fresh form whose due date defaults from the chosen (else the first) sent delivery."""
    chosen = next((a for a in sent if a.installer_id == installer_id), sent[0])
    form = CreateFollowUpForm(
        formdata=None,
        installer_id=chosen.installer_id,
        due_date=services.default_due_date(chosen),
    )
    _offer_installers(form, sent)
    return form


def _offer_installers(form: CreateFollowUpForm, sent: list[Assignment]) -> None:
    form.installer_id.choices = choices(
        (
            assignment.installer_id,
            f"{assignment.installer.company_name} (delivered {local_date(assignment.sent_at)})",
        )
        for assignment in sent
    )


def lead_follow_up_panel(lead: Lead, form: CreateFollowUpForm | None = None) -> LeadFollowUpPanel:
    follow_up = db.session.scalars(
        sa.select(FollowUp)
        .where(FollowUp.lead_id == lead.id)
        .options(joinedload(FollowUp.installer))
    ).first()
    if follow_up is not None:
        return LeadFollowUpPanel(follow_up, None, None, [])
    reason = services.why_no_follow_up(lead)
    if reason:
        return LeadFollowUpPanel(None, reason, None, [])
    sent = services.sent_assignments(lead)
    return LeadFollowUpPanel(None, None, form or _create_form(sent), sent)


@bp.app_context_processor
def lead_panel_helpers():
    return {
        "lead_follow_up_panel": lead_follow_up_panel,
        "follow_up_default_days": current_app.config["FOLLOW_UP_DEFAULT_DAYS"],
        "lead_page_url": lead_page_url,
    }


def lead_page_url(lead: Lead) -> str | None:
    """The lead page, once its blueprint is registered (issue 3 builds it)."""
    if "leads.show" not in current_app.view_functions:
        return None
    return url_for("leads.show", reference=lead.reference)


def lead_or_404(reference: str) -> Lead:
    lead = db.session.scalars(sa.select(Lead).where(Lead.reference == reference)).first()
    if lead is None:
        abort(404)
    return lead


def _lead_panel(lead: Lead, status: int = 200, *, form=None, refusal=None, created=False):
    """The panel for htmx (the lead page swaps it), a page around the panel otherwise."""
    context = {
        "lead": lead,
        "create_form": form,
        "panel_refusal": refusal,
        "follow_up_created": created,
    }
    template = LEAD_PANEL if is_htmx() else NEW_PAGE
    return render_template(template, **context), status, HTMX_VARY


@bp.get("/leads/<reference>/follow-up/new")
@role_required("operator")
def new(reference: str):
    """The create form alone (no JavaScript), or re-rendered for htmx when the installer
    changes so the default due date follows that installer's delivery."""
    lead = lead_or_404(reference)
    panel = lead_follow_up_panel(lead)
    form = None
    if panel.form is not None:
        form = _create_form(panel.sent, request.args.get("installer_id", type=int))
    return _lead_panel(lead, form=form)


@bp.post("/leads/<reference>/follow-up")
@role_required("operator")
def create(reference: str):
    lead = lead_or_404(reference)
    reason = services.why_no_follow_up(lead)
    if reason:
        return _lead_panel(lead, 409, refusal=reason)
    form = CreateFollowUpForm()
    _offer_installers(form, services.sent_assignments(lead))
    if not form.validate():
        return _lead_panel(lead, 422, form=form)
    try:
        follow_up = services.create_follow_up(
            lead,
            form.installer_id.data,
            services.due_at_end_of(form.due_date.data),
            current_user,
            form.notes.data,
        )
        db.session.commit()
    except DomainError as error:
        db.session.rollback()
        if error.field in form:
            form[error.field].errors.append(error.message)
            return _lead_panel(lead, 422, form=form)
        return _lead_panel(lead, 409, refusal=error.message)
    if is_htmx():
        return _lead_panel(lead, created=True)
    flash(f"Follow-up created for {lead.reference}, due {form.due_date.data:%d %b %Y}.", "success")
    return redirect(url_for(".show", follow_up_id=follow_up.id), 303)
