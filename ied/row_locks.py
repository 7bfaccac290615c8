"""Row locks on PostgreSQL, and their nearest equivalent on SQLite.

PostgreSQL serialises competing writers with SELECT ... FOR UPDATE. SQLite ignores FOR UPDATE,
so there (development, `make run`) a no-op UPDATE of the same rows takes the database's write
lock instead: competing writers queue up one at a time until the holder commits, and the rules
that rely on row locks hold on both.
"""

from collections.abc import Iterable

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Engine

from ied.extensions import db


def lock_rows(model, ids: Iterable[int]) -> None:
    """Call before the SELECT ... FOR UPDATE that loads the rows."""
    ids = sorted(set(ids))
    if not ids or db.session.get_bind().dialect.name != "sqlite":
        return
    table = model.__table__.name
    db.session.execute(
        sa.text(f"UPDATE {table} SET id = id WHERE id IN :ids").bindparams(
            sa.bindparam("ids", expanding=True)
        ),
        {"ids": ids},
    )


def configure_sqlite(engine: Engine) -> None:
    if engine.dialect.name != "sqlite":
        return

    @event.listens_for(engine, "connect")
    def on_connect(dbapi_connection, connection_record):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")  # wait for the write lock, don't fail
        if engine.url.database not in (None, "", ":memory:"):
            cursor.execute("PRAGMA journal_mode=WAL")  # readers never wait on the writer
        cursor.close()
