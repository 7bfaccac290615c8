"""record_activity: one row in the caller's transaction, naming who, what and which record."""

import pytest
import sqlalchemy as sa

from ied.activity.models import ActivityEntry
from ied.activity.services import record_activity
from ied.extensions import db


def _entries() -> list[ActivityEntry]:
    return list(db.session.scalars(sa.select(ActivityEntry).order_by(ActivityEntry.id)))


def test_an_entry_names_the_user_the_record_and_its_lead(make_lead, make_user):
    lead = make_lead()
    manager = make_user("manager")
    before = len(_entries())

    entry = record_activity(
        "lead.status_changed", lead, actor=manager, details={"from": "new", "to": "reviewing"}
    )

    assert len(_entries()) == before + 1
    assert (entry.actor_id, entry.actor_label) == (manager.id, manager.email)
    assert (entry.subject_type, entry.subject_id, entry.lead_id) == ("lead", lead.id, lead.id)
    assert entry.details == {"from": "new", "to": "reviewing"}
    assert entry.created_at is not None


def test_without_a_user_the_label_says_who_and_the_system_is_the_default(make_lead):
    lead = make_lead()

    installer_entry = record_activity(
        "lead.status_changed", lead, actor_label="installer Acme Solar"
    )
    system_entry = record_activity("lead.status_changed", lead)

    assert (installer_entry.actor_id, installer_entry.actor_label) == (
        None,
        "installer Acme Solar",
    )
    assert (system_entry.actor_id, system_entry.actor_label) == (None, "system")


def test_the_entry_is_part_of_the_callers_transaction(make_lead):
    lead = make_lead()
    before = len(_entries())

    record_activity("lead.status_changed", lead)
    db.session.rollback()

    assert len(_entries()) == before


def test_an_unknown_verb_is_refused(make_lead):
    lead = make_lead()

    with pytest.raises(ValueError, match="lead.won"):
        record_activity("lead.won", lead)


def test_the_summary_line_leaves_out_empty_details_and_reads_statuses_as_words(app):
    """An approved return with no remark read "remark: None"; statuses read as their codes."""
    entry = ActivityEntry(
        verb="return_request.decided",
        details={"decision": "approved", "remark": None, "delivery_event_id": 66},
    )
    assert entry.summary == "decision: approved · delivery event id: 66"
    moved = ActivityEntry(
        verb="lead.status_changed", details={"from": "ready_to_route", "to": "assigned"}
    )
    assert moved.summary == "ready to route → assigned"


def test_a_moment_in_the_details_reads_in_business_time_not_as_utc_iso(app):
    """Due at 10:00 in London in June, it was logged as "due at: 2026-06-06T09:00:00+00:00"."""
    entry = ActivityEntry(
        verb="follow_up.created",
        details={"installer": "Acme", "due_at": "2026-06-06T09:00:00+00:00", "note": "2026-06-06"},
    )
    assert entry.summary == "installer: Acme · due at: 06 Jun 2026 10:00 · note: 2026-06-06"
