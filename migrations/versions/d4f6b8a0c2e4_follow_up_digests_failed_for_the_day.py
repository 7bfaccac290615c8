"""follow_up_digests: "failed" for a digest the mail server refused for good that day

A permanent refusal (5xx, an address SMTP cannot carry) used to give the claim back like a
transient one, so the next run a minute later tried again, all day. It now keeps the day's row
as "failed" with the server's reply; tomorrow's digest is tried as usual.

Revision ID: d4f6b8a0c2e4
Revises: c3e5a7b9d1f2
Create Date: 2026-12-04 02:40:00

"""
from alembic import op


# revision identifiers, used by Alembic.
revision = 'd4f6b8a0c2e4'
down_revision = 'c3e5a7b9d1f2'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("follow_up_digests", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_follow_up_digests_status"), type_="check")
        batch_op.create_check_constraint(
            op.f("ck_follow_up_digests_status"),
            "status IN ('sending', 'sent', 'skipped', 'failed')",
        )


def downgrade():
    op.execute("DELETE FROM follow_up_digests WHERE status = 'failed'")
    with op.batch_alter_table("follow_up_digests", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_follow_up_digests_status"), type_="check")
        batch_op.create_check_constraint(
            op.f("ck_follow_up_digests_status"), "status IN ('sending', 'sent', 'skipped')"
        )
