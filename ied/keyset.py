"""Keyset pagination on (created_at, id): the cursor a page hands to the next one."""

from datetime import UTC, datetime
from typing import Protocol

import sqlalchemy as sa

from ied.input_limits import is_id
from ied.timestamps import UTCDateTime


class Positioned(Protocol):
    id: int
    created_at: datetime


def encode_cursor(row: Positioned) -> str:
    return f"{row.created_at.isoformat()}~{row.id}"


def decode_cursor(cursor: str | None) -> tuple[datetime, int] | None:
    """The (created_at, id) a cursor names; None for anything that is not a cursor, or names
    a position no row can have: an id outside PostgreSQL's integer, a moment with no UTC
    instant (year 1 at +14:00), which the database could not be asked about."""
    if not cursor or "~" not in cursor:
        return None
    moment, _, row_id = cursor.rpartition("~")
    try:
        position = datetime.fromisoformat(moment), int(row_id)
    except ValueError:
        return None
    if position[0].tzinfo is None or not is_id(position[1]):
        return None
    try:
        position[0].astimezone(UTC)
    except OverflowError:
        return None
    return position


def cursor_position(cursor: tuple[datetime, int]) -> sa.Tuple:
    moment, row_id = cursor
    return sa.tuple_(sa.literal(moment, UTCDateTime), sa.literal(row_id))
