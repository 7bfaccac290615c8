"""activity entries: the activity log

One row per state change anywhere in the product. Indexed for the lead page's timeline
(lead_id, created_at, id) and for the managers' log: keyset pages on (created_at, id), alone
and under each filter (verb, actor, subject type), and a record's own history by subject.

Revision ID: a3c7e1f20b64
Revises: c94fa43e8c30
Create Date: 2026-12-01 19:55:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'a3c7e1f20b64'
down_revision = 'c94fa43e8c30'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "activity_entries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor_id", sa.Integer(), nullable=True),
        sa.Column("actor_label", sa.String(length=254), nullable=False),
        sa.Column("verb", sa.String(length=64), nullable=False),
        sa.Column("subject_type", sa.String(length=32), nullable=False),
        sa.Column("subject_id", sa.Integer(), nullable=False),
        sa.Column("lead_id", sa.Integer(), nullable=True),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["actor_id"], ["users.id"], name=op.f("fk_activity_entries_actor_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["lead_id"], ["leads.id"], name=op.f("fk_activity_entries_lead_id_leads")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_activity_entries")),
    )
    with op.batch_alter_table("activity_entries") as batch_op:
        batch_op.create_index(
            "ix_activity_entries_lead_id_created_at_id", ["lead_id", "created_at", "id"]
        )
        batch_op.create_index("ix_activity_entries_created_at_id", ["created_at", "id"])
        batch_op.create_index(
            "ix_activity_entries_verb_created_at_id", ["verb", "created_at", "id"]
        )
        batch_op.create_index(
            "ix_activity_entries_actor_id_created_at_id", ["actor_id", "created_at", "id"]
        )
        batch_op.create_index(
            "ix_activity_entries_subject_type_created_at_id",
            ["subject_type", "created_at", "id"],
        )
        batch_op.create_index("ix_activity_entries_subject", ["subject_type", "subject_id"])


def downgrade():
    op.drop_table("activity_entries")
