"""`flask --app wsgi ied worker` and `ied requeue-stalled`: the delivery side of the CLI."""

import multiprocessing
import os

import click
from flask import current_app
from flask.cli import with_appcontext
from rq import Worker
from rq.cron import CronScheduler
from rq.utils import import_attribute

from ied.queues import DELIVERY_QUEUE, delivery_queue, redis_connection
from ied.scheduling import PERIODIC_JOBS


def run_periodic_jobs(connection, jobs) -> None:
    """RQ's cron scheduler, in a child process: enqueues each periodic job on its interval."""
    scheduler = CronScheduler(connection=connection, name=f"ied-periodic-{os.getpid()}")
    for function, seconds in jobs:
        scheduler.register(function, queue_name=DELIVERY_QUEUE, interval=seconds, job_timeout=300)
    scheduler.start()


@click.command("worker")
@click.option("--burst", is_flag=True, help="Work until the queue is empty, then stop.")
@with_appcontext
def worker_command(burst: bool) -> None:
    """Run an RQ worker with its scheduler (retries) and the periodic jobs (sweeper, digest)."""
    app = current_app._get_current_object()
    connection = redis_connection(app)
    periodic = None
    if not burst:
        # Imported here, before forking, so a broken job path stops the worker at once.
        jobs = [(import_attribute(path), seconds) for path, seconds in PERIODIC_JOBS]
        periodic = multiprocessing.get_context("fork").Process(
            target=run_periodic_jobs, args=(connection, jobs), name="ied-periodic", daemon=True
        )
        periodic.start()
    worker = Worker([delivery_queue(app)], connection=connection)
    try:
        # SIGTERM: RQ finishes the job in hand, then stops (warm shutdown).
        worker.work(with_scheduler=True, burst=burst, logging_level="INFO")
    finally:
        if periodic is not None and periodic.is_alive():
            periodic.terminate()
            periodic.join(timeout=10)


@click.command("requeue-stalled")
@with_appcontext
def requeue_stalled_command() -> None:
    """Enqueue every queued delivery that no live job will deliver (also runs every minute)."""
    from ied.delivery.jobs import requeue_stalled

    click.echo(f"Enqueued {requeue_stalled()} stalled deliveries.")
