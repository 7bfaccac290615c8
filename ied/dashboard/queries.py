"""The dashboard's numbers: each one an aggregate the database computes over an index.

Nothing here loads rows to count them in Python, and nothing grows with the history: "now"
figures read a maintained counter (leads per status), small index slices (deliveries needing
action) or capped counts (follow-ups, returns); period figures sum the daily tallies the
services keep (ied/tallies), a few rows a business day (BUSINESS_TIMEZONE).
"""

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import cache, cached_property

import sqlalchemy as sa

from ied.business_time import business_today, day_bounds
from ied.capped_counts import CappedCount, capped_count
from ied.dashboard.charts import Segment, satisfaction_segments
from ied.delivery.models import Assignment, DeliveryAudit
from ied.delivery.queries import delivery_needs_action_kinds, queued_alert_cutoff
from ied.extensions import db
from ied.finance.models import ReturnRequest
from ied.followups.models import FollowUp
from ied.followups.queries import due_state_count_columns, follow_up_filter
from ied.installers.models import Installer
from ied.installers.services import CycleUsage, usage_by_installer_name
from ied.leads.models import LEAD_STATUSES, STATUS_LABELS, Lead
from ied.leads.status_counts import status_count_columns
from ied.tallies.services import PeriodTallies, tallies_between
from ied.timestamps import utcnow

PERIODS = (7, 30, 90)
DEFAULT_PERIOD = 30
NEEDS_ACTION_SHOWN = 12
INSTALLERS_SHOWN = 12  # per installer panel, unless the manager asks for all
HIGH_ISSUE_RATE = 0.2  # an installer's follow-ups reporting an issue at least this often stand out


def chart_ceiling(value: int) -> int:
    """A round, even axis maximum at or above `value` (4, 10, 20, 50, 100, 200, ...), so the
    half-way gridline is a whole number too."""
    if value <= 4:
        return 4
    step = 10
    while True:
        for factor in (1, 2, 5):
            if value <= factor * step:
                return factor * step
        step *= 10


@dataclass(frozen=True)
class Period:
    days: int
    first_day: date
    last_day: date  # today: its figures are so far

    @property
    def day_list(self) -> list[date]:
        return [self.first_day + timedelta(days=offset) for offset in range(self.days)]

    @property
    def starts_at(self) -> datetime:
        return day_bounds(self.first_day)[0]

    @property
    def ends_at(self) -> datetime:
        return day_bounds(self.last_day)[1]


def period_of(days: int, now: datetime | None = None) -> Period:
    """The last `days` business days, today included."""
    today = business_today(now)
    return Period(days=days, first_day=today - timedelta(days=days - 1), last_day=today)


# Now --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StatusCount:
    status: str
    label: str
    count: int


@dataclass(frozen=True)
class DeliveryNeedingAction:
    assignment_id: int
    lead_reference: str
    customer_name: str
    installer_name: str
    status: str  # failed or queued
    since: datetime
    smtp_code: int | None
    reply: str | None  # the latest attempt's SMTP reply or error, else the assignment's error

    @property
    def reason(self) -> str:
        if self.smtp_code is not None and self.reply:
            return f"{self.smtp_code} {self.reply}"
        if self.reply:
            return self.reply
        return "Failed" if self.status == "failed" else "Not attempted yet"


@dataclass(frozen=True)
class NeedsAction:
    items: list[DeliveryNeedingAction]
    total: CappedCount
    queued_alert_minutes: int


def _latest_attempts(column: sa.ColumnElement) -> sa.ScalarSelect:
    return (
        sa.select(column)
        .where(DeliveryAudit.assignment_id == Assignment.id)
        .order_by(DeliveryAudit.attempt_number.desc())
        .limit(1)
        .scalar_subquery()
    )


@cache
def _needs_action_statement(shown: int) -> sa.Select:
    """Built once, its cutoff a parameter: building the union, the capped counts and the latest
    attempt's columns took longer than running them. The installer and the latest attempt are
    scalar subqueries of the shown rows: as joins, planning the statement took PostgreSQL
    longer than running it."""
    kinds = delivery_needs_action_kinds(queued_before=sa.bindparam("queued_before"))
    # Each kind read newest first from its own index prefix, then merged: an OR of the two
    # would make PostgreSQL scan the assignments table.
    newest = sa.union_all(
        *(
            sa.select(half.c.id, half.c.created_at).select_from(half)
            for half in (
                sa.select(Assignment.id, Assignment.created_at)
                .where(kind)
                .order_by(Assignment.created_at.desc(), Assignment.id.desc())
                .limit(shown)
                .subquery()
                for kind in kinds
            )
        )
    ).subquery("newest")
    failed, queued_too_long = kinds
    capped_total = capped_count(sa.select(Assignment.id).where(failed)) + capped_count(
        sa.select(Assignment.id).where(queued_too_long)
    )
    return (
        sa.select(
            Assignment.id,
            Lead.reference,
            Lead.customer_name,
            sa.select(Installer.company_name)
            .where(Installer.id == Assignment.installer_id)
            .scalar_subquery(),
            Assignment.status,
            sa.case(
                (Assignment.status == "queued", Assignment.queued_at), else_=Assignment.updated_at
            ),
            _latest_attempts(DeliveryAudit.smtp_code),
            sa.func.coalesce(
                _latest_attempts(sa.func.coalesce(DeliveryAudit.smtp_reply, DeliveryAudit.error)),
                Assignment.last_error,
            ),
            capped_total.label("total"),
        )
        .join(newest, newest.c.id == Assignment.id)
        .join(Lead, Lead.id == Assignment.lead_id)
        .order_by(Assignment.created_at.desc(), Assignment.id.desc())
        .limit(shown)
    )


def deliveries_needing_action(
    now: datetime | None = None, shown: int = NEEDS_ACTION_SHOWN
) -> NeedsAction:
    """Failed deliveries and those queued too long, newest first, each with the reply of its
    latest attempt; the total is capped like the queue's tabs."""
    now = now or utcnow()
    cutoff = queued_alert_cutoff(now)
    rows = db.session.execute(_needs_action_statement(shown), {"queued_before": cutoff}).all()
    total = rows[0].total if rows else 0
    minutes = int((now - cutoff).total_seconds() // 60)
    return NeedsAction(
        items=[DeliveryNeedingAction(*row[:8]) for row in rows],
        total=CappedCount(total),
        queued_alert_minutes=minutes,
    )


@dataclass(frozen=True)
class FollowUpSummary:
    overdue: CappedCount
    due_today: CappedCount
    upcoming: CappedCount
    open_issues: CappedCount
    pending_returns: CappedCount  # installers' return requests waiting for a manager


SUMMARY_DUE_STATES = ("overdue", "due_today", "upcoming")


@dataclass(frozen=True)
class NowCounts:
    leads_by_status: list[StatusCount]
    follow_ups: FollowUpSummary


@cache
def _now_counts_statement() -> sa.Select:
    """Built once, its moments parameters (as the queue's counts)."""
    open_issues = sa.select(FollowUp.id).where(*follow_up_filter(issue="open"))
    pending = sa.select(ReturnRequest.id).where(ReturnRequest.status == "pending")
    return sa.select(
        *status_count_columns(),
        *due_state_count_columns(
            sa.bindparam("now"), SUMMARY_DUE_STATES, end_of_today=sa.bindparam("end_of_today")
        ),
        capped_count(open_issues).label("open_issues"),
        capped_count(pending).label("pending_returns"),
    )


def now_counts(now: datetime | None = None) -> NowCounts:
    """Leads per status (the kept counters), the open follow-ups by due state, open issues
    and pending returns (capped counts, each over its own index), in one round trip."""
    now = now or utcnow()
    _, end_of_today = day_bounds(business_today(now))
    row = db.session.execute(
        _now_counts_statement(), {"now": now, "end_of_today": end_of_today}
    ).one()
    statuses, follow_ups = row[: len(LEAD_STATUSES)], row[len(LEAD_STATUSES) :]
    return NowCounts(
        leads_by_status=[
            StatusCount(status, STATUS_LABELS[status], int(count))
            for status, count in zip(LEAD_STATUSES, statuses, strict=True)
        ],
        follow_ups=FollowUpSummary(*(CappedCount(count) for count in follow_ups)),
    )


@dataclass(frozen=True)
class CapUse:
    installer_id: int
    installer_name: str
    active: bool
    usage: CycleUsage

    @property
    def percent(self) -> int | None:
        if self.usage.cap is None:
            return None
        if self.usage.cap == 0:
            return 100
        # Rounded down: 199 of 200 is 99% (not "100%" with a slot left), 79.5% not amber yet.
        return 100 * self.usage.used // self.usage.cap


def installer_names() -> dict[int, str]:
    """Every installer's name by id, in name order."""
    return dict(
        db.session.execute(
            sa.select(Installer.id, Installer.company_name).order_by(Installer.company_name)
        ).all()
    )


def cap_use() -> list[CapUse]:
    """Each installer's current cycle (events not voided, plus queued) against its cap, in
    one statement: nearest their cap first (the larger share of the cap used), installers
    without a cap last, each group in name order."""
    rows = [
        CapUse(installer.id, installer.company_name, installer.active, usage)
        for installer, usage in usage_by_installer_name()
    ]
    return sorted(rows, key=lambda row: (row.percent is None, -(row.percent or 0)))


# Over the period ----------------------------------------------------------------------------


def day_label(day: date) -> str:
    return day.strftime("%a %d %b")


@dataclass(frozen=True)
class DayCount:
    day: date
    label: str  # Tue 01 Dec: made once for the chart and its table
    count: int


@dataclass(frozen=True)
class DailyCounts:
    days: list[DayCount]

    @property
    def total(self) -> int:
        return sum(day.count for day in self.days)

    @property
    def axis_max(self) -> int:
        return chart_ceiling(max((day.count for day in self.days), default=0))


def period_tallies(period: Period) -> PeriodTallies:
    """The period's kept daily tallies, in one statement (ied/tallies)."""
    return tallies_between(period.first_day, period.last_day)


def _tally_of(tallies: PeriodTallies, day: date, name: str) -> int:
    return tallies.per_day.get(day, {}).get(name, 0)


def new_leads_per_day(period: Period, tallies: PeriodTallies) -> DailyCounts:
    return DailyCounts(
        [
            DayCount(day, day_label(day), _tally_of(tallies, day, "leads_created"))
            for day in period.day_list
        ]
    )


@dataclass(frozen=True)
class DeliveryDay:
    day: date
    label: str
    sent: int
    failed: int

    @property
    def attempts(self) -> int:
        return self.sent + self.failed

    @property
    def success_rate(self) -> float | None:
        return self.sent / self.attempts if self.attempts else None


@dataclass(frozen=True)
class DeliveryDays:
    days: list[DeliveryDay]

    @property
    def sent(self) -> int:
        return sum(day.sent for day in self.days)

    @property
    def failed(self) -> int:
        return sum(day.failed for day in self.days)

    @property
    def success_rate(self) -> float | None:
        attempts = self.sent + self.failed
        return self.sent / attempts if attempts else None

    @property
    def axis_max(self) -> int:
        return chart_ceiling(max((day.attempts for day in self.days), default=0))


def deliveries_per_day(period: Period, tallies: PeriodTallies) -> DeliveryDays:
    """Email attempts finished each day, sent or failed (a retried delivery counts each try)."""
    return DeliveryDays(
        [
            DeliveryDay(
                day,
                day_label(day),
                _tally_of(tallies, day, "attempts_sent"),
                _tally_of(tallies, day, "attempts_failed"),
            )
            for day in period.day_list
        ]
    )


@dataclass(frozen=True)
class InstallerQuality:
    installer_id: int
    installer_name: str
    delivered: int
    opened: int
    returned: int
    satisfied: int
    mixed: int
    unsatisfied: int
    closed_follow_ups: int
    with_issue: int

    @property
    def open_rate(self) -> float | None:
        return self.opened / self.delivered if self.delivered else None

    @cached_property
    def satisfaction(self) -> list[Segment]:
        return satisfaction_segments(self.satisfied, self.mixed, self.unsatisfied)

    @property
    def issue_rate(self) -> float | None:
        return self.with_issue / self.closed_follow_ups if self.closed_follow_ups else None

    @property
    def issue_rate_is_high(self) -> bool:
        return self.issue_rate is not None and self.issue_rate >= HIGH_ISSUE_RATE


def installer_quality(tallies: PeriodTallies, names: dict[int, str]) -> list[InstallerQuality]:
    """Per installer: deliveries sent in the period and how many a person opened; returns the
    installer asked for in the period; follow-ups closed in the period by satisfaction, and how
    many of them reported an issue. Most deliveries first, then by name."""
    rows = [
        InstallerQuality(
            installer_id,
            name,
            *(
                tallies.per_installer[installer_id][tally]
                for tally in (
                    "deliveries_sent",
                    "deliveries_opened",
                    "returns_requested",
                    "follow_ups_satisfied",
                    "follow_ups_mixed",
                    "follow_ups_unsatisfied",
                    "follow_ups_closed",
                    "follow_ups_with_issue",
                )
            ),
        )
        for installer_id, name in names.items()
        if any(tallies.per_installer.get(installer_id, {}).values())
    ]
    return sorted(rows, key=lambda row: (-row.delivered, row.installer_name))
