"""Delivery jobs on RQ. Enqueued only after the commit that created their work.

Safety comes from the database, not from Redis: an attempt's audit row is committed before the
email goes out and holds a lease; a job does nothing unless its assignment is still `queued`
and no other attempt holds a live lease; the sweeper (`requeue_stalled`, every 15 s) finds
queued assignments that no live job will deliver and enqueues them again.

Throughput comes from batches. A first attempt has no job of its own: `deliver_due_assignments`
takes up to DELIVERY_BATCH_SIZE due assignments at once (SKIP LOCKED, so workers take different
ones), commits all their audit rows in one transaction before the first email goes out, sends
them one after another over the worker's kept SMTP session, and records every outcome (audit,
event, counters, activity, the leads' attention) in one transaction. A later attempt (a retry
at its time, a resend) keeps one job per attempt, `deliver_assignment`, on the retry queue, and
goes through the same steps as a batch of one.
"""

import logging
import os
import time
from collections import Counter
from dataclasses import dataclass
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
from ied.mail import PreparedEmail, SmtpOutcome, close_smtp_session, send_prepared
from ied.queues import delivery_queue, redis_connection, retry_queue
from ied.row_locks import load_locked, lock_next, lock_one
from ied.structured_logs import logged_job
from ied.timestamps import utcnow

log = logging.getLogger(__name__)

ABANDONED = "abandoned: the worker stopped before reporting the result of this attempt"
NOT_SENT = "not sent: the job ran out of time before this email's turn"
# A retry's job this much early still goes ahead.
EARLY = timedelta(seconds=5)
# Batches one job delivers at most before it leaves the rest to a successor.
BATCHES_PER_JOB = 5
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


def _job_options() -> dict:
    return {
        "job_timeout": current_app.config["DELIVERY_JOB_TIMEOUT"],
        "result_ttl": 24 * 3600,
        "failure_ttl": 7 * 24 * 3600,
    }


def _enqueue(assignment_id: int, attempt_number: int, delay: timedelta | None = None) -> None:
    """A later attempt (a retry, a resend) joins the retry queue, which workers serve first:
    one job per attempt, at its time."""
    options = {
        "job_id": job_id_for(assignment_id, attempt_number),
        "description": f"deliver assignment {assignment_id} (attempt {attempt_number})",
        **_job_options(),
    }
    if delay:
        retry_queue().enqueue_in(delay, deliver_assignment, assignment_id, **options)
    else:
        retry_queue().enqueue(deliver_assignment, assignment_id, **options)


def batch_size() -> int:
    return current_app.config["DELIVERY_BATCH_SIZE"]


def ensure_batch_jobs(due: int) -> int:
    """Enough batch jobs waiting in the delivery queue for `due` first attempts: one per
    batch, up to DELIVERY_PARALLEL_BATCHES (each goes on with the next batch while there is
    work, so a few keep all workers busy). Returns how many it enqueued."""
    queue = delivery_queue()
    wanted = min(current_app.config["DELIVERY_PARALLEL_BATCHES"], -(-due // batch_size()))
    missing = wanted - queue.count
    for _ in range(missing):
        queue.enqueue(
            deliver_due_assignments, description="deliver due assignments", **_job_options()
        )
    return max(0, missing)


def enqueue_deliveries(assignment_ids: list[int]) -> None:
    """Call after the commit. A first attempt is taken by a batch job; a later one (a resend)
    gets its own job on the retry queue. Redis being down is not the caller's failure: the
    sweeper catches up."""
    try:
        numbers = db.session.execute(
            sa.select(Assignment.id, services.next_attempt_number(Assignment.id)).where(
                Assignment.id.in_(assignment_ids)
            )
        ).all()
        for assignment_id, attempt_number in numbers:
            if attempt_number > 1 and not _job_is_live(job_id_for(assignment_id, attempt_number)):
                _enqueue(assignment_id, attempt_number)
        first = sum(1 for _, attempt_number in numbers if attempt_number == 1)
        if first:
            ensure_batch_jobs(first)
    except (redis.RedisError, OSError) as error:
        log.warning(
            "Delivery of assignments %s not enqueued (%s); the sweeper will retry",
            assignment_ids,
            error,
        )


def _use_own_database_connections() -> None:
    """A forked process (RQ's work horse, the periodic child) must not share the parent's
    pooled connections."""
    global _engine_pid
    if _engine_pid != os.getpid():
        db.engine.dispose(close=False)
        _engine_pid = os.getpid()


def _current_job_id() -> str | None:
    from rq import get_current_job

    job = get_current_job()
    return job.id if job else None


def _load_for_delivery(assignment_ids: list[int], *, with_lead: bool = False) -> list[Assignment]:
    """Load in one query what a delivery step reads of assignments the caller holds locked:
    installer, attempts, event, and the lead when an email is to be written. A query of its own
    after the lock: a SELECT ... FOR UPDATE that waited for the lock would see the joined
    attempts as they were before it waited."""
    loads = [
        joinedload(Assignment.installer),
        joinedload(Assignment.audits),
        joinedload(Assignment.delivery_event),
    ]
    return list(
        db.session.scalars(
            sa.select(Assignment)
            .where(Assignment.id.in_(assignment_ids))
            .order_by(Assignment.id)
            .options(*loads, *([joinedload(Assignment.lead)] if with_lead else []))
            .execution_options(populate_existing=True)
        ).unique()
    )


def _lock_for_delivery(assignment_ids: list[int]) -> list[Assignment]:
    """The assignments locked (in id order, so two lockers never deadlock) and loaded."""
    load_locked(Assignment, assignment_ids)
    return _load_for_delivery(assignment_ids)


def _close_expired_attempts(assignment: Assignment, now: datetime) -> bool:
    """Audit attempts whose worker died mid-send as failed. True when one is still live."""
    live = False
    in_flight = [audit for audit in assignment.audits if audit.status == "sending"]
    for audit in in_flight:
        if audit.lease_expires_at and audit.lease_expires_at > now:
            live = True
            continue
        services.finish_attempt(audit, status="failed", error=ABANDONED)
        if assignment.status == "queued":
            services.retry_abandoned(assignment, ABANDONED, now)
    return live


@dataclass(frozen=True)
class OpenedAttempt:
    audit_id: int
    assignment_id: int
    message: PreparedEmail | None
    unwritable: str | None = None  # why the email could not be written (message is None)


def _opened(audit_id: int, assignment: Assignment, message_id: str) -> OpenedAttempt:
    """The attempt with its email, or with why the email cannot be written: an address SMTP
    cannot carry without SMTPUTF8 (a non-ASCII one) fails this delivery alone, at once, never
    the batch around it."""
    try:
        return OpenedAttempt(audit_id, assignment.id, installer_email(assignment, message_id))
    except UnicodeEncodeError as error:
        recipient = assignment.installer.delivery_email
        return OpenedAttempt(
            audit_id,
            assignment.id,
            None,
            f"the email to {recipient} cannot be written ({error.reason}): "
            "give the installer an address in plain ASCII",
        )


def _open_attempts(assignment_ids: list[int]) -> list[OpenedAttempt]:
    """Open an attempt for each of the locked assignments that still has one to make, and
    commit their audit rows before anything is sent. Empty when there is nothing to do."""
    now = utcnow()
    ready = []
    for assignment in _load_for_delivery(assignment_ids, with_lead=True):
        if assignment.status != "queued":
            continue
        # Closing an abandoned attempt may use up the retries and fail the assignment.
        if _close_expired_attempts(assignment, now) or assignment.status != "queued":
            continue
        if assignment.next_attempt_at and assignment.next_attempt_at > now + EARLY:
            continue  # a retry is scheduled for later; this run came early
        ready.append(assignment)
    if not ready:
        db.session.commit()  # what closing abandoned attempts wrote, if anything
        return []
    opened = [
        _opened(attempt.id, attempt.assignment, attempt.message_id)
        for attempt in services.begin_attempts(
            ready, job_id=_current_job_id(), lease_seconds=lease_seconds()
        )
    ]
    db.session.commit()
    return opened


def _send_deadline(job_began: float, opened_at: float) -> float:
    """The last moment (monotonic) to start another email of a batch opened at `opened_at`:
    one SMTP timeout before the job's timeout or the attempts' lease runs out (past its lease
    an attempt counts as abandoned and is made again)."""
    config = current_app.config
    end = min(job_began + config["DELIVERY_JOB_TIMEOUT"], opened_at + lease_seconds())
    return end - config["SMTP_TIMEOUT"] - 1


def _deliver(opened: list[OpenedAttempt], deadline: float) -> list[str]:
    """Send the opened attempts one after another over this worker's SMTP session, then record
    every outcome in one transaction. Nothing touches the session while the emails go out: no
    transaction stays open while the SMTP server takes its time. The first email always goes;
    one whose turn comes after `deadline` is not sent, and its attempt is closed as such."""
    if not opened:
        return []
    results = []
    try:
        for number, attempt in enumerate(opened):
            on_time = number == 0 or time.monotonic() < deadline
            if attempt.message is None:
                outcome = SmtpOutcome(False, True, error=attempt.unwritable)
            else:
                outcome = send_prepared(attempt.message) if on_time else None
            results.append((attempt, outcome, utcnow()))
    except BaseException:
        # Interrupted mid-batch (the job's timeout, a signal, a bug): the emails the server
        # already accepted are recorded now, or the sweeper would take their attempts for
        # abandoned and send them again; the one cut off and the rest are closed as not sent.
        close_smtp_session(polite=False)  # cut off mid-conversation: not reusable
        done = {attempt.audit_id for attempt, _, _ in results}
        results += [(attempt, None, utcnow()) for attempt in opened if attempt.audit_id not in done]
        db.session.rollback()
        record_attempt_outcomes(results)
        raise
    return record_attempt_outcomes(results)


def record_attempt_outcomes(
    results: list[tuple[OpenedAttempt, SmtpOutcome | None, datetime]],
) -> list[str]:
    """Each attempt's outcome (None: not sent, the job ran out of time) and what follows from
    it, under the assignments' locks, in one transaction; then the retries' jobs. One result
    word per attempt: sent, failed, retry in ..., skipped: ..."""
    assignments = {a.id: a for a in _lock_for_delivery([r[0].assignment_id for r in results])}
    words, finished, succeeded, failed, retries = [], [], [], [], []
    for attempt, outcome, finished_at in results:
        assignment = assignments[attempt.assignment_id]
        (audit,) = [audit for audit in assignment.audits if audit.id == attempt.audit_id]
        if audit.status != "sending":
            words.append("skipped: the sweeper already closed this attempt")
            continue
        if outcome is None:
            outcome = SmtpOutcome(False, False, error=NOT_SENT)
        finished.append(
            (
                audit,
                services.AttemptResult(
                    "sent" if outcome.accepted else "failed",
                    outcome.code,
                    outcome.reply,
                    outcome.error,
                    finished_at,
                ),
            )
        )
        if outcome.accepted:
            if assignment.status == "queued":
                succeeded.append(assignment)
            words.append("sent")
            continue
        delay = services.retry_delay(assignment)
        if assignment.status != "queued":
            words.append("failed: assignment no longer queued")
        elif outcome.permanent or delay is None:
            reason = outcome.summary if outcome.permanent else f"Retries used up: {outcome.summary}"
            failed.append((assignment, reason))
            words.append("failed")
        else:
            services.schedule_retry(assignment, delay, outcome.summary)
            retries.append((assignment.id, audit.attempt_number + 1, delay))
            words.append(f"retry in {delay}")
    services.finish_attempts(finished)
    services.record_deliveries_success(succeeded)
    services.record_deliveries_failure(failed)
    db.session.commit()
    for assignment_id, attempt_number, delay in retries:
        try:
            _enqueue(assignment_id, attempt_number, delay)
        except (redis.RedisError, OSError) as error:
            log.warning(
                "Retry of assignment %s not scheduled (%s); the sweeper will", assignment_id, error
            )
    return words


@logged_job
def deliver_assignment(assignment_id: int) -> str:
    """Send one assignment's email (a retry or a resend: one job per attempt) and record the
    outcome. Safe to run twice or concurrently."""
    _use_own_database_connections()
    began = time.monotonic()
    try:
        lock_one(Assignment, assignment_id)
        opened_at = time.monotonic()
        opened = _open_attempts([assignment_id])
    except sa.exc.IntegrityError:
        db.session.rollback()  # another worker opened this attempt number first
        return "skipped: another attempt is under way"
    if not opened:
        return "skipped: nothing to deliver"
    (result,) = _deliver(opened, _send_deadline(began, opened_at))
    return result


@logged_job
def deliver_due_assignments() -> str:
    """Deliver due assignments in batches: take up to DELIVERY_BATCH_SIZE of them (the longest
    due first, passing over those another worker holds), open their attempts in one commit,
    send them over one SMTP session and record the outcomes in one transaction. Goes on while
    batches come full, up to BATCHES_PER_JOB, then leaves a successor so the retry and
    maintenance queues get their turn. Safe to run any number at once."""
    _use_own_database_connections()
    began = time.monotonic()
    words: Counter = Counter()
    halfway = began + current_app.config["DELIVERY_JOB_TIMEOUT"] / 2
    more = False  # the last batch came full: there may be more due
    for _ in range(BATCHES_PER_JOB):
        now, opened_at = utcnow(), time.monotonic()
        try:
            locked = lock_next(
                Assignment,
                sa.and_(
                    Assignment.status == "queued",
                    sa.or_(Assignment.next_attempt_at.is_(None), Assignment.next_attempt_at <= now),
                ),
                (Assignment.next_attempt_at, Assignment.id),
                batch_size(),
            )
            if not locked:
                db.session.rollback()
                break
            opened = _open_attempts([assignment.id for assignment in locked])
        except sa.exc.IntegrityError:
            db.session.rollback()  # another worker opened one of these attempts first
            more = True
            continue
        results = _deliver(opened, _send_deadline(began, opened_at))
        words.update(word.split()[0].rstrip(":") for word in results)
        more = len(locked) == batch_size()
        if not more or time.monotonic() > halfway:
            break
    if more:
        try:
            ensure_batch_jobs(current_app.config["DELIVERY_PARALLEL_BATCHES"] * batch_size())
        except (redis.RedisError, OSError) as error:
            log.warning("No successor batch job enqueued (%s); the sweeper will", error)
    return ", ".join(f"{word} {n}" for word, n in sorted(words.items())) or "nothing due"


def close_abandoned_attempts(now: datetime) -> None:
    """Attempts whose worker died mid-send: audit them as failed and make them due again."""
    assignment_ids = db.session.scalars(
        sa.select(DeliveryAudit.assignment_id)
        .where(DeliveryAudit.status == "sending", DeliveryAudit.lease_expires_at < now)
        .distinct()
    ).all()
    for assignment_id in assignment_ids:
        # The assignment's lock first, as a delivery job takes it, so the two never deadlock.
        (assignment,) = _lock_for_delivery([assignment_id])
        _close_expired_attempts(assignment, now)
        db.session.commit()


@logged_job
def requeue_stalled() -> int:
    """Enqueue a job for every due `queued` assignment that no live job will deliver: a retry's
    own job, batch jobs for first attempts. Returns how many jobs it enqueued."""
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
        if attempt_number == 1:
            continue  # first attempts: the batch jobs below
        job_id = job_id_for(assignment_id, attempt_number)
        if not _job_is_live(job_id):
            # An overdue scheduled retry leaves the schedule first, so RQ's scheduler, if it
            # wakes up, has nothing to move; should both still enqueue it, the second run
            # finds the attempt taken and does nothing.
            schedule.remove(job_id)
            _enqueue(assignment_id, attempt_number)
            enqueued += 1
    first = sum(1 for _, attempt_number, _ in due if attempt_number == 1)
    if first:
        enqueued += ensure_batch_jobs(first)
    return enqueued
