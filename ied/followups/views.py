"""Follow-ups: the due/overdue list, the follow-up page and its actions. Every action answers
htmx with the parts it changed and a plain post with a 303 back to the page. (The lead page's
follow-up block and creating one from it are served by the leads blueprint.)"""

from collections.abc import Callable
from dataclasses import dataclass

import sqlalchemy as sa
from flask import Blueprint, abort, flash, redirect, request, url_for
from flask_login import current_user
from sqlalchemy.orm import joinedload, selectinload

from ied.auth.access import role_required
from ied.capped_counts import CappedCount
from ied.errors import DomainError
from ied.extensions import db
from ied.followups import services
from ied.followups.forms import ContactAttemptForm, FollowUpFilterForm, OutcomeForm, choices
from ied.followups.models import (
    CONTACT_OUTCOME_LABELS,
    FOLLOW_UP_STATUS_LABELS,
    FollowUp,
)
from ied.followups.queries import (
    DUE_STATE_LABELS,
    DUE_STATES,
    due_state_counts,
    due_state_of,
    follow_up_page,
    overdue_label,
)
from ied.htmx import is_htmx, page_or_blocks
from ied.installers.models import Installer
from ied.leads.search import SEARCH_HELP
from ied.row_links import RowLink
from ied.timestamps import utcnow

bp = Blueprint("followups", __name__)

LIST_PAGE = "followups/index.html"
FOLLOW_UP_PAGE = "followups/show.html"


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
        + db.session.execute(
            sa.select(Installer.id, Installer.company_name)
            .where(Installer.id.in_(sa.select(FollowUp.installer_id)))
            .order_by(Installer.company_name)
        ).all()
    )
    filters.validate()
    now = utcnow()
    others = {
        "status": filters.status.data,
        "issue": "open" if filters.issue.data else None,
        "installer": filters.installer.data,
        "q": filters.q.data,
    }
    due = filters.due.data
    page = follow_up_page(
        due, **others, after=filters.after.data, newest_first=due == "done", now=now
    )
    counts = due_state_counts(now, **others)
    return page_or_blocks(
        LIST_PAGE,
        ["results", "due_tabs"],
        filters=filters,
        page=page,
        now=now,
        counts=counts,
        all_count=CappedCount(sum(counts.values())),
        due_states=DUE_STATES,
        search_help=SEARCH_HELP,
        follow_up_link=RowLink("followups.show", "follow_up_id", "id"),
    )


# The follow-up page ------------------------------------------------------------------------


def follow_up_or_404(follow_up_id: int) -> FollowUp:
    follow_up = db.session.scalars(
        sa.select(FollowUp)
        .where(FollowUp.id == follow_up_id)
        .options(
            joinedload(FollowUp.lead),
            joinedload(FollowUp.installer),
            selectinload(FollowUp.contact_attempts),
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
    done: str | None = None,
):
    """The page, or for htmx the changed parts: the first one is the request's target and
    shows the refusal, or what was done, if there is one; the rest swap out of band."""
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
        outcome_form=_over_stored_outcome(
            outcome_form or OutcomeForm(formdata=None, obj=follow_up), follow_up
        ),
        actions=services.follow_up_actions(follow_up),
        refusal=refusal,
        refused_part=parts[0] if refusal else None,
        done=done,
        done_part=parts[0] if done else None,
    )


def _over_stored_outcome(form: OutcomeForm, follow_up: FollowUp) -> OutcomeForm:
    """The form as shown now is filled in over the outcome stored now (a refused save's
    entries too: saving them again replaces what the refusal showed)."""
    form.read_version.data = services.outcome_version(follow_up)
    return form


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
        # The part swapped says what was done: a save that changed nothing visible (an
        # outcome saved as it was) would otherwise look like a button doing nothing.
        return _follow_up_page(follow_up_or_404(follow_up_id), action.parts, done=action.done)
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
        lambda follow_up: services.record_outcome(
            follow_up, form.outcome(), current_user, form.read_version.data
        ),
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
