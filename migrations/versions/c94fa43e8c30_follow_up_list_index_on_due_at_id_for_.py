"""follow-up list index on due_at, id for the unfiltered list

The follow-up list without a due filter (its default view, and the open-issue filter's
ordering) is ORDER BY due_at, id LIMIT 51 over every status. No index served that order
(ix_follow_ups_open_due_at holds open ones only), so PostgreSQL read and sorted the whole
table on each view; `make bench` showed a Seq Scan of 99,012 follow-ups (~42 ms).

Revision ID: c94fa43e8c30
Revises: 7c2d9a41b3e5
Create Date: 2026-11-21 17:30:58.249273

"""
from alembic import op


# revision identifiers, used by Alembic.
revision = 'c94fa43e8c30'
down_revision = '7c2d9a41b3e5'
branch_labels = None
depends_on = None


def upgrade():
    op.create_index("ix_follow_ups_due_at_id", "follow_ups", ["due_at", "id"])


def downgrade():
    op.drop_index("ix_follow_ups_due_at_id", table_name="follow_ups")
