"""Due states are computed by the database against business-day edges in Europe/London."""

from datetime import UTC, date, datetime

import pytest
import sqlalchemy as sa

from ied.extensions import db
from ied.followups.models import FollowUp
from ied.followups.queries import (
    days_overdue,
    due_state_counts,
    due_state_of,
    follow_up_filter,
    follow_up_page,
)
from ied.followups.services import due_at_end_of
from tests.support.follow_ups import make_follow_up


@pytest.fixture
def due_at(make_lead, make_installer, operator):
    """Follow-ups due at given instants; returns {instant: follow-up id}."""

    def build(*instants: datetime) -> dict[datetime, int]:
        return {at: make_follow_up(make_lead, make_installer, operator, at).id for at in instants}

    return build


def states(made: dict[datetime, int], now: datetime) -> dict[datetime, str]:
    by_id = {}
    for due in ("overdue", "due_today", "upcoming", "done"):
        for follow_up_id in db.session.scalars(
            sa.select(FollowUp.id).where(*follow_up_filter(due=due, now=now))
        ):
            by_id[follow_up_id] = due
    return {at: by_id[follow_up_id] for at, follow_up_id in made.items()}


def utc(*parts) -> datetime:
    return datetime(*parts, tzinfo=UTC)


def test_the_edges_of_a_winter_day(app, due_at):
    now = utc(2030, 1, 15, 10, 0)  # GMT: local time is UTC
    made = due_at(
        utc(2030, 1, 14, 23, 59, 59),  # yesterday's last second
        utc(2030, 1, 15, 9, 59, 59),  # a second ago
        now,  # this very instant: not yet late
        utc(2030, 1, 15, 23, 59, 59),  # today's last second
        utc(2030, 1, 16, 0, 0),  # tomorrow's first instant
    )
    assert list(states(made, now).values()) == [
        "overdue",
        "overdue",
        "due_today",
        "due_today",
        "upcoming",
    ]
    assert due_state_counts(now) == {"overdue": 2, "due_today": 2, "upcoming": 1, "done": 0}
    for at, follow_up_id in made.items():  # the row's own state agrees with the filters
        assert due_state_of(follow_up_id, now) == states(made, now)[at]


def test_the_short_day_when_clocks_go_forward(app, due_at):
    # Sunday 31 March 2030 in London lasts 23 hours: 00:00 GMT to 00:00 BST (23:00 UTC).
    now = utc(2030, 3, 31, 12, 0)
    made = due_at(
        utc(2030, 3, 31, 22, 59, 59),  # 23:59:59 BST: still today
        utc(2030, 3, 31, 23, 0),  # 00:00 BST on 1 April: tomorrow, though the UTC date is today
        utc(2030, 3, 30, 23, 59),  # 23:59 GMT on the 30th: yesterday
    )
    assert list(states(made, now).values()) == ["due_today", "upcoming", "overdue"]
    assert due_at_end_of(date(2030, 3, 31)) == utc(2030, 3, 31, 22, 59, 59)


def test_the_long_day_when_clocks_go_back(app, due_at):
    # Sunday 27 October 2030 in London lasts 25 hours: 23:00 UTC on the 26th to 00:00 UTC.
    now = utc(2030, 10, 26, 23, 30)  # 00:30 BST on the 27th, while UTC still says the 26th
    made = due_at(
        utc(2030, 10, 26, 22, 59, 59),  # 23:59:59 BST on the 26th
        utc(2030, 10, 26, 23, 45),  # 00:45 BST on the 27th
        utc(2030, 10, 27, 23, 59, 59),  # 23:59:59 GMT on the 27th: the long day's last second
        utc(2030, 10, 28, 0, 0),  # Monday
    )
    assert list(states(made, now).values()) == ["overdue", "due_today", "due_today", "upcoming"]
    assert due_at_end_of(date(2030, 10, 27)) == utc(2030, 10, 27, 23, 59, 59)


def test_days_overdue_counts_business_days_across_a_clock_change(app):
    # Due at the end of Saturday 30 March; on Tuesday 2 April (BST) it is three days late.
    assert days_overdue(due_at_end_of(date(2030, 3, 30)), utc(2030, 4, 2, 8, 0)) == 3
    # 00:30 BST on 1 April is still 31 March in UTC: a day late by the business calendar.
    assert days_overdue(due_at_end_of(date(2030, 3, 31)), utc(2030, 3, 31, 23, 30)) == 1


def test_a_closed_follow_up_is_done_whatever_its_due_date(app, due_at, operator):
    from ied.followups import services

    made = due_at(utc(2030, 1, 10, 12, 0))
    follow_up = db.session.get(FollowUp, next(iter(made.values())))
    services.log_contact_attempt(follow_up, "reached_customer", operator)
    services.record_outcome(follow_up, services.Outcome(satisfaction_outcome="satisfied"), operator)
    services.close(follow_up, operator)
    db.session.commit()
    assert list(states(made, utc(2030, 1, 15)).values()) == ["done"]
    assert due_state_counts(utc(2030, 1, 15))["done"] == 1


def test_the_open_follow_up_conditions_repeat_the_partial_index_predicate(app):
    compiled = str(
        sa.select(FollowUp.id)
        .where(*follow_up_filter(due="overdue", now=utc(2030, 1, 1)))
        .compile(db.engine)
    )
    assert "status IN ('pending', 'in_progress')" in compiled


def test_keyset_pages_walk_every_follow_up_once_in_due_order(app, due_at):
    now = utc(2030, 1, 15, 10, 0)
    made = due_at(*(utc(2030, 1, 10 + day, hour) for day in range(4) for hour in (9, 15)))
    expected = [made[at] for at in sorted(made)]  # earliest due first
    walked, after = [], None
    while True:
        page = follow_up_page(now=now, page_size=3, after=after)
        walked += [row.follow_up.id for row in page.rows]
        if page.next_after is None:
            break
        after = page.next_after
    assert walked == expected
    overdue = follow_up_page("overdue", now=now, page_size=2)
    assert [row.follow_up.id for row in overdue.rows] == expected[:2]
    second = follow_up_page("overdue", now=now, page_size=2, after=overdue.next_after)
    assert [row.follow_up.id for row in second.rows] == expected[2:4]
    assert {row.due_state for row in second.rows} == {"overdue"}
    # The same statement, built once, answers for another moment: nothing is overdue yet.
    assert follow_up_page("overdue", now=utc(2030, 1, 1), page_size=2).rows == []
    assert due_state_counts(utc(2030, 1, 1))["upcoming"] == len(made)
