"""Count the SQL statements a block of code sends, to show a page's queries do not grow."""

from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa

from ied.extensions import db


@contextmanager
def recorded_statements() -> Iterator[list[str]]:
    """The statements sent inside the block, in order; clear the list to start counting again."""
    statements: list[str] = []

    def record(connection, cursor, statement, *args) -> None:
        statements.append(statement)

    sa.event.listen(db.engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", record)
