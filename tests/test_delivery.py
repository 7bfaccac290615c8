"""Delivery on real Redis (RQ) and a real SMTP server: audits, events, retries, failures."""

import re
import time
from datetime import timedelta

import pytest
import sqlalchemy as sa
from rq.registry import ScheduledJobRegistry

from ied.delivery import services
from ied.delivery.jobs import deliver_assignment, enqueue_deliveries, requeue_stalled
from ied.delivery.models import Assignment, DeliveryAudit, DeliveryEvent
from ied.extensions import db
from ied.queues import delivery_queue, retry_queue
from ied.timestamps import utcnow

FAST_RETRIES = [0.01, 0.01, 0.01]  # minutes: 0.6 s, so a test can wait for a retry


def count(model, *where) -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(model).where(*where))


def audits(assignment) -> list[tuple]:
    db.session.expire_all()
    return [
        (a.attempt_number, a.status, a.smtp_code)
        for a in db.session.scalars(
            sa.select(DeliveryAudit)
            .where(DeliveryAudit.assignment_id == assignment.id)
            .order_by(DeliveryAudit.attempt_number)
        )
    ]


@pytest.fixture
def assign(make_lead, make_installer, operator):
    def build(installers: int = 1, **installer_fields):
        lead = make_lead("ready_to_route", phone="07700 900456", address="12 Analytical Row")
        chosen = [make_installer(**installer_fields) for _ in range(installers)]
        assignments = services.assign_installers(lead, [i.id for i in chosen], operator)
        db.session.commit()
        enqueue_deliveries([a.id for a in assignments])
        return assignments

    return build


def link_in(message) -> str:
    text = message.get_body(preferencelist=("plain",)).get_content()
    return re.search(r"http://\S+/d/(\S+)", text).group(0)


def test_happy_path_two_installers_two_audits_two_events_and_a_link_that_opens(
    app, client, smtp_server, assign, run_worker
):
    first, second = assign(installers=2)
    run_worker()
    assert audits(first) == [(1, "sent", 250)]
    assert audits(second) == [(1, "sent", 250)]
    assert count(DeliveryEvent) == 2
    assert {m["To"] for m in smtp_server.messages} == {
        first.installer.delivery_email,
        second.installer.delivery_email,
    }
    message = next(m for m in smtp_server.messages if m["To"] == first.installer.delivery_email)
    assert message["Message-ID"] == services.message_id_for(first)
    lead = first.lead
    assert message["Subject"] == f"New lead {lead.reference}: Solar PV in SW1A"
    # The email carries no personal data: the signed page shows it once the installer asks.
    personal = (lead.customer_name, lead.email, lead.phone, lead.address, lead.postcode)
    link = link_in(message)
    for subtype in ("plain", "html"):
        part = message.get_body(preferencelist=(subtype,))
        assert part.get_content_type() == f"text/{subtype}"
        body = part.get_content()
        assert lead.reference in body and link in body and "SW1A" in body
        assert "Open the lead to see the customer" in body
        assert [fact for fact in personal if fact in body] == []
    url = link.replace(app.config["PUBLIC_BASE_URL"], "")
    assert client.get(url).status_code == 200  # fetching the link is not opening it
    page = client.post(url).get_data(as_text=True)
    assert [fact for fact in personal if fact not in page] == []
    db.session.refresh(first)
    assert (first.status, first.open_count) == ("sent", 1)
    assert first.first_opened_at is not None


def test_421_then_250_gives_two_audit_rows_and_one_event(app, smtp_server, assign, run_worker):
    app.config["DELIVERY_RETRY_MINUTES"] = FAST_RETRIES
    smtp_server.answer("421 4.3.0 Try again later")
    (assignment,) = assign()
    run_worker()
    db.session.refresh(assignment)
    assert assignment.status == "queued"
    assert "421" in assignment.last_error
    assert audits(assignment) == [(1, "failed", 421)]
    assert ScheduledJobRegistry(queue=retry_queue(app)).get_job_ids() == [
        f"delivery-{assignment.id}-2"
    ]
    time.sleep(1.0)  # the backoff is 0.6 s here
    run_worker()
    assert audits(assignment) == [(1, "failed", 421), (2, "sent", 250)]
    assert count(DeliveryEvent) == 1
    messages = smtp_server.messages
    assert len(messages) == 2 and messages[0]["Message-ID"] == messages[1]["Message-ID"]


def test_550_fails_at_once_without_event_and_resend_works_after_fixing_the_address(
    app, smtp_server, assign, run_worker, operator
):
    smtp_server.answer("550 5.1.1 Mailbox unavailable")
    (assignment,) = assign()
    run_worker()
    db.session.refresh(assignment)
    assert assignment.status == "failed"
    assert assignment.last_error.startswith("550")
    assert count(DeliveryEvent) == 0
    assignment.installer.delivery_email = "fixed@installers.test"
    services.resend(assignment, operator)
    db.session.commit()
    enqueue_deliveries([assignment.id])
    run_worker()
    db.session.refresh(assignment)
    assert assignment.status == "sent"
    assert audits(assignment) == [(1, "failed", 550), (2, "sent", 250)]
    assert smtp_server.messages[-1]["To"] == "fixed@installers.test"
    assert count(DeliveryEvent) == 1


def test_a_refused_recipient_is_a_permanent_failure(app, smtp_server, assign, run_worker):
    (assignment,) = assign()
    smtp_server.refused_recipients.add(assignment.installer.delivery_email)
    run_worker()
    db.session.refresh(assignment)
    assert assignment.status == "failed"
    assert audits(assignment) == [(1, "failed", 550)]


@pytest.mark.parametrize("trouble", ["connection refused", "hangup"])
def test_transient_network_failures_schedule_retries(app, smtp_server, assign, run_worker, trouble):
    if trouble == "connection refused":
        from tests.support.postgres import free_port

        app.config["SMTP_PORT"] = free_port()
    else:
        smtp_server.answer("hangup")
    (assignment,) = assign()
    run_worker()
    db.session.refresh(assignment)
    assert assignment.status == "queued"
    assert assignment.next_attempt_at > assignment.created_at + timedelta(seconds=30)
    (audit,) = assignment.audits
    assert audit.status == "failed" and audit.error
    assert trouble.split()[0] in audit.error or "dropped" in audit.error
    scheduled = ScheduledJobRegistry(queue=retry_queue(app)).get_job_ids()
    assert scheduled == [f"delivery-{assignment.id}-2"]


def test_retries_used_up_fail_the_assignment(app, smtp_server, assign, run_worker):
    app.config["DELIVERY_RETRY_MINUTES"] = [0.005]
    smtp_server.answer("451 4.7.1 Greylisted", "451 4.7.1 Greylisted")
    (assignment,) = assign()
    run_worker()
    time.sleep(0.6)
    run_worker()
    db.session.refresh(assignment)
    assert assignment.status == "failed"
    assert assignment.last_error.startswith("Retries used up: 451")
    assert audits(assignment) == [(1, "failed", 451), (2, "failed", 451)]


def test_the_same_job_run_twice_sends_once(app, smtp_server, assign):
    (assignment,) = assign()
    assert deliver_assignment(assignment.id) == "sent"
    assert deliver_assignment(assignment.id).startswith("skipped")
    assert len(smtp_server.messages) == 1
    assert count(DeliveryEvent) == 1


def test_two_workers_racing_on_one_assignment_send_one_email(
    app, smtp_server, assign, run_in_threads
):
    smtp_server.answer("stall:1")
    (assignment,) = assign()
    assignment_id = assignment.id
    db.session.remove()
    results = run_in_threads(
        app, lambda: deliver_assignment(assignment_id), lambda: deliver_assignment(assignment_id)
    )
    assert sorted(r.split(":")[0] for r in results) == ["sent", "skipped"], results
    assert len(smtp_server.messages) == 1
    assert count(DeliveryEvent) == 1
    assert count(DeliveryAudit) == 1


def test_redis_down_when_assigning_then_requeue_stalled_delivers(
    app, smtp_server, make_lead, make_installer, operator, run_worker, redis_url
):
    app.config["REDIS_URL"] = "unix:///nonexistent/ied-redis.sock"
    app.extensions.pop("ied_redis", None)
    lead = make_lead("ready_to_route")
    (assignment,) = services.assign_installers(lead, [make_installer().id], operator)
    db.session.commit()
    enqueue_deliveries([assignment.id])  # Redis is down: logged, not raised
    db.session.refresh(assignment)
    assert assignment.status == "queued"

    app.config["REDIS_URL"] = redis_url
    app.extensions.pop("ied_redis", None)
    assert requeue_stalled() == 1
    assert requeue_stalled() == 0  # its job is queued: not enqueued twice
    run_worker()
    db.session.refresh(assignment)
    assert assignment.status == "sent"
    assert count(DeliveryEvent) == 1


def test_requeue_stalled_leaves_scheduled_retries_alone(app, smtp_server, assign, run_worker):
    smtp_server.answer("421 4.3.0 Try again later")
    (assignment,) = assign()
    run_worker()
    assert requeue_stalled() == 0  # attempt 2 is scheduled and not yet due


def test_requeue_stalled_picks_up_a_due_retry_whose_job_was_lost(
    app, smtp_server, assign, run_worker
):
    smtp_server.answer("421 4.3.0 Try again later")
    (assignment,) = assign()
    run_worker()
    ScheduledJobRegistry(queue=retry_queue(app)).remove(
        f"delivery-{assignment.id}-2", delete_job=True
    )
    assignment.next_attempt_at = assignment.next_attempt_at - timedelta(minutes=5)  # time moved
    db.session.commit()
    assert requeue_stalled() == 1
    run_worker()
    db.session.refresh(assignment)
    assert assignment.status == "sent"


def test_requeue_stalled_enqueues_again_a_job_taken_off_the_queue_by_a_worker_that_died(
    app, smtp_server, assign, run_worker
):
    (assignment,) = assign()
    queue = delivery_queue(app)
    (job_id,) = queue.get_job_ids()  # the batch job that takes first attempts
    queue.connection.lrem(queue.key, 0, job_id)  # popped; the worker died before starting it
    assert queue.fetch_job(job_id).get_status() == "queued"
    assert requeue_stalled() == 1
    assert requeue_stalled() == 0
    run_worker()
    db.session.refresh(assignment)
    assert assignment.status == "sent"


def test_requeue_stalled_rescues_a_retry_left_overdue_in_rqs_schedule(
    app, smtp_server, assign, run_worker
):
    """No worker holds RQ's scheduler lock (its holder was killed): the retry sits in the
    schedule past its time. The sweeper gives RQ's scheduler some grace, then takes it."""
    smtp_server.answer("421 4.3.0 Try again later")
    (assignment,) = assign()
    run_worker()
    job_id = f"delivery-{assignment.id}-2"
    schedule = ScheduledJobRegistry(queue=retry_queue(app))

    def time_moved(seconds: int) -> None:
        assignment.next_attempt_at = utcnow() - timedelta(seconds=seconds)
        db.session.commit()
        schedule.connection.zadd(schedule.key, {job_id: time.time() - seconds})

    time_moved(5)
    assert requeue_stalled() == 0  # just due: RQ's scheduler may still move it
    time_moved(60)
    assert requeue_stalled() == 1
    assert schedule.get_job_ids() == []  # taken out of the schedule, so enqueued once
    assert retry_queue(app).get_job_ids() == [job_id]  # retries go before first attempts
    assert requeue_stalled() == 0  # now queued: not enqueued twice
    run_worker()
    db.session.refresh(assignment)
    assert assignment.status == "sent"
    assert audits(assignment) == [(1, "failed", 421), (2, "sent", 250)]
    assert count(DeliveryEvent) == 1


def test_withdrawn_and_sent_assignments_are_not_delivered(app, smtp_server, assign, operator):
    (assignment,) = assign()
    services.withdraw(assignment, operator)
    db.session.commit()
    assert deliver_assignment(assignment.id).startswith("skipped")
    assert smtp_server.messages == []
    assert count(Assignment, Assignment.status == "withdrawn") == 1


def test_a_resend_gets_a_fresh_set_of_retries(app, smtp_server, assign, run_worker, operator):
    app.config["DELIVERY_RETRY_MINUTES"] = [0.005]
    smtp_server.answer("421 busy", "421 busy", "421 busy")
    (assignment,) = assign()
    run_worker()
    time.sleep(0.6)
    run_worker()
    db.session.refresh(assignment)
    assert assignment.status == "failed"  # two attempts: the first and its one retry
    services.resend(assignment, operator)
    db.session.commit()
    enqueue_deliveries([assignment.id])
    run_worker()
    db.session.refresh(assignment)
    assert assignment.status == "queued"  # attempt 3 failed, but it is this round's first
    time.sleep(0.6)
    run_worker()
    db.session.refresh(assignment)
    assert assignment.status == "sent"
    assert [a[1] for a in audits(assignment)] == ["failed", "failed", "failed", "sent"]


def test_resend_is_refused_when_the_installer_is_paused_or_full(
    app, smtp_server, make_lead, make_installer, operator, run_worker
):
    installer = make_installer(cycle_cap=1)
    failed = services.assign_installers(make_lead("ready_to_route"), [installer.id], operator)[0]
    db.session.commit()
    services.record_delivery_failure(failed.id, "550 no such user")
    other = services.assign_installers(make_lead("ready_to_route"), [installer.id], operator)[0]
    db.session.commit()
    services.record_delivery_success(other.id)  # the one slot of this cycle is now used
    db.session.commit()
    with pytest.raises(services.AssignmentRefused, match=r"cap reached \(used 1 of 1"):
        services.resend(failed, operator)
    db.session.rollback()
    installer.cycle_cap = None
    installer.active = False
    db.session.commit()
    with pytest.raises(services.AssignmentRefused, match="paused"):
        services.resend(failed, operator)
    db.session.rollback()
    assert db.session.get(Assignment, failed.id).status == "failed"
    assert count(DeliveryEvent) == 1
