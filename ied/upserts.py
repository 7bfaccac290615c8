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


def _adding_sql(
    table: sa.Table,
    columns: tuple[str, ...],
    keys: tuple[str, ...],
    rows: str,
    added: tuple[str, ...] | None = None,
) -> str:
    """INSERT INTO table (columns) <rows> ON CONFLICT (keys) DO UPDATE adding the `added`
    columns (all but the keys when not given; nothing to add: DO NOTHING); `rows` is a VALUES
    list or a SELECT. Both dialects read it."""
    added = tuple(column for column in columns if column not in keys) if added is None else added
    update = ", ".join(f"{column} = {table.name}.{column} + excluded.{column}" for column in added)
    action = f"DO UPDATE SET {update}" if update else "DO NOTHING"
    return (
        f"INSERT INTO {table.name} ({', '.join(columns)}) {rows} "
        f"ON CONFLICT ({', '.join(keys)}) {action}"
    )


@cache
def _adding(table: sa.Table, columns: tuple[str, ...], keys: tuple[str, ...], rows: int):
    """The statement text, built once per shape. SQLAlchemy does not cache the compiled form
    of an insert().on_conflict_do_update() (no cache key), and compiling it again on every
    intake and delivery cost more than running it; a text() is compiled once."""
    values = ", ".join(
        "(" + ", ".join(f":{column}_{row}" for column in columns) + ")" for row in range(rows)
    )
    return sa.text(_adding_sql(table, columns, keys, f"VALUES {values}")).bindparams(
        *(
            sa.bindparam(f"{column}_{row}", type_=table.c[column].type)
            for row in range(rows)
            for column in columns
        )
    )


def adding_from(
    table: sa.Table,
    keys: tuple[str, ...],
    values: dict[str, str],
    source: sa.CTE,
    *binds: sa.BindParameter,
) -> sa.CTE:
    """A CTE adding one counter row per row of `source`, for PostgreSQL's data-modifying WITH:
    `values` gives each column's SQL, over the source's columns and the `binds` (:name). Text,
    so that the statement holding it keeps a cache key, as `_adding` does. A column whose SQL
    is "0" is written on a new row and left out of the update (adding 0 changes nothing)."""
    rows = f"SELECT {', '.join(values.values())} FROM {source.name}"
    added = tuple(column for column, sql in values.items() if column not in keys and sql != "0")
    text = sa.text(_adding_sql(table, tuple(values), keys, rows, added)).bindparams(*binds)
    return text.columns().cte(f"adding_to_{table.name}")


def add_to_counters(table: sa.Table, keys: tuple[str, ...], rows: list[dict]) -> None:
    """Add each row's values to the counter row its `keys` name (creating it at those values),
    in one statement. Every row names the same columns."""
    columns = tuple(rows[0])
    db.session.execute(
        _adding(table, columns, keys, len(rows)),
        {f"{column}_{index}": row[column] for index, row in enumerate(rows) for column in columns},
    )
