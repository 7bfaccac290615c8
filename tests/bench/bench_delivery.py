"""`make bench-delivery`: emails per second with 2 real workers to a local SMTP sink, against the
rate of a no-op RQ job on the same Redis and the same workers (the queue floor).

Targets (issue 10): at least 100 emails/s, and at least half the no-op job rate. The script
starts a throwaway PostgreSQL and Redis (unless --database-url / --redis-url are given), makes
the queued assignments through the real services, starts the workers (`flask --app wsgi ied
worker`) with RQ suspended, enqueues everything as the app does after an assignment's commit,
resumes RQ, and times the work from what the workers recorded: the delivery rate from the
database (the first attempt's audit row opened to the last delivery event recorded, so every
commit counts), the no-op rate from RQ's own job timestamps. It prints both and their ratio and
exits 1 when a target is missed. `measure(app, ...)` is what `make bench` reuses.

What a job is differs on the two sides, and that is the point of the comparison: a no-op job is
RQ's cost of one job; a delivery job is a batch (`deliver_due_assignments`: up to
DELIVERY_BATCH_SIZE emails, audit rows committed before the first one is sent, one SMTP session,
outcomes recorded in one transaction), so the ratio says how close an email comes to the cost
of the cheapest job RQ can run. Both rates are per second of wall clock with the same two
workers on the same machine.
"""

import argparse
import sys
import time
from dataclasses import dataclass

import sqlalchemy as sa
from flask import Flask
from flask_migrate import upgrade
from rq import Worker
from rq.suspension import resume, suspend

from ied import create_app
from ied.delivery.jobs import enqueue_deliveries
from ied.delivery.models import Assignment, DeliveryAudit, DeliveryEvent
from ied.extensions import db
from ied.queues import delivery_queue, redis_connection
from tests.support.deliveries import (
    SmtpSink,
    make_installers,
    make_operator,
    noop,
    queued_assignments,
)
from tests.support.postgres import ThrowawayPostgres
from tests.support.redis_server import ThrowawayRedis
from tests.support.worker_process import start_worker, wait_for

EMAILS_PER_SECOND_TARGET = 100
FLOOR_RATIO_TARGET = 0.5


@dataclass
class DeliveryFigures:
    workers: int
    emails: int
    emails_per_second: float
    noop_jobs: int
    noop_per_second: float

    @property
    def ratio(self) -> float:
        return self.emails_per_second / self.noop_per_second

    @property
    def met(self) -> bool:
        return (
            self.emails_per_second >= EMAILS_PER_SECOND_TARGET and self.ratio >= FLOOR_RATIO_TARGET
        )

    def lines(self) -> list[str]:
        verdict = "met" if self.met else "MISSED"
        return [
            f"delivery: {self.emails} emails, {self.workers} workers: "
            f"{self.emails_per_second:.0f} emails/s (target >= {EMAILS_PER_SECOND_TARGET})",
            f"queue floor: {self.noop_jobs} no-op RQ jobs: {self.noop_per_second:.0f} jobs/s",
            f"ratio: {self.ratio:.2f} (target >= {FLOOR_RATIO_TARGET}): {verdict}",
        ]


def _noop_rate(app: Flask, jobs: int) -> float:
    connection = redis_connection(app)
    queue = delivery_queue(app)
    suspend(connection)
    for _ in range(jobs):
        queue.enqueue(noop, result_ttl=3600)
    registry = queue.finished_job_registry
    resume(connection)
    # From the first finished job to the last: the workers' start-up lag (they look at RQ's
    # suspension once a second) stays out of it.
    while (first := registry.count) == 0:
        time.sleep(0.005)
    began = time.monotonic()
    while (done := registry.count) < jobs:
        time.sleep(0.005)
    return (done - first) / (time.monotonic() - began)


def _delivery_rate(app: Flask, assignment_ids: list[int]) -> float:
    connection = redis_connection(app)
    suspend(connection)
    enqueue_deliveries(assignment_ids)
    resume(connection)

    def all_sent() -> bool:
        db.session.rollback()
        sent = db.session.scalar(
            sa.select(sa.func.count()).select_from(Assignment).where(Assignment.status == "sent")
        )
        return sent >= len(assignment_ids)

    wait_for(all_sent, seconds=600)
    first = db.session.scalar(sa.select(sa.func.min(DeliveryAudit.started_at)))
    last = db.session.scalar(sa.select(sa.func.max(DeliveryEvent.occurred_at)))
    return len(assignment_ids) / (last - first).total_seconds()


def measure(app: Flask, *, emails: int = 1000, noop_jobs: int = 2000, workers: int = 2):
    """Both rates on the app's database and Redis, with an SMTP sink of its own."""
    sink = SmtpSink().start()
    app.config.update(SMTP_HOST="127.0.0.1", SMTP_PORT=sink.port)
    processes = []
    try:
        with app.app_context():
            began = time.monotonic()
            operator = make_operator("bench-operator@bench.test")
            assignment_ids = queued_assignments(emails, make_installers(20), operator)
            print(f"({emails} assignments made in {time.monotonic() - began:.0f} s)", flush=True)
            connection = redis_connection(app)
            suspend(connection)
            processes = [start_worker(app) for _ in range(workers)]
            wait_for(lambda: len(Worker.all(connection=connection)) >= workers, seconds=60)
            noop_rate = _noop_rate(app, noop_jobs)
            email_rate = _delivery_rate(app, assignment_ids)
            assert sink.handler.accepted == emails, (sink.handler.accepted, emails)
        return DeliveryFigures(workers, emails, email_rate, noop_jobs, noop_rate)
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(30)
        sink.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--emails", type=int, default=1000)
    parser.add_argument("--noop-jobs", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--database-url", help="an empty, migrated database (default: throwaway)")
    parser.add_argument("--redis-url", help="an empty Redis (default: throwaway)")
    args = parser.parse_args(argv)

    postgres = redis_server = None
    try:
        if args.database_url:
            database_url = args.database_url
        else:
            postgres = ThrowawayPostgres()
            database_url = postgres.start()
        if args.redis_url:
            redis_url = args.redis_url
        else:
            redis_server = ThrowawayRedis()
            redis_url = redis_server.start()
        app = create_app(
            {
                "SQLALCHEMY_DATABASE_URI": database_url,
                "REDIS_URL": redis_url,
                "SECRET_KEY": "bench-delivery-secret",
                "PUBLIC_BASE_URL": "http://127.0.0.1:5000",
            }
        )
        with app.app_context():
            upgrade()
        started = time.monotonic()
        figures = measure(app, emails=args.emails, noop_jobs=args.noop_jobs, workers=args.workers)
        for line in figures.lines():
            print(line, flush=True)
        print(f"(whole run {time.monotonic() - started:.0f} s)", flush=True)
        return 0 if figures.met else 1
    finally:
        if redis_server:
            redis_server.stop()
        if postgres:
            postgres.stop()


if __name__ == "__main__":
    sys.exit(main())
