"""`flask --app wsgi ied worker` and `ied requeue-stalled`: the delivery side of the CLI."""

import logging
import multiprocessing
import os
import time
from collections.abc import Callable

import click
import redis
from flask import Flask, current_app
from flask.cli import with_appcontext
from rq import SimpleWorker
from rq.cron import CronScheduler
from rq.exceptions import StopRequested
from rq.utils import import_attribute

from ied.mail import close_smtp_session
from ied.queues import (
    MAINTENANCE_QUEUE,
    delivery_queue,
    maintenance_queue,
    redis_connection,
    retry_queue,
)
from ied.scheduling import PERIODIC_JOBS

log = logging.getLogger(__name__)
# While Redis is away: try again after 1, 2, 4 ... seconds, never waiting more than 30.
BACKOFF_FIRST, BACKOFF_MAX = 1.0, 30.0
# How often an idle worker tries to take over RQ's scheduler lock (and cleans RQ's registries);
# RQ's default is every 10 minutes.
MAINTENANCE_SECONDS = 60


class StopFlag:
    """Set by SIGTERM/SIGINT; outlives the RQ worker that received it."""

    requested = False


class DeliveryWorker(SimpleWorker):
    """RQ's non-forking worker: jobs run one after another in this process, so the database
    pool and the SMTP session outlive each job instead of being rebuilt by a forked work horse.
    RQ still enforces each job's timeout (SIGALRM: this is the main thread). Each job runs in a
    fresh app context, so one stopped half-way leaves no database session behind."""

    def __init__(self, app: Flask, stop: StopFlag, *args, **kwargs):
        self.app = app
        self.stop = stop
        super().__init__(*args, **kwargs)

    def execute_job(self, job, queue):
        with self.app.app_context():
            super().execute_job(job, queue)

    def request_stop(self, signum, frame):
        self.stop.requested = True  # SIGTERM/SIGINT: finish the job in hand, then stop
        super().request_stop(signum, frame)


class PeriodicScheduler(CronScheduler):
    """RQ's cron scheduler, stopping on SIGTERM or when the worker that started it is gone."""

    def __init__(self, *args, parent_pid: int, **kwargs):
        super().__init__(*args, **kwargs)
        self.parent_pid = parent_pid
        self.stop_requested = False

    def _request_stop(self, signum, frame):
        self.stop_requested = True
        super()._request_stop(signum, frame)

    def heartbeat(self) -> None:
        if os.getppid() != self.parent_pid:
            self.stop_requested = True
            raise StopRequested
        super().heartbeat()


def _pause(seconds: float, stopped: Callable[[], bool]) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and not stopped():
        time.sleep(0.2)


def _next_delay(delay: float, began: float) -> float:
    """Back off while failures come quickly; start again from 1 s after a good run."""
    return BACKOFF_FIRST if time.monotonic() - began > BACKOFF_MAX else min(delay * 2, BACKOFF_MAX)


def _wait_for_redis(connection, delay: float, stopped: Callable[[], bool]) -> bool:
    """Wait `delay`, then until Redis answers, backing off; False when asked to stop first."""
    try:
        while True:
            log.warning("Waiting %.0f s for Redis", delay)
            _pause(delay, stopped)
            if stopped():
                return False
            try:
                if connection.ping():
                    return True
            except redis.RedisError:
                pass
            delay = min(delay * 2, BACKOFF_MAX)
    except StopRequested:  # SIGTERM meanwhile, raised by RQ's handler, still installed
        return False


def run_periodic_jobs(connection, jobs, parent_pid: int) -> None:
    """The periodic jobs' scheduler, in a child process; rides out a Redis outage."""
    scheduler = PeriodicScheduler(
        connection=connection, name=f"ied-periodic-{os.getpid()}", parent_pid=parent_pid
    )
    for function, seconds in jobs:
        scheduler.register(
            function, queue_name=MAINTENANCE_QUEUE, interval=seconds, job_timeout=300
        )
    delay = BACKOFF_FIRST / 2
    while not scheduler.stop_requested:
        began = time.monotonic()
        try:
            scheduler.start()
        except redis.RedisError as error:
            log.warning("Periodic scheduler: Redis unavailable (%s)", error)
            delay = _next_delay(delay, began)
            if not _wait_for_redis(connection, delay, lambda: scheduler.stop_requested):
                return


def _start_periodic_child() -> multiprocessing.Process:
    # Imported here, before forking, so a broken job path stops the worker at once.
    jobs = [(import_attribute(path), seconds) for path, seconds in PERIODIC_JOBS]
    child = multiprocessing.get_context("fork").Process(
        target=run_periodic_jobs,
        args=(redis_connection(), jobs, os.getpid()),
        name="ied-periodic",
        daemon=True,
    )
    child.start()
    return child


def _work(app: Flask, burst: bool) -> None:
    """Run RQ's work loop; when it quits unasked (Redis went away mid-job, or anything else
    RQ calls an unhandled exception), run a new one once Redis answers again."""
    connection = redis_connection(app)
    stop = StopFlag()
    delay = BACKOFF_FIRST / 2
    while True:
        began = time.monotonic()
        worker = None
        try:
            worker = DeliveryWorker(
                app,
                stop,
                [maintenance_queue(app), retry_queue(app), delivery_queue(app)],
                connection=connection,
                maintenance_interval=MAINTENANCE_SECONDS,
            )
            log.info("Worker %s: listening on %s", worker.name, ", ".join(worker.queue_names()))
            worker.work(with_scheduler=True, burst=burst, logging_level="WARNING")
        except redis.RedisError as error:  # setting up, registering its birth or death
            log.warning("Worker: Redis unavailable (%s)", error)
        except StopRequested:  # SIGTERM while the next one was being set up
            return
        if burst or stop.requested:
            return
        log.warning("The worker stopped unasked; a new one takes over")
        if worker is not None and worker.pubsub_thread is not None:
            worker.pubsub_thread.stop()  # its teardown did not get that far
        delay = _next_delay(delay, began)
        if not _wait_for_redis(connection, delay, lambda: stop.requested):
            return


@click.command("worker")
@click.option("--burst", is_flag=True, help="Work until the queue is empty, then stop.")
@with_appcontext
def worker_command(burst: bool) -> None:
    """Run an RQ worker with its scheduler (retries) and the periodic jobs (sweeper, digest)."""
    app = current_app._get_current_object()
    periodic = None if burst else _start_periodic_child()
    try:
        # SIGTERM: the job in hand finishes, then the worker stops (warm shutdown).
        _work(app, burst)
    finally:
        close_smtp_session()
        if periodic is not None and periodic.is_alive():
            periodic.terminate()
            periodic.join(timeout=10)


@click.command("requeue-stalled")
@with_appcontext
def requeue_stalled_command() -> None:
    """Enqueue every queued delivery that no live job will deliver (also runs every minute)."""
    from ied.delivery.jobs import requeue_stalled

    click.echo(f"Enqueued {requeue_stalled()} stalled deliveries.")
