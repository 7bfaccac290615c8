"""Every state change writes exactly one activity row, by the service, naming who and what."""

from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from ied.activity.models import ActivityEntry
from ied.delivery import services as delivery
from ied.delivery.jobs import enqueue_deliveries
from ied.delivery.models import DeliveryAudit
from ied.extensions import db
from ied.followups import services as followups
from ied.installers.models import Installer
from ied.intake.models import ApiKey
from ied.leads import services as leads
from tests.test_installers_admin import VALID as INSTALLER_FORM

DUE = datetime(2030, 1, 15, 10, tzinfo=UTC)


@pytest.fixture
def activity():
    """Call once to mark the log; call again for the rows written since, oldest first."""
    marks: list[int] = []

    def since() -> list[tuple]:
        if not marks:
            marks.append(db.session.scalar(sa.select(sa.func.max(ActivityEntry.id))) or 0)
            return []
        db.session.expire_all()
        return [
            (e.verb, e.actor_id, e.actor_label, e.subject_type, e.subject_id, e.lead_id, e.details)
            for e in db.session.scalars(
                sa.select(ActivityEntry).where(ActivityEntry.id > marks[0]).order_by("id")
            )
        ]

    return since


def test_intake_records_the_new_lead_by_its_source(app, activity):
    activity()
    lead = leads.create_lead(
        leads.LeadInput(
            customer_name="Ann Lee",
            email="ann@example.com",
            postcode="SW1A 1AA",
            product_interest="solar_pv",
            selected_path="compare_quotes",
        ),
        source="website",
        external_id="w-1",
    )
    assert activity() == [
        (
            "lead.created",
            None,
            "intake website",
            "lead",
            lead.id,
            lead.id,
            {"source": "website", "status": "new"},
        )
    ]


def test_a_status_step_records_one_row_by_the_operator(app, make_lead, operator, activity):
    lead = make_lead("new")
    activity()
    leads.start_review(lead, operator, "Looks fine")
    db.session.commit()
    assert activity() == [
        (
            "lead.status_changed",
            operator.id,
            operator.email,
            "lead",
            lead.id,
            lead.id,
            {"from": "new", "to": "reviewing", "note": "Looks fine"},
        )
    ]


def test_a_refused_step_records_nothing(app, make_lead, operator, activity):
    lead = make_lead("new")
    activity()
    with pytest.raises(leads.IllegalLeadTransition):
        leads.advance(lead, "ready_to_route", operator)
    assert activity() == []


def test_assigning_records_each_assignment_and_the_lead_step(
    app, make_lead, make_installer, operator, activity
):
    lead = make_lead("ready_to_route")
    first, second = make_installer(), make_installer()
    activity()
    a, b = delivery.assign_installers(lead, [first.id, second.id], operator)
    rows = activity()
    assert [
        (verb, actor, subject, subject_id, lead_id)
        for verb, actor, _, subject, subject_id, lead_id, _ in rows
    ] == [
        ("assignment.created", operator.id, "assignment", a.id, lead.id),
        ("assignment.created", operator.id, "assignment", b.id, lead.id),
        ("lead.status_changed", operator.id, "lead", lead.id, lead.id),
    ]
    assert rows[0][-1] == {"installer": first.company_name, "status": "queued"}


@pytest.fixture
def queued(make_lead, make_installer, operator):
    lead = make_lead("ready_to_route")
    (assignment,) = delivery.assign_installers(lead, [make_installer().id], operator)
    db.session.commit()
    return assignment


def test_a_sent_delivery_records_its_attempt_and_the_assignment_sent_by_the_system(
    app, queued, smtp_server, run_worker, activity
):
    activity()
    enqueue_deliveries([queued.id])
    run_worker()
    audit = db.session.scalars(sa.select(DeliveryAudit)).one()
    assert [row[:6] for row in activity()] == [
        ("delivery.attempted", None, "system", "delivery_audit", audit.id, queued.lead_id),
        ("assignment.status_changed", None, "system", "assignment", queued.id, queued.lead_id),
    ]
    assert activity()[0][-1] == {
        "attempt": 1,
        "recipient": queued.installer.delivery_email,
        "status": "sent",
        "smtp_code": 250,
        "smtp_reply": audit.smtp_reply,
    }


def test_a_permanent_failure_records_the_attempt_and_the_failure_with_its_reason(
    app, queued, smtp_server, run_worker, activity
):
    smtp_server.answer("550 5.1.1 Mailbox unavailable")
    activity()
    enqueue_deliveries([queued.id])
    run_worker()
    (attempt, failure) = activity()
    assert (attempt[0], attempt[-1]["status"], attempt[-1]["smtp_code"]) == (
        "delivery.attempted",
        "failed",
        550,
    )
    assert failure[0] == "assignment.status_changed"
    assert failure[-1]["to"] == "failed" and failure[-1]["reason"].startswith("550")


def test_resend_and_withdraw_record_one_row_each_by_the_operator(app, queued, operator, activity):
    delivery.record_delivery_failure(queued.id, "550 no such user")
    db.session.commit()
    activity()
    delivery.resend(queued, operator)
    delivery.withdraw(queued, operator)
    rows = activity()
    assert [(row[0], row[1], row[4], row[-1]["from"], row[-1]["to"]) for row in rows] == [
        ("assignment.status_changed", operator.id, queued.id, "failed", "queued"),
        ("assignment.status_changed", operator.id, queued.id, "queued", "withdrawn"),
    ]


def test_each_follow_up_action_records_one_row(app, queued, operator, activity):
    delivery.record_delivery_success(queued.id)
    db.session.commit()
    activity()
    follow_up = followups.create_follow_up(queued.lead, queued.installer_id, DUE, operator)
    followups.log_contact_attempt(follow_up, "no_response", operator)
    followups.log_contact_attempt(follow_up, "reached_customer", operator)
    followups.record_outcome(
        follow_up,
        followups.Outcome(satisfaction_outcome="satisfied", has_issue=True, issue_summary="Late"),
        operator,
    )
    followups.close(follow_up, operator)
    followups.mark_issue_resolved(follow_up, operator)
    rows = activity()
    assert {(row[1], row[3], row[4], row[5]) for row in rows} == {
        (operator.id, "follow_up", follow_up.id, queued.lead_id)
    }
    assert [row[0] for row in rows] == [
        "follow_up.created",
        "follow_up.contact_logged",
        "follow_up.contact_logged",
        "follow_up.outcome_recorded",
        "follow_up.closed",
        "follow_up.issue_resolved",
    ]
    assert rows[1][-1] == {
        "outcome": "no_response",
        "attempt": 1,
        "from": "pending",
        "to": "in_progress",
    }
    assert rows[2][-1] == {"outcome": "reached_customer", "attempt": 2}
    assert rows[4][-1] == {"from": "in_progress", "to": "closed_with_issue"}


def test_an_outcome_saved_again_as_it_was_records_nothing(app, queued, operator, activity):
    """A change that changes nothing writes nothing: the outcome form saved twice over the
    same entries (a double click, a save to be sure) is one row in the log, not two."""
    delivery.record_delivery_success(queued.id)
    follow_up = followups.create_follow_up(queued.lead, queued.installer_id, DUE, operator)
    db.session.commit()
    outcome = followups.Outcome(
        satisfaction_outcome="mixed", has_issue=True, issue_summary=" Late ", notes="Called"
    )
    activity()
    followups.record_outcome(follow_up, outcome, operator)
    followups.record_outcome(follow_up, outcome, operator)
    assert [row[0] for row in activity()] == ["follow_up.outcome_recorded"]
    followups.record_outcome(follow_up, followups.Outcome(satisfaction_outcome="mixed"), operator)
    rows = activity()
    assert [row[0] for row in rows] == ["follow_up.outcome_recorded"] * 2
    assert rows[1][-1]["has_issue"] is False


def test_admin_user_changes_record_one_row_each_by_the_admin(client, login_as, activity):
    admin = login_as("admin")
    activity()
    client.post(
        "/admin/users",
        data={"email": "new@ied.test", "role": "operator", "password": "a-long-password"},
    )
    (created,) = activity()
    user_id = created[4]
    client.post(f"/admin/users/{user_id}/role", data={"role": "manager"})
    client.post(f"/admin/users/{user_id}/role", data={"role": "manager"})  # no change
    client.post(f"/admin/users/{user_id}/active", data={"active": "0"})
    client.post(f"/admin/users/{user_id}/active", data={"active": "1"})
    rows = activity()
    assert [(row[0], row[1], row[3], row[4]) for row in rows] == [
        ("user.created", admin.id, "user", user_id),
        ("user.updated", admin.id, "user", user_id),
        ("user.deactivated", admin.id, "user", user_id),
        ("user.reactivated", admin.id, "user", user_id),
    ]
    assert rows[1][-1] == {"email": "new@ied.test", "role": {"from": "operator", "to": "manager"}}
    assert {row[5] for row in rows} == {None}


def test_admin_api_key_changes_record_one_row_each_and_never_the_key(client, login_as, activity):
    admin = login_as("admin")
    activity()
    page = client.post("/admin/api-keys", data={"source": "partner"}).get_data(as_text=True)
    api_key = db.session.scalars(sa.select(ApiKey)).one()
    client.post(f"/admin/api-keys/{api_key.id}/revoke")
    rows = activity()
    assert [(row[0], row[1], row[3], row[4]) for row in rows] == [
        ("api_key.created", admin.id, "api_key", api_key.id),
        ("api_key.revoked", admin.id, "api_key", api_key.id),
    ]
    raw_key = page.split(api_key.key_prefix, 1)[1].split("<", 1)[0]
    assert raw_key and raw_key not in str(rows)


def test_installer_changes_record_one_row_each_by_the_manager(client, login_as, activity):
    manager = login_as("manager")
    activity()
    client.post("/installers/new", data=INSTALLER_FORM)
    installer = db.session.scalars(sa.select(Installer)).one()
    edit = f"/installers/{installer.id}/edit"
    client.post(edit, data={**INSTALLER_FORM, "cycle_cap": "50"})
    client.post(edit, data={**INSTALLER_FORM, "cycle_cap": "50"})  # nothing changed
    client.post(edit, data={**INSTALLER_FORM, "delivery_email": "new@sunny.example"})
    client.post(f"/installers/{installer.id}/active", data={"active": "0"})
    client.post(f"/installers/{installer.id}/active", data={"active": "0"})  # already paused
    client.post(f"/installers/{installer.id}/active", data={"active": "1"})
    client.post(f"/installers/{installer.id}/revoke-links")
    rows = activity()
    assert {(row[1], row[2], row[3], row[4]) for row in rows} == {
        (manager.id, manager.email, "installer", installer.id)
    }
    assert [row[0] for row in rows] == [
        "installer.created",
        "installer.updated",
        "installer.updated",
        "installer.paused",
        "installer.resumed",
        "installer.links_revoked",
    ]
    assert rows[1][-1] == {"company": "Sunny Roofs", "changed": ["cycle_cap"]}
    assert rows[2][-1] == {
        "company": "Sunny Roofs",
        "changed": ["delivery_email", "cycle_cap"],
        "links_revoked": True,
    }


def test_a_new_return_limit_alone_is_an_installer_change_in_the_log(client, login_as, activity):
    login_as("manager")
    client.post("/installers/new", data=INSTALLER_FORM)
    installer = db.session.scalars(sa.select(Installer)).one()
    activity()
    client.post(
        f"/installers/{installer.id}/edit", data={**INSTALLER_FORM, "return_limit_percent": "10"}
    )
    rows = activity()
    assert [(row[0], row[-1]) for row in rows] == [
        ("installer.updated", {"company": "Sunny Roofs", "changed": ["return_limit_percent"]})
    ]
    assert db.session.get(Installer, installer.id).return_limit_percent == 10


def test_the_installers_first_open_is_recorded_once_by_the_installer(app, client, queued, activity):
    from ied.delivery.links import link_url

    delivery.record_delivery_success(queued.id)
    db.session.commit()
    url = link_url(queued).replace(app.config["PUBLIC_BASE_URL"], "")
    activity()
    client.get(url)  # fetching the link (a mail scanner) is not opening it
    assert activity() == []
    client.post(url)
    client.post(url)
    installer = queued.installer.company_name
    assert activity() == [
        (
            "assignment.opened",
            None,
            f"installer {installer}",
            "assignment",
            queued.id,
            queued.lead_id,
            {"installer": installer},
        )
    ]
