"""finance: installer return requests, per-installer return limit, finance list indexes

Revision ID: a3e9b5c7d1f2
Revises: b7e1f0c2d9a4
Create Date: 2026-12-01 20:30:00

"""
import sqlalchemy as sa
from alembic import op


# revision identifiers, used by Alembic.
revision = 'a3e9b5c7d1f2'
down_revision = 'b7e1f0c2d9a4'
branch_labels = None
depends_on = None

VOIDED = sa.text("voided_at IS NOT NULL")


def upgrade():
    op.create_table(
        "return_requests",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("delivery_event_id", sa.Integer(), nullable=False),
        sa.Column("installer_id", sa.Integer(), nullable=False),
        sa.Column("billing_cycle", sa.String(length=7), nullable=False),
        sa.Column("reason", sa.String(length=32), nullable=False),
        sa.Column("reason_text", sa.Text(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("decided_by_id", sa.Integer(), nullable=True),
        sa.Column("remark", sa.Text(), nullable=True),
        sa.CheckConstraint(
            "reason IN ('wrong_contact_details', 'customer_unreachable', 'outside_my_area', "
            "'duplicate', 'other')",
            name=op.f("ck_return_requests_reason"),
        ),
        sa.CheckConstraint(
            "status IN ('pending', 'approved', 'rejected')", name=op.f("ck_return_requests_status")
        ),
        sa.CheckConstraint(
            "reason <> 'other' OR reason_text IS NOT NULL",
            name=op.f("ck_return_requests_other_has_text"),
        ),
        sa.ForeignKeyConstraint(
            ["decided_by_id"], ["users.id"], name=op.f("fk_return_requests_decided_by_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["delivery_event_id"],
            ["delivery_events.id"],
            name=op.f("fk_return_requests_delivery_event_id_delivery_events"),
        ),
        sa.ForeignKeyConstraint(
            ["installer_id"], ["installers.id"], name=op.f("fk_return_requests_installer_id_installers")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_return_requests")),
        sa.UniqueConstraint("delivery_event_id", name=op.f("uq_return_requests_delivery_event_id")),
    )
    with op.batch_alter_table("return_requests", schema=None) as batch_op:
        batch_op.create_index("ix_return_requests_status_id", ["status", "id"], unique=False)
        batch_op.create_index(
            "ix_return_requests_installer_id_billing_cycle",
            ["installer_id", "billing_cycle"],
            unique=False,
        )
    with op.batch_alter_table("installers", schema=None) as batch_op:
        batch_op.add_column(sa.Column("return_limit_percent", sa.Integer(), nullable=True))
        batch_op.create_check_constraint(
            op.f("ck_installers_return_limit_percent"),
            "return_limit_percent IS NULL OR return_limit_percent BETWEEN 0 AND 100",
        )
    with op.batch_alter_table("delivery_events", schema=None) as batch_op:
        batch_op.create_index("ix_delivery_events_billing_cycle_id", ["billing_cycle", "id"])
        batch_op.create_index("ix_delivery_events_installer_id_id", ["installer_id", "id"])
        batch_op.create_index(
            "ix_delivery_events_voided_id", ["id"], postgresql_where=VOIDED, sqlite_where=VOIDED
        )


def downgrade():
    with op.batch_alter_table("delivery_events", schema=None) as batch_op:
        batch_op.drop_index("ix_delivery_events_voided_id", postgresql_where=VOIDED, sqlite_where=VOIDED)
        batch_op.drop_index("ix_delivery_events_installer_id_id")
        batch_op.drop_index("ix_delivery_events_billing_cycle_id")
    with op.batch_alter_table("installers", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_installers_return_limit_percent"), type_="check")
        batch_op.drop_column("return_limit_percent")
    op.drop_table("return_requests")
