"""follow-ups keep their lead's searched fields, with the search indexes of their own

The follow-up list's search is the queue's (reference, email prefix, phone prefix, postcode
prefix, name by trigram). Read through the leads, a common name or a postcode area matched
thousands of leads at a million (Kelly: 13,000, about 75 ms to read them from the trigram
index, then each joined to its follow-up) for the page and each of its four counts: 210-300 ms.
A lead's fields never change after intake, so each follow-up keeps a copy, made with it, and
the search reads this table's indexes: Kelly's 1,276 follow-ups in 3-14 ms a statement.

Revision ID: c9e2a4f6b8d1
Revises: d4f6b8a0c2e4
Create Date: 2026-12-04 22:00:00

"""
import sqlalchemy as sa
from alembic import op


# revision identifiers, used by Alembic.
revision = 'c9e2a4f6b8d1'
down_revision = 'd4f6b8a0c2e4'
branch_labels = None
depends_on = None

# The follow-up's column, the lead's it copies, its type and whether it may be empty.
COPIES = (
    ("lead_reference", "reference", sa.String(length=32), False),
    ("customer_name", "customer_name", sa.String(length=200), False),
    ("email_normalized", "email_normalized", sa.String(length=254), True),
    ("phone_normalized", "phone_normalized", sa.String(length=20), True),
    ("postcode_normalized", "postcode_normalized", sa.String(length=12), False),
)
PATTERN_COLUMNS = ("email_normalized", "phone_normalized", "postcode_normalized")


def upgrade():
    with op.batch_alter_table("follow_ups") as batch_op:
        for column, _, type_, _ in COPIES:
            batch_op.add_column(sa.Column(column, type_, nullable=True))
    op.execute(
        "UPDATE follow_ups SET "
        + ", ".join(
            f"{column} = (SELECT leads.{lead_column} FROM leads WHERE leads.id = follow_ups.lead_id)"
            for column, lead_column, _, _ in COPIES
        )
    )
    with op.batch_alter_table("follow_ups") as batch_op:
        for column, _, type_, nullable in COPIES:
            if not nullable:
                batch_op.alter_column(column, existing_type=type_, nullable=False)
    op.create_index("ix_follow_ups_lead_reference", "follow_ups", ["lead_reference"])
    for column in PATTERN_COLUMNS:
        op.create_index(
            f"ix_follow_ups_{column}",
            "follow_ups",
            [column],
            postgresql_ops={column: "varchar_pattern_ops"},
        )
    # pg_trgm is there since 7c2d9a41b3e5 (the leads' name search).
    op.create_index(
        "ix_follow_ups_customer_name_search",
        "follow_ups",
        ["customer_name"],
        postgresql_using="gin",
        postgresql_ops={"customer_name": "gin_trgm_ops"},
    )


def downgrade():
    op.drop_index("ix_follow_ups_customer_name_search", table_name="follow_ups")
    for column in PATTERN_COLUMNS:
        op.drop_index(f"ix_follow_ups_{column}", table_name="follow_ups")
    op.drop_index("ix_follow_ups_lead_reference", table_name="follow_ups")
    with op.batch_alter_table("follow_ups") as batch_op:
        for column, _, _, _ in reversed(COPIES):
            batch_op.drop_column(column)
