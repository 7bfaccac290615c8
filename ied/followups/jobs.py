"""The managers' daily digest of overdue and due-today follow-ups (a periodic job)."""

import logging
from datetime import datetime, timedelta
from email.message import EmailMessage

import sqlalchemy as sa
from flask import current_app, render_template
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import joinedload

from ied.auth.models import User
from ied.business_time import business_zone
from ied.extensions import db
from ied.followups.models import FollowUp, FollowUpDigest
from ied.followups.queries import due_state_condition
from ied.mail import send_message
from ied.structured_logs import logged_job
from ied.timestamps import utcnow

log = logging.getLogger(__name__)

# Roles nest (admin > manager), so admins get the managers' digest too.
DIGEST_ROLES = ("manager", "admin")
DIGEST_LIST_LIMIT = 100  # per section; the email links to the full list beyond that
# Longer than any SMTP conversation can take (the periodic job's timeout is 300 s).
ABANDONED_CLAIM_AFTER = timedelta(minutes=10)


def public_url(endpoint: str, **values) -> str:
    """An absolute link for an email: built from the URL map, no request needed."""
    path = current_app.url_map.bind("localhost").build(endpoint, values)
    return current_app.config["PUBLIC_BASE_URL"] + path


def _due(due: str, now: datetime) -> tuple[list[FollowUp], int]:
    condition = due_state_condition(due, now)
    follow_ups = db.session.scalars(
        sa.select(FollowUp)
        .where(condition)
        .options(joinedload(FollowUp.lead), joinedload(FollowUp.installer))
        .order_by(FollowUp.due_at, FollowUp.id)
        .limit(DIGEST_LIST_LIMIT)
    ).all()
    total = db.session.scalar(sa.select(sa.func.count()).select_from(FollowUp).where(condition))
    return list(follow_ups), total


def _recipients(business_date) -> list[tuple[int, str]]:
    already = sa.select(FollowUpDigest.user_id).where(FollowUpDigest.business_date == business_date)
    return [
        (user_id, email)
        for user_id, email in db.session.execute(
            sa.select(User.id, User.email)
            .where(User.active.is_(True), User.role.in_(DIGEST_ROLES), User.id.not_in(already))
            .order_by(User.id)
        )
    ]


def _release_abandoned_claims(business_date, now: datetime) -> None:
    """A claim still 'sending' long after it was made belongs to a worker that died mid-send:
    give it back so this run sends that manager's digest."""
    db.session.execute(
        sa.delete(FollowUpDigest).where(
            FollowUpDigest.business_date == business_date,
            FollowUpDigest.status == "sending",
            FollowUpDigest.claimed_at < now - ABANDONED_CLAIM_AFTER,
        )
    )
    db.session.commit()


def _claim(
    business_date, user_id: int, count: int, status: str, now: datetime
) -> FollowUpDigest | None:
    """Insert this manager's row for the day; another worker that got there first wins. The
    claim is dated by the run's clock, the one _release_abandoned_claims measures it with."""
    digest = FollowUpDigest(
        business_date=business_date,
        user_id=user_id,
        status=status,
        follow_up_count=count,
        claimed_at=now,
    )
    db.session.add(digest)
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        return None
    return digest


@logged_job
def send_overdue_digest_if_due(now: datetime | None = None) -> int:
    """Send each active manager today's digest once, at or after FOLLOW_UP_DIGEST_HOUR in the
    business time zone; nothing due means no email (the day is recorded as skipped).
    Returns how many digests this run sent."""
    now = now or utcnow()
    local_now = now.astimezone(business_zone())
    if local_now.hour < current_app.config["FOLLOW_UP_DIGEST_HOUR"]:
        return 0
    business_date = local_now.date()
    _release_abandoned_claims(business_date, now)
    recipients = _recipients(business_date)
    if not recipients:
        return 0
    overdue, overdue_total = _due("overdue", now)
    due_today, due_today_total = _due("due_today", now)
    total = overdue_total + due_today_total
    if total == 0:
        for user_id, _ in recipients:
            _claim(business_date, user_id, 0, "skipped", now)
        return 0
    subject = (
        f"Follow-ups {business_date:%a %d %b}: {overdue_total} overdue, {due_today_total} due today"
    )
    body = render_template(
        "followups/email/digest.txt",
        business_date=business_date,
        now=now,
        overdue=overdue,
        overdue_total=overdue_total,
        due_today=due_today,
        due_today_total=due_today_total,
        public_url=public_url,
    )
    sent = 0
    for user_id, email in recipients:
        digest = _claim(business_date, user_id, total, "sending", now)
        if digest is None:
            continue
        message = EmailMessage()
        message["To"] = email
        message["Subject"] = subject
        message.set_content(body)
        outcome = send_message(message)
        if outcome.accepted:
            digest.status, digest.sent_at, digest.smtp_reply = "sent", utcnow(), outcome.summary
            sent += 1
        elif outcome.permanent:
            # Retrying will not help today: the row stays, so no run resends it until tomorrow.
            log.warning("Follow-up digest to %s refused: %s", email, outcome.summary)
            digest.status, digest.smtp_reply = "failed", outcome.summary
        else:
            # Give the claim back so the next scheduled run (a minute later) tries again.
            log.warning("Follow-up digest to %s not sent: %s", email, outcome.summary)
            db.session.delete(digest)
        db.session.commit()
    return sent
