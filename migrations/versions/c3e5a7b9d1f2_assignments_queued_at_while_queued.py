"""assignments: queued ones by queued_at, for "queued longer than the alert setting"

The dashboard's count of deliveries needing action (and its list) filters queued assignments
by how long they have waited; with only (status, created_at) to go by, each count read the
queued rows themselves for their queued_at (about 300 rows at a million leads). A partial index
of the queued ones alone answers it from the index, and stays as small as the queue.

Revision ID: c3e5a7b9d1f2
Revises: b8d4e2f6a1c3
Create Date: 2026-12-02 03:30:00

"""
import sqlalchemy as sa
from alembic import op


# revision identifiers, used by Alembic.
revision = 'c3e5a7b9d1f2'
down_revision = 'b8d4e2f6a1c3'
branch_labels = None
depends_on = None

QUEUED = "status = 'queued'"


def upgrade():
    op.create_index(
        "ix_assignments_queued_at",
        "assignments",
        ["queued_at"],
        postgresql_where=sa.text(QUEUED),
        sqlite_where=sa.text(QUEUED),
    )


def downgrade():
    op.drop_index("ix_assignments_queued_at", table_name="assignments")
