"""The dashboard's numbers: each one an aggregate the database computes over an index.

Nothing here loads rows to count them in Python. "Now" figures read a maintained counter
(leads per status), a small index slice (deliveries needing action) or capped counts
(follow-ups); period figures are GROUP BYs over a bounded date range of an index. Days are
business days (BUSINESS_TIMEZONE), cut at local midnights so a clock change moves nothing.
"""

from dataclasses import dataclass
from datetime import date, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import aliased

from ied.business_time import business_today, day_bounds
from ied.capped_counts import CappedCount, capped_count
from ied.delivery.models import Assignment, DeliveryAudit
from ied.delivery.queries import delivery_needs_action_kinds, queued_alert_cutoff
from ied.extensions import db
from ied.finance.models import ReturnRequest
from ied.followups.models import CLOSED_FOLLOW_UP_STATUSES, SATISFACTION_OUTCOMES, FollowUp
from ied.followups.queries import due_state_counts, follow_up_filter
from ied.installers.models import Installer
from ied.installers.services import CycleUsage, cycle_usage
from ied.leads.models import LEAD_STATUSES, STATUS_LABELS, Lead
from ied.leads.status_counts import lead_status_counts
from ied.timestamps import UTCDateTime, utcnow

PERIODS = (7, 30, 90)
DEFAULT_PERIOD = 30
NEEDS_ACTION_SHOWN = 12


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


def _days_of(period: Period) -> sa.Subquery:
    """One row per business day of the period (index, start, end), for a range join."""
    rows = [
        sa.select(
            sa.literal(index).label("day"),
            sa.literal(starts, UTCDateTime).label("starts"),
            sa.literal(ends, UTCDateTime).label("ends"),
        )
        for index, (starts, ends) in enumerate(day_bounds(day) for day in period.day_list)
    ]
    return sa.union_all(*rows).subquery("days")


# Now --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StatusCount:
    status: str
    label: str
    count: int


def leads_by_status() -> list[StatusCount]:
    counts = lead_status_counts()
    return [StatusCount(status, STATUS_LABELS[status], counts[status]) for status in LEAD_STATUSES]


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


def deliveries_needing_action(
    now: datetime | None = None, shown: int = NEEDS_ACTION_SHOWN
) -> NeedsAction:
    """Failed deliveries and those queued too long, newest first, each with the reply of its
    latest attempt; the total is capped like the queue's tabs."""
    now = now or utcnow()
    latest = aliased(DeliveryAudit)
    latest_attempt = (
        sa.select(DeliveryAudit.id)
        .where(DeliveryAudit.assignment_id == Assignment.id)
        .order_by(DeliveryAudit.attempt_number.desc())
        .limit(1)
        .scalar_subquery()
    )
    kinds = delivery_needs_action_kinds(now)
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
    rows = db.session.execute(
        sa.select(
            Assignment.id,
            Lead.reference,
            Lead.customer_name,
            Installer.company_name,
            Assignment.status,
            sa.case(
                (Assignment.status == "queued", Assignment.queued_at), else_=Assignment.updated_at
            ),
            latest.smtp_code,
            sa.func.coalesce(latest.smtp_reply, latest.error, Assignment.last_error),
            capped_total.label("total"),
        )
        .join(newest, newest.c.id == Assignment.id)
        .join(Lead, Lead.id == Assignment.lead_id)
        .join(Installer, Installer.id == Assignment.installer_id)
        .outerjoin(latest, latest.id == latest_attempt)
        .order_by(Assignment.created_at.desc(), Assignment.id.desc())
        .limit(shown)
    ).all()
    total = rows[0].total if rows else 0
    minutes = int((now - queued_alert_cutoff(now)).total_seconds() // 60)
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


def follow_up_summary(now: datetime | None = None) -> FollowUpSummary:
    counts = due_state_counts(now)
    issues = db.session.scalar(
        sa.select(capped_count(sa.select(FollowUp.id).where(*follow_up_filter(issue="open"))))
    )
    return FollowUpSummary(
        overdue=counts["overdue"],
        due_today=counts["due_today"],
        upcoming=counts["upcoming"],
        open_issues=CappedCount(issues),
    )


def pending_returns() -> CappedCount:
    """Installers' return requests waiting for a manager's decision."""
    return CappedCount(
        db.session.scalar(
            sa.select(
                capped_count(sa.select(ReturnRequest.id).where(ReturnRequest.status == "pending"))
            )
        )
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
        return round(100 * self.usage.used / self.usage.cap)


def installers() -> list[Installer]:
    return list(db.session.scalars(sa.select(Installer).order_by(Installer.company_name)))


def cap_use(all_installers: list[Installer]) -> list[CapUse]:
    """Each installer's current cycle (events not voided, plus queued) against its cap."""
    usage = cycle_usage(all_installers)
    return [
        CapUse(installer.id, installer.company_name, installer.active, usage[installer.id])
        for installer in all_installers
    ]


# Over the period ----------------------------------------------------------------------------


@dataclass(frozen=True)
class DayCount:
    day: date
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


def new_leads_per_day(period: Period) -> DailyCounts:
    days = _days_of(period)
    counted = dict(
        db.session.execute(
            sa.select(days.c.day, sa.func.count(Lead.id))
            .select_from(days)
            .join(Lead, sa.and_(Lead.created_at >= days.c.starts, Lead.created_at < days.c.ends))
            .group_by(days.c.day)
        ).all()
    )
    return DailyCounts(
        [DayCount(day, counted.get(index, 0)) for index, day in enumerate(period.day_list)]
    )


@dataclass(frozen=True)
class DeliveryDay:
    day: date
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


def deliveries_per_day(period: Period) -> DeliveryDays:
    """Email attempts finished each day, sent or failed (a retried delivery counts each try)."""
    days = _days_of(period)
    counted = {
        (index, status): count
        for index, status, count in db.session.execute(
            sa.select(days.c.day, DeliveryAudit.status, sa.func.count())
            .select_from(days)
            .join(
                DeliveryAudit,
                sa.and_(
                    DeliveryAudit.finished_at >= days.c.starts,
                    DeliveryAudit.finished_at < days.c.ends,
                ),
            )
            .group_by(days.c.day, DeliveryAudit.status)
        )
    }
    return DeliveryDays(
        [
            DeliveryDay(day, counted.get((index, "sent"), 0), counted.get((index, "failed"), 0))
            for index, day in enumerate(period.day_list)
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

    @property
    def issue_rate(self) -> float | None:
        return self.with_issue / self.closed_follow_ups if self.closed_follow_ups else None


def installer_quality(period: Period, all_installers: list[Installer]) -> list[InstallerQuality]:
    """Per installer: deliveries sent in the period and how many a person opened; returns the
    installer asked for in the period; follow-ups closed in the period by satisfaction, and how
    many of them reported an issue."""
    in_period = (Assignment.sent_at >= period.starts_at, Assignment.sent_at < period.ends_at)
    delivered = {
        installer_id: (count, opened)
        for installer_id, count, opened in db.session.execute(
            sa.select(
                Assignment.installer_id, sa.func.count(), sa.func.count(Assignment.first_opened_at)
            )
            .where(*in_period)
            .group_by(Assignment.installer_id)
        )
    }
    returned = dict(
        db.session.execute(
            sa.select(ReturnRequest.installer_id, sa.func.count())
            .where(
                ReturnRequest.requested_at >= period.starts_at,
                ReturnRequest.requested_at < period.ends_at,
            )
            .group_by(ReturnRequest.installer_id)
        ).all()
    )
    closed = {
        installer_id: counts
        for installer_id, *counts in db.session.execute(
            sa.select(
                FollowUp.installer_id,
                *(
                    sa.func.count(sa.case((FollowUp.satisfaction_outcome == outcome, 1)))
                    for outcome in SATISFACTION_OUTCOMES
                ),
                sa.func.count(),
                sa.func.count(sa.case((FollowUp.has_issue, 1))),
            )
            .where(
                FollowUp.completed_at >= period.starts_at,
                FollowUp.completed_at < period.ends_at,
                FollowUp.status.in_(CLOSED_FOLLOW_UP_STATUSES),
            )
            .group_by(FollowUp.installer_id)
        )
    }
    return [
        InstallerQuality(
            installer.id,
            installer.company_name,
            *delivered.get(installer.id, (0, 0)),
            returned.get(installer.id, 0),
            *closed.get(installer.id, (0, 0, 0, 0, 0)),
        )
        for installer in all_installers
        if installer.id in delivered or installer.id in returned or installer.id in closed
    ]
