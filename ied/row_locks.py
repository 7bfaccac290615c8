"""Row locks on PostgreSQL, and their nearest equivalent on SQLite.

PostgreSQL serialises competing writers with SELECT ... FOR UPDATE. SQLite ignores FOR UPDATE,
so there (development, `make run`) a no-op UPDATE of the same rows takes the database's write
lock instead: competing writers queue up one at a time until the holder commits, and the rules
that rely on row locks hold on both.
"""

import re
from collections.abc import Iterable

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from ied.errors import NotFound
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


LOCKED_ROWS = "ied_locked_rows"


def load_locked(model, ids: Iterable[int]) -> list:
    """The rows, reloaded from the database under a row lock so concurrent changes queue
    behind this one. Locked in id order, so two lockers of the same rows never deadlock."""
    ids = sorted(set(ids))
    lock_rows(model, ids)
    rows = list(
        db.session.scalars(
            sa.select(model)
            .where(model.id.in_(ids))
            .order_by(model.id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
    )
    _remember_locked(rows)
    return rows


def lock_one(model, row_id: int):
    """One row under its lock (see load_locked), or NotFound naming what is missing. A row
    this transaction has already locked and loaded is not read again."""
    if (model, row_id) in db.session.info.get(LOCKED_ROWS, ()):
        return db.session.get(model, row_id)
    rows = load_locked(model, [row_id])
    if not rows:
        raise NotFound(f"No {_record_name(model)} has the id {row_id}.")
    return rows[0]


def lock_many(model, ids: Iterable[int]) -> list:
    """The rows under their locks, in id order (see load_locked), reading only those this
    transaction has not locked and loaded already."""
    ids = sorted(set(ids))
    locked = db.session.info.get(LOCKED_ROWS, ())
    unread = [row_id for row_id in ids if (model, row_id) not in locked]
    rows = {row.id: row for row in load_locked(model, unread)} if unread else {}
    return [rows.get(row_id) or db.session.get(model, row_id) for row_id in ids]


def lock_next(model, condition, order_by, limit: int) -> list:
    """Up to `limit` rows matching `condition`, in `order_by` order, under their locks, passing
    over rows another transaction holds (SKIP LOCKED): concurrent takers get different rows.
    SQLite has no row locks: there a no-op UPDATE of the rows takes the write lock first."""
    chosen = sa.select(model.id).where(condition).order_by(*order_by).limit(limit)
    if db.session.get_bind().dialect.name == "sqlite":
        db.session.execute(sa.update(model).where(model.id.in_(chosen)).values(id=model.id))
    rows = list(
        db.session.scalars(
            sa.select(model)
            .where(condition)
            .order_by(*order_by)
            .limit(limit)
            .with_for_update(skip_locked=True)
            .execution_options(populate_existing=True)
        )
    )
    _remember_locked(rows)
    return rows


def lock_where(model, condition, loads=()):
    """The one row matching condition, loaded under its lock in one statement (the lock
    covers that table's row only, not the rows of joined loads), or None."""
    if db.session.get_bind().dialect.name == "sqlite":
        db.session.execute(sa.update(model).where(condition).values(id=model.id))
    row = (
        db.session.scalars(
            sa.select(model)
            .where(condition)
            .options(*loads)
            .with_for_update(of=model)
            .execution_options(populate_existing=True)
        )
        .unique()
        .one_or_none()
    )
    if row is not None:
        _remember_locked([row])
    return row


def _remember_locked(rows: list) -> None:
    locked = db.session.info.setdefault(LOCKED_ROWS, set())
    locked.update((type(row), row.id) for row in rows)


@event.listens_for(Session, "after_transaction_end")
def _forget_locks(session, transaction) -> None:
    # Locks end with the transaction (a rolled-back savepoint releases its own too): forget
    # them all, so the next lock_one reads and locks again.
    session.info.pop(LOCKED_ROWS, None)


def _record_name(model) -> str:
    """FollowUp -> follow-up, Lead -> lead."""
    return re.sub(r"(?<!^)(?=[A-Z])", "-", model.__name__).lower()


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
