"""The locked follow-up model (shared/seeds/follow-up-status-model.txt) at the service layer."""

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from ied.delivery import services as delivery
from ied.delivery.models import DeliveryEvent
from ied.extensions import db
from ied.followups import services as followups
from ied.followups.models import ContactAttempt, FollowUp
from ied.leads.models import LeadStatusChange

DUE = datetime(2030, 1, 15, 10, tzinfo=UTC)


@pytest.fixture
def delivered_lead(make_lead, make_installer, operator):
    """An assigned lead with one sent and one failed delivery."""
    lead = make_lead("ready_to_route")
    good, bad = make_installer(), make_installer()
    sent, failed = delivery.assign_installers(lead, [good.id, bad.id], operator)
    db.session.commit()
    delivery.record_delivery_success(sent.id)
    delivery.record_delivery_failure(failed.id, "550")
    db.session.commit()
    return lead, good, bad


@pytest.fixture
def follow_up(delivered_lead, operator):
    lead, good, _ = delivered_lead
    follow_up = followups.create_follow_up(lead, good.id, DUE, operator)
    db.session.commit()
    return follow_up


def snapshot(lead):
    """Everything a follow-up must never touch: the lead's status and history, and billing."""
    db.session.refresh(lead)
    return (
        lead.status,
        db.session.scalar(sa.select(sa.func.count()).select_from(LeadStatusChange)),
        db.session.execute(
            sa.select(DeliveryEvent.id, DeliveryEvent.price, DeliveryEvent.voided_at)
        ).all(),
    )


def test_a_lead_does_not_create_a_follow_up_until_operations_explicitly_needs_it(
    app, delivered_lead
):
    lead, _, _ = delivered_lead
    assert db.session.scalar(sa.select(sa.func.count()).select_from(FollowUp)) == 0
    assert followups.why_no_follow_up(lead) is None


def test_a_delivered_lead_can_create_one_primary_follow_up_record(app, delivered_lead, operator):
    lead, good, bad = delivered_lead
    with pytest.raises(followups.FollowUpRefused, match="delivered to"):
        followups.create_follow_up(lead, bad.id, DUE, operator)  # its delivery failed
    db.session.rollback()
    with pytest.raises(followups.FollowUpRefused, match="due date is required"):
        followups.create_follow_up(lead, good.id, None, operator)
    db.session.rollback()
    follow_up = followups.create_follow_up(lead, good.id, DUE, operator)
    db.session.commit()
    assert (follow_up.status, follow_up.installer_id, follow_up.due_at) == ("pending", good.id, DUE)
    with pytest.raises(followups.FollowUpRefused, match="already has its follow-up"):
        followups.create_follow_up(lead, good.id, DUE, operator)
    db.session.rollback()
    db.session.add(
        FollowUp(
            lead_id=lead.id,
            installer_id=good.id,
            due_at=DUE,
            **followups.searched_fields_of(lead),
        )
    )
    with pytest.raises(sa.exc.IntegrityError):
        db.session.flush()
    db.session.rollback()


def test_an_undelivered_lead_cannot_have_a_follow_up(app, make_lead, make_installer, operator):
    lead = make_lead("ready_to_route")
    installer = make_installer()
    delivery.assign_installers(lead, [installer.id], operator)  # queued, not sent
    db.session.commit()
    with pytest.raises(followups.FollowUpRefused, match="no sent delivery"):
        followups.create_follow_up(lead, installer.id, DUE, operator)


def test_a_due_follow_up_can_remain_pending_until_action_starts(app, follow_up):
    follow_up.due_at = datetime.now(UTC) - timedelta(days=3)
    db.session.commit()
    db.session.refresh(follow_up)
    assert follow_up.status == "pending"
    assert follow_up.started_at is None


def test_once_staff_begin_working_it_status_moves_to_in_progress(app, delivered_lead, operator):
    lead, good, _ = delivered_lead
    started = followups.start(followups.create_follow_up(lead, good.id, DUE, operator), operator)
    assert (started.status, started.started_at is not None) == ("in_progress", True)
    db.session.rollback()
    follow_up = followups.create_follow_up(lead, good.id, DUE, operator)
    attempt = followups.log_contact_attempt(follow_up, "no_response", operator, "rang twice")
    db.session.commit()
    assert follow_up.status == "in_progress"
    assert follow_up.contact_attempt_count == 1
    assert follow_up.last_contacted_by_email == operator.email
    assert follow_up.last_contact_outcome == "no_response"
    assert follow_up.last_contacted_at == attempt.contacted_at


def _reach_and_record(follow_up, operator, **outcome):
    followups.log_contact_attempt(follow_up, "reached_customer", operator)
    followups.record_outcome(
        follow_up, followups.Outcome(**{"satisfaction_outcome": "satisfied", **outcome}), operator
    )


def test_contact_and_satisfaction_with_no_open_issue_becomes_completed(app, follow_up, operator):
    _reach_and_record(follow_up, operator, referral_opportunity=True)
    followups.close(follow_up, operator)
    db.session.commit()
    assert follow_up.status == "completed"
    assert follow_up.completed_at is not None
    assert follow_up.referral_opportunity is True


def test_contact_with_a_customer_issue_still_open_becomes_closed_with_issue(
    app, follow_up, operator
):
    _reach_and_record(
        follow_up,
        operator,
        satisfaction_outcome="unsatisfied",
        has_issue=True,
        issue_summary="Scaffolding left behind",
    )
    followups.close(follow_up, operator)
    db.session.commit()
    assert follow_up.status == "closed_with_issue"
    followups.mark_issue_resolved(follow_up, operator)
    db.session.commit()
    assert (follow_up.status, follow_up.issue_resolved) == ("closed_with_issue", True)


def test_a_resolved_issue_closes_as_completed(app, follow_up, operator):
    _reach_and_record(
        follow_up, operator, has_issue=True, issue_summary="Late", issue_resolved=True
    )
    assert followups.close(follow_up, operator).status == "completed"


def test_follow_up_completion_does_not_change_the_lead_lifecycle(app, delivered_lead, operator):
    lead, good, _ = delivered_lead
    before = snapshot(lead)
    follow_up = followups.create_follow_up(lead, good.id, DUE, operator)
    followups.log_contact_attempt(follow_up, "left_message", operator)
    _reach_and_record(follow_up, operator, has_issue=True, issue_summary="Broken tile")
    followups.close(follow_up, operator)
    followups.mark_issue_resolved(follow_up, operator)
    db.session.commit()
    assert snapshot(lead) == before


def test_dashboard_and_admin_views_can_filter_due_in_progress_completed_and_issue_bearing(
    app, make_lead, make_installer, operator
):
    from ied.followups.queries import follow_up_filter

    installer = make_installer()
    now = datetime.now(UTC)
    made = {}
    for name, due in [
        ("overdue", now - timedelta(days=2)),
        ("upcoming", now + timedelta(days=5)),
        ("in_progress", now + timedelta(days=9)),
        ("completed", now),
        ("issue", now - timedelta(days=1)),
    ]:
        lead = make_lead("ready_to_route")
        assignment = delivery.assign_installers(lead, [installer.id], operator)[0]
        delivery.record_delivery_success(assignment.id)
        made[name] = followups.create_follow_up(lead, installer.id, due, operator)
    followups.start(made["in_progress"], operator)
    _reach_and_record(made["completed"], operator)
    followups.close(made["completed"], operator)
    _reach_and_record(made["issue"], operator, has_issue=True, issue_summary="No call back")
    followups.close(made["issue"], operator)
    db.session.commit()

    def ids(**filters):
        return {
            f.id
            for f in db.session.scalars(sa.select(FollowUp).where(*follow_up_filter(**filters)))
        }

    assert ids(due="overdue") == {made["overdue"].id}
    assert ids(due="upcoming") == {made["upcoming"].id, made["in_progress"].id}
    assert ids(status="in_progress") == {made["in_progress"].id}
    assert ids(due="done") == {made["completed"].id, made["issue"].id}
    assert ids(issue="open") == {made["issue"].id}


OPEN_REFUSALS = [
    ("close without any contact", [], "reached the customer"),
    ("close after only a message", ["left_message"], "reached the customer"),
    ("close without satisfaction", ["reached_customer"], "satisfaction"),
]


@pytest.mark.parametrize(
    ("case", "outcomes", "reason"), OPEN_REFUSALS, ids=[c[0] for c in OPEN_REFUSALS]
)
def test_closing_is_refused_until_contact_and_satisfaction(
    app, follow_up, operator, case, outcomes, reason
):
    for outcome in outcomes:
        followups.log_contact_attempt(follow_up, outcome, operator)
    db.session.commit()
    status_before = follow_up.status
    with pytest.raises(followups.FollowUpRefused, match=reason):
        followups.close(follow_up, operator)
    db.session.rollback()
    db.session.refresh(follow_up)
    assert follow_up.status == status_before


def test_closed_follow_ups_take_no_more_attempts_outcomes_or_starts(app, follow_up, operator):
    _reach_and_record(follow_up, operator)
    followups.close(follow_up, operator)
    db.session.commit()
    for action in (
        lambda: followups.log_contact_attempt(follow_up, "attempted", operator),
        lambda: followups.start(follow_up, operator),
        lambda: followups.close(follow_up, operator),
        lambda: followups.mark_issue_resolved(follow_up, operator),
        lambda: followups.record_outcome(
            follow_up, followups.Outcome(satisfaction_outcome="mixed"), operator
        ),
    ):
        with pytest.raises(followups.FollowUpRefused):
            action()
        db.session.rollback()
    assert db.session.scalar(sa.select(sa.func.count()).select_from(ContactAttempt)) == 1


def test_bad_outcomes_are_refused(app, follow_up, operator):
    with pytest.raises(followups.FollowUpRefused, match="Outcome must be one of"):
        followups.log_contact_attempt(follow_up, "won", operator)
    db.session.rollback()
    with pytest.raises(followups.FollowUpRefused, match="Describe the issue"):
        followups.record_outcome(
            follow_up,
            followups.Outcome(satisfaction_outcome="mixed", has_issue=True, issue_summary=" "),
            operator,
        )
    db.session.rollback()
    with pytest.raises(followups.FollowUpRefused, match="Satisfaction must be one of"):
        followups.record_outcome(
            follow_up, followups.Outcome(satisfaction_outcome="delighted"), operator
        )


def test_the_page_offers_what_may_happen_next_at_each_step(app, follow_up, operator):
    """Start only while pending; close while open, saying what is missing; resolving an issue
    on its own only once closing has left it open."""

    def offered():
        actions = followups.follow_up_actions(follow_up)
        return actions.start, actions.close, actions.why_not_closable, actions.resolve_issue

    assert offered() == (
        True,
        True,
        "Log a contact attempt that reached the customer before closing.",
        False,
    )
    followups.start(follow_up, operator)
    assert offered()[:2] == (False, True)
    _reach_and_record(follow_up, operator, has_issue=True, issue_summary="Broken tile")
    assert offered() == (False, True, None, False)
    assert followups.follow_up_actions(follow_up).closes_as == "closed_with_issue"
    followups.close(follow_up, operator)
    assert offered() == (False, False, "The follow-up is already 'closed_with_issue'.", True)
    followups.mark_issue_resolved(follow_up, operator)
    assert offered()[-1] is False
