"""The real worker process: killed mid-send it loses nothing; SIGTERM stops it cleanly."""

import os
import signal
import time

import pytest
import sqlalchemy as sa
from rq import Worker
from rq.registry import FinishedJobRegistry

from ied.delivery import services
from ied.delivery.jobs import ABANDONED, enqueue_deliveries, requeue_stalled
from ied.delivery.models import DeliveryAudit, DeliveryEvent
from ied.extensions import db
from ied.queues import delivery_queue, redis_connection
from tests.support.worker_process import start_worker, wait_for

LEASE_SECONDS = 2


def test_worker_killed_mid_send_ends_sent_with_both_attempts_audited_and_one_event(
    app, smtp_server, make_lead, make_installer, operator, run_worker
):
    smtp_server.answer("stall:60")  # the first attempt hangs after the message arrives
    lead = make_lead("ready_to_route")
    (assignment,) = services.assign_installers(lead, [make_installer().id], operator)
    db.session.commit()
    enqueue_deliveries([assignment.id])

    worker = start_worker(app, "--burst", DELIVERY_LEASE_SECONDS=str(LEASE_SECONDS))
    try:
        assert smtp_server.data_received.wait(30), "the worker never reached the SMTP server"
    finally:
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait(10)

    db.session.expire_all()
    (in_flight,) = db.session.scalars(sa.select(DeliveryAudit)).all()
    assert in_flight.status == "sending"
    assert requeue_stalled() == 0  # lease still running: not abandoned yet
    time.sleep(LEASE_SECONDS + 0.5)  # the lease runs out
    assert requeue_stalled() == 1
    run_worker()

    db.session.refresh(assignment)
    assert assignment.status == "sent"
    rows = db.session.scalars(sa.select(DeliveryAudit).order_by(DeliveryAudit.attempt_number)).all()
    assert [(r.attempt_number, r.status) for r in rows] == [(1, "failed"), (2, "sent")]
    assert rows[0].error == ABANDONED and rows[0].finished_at is not None
    assert db.session.scalar(sa.select(sa.func.count()).select_from(DeliveryEvent)) == 1
    # SMTP cannot promise exactly once: at most one repeat, carrying the same Message-ID.
    assert len(smtp_server.messages) == 2
    assert smtp_server.messages[0]["Message-ID"] == smtp_server.messages[1]["Message-ID"]


def test_sigterm_stops_the_worker_cleanly_after_its_scheduler_ran_the_sweeper(app, smtp_server):
    connection = redis_connection(app)
    worker = start_worker(app)
    try:
        wait_for(lambda: len(Worker.all(connection=connection)) == 1)
        registry = FinishedJobRegistry(queue=delivery_queue(app))
        wait_for(
            lambda: any(
                job and job.func_name == "ied.delivery.jobs.requeue_stalled"
                for job in (delivery_queue(app).fetch_job(i) for i in registry.get_job_ids())
            )
        )
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(30) == 0
    finally:
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGKILL)
    wait_for(lambda: len(Worker.all(connection=connection)) == 0, seconds=5)
    with pytest.raises(ProcessLookupError):
        os.killpg(worker.pid, 0)  # the periodic scheduler child is gone too
