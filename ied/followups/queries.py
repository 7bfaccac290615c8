"""Due states computed by the database against business-day edges, never by loading rows."""

from datetime import datetime

import sqlalchemy as sa

from ied.business_time import business_today, day_bounds
from ied.extensions import db
from ied.followups.models import CLOSED_FOLLOW_UP_STATUSES, OPEN_FOLLOW_UP_STATUSES, FollowUp
from ied.timestamps import utcnow

DUE_STATES = ("overdue", "due_today", "upcoming", "done")
DUE_STATE_LABELS = {"overdue": "Overdue", "due_today": "Due today", "upcoming": "Upcoming",
                    "done": "Done"}


def due_state_condition(due: str, now: datetime | None = None):
    now = now or utcnow()
    _, end_of_today = day_bounds(business_today(now))
    is_open = FollowUp.status.in_(OPEN_FOLLOW_UP_STATUSES)
    return {
        "overdue": sa.and_(is_open, FollowUp.due_at < now),
        "due_today": sa.and_(is_open, FollowUp.due_at >= now, FollowUp.due_at < end_of_today),
        "upcoming": sa.and_(is_open, FollowUp.due_at >= end_of_today),
        "done": FollowUp.status.in_(CLOSED_FOLLOW_UP_STATUSES),
    }[due]


def follow_up_filter(
    *, due: str | None = None, status: str | None = None, issue: str | None = None,
    installer: int | None = None, now: datetime | None = None,
) -> list:
    conditions = []
    if due in DUE_STATES:
        conditions.append(due_state_condition(due, now))
    if status:
        conditions.append(FollowUp.status == status)
    if issue == "open":
        conditions.append(sa.and_(FollowUp.has_issue.is_(True), FollowUp.issue_resolved.is_(False)))
    if installer:
        conditions.append(FollowUp.installer_id == installer)
    return conditions


def due_state_counts(now: datetime | None = None, extra_conditions=()) -> dict[str, int]:
    """All four counts in one query: one conditional aggregate per due state."""
    columns = [
        sa.func.count().filter(due_state_condition(due, now)).label(due) for due in DUE_STATES
    ]
    row = db.session.execute(sa.select(*columns).select_from(FollowUp).where(*extra_conditions)).one()
    return dict(row._mapping)
