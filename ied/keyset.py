"""Keyset pagination on (created_at, id): the cursor a page hands to the next one."""

from datetime import datetime
from typing import Protocol

import sqlalchemy as sa

from ied.timestamps import UTCDateTime


class Positioned(Protocol):
    id: int
    created_at: datetime


def encode_cursor(row: Positioned) -> str:
    return f"{row.created_at.isoformat()}~{row.id}"


def decode_cursor(cursor: str | None) -> tuple[datetime, int] | None:
    """The (created_at, id) a cursor names; None for anything that is not a cursor."""
    if not cursor or "~" not in cursor:
        return None
    moment, _, row_id = cursor.rpartition("~")
    try:
        position = datetime.fromisoformat(moment), int(row_id)
    except ValueError:
        return None
    return position if position[0].tzinfo is not None else None


def cursor_position(cursor: tuple[datetime, int]) -> sa.Tuple:
    moment, row_id = cursor
    return sa.tuple_(sa.literal(moment, UTCDateTime), sa.literal(row_id))
