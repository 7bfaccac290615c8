"""daily tallies: what happened each business day, kept by the services, read by the dashboard

The dashboard's period figures (new leads and delivery attempts per day; per installer:
deliveries, opens, returns, follow-ups closed by satisfaction and issue) read a few rows a day
from `daily_tallies` instead of every record of the period. On PostgreSQL the tallies start
from the records already there, by business day (BUSINESS_TIMEZONE); on SQLite (the `make run`
database) run `flask --app wsgi ied check-daily-tallies --repair` once after upgrading.

Revision ID: e4c1a9d7b2f3
Revises: d5a8e1f0c2b7
Create Date: 2026-12-01 23:30:00

"""
import sqlalchemy as sa
from alembic import op
from flask import current_app


# revision identifiers, used by Alembic.
revision = 'e4c1a9d7b2f3'
down_revision = 'd5a8e1f0c2b7'
branch_labels = None
depends_on = None

TALLIES = (
    "leads_created",
    "attempts_sent",
    "attempts_failed",
    "deliveries_sent",
    "deliveries_opened",
    "returns_requested",
    "follow_ups_closed",
    "follow_ups_satisfied",
    "follow_ups_mixed",
    "follow_ups_unsatisfied",
    "follow_ups_with_issue",
)
CLOSED = "status IN ('completed', 'closed_with_issue')"
# (table, moment column, installer column or "0", {tally: condition})
SOURCES = (
    ("leads", "created_at", "0", {"leads_created": "true"}),
    (
        "delivery_audits",
        "finished_at",
        "0",
        {"attempts_sent": "status = 'sent'", "attempts_failed": "status = 'failed'"},
    ),
    (
        "assignments",
        "sent_at",
        "installer_id",
        {"deliveries_sent": "true", "deliveries_opened": "first_opened_at IS NOT NULL"},
    ),
    ("return_requests", "requested_at", "installer_id", {"returns_requested": "true"}),
    (
        "follow_ups",
        "completed_at",
        "installer_id",
        {
            "follow_ups_closed": CLOSED,
            "follow_ups_satisfied": f"{CLOSED} AND satisfaction_outcome = 'satisfied'",
            "follow_ups_mixed": f"{CLOSED} AND satisfaction_outcome = 'mixed'",
            "follow_ups_unsatisfied": f"{CLOSED} AND satisfaction_outcome = 'unsatisfied'",
            "follow_ups_with_issue": f"{CLOSED} AND has_issue",
        },
    ),
)


def upgrade():
    op.create_table(
        "daily_tallies",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("installer_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("shard", sa.Integer(), autoincrement=False, nullable=False),
        *(sa.Column(name, sa.Integer(), nullable=False) for name in TALLIES),
        sa.PrimaryKeyConstraint("day", "installer_id", "shard", name=op.f("pk_daily_tallies")),
    )
    if op.get_bind().dialect.name != "postgresql":
        return
    selects = []
    for table, moment, installer, tallies in SOURCES:
        sums = ", ".join(
            f"count(*) FILTER (WHERE {tallies[name]})" if name in tallies else "0"
            for name in TALLIES
        )
        group = "1" if installer == "0" else "1, 2"
        selects.append(
            f"SELECT (timezone(:zone, {moment}))::date, {installer}, {sums} FROM {table} "
            f"WHERE {moment} IS NOT NULL GROUP BY {group}"
        )
    columns = ", ".join(TALLIES)
    summed = ", ".join(f"sum({name})" for name in TALLIES)
    op.get_bind().execute(
        sa.text(
            f"INSERT INTO daily_tallies (day, installer_id, shard, {columns}) "
            f"SELECT day, installer_id, 0, {summed} FROM ("
            + " UNION ALL ".join(selects)
            + f") AS counted (day, installer_id, {columns}) GROUP BY day, installer_id"
        ),
        {"zone": current_app.config["BUSINESS_TIMEZONE"]},
    )


def downgrade():
    op.drop_table("daily_tallies")
