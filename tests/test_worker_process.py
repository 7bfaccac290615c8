"""The real worker process: killed mid-send it loses nothing; SIGTERM stops it cleanly."""

import json
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
from ied.queues import maintenance_queue, redis_connection
from tests.support.redis_server import ThrowawayRedis
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
        registry = FinishedJobRegistry(queue=maintenance_queue(app))
        wait_for(
            lambda: any(
                job and job.func_name == "ied.delivery.jobs.requeue_stalled"
                for job in (maintenance_queue(app).fetch_job(i) for i in registry.get_job_ids())
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


def test_a_production_worker_writes_json_lines_only_and_one_a_job(app, tmp_path):
    """RQ's own per-job lines (plain text, five a job) are left to our one JSON line a job."""
    output_path = tmp_path / "worker.log"
    with output_path.open("w") as output:
        worker = start_worker(app, output=output, LOG_FORMAT="json")
        try:
            registry = FinishedJobRegistry(queue=maintenance_queue(app))
            wait_for(lambda: registry.get_job_ids())  # the sweeper ran once
            wait_for(lambda: "requeue_stalled" in output_path.read_text())
            worker.send_signal(signal.SIGTERM)
            assert worker.wait(30) == 0
        finally:
            if worker.poll() is None:
                os.killpg(worker.pid, signal.SIGKILL)
    lines = [json.loads(line) for line in output_path.read_text().splitlines() if line.strip()]
    jobs = [line for line in lines if line.get("function") == "requeue_stalled"]
    assert jobs and all(line["outcome"] == "0" and "job_id" in line for line in jobs), lines
    assert any(line["message"].startswith("Worker ") for line in lines)  # its start, once
    assert not [line for line in lines if line["logger"].startswith("rq.")], lines


def _sent(assignment) -> bool:
    db.session.rollback()
    db.session.refresh(assignment)
    return assignment.status == "sent"


def test_the_worker_and_its_periodic_jobs_ride_out_a_redis_outage_mid_job(
    app, smtp_server, make_lead, make_installer, operator
):
    own_redis, shared_redis = ThrowawayRedis(), app.config["REDIS_URL"]
    app.config["REDIS_URL"] = own_redis.start()
    app.extensions.pop("ied_redis", None)
    connection = redis_connection(app)
    worker = start_worker(app)
    try:
        wait_for(lambda: len(Worker.all(connection=connection)) == 1)
        smtp_server.answer("stall:3")  # Redis goes away while this delivery is in hand
        first = _assigned(make_lead, make_installer, operator)
        assert smtp_server.data_received.wait(30)
        own_redis.halt()
        wait_for(lambda: _sent(first))  # recorded in the database without Redis
        time.sleep(3)  # RQ's bookkeeping after the job failed: the worker loop started over
        assert worker.poll() is None, "the worker quit"

        own_redis.start()  # back, and empty: every queue and registration is gone
        second = _assigned(make_lead, make_installer, operator)
        wait_for(lambda: _sent(second), seconds=60)
        finished = FinishedJobRegistry(queue=maintenance_queue(app))
        wait_for(lambda: finished.count > 0, seconds=90)  # the periodic child came back too
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(30) == 0
    finally:
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGKILL)
        own_redis.stop()
        app.config["REDIS_URL"] = shared_redis
        app.extensions.pop("ied_redis").close()


def _assigned(make_lead, make_installer, operator):
    lead = make_lead("ready_to_route")
    (assignment,) = services.assign_installers(lead, [make_installer().id], operator)
    db.session.commit()
    enqueue_deliveries([assignment.id])
    return assignment
