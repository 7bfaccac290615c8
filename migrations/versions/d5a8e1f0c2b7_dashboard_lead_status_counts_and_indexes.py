"""dashboard: lead status counts and the indexes of its period aggregates

`lead_status_counts` holds how many leads are in each status now (16 rows per status, kept by
the lifecycle service), filled here from the leads table. The indexes serve the
dashboard's bounded date-range aggregates: delivery attempts per day by status, deliveries and
opens per installer, follow-ups closed and returns asked for per installer.

Revision ID: d5a8e1f0c2b7
Revises: b5d81e07c2a9
Create Date: 2026-12-01 20:00:00

"""
import sqlalchemy as sa
from alembic import op


# revision identifiers, used by Alembic.
revision = 'd5a8e1f0c2b7'
down_revision = 'b5d81e07c2a9'
branch_labels = None
depends_on = None

SHARDS = 16


def upgrade():
    op.create_table(
        "lead_status_counts",
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("shard", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("lead_count", sa.Integer(), nullable=False),
        sa.CheckConstraint(
            "status IN ('new', 'reviewing', 'ready_to_route', 'assigned')",
            name=op.f("ck_lead_status_counts_status"),
        ),
        sa.PrimaryKeyConstraint("status", "shard", name=op.f("pk_lead_status_counts")),
    )
    op.execute(
        "INSERT INTO lead_status_counts (status, shard, lead_count) "
        f"SELECT status, id % {SHARDS}, count(*) FROM leads GROUP BY status, id % {SHARDS}"
    )
    op.create_index(
        "ix_delivery_audits_finished_at_status", "delivery_audits", ["finished_at", "status"]
    )
    op.create_index(
        "ix_assignments_sent_at_installer_opened",
        "assignments",
        ["sent_at", "installer_id", "first_opened_at"],
    )
    op.create_index("ix_follow_ups_completed_at", "follow_ups", ["completed_at"])
    op.create_index("ix_return_requests_requested_at", "return_requests", ["requested_at"])


def downgrade():
    op.drop_index("ix_return_requests_requested_at", table_name="return_requests")
    op.drop_index("ix_follow_ups_completed_at", table_name="follow_ups")
    op.drop_index("ix_assignments_sent_at_installer_opened", table_name="assignments")
    op.drop_index("ix_delivery_audits_finished_at_status", table_name="delivery_audits")
    op.drop_table("lead_status_counts")
