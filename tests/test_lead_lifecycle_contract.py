"""The locked lead lifecycle (shared/seeds/lead-lifecycle.txt): one test per validation scenario."""

import itertools

import pytest
import sqlalchemy as sa

from ied.activity.models import ActivityEntry
from ied.delivery import services as delivery
from ied.extensions import db
from ied.leads import services as leads
from ied.leads.models import (
    LEAD_STATUSES,
    NEXT_LEAD_STATUS,
    Lead,
    LeadStatusChange,
    LeadStatusCount,
)
from ied.tallies.models import DailyTally


def history(lead: Lead) -> list[tuple[str | None, str]]:
    return [
        (change.from_status, change.to_status)
        for change in db.session.scalars(
            sa.select(LeadStatusChange)
            .where(LeadStatusChange.lead_id == lead.id)
            .order_by(LeadStatusChange.id)
        )
    ]


def test_a_fresh_assessment_submission_becomes_new(app):
    lead = leads.create_lead(
        leads.LeadInput(
            customer_name="Ada Lovelace",
            email="ada@example.com",
            postcode="sw1a1aa",
            product_interest="solar_pv",
            selected_path="compare_quotes",
            assessment={"roof_orientation": "south"},
        ),
        source="website",
        external_id="form-1",
    )
    db.session.commit()
    assert lead.status == "new"
    assert lead.reference == f"IED-{lead.id:06d}"
    assert lead.postcode == "SW1A 1AA"
    assert history(lead) == [(None, "new")]


def test_internal_review_moves_a_lead_to_reviewing(app, make_lead, operator):
    lead = make_lead("new")
    leads.start_review(lead, operator)
    db.session.commit()
    assert lead.status == "reviewing"
    change = db.session.scalars(
        sa.select(LeadStatusChange).where(LeadStatusChange.to_status == "reviewing")
    ).one()
    assert (change.from_status, change.changed_by_id) == ("new", operator.id)
    assert change.changed_at is not None


def test_a_reviewed_lead_becomes_ready_to_route(app, make_lead, operator):
    lead = make_lead("reviewing")
    leads.approve_for_routing(lead, operator)
    db.session.commit()
    assert lead.status == "ready_to_route"
    assert history(lead)[-1] == ("reviewing", "ready_to_route")


def test_assigning_one_or_more_installers_sets_status_to_assigned(
    app, make_lead, make_installer, operator
):
    lead = make_lead("ready_to_route", selected_path="compare_quotes")
    first, second = make_installer(), make_installer()
    assignments = delivery.assign_installers(lead, [first.id, second.id], operator)
    db.session.commit()
    assert lead.status == "assigned"
    assert {a.status for a in assignments} == {"queued"}
    assert history(lead)[-1] == ("ready_to_route", "assigned")


def test_a_lead_can_stay_assigned_while_one_delivery_succeeds_and_another_fails(
    app, make_lead, make_installer, operator
):
    lead = make_lead("ready_to_route", selected_path="compare_quotes")
    good, bad = make_installer(), make_installer()
    sent, failed = delivery.assign_installers(lead, [good.id, bad.id], operator)
    db.session.commit()
    delivery.record_delivery_success(sent.id)
    delivery.record_delivery_failure(failed.id, "550 mailbox unavailable")
    db.session.commit()
    db.session.refresh(lead)
    assert lead.status == "assigned"
    assert (sent.status, failed.status) == ("sent", "failed")
    assert history(lead)[-1] == ("ready_to_route", "assigned")


@pytest.mark.parametrize("selected_path", ["compare_quotes", "recommended_installer"])
def test_both_compare_quotes_and_recommended_installer_leads_use_the_same_lifecycle(
    app, make_lead, make_installer, operator, selected_path
):
    installer = make_installer()
    lead = make_lead("new", selected_path=selected_path, recommended_installer_id=installer.id)
    leads.start_review(lead, operator)
    leads.approve_for_routing(lead, operator)
    delivery.assign_installers(lead, [installer.id], operator)
    db.session.commit()
    assert [to for _, to in history(lead)] == list(LEAD_STATUSES)


def test_billing_is_based_on_delivery_records_not_lead_statuses(
    app, make_lead, make_installer, operator
):
    from ied.delivery.models import DeliveryEvent

    lead = make_lead("ready_to_route")
    installer = make_installer(price_per_lead="42.50")
    (assignment,) = delivery.assign_installers(lead, [installer.id], operator)
    db.session.commit()
    assert lead.status == "assigned"
    assert db.session.scalar(sa.select(sa.func.count()).select_from(DeliveryEvent)) == 0
    event = delivery.record_delivery_success(assignment.id)
    db.session.commit()
    assert (event.installer_id, str(event.price), event.lead_id) == (installer.id, "42.50", lead.id)
    assert lead.status == "assigned"


ILLEGAL_MOVES = [
    (current, target)
    for current, target in itertools.product(LEAD_STATUSES, LEAD_STATUSES)
    if NEXT_LEAD_STATUS.get(current) != target
]


@pytest.mark.parametrize(("current", "target"), ILLEGAL_MOVES)
def test_every_other_lead_move_is_refused_with_current_and_allowed_status(
    app, make_lead, make_installer, operator, current, target
):
    lead = make_lead("ready_to_route" if current == "assigned" else current)
    if current == "assigned":
        delivery.assign_installers(lead, [make_installer().id], operator)
        db.session.commit()
    before = history(lead)
    with pytest.raises(leads.IllegalLeadTransition) as refused:
        leads.change_status(lead, target, operator)
    db.session.rollback()
    message = str(refused.value)
    assert f"'{current}'" in message
    allowed = NEXT_LEAD_STATUS.get(current)
    assert (f"'{allowed}'" in message) if allowed else ("nothing follows" in message)
    db.session.refresh(lead)
    assert lead.status == current
    assert history(lead) == before


@pytest.mark.parametrize("status", ["contacted", "won", "lost", "quoted"])
def test_sales_statuses_do_not_exist_on_a_lead(app, make_lead, status):
    lead = make_lead()
    with pytest.raises(sa.exc.IntegrityError):
        db.session.execute(sa.update(Lead).where(Lead.id == lead.id).values(status=status))
        db.session.flush()
    db.session.rollback()


def test_queue_cannot_jump_to_assigned_without_installers(app, make_lead, operator):
    lead = make_lead("ready_to_route")
    with pytest.raises(leads.IllegalLeadTransition, match="only by assigning installers"):
        leads.advance(lead, "assigned", operator)


def test_the_one_statement_of_postgresql_writes_what_the_statements_of_sqlite_write(
    app, make_user, is_postgres, monkeypatch
):
    """create_lead on PostgreSQL writes the lead and its records in one statement; SQLite's
    path writes them one at a time. Both run here, on the same database, and must leave the
    same history row, counter and tally changes and activity row."""
    if not is_postgres:
        pytest.skip("the one-statement path is PostgreSQL's")
    actor = make_user("operator")

    def records(lead):
        history = db.session.execute(
            sa.select(
                LeadStatusChange.from_status,
                LeadStatusChange.to_status,
                LeadStatusChange.changed_by_id,
                LeadStatusChange.changed_at,
                LeadStatusChange.note,
            ).where(LeadStatusChange.lead_id == lead.id)
        ).all()
        activity = db.session.execute(
            sa.select(
                ActivityEntry.actor_id,
                ActivityEntry.actor_label,
                ActivityEntry.verb,
                ActivityEntry.subject_type,
                ActivityEntry.subject_id,
                ActivityEntry.lead_id,
                ActivityEntry.details,
                ActivityEntry.created_at,
            ).where(ActivityEntry.lead_id == lead.id)
        ).all()
        # The moment and ids differ between the two leads; say them relative to the lead.
        return (
            [(*row[:3], row.changed_at == lead.created_at, row.note) for row in history],
            [
                (
                    *row[:4],
                    row.subject_id == lead.id,
                    row.lead_id == lead.id,
                    row.details,
                    abs(row.created_at - lead.created_at).total_seconds() < 1,
                )
                for row in activity
            ],
        )

    def counters():
        statuses = dict(
            db.session.execute(
                sa.select(LeadStatusCount.status, sa.func.sum(LeadStatusCount.lead_count)).group_by(
                    LeadStatusCount.status
                )
            ).all()
        )
        created = db.session.scalar(sa.select(sa.func.sum(DailyTally.leads_created))) or 0
        return statuses.get("new", 0), created

    written = []
    for path in ("one statement", "statements"):
        if path == "statements":  # SQLite's path, on this database
            monkeypatch.setattr(leads, "_insert_in_one_statement", leads._insert_by_statements)
        before = counters()
        lead = leads.create_lead(
            leads.LeadInput(
                customer_name="Ada Lovelace",
                phone="07700 900111",
                postcode="sw1a1aa",
                product_interest="solar_pv",
                selected_path="compare_quotes",
            ),
            source="phone-in",
            external_id=path,
            actor=actor,
        )
        db.session.commit()
        after = counters()
        written.append((records(lead), after[0] - before[0], after[1] - before[1]))
    assert written[0] == written[1]
    (history, activity), status_added, tally_added = written[0]
    assert history == [(None, "new", actor.id, True, "Received from phone-in")]
    assert activity == [
        (
            actor.id,
            actor.email,
            "lead.created",
            "lead",
            True,
            True,
            {"source": "phone-in", "status": "new"},
            True,
        )
    ]
    assert (status_added, tally_added) == (1, 1)
