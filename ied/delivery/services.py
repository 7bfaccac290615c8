"""Assignments and their delivery truth: the only code that writes Assignment.status."""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from flask import current_app

from ied.activity.services import record_activity
from ied.auth.models import User
from ied.business_time import billing_cycle
from ied.delivery.models import (
    ASSIGNMENT_TRANSITIONS,
    Assignment,
    DeliveryAudit,
    DeliveryEvent,
)
from ied.errors import DomainError, NotFound
from ied.extensions import db
from ied.finance.services import count_delivery_events
from ied.installers.models import Installer
from ied.installers.services import CycleUsage, cycle_usage, exclusion_reasons
from ied.leads.models import Lead
from ied.leads.services import change_status, clean_note
from ied.row_locks import load_locked, lock_many, lock_one
from ied.tallies.services import add_to_tallies, add_to_tally, tally_row
from ied.timestamps import UTCDateTime, utcnow

ASSIGNABLE_LEAD_STATUSES = ("ready_to_route", "assigned")
# A resend goes to the installer the lead was already routed to: area and product were
# settled then; what must still hold is that the installer is active and under its cap.
RESEND_BLOCKERS = ("paused", "cap reached")


class AssignmentRefused(DomainError):
    pass


class IllegalAssignmentTransition(DomainError):
    pass


def max_installers(lead: Lead) -> int:
    if lead.selected_path == "recommended_installer":
        return 1
    return current_app.config["COMPARE_QUOTES_MAX_INSTALLERS"]


def path_rule(lead: Lead) -> str:
    if lead.selected_path == "recommended_installer":
        return "Recommended installer: exactly one installer, by default the recommended one."
    return f"Compare quotes: one to {max_installers(lead)} different installers."


def is_live(assignment: Assignment) -> bool:
    """Counts against the path's limit: every assignment but a withdrawn one."""
    return assignment.status != "withdrawn"


def _lock_installers(installer_ids: Sequence[int]) -> list[Installer]:
    installers = load_locked(Installer, installer_ids)
    missing = set(installer_ids) - {installer.id for installer in installers}
    if missing:
        raise NotFound(f"No installer has the id {', '.join(map(str, sorted(missing)))}.")
    return installers


def _refuse_unless_free(installer: Installer, lead: Lead, reasons, usage: CycleUsage) -> None:
    if reasons:
        detail = (
            f" (used {usage.used} of {usage.cap} this cycle)" if "cap reached" in reasons else ""
        )
        raise AssignmentRefused(
            f"{installer.company_name} cannot take lead {lead.reference}: "
            f"{', '.join(reasons)}{detail}.",
            field="installer_ids",
        )


def assign_installers(
    lead: Lead, installer_ids: Sequence[int], actor: User | None, note: str | None = None
) -> list[Assignment]:
    """Create queued assignments; the first ones move the lead to `assigned` in this transaction.

    Row locks on the lead and on each installer make concurrent assignments queue up, so
    neither a path limit nor an installer's cycle cap can be overrun by two requests at once.
    """
    note = clean_note(note)
    lead = lock_one(Lead, lead.id)
    if lead.status not in ASSIGNABLE_LEAD_STATUSES:
        raise AssignmentRefused(
            f"Lead {lead.reference} is '{lead.status}': installers can be assigned only once it is "
            "'ready_to_route' (or to add installers to an 'assigned' lead)."
        )
    if not installer_ids:
        raise AssignmentRefused("Choose at least one installer.", field="installer_ids")
    if len(set(installer_ids)) != len(installer_ids):
        raise AssignmentRefused("Each installer can be chosen only once.", field="installer_ids")

    existing = {
        assignment.installer_id: assignment
        for assignment in db.session.scalars(
            sa.select(Assignment).where(Assignment.lead_id == lead.id)
        )
    }
    for installer_id in installer_ids:
        if installer_id in existing:
            assignment = existing[installer_id]
            raise AssignmentRefused(
                f"{assignment.installer.company_name} is already assigned to lead "
                f"{lead.reference} ({assignment.status}).",
                field="installer_ids",
            )
    live_count = sum(1 for assignment in existing.values() if is_live(assignment))
    limit = max_installers(lead)
    if live_count + len(installer_ids) > limit:
        raise AssignmentRefused(
            f"{path_rule(lead)} Lead {lead.reference} has {live_count} live and "
            f"{len(installer_ids)} chosen.",
            field="installer_ids",
        )

    installers = _lock_installers(installer_ids)
    usage = cycle_usage(installers)
    for installer in installers:
        _refuse_unless_free(
            installer,
            lead,
            exclusion_reasons(installer, lead, usage[installer.id]),
            usage[installer.id],
        )

    now = utcnow()
    assignments = [
        Assignment(
            lead=lead,
            installer=installer,
            status="queued",
            created_by_id=actor.id if actor else None,
            created_at=now,
            queued_at=now,
            next_attempt_at=now,
        )
        for installer in installers
    ]
    db.session.add_all(assignments)
    db.session.flush()
    for assignment in assignments:
        record_activity(
            "assignment.created",
            assignment,
            actor=actor,
            details={"installer": assignment.installer.company_name, "status": "queued"},
        )
    if lead.status == "ready_to_route":
        names = ", ".join(installer.company_name for installer in installers)
        note = " · ".join(filter(None, [f"Assigned to {names}", note]))
        change_status(lead, "assigned", actor, note=note)
    db.session.flush()
    refresh_delivery_attention(lead)
    return assignments


def queued_alert_delay() -> timedelta:
    """A delivery still queued this long after it was queued is stuck in retries or waiting for
    a dead worker: it needs action (DELIVERY_QUEUED_ALERT_MINUTES, one setting for the queue's
    Needs attention and the dashboard)."""
    return timedelta(minutes=current_app.config["DELIVERY_QUEUED_ALERT_MINUTES"])


def refresh_delivery_attention(lead: Lead) -> None:
    """Set lead.delivery_attention_at from its assignments, after any change to one of them.

    The caller holds the lead's row lock, taken after the assignment's and before any
    installer's (the order assigning uses), so two deliveries of one lead settling at once queue
    up here and the second reads the first one's outcome; the Needs-attention tab then reads
    the lead alone.
    """
    _refresh_delivery_attention([lead])


REFRESH_LEADS_AT_ONCE = 500


def refresh_every_delivery_attention() -> int:
    """Recompute the kept moment of every lead with a failed or queued delivery, or with a
    moment kept (after DELIVERY_QUEUED_ALERT_MINUTES changed); returns how many changed.
    Each group of leads is locked, then read with its deliveries, like a delivery change."""
    lead_ids = sorted(
        set(
            db.session.scalars(
                sa.select(Assignment.lead_id).where(Assignment.status.in_(("failed", "queued")))
            )
        )
        | set(db.session.scalars(sa.select(Lead.id).where(Lead.delivery_attention_at.is_not(None))))
    )
    changed = 0
    for start in range(0, len(lead_ids), REFRESH_LEADS_AT_ONCE):
        leads = db.session.scalars(
            sa.select(Lead)
            .where(Lead.id.in_(lead_ids[start : start + REFRESH_LEADS_AT_ONCE]))
            .order_by(Lead.id)
            .with_for_update()
        ).all()
        before = {lead.id: lead.delivery_attention_at for lead in leads}
        _refresh_delivery_attention(leads)
        changed += sum(lead.delivery_attention_at != before[lead.id] for lead in leads)
    return changed


def _refresh_delivery_attention(leads: Sequence[Lead]) -> None:
    """refresh_delivery_attention for several locked leads in one query."""
    queued_too_long = queued_alert_delay()
    moments: dict[int, list] = {lead.id: [] for lead in leads}
    for lead_id, status, queued_at in db.session.execute(
        sa.select(Assignment.lead_id, Assignment.status, Assignment.queued_at).where(
            Assignment.lead_id.in_(moments), Assignment.status.in_(("failed", "queued"))
        )
    ):
        moments[lead_id].append(queued_at if status == "failed" else queued_at + queued_too_long)
    changed = False
    for lead in leads:
        attention_at = min(moments[lead.id], default=None)
        if lead.delivery_attention_at != attention_at:
            lead.delivery_attention_at = attention_at
            changed = True
    if changed:
        db.session.flush()


def _refresh_attention_of(assignments: Sequence[Assignment]) -> None:
    """After the assignments changed: their leads, locked in id order after the assignments."""
    db.session.flush()
    _refresh_delivery_attention(lock_many(Lead, {a.lead_id for a in assignments}))


def move_assignment(
    assignment: Assignment, to_status: str, actor: User | None = None, reason: str | None = None
) -> Assignment:
    """The one writer of Assignment.status; records the change (by the system without actor)."""
    _move_assignments([(assignment, reason)], to_status, actor)
    db.session.flush()
    return assignment


def _move_assignments(
    moves: Sequence[tuple[Assignment, str | None]], to_status: str, actor: User | None = None
) -> None:
    """move_assignment for several (assignment, reason) at once; written with the caller's
    next flush, so a batch's rows go together."""
    for assignment, reason in moves:
        allowed = ASSIGNMENT_TRANSITIONS[assignment.status]
        if to_status not in allowed:
            allowed_text = ", ".join(f"'{status}'" for status in allowed) or "nothing"
            raise IllegalAssignmentTransition(
                f"The delivery to {assignment.installer.company_name} is '{assignment.status}' "
                f"and cannot become '{to_status}'; it may become {allowed_text}."
            )
        details = {
            "installer": assignment.installer.company_name,
            "from": assignment.status,
            "to": to_status,
            **({"reason": reason} if reason else {}),
        }
        assignment.status = to_status
        record_activity(
            "assignment.status_changed", assignment, actor=actor, details=details, flush=False
        )


def record_delivery_success(assignment_id: int) -> DeliveryEvent:
    """Mark the assignment sent and create its billable event, exactly once."""
    return record_deliveries_success([lock_one(Assignment, assignment_id)])[0]


def record_deliveries_success(assignments: Sequence[Assignment]) -> list[DeliveryEvent]:
    """record_delivery_success for several assignments the caller holds locked (in id order),
    in one go: their events, counters, activity and leads' attention with a few statements.
    The one place a successful delivery is recorded."""
    events = [a.delivery_event for a in assignments if a.status == "sent" and a.delivery_event]
    new = [a for a in assignments if not (a.status == "sent" and a.delivery_event is not None)]
    _move_assignments([(assignment, None) for assignment in new], "sent")
    now = utcnow()
    created = []
    for assignment in new:
        assignment.sent_at = now
        assignment.next_attempt_at = None
        assignment.last_error = None
        installer = assignment.installer
        created.append(
            DeliveryEvent(
                assignment=assignment,
                lead_id=assignment.lead_id,
                installer_id=installer.id,
                billing_cycle=billing_cycle(installer.billing_anchor_day, now).label,
                occurred_at=now,
                price=installer.price_per_lead,
            )
        )
    db.session.add_all(created)
    if new:
        _refresh_attention_of(new)  # flushes; the leads' locks come before the counters'
        count_delivery_events(created)
        add_to_tallies(
            [tally_row(now, installer_id=a.installer_id, deliveries_sent=1) for a in new]
        )
    return events + created


def record_delivery_failure(assignment_id: int, reason: str) -> Assignment:
    """Permanent failure, or retries used up: the operator may resend or withdraw."""
    assignment = lock_one(Assignment, assignment_id)
    record_deliveries_failure([(assignment, reason)])
    return assignment


def record_deliveries_failure(failures: Sequence[tuple[Assignment, str]]) -> None:
    """record_delivery_failure for several locked assignments, each with its reason. The one
    place a failed delivery is recorded."""
    if not failures:
        return
    _move_assignments(failures, "failed")
    for assignment, reason in failures:
        assignment.last_error = reason
        assignment.next_attempt_at = None
    _refresh_attention_of([assignment for assignment, _ in failures])


def retry_delay(assignment: Assignment) -> timedelta | None:
    """The wait before the next attempt after a transient failure (DELIVERY_RETRY_MINUTES),
    or None when this round's retries are used up: a resend starts a fresh round."""
    attempts = sum(1 for audit in assignment.audits if audit.started_at >= assignment.queued_at)
    minutes = current_app.config["DELIVERY_RETRY_MINUTES"]
    if attempts > len(minutes):
        return None
    return timedelta(minutes=minutes[attempts - 1])


def schedule_retry(assignment: Assignment, delay: timedelta, reason: str) -> None:
    """A transient failure: the locked, queued assignment is due again after `delay`."""
    assignment.next_attempt_at = utcnow() + delay
    assignment.last_error = f"{reason} (retrying)"


def retry_abandoned(assignment: Assignment, reason: str, now: datetime) -> None:
    """An attempt of the locked, queued assignment was abandoned (its worker stopped before
    reporting): due again at once, or failed when this round's retries are used up."""
    if retry_delay(assignment) is None:
        record_delivery_failure(assignment.id, f"Retries used up: {reason}")
    else:
        assignment.next_attempt_at = now


def _resend_reasons(installer: Installer, lead: Lead, usage: CycleUsage) -> list[str]:
    return [r for r in exclusion_reasons(installer, lead, usage) if r in RESEND_BLOCKERS]


def resend_blockers(assignments: Sequence[Assignment]) -> dict[int, list[str]]:
    """Why each of these that could go back in the queue may not now (resend refuses it): its
    installer paused or at its cap. By assignment id; one statement, none when none failed."""
    failed = [assignment for assignment in assignments if "queued" in assignment.allowed_next]
    if not failed:
        return {}
    usage = cycle_usage(list({assignment.installer for assignment in failed}))
    blockers = {
        assignment.id: _resend_reasons(
            assignment.installer, assignment.lead, usage[assignment.installer_id]
        )
        for assignment in failed
    }
    return {assignment_id: reasons for assignment_id, reasons in blockers.items() if reasons}


def resend(assignment: Assignment, actor: User | None) -> Assignment:
    """A failed delivery goes back in the queue, if its installer may still take a lead now."""
    assignment = lock_one(Assignment, assignment.id)
    if "queued" not in assignment.allowed_next:
        move_assignment(assignment, "queued")  # raises with the reason
    lead = lock_one(Lead, assignment.lead_id)  # before the installer: assigning locks so
    (installer,) = _lock_installers([assignment.installer_id])
    usage = cycle_usage([installer])[installer.id]  # counted before this one is queued again
    _refuse_unless_free(
        installer, assignment.lead, _resend_reasons(installer, assignment.lead, usage), usage
    )
    move_assignment(assignment, "queued", actor)
    now = utcnow()
    assignment.queued_at = now
    assignment.next_attempt_at = now
    db.session.flush()
    refresh_delivery_attention(lead)
    return assignment


def withdraw(assignment: Assignment, actor: User | None) -> Assignment:
    assignment = lock_one(Assignment, assignment.id)
    if assignment.status == "sent":
        raise IllegalAssignmentTransition(
            f"The delivery to {assignment.installer.company_name} was sent and cannot be "
            "withdrawn; void its delivery event to undo the billing."
        )
    in_flight = db.session.scalar(
        sa.select(sa.func.count())
        .select_from(DeliveryAudit)
        .where(
            DeliveryAudit.assignment_id == assignment.id,
            DeliveryAudit.status == "sending",
            DeliveryAudit.lease_expires_at > utcnow(),
        )
    )
    if in_flight:
        # Under the assignment's lock the job cannot finish meanwhile; once the SMTP server
        # answers, a sent email is billed (never withdrawn) and a failed one may be withdrawn.
        raise IllegalAssignmentTransition(
            f"The email to {assignment.installer.company_name} is being sent right now; "
            "wait a moment for the server's answer before withdrawing it."
        )
    move_assignment(assignment, "withdrawn", actor)
    assignment.withdrawn_at = utcnow()
    assignment.withdrawn_by_id = actor.id if actor else None
    assignment.next_attempt_at = None
    _refresh_attention_of([assignment])
    return assignment


def message_id_for(assignment: Assignment) -> str:
    """Stable across retries, so a receiving system can drop a repeated delivery."""
    domain = current_app.config["MAIL_FROM"].rsplit("@", 1)[-1].strip("> ") or "ied.localhost"
    return f"<assignment-{assignment.id}.lead-{assignment.lead_id}@{domain}>"


def next_attempt_number(assignment_id) -> sa.ScalarSelect:
    """The number the assignment's next attempt gets (1 for the first), as SQL: pass an id, or
    the Assignment.id column to have it for every row of a query."""
    return (
        sa.select(sa.func.coalesce(sa.func.max(DeliveryAudit.attempt_number), 0) + 1)
        .where(DeliveryAudit.assignment_id == assignment_id)
        .scalar_subquery()
    )


def begin_attempt(
    assignment: Assignment, *, job_id: str | None, lease_seconds: int
) -> DeliveryAudit:
    """Write the attempt's audit row before anything is sent, so no attempt goes unrecorded."""
    (opened,) = begin_attempts([assignment], job_id=job_id, lease_seconds=lease_seconds)
    return db.session.get(DeliveryAudit, opened.id)


@dataclass(frozen=True)
class Opened:
    """An attempt's audit row, written: what sending it needs."""

    id: int
    assignment: Assignment
    message_id: str


def begin_attempts(
    assignments: Sequence[Assignment], *, job_id: str | None, lease_seconds: int
) -> list[Opened]:
    """begin_attempt for several assignments the caller holds locked and loaded with their
    audits (read after the lock was taken): one INSERT for all the audit rows. An assignment in
    flight is next due when its lease runs out (its worker died, if it has not reported), so
    the queries for due deliveries pass over it (one UPDATE for all)."""
    now = utcnow()
    lease_end = now + timedelta(seconds=lease_seconds)
    rows = [
        {
            "assignment_id": assignment.id,
            "attempt_number": max((a.attempt_number for a in assignment.audits), default=0) + 1,
            "recipient": assignment.installer.delivery_email,
            "status": "sending",
            "message_id": message_id_for(assignment),
            "started_at": now,
            "lease_expires_at": lease_end,
            "job_id": job_id,
        }
        for assignment in assignments
    ]
    ids = db.session.scalars(
        sa.insert(DeliveryAudit).returning(DeliveryAudit.id, sort_by_parameter_order=True), rows
    ).all()
    db.session.execute(
        sa.update(Assignment)
        .where(Assignment.id.in_([assignment.id for assignment in assignments]))
        .values(next_attempt_at=lease_end)
        .execution_options(synchronize_session=False)
    )
    for assignment in assignments:
        db.session.expire(assignment, ["audits"])  # read again, with the new rows, when asked
    return [
        Opened(audit_id, assignment, row["message_id"])
        for audit_id, assignment, row in zip(ids, assignments, rows, strict=True)
    ]


@dataclass(frozen=True)
class AttemptResult:
    """How an attempt ended: `sent` or `failed`, with what the server said or the error."""

    status: str
    smtp_code: int | None = None
    smtp_reply: str | None = None
    error: str | None = None
    finished_at: datetime | None = None  # when the answer came (default: now)


def finish_attempt(audit: DeliveryAudit, **result) -> DeliveryAudit:
    """Close one attempt (see finish_attempts); `result` as AttemptResult's fields."""
    finish_attempts([(audit, AttemptResult(**result))])
    return audit


def finish_attempts(finished: Sequence[tuple[DeliveryAudit, AttemptResult]]) -> None:
    """Close attempts as sent or failed, with what the server said; each logged as an activity
    and counted in the day's tallies. The one place an attempt's outcome is recorded: a batch's
    in one go (its activity rows with the caller's next flush, its tallies in one statement)."""
    tallies = []
    for audit, result in finished:
        if audit.status != "sending":
            raise DomainError(
                f"Attempt {audit.attempt_number} is already finished ({audit.status})."
            )
        audit.status = result.status
        audit.smtp_code = result.smtp_code
        audit.smtp_reply = result.smtp_reply
        audit.error = result.error
        audit.finished_at = result.finished_at or utcnow()
        audit.lease_expires_at = None
        tallies.append(
            tally_row(audit.finished_at, shard_key=audit.id, **{f"attempts_{result.status}": 1})
        )
        outcome = {
            "smtp_code": result.smtp_code,
            "smtp_reply": result.smtp_reply,
            "error": result.error,
        }
        record_activity(
            "delivery.attempted",
            audit,
            lead_id=audit.assignment.lead_id,
            details={
                "attempt": audit.attempt_number,
                "recipient": audit.recipient,
                "status": result.status,
                **{key: value for key, value in outcome.items() if value is not None},
            },
            flush=False,
        )
    add_to_tallies(tallies)


def record_link_open(assignment: Assignment) -> None:
    """Count the installer opening its link, in one statement so simultaneous opens all count;
    the first open is the one the activity log keeps."""
    open_count = db.session.scalar(
        sa.update(Assignment)
        .where(Assignment.id == assignment.id)
        .values(
            open_count=Assignment.open_count + 1,
            first_opened_at=sa.func.coalesce(
                Assignment.first_opened_at, sa.literal(utcnow(), UTCDateTime)
            ),
        )
        .returning(Assignment.open_count)
    )
    if open_count == 1:
        # Opens count with the day the delivery was sent: "of the deliveries sent that day,
        # how many were opened".
        add_to_tally(assignment.sent_at, installer_id=assignment.installer_id, deliveries_opened=1)
        installer = assignment.installer.company_name
        record_activity(
            "assignment.opened",
            assignment,
            actor_label=f"installer {installer}",
            details={"installer": installer},
        )
