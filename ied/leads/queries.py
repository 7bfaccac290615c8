"""Read side of the work queue and the lead page: tabs, counts, search and keyset pages."""

from dataclasses import dataclass
from datetime import datetime
from functools import cache, lru_cache

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import aliased, joinedload, load_only
from sqlalchemy.orm.attributes import set_committed_value

from ied.business_time import business_today, day_bounds
from ied.capped_counts import CappedCount, capped_count
from ied.delivery.models import ASSIGNMENT_TRANSITIONS, Assignment, DeliveryEvent
from ied.delivery.queries import delivery_needs_action_kinds, queued_alert_cutoff
from ied.extensions import db
from ied.followups.models import FollowUp
from ied.followups.queries import due_state_count_columns
from ied.installers.models import Installer
from ied.installers.services import cap_reached, usage_columns, usage_parameters
from ied.keyset import cursor_position, decode_cursor, encode_cursor
from ied.leads.models import LEAD_STATUSES, Lead, LeadStatusChange
from ied.leads.search import search_condition, search_terms
from ied.leads.status_counts import status_count_columns
from ied.row_locks import lock_where
from ied.timestamps import UTCDateTime, utcnow

ATTENTION = "attention"
QUEUE_TABS = (*LEAD_STATUSES, ATTENTION)
ORDERS = ("newest", "oldest")
PAGE_SIZE = 50
# Tab counts cost the same whether the table holds a thousand leads or ten million: a status
# tab reads its kept counter (ied/leads/status_counts.py, 16 rows a status, kept in the
# transaction of every change), Needs attention a LIMITed scan of the partial index of leads
# whose deliveries need it (ix_leads_delivery_attention). Both show as capped counts
# (ied/capped_counts.py: "1000+" beyond the cap).


# What a queue row shows and works out (routing, next action, cursor); the queue_rows block of
# leads/queue.html reads no other column (test_statement_counts would see one more load a row).
QUEUE_ROW_COLUMNS = (
    Lead.reference,
    Lead.customer_name,
    Lead.postcode,
    Lead.postcode_normalized,
    Lead.product_interest,
    Lead.selected_path,
    Lead.status,
    Lead.created_at,
    Lead.recommended_installer_id,
    Lead.possible_duplicate_of_id,
    Lead.delivery_attention_at,
)


@dataclass(frozen=True)
class QueuePage:
    leads: list[Lead]
    next_cursor: str | None


@dataclass(frozen=True)
class DeliveryProblem:
    """Why a lead needs attention, and what fixes it: resend, withdraw (and assign another,
    while the lead's live assignments, `lead_live_count`, leave its path a free place)."""

    assignment_id: int
    status: str
    installer_name: str
    why: str
    can_resend: bool
    can_withdraw: bool
    lead_live_count: int


@cache
def _delivery_problems_statement(dialect: str) -> sa.Select:
    """Built once (the leads and the queued cutoff are parameters): building it cost more
    than running it. Plain rows, not entities: loading 40 assignments with their installers
    as entities took 3 ms of CPU, the same columns as rows 0.8. On PostgreSQL the page's
    leads are one array parameter: an expanding IN writes a new statement text for each
    number of leads and renders its 50 parameters on every call (0.8 ms more)."""
    lead_ids = (
        Assignment.lead_id == sa.any_(sa.bindparam("lead_ids", type_=postgresql.ARRAY(sa.Integer)))
        if dialect == "postgresql"
        else Assignment.lead_id.in_(sa.bindparam("lead_ids", expanding=True))
    )
    billed, queued = usage_columns()
    other = aliased(Assignment)
    lead_live_count = (  # its lead's assignments that are live (delivery.services.is_live)
        sa.select(sa.func.count())
        .where(other.lead_id == Assignment.lead_id, other.status != "withdrawn")
        .scalar_subquery()
    )
    return (
        sa.select(
            Assignment.id,
            Assignment.lead_id,
            Assignment.status,
            Assignment.queued_at,
            Assignment.last_error,
            Installer.company_name,
            Installer.active,
            Installer.cycle_cap,
            lead_live_count.label("lead_live_count"),
            billed.label("billed"),
            queued.label("queued"),
        )
        .join(Assignment.installer)
        .where(
            lead_ids,
            sa.or_(*delivery_needs_action_kinds(queued_before=sa.bindparam("queued_before"))),
        )
        .order_by(Assignment.id)
    )


def delivery_problems(lead_ids: list[int]) -> dict[int, list[DeliveryProblem]]:
    """The deliveries needing attention of a page of leads, in one query."""
    if not lead_ids:
        return {}
    problems: dict[int, list[DeliveryProblem]] = {}
    now = utcnow()
    statement = _delivery_problems_statement(db.session.get_bind().dialect.name)
    parameters = {"lead_ids": lead_ids, "queued_before": queued_alert_cutoff(now)}
    for row in db.session.execute(statement, {**parameters, **usage_parameters()}):
        name = row.company_name
        if row.status == "failed":
            why = f"Delivery to {name} failed: {row.last_error or 'no reply recorded'}"
        else:
            minutes = int((now - row.queued_at).total_seconds() // 60)
            why = f"Delivery to {name} queued for {minutes} min"
            if row.last_error:
                why += f" (last try: {row.last_error})"
        # As resend refuses it: its installer paused, or at its cap this cycle.
        full = cap_reached(row.cycle_cap, row.billed, row.queued)
        if not row.active:
            why += f". {name} is paused"
        elif full and row.status == "failed":
            why += f". {name} is at its cap this cycle"
        allowed_next = ASSIGNMENT_TRANSITIONS[row.status]
        problems.setdefault(row.lead_id, []).append(
            DeliveryProblem(
                assignment_id=row.id,
                status=row.status,
                installer_name=name,
                why=why + ".",
                can_resend="queued" in allowed_next and row.active and not full,
                can_withdraw="withdrawn" in allowed_next,
                lead_live_count=row.lead_live_count,
            )
        )
    return problems


def next_in_tab(tab: str, after: Lead) -> Lead | None:
    """The lead that follows `after` in its tab, newest first (the queue's default order);
    the newest when `after` was the last."""
    base = sa.select(Lead).where(_tab_filter(tab), Lead.id != after.id)
    position = sa.tuple_(Lead.created_at, Lead.id)
    following = base.where(position < cursor_position((after.created_at, after.id))).order_by(
        Lead.created_at.desc(), Lead.id.desc()
    )
    return (
        db.session.scalars(following.limit(1)).first()
        or db.session.scalars(
            base.order_by(Lead.created_at.desc(), Lead.id.desc()).limit(1)
        ).first()
    )


def _tab_filter(tab: str, now=None) -> sa.ColumnElement[bool]:
    if tab == ATTENTION:
        # A delivery needing action (delivery_needs_action): the delivery services keep the
        # moment it starts to on the lead, so this reads no assignments.
        return Lead.delivery_attention_at <= (utcnow() if now is None else now)
    return Lead.status == tab


def needs_attention(lead: Lead, now: datetime) -> bool:
    """The Needs-attention tab's test (_tab_filter) on a loaded lead: has a delivery of its
    needed action by `now`? Only such a lead has delivery problems to look up."""
    return lead.delivery_attention_at is not None and lead.delivery_attention_at <= now


def _tab_count_columns(now) -> list:
    """Each status tab's count from its kept counter (reading 1,001 entries of the status index
    for each of the four took PostgreSQL ~0.8 ms a page at a million leads), Needs attention's
    capped."""
    statuses = zip(LEAD_STATUSES, status_count_columns(), strict=True)
    attention = capped_count(sa.select(Lead.id).where(_tab_filter(ATTENTION, now)))
    return [*(count.label(status) for status, count in statuses), attention.label(ATTENTION)]


# The follow-ups the queue's head shows: how many are overdue and due today.
QUEUE_FOLLOW_UP_STATES = ("overdue", "due_today")


@cache
def _queue_counts_statement() -> sa.Select:
    """Built once (its moments are parameters): building its subqueries took longer than
    running them. The cap (capped_counts.COUNT_CAP) is read when it is built."""
    now, end_of_today = sa.bindparam("now"), sa.bindparam("end_of_today")
    follow_ups = due_state_count_columns(now, QUEUE_FOLLOW_UP_STATES, end_of_today=end_of_today)
    return sa.select(*_tab_count_columns(now), *follow_ups)


def queue_counts() -> tuple[dict[str, CappedCount], dict[str, CappedCount]]:
    """Every tab's count and the queue head's follow-up counts, each capped, in one round trip."""
    now = utcnow()
    _, end_of_today = day_bounds(business_today(now))
    row = (
        db.session.execute(_queue_counts_statement(), {"now": now, "end_of_today": end_of_today})
        .one()
        ._mapping
    )
    return (
        {tab: CappedCount(row[tab]) for tab in QUEUE_TABS},
        {due: CappedCount(row[due]) for due in QUEUE_FOLLOW_UP_STATES},
    )


def queue_page(tab: str, q: str = "", order: str = "newest", after: str | None = None) -> QueuePage:
    """One page of the queue, keyset-paginated on (created_at, id); a search spans all tabs.
    Its leads hold the columns a queue row shows (QUEUE_ROW_COLUMNS), not the whole lead."""
    cursor = decode_cursor(after)
    terms = search_terms(q)
    if terms is None:
        statement = _tab_page_statement(tab, order, cursor is not None)
        parameters = {"now": utcnow()}
    elif terms:
        statement = _search_page_statement(tuple(terms), order, cursor is not None)
        parameters = dict(terms)
    else:
        return QueuePage(leads=[], next_cursor=None)
    if cursor:
        parameters["after_at"], parameters["after_id"] = cursor
    leads = list(db.session.scalars(statement, parameters))
    more = len(leads) > PAGE_SIZE
    leads = leads[:PAGE_SIZE]
    return QueuePage(leads=leads, next_cursor=encode_cursor(leads[-1]) if more else None)


@cache
def _search_page_statement(kinds: tuple[str, ...], order: str, after: bool) -> sa.Select:
    """Built once per kind of search, order and first page or not (the terms and the cursor
    are parameters): building it cost more than running it."""
    return _page_statement(search_condition(kinds), order, after)


@cache
def _tab_page_statement(tab: str, order: str, after: bool) -> sa.Select:
    """Built once per tab, order and first page or not (the moment and the cursor are
    parameters): building it cost about as much as running it."""
    return _page_statement(_tab_filter(tab, sa.bindparam("now")), order, after)


def _page_statement(where: sa.ColumnElement[bool], order: str, after: bool) -> sa.Select:
    query = (
        sa.select(Lead)
        .options(
            load_only(*QUEUE_ROW_COLUMNS),
            joinedload(Lead.possible_duplicate_of).load_only(Lead.reference),
        )
        .where(where)
    )
    position = sa.tuple_(Lead.created_at, Lead.id)
    cursor = sa.tuple_(sa.bindparam("after_at", type_=UTCDateTime), sa.bindparam("after_id"))
    if order == "oldest":
        query = query.order_by(Lead.created_at, Lead.id)
        if after:
            query = query.where(position > cursor)
    else:
        query = query.order_by(Lead.created_at.desc(), Lead.id.desc())
        if after:
            query = query.where(position < cursor)
    return query.limit(PAGE_SIZE + 1)


# What a lead's page shows, loaded up front (no query per row), and what a queue row shows.
# The page's lead with its many-to-ones joined to its row (lead_for_page adds its collections).
PAGE_LOADS = (
    joinedload(Lead.possible_duplicate_of).load_only(Lead.reference, Lead.created_at),
    joinedload(Lead.recommended_installer),
    joinedload(Lead.follow_up).joinedload(FollowUp.installer),
)
ROW_LOADS = (joinedload(Lead.possible_duplicate_of).load_only(Lead.reference),)


def lead_by_reference(reference: str, loads=ROW_LOADS, *, lock: bool = False) -> Lead | None:
    """The one way to find a lead by its reference (typed in any case, spaces around); with
    lock, under its row lock (for a request that is about to change it)."""
    if lock:
        return lock_where(Lead, Lead.reference == reference.strip().upper(), loads)
    return (
        db.session.scalars(_by_reference_statement(loads), {"reference": reference.strip().upper()})
        .unique()
        .one_or_none()
    )  # every row read: a joined collection spans several


@lru_cache(maxsize=4)  # one per loads tuple (ROW_LOADS, PAGE_LOADS)
def _by_reference_statement(loads) -> sa.Select:
    """Built once per set of loads, the reference a parameter: SQLAlchemy then works out the
    statement's cache key once, which with the page's joined loads cost more than its SQL."""
    return (
        sa.select(Lead)
        .where(Lead.reference == sa.bindparam("reference"))
        .options(*loads)
        .execution_options(populate_existing=True)
    )


def lead_for_page(reference: str) -> Lead | None:
    """The lead with everything its page shows: PAGE_LOADS, then its status history and its
    assignments (each with its installer, audit rows, billable delivery event and who voided
    it) by two statements built once and run by the lead's id. As selectin loads they cost
    ~2 ms of CPU each (SQLAlchemy building their statements); joined to the lead's row, the
    nine-table join took PostgreSQL ~3.5 ms to plan."""
    lead = lead_by_reference(reference, PAGE_LOADS)
    if lead is not None:
        parameters = {"lead_id": lead.id}
        changes = db.session.scalars(_status_changes_statement(), parameters).all()
        set_committed_value(lead, "status_changes", changes)
        assignments = db.session.scalars(_assignments_statement(), parameters).unique().all()
        set_committed_value(lead, "assignments", assignments)
    return lead


@cache
def _status_changes_statement() -> sa.Select:
    return (
        sa.select(LeadStatusChange)
        .where(LeadStatusChange.lead_id == sa.bindparam("lead_id"))
        .options(joinedload(LeadStatusChange.changed_by))
        .order_by(LeadStatusChange.id)  # Lead.status_changes' order
        .execution_options(populate_existing=True)
    )


@cache
def _assignments_statement() -> sa.Select:
    """A lead has a few assignments, each a few audit rows: all joined in one statement."""
    return (
        sa.select(Assignment)
        .where(Assignment.lead_id == sa.bindparam("lead_id"))
        .options(
            joinedload(Assignment.installer),
            joinedload(Assignment.audits),  # in Assignment.audits' order
            joinedload(Assignment.delivery_event).joinedload(DeliveryEvent.voided_by),
        )
        .order_by(Assignment.id)  # Lead.assignments' order
        .execution_options(populate_existing=True)
    )
