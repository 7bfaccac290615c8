"""The dashboard's daily tallies: kept by the services in the same transaction as what they
count, equal to a direct count of the records, and recounted by `ied check-daily-tallies`."""

import threading
from collections import Counter
from datetime import UTC, date, datetime, timedelta

import pytest
import sqlalchemy as sa

from ied.business_time import business_today
from ied.delivery import services as delivery
from ied.delivery.models import Assignment
from ied.extensions import db
from ied.finance import services as finance
from ied.followups import services as followups
from ied.leads import services as leads
from ied.leads.models import Lead
from ied.tallies.models import DailyTally
from ied.tallies.services import (
    counted_tallies,
    kept_tallies,
    rebuild_tallies,
    tallies_between,
    tally_day_of,
    tally_drift,
    tallying_from,
)
from ied.timestamps import utcnow
from tests.support.follow_ups import deliver


def _attempt(assignment: Assignment, status: str) -> None:
    audit = delivery.begin_attempt(assignment, job_id=None, lease_seconds=60)
    delivery.finish_attempt(audit, status=status, smtp_code=250 if status == "sent" else 451)


def _close(follow_up, actor, satisfaction: str, issue: bool) -> None:
    followups.log_contact_attempt(follow_up, "reached_customer", actor)
    followups.record_outcome(
        follow_up,
        followups.Outcome(
            satisfaction_outcome=satisfaction,
            has_issue=issue,
            issue_summary="Scaffolding left behind" if issue else None,
        ),
        actor,
    )
    followups.close(follow_up, actor)


def test_the_services_keep_every_tally_equal_to_a_direct_count(
    app, make_lead, make_installer, operator
):
    first, second = make_installer(), make_installer()
    for _ in range(3):
        make_lead()
    for installer in (first, first, second):
        lead = make_lead("ready_to_route")
        (assignment,) = delivery.assign_installers(lead, [installer.id], operator)
        _attempt(assignment, "failed")
        _attempt(assignment, "sent")
        delivery.record_delivery_success(assignment.id)
    opened = db.session.scalars(
        sa.select(Assignment).where(Assignment.installer_id == first.id)
    ).first()
    delivery.record_link_open(opened)
    delivery.record_link_open(opened)  # a second open is not a second opened delivery
    finance.request_return(opened.delivery_event.id, "duplicate", None)
    for satisfaction, issue in (("satisfied", False), ("unsatisfied", True)):
        lead = deliver(make_lead("ready_to_route"), [second], operator)
        follow_up = followups.create_follow_up(lead, second.id, utcnow(), operator)
        _close(follow_up, operator, satisfaction, issue)
    db.session.commit()

    assert tally_drift() == []
    today = business_today()
    kept = tallies_between(today, today)
    business_wide = kept.per_day[today]
    assert (
        business_wide["leads_created"],
        business_wide["attempts_sent"],
        business_wide["attempts_failed"],
    ) == (8, 3, 3)
    assert kept.per_installer[first.id]["deliveries_sent"] == 2
    assert kept.per_installer[first.id]["deliveries_opened"] == 1
    assert kept.per_installer[first.id]["returns_requested"] == 1
    assert {
        name: kept.per_installer[second.id][name]
        for name in (
            "deliveries_sent",
            "follow_ups_closed",
            "follow_ups_satisfied",
            "follow_ups_unsatisfied",
            "follow_ups_mixed",
            "follow_ups_with_issue",
        )
    } == {
        "deliveries_sent": 3,
        "follow_ups_closed": 2,
        "follow_ups_satisfied": 1,
        "follow_ups_unsatisfied": 1,
        "follow_ups_mixed": 0,
        "follow_ups_with_issue": 1,
    }


def test_a_rolled_back_intake_leaves_the_tallies_alone(app, make_lead):
    make_lead()  # committed
    leads.create_lead(
        leads.LeadInput(
            customer_name="Rolled Back",
            email="rolled.back@example.com",
            phone=None,
            postcode="SW1A 1AA",
            product_interest="solar_pv",
            selected_path="compare_quotes",
            assessment={},
        ),
        source="test",
        external_id="rolled-back",
    )
    db.session.rollback()
    today = business_today()
    assert tallies_between(today, today).per_day[today]["leads_created"] == 1
    assert tally_drift() == []


def test_a_tally_adding_nothing_inside_a_statement_writes_a_row_once_and_changes_nothing(
    app, make_lead, is_postgres
):
    """tallying_from with no counts: its upsert has nothing to add on conflict (DO NOTHING, not
    an empty DO UPDATE SET), so running it twice is valid and leaves every tally as it was."""
    if not is_postgres:
        pytest.skip("a data-modifying WITH is PostgreSQL's")
    make_lead()
    today = business_today()
    before = tallies_between(today, today).per_day[today]
    source = sa.select(sa.literal(3).label("id")).cte("source")
    statement = sa.select(sa.literal(1)).add_cte(source, tallying_from(source))
    for _ in range(2):
        db.session.execute(statement, tally_day_of(utcnow()))
    db.session.commit()
    assert tallies_between(today, today).per_day[today] == before
    assert (
        db.session.scalar(
            sa.select(sa.func.count()).where(DailyTally.day == today, DailyTally.shard == 3)
        )
        == 1
    )


def test_an_event_counts_on_its_business_day_across_midnight_and_the_clock_change(app, make_lead):
    # London: BST until 01:00 UTC on 25 October 2026, GMT after.
    moments = {
        datetime(2026, 7, 1, 23, 30, tzinfo=UTC): date(2026, 7, 2),  # 00:30 BST
        datetime(2026, 10, 24, 22, 59, tzinfo=UTC): date(2026, 10, 24),  # 23:59 BST
        datetime(2026, 10, 24, 23, 0, tzinfo=UTC): date(2026, 10, 25),  # 00:00 BST
        datetime(2026, 10, 25, 23, 59, tzinfo=UTC): date(2026, 10, 25),  # 23:59 GMT
        datetime(2026, 10, 26, 0, 0, tzinfo=UTC): date(2026, 10, 26),  # 00:00 GMT
    }
    for moment in moments:
        lead = make_lead()
        lead.created_at = moment
    db.session.flush()
    days = Counter(moments.values())
    assert len(tally_drift()) == len(days) + 1  # each day moved to, and today lost them all
    rebuild_tallies()
    db.session.commit()
    assert tally_drift() == []
    kept = tallies_between(date(2026, 7, 1), date(2026, 10, 31)).per_day
    assert {day: sums["leads_created"] for day, sums in kept.items()} == days
    # The service's own placement agrees with the recount: a lead received at one of those
    # moments (its tally added by the service, not rebuilt) leaves no drift.
    from ied.tallies.services import add_to_tally

    lead = make_lead()
    db.session.execute(sa.delete(DailyTally).where(DailyTally.day == business_today()))
    lead.created_at = datetime(2026, 10, 24, 23, 0, tzinfo=UTC)
    add_to_tally(lead.created_at, shard_key=lead.id, leads_created=1)
    db.session.flush()
    assert tally_drift() == []


def test_the_check_command_reports_drift_and_repairs_it(app, make_lead, make_installer, operator):
    installer = make_installer()
    deliver(make_lead("ready_to_route"), [installer], operator)
    db.session.execute(
        sa.update(DailyTally)
        .where(DailyTally.installer_id == 0)
        .values(leads_created=DailyTally.leads_created + 5)
    )
    db.session.commit()
    runner = app.test_cli_runner()
    checked = runner.invoke(args=["ied", "check-daily-tallies"])
    assert checked.exit_code == 1
    assert "leads_created: tally 6; records 1" in checked.output
    repaired = runner.invoke(args=["ied", "check-daily-tallies", "--repair"])
    assert repaired.exit_code == 0 and "Repaired 1 tally(s)." in repaired.output
    again = runner.invoke(args=["ied", "check-daily-tallies"])
    assert again.exit_code == 0 and "Every tally is right." in again.output
    assert counted_tallies()[(business_today(), installer.id)]["deliveries_sent"] == 1


def test_the_recount_reads_days_in_bounded_statements(app, make_lead):
    """Leads spread over more days than one recount statement covers are all counted."""
    start = utcnow() - timedelta(days=400)
    for offset in range(0, 400, 37):
        make_lead().created_at = start + timedelta(days=offset)
    db.session.flush()
    counted = counted_tallies()
    assert sum(sums["leads_created"] for sums in counted.values()) == db.session.scalar(
        sa.select(sa.func.count()).select_from(Lead)
    )


def test_the_migration_starts_the_tallies_from_the_records_already_there(
    test_settings, fresh_database
):
    """An existing database upgraded to the tallies gets them counted by business day."""
    from flask_migrate import downgrade, upgrade

    from ied import create_app
    from ied.demo import seed_demo

    app = create_app(
        {**test_settings, "SQLALCHEMY_DATABASE_URI": fresh_database.render_as_string(False)}
    )
    with app.app_context():
        upgrade()
        seed_demo(lead_count=40)
        db.session.commit()
        assert tally_drift() == []
        kept = kept_tallies()
        db.session.remove()
        downgrade(revision="d5a8e1f0c2b7")  # before the tallies: the records alone
        upgrade()
        assert tally_drift() == []
        assert kept_tallies() == kept and len(kept) > 20
        db.session.remove()
        db.engine.dispose()


def test_the_check_reads_one_snapshot_so_a_lead_received_meanwhile_is_no_drift(
    app, make_lead, is_postgres
):
    if not is_postgres:
        pytest.skip("SQLite writes one transaction at a time")
    make_lead()
    db.session.commit()
    received = []

    def receive_a_lead_meanwhile(conn, cursor, statement, parameters, context, executemany):
        # Once the check has read the kept tallies and starts recounting the leads.
        if received or "min(leads.created_at)" not in statement:
            return

        def receive():
            with app.app_context():
                make_lead()
                db.session.commit()

        thread = threading.Thread(target=receive)
        thread.start()
        thread.join()
        received.append(True)

    sa.event.listen(db.engine, "before_cursor_execute", receive_a_lead_meanwhile)
    try:
        checked = app.test_cli_runner().invoke(args=["ied", "check-daily-tallies"])
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", receive_a_lead_meanwhile)
    assert received and checked.exit_code == 0, checked.output
    assert tally_drift() == []
