"""cycle billing counters: billed deliveries per installer and cycle, kept with each event and void

Cap checks and cycle usage read one row per installer instead of counting its delivery
events; the counters start from the events already there.

Revision ID: f1a7c3d2b8e1
Revises: a3c7e1f20b64
Create Date: 2026-12-01 20:00:00

"""
import sqlalchemy as sa
from alembic import op


# revision identifiers, used by Alembic.
revision = 'f1a7c3d2b8e1'
down_revision = 'a3c7e1f20b64'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "cycle_billing",
        sa.Column("installer_id", sa.Integer(), nullable=False),
        sa.Column("billing_cycle", sa.String(length=7), nullable=False),
        sa.Column("billed_count", sa.Integer(), nullable=False),
        sa.Column("billed_amount", sa.Numeric(precision=12, scale=2), nullable=False),
        sa.Column("voided_count", sa.Integer(), nullable=False),
        sa.Column("voided_amount", sa.Numeric(precision=12, scale=2), nullable=False),
        sa.ForeignKeyConstraint(
            ["installer_id"], ["installers.id"], name=op.f("fk_cycle_billing_installer_id_installers")
        ),
        sa.PrimaryKeyConstraint("installer_id", "billing_cycle", name=op.f("pk_cycle_billing")),
    )
    op.execute(
        """
        INSERT INTO cycle_billing
            (installer_id, billing_cycle, billed_count, billed_amount, voided_count, voided_amount)
        SELECT installer_id, billing_cycle,
            count(*) FILTER (WHERE voided_at IS NULL),
            coalesce(sum(price) FILTER (WHERE voided_at IS NULL), 0),
            count(*) FILTER (WHERE voided_at IS NOT NULL),
            coalesce(sum(price) FILTER (WHERE voided_at IS NOT NULL), 0)
        FROM delivery_events GROUP BY installer_id, billing_cycle
        """
    )


def downgrade():
    op.drop_table("cycle_billing")
