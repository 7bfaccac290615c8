"""The maintained cycle counters: kept with every event and void, read by cap checks, repairable."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest
import sqlalchemy as sa

from ied.business_time import CurrentCycles, billing_cycle, business_today
from ied.delivery import services as delivery
from ied.extensions import db
from ied.finance import services as finance
from ied.finance.models import CycleBilling
from ied.installers.models import Installer
from ied.installers.services import (
    _CURRENT_LABEL,
    _cycle_parameters,
    cycle_usage,
    usage_by_installer_name,
)
from tests.support.billing import billed_delivery


def counter(installer) -> tuple[int, Decimal, int, Decimal] | None:
    row = db.session.execute(
        sa.select(
            CycleBilling.billed_count,
            CycleBilling.billed_amount,
            CycleBilling.voided_count,
            CycleBilling.voided_amount,
        ).where(
            CycleBilling.installer_id == installer.id,
            CycleBilling.billing_cycle == billing_cycle(installer.billing_anchor_day).label,
        )
    ).first()
    return None if row is None else tuple(row)


def test_counter_equals_the_direct_count_after_sends_and_voids(
    app, make_lead, make_installer, operator
):
    first = make_installer(price_per_lead=Decimal("25.00"))
    second = make_installer(price_per_lead=Decimal("40.50"), billing_anchor_day=15)
    events = [billed_delivery(make_lead, first, operator) for _ in range(3)]
    events.append(billed_delivery(make_lead, second, operator))
    assert counter(first) == (3, Decimal("75.00"), 0, Decimal("0.00"))
    assert counter(second) == (1, Decimal("40.50"), 0, Decimal("0.00"))

    finance.void_delivery_event(events[0].id, operator, "Customer withdrew")
    db.session.commit()
    assert counter(first) == (2, Decimal("50.00"), 1, Decimal("25.00"))
    assert cycle_usage([first])[first.id].delivered == 2
    assert finance.cycle_billing_drift() == []


def test_a_failed_void_changes_no_counter(app, make_lead, make_installer, operator):
    installer = make_installer()
    event = billed_delivery(make_lead, installer, operator)
    finance.void_delivery_event(event.id, operator, "Duplicate")
    db.session.commit()
    with pytest.raises(finance.VoidRefused, match="already voided"):
        finance.void_delivery_event(event.id, operator, "Again")
    db.session.rollback()
    assert counter(installer) == (0, Decimal("0.00"), 1, Decimal("25.00"))
    assert finance.cycle_billing_drift() == []


def test_cap_checks_read_the_counter(app, make_lead, make_installer, operator):
    installer = make_installer(cycle_cap=5)
    billed_delivery(make_lead, installer, operator)
    # Tamper with the counter: the cap check believes it, which shows it reads no events.
    db.session.execute(sa.update(CycleBilling).values(billed_count=5))
    db.session.commit()
    with pytest.raises(delivery.AssignmentRefused, match="used 5 of 5"):
        delivery.assign_installers(make_lead("ready_to_route"), [installer.id], operator)
    db.session.rollback()


def test_check_reports_and_repair_fixes_a_tampered_counter(
    app, make_lead, make_installer, operator
):
    installer = make_installer(price_per_lead=Decimal("30.00"))
    other = make_installer()
    for _ in range(2):
        billed_delivery(make_lead, installer, operator)
    billed_delivery(make_lead, other, operator)
    db.session.execute(
        sa.update(CycleBilling)
        .where(CycleBilling.installer_id == installer.id)
        .values(billed_count=7, billed_amount=Decimal("1.00"))
    )
    db.session.execute(sa.delete(CycleBilling).where(CycleBilling.installer_id == other.id))
    db.session.commit()

    runner = app.test_cli_runner()
    checked = runner.invoke(args=["ied", "check-cycle-usage"])
    assert checked.exit_code == 1
    assert (
        f"installer {installer.id}" in checked.output
        and "counter 7 billed (1.00)" in checked.output
    )
    assert f"installer {other.id}" in checked.output

    repaired = runner.invoke(args=["ied", "check-cycle-usage", "--repair"])
    assert repaired.exit_code == 0, repaired.output
    assert "Repaired 2 counter(s)." in repaired.output
    db.session.expire_all()
    assert counter(installer) == (2, Decimal("60.00"), 0, Decimal("0.00"))
    assert counter(other) == (1, Decimal("25.00"), 0, Decimal("0.00"))
    again = runner.invoke(args=["ied", "check-cycle-usage"])
    assert again.exit_code == 0 and "Every counter is right." in again.output


def test_concurrent_deliveries_each_count(
    app, make_lead, make_installer, operator, run_in_threads, is_postgres
):
    if not is_postgres:
        pytest.skip("row-level concurrency needs PostgreSQL")
    installer = make_installer()
    assignments = [
        delivery.assign_installers(make_lead("ready_to_route"), [installer.id], operator)[0].id
        for _ in range(4)
    ]
    db.session.commit()

    def send(assignment_id):
        def run():
            delivery.record_delivery_success(assignment_id)
            db.session.commit()

        return run

    results = run_in_threads(app, *(send(a) for a in assignments))
    assert results == [None] * 4
    db.session.expire_all()
    assert counter(installer) == (4, Decimal("100.00"), 0, Decimal("0.00"))
    assert finance.cycle_billing_drift() == []


def test_a_void_is_recorded_in_the_activity_log(app, make_lead, make_installer, operator):
    from ied.activity.models import ActivityEntry

    event = billed_delivery(make_lead, make_installer(), operator)
    finance.void_delivery_event(event.id, operator, "Customer withdrew")
    db.session.commit()
    entry = db.session.scalars(
        sa.select(ActivityEntry).where(ActivityEntry.verb == "delivery_event.voided")
    ).one()
    assert (entry.subject_id, entry.lead_id, entry.actor_id) == (
        event.id,
        event.lead_id,
        operator.id,
    )
    assert entry.details["reason"] == "Customer withdrew"


def test_the_migration_counts_the_events_already_there(app, make_lead, make_installer, operator):
    from flask_migrate import downgrade, upgrade

    installer = make_installer(price_per_lead=Decimal("30.00"))
    events = [billed_delivery(make_lead, installer, operator) for _ in range(3)]
    finance.void_delivery_event(events[0].id, operator, "Duplicate")
    db.session.commit()
    installer_id = installer.id
    db.session.remove()
    downgrade(revision="a3c7e1f20b64")  # before the counters existed
    upgrade()
    installer = db.session.get(type(installer), installer_id)
    assert counter(installer) == (2, Decimal("60.00"), 1, Decimal("30.00"))
    assert finance.cycle_billing_drift() == []


@pytest.mark.parametrize(
    "at",
    [
        datetime(2026, 3, 10, 12, tzinfo=UTC),
        datetime(2026, 3, 28, 12, tzinfo=UTC),
        datetime(2026, 1, 1, 12, tzinfo=UTC),
        datetime(2026, 10, 25, 0, 30, tzinfo=UTC),  # the night the clocks go back
        datetime(2026, 2, 28, 23, 30, tzinfo=UTC),  # the last hour of February
    ],
)
def test_every_anchor_days_current_cycle_holds_the_moment(app, at):
    for anchor_day in range(1, 29):
        cycle = billing_cycle(anchor_day, at)
        assert cycle.starts_at <= at < cycle.ends_at, anchor_day


@pytest.mark.parametrize("today_day", [1, 10, 27, 28])
def test_the_usage_statement_picks_each_anchor_days_label_as_python_does(
    app, make_installer, today_day
):
    """The SQL CASE of the usage columns against CurrentCycles.label, on a pinned day."""
    current = CurrentCycles(today_day, this_month="2026-03", last_month="2026-02")
    anchors = range(1, 29)
    installers = {make_installer(billing_anchor_day=day).id: day for day in anchors}
    picked = dict(
        db.session.execute(
            sa.select(Installer.id, _CURRENT_LABEL).where(Installer.id.in_(installers)),
            _cycle_parameters(current),
        ).all()
    )
    assert picked == {id_: current.label(day) for id_, day in installers.items()}
    assert set(picked.values()) == ({"2026-03"} if today_day == 28 else {"2026-03", "2026-02"})


def test_usage_reads_the_current_cycle_of_anchors_on_both_sides_of_today(
    app, make_lead, make_installer, operator
):
    today = business_today().day
    anchors = sorted({1, min(today, 28), min(today + 1, 28), 28})
    installers = [make_installer(billing_anchor_day=day, cycle_cap=5) for day in anchors]
    for installer in installers:
        billed_delivery(make_lead, installer, operator)
    usage = cycle_usage(installers)
    assert [usage[installer.id].delivered for installer in installers] == [1] * len(anchors)
    assert [usage.delivered for _, usage in usage_by_installer_name()] == [1] * len(anchors)
