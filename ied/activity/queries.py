"""Read side of the activity log: the lead page's timeline and the managers' filtered log."""

from dataclasses import dataclass
from datetime import date, timedelta
from functools import cache

import sqlalchemy as sa

from ied.activity.models import ActivityEntry
from ied.business_time import local_midnight
from ied.extensions import db
from ied.keyset import cursor_position, decode_cursor, encode_cursor
from ied.leads.models import Lead

PAGE_SIZE = 50
TIMELINE_SIZE = 15
NO_USER = "none"  # the actor filter's value for entries without a user: system, installer, API


@dataclass(frozen=True)
class ActivityFilters:
    """What the log is narrowed to; every filter is served by an index on (…, created_at, id)."""

    verb: str | None = None
    actor: int | str | None = None  # a user id, or NO_USER
    subject_type: str | None = None
    lead: str | None = None  # a lead reference
    since: date | None = None  # business days, both ends included
    until: date | None = None


@dataclass(frozen=True)
class ActivityRow:
    entry: ActivityEntry
    lead_reference: str | None

    @property
    def record_name(self) -> str:
        """The touched record as people name it: a lead by its reference, others by id."""
        entry = self.entry
        if entry.subject_type == "lead" and self.lead_reference:
            return f"{entry.subject_label} {self.lead_reference}"
        return f"{entry.subject_label} {entry.subject_id}"


@dataclass(frozen=True)
class ActivityPage:
    rows: list[ActivityRow]
    next_cursor: str | None


def _conditions(filters: ActivityFilters) -> list[sa.ColumnElement[bool]]:
    conditions = []
    if filters.verb:
        conditions.append(ActivityEntry.verb == filters.verb)
    if filters.actor == NO_USER:
        conditions.append(ActivityEntry.actor_id.is_(None))
    elif filters.actor:
        conditions.append(ActivityEntry.actor_id == filters.actor)
    if filters.subject_type:
        conditions.append(ActivityEntry.subject_type == filters.subject_type)
    if filters.lead:
        lead_id = sa.select(Lead.id).where(Lead.reference == filters.lead.strip().upper())
        conditions.append(ActivityEntry.lead_id == lead_id.scalar_subquery())
    if filters.since:
        conditions.append(ActivityEntry.created_at >= local_midnight(filters.since))
    if filters.until:
        conditions.append(ActivityEntry.created_at < local_midnight(filters.until + timedelta(1)))
    return conditions


def activity_page(
    filters: ActivityFilters, after: str | None = None, size: int = PAGE_SIZE
) -> ActivityPage:
    """Newest first, keyset-paged on (created_at, id): one query whatever the page size."""
    query = (
        sa.select(ActivityEntry, Lead.reference)
        .outerjoin(Lead, Lead.id == ActivityEntry.lead_id)
        .where(*_conditions(filters))
        .order_by(ActivityEntry.created_at.desc(), ActivityEntry.id.desc())
        .limit(size + 1)
    )
    cursor = decode_cursor(after)
    if cursor:
        position = sa.tuple_(ActivityEntry.created_at, ActivityEntry.id)
        query = query.where(position < cursor_position(cursor))
    return _page(
        [ActivityRow(entry, reference) for entry, reference in db.session.execute(query)], size
    )


def _page(rows: list[ActivityRow], size: int) -> ActivityPage:
    """`rows` holds one row beyond the page when there are more."""
    more = len(rows) > size
    rows = rows[:size]
    return ActivityPage(rows, encode_cursor(rows[-1].entry) if more else None)


@cache
def _timeline_statement() -> sa.Select:
    """Built once, the lead a parameter: the lead page runs it on every view."""
    return (
        sa.select(ActivityEntry)
        .where(ActivityEntry.lead_id == sa.bindparam("lead_id"))
        .order_by(ActivityEntry.created_at.desc(), ActivityEntry.id.desc())
        .limit(TIMELINE_SIZE + 1)
    )


def lead_timeline(lead: Lead) -> ActivityPage:
    """The lead's most recent activity (the log's lead filter, by the lead's id); next_cursor
    is set when the full log holds more."""
    entries = db.session.scalars(_timeline_statement(), {"lead_id": lead.id})
    return _page([ActivityRow(entry, lead.reference) for entry in entries], TIMELINE_SIZE)
