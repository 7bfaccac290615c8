"""`make faults`: deliveries through everything that goes wrong in production, end to end.

On a throwaway PostgreSQL and a real Redis, with real worker processes and a real SMTP server:

- N deliveries (default 1,000): most queued up front, a few assigned by operators over HTTP
  during the run, and failed ones resent by them;
- the SMTP server answers 421, 451, 550 or hangs up at random (seeded);
- every few seconds one of the two workers is SIGKILLed, process group and all, and restarted;
- Redis is stopped for a while (30 s by default) and restarted empty;
- two operators use the back office over HTTP throughout.

Then it checks the figures and exits 1 when one is off: every assignment `sent` or `failed`,
no attempt left `sending`, audit rows numbered 1..n per assignment and at least as many as the
SMTP conversations that reached DATA (no attempt without its audit row), one event per sent
assignment, sent <= emails accepted <= sent + attempts abandoned by a killed worker, no retry
overdue by more than 60 s, every abandoned delivery attempted again within the lease + 60 s,
no answer >= 500 to the operators, no worker quitting on its own, and a clean SIGTERM stop.

Not a pytest file; tests/test_faults.py runs a smaller scenario in the suite.
"""

import argparse
import contextlib
import http.client
import http.cookiejar
import logging
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import redis
import sqlalchemy as sa
from aiosmtpd.controller import Controller
from flask import Flask
from flask_migrate import upgrade
from rq import Worker

from ied import create_app
from ied.delivery.jobs import ABANDONED, enqueue_deliveries
from ied.delivery.models import Assignment, DeliveryAudit, DeliveryEvent
from ied.extensions import db
from ied.leads.models import Lead
from ied.queues import redis_connection
from ied.timestamps import utcnow
from tests.support.deliveries import (
    make_installers,
    make_operator,
    queued_assignments,
    ready_lead,
)
from tests.support.live_server import LiveServer
from tests.support.postgres import ThrowawayPostgres, free_port
from tests.support.redis_server import ThrowawayRedis
from tests.support.worker_process import start_worker

PASSWORD = "faults-password-1"
LEASE_SECONDS = 10
RETRY_MINUTES = "0.05,0.1,0.2,0.3"  # 3, 6, 12, 18 s: a failing delivery runs its course
OVERDUE_LIMIT = 60
STARTUP_SECONDS = 15  # a worker process is surely up and handling signals by then
# What the SMTP server answers at DATA, and how often.
ANSWERS = (
    ("250 2.0.0 OK", 70),
    ("451 4.7.1 Greylisted, try again", 9),
    ("421 4.3.2 Too busy, closing", 8),
    ("hangup", 9),
    ("550 5.7.1 Rejected", 4),
)


@dataclass
class Scenario:
    deliveries: int = 1000
    outage_seconds: float = 30
    kill_every: tuple[float, float] = (3.0, 6.0)
    operator_share: float = 0.05  # of the deliveries, assigned by operators over HTTP
    seed: int = 9
    deadline_seconds: float = 900


class ChaosHandler:
    def __init__(self, seed: int):
        self.random = random.Random(seed)
        self.lock = threading.Lock()
        self.data = Counter()  # Message-ID -> conversations that reached DATA
        self.accepted = 0

    async def handle_DATA(self, server, session, envelope):
        message_id = _message_id(envelope.content)
        with self.lock:
            self.data[message_id] += 1
            answer = self.random.choices([a for a, _ in ANSWERS], weights=[w for _, w in ANSWERS])[
                0
            ]
            if answer.startswith("250"):
                self.accepted += 1
        if answer == "hangup":
            server.transport.close()
            return "421 closing"
        return answer


def _message_id(content: bytes) -> str:
    for line in content.split(b"\r\n"):
        if line.lower().startswith(b"message-id:"):
            return line.split(b":", 1)[1].strip().decode()
        if not line:
            break
    return ""


@dataclass
class Figures:
    assignments: Counter = field(default_factory=Counter)
    audit_rows: int = 0
    audits_sending: int = 0
    smtp_conversations: int = 0
    attempts_without_audit: int = 0
    numbering_gaps: int = 0
    events: int = 0
    accepted: int = 0
    abandoned: int = 0
    kills: int = 0
    max_recovery_seconds: float = 0.0
    recovery_limit_seconds: float = LEASE_SECONDS + 60
    max_overdue_seconds: float = 0.0
    most_overdue: int | None = None  # the assignment, to look into when the figure is off
    operator_answers: Counter = field(default_factory=Counter)
    operator_failures: list = field(default_factory=list)
    workers_quit: int = 0
    clean_stops: int = 0
    workers: int = 2
    seconds: float = 0.0

    def problems(self) -> list[str]:
        sent = self.assignments["sent"]
        found = []
        if set(self.assignments) - {"sent", "failed"}:
            found.append(f"assignments neither sent nor failed: {dict(self.assignments)}")
        if self.audits_sending:
            found.append(f"{self.audits_sending} attempts left 'sending'")
        if self.attempts_without_audit:
            found.append(f"{self.attempts_without_audit} SMTP conversations without an audit row")
        if self.numbering_gaps:
            found.append(f"{self.numbering_gaps} assignments with gaps in their attempt numbers")
        if self.events != sent:
            found.append(f"{self.events} events for {sent} sent assignments")
        if not sent <= self.accepted <= sent + self.abandoned:
            found.append(
                f"emails accepted {self.accepted} not within sent {sent} .. sent + killed "
                f"mid-send {sent + self.abandoned}"
            )
        if self.max_overdue_seconds > OVERDUE_LIMIT:
            found.append(f"a retry was overdue by {self.max_overdue_seconds:.0f} s")
        if self.max_recovery_seconds > self.recovery_limit_seconds:
            found.append(
                f"an abandoned delivery waited {self.max_recovery_seconds:.0f} s "
                f"(bound {self.recovery_limit_seconds:.0f} s)"
            )
        errors = sum(n for status, n in self.operator_answers.items() if status >= 500)
        if errors:
            found.append(f"{errors} answers >= 500 to operators: {self.operator_failures[:5]}")
        if self.workers_quit:
            found.append(f"{self.workers_quit} workers quit on their own")
        if self.clean_stops != self.workers:
            found.append(f"{self.workers - self.clean_stops} workers did not stop on SIGTERM")
        return found

    def lines(self) -> list[str]:
        total = sum(self.assignments.values())
        answers = ", ".join(f"{s}: {n}" for s, n in sorted(self.operator_answers.items()))
        return [
            f"assignments: {total} ({self.assignments['sent']} sent, "
            f"{self.assignments['failed']} failed, "
            f"{total - self.assignments['sent'] - self.assignments['failed']} other)",
            f"audit rows: {self.audit_rows} ({self.audits_sending} left sending); SMTP "
            f"conversations reaching DATA: {self.smtp_conversations}; without an audit row: "
            f"{self.attempts_without_audit}; numbering gaps: {self.numbering_gaps}",
            f"delivery events: {self.events} (sent assignments: {self.assignments['sent']})",
            f"emails accepted: {self.accepted} (sent {self.assignments['sent']} + killed "
            f"mid-send {self.abandoned} = {self.assignments['sent'] + self.abandoned})",
            f"workers SIGKILLed: {self.kills}; abandoned attempts: {self.abandoned}; longest "
            f"wait to retry one: {self.max_recovery_seconds:.0f} s "
            f"(bound {self.recovery_limit_seconds:.0f} s)",
            f"retries overdue: longest {self.max_overdue_seconds:.0f} s (limit {OVERDUE_LIMIT} s;"
            f" assignment {self.most_overdue})",
            f"operator answers: {answers}",
            f"workers quitting on their own: {self.workers_quit}; clean SIGTERM stops: "
            f"{self.clean_stops} of {self.workers}",
            f"run: {self.seconds:.0f} s",
        ]


class Workers:
    """Two real workers; the killer SIGKILLs one (process group and all) every few seconds
    and starts it again at once."""

    def __init__(self, app: Flask, log_dir: Path, scenario: Scenario, rng: random.Random):
        self.app, self.log_dir, self.scenario, self.random = app, log_dir, scenario, rng
        self.env = {
            "DELIVERY_RETRY_MINUTES": RETRY_MINUTES,
            "DELIVERY_LEASE_SECONDS": str(LEASE_SECONDS),
            "DELIVERY_JOB_TIMEOUT": "8",
            "SMTP_TIMEOUT": "3",
        }
        self.connection = redis_connection(app)
        self.started = [0.0, 0.0]
        self.processes = [self._start(slot) for slot in range(2)]
        self.kills = 0
        self.quit = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._kill_now_and_then, daemon=True)

    def _start(self, slot: int) -> subprocess.Popen:
        log = open(self.log_dir / f"worker-{slot}.log", "a")  # noqa: SIM115 (kept by the child)
        self.started[slot] = time.monotonic()
        return start_worker(self.app, output=log, **self.env)

    def _up(self, process: subprocess.Popen) -> bool:
        try:
            return any(w.pid == process.pid for w in Worker.all(connection=self.connection))
        except redis.RedisError:
            return False

    def _kill_now_and_then(self) -> None:
        """Every few seconds of uptime: a worker is killed once its predecessor's replacement
        is up (registered in Redis; a machine this busy can take seconds to start one)."""
        while not self.stop.wait(self.random.uniform(*self.scenario.kill_every)):
            for slot, process in enumerate(self.processes):
                if process.poll() is not None:  # died without us: count it, start another
                    self.quit += 1
                    self.processes[slot] = self._start(slot)
            slot = self.random.randrange(len(self.processes))
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.processes[slot].pid, signal.SIGKILL)
            self.processes[slot].wait(10)
            self.kills += 1
            self.processes[slot] = self._start(slot)
            deadline = time.monotonic() + 60
            while not self._up(self.processes[slot]) and time.monotonic() < deadline:
                if self.stop.wait(0.5):
                    return

    def stop_all(self) -> int:
        """SIGTERM each worker once it is up; how many stopped cleanly (exit 0) in time."""
        self.stop.set()
        self.thread.join(30)
        # One started a moment ago may still be importing, before any signal handler exists.
        youngest = max(self.started)
        time.sleep(max(0.0, youngest + STARTUP_SECONDS - time.monotonic()))
        for process in self.processes:
            if process.poll() is not None:
                self.quit += 1
        clean = 0
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes:
            with contextlib.suppress(subprocess.TimeoutExpired):
                clean += process.wait(60) == 0
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
        return clean


class Operator:
    """A person in the back office over HTTP: the queue, lead pages, assigning, resending."""

    def __init__(self, base_url: str, email: str):
        self.base_url = base_url
        jar = http.cookiejar.CookieJar()

        class NoRedirect(urllib.request.HTTPRedirectHandler):
            def redirect_request(self, *args, **kwargs):
                return None

        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(jar), NoRedirect
        )
        self.answers = Counter()
        self.failures = []
        status = self.request("POST", "/login", {"email": email, "password": PASSWORD})
        if status != 302:
            raise RuntimeError(f"operator login answered {status}")

    def request(self, method: str, path: str, form: dict | None = None) -> int:
        data = urllib.parse.urlencode(form, doseq=True).encode() if form is not None else None
        request = urllib.request.Request(self.base_url + path, data=data, method=method)
        try:
            with self.opener.open(request, timeout=30) as response:
                response.read()
                status = response.status
        except urllib.error.HTTPError as error:
            error.read()
            status = error.code
        except (OSError, http.client.HTTPException) as error:  # no answer at all
            status = 599
            self.failures.append(f"{method} {path}: {error!r}")
        self.answers[status] += 1
        if status >= 500 and len(self.failures) < 20:
            self.failures.append(f"{method} {path}: {status}")
        return status


def _work_the_queue(
    operator: Operator,
    app: Flask,
    to_assign: list[tuple[str, int]],
    stop: threading.Event,
    rng: random.Random,
) -> None:
    try:
        _operate(operator, app, to_assign, stop, rng)
    except Exception as error:  # the run must not hang on a dead operator: it is a failure
        operator.answers[598] += 1
        operator.failures.append(f"operator stopped: {error!r}")
        to_assign.clear()


def _operate(operator, app, to_assign, stop, rng) -> None:
    resent = set()
    while not stop.is_set():
        operator.request("GET", "/leads")
        with app.app_context():
            failed = db.session.scalar(
                sa.select(Assignment.id)
                .where(
                    Assignment.status == "failed",
                    Assignment.id.not_in(resent or [0]),
                    # refused outright (the installer fixes its mailbox), not retried out
                    ~Assignment.last_error.startswith("Retries used up"),
                )
                .order_by(sa.func.random())
                .limit(1)
            )
            reference = db.session.scalar(
                sa.select(Lead.reference).order_by(sa.func.random()).limit(1)
            )
        try:
            lead_reference, installer_id = to_assign.pop()  # shared with the other operator
        except IndexError:
            lead_reference = None
        if lead_reference:
            operator.request(
                "POST", f"/leads/{lead_reference}/assign", {"installer_ids": [installer_id]}
            )
            operator.request("GET", f"/leads/{lead_reference}")
        elif reference:
            operator.request("GET", f"/leads/{reference}")
        if failed and failed not in resent and rng.random() < 0.3:
            resent.add(failed)  # once each: a failed delivery gets one more chance
            operator.request("POST", f"/assignments/{failed}/resend")
        stop.wait(rng.uniform(0.2, 0.8))


def _overdue_sampler(app: Flask, stop: threading.Event, worst: list) -> None:
    """Every second: the most overdue retry (a queued assignment already attempted, with no
    attempt in flight, whose next attempt is due)."""
    attempted = sa.exists().where(DeliveryAudit.assignment_id == Assignment.id)
    in_flight = sa.exists().where(
        DeliveryAudit.assignment_id == Assignment.id, DeliveryAudit.status == "sending"
    )
    with app.app_context():
        while not stop.wait(1):
            oldest = db.session.execute(
                sa.select(Assignment.id, Assignment.next_attempt_at)
                .where(Assignment.status == "queued", attempted, ~in_flight)
                .order_by(Assignment.next_attempt_at)
                .limit(1)
            ).first()
            db.session.rollback()
            if oldest is not None:
                overdue = (utcnow() - oldest.next_attempt_at).total_seconds()
                if overdue > worst[0]:
                    worst[:] = [overdue, oldest.id]


def _progress(app: Flask, workers: "Workers", started: float) -> None:
    with app.app_context():
        statuses = dict(
            db.session.execute(
                sa.select(Assignment.status, sa.func.count()).group_by(Assignment.status)
            ).all()
        )
        db.session.rollback()
    print(f"{time.monotonic() - started:4.0f} s: {statuses}, {workers.kills} kills", flush=True)


def _settled(app: Flask) -> bool:
    with app.app_context():
        left = db.session.scalar(
            sa.select(sa.func.count())
            .select_from(Assignment)
            .where(Assignment.status.not_in(("sent", "failed")))
        )
        db.session.rollback()
        return left == 0


def _count(figures: Figures, app: Flask, handler: ChaosHandler) -> None:
    with app.app_context():
        figures.assignments = Counter(
            dict(
                db.session.execute(
                    sa.select(Assignment.status, sa.func.count()).group_by(Assignment.status)
                ).all()
            )
        )
        audits = db.session.scalars(
            sa.select(DeliveryAudit).order_by(
                DeliveryAudit.assignment_id, DeliveryAudit.attempt_number
            )
        ).all()
        figures.events = db.session.scalar(sa.select(sa.func.count()).select_from(DeliveryEvent))
    figures.audit_rows = len(audits)
    figures.audits_sending = sum(a.status == "sending" for a in audits)
    figures.abandoned = sum(a.error == ABANDONED for a in audits)
    figures.accepted = handler.accepted
    figures.smtp_conversations = sum(handler.data.values())
    by_message: dict[str, list[DeliveryAudit]] = {}
    for audit in audits:
        by_message.setdefault(audit.message_id, []).append(audit)
    figures.attempts_without_audit = sum(
        max(0, seen - len(by_message.get(message_id, [])))
        for message_id, seen in handler.data.items()
    )
    for attempts in by_message.values():
        if [a.attempt_number for a in attempts] != list(range(1, len(attempts) + 1)):
            figures.numbering_gaps += 1
        for abandoned, following in zip(attempts, attempts[1:], strict=False):
            if abandoned.error == ABANDONED:
                waited = (following.started_at - abandoned.started_at).total_seconds()
                figures.max_recovery_seconds = max(figures.max_recovery_seconds, waited)


def run(scenario: Scenario, log_dir: Path) -> Figures:
    rng = random.Random(scenario.seed)
    figures = Figures()
    postgres, redis_server = ThrowawayPostgres(), ThrowawayRedis()
    handler = ChaosHandler(scenario.seed)
    smtp_port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=smtp_port)
    workers = server = None
    stop = threading.Event()
    threads: list[threading.Thread] = []
    request_log = logging.getLogger("ied.requests")
    request_log_level = request_log.level
    try:
        app = create_app(
            {
                "SQLALCHEMY_DATABASE_URI": postgres.start(),
                "REDIS_URL": redis_server.start(),
                "SECRET_KEY": "faults-secret-key",
                "WTF_CSRF_ENABLED": False,
                "SMTP_HOST": "127.0.0.1",
                "SMTP_PORT": smtp_port,
                "PUBLIC_BASE_URL": "http://127.0.0.1:5000",
                "DELIVERY_RETRY_MINUTES": [float(m) for m in RETRY_MINUTES.split(",")],
            }
        )
        request_log.setLevel(logging.WARNING)  # the figures say enough
        controller.start()
        by_operators = max(2, int(scenario.deliveries * scenario.operator_share))
        with app.app_context():
            upgrade()
            operator_user = make_operator(password=PASSWORD)
            installers = make_installers(20)
            queued = queued_assignments(
                scenario.deliveries - by_operators, installers, operator_user
            )
            to_assign = [
                (ready_lead(100_000 + n, operator_user).reference, installers[n % 20].id)
                for n in range(by_operators)
            ]
            db.session.commit()
            make_operator("second-operator@faults.test", PASSWORD)
        print(f"{len(queued)} deliveries queued, {by_operators} for the operators", flush=True)

        server = LiveServer(app).start()
        app.config["PUBLIC_BASE_URL"] = server.url
        started = time.monotonic()
        workers = Workers(app, log_dir, scenario, rng)
        with app.app_context():
            enqueue_deliveries(queued)
        workers.thread.start()
        operators = [
            Operator(server.url, "operator@faults.test"),
            Operator(server.url, "second-operator@faults.test"),
        ]
        worst_overdue = [0.0, None]
        threads = [
            threading.Thread(
                target=_work_the_queue,
                args=(op, app, to_assign, stop, random.Random(scenario.seed + i)),
                daemon=True,
            )
            for i, op in enumerate(operators)
        ]
        threads.append(
            threading.Thread(target=_overdue_sampler, args=(app, stop, worst_overdue), daemon=True)
        )
        for thread in threads:
            thread.start()

        time.sleep(min(10, scenario.outage_seconds))
        print(f"Redis stopped for {scenario.outage_seconds:.0f} s", flush=True)
        redis_server.halt()
        time.sleep(scenario.outage_seconds)
        redis_server.start()
        print("Redis back (empty)", flush=True)

        deadline = time.monotonic() + scenario.deadline_seconds
        while not (not to_assign and _settled(app)) and time.monotonic() < deadline:
            time.sleep(5)
            _progress(app, workers, started)
        stop.set()
        for thread in threads:
            thread.join(60)
        # A resend in the operators' last moments: let it settle too.
        while not _settled(app) and time.monotonic() < deadline:
            time.sleep(1)
        figures.seconds = time.monotonic() - started
        figures.kills = workers.kills
        figures.clean_stops = workers.stop_all()
        figures.workers_quit = workers.quit
        figures.max_overdue_seconds, figures.most_overdue = worst_overdue
        for op in operators:
            figures.operator_answers.update(op.answers)
            figures.operator_failures.extend(op.failures)
        _count(figures, app, handler)
        return figures
    finally:
        request_log.setLevel(request_log_level)  # the tests run after this one log requests
        stop.set()
        if workers is not None:
            workers.stop.set()
            for process in workers.processes:
                if process.poll() is None:
                    os.killpg(process.pid, signal.SIGKILL)
        if server is not None:
            server.stop()
        controller.stop()
        redis_server.stop()
        postgres.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deliveries", type=int, default=1000)
    parser.add_argument("--outage", type=float, default=30, help="seconds Redis is down")
    parser.add_argument("--seed", type=int, default=9)
    parser.add_argument("--logs", help="directory for the workers' logs (default: a temp dir)")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))  # clean up on the way out
    log_dir = Path(args.logs or tempfile.mkdtemp(prefix="ied-faults-"))
    log_dir.mkdir(parents=True, exist_ok=True)
    figures = run(Scenario(args.deliveries, args.outage, seed=args.seed), log_dir)
    for line in figures.lines():
        print(line)
    problems = figures.problems()
    for problem in problems:
        print(f"FAILED: {problem}")
    print(f"workers' logs: {log_dir}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
