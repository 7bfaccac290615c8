"""Daily tallies: added to by the service that makes each event happen, in its transaction;
read by the dashboard for a period; recounted from the records by `ied check-daily-tallies`.

A tally's day is the business day (BUSINESS_TIMEZONE) of the event's own moment, the same
moment a direct count would look at, so kept and counted agree across midnights and clock
changes.
"""

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import cache

import sqlalchemy as sa

from ied.business_time import business_today, day_bounds
from ied.extensions import db
from ied.tallies.models import BUSINESS_WIDE, TALLIES, DailyTally
from ied.timestamps import UTCDateTime
from ied.upserts import add_to_counters, adding_from

TALLY_SHARDS = 16
RECOUNT_DAYS_PER_STATEMENT = 92


def add_to_tally(
    moment: datetime, *, installer_id: int = BUSINESS_WIDE, shard_key: int = 0, **counts: int
) -> None:
    """Add `counts` (tally name: amount) to the business day of `moment`, in one statement.

    Business-wide tallies go to one of TALLY_SHARDS rows picked by `shard_key` (the id of what
    is counted); an installer's to its single row of the day.
    """
    add_to_tallies([tally_row(moment, installer_id=installer_id, shard_key=shard_key, **counts)])


def tally_row(
    moment: datetime, *, installer_id: int = BUSINESS_WIDE, shard_key: int = 0, **counts: int
) -> dict:
    """What add_to_tally adds, for add_to_tallies."""
    return {
        "day": business_today(moment),
        "installer_id": installer_id,
        "shard": shard_key % TALLY_SHARDS if installer_id == BUSINESS_WIDE else 0,
        **{name: counts.get(name, 0) for name in TALLIES},
    }


def add_to_tallies(rows: list[dict]) -> None:
    """Several tally_row()s (a batch of deliveries) in one statement: rows of the same day,
    installer and shard summed first, in key order so two batches never deadlock."""
    merged: dict[tuple, dict] = {}
    for row in rows:
        key = (row["day"], row["installer_id"], row["shard"])
        if key in merged:
            for name in TALLIES:
                merged[key][name] += row[name]
        else:
            merged[key] = dict(row)
    if merged:
        add_to_counters(
            DailyTally.__table__,
            ("day", "installer_id", "shard"),
            [merged[key] for key in sorted(merged)],
        )


def tallying_from(source: sa.CTE, **counts: int) -> sa.CTE:
    """add_to_tally(moment, shard_key=id, **counts) for each row `source` returns, inside the
    statement that writes them (PostgreSQL): business-wide, its day the parameter `tally_day`
    (tally_day_of(moment) gives it)."""
    values = {
        "day": ":tally_day",
        "installer_id": str(BUSINESS_WIDE),
        "shard": f"id % {TALLY_SHARDS}",
        **{name: str(int(counts.get(name, 0))) for name in TALLIES},
    }
    day = sa.bindparam("tally_day", type_=sa.Date)
    return adding_from(DailyTally.__table__, ("day", "installer_id", "shard"), values, source, day)


def tally_day_of(moment: datetime) -> dict[str, date]:
    """The parameter of tallying_from's day."""
    return {"tally_day": business_today(moment)}


@dataclass
class PeriodTallies:
    """Business-wide tallies per day, and each installer's summed over the period."""

    per_day: dict[date, dict[str, int]] = field(default_factory=dict)
    per_installer: dict[int, dict[str, int]] = field(default_factory=dict)


@cache
def _period_statement() -> sa.Select:
    """Built once, its days parameters: building the 16 sums took longer than running them."""
    day_if_business_wide = sa.case((DailyTally.installer_id == BUSINESS_WIDE, DailyTally.day))
    return (
        sa.select(
            day_if_business_wide,
            DailyTally.installer_id,
            *(sa.func.sum(getattr(DailyTally, name)) for name in TALLIES),
        )
        .where(
            DailyTally.day >= sa.bindparam("first_day", type_=sa.Date),
            DailyTally.day <= sa.bindparam("last_day", type_=sa.Date),
        )
        .group_by(day_if_business_wide, DailyTally.installer_id)
    )


def tallies_between(first_day: date, last_day: date) -> PeriodTallies:
    """One statement: a few rows a day (TALLY_SHARDS business-wide, one per active installer)."""
    result = PeriodTallies()
    rows = db.session.execute(_period_statement(), {"first_day": first_day, "last_day": last_day})
    for day, installer_id, *numbers in rows:
        sums = dict(zip(TALLIES, map(int, numbers), strict=True))
        if installer_id == BUSINESS_WIDE:
            result.per_day[day] = sums
        else:
            result.per_installer[installer_id] = sums
    return result


# Recounting from the records ----------------------------------------------------------------


@dataclass(frozen=True)
class Source:
    """Where tallies come from: a table's moment column puts a row on its day; each tally
    counts the rows matching its condition (None: every row with a moment)."""

    moment: sa.orm.InstrumentedAttribute
    installer_id: sa.orm.InstrumentedAttribute | None
    tallies: dict[str, sa.ColumnElement[bool] | None]


def _sources() -> list[Source]:
    from ied.delivery.models import Assignment, DeliveryAudit
    from ied.finance.models import ReturnRequest
    from ied.followups.models import CLOSED_FOLLOW_UP_STATUSES, FollowUp
    from ied.leads.models import Lead

    closed = FollowUp.status.in_(CLOSED_FOLLOW_UP_STATUSES)
    return [
        Source(Lead.created_at, None, {"leads_created": None}),
        Source(
            DeliveryAudit.finished_at,
            None,
            {
                "attempts_sent": DeliveryAudit.status == "sent",
                "attempts_failed": DeliveryAudit.status == "failed",
            },
        ),
        Source(
            Assignment.sent_at,
            Assignment.installer_id,
            {"deliveries_sent": None, "deliveries_opened": Assignment.first_opened_at.is_not(None)},
        ),
        Source(ReturnRequest.requested_at, ReturnRequest.installer_id, {"returns_requested": None}),
        Source(
            FollowUp.completed_at,
            FollowUp.installer_id,
            {
                "follow_ups_closed": closed,
                "follow_ups_satisfied": sa.and_(
                    closed, FollowUp.satisfaction_outcome == "satisfied"
                ),
                "follow_ups_mixed": sa.and_(closed, FollowUp.satisfaction_outcome == "mixed"),
                "follow_ups_unsatisfied": sa.and_(
                    closed, FollowUp.satisfaction_outcome == "unsatisfied"
                ),
                "follow_ups_with_issue": sa.and_(closed, FollowUp.has_issue),
            },
        ),
    ]


def _business_days(days: list[date]) -> sa.Subquery:
    """One row per business day (index, start, end), for a range join on a moment's index."""
    rows = [
        sa.select(
            sa.literal(index).label("day"),
            sa.literal(starts, UTCDateTime).label("starts"),
            sa.literal(ends, UTCDateTime).label("ends"),
        )
        for index, (starts, ends) in enumerate(day_bounds(day) for day in days)
    ]
    return sa.union_all(*rows).subquery("days")


Key = tuple[date, int]  # (day, installer_id)


def counted_tallies() -> dict[Key, dict[str, int]]:
    """Every tally counted from the records (a repair-time pass over each source's moment
    index, RECOUNT_DAYS_PER_STATEMENT days at a time; never a page)."""
    counted: dict[Key, dict[str, int]] = defaultdict(lambda: dict.fromkeys(TALLIES, 0))
    for source in _sources():
        first, last = db.session.execute(
            sa.select(sa.func.min(source.moment), sa.func.max(source.moment))
        ).one()
        if first is None:
            continue
        by_installer = [] if source.installer_id is None else [source.installer_id]
        day = business_today(first)
        while day <= business_today(last):
            chunk = [day + timedelta(days=offset) for offset in range(RECOUNT_DAYS_PER_STATEMENT)]
            days = _business_days(chunk)
            rows = db.session.execute(
                sa.select(
                    days.c.day,
                    *(by_installer or [sa.literal(BUSINESS_WIDE)]),
                    *(
                        sa.func.count() if condition is None else sa.func.count().filter(condition)
                        for condition in source.tallies.values()
                    ),
                )
                .select_from(days)
                .join(
                    source.moment.class_,
                    sa.and_(source.moment >= days.c.starts, source.moment < days.c.ends),
                )
                .group_by(days.c.day, *by_installer)
            )
            for index, installer_id, *numbers in rows:
                sums = counted[(chunk[index], installer_id)]
                for name, number in zip(source.tallies, numbers, strict=True):
                    sums[name] = number
            day += timedelta(days=RECOUNT_DAYS_PER_STATEMENT)
    return {key: sums for key, sums in counted.items() if any(sums.values())}


def kept_tallies() -> dict[Key, dict[str, int]]:
    return {
        (row.day, row.installer_id): {name: int(row._mapping[name]) for name in TALLIES}
        for row in db.session.execute(
            sa.select(
                DailyTally.day,
                DailyTally.installer_id,
                *(sa.func.sum(getattr(DailyTally, name)).label(name) for name in TALLIES),
            ).group_by(DailyTally.day, DailyTally.installer_id)
        )
        if any(row._mapping[name] for name in TALLIES)
    }


@dataclass(frozen=True)
class TallyDrift:
    day: date
    installer_id: int
    tally: str
    kept: int
    counted: int


def tally_drift() -> list[TallyDrift]:
    """Every tally that differs from a direct count of the records it stands for."""
    return _drift(kept_tallies(), counted_tallies())


def _drift(kept: dict[Key, dict[str, int]], counted: dict[Key, dict[str, int]]) -> list[TallyDrift]:
    zero = dict.fromkeys(TALLIES, 0)
    return [
        TallyDrift(day, installer_id, name, kept_sums[name], counted_sums[name])
        for day, installer_id in sorted(kept.keys() | counted.keys())
        for kept_sums, counted_sums in [
            (kept.get((day, installer_id), zero), counted.get((day, installer_id), zero))
        ]
        for name in TALLIES
        if kept_sums[name] != counted_sums[name]
    ]


def rebuild_tallies() -> list[TallyDrift]:
    """Recount every tally from the records; returns what was wrong.

    On PostgreSQL the table is locked against writers first: a service adding to a tally
    meanwhile waits, and adds its event after the rebuild (which could not see it uncommitted).
    """
    if db.session.get_bind().dialect.name == "postgresql":
        db.session.execute(sa.text("LOCK TABLE daily_tallies IN EXCLUSIVE MODE"))
    counted = counted_tallies()
    drift = _drift(kept_tallies(), counted)
    if drift:
        db.session.execute(sa.delete(DailyTally))
        db.session.execute(
            sa.insert(DailyTally),
            [
                {"day": day, "installer_id": installer_id, "shard": 0, **sums}
                for (day, installer_id), sums in counted.items()
            ],
        )
    return drift
