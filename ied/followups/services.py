"""The follow-up contract: the only writer of FollowUp.status. Never touches leads or billing."""

import hashlib
import json
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import sqlalchemy as sa
from flask import current_app
from sqlalchemy.orm import joinedload

from ied.activity.services import record_activity
from ied.auth.models import User
from ied.business_time import business_today, local_midnight
from ied.delivery.models import Assignment
from ied.errors import DomainError
from ied.extensions import db
from ied.followups.models import (
    CONTACT_OUTCOMES,
    FOLLOW_UP_TRANSITIONS,
    SATISFACTION_OUTCOMES,
    SEARCH_COLUMNS,
    ContactAttempt,
    FollowUp,
)
from ied.leads.models import Lead
from ied.leads.search import LEAD_SEARCH_COLUMNS
from ied.row_locks import lock_one
from ied.tallies.services import add_to_tally
from ied.timestamps import utcnow


class FollowUpRefused(DomainError):
    pass


def sent_assignments(lead: Lead) -> list[Assignment]:
    return list(
        db.session.scalars(
            sa.select(Assignment)
            .where(Assignment.lead_id == lead.id, Assignment.status == "sent")
            .options(joinedload(Assignment.installer))
            .order_by(Assignment.sent_at)
        )
    )


def due_at_end_of(day: date) -> datetime:
    """A follow-up dated for a day is due by the end of that business day, and overdue after."""
    return local_midnight(day + timedelta(days=1)) - timedelta(seconds=1)


def default_due_date(assignment: Assignment) -> date:
    """The default scheduling policy: a configurable number of days after the delivery, or
    today when those days have passed already (a default that made the new follow-up
    overdue the moment it was created would only look like neglect)."""
    days = current_app.config["FOLLOW_UP_DEFAULT_DAYS"]
    return max(business_today(assignment.sent_at + timedelta(days=days)), business_today())


def why_no_follow_up(lead: Lead) -> str | None:
    """The reason a follow-up cannot be created for this lead, or None when it can."""
    existing = db.session.scalars(sa.select(FollowUp.id).where(FollowUp.lead_id == lead.id)).first()
    return follow_up_refusal(lead, existing is not None, sent_assignments(lead))


def follow_up_refusal(lead: Lead, has_follow_up: bool, sent: list[Assignment]) -> str | None:
    """why_no_follow_up for what the caller already loaded: one follow-up per lead, and only
    after a sent delivery."""
    if has_follow_up:
        return f"Lead {lead.reference} already has its follow-up."
    if not sent:
        return f"Lead {lead.reference} has no sent delivery yet: follow-up starts after delivery."
    return None


def create_follow_up(
    lead: Lead,
    installer_id: int | None,
    due_at: datetime | None,
    actor: User | None,
    notes: str | None = None,
) -> FollowUp:
    lead = lock_one(Lead, lead.id)
    reason = why_no_follow_up(lead)
    if reason:
        raise FollowUpRefused(reason)
    if due_at is None:
        raise FollowUpRefused("A due date is required.", field="due_at")
    if due_at.tzinfo is None:
        raise FollowUpRefused("The due date needs a time zone.", field="due_at")
    sent_installer_ids = {assignment.installer_id for assignment in sent_assignments(lead)}
    if installer_id not in sent_installer_ids:
        raise FollowUpRefused(
            "Choose one of the installers this lead was delivered to.", field="installer_id"
        )
    follow_up = FollowUp(
        lead_id=lead.id,
        installer_id=installer_id,
        status="pending",
        due_at=due_at,
        notes=(notes or "").strip() or None,
        created_by_id=actor.id if actor else None,
        **searched_fields_of(lead),
    )
    db.session.add(follow_up)
    db.session.flush()
    record_activity(
        "follow_up.created",
        follow_up,
        actor=actor,
        details={"installer": follow_up.installer.company_name, "due_at": due_at.isoformat()},
    )
    return follow_up


def searched_fields_of(lead: Lead) -> dict[str, str | None]:
    """The lead's fields its follow-up keeps for the list's search (models.SEARCH_COLUMNS)."""
    return {
        column.key: getattr(lead, LEAD_SEARCH_COLUMNS[kind].key)
        for kind, column in SEARCH_COLUMNS.items()
    }


def _move(follow_up: FollowUp, to_status: str) -> None:
    allowed = FOLLOW_UP_TRANSITIONS[follow_up.status]
    if to_status not in allowed:
        allowed_text = " or ".join(f"'{status}'" for status in allowed) or "nothing (it is closed)"
        raise FollowUpRefused(
            f"The follow-up is '{follow_up.status}' and cannot become '{to_status}'; "
            f"it may become {allowed_text}."
        )
    follow_up.status = to_status


def start(follow_up: FollowUp, actor: User | None) -> FollowUp:
    follow_up = lock_one(FollowUp, follow_up.id)
    _move(follow_up, "in_progress")
    follow_up.started_at = utcnow()
    record_activity(
        "follow_up.started",
        follow_up,
        actor=actor,
        details={"from": "pending", "to": "in_progress"},
    )
    return follow_up


def log_contact_attempt(
    follow_up: FollowUp, outcome: str, actor: User, note: str | None = None
) -> ContactAttempt:
    """Count the attempt and keep it as a row; a pending follow-up starts with its first attempt."""
    follow_up = lock_one(FollowUp, follow_up.id)
    if outcome not in CONTACT_OUTCOMES:
        raise FollowUpRefused(
            f"Outcome must be one of: {', '.join(CONTACT_OUTCOMES)}.", field="outcome"
        )
    if not follow_up.is_open:
        raise FollowUpRefused(
            f"The follow-up is '{follow_up.status}': contact attempts are logged on open "
            "follow-ups only."
        )
    from_status = follow_up.status
    if follow_up.status == "pending":
        _move(follow_up, "in_progress")
        follow_up.started_at = utcnow()
    attempt = ContactAttempt(
        follow_up=follow_up,
        contacted_at=utcnow(),
        contacted_by_id=actor.id,
        contacted_by_email=actor.email,
        outcome=outcome,
        note=(note or "").strip() or None,
    )
    db.session.add(attempt)
    follow_up.contact_attempt_count += 1
    follow_up.last_contacted_at = attempt.contacted_at
    follow_up.last_contacted_by_email = actor.email
    follow_up.last_contact_outcome = outcome
    record_activity(
        "follow_up.contact_logged",
        follow_up,
        actor=actor,
        details={
            "outcome": outcome,
            "attempt": follow_up.contact_attempt_count,
            **(
                {"from": from_status, "to": follow_up.status}
                if from_status != follow_up.status
                else {}
            ),
        },
    )
    return attempt


@dataclass(frozen=True)
class Outcome:
    """What the customer said: satisfaction, an issue and whether it is resolved, referral."""

    satisfaction_outcome: str | None = None
    has_issue: bool = False
    issue_summary: str | None = None
    issue_resolved: bool = False
    referral_opportunity: bool = False
    notes: str | None = None


def outcome_version(follow_up: FollowUp) -> str:
    """A fingerprint of the outcome as stored, which the outcome form carries: a save made
    from a page that showed another outcome is refused (record_outcome's `read_version`)."""
    fields = (
        follow_up.satisfaction_outcome,
        follow_up.has_issue,
        follow_up.issue_summary,
        follow_up.issue_resolved,
        follow_up.referral_opportunity,
        follow_up.notes,
    )
    return hashlib.sha256(json.dumps(fields).encode()).hexdigest()[:16]


def record_outcome(
    follow_up: FollowUp, outcome: Outcome, actor: User | None, read_version: str | None = None
) -> FollowUp:
    """`read_version`: the outcome_version the form was filled in over; when someone else has
    saved another outcome since, nothing is saved (theirs would be lost without anyone seeing
    it). Without one (a job, a script), the outcome is saved as given."""
    follow_up = lock_one(FollowUp, follow_up.id)
    if not follow_up.is_open:
        raise FollowUpRefused(
            f"The follow-up is '{follow_up.status}': its outcome can no longer change "
            "(an open issue can still be marked resolved)."
        )
    if read_version and read_version != outcome_version(follow_up):
        raise FollowUpRefused(
            "Someone else saved this outcome after you opened the page (satisfaction now: "
            f"{follow_up.satisfaction_outcome or 'not recorded'}). Nothing was saved; your "
            "entries are kept here: save again to put them in its place.",
            field="read_version",
        )
    satisfaction = outcome.satisfaction_outcome
    if satisfaction is not None and satisfaction not in SATISFACTION_OUTCOMES:
        raise FollowUpRefused(
            f"Satisfaction must be one of: {', '.join(SATISFACTION_OUTCOMES)}.",
            field="satisfaction_outcome",
        )
    issue_summary = (outcome.issue_summary or "").strip() or None
    if outcome.has_issue and not issue_summary:
        raise FollowUpRefused("Describe the issue in a few words.", field="issue_summary")
    stored = outcome_version(follow_up)
    follow_up.satisfaction_outcome = satisfaction
    follow_up.has_issue = outcome.has_issue
    follow_up.issue_summary = issue_summary if outcome.has_issue else None
    follow_up.issue_resolved = outcome.issue_resolved if outcome.has_issue else False
    follow_up.referral_opportunity = outcome.referral_opportunity
    follow_up.notes = (outcome.notes or "").strip() or None
    if outcome_version(follow_up) == stored:
        return follow_up  # saved as it was: a change that changes nothing writes nothing
    record_activity(
        "follow_up.outcome_recorded",
        follow_up,
        actor=actor,
        details={
            "satisfaction": satisfaction,
            "has_issue": follow_up.has_issue,
            "issue_resolved": follow_up.issue_resolved,
            "referral_opportunity": follow_up.referral_opportunity,
        },
    )
    return follow_up


def why_not_closable(follow_up: FollowUp) -> str | None:
    if not follow_up.is_open:
        return f"The follow-up is already '{follow_up.status}'."
    reached = db.session.scalars(
        sa.select(ContactAttempt.id).where(
            ContactAttempt.follow_up_id == follow_up.id,
            ContactAttempt.outcome == "reached_customer",
        )
    ).first()
    if reached is None:
        return "Log a contact attempt that reached the customer before closing."
    if follow_up.satisfaction_outcome is None:
        return "Record the customer's satisfaction before closing."
    return None


def closes_as(follow_up: FollowUp) -> str:
    """The status closing gives: closed_with_issue while an issue is still open."""
    return "closed_with_issue" if follow_up.has_open_issue else "completed"


@dataclass(frozen=True)
class FollowUpActions:
    """What the follow-up page offers now: starting it (while pending), closing it (while
    open: `why_not_closable` says what is missing yet, `closes_as` the status it would get),
    and marking an issue resolved once closing has left it open (an open follow-up's outcome
    form says that itself)."""

    start: bool
    close: bool
    why_not_closable: str | None
    closes_as: str
    resolve_issue: bool


def follow_up_actions(follow_up: FollowUp) -> FollowUpActions:
    return FollowUpActions(
        start="in_progress" in FOLLOW_UP_TRANSITIONS[follow_up.status],
        close=follow_up.is_open,
        why_not_closable=why_not_closable(follow_up),
        closes_as=closes_as(follow_up),
        resolve_issue=not follow_up.is_open and follow_up.has_open_issue,
    )


def close(follow_up: FollowUp, actor: User | None) -> FollowUp:
    """Completed, or closed_with_issue while an issue is still open."""
    follow_up = lock_one(FollowUp, follow_up.id)
    reason = why_not_closable(follow_up)
    if reason:
        raise FollowUpRefused(reason)
    from_status = follow_up.status
    _move(follow_up, closes_as(follow_up))
    follow_up.completed_at = utcnow()
    add_to_tally(
        follow_up.completed_at,
        installer_id=follow_up.installer_id,
        follow_ups_closed=1,
        **{f"follow_ups_{follow_up.satisfaction_outcome}": 1},
        follow_ups_with_issue=int(follow_up.has_issue),
    )
    record_activity(
        "follow_up.closed",
        follow_up,
        actor=actor,
        details={"from": from_status, "to": follow_up.status},
    )
    return follow_up


def mark_issue_resolved(follow_up: FollowUp, actor: User | None) -> FollowUp:
    """Resolving a closed follow-up's issue drops it from the open-issue view; status stays."""
    follow_up = lock_one(FollowUp, follow_up.id)
    if not follow_up.has_open_issue:
        raise FollowUpRefused("This follow-up has no open issue to resolve.")
    follow_up.issue_resolved = True
    record_activity("follow_up.issue_resolved", follow_up, actor=actor)
    return follow_up
