"""First attempts go out in batches: audit rows committed before the first email, one SMTP
session, outcomes recorded together; every figure stays exact, with a few statements a batch."""

from datetime import timedelta

import pytest
import sqlalchemy as sa
from rq.timeouts import JobTimeoutException, UnixSignalDeathPenalty

from ied.activity.models import ActivityEntry
from ied.delivery import services
from ied.delivery.jobs import (
    NOT_SENT,
    deliver_due_assignments,
    enqueue_deliveries,
    job_id_for,
)
from ied.delivery.models import Assignment, DeliveryAudit, DeliveryEvent
from ied.extensions import db
from ied.finance.models import CycleBilling
from ied.finance.services import cycle_billing_drift
from ied.leads.models import Lead
from ied.queues import delivery_queue, retry_queue
from ied.tallies.services import tally_drift
from ied.timestamps import utcnow


def count(model, *where) -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(model).where(*where))


def queue_leads(make_lead, installers, operator, leads: int) -> list[Assignment]:
    """Compare-quotes leads, each assigned to every installer given; committed."""
    assignments = []
    for _ in range(leads):
        lead = make_lead("ready_to_route")
        assignments += services.assign_installers(lead, [i.id for i in installers], operator)
    db.session.commit()
    return assignments


def statements_of(app, action) -> list[str]:
    seen = []

    def record(conn, cursor, statement, *args):
        seen.append(statement)

    sa.event.listen(db.engine, "before_cursor_execute", record)
    try:
        action()
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", record)
    return seen


def test_one_batch_sends_everything_due_and_keeps_every_figure_exact(
    app, smtp_server, make_lead, make_installer, operator
):
    app.config["DELIVERY_BATCH_SIZE"] = 50
    installers = [make_installer(), make_installer(billing_anchor_day=15)]
    assignments = queue_leads(make_lead, installers, operator, 6)  # 12 deliveries, 6 leads
    smtp_server.refused_recipients.add(installers[1].delivery_email)  # one installer refuses

    assert deliver_due_assignments() == "failed 6, sent 6"

    db.session.expire_all()
    statuses = dict(
        db.session.execute(sa.select(Assignment.installer_id, Assignment.status).distinct()).all()
    )
    assert statuses == {installers[0].id: "sent", installers[1].id: "failed"}
    assert len(smtp_server.messages) == 6
    assert count(DeliveryEvent) == 6  # one per sent assignment, none for a failed one
    assert (
        count(DeliveryAudit) == 12 and count(DeliveryAudit, DeliveryAudit.status == "sending") == 0
    )
    # The cycle counters equal a direct count of the events.
    assert cycle_billing_drift() == []
    (counter,) = db.session.scalars(sa.select(CycleBilling)).all()
    assert (counter.installer_id, counter.billed_count) == (installers[0].id, 6)
    # Each attempt in the activity log once; each status change once.
    attempted = db.session.scalars(
        sa.select(ActivityEntry).where(ActivityEntry.verb == "delivery.attempted")
    ).all()
    assert sorted(entry.subject_id for entry in attempted) == sorted(
        db.session.scalars(sa.select(DeliveryAudit.id))
    )
    assert {entry.lead_id for entry in attempted} == {a.lead_id for a in assignments}
    changes = db.session.scalars(
        sa.select(ActivityEntry.details["to"].as_string()).where(
            ActivityEntry.verb == "assignment.status_changed"
        )
    ).all()
    assert sorted(changes) == ["failed"] * 6 + ["sent"] * 6
    # Each lead needs attention from its failed delivery's queueing on (Needs attention).
    for lead in db.session.scalars(sa.select(Lead)):
        (failed,) = [a for a in lead.assignments if a.status == "failed"]
        assert lead.delivery_attention_at == failed.queued_at


def test_a_batch_costs_the_same_statements_whatever_its_size(
    app, smtp_server, make_lead, make_installer, operator
):
    app.config["DELIVERY_BATCH_SIZE"] = 100
    installers = [make_installer() for _ in range(3)]
    queue_leads(make_lead, installers, operator, 2)
    small = statements_of(app, deliver_due_assignments)
    queue_leads(make_lead, installers, operator, 10)
    large = statements_of(app, deliver_due_assignments)
    assert count(Assignment, Assignment.status == "sent") == 36
    if db.engine.dialect.name == "postgresql":  # SQLite inserts returning ids one row at a time
        assert len(large) == len(small) <= 17, large
    else:
        assert len(large) < 5 * len(small)


def test_attention_of_a_lead_with_a_delivery_still_queued(
    app, smtp_server, make_lead, make_installer, operator
):
    """A lead one of whose deliveries is not yet due still needs attention
    DELIVERY_QUEUED_ALERT_MINUTES after that delivery's queueing, while the other one is sent."""
    first, second = queue_leads(make_lead, [make_installer(), make_installer()], operator, 1)
    second.next_attempt_at = utcnow() + timedelta(hours=1)
    db.session.commit()
    assert deliver_due_assignments() == "sent 1"
    db.session.expire_all()
    lead = db.session.get(Lead, first.lead_id)
    assert [a.status for a in sorted(lead.assignments, key=lambda a: a.id)] == ["sent", "queued"]
    assert lead.delivery_attention_at == second.queued_at + services.queued_alert_delay()


def test_two_batch_jobs_at_once_take_different_assignments(
    app, smtp_server, make_lead, make_installer, operator, run_in_threads
):
    app.config["DELIVERY_BATCH_SIZE"] = 5
    smtp_server.answer("stall:0.5")  # the first batch is still sending when the second starts
    queue_leads(make_lead, [make_installer() for _ in range(2)], operator, 5)
    db.session.remove()
    results = run_in_threads(app, deliver_due_assignments, deliver_due_assignments)
    assert sum(int(r.split()[-1]) for r in results if r != "nothing due") == 10, results
    assert len({m["Message-ID"] for m in smtp_server.messages}) == len(smtp_server.messages) == 10
    assert count(DeliveryEvent) == 10 and count(DeliveryAudit) == 10


def test_emails_whose_turn_comes_too_late_are_not_sent_and_retried_like_a_failure(
    app, smtp_server, make_lead, make_installer, operator
):
    """An SMTP server slow enough to eat the attempts' lease: the emails after the deadline
    are not sent (their attempts say so), so no attempt outlives its lease unreported."""
    app.config.update(DELIVERY_LEASE_SECONDS=3, SMTP_TIMEOUT=1, DELIVERY_BATCH_SIZE=3)
    smtp_server.answer("stall:1.5")  # longer than the time left to send after it
    queue_leads(make_lead, [make_installer() for _ in range(3)], operator, 1)
    assert deliver_due_assignments() == "retry 3"
    db.session.expire_all()
    audits = db.session.scalars(sa.select(DeliveryAudit).order_by(DeliveryAudit.id)).all()
    assert audits[0].status == "failed" and "timed out" in audits[0].error
    assert [(a.status, a.error) for a in audits[1:]] == [("failed", NOT_SENT)] * 2
    assert len(smtp_server.messages) == 1
    scheduled = retry_queue(app).scheduled_job_registry.get_job_ids()
    assert sorted(scheduled) == sorted(job_id_for(a.assignment_id, 2) for a in audits)
    assert count(Assignment, Assignment.status == "queued") == 3


def test_enqueuing_a_backlog_makes_one_batch_job_per_batch_up_to_the_parallel_limit(
    app, make_lead, make_installer, operator
):
    app.config.update(DELIVERY_BATCH_SIZE=2, DELIVERY_PARALLEL_BATCHES=3)
    installers = [make_installer() for _ in range(2)]
    assignments = queue_leads(make_lead, installers, operator, 1)
    enqueue_deliveries([a.id for a in assignments])
    assert delivery_queue(app).count == 1  # two first attempts: one batch
    more = queue_leads(make_lead, installers, operator, 5)
    enqueue_deliveries([a.id for a in more])
    assert delivery_queue(app).count == 3  # ten more due, but at most three jobs wait
    enqueue_deliveries([more[0].id])
    assert delivery_queue(app).count == 3  # enough are waiting already


def test_the_email_written_by_hand_is_mime_any_client_reads_non_ascii_included(
    app, smtp_server, make_lead, make_installer, operator
):
    app.config["MAIL_FROM"] = "IED Léads <leads@ied.localhost>"
    plain = make_installer()
    accented = make_installer(company_name="Énergie Soleil Ltd", contact_name="Zoë Brontë")
    queue_leads(make_lead, [plain, accented], operator, 1)
    assert deliver_due_assignments() == "sent 2"
    by_recipient = {m["To"]: m for m in smtp_server.messages}  # parsed by the email package
    for installer in (plain, accented):
        message = by_recipient[installer.delivery_email]
        assert str(message["From"]) == "IED Léads <leads@ied.localhost>"
        assert message["Subject"].startswith("New lead IED-")
        assert message.get_content_type() == "multipart/alternative"
        text = message.get_body(preferencelist=("plain",)).get_content()
        html = message.get_body(preferencelist=("html",)).get_content()
        assert "/d/" in text and "/d/" in html
    accented_text = by_recipient[accented.delivery_email].get_body(preferencelist=("plain",))
    assert accented_text["Content-Transfer-Encoding"] == "base64"
    assert "Hello Zoë Brontë," in accented_text.get_content()
    assert (
        "Énergie Soleil Ltd"
        in by_recipient[accented.delivery_email].get_body(preferencelist=("html",)).get_content()
    )
    plain_text = by_recipient[plain.delivery_email].get_body(preferencelist=("plain",))
    assert plain_text["Content-Transfer-Encoding"] == "7bit"


def test_a_batch_cut_off_by_its_job_timeout_records_what_the_server_accepted(
    app, smtp_server, make_lead, make_installer, operator
):
    """RQ stops a job past its timeout by raising inside it (SIGALRM, as here): the emails the
    server accepted before are recorded sent, so the sweeper never sends them again; the one
    cut off and those after it are closed as not sent and retried."""
    app.config.update(DELIVERY_BATCH_SIZE=5)
    smtp_server.answer("250 2.0.0 OK", "250 2.0.0 OK", "stall:3")
    queue_leads(make_lead, [make_installer()], operator, 5)
    with pytest.raises(JobTimeoutException), UnixSignalDeathPenalty(1, JobTimeoutException):
        deliver_due_assignments()
    db.session.expire_all()
    audits = db.session.scalars(sa.select(DeliveryAudit).order_by(DeliveryAudit.id)).all()
    assert [audit.status for audit in audits] == ["sent", "sent", "failed", "failed", "failed"]
    assert {audit.error for audit in audits[2:]} == {NOT_SENT}
    assert count(DeliveryEvent) == 2
    assert count(Assignment, Assignment.status == "queued") == 3
    assert cycle_billing_drift() == [] and tally_drift() == []


def test_an_email_that_cannot_be_written_fails_its_own_delivery_and_the_batch_goes_out(
    app, smtp_server, make_lead, make_installer, operator
):
    """An installer stored with an address SMTP cannot carry without SMTPUTF8 (one the form
    accepted before it refused them): its delivery fails at once, audited, instead of the
    batch job crashing before any email of the batch went out, again at every retry of it."""
    unwritable = make_installer(delivery_email="jörg@installers.test")
    plain = make_installer()
    bad, good = queue_leads(make_lead, [unwritable, plain], operator, 1)
    assert deliver_due_assignments() == "failed 1, sent 1"
    db.session.expire_all()
    assert [m["To"] for m in smtp_server.messages] == [plain.delivery_email]
    assert (good.status, bad.status) == ("sent", "failed")
    (audit,) = bad.audits
    assert audit.status == "failed" and audit.finished_at is not None
    assert "jörg@installers.test" in bad.last_error
    assert count(DeliveryEvent) == 1
    assert tally_drift() == [] and cycle_billing_drift() == []
