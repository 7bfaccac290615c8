"""Due states computed by the database against business-day edges, never by loading rows."""

from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache

import sqlalchemy as sa
from sqlalchemy.orm import aliased

from ied import capped_counts
from ied.business_time import business_today, day_bounds
from ied.capped_counts import CappedCount, capped_count
from ied.extensions import db
from ied.followups.models import (
    CLOSED_FOLLOW_UP_STATUSES,
    OPEN_FOLLOW_UP_STATUSES,
    SEARCH_COLUMNS,
    FollowUp,
)
from ied.followups.services import follow_up_refusal
from ied.formatting import local_datetime
from ied.installers.models import Installer
from ied.leads.models import Lead
from ied.leads.search import search_condition, search_terms
from ied.timestamps import utcnow

DUE_STATES = ("overdue", "due_today", "upcoming", "done")
DUE_STATE_LABELS = {
    "overdue": "Overdue",
    "due_today": "Due today",
    "upcoming": "Upcoming",
    "done": "Done",
}
PAGE_SIZE = 50


def _status_in(statuses: tuple[str, ...]):
    # Literal values, not bound parameters: the planner can then match the partial index
    # ix_follow_ups_open_due_at, whose predicate is this very IN list.
    return FollowUp.status.in_([sa.literal_column(f"'{status}'") for status in statuses])


def due_state_condition(due: str, now=None, end_of_today=None):
    """The rows in a due state at `now`. `now` and `end_of_today` may be bind parameters (a
    statement built once, its moments given when run); end_of_today follows from now if not
    given."""
    now = utcnow() if now is None else now
    if due == "done":
        return _status_in(CLOSED_FOLLOW_UP_STATUSES)
    is_open = _status_in(OPEN_FOLLOW_UP_STATUSES)
    if due == "overdue":
        return sa.and_(is_open, FollowUp.due_at < now)
    if end_of_today is None:
        _, end_of_today = day_bounds(business_today(now))
    if due == "due_today":
        return sa.and_(is_open, FollowUp.due_at >= now, FollowUp.due_at < end_of_today)
    if due == "upcoming":
        return sa.and_(is_open, FollowUp.due_at >= end_of_today)
    raise KeyError(due)


def due_state_of_row(now, end_of_today=None):
    """The due state of each row as a SQL expression, so rows and filters always agree (`now`
    and `end_of_today` as for due_state_condition)."""
    if end_of_today is None:
        _, end_of_today = day_bounds(business_today(now))
    return sa.case(
        *((due_state_condition(due, now, end_of_today), due) for due in DUE_STATES[:-1]),
        else_="done",
    )


def due_state_of(follow_up_id: int, now: datetime | None = None) -> str:
    return db.session.scalar(
        sa.select(due_state_of_row(now or utcnow())).where(FollowUp.id == follow_up_id)
    )


def _search(q: str | None) -> tuple[tuple[str, ...] | None, dict[str, str]]:
    """The kinds of search `q` is (None: no search) and their terms, as the queue reads a search
    (leads.search.search_terms): the statements are built per kinds, the terms given when run."""
    terms = search_terms(q or "")
    return (None, {}) if terms is None else (tuple(terms), terms)


def follow_up_filter(
    *,
    due: str | None = None,
    status: str | None = None,
    issue: str | None = None,
    installer: int | None = None,
    search: tuple[str, ...] | None = None,
    now: datetime | None = None,
    end_of_today=None,
) -> list:
    """The conditions of the follow-up filters given (`now` and `end_of_today` as for
    due_state_condition; `search`: the kinds of a search, its terms bind parameters)."""
    conditions = []
    if due in DUE_STATES:
        conditions.append(due_state_condition(due, now, end_of_today))
    if status:
        conditions.append(FollowUp.status == status)
    if issue == "open":
        # Written as the partial index ix_follow_ups_open_issue states it: PostgreSQL does not
        # match "has_issue IS true AND issue_resolved IS false" to that index's predicate.
        conditions.append(sa.and_(FollowUp.has_issue, sa.not_(FollowUp.issue_resolved)))
    if installer:
        conditions.append(FollowUp.installer_id == installer)
    if search is not None:
        conditions.append(search_condition(search, SEARCH_COLUMNS))
    return conditions


def due_state_count_columns(
    now, states: tuple[str, ...] = DUE_STATES, extra_conditions=(), end_of_today=None
) -> list:
    """Each due state's capped count as a column labelled with the state, each its own capped
    subquery using its index (for a page to select with its other counts); `now` and
    `end_of_today` as for due_state_condition."""
    if end_of_today is None:
        _, end_of_today = day_bounds(business_today(now))
    return [
        capped_count(
            sa.select(FollowUp.id).where(
                due_state_condition(due, now, end_of_today), *extra_conditions
            )
        ).label(due)
        for due in states
    ]


# The list's statements are built once per set of filters (the most recent few hundred sets
# kept), their moments, cursor and page size given when they run: building them took longer
# than running them.
_NOW, _END_OF_TODAY = sa.bindparam("now"), sa.bindparam("end_of_today")


def _moments(now: datetime) -> dict:
    _, end_of_today = day_bounds(business_today(now))
    return {"now": now, "end_of_today": end_of_today}


@lru_cache(maxsize=256)
def _counts_statement(status, issue, installer, search) -> sa.Select:
    others = follow_up_filter(status=status, issue=issue, installer=installer, search=search)
    return sa.select(*due_state_count_columns(_NOW, DUE_STATES, others, _END_OF_TODAY))


@lru_cache(maxsize=256)
def _matched_states_statement(status, issue, installer, search) -> sa.Select:
    matched = (
        sa.select(due_state_of_row(_NOW, _END_OF_TODAY).label("due"))
        .where(*follow_up_filter(status=status, issue=issue, installer=installer, search=search))
        .limit(sa.bindparam("matched_cap"))
        .subquery()
    )
    return sa.select(matched.c.due, sa.func.count()).group_by(matched.c.due)


def due_state_counts(
    now: datetime | None = None, *, status=None, issue=None, installer=None, q=None
) -> dict[str, CappedCount]:
    """All four counts in one round trip, within the other filters (follow_up_filter's).

    A search's matches are counted by state in one pass over them while they are fewer than a
    full cap for every state (each count is then exact): four capped counts would each read the
    matches from the search's index again. More matches than that: the four capped counts."""
    search, terms = _search(q)
    parameters = {**_moments(now or utcnow()), **terms}
    if search is not None:
        matched_cap = len(DUE_STATES) * (capped_counts.COUNT_CAP + 1)
        counted = dict(
            db.session.execute(
                _matched_states_statement(status, issue, installer, search),
                {**parameters, "matched_cap": matched_cap},
            ).all()
        )
        if sum(counted.values()) < matched_cap:
            return {due: CappedCount(counted.get(due, 0)) for due in DUE_STATES}
    row = db.session.execute(_counts_statement(status, issue, installer, search), parameters).one()
    return {due: CappedCount(row._mapping[due]) for due in DUE_STATES}


@dataclass(frozen=True)
class FollowUpRow:
    follow_up: FollowUp
    due_state: str
    # What a list row shows of its lead and installer, read as columns with it.
    lead_reference: str
    customer_name: str
    installer_name: str


@dataclass(frozen=True)
class FollowUpPage:
    rows: list[FollowUpRow]
    next_after: int | None  # the id of the last row shown, when another page follows


def _after(cursor_id, newest_first: bool):
    """Rows after the cursor row in (due_at, id) order: keyset pagination, no OFFSET."""
    cursor = aliased(FollowUp)
    cursor_due_at = sa.select(cursor.due_at).where(cursor.id == cursor_id).scalar_subquery()
    if newest_first:
        return sa.or_(
            FollowUp.due_at < cursor_due_at,
            sa.and_(FollowUp.due_at == cursor_due_at, FollowUp.id < cursor_id),
        )
    return sa.or_(
        FollowUp.due_at > cursor_due_at,
        sa.and_(FollowUp.due_at == cursor_due_at, FollowUp.id > cursor_id),
    )


@lru_cache(maxsize=256)
def _page_statement(due, status, issue, installer, search, has_cursor, newest_first):
    conditions = follow_up_filter(
        due=due,
        status=status,
        issue=issue,
        installer=installer,
        search=search,
        now=_NOW,
        end_of_today=_END_OF_TODAY,
    )
    if has_cursor:
        conditions.append(_after(sa.bindparam("after_id"), newest_first))
    order = (
        (FollowUp.due_at.desc(), FollowUp.id.desc())
        if newest_first
        else (FollowUp.due_at, FollowUp.id)
    )
    return (
        sa.select(
            FollowUp,
            due_state_of_row(_NOW, _END_OF_TODAY).label("due_state"),
            FollowUp.lead_reference,
            FollowUp.customer_name,
            Installer.company_name,
        )
        .join(Installer, Installer.id == FollowUp.installer_id)
        .where(*conditions)
        .order_by(*order)
        .limit(sa.bindparam("limit"))
    )


def follow_up_page(
    due: str | None = None,
    *,
    status: str | None = None,
    issue: str | None = None,
    installer: int | None = None,
    q: str | None = None,
    after: int | None = None,
    newest_first: bool = False,
    now: datetime | None = None,
    page_size: int | None = None,
) -> FollowUpPage:
    """The follow-ups in a due state (or all) within follow_up_filter's other filters:
    earliest due first (most urgent on top); finished ones read better newest first."""
    page_size = page_size or PAGE_SIZE
    search, terms = _search(q)
    statement = _page_statement(
        due, status, issue, installer, search, after is not None, newest_first
    )
    parameters = {**_moments(now or utcnow()), **terms, "limit": page_size + 1, "after_id": after}
    rows = [FollowUpRow(*result) for result in db.session.execute(statement, parameters)]
    has_more = len(rows) > page_size
    rows = rows[:page_size]
    return FollowUpPage(rows, rows[-1].follow_up.id if has_more else None)


def days_overdue(due_at: datetime, now: datetime | None = None) -> int:
    """Whole business days between the due day and today (0 when it fell due earlier today)."""
    return (business_today(now) - business_today(due_at)).days


def overdue_label(due_at: datetime, now: datetime | None = None) -> str:
    """How late an overdue follow-up is, as people say it: "3 days overdue"."""
    late = days_overdue(due_at, now)
    if late == 0:
        return f"overdue since {local_datetime(due_at, '%H:%M')}"
    return f"{late} day{'s' if late != 1 else ''} overdue"


@dataclass(frozen=True)
class LeadFollowUpPanel:
    """What the lead page's follow-up block shows: the follow-up with its due state at `now`
    (overdue, due today: as the follow-up list and page say it), or why none can be made, or
    the sent deliveries a new one may be for."""

    follow_up: FollowUp | None
    reason: str | None
    sent: list
    due_state: str | None = None
    now: datetime | None = None


def lead_follow_up_panel(lead: Lead) -> LeadFollowUpPanel:
    """From the lead's follow-up and assignments, which the lead page loads with the lead
    (leads.queries.lead_for_page): no statement of its own there but the due state of a
    follow-up it has."""
    if lead.follow_up is not None:
        now = utcnow()
        return LeadFollowUpPanel(
            lead.follow_up, None, [], due_state_of(lead.follow_up.id, now), now
        )
    sent = sorted(
        (assignment for assignment in lead.assignments if assignment.status == "sent"),
        key=lambda assignment: assignment.sent_at,
    )
    reason = follow_up_refusal(lead, False, sent)
    if reason:
        return LeadFollowUpPanel(None, reason, [])
    return LeadFollowUpPanel(None, None, sent)
