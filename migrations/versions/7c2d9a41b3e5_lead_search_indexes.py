"""lead search indexes: pattern opclasses for prefix search, trigram index for names

Revision ID: 7c2d9a41b3e5
Revises: 4e3ffd0509c9
Create Date: 2026-11-22 10:00:00.000000

"""
from alembic import op


# revision identifiers, used by Alembic.
revision = '7c2d9a41b3e5'
down_revision = '4e3ffd0509c9'
branch_labels = None
depends_on = None

PATTERN_INDEXES = (
    ("ix_leads_email_normalized_created_at", ["email_normalized", "created_at"], "email_normalized"),
    ("ix_leads_phone_normalized_created_at", ["phone_normalized", "created_at"], "phone_normalized"),
    ("ix_leads_postcode_normalized", ["postcode_normalized"], "postcode_normalized"),
)


def _is_postgresql() -> bool:
    return op.get_bind().dialect.name == "postgresql"


def upgrade():
    if _is_postgresql():
        op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        for name, columns, pattern_column in PATTERN_INDEXES:
            op.drop_index(name, table_name="leads")
            op.create_index(name, "leads", columns,
                            postgresql_ops={pattern_column: "varchar_pattern_ops"})
    op.create_index("ix_leads_customer_name_search", "leads", ["customer_name"],
                    postgresql_using="gin", postgresql_ops={"customer_name": "gin_trgm_ops"})


def downgrade():
    op.drop_index("ix_leads_customer_name_search", table_name="leads")
    if _is_postgresql():
        for name, columns, _ in PATTERN_INDEXES:
            op.drop_index(name, table_name="leads")
            op.create_index(name, "leads", columns)
