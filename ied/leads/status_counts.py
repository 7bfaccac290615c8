"""Leads per status now, without counting a million rows: a counter kept with every change.

The lifecycle service calls `count_status_change` in the transaction that creates a lead or
moves it, so the counter commits or rolls back with the change itself. `rebuild` recounts from
the leads table (the repair command, and after a bulk load that bypassed the service).
"""

import sqlalchemy as sa

from ied.extensions import db
from ied.leads.models import LEAD_STATUSES, Lead, LeadStatusCount
from ied.upserts import add_to_counters, adding_from

STATUS_COUNT_SHARDS = 16


def count_status_change(lead_id: int, from_status: str | None, to_status: str) -> None:
    """One lead entered `to_status` (and left `from_status`, unless it is new)."""
    shard = lead_id % STATUS_COUNT_SHARDS
    rows = [{"status": to_status, "shard": shard, "lead_count": 1}]
    if from_status is not None:
        rows.append({"status": from_status, "shard": shard, "lead_count": -1})
    add_to_counters(LeadStatusCount.__table__, ("status", "shard"), rows)


def counting_new_leads(created: sa.CTE) -> sa.CTE:
    """count_status_change(id, None, status) for each lead `created` returns, inside the
    statement that inserts them (PostgreSQL)."""
    return adding_from(
        LeadStatusCount.__table__,
        ("status", "shard"),
        {"status": "status", "shard": f"id % {STATUS_COUNT_SHARDS}", "lead_count": "1"},
        created,
    )


_COUNTS = sa.select(LeadStatusCount.status, sa.func.sum(LeadStatusCount.lead_count)).group_by(
    LeadStatusCount.status
)


def status_count_columns() -> list[sa.ScalarSelect]:
    """Each lifecycle status's number of leads as a column, in lifecycle order: for a page
    that reads them in a statement of its own."""
    return [
        sa.select(sa.func.coalesce(sa.func.sum(LeadStatusCount.lead_count), 0))
        .where(LeadStatusCount.status == status)
        .scalar_subquery()
        for status in LEAD_STATUSES
    ]


def lead_status_counts() -> dict[str, int]:
    """Every lifecycle status with its number of leads, in lifecycle order."""
    counted = dict(db.session.execute(_COUNTS).all())
    return {status: int(counted.get(status) or 0) for status in LEAD_STATUSES}


def rebuild() -> dict[str, int]:
    """Recount from the leads table (one scan: a repair, never a page). Returns the counts."""
    db.session.execute(sa.delete(LeadStatusCount))
    shard = Lead.id % STATUS_COUNT_SHARDS
    db.session.execute(
        sa.insert(LeadStatusCount).from_select(
            ["status", "shard", "lead_count"],
            sa.select(Lead.status, shard, sa.func.count()).group_by(Lead.status, shard),
        )
    )
    return lead_status_counts()
