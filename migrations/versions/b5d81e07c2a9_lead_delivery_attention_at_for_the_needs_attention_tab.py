"""lead delivery_attention_at for the Needs-attention tab

The Needs-attention tab and its count joined failed and queued assignments back to leads on
every /leads request (~15 ms at a million leads, growing with the failed backlog). The delivery
services now keep on each lead the moment its deliveries start needing attention (a failure,
or a queued delivery's queued_at + 15 minutes), and a partial index holds only those leads.
The backfill computes it from the assignments as the services do.

Revision ID: b5d81e07c2a9
Revises: a3e9b5c7d1f2
Create Date: 2026-12-01 20:10:00

"""
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from alembic import op


# revision identifiers, used by Alembic.
revision = 'b5d81e07c2a9'
down_revision = 'a3e9b5c7d1f2'
branch_labels = None
depends_on = None

LONG_QUEUED = timedelta(minutes=15)


def upgrade():
    with op.batch_alter_table('leads', schema=None) as batch_op:
        batch_op.add_column(sa.Column('delivery_attention_at', sa.DateTime(timezone=True), nullable=True))
    bind = op.get_bind()
    attention = {}
    rows = bind.execute(sa.text(
        "SELECT lead_id, status, queued_at FROM assignments WHERE status IN ('failed', 'queued')"
    ))
    for lead_id, status, queued_at in rows:
        if isinstance(queued_at, str):  # SQLite hands back text
            queued_at = datetime.fromisoformat(queued_at)
        if queued_at.tzinfo is None:
            queued_at = queued_at.replace(tzinfo=UTC)
        moment = queued_at if status == 'failed' else queued_at + LONG_QUEUED
        attention[lead_id] = min(moment, attention.get(lead_id, moment))
    if attention:
        naive = bind.dialect.name == 'sqlite'
        bind.execute(
            sa.text("UPDATE leads SET delivery_attention_at = :at WHERE id = :id"),
            [
                {"id": lead_id, "at": at.replace(tzinfo=None) if naive else at}
                for lead_id, at in attention.items()
            ],
        )
    op.create_index(
        'ix_leads_delivery_attention', 'leads', ['created_at', 'id'],
        postgresql_where=sa.text('delivery_attention_at IS NOT NULL'),
        postgresql_include=['delivery_attention_at'],
        sqlite_where=sa.text('delivery_attention_at IS NOT NULL'),
    )


def downgrade():
    op.drop_index('ix_leads_delivery_attention', table_name='leads')
    with op.batch_alter_table('leads', schema=None) as batch_op:
        batch_op.drop_column('delivery_attention_at')
