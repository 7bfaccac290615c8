"""Counts for tabs and filters that stay cheap however large a table grows.

Each count reads at most COUNT_CAP + 1 index entries and shows "1000+" beyond the cap: a hot
page never counts a whole table, and nobody needs the exact size of a four-figure backlog.
"""

import sqlalchemy as sa

COUNT_CAP = 1000


class CappedCount(int):
    """An int that knows how to show itself once it passes the cap."""

    @property
    def label(self) -> str:
        return f"{COUNT_CAP}+" if self > COUNT_CAP else str(int(self))


def capped_count(rows: sa.Select) -> sa.ScalarSelect:
    """A scalar subquery counting the rows of `rows`, stopping after COUNT_CAP + 1."""
    return (
        sa.select(sa.func.count())
        .select_from(rows.limit(COUNT_CAP + 1).subquery())
        .scalar_subquery()
    )
