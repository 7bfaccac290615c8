"""Delivery jobs on RQ. Enqueued only after the commit that created their work.

Safety comes from the database, not from Redis: an attempt's audit row is committed before the
email goes out and holds a lease; a job does nothing unless its assignment is still `queued`
and no other attempt holds a live lease; the sweeper (`requeue_stalled`, every minute) finds
queued assignments that no live job will deliver and enqueues them again.
"""

import logging
import os
from datetime import UTC, datetime, timedelta

import redis
import sqlalchemy as sa
from flask import current_app
from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus
from sqlalchemy.orm import aliased, joinedload

from ied.delivery import services
from ied.delivery.email import installer_email
from ied.delivery.models import Assignment, DeliveryAudit
from ied.extensions import db
from ied.mail import send_message
from ied.queues import delivery_queue, redis_connection, retry_queue
from ied.row_locks import lock_one
from ied.structured_logs import logged_job
from ied.timestamps import utcnow

log = logging.getLogger(__name__)

ABANDONED = "abandoned: the worker stopped before reporting the result of this attempt"
# A scheduled retry this late is not going to be moved by RQ's scheduler: the sweeper takes it.
SCHEDULED_GRACE = timedelta(seconds=10)
_engine_pid: int | None = None


def lease_seconds() -> int:
    """How long an attempt may stay unreported before the sweeper treats it as abandoned."""
    return current_app.config.get("DELIVERY_LEASE_SECONDS") or (
        current_app.config["DELIVERY_JOB_TIMEOUT"] + 30
    )


def job_id_for(assignment_id: int, attempt_number: int) -> str:
    # One id per attempt: enqueuing the same attempt twice collapses onto one job.
    return f"delivery-{assignment_id}-{attempt_number}"


def _job_is_live(job_id: str) -> bool:
    """A job that will still run: in the queue, deferred, running within its lease, or
    scheduled and not overdue. RQ's scheduler moves a scheduled job only while some worker holds its
    lock; when none does (its holder was killed), the job sits there past its time."""
    try:
        job = Job.fetch(job_id, connection=redis_connection())
    except NoSuchJobError:
        return False
    status = job.get_status(refresh=False)
    if status == JobStatus.QUEUED:
        # A worker killed between taking the job off the queue and marking it started leaves
        # it `queued` in no queue at all: live only while it is really in the queue.
        return _origin(job).get_job_position(job_id) is not None
    if status == JobStatus.DEFERRED:
        return True
    if status == JobStatus.SCHEDULED:
        try:
            due = _origin(job).scheduled_job_registry.get_scheduled_time(job_id)
        except NoSuchJobError:
            return False
        return due > utcnow() - SCHEDULED_GRACE
    if status == JobStatus.STARTED and job.started_at is not None:
        started = (
            job.started_at.replace(tzinfo=UTC) if job.started_at.tzinfo is None else job.started_at
        )
        return started > utcnow() - timedelta(seconds=lease_seconds())
    return False


def _origin(job: Job):
    return retry_queue() if job.origin == retry_queue().name else delivery_queue()


def _enqueue(assignment_id: int, attempt_number: int, delay: timedelta | None = None) -> None:
    """A first attempt joins the delivery queue; a later one (a retry, a resend) the retry
    queue, which workers serve first."""
    queue = delivery_queue() if attempt_number == 1 else retry_queue()
    options = {
        "job_id": job_id_for(assignment_id, attempt_number),
        "job_timeout": current_app.config["DELIVERY_JOB_TIMEOUT"],
        "result_ttl": 24 * 3600,
        "failure_ttl": 7 * 24 * 3600,
        "description": f"deliver assignment {assignment_id} (attempt {attempt_number})",
    }
    if delay:
        queue.enqueue_in(delay, deliver_assignment, assignment_id, **options)
    else:
        queue.enqueue(deliver_assignment, assignment_id, **options)


def enqueue_deliveries(assignment_ids: list[int]) -> None:
    """Call after the commit. Redis being down is not the caller's failure: the sweeper
    catches up."""
    for assignment_id in assignment_ids:
        try:
            attempt_number = db.session.scalar(
                sa.select(services.next_attempt_number(assignment_id))
            )
            if not _job_is_live(job_id_for(assignment_id, attempt_number)):
                _enqueue(assignment_id, attempt_number)
        except (redis.RedisError, OSError) as error:
            log.warning(
                "Delivery of assignment %s not enqueued (%s); the sweeper will retry",
                assignment_id,
                error,
            )


def _use_own_database_connections() -> None:
    """RQ forks a work horse per job; it must not share the parent's pooled connections."""
    global _engine_pid
    if _engine_pid != os.getpid():
        db.engine.dispose(close=False)
        _engine_pid = os.getpid()


def _current_job_id() -> str | None:
    from rq import get_current_job

    job = get_current_job()
    return job.id if job else None


def _lock_for_delivery(assignment_id: int) -> Assignment:
    """Lock the assignment, then load in one query what a delivery step reads: its installer,
    lead, attempts and event. Two statements, not one: a SELECT ... FOR UPDATE that waited for
    the lock would see the joined attempts as they were before it waited."""
    lock_one(Assignment, assignment_id)
    return (
        db.session.scalars(
            sa.select(Assignment)
            .where(Assignment.id == assignment_id)
            .options(
                joinedload(Assignment.installer),
                joinedload(Assignment.lead),
                joinedload(Assignment.audits),
                joinedload(Assignment.delivery_event),
            )
            .execution_options(populate_existing=True)
        )
        .unique()
        .one()
    )


def _close_expired_attempts(assignment: Assignment, now: datetime) -> bool:
    """Audit attempts whose worker died mid-send as failed. True when one is still live."""
    live = False
    in_flight = [audit for audit in assignment.audits if audit.status == "sending"]
    for audit in in_flight:
        if audit.lease_expires_at and audit.lease_expires_at > now:
            live = True
            continue
        services.finish_attempt(audit, status="failed", error=ABANDONED)
        if assignment.status != "queued":
            continue
        if _retry_delay(_attempts_this_round(assignment)) is None:
            services.record_delivery_failure(assignment.id, f"Retries used up: {ABANDONED}")
        else:
            assignment.next_attempt_at = now
    return live


def _claim_attempt(assignment_id: int) -> DeliveryAudit | None:
    """Open an attempt under the assignment's row lock; None when there is nothing to do."""
    assignment = _lock_for_delivery(assignment_id)
    now = utcnow()
    if assignment.status != "queued":
        return None
    # Closing an abandoned attempt may use up the retries and fail the assignment.
    if _close_expired_attempts(assignment, now) or assignment.status != "queued":
        return None
    if assignment.next_attempt_at and assignment.next_attempt_at > now + timedelta(seconds=5):
        return None  # a retry is scheduled for later; this run came early
    return services.begin_attempt(
        assignment, job_id=_current_job_id(), lease_seconds=lease_seconds()
    )


@logged_job
def deliver_assignment(assignment_id: int) -> str:
    """Send one installer email and record the outcome. Safe to run twice or concurrently."""
    _use_own_database_connections()
    try:
        audit = _claim_attempt(assignment_id)
        if audit is None:
            db.session.rollback()
            return "skipped: nothing to deliver"
        message = installer_email(audit.assignment, audit.message_id)
        audit_id = audit.id
        db.session.commit()
    except sa.exc.IntegrityError:
        db.session.rollback()  # another worker opened this attempt number first
        return "skipped: another attempt is under way"
    # Nothing touches the session until the result is in: no transaction stays open while the
    # SMTP server takes its time.
    return record_attempt_outcome(assignment_id, audit_id, send_message(message))


def record_attempt_outcome(assignment_id: int, audit_id: int, outcome) -> str:
    assignment = _lock_for_delivery(assignment_id)
    (audit,) = [audit for audit in assignment.audits if audit.id == audit_id]
    if audit.status != "sending":
        db.session.rollback()
        return "skipped: the sweeper already closed this attempt"
    if outcome.accepted:
        services.finish_attempt(
            audit, status="sent", smtp_code=outcome.code, smtp_reply=outcome.reply
        )
        if assignment.status == "queued":
            services.record_delivery_success(assignment.id)
        db.session.commit()
        return "sent"

    services.finish_attempt(
        audit,
        status="failed",
        smtp_code=outcome.code,
        smtp_reply=outcome.reply,
        error=outcome.error,
    )
    delay = _retry_delay(_attempts_this_round(assignment))
    if assignment.status != "queued":
        db.session.commit()
        return "failed: assignment no longer queued"
    if outcome.permanent or delay is None:
        reason = outcome.summary if outcome.permanent else f"Retries used up: {outcome.summary}"
        services.record_delivery_failure(assignment.id, reason)
        db.session.commit()
        return "failed"
    schedule_retry(assignment, delay, outcome.summary)
    db.session.commit()
    try:
        _enqueue(assignment.id, audit.attempt_number + 1, delay)
    except (redis.RedisError, OSError) as error:
        log.warning(
            "Retry of assignment %s not scheduled (%s); the sweeper will", assignment.id, error
        )
    return f"retry in {delay}"


def _attempts_this_round(assignment: Assignment) -> int:
    """Attempts since the assignment was last queued: a resend starts a fresh set of retries."""
    return sum(1 for audit in assignment.audits if audit.started_at >= assignment.queued_at)


def _retry_delay(attempts: int) -> timedelta | None:
    """The wait before the next attempt, or None when the retries are used up."""
    minutes = current_app.config["DELIVERY_RETRY_MINUTES"]
    if attempts > len(minutes):
        return None
    return timedelta(minutes=minutes[attempts - 1])


def schedule_retry(assignment: Assignment, delay: timedelta, reason: str) -> None:
    assignment.next_attempt_at = utcnow() + delay
    assignment.last_error = f"{reason} (retrying)"
    db.session.flush()


def close_abandoned_attempts(now: datetime) -> None:
    """Attempts whose worker died mid-send: audit them as failed and make them due again."""
    assignment_ids = db.session.scalars(
        sa.select(DeliveryAudit.assignment_id)
        .where(DeliveryAudit.status == "sending", DeliveryAudit.lease_expires_at < now)
        .distinct()
    ).all()
    for assignment_id in assignment_ids:
        # The assignment's lock first, as a delivery job takes it, so the two never deadlock.
        _close_expired_attempts(_lock_for_delivery(assignment_id), now)
        db.session.commit()


@logged_job
def requeue_stalled() -> int:
    """Enqueue every due `queued` assignment that no live job will deliver. Returns how many."""
    _use_own_database_connections()
    now = utcnow()
    close_abandoned_attempts(now)
    in_flight = aliased(DeliveryAudit)
    due = db.session.execute(
        sa.select(
            Assignment.id,
            services.next_attempt_number(Assignment.id),
            sa.func.coalesce(Assignment.next_attempt_at, now),
        ).where(
            Assignment.status == "queued",
            sa.or_(Assignment.next_attempt_at.is_(None), Assignment.next_attempt_at <= now),
            ~sa.exists().where(  # an attempt under a live lease is still being delivered
                in_flight.assignment_id == Assignment.id, in_flight.status == "sending"
            ),
        )
    ).all()
    due.sort(key=lambda row: row[2])  # the longest overdue first
    enqueued = 0
    schedule = retry_queue().scheduled_job_registry
    for assignment_id, attempt_number, _ in due:
        job_id = job_id_for(assignment_id, attempt_number)
        if not _job_is_live(job_id):
            # An overdue scheduled retry leaves the schedule first, so RQ's scheduler, if it
            # wakes up, has nothing to move; should both still enqueue it, the second run
            # finds the attempt taken and does nothing.
            schedule.remove(job_id)
            _enqueue(assignment_id, attempt_number)
            enqueued += 1
    return enqueued
