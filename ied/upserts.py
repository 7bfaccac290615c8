"""INSERT ... ON CONFLICT for the database in use (PostgreSQL in production, SQLite for
`make run`): the counters the services keep in the same transaction as what they count."""

from functools import cache

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from ied.extensions import db


def upsert(table: sa.Table):
    """A Core INSERT that takes `.on_conflict_do_update(...)`; no ORM flush first."""
    dialect = db.session.get_bind().dialect.name
    return (postgresql if dialect == "postgresql" else sqlite).insert(table)


@cache
def _adding(table: sa.Table, columns: tuple[str, ...], keys: tuple[str, ...], rows: int):
    """The statement text, built once per shape. SQLAlchemy does not cache the compiled form
    of an insert().on_conflict_do_update() (no cache key), and compiling it again on every
    intake and delivery cost more than running it; a text() is compiled once. Both dialects
    read the same SQL."""
    values = ", ".join(
        "(" + ", ".join(f":{column}_{row}" for column in columns) + ")" for row in range(rows)
    )
    added = ", ".join(
        f"{column} = {table.name}.{column} + excluded.{column}"
        for column in columns
        if column not in keys
    )
    return sa.text(
        f"INSERT INTO {table.name} ({', '.join(columns)}) VALUES {values} "
        f"ON CONFLICT ({', '.join(keys)}) DO UPDATE SET {added}"
    ).bindparams(
        *(
            sa.bindparam(f"{column}_{row}", type_=table.c[column].type)
            for row in range(rows)
            for column in columns
        )
    )


def add_to_counters(table: sa.Table, keys: tuple[str, ...], rows: list[dict]) -> None:
    """Add each row's values to the counter row its `keys` name (creating it at those values),
    in one statement. Every row names the same columns."""
    columns = tuple(rows[0])
    db.session.execute(
        _adding(table, columns, keys, len(rows)),
        {f"{column}_{index}": row[column] for index, row in enumerate(rows) for column in columns},
    )
