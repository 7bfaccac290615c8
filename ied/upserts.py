"""INSERT ... ON CONFLICT for the database in use (PostgreSQL in production, SQLite for
`make run`): both dialects spell it the same way in SQLAlchemy, from different modules."""

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from ied.extensions import db


def upsert(table: sa.Table):
    """A Core INSERT that takes `.on_conflict_do_update(...)`; no ORM flush first."""
    dialect = db.session.get_bind().dialect.name
    return (postgresql if dialect == "postgresql" else sqlite).insert(table)
