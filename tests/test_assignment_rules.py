"""Assignment rules of the domain doc, enforced by the delivery service layer."""

from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from ied.business_time import billing_cycle
from ied.delivery import services as delivery
from ied.delivery.models import Assignment, DeliveryEvent
from ied.errors import NotFound
from ied.extensions import db
from ied.finance.services import repair_cycle_billing, void_delivery_event
from ied.leads.models import LeadStatusChange


def count(model) -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(model))


def refused(lead, installer_ids, operator, match):
    before = (count(Assignment), count(LeadStatusChange))
    with pytest.raises((delivery.AssignmentRefused, NotFound), match=match):
        delivery.assign_installers(lead, installer_ids, operator)
    db.session.rollback()
    assert (count(Assignment), count(LeadStatusChange)) == before


@pytest.mark.parametrize("status", ["new", "reviewing"])
def test_assigning_needs_a_lead_ready_to_route(app, make_lead, make_installer, operator, status):
    lead = make_lead(status)
    refused(lead, [make_installer().id], operator, f"'{status}'")


def test_recommended_installer_takes_exactly_one(app, make_lead, make_installer, operator):
    first, second = make_installer(), make_installer()
    lead = make_lead("ready_to_route", selected_path="recommended_installer")
    refused(lead, [first.id, second.id], operator, "exactly one installer")
    refused(lead, [], operator, "at least one")
    delivery.assign_installers(lead, [first.id], operator)
    db.session.commit()
    refused(lead, [second.id], operator, "exactly one installer")


def test_compare_quotes_takes_up_to_the_configured_maximum(
    app, make_lead, make_installer, operator
):
    installers = [make_installer() for _ in range(4)]
    lead = make_lead("ready_to_route", selected_path="compare_quotes")
    refused(lead, [i.id for i in installers], operator, "one to 3")
    delivery.assign_installers(lead, [installers[0].id], operator)
    db.session.commit()
    # Adding installers to an assigned compare_quotes lead works up to the maximum.
    delivery.assign_installers(lead, [installers[1].id, installers[2].id], operator)
    db.session.commit()
    assert lead.status == "assigned"
    refused(lead, [installers[3].id], operator, "3 live")
    # Only the first assignment moved the lead: one ready_to_route -> assigned row.
    changes = db.session.scalars(
        sa.select(LeadStatusChange).where(LeadStatusChange.to_status == "assigned")
    ).all()
    assert len(changes) == 1


def test_withdrawn_assignments_free_their_place(app, make_lead, make_installer, operator):
    installers = [make_installer() for _ in range(4)]
    lead = make_lead("ready_to_route")
    assignments = delivery.assign_installers(lead, [i.id for i in installers[:3]], operator)
    db.session.commit()
    delivery.withdraw(assignments[0], operator)
    delivery.assign_installers(lead, [installers[3].id], operator)
    db.session.commit()
    refused(lead, [installers[0].id], operator, "already assigned")


def test_installers_must_be_distinct(app, make_lead, make_installer, operator):
    installer = make_installer()
    lead = make_lead("ready_to_route")
    refused(lead, [installer.id, installer.id], operator, "only once")


def test_only_active_installers(app, make_lead, make_installer, operator):
    paused = make_installer(active=False)
    refused(make_lead("ready_to_route"), [paused.id], operator, "paused")


def test_unknown_installer_is_refused(app, make_lead, operator):
    refused(make_lead("ready_to_route"), [999_999], operator, "No installer has the id 999999")


def test_installer_must_cover_area_and_product(app, make_lead, make_installer, operator):
    northern = make_installer(service_areas=["north_west"])
    no_heat = make_installer(products=["solar_pv"])
    lead = make_lead("ready_to_route", postcode="SW1A 1AA", product_interest="heat_pump")
    refused(lead, [northern.id], operator, "outside area")
    refused(lead, [no_heat.id], operator, "product not offered")


def test_cycle_cap_counts_events_of_this_cycle_and_queued_assignments(
    app, make_lead, make_installer, operator
):
    installer = make_installer(cycle_cap=2)
    first = delivery.assign_installers(make_lead("ready_to_route"), [installer.id], operator)[0]
    db.session.commit()
    delivery.record_delivery_success(first.id)  # one event this cycle
    delivery.assign_installers(make_lead("ready_to_route"), [installer.id], operator)  # one queued
    db.session.commit()
    refused(make_lead("ready_to_route"), [installer.id], operator, r"cap reached \(used 2 of 2")


def test_voided_and_earlier_cycle_events_do_not_count(app, make_lead, make_installer, operator):
    installer = make_installer(cycle_cap=1)
    first = delivery.assign_installers(make_lead("ready_to_route"), [installer.id], operator)[0]
    db.session.commit()
    event = delivery.record_delivery_success(first.id)
    void_delivery_event(event.id, operator, "Credited")
    db.session.commit()
    second = delivery.assign_installers(make_lead("ready_to_route"), [installer.id], operator)[0]
    db.session.commit()
    event = delivery.record_delivery_success(second.id)
    event.billing_cycle = "2001-01"  # billed in an old cycle; the counters follow the events
    repair_cycle_billing()
    db.session.commit()
    third = delivery.assign_installers(make_lead("ready_to_route"), [installer.id], operator)[0]
    db.session.commit()
    assert third.status == "queued"
    assert count(Assignment) == 3


@pytest.mark.parametrize(
    ("anchor", "at", "label"),
    [
        (1, datetime(2026, 11, 21, 12, tzinfo=UTC), "2026-11"),
        (15, datetime(2026, 11, 14, 12, tzinfo=UTC), "2026-10"),
        (15, datetime(2026, 11, 15, 0, 30, tzinfo=UTC), "2026-11"),
        # 23:30 UTC on 31 March is already 1 April in London (BST): the new cycle.
        (1, datetime(2026, 3, 31, 23, 30, tzinfo=UTC), "2026-04"),
        (10, datetime(2026, 1, 5, tzinfo=UTC), "2025-12"),
    ],
)
def test_billing_cycle_runs_monthly_from_the_anchor_day_in_business_time(app, anchor, at, label):
    assert billing_cycle(anchor, at).label == label


ASSIGNMENT_MOVES = [
    ("queued", "sent", True),
    ("queued", "failed", True),
    ("queued", "withdrawn", True),
    ("failed", "queued", True),
    ("failed", "withdrawn", True),
    ("failed", "sent", False),
    ("sent", "withdrawn", False),
    ("sent", "failed", False),
    ("sent", "queued", False),
    ("withdrawn", "queued", False),
    ("withdrawn", "sent", False),
    ("queued", "queued", False),
]


def _assignment_in(status, lead, installer, operator):
    assignment = delivery.assign_installers(lead, [installer.id], operator)[0]
    if status == "sent":
        delivery.record_delivery_success(assignment.id)
    elif status == "failed":
        delivery.record_delivery_failure(assignment.id, "550")
    elif status == "withdrawn":
        delivery.withdraw(assignment, operator)
    db.session.commit()
    return assignment


@pytest.mark.parametrize(("current", "target", "allowed"), ASSIGNMENT_MOVES)
def test_assignment_transitions(app, make_lead, make_installer, operator, current, target, allowed):
    assignment = _assignment_in(current, make_lead("ready_to_route"), make_installer(), operator)
    if allowed:
        delivery.move_assignment(assignment, target)
        assert assignment.status == target
    else:
        with pytest.raises(delivery.IllegalAssignmentTransition, match=f"'{current}'"):
            delivery.move_assignment(assignment, target)
        assert assignment.status == current
    db.session.rollback()


def test_a_sent_assignment_cannot_be_withdrawn(app, make_lead, make_installer, operator):
    assignment = _assignment_in("sent", make_lead("ready_to_route"), make_installer(), operator)
    with pytest.raises(delivery.IllegalAssignmentTransition, match="void its delivery event"):
        delivery.withdraw(assignment, operator)


def test_resend_puts_a_failed_assignment_back_in_the_queue(
    app, make_lead, make_installer, operator
):
    assignment = _assignment_in("failed", make_lead("ready_to_route"), make_installer(), operator)
    delivery.resend(assignment, operator)
    db.session.commit()
    assert assignment.status == "queued"
    assert assignment.next_attempt_at is not None


def test_marking_sent_creates_the_delivery_event_exactly_once(
    app, make_lead, make_installer, operator
):
    installer = make_installer(price_per_lead="30.00", billing_anchor_day=1)
    assignment = delivery.assign_installers(make_lead("ready_to_route"), [installer.id], operator)[
        0
    ]
    db.session.commit()
    first = delivery.record_delivery_success(assignment.id)
    db.session.commit()
    again = delivery.record_delivery_success(assignment.id)
    db.session.commit()
    assert again.id == first.id
    assert count(DeliveryEvent) == 1
    assert first.billing_cycle == billing_cycle(1).label
    assert str(first.price) == "30.00"
    assert assignment.sent_at is not None


def test_the_database_refuses_a_second_event_for_one_assignment(
    app, make_lead, make_installer, operator
):
    assignment = delivery.assign_installers(
        make_lead("ready_to_route"), [make_installer().id], operator
    )[0]
    db.session.commit()
    event = delivery.record_delivery_success(assignment.id)
    db.session.commit()
    db.session.add(
        DeliveryEvent(
            assignment_id=assignment.id,
            lead_id=event.lead_id,
            installer_id=event.installer_id,
            billing_cycle="2026-11",
            price=event.price,
        )
    )
    with pytest.raises(sa.exc.IntegrityError):
        db.session.flush()
    db.session.rollback()


def test_unique_assignment_per_lead_and_installer(app, make_lead, make_installer, operator):
    lead, installer = make_lead("ready_to_route"), make_installer()
    delivery.assign_installers(lead, [installer.id], operator)
    db.session.commit()
    db.session.add(Assignment(lead_id=lead.id, installer_id=installer.id, status="queued"))
    with pytest.raises(sa.exc.IntegrityError):
        db.session.flush()
    db.session.rollback()
