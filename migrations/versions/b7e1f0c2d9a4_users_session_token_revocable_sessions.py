"""users.session_token: sessions the server can end

Every session stores "<user id>:<session token>"; a new token (logout, password change or reset,
deactivation) refuses every cookie issued with the old one. Existing users get a random token
each, which signs out the sessions made before this release (they carried no token).

Revision ID: b7e1f0c2d9a4
Revises: f1a7c3d2b8e1
Create Date: 2026-12-01 20:05:00

"""
import secrets

import sqlalchemy as sa
from alembic import op


# revision identifiers, used by Alembic.
revision = 'b7e1f0c2d9a4'
down_revision = 'f1a7c3d2b8e1'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("users") as batch_op:
        batch_op.add_column(sa.Column("session_token", sa.String(length=64), nullable=True))
    users = sa.table("users", sa.column("id", sa.Integer), sa.column("session_token", sa.String))
    connection = op.get_bind()
    for (user_id,) in connection.execute(sa.select(users.c.id)).all():
        connection.execute(
            users.update()
            .where(users.c.id == user_id)
            .values(session_token=secrets.token_urlsafe(24))
        )
    with op.batch_alter_table("users") as batch_op:
        batch_op.alter_column("session_token", existing_type=sa.String(length=64), nullable=False)


def downgrade():
    with op.batch_alter_table("users") as batch_op:
        batch_op.drop_column("session_token")
