"""`make bench`: every hot page over HTTP under gunicorn at 10k and at 1M leads, against floors.

The run, all on this machine and torn down at the end whatever happens:

1. a throwaway PostgreSQL cluster and redis-server; two databases, bulk-loaded with server-side
   SQL (tests/bench/load.py): 10,000 leads, and --leads (1,000,000; --quick: 100,000);
2. for each database, the app under gunicorn (2 sync workers, as in production, IED_ENV=production,
   CSRF on) serving tests/bench/app.py; a manager logs in over HTTP to each; each page and
   fragment is requested --runs times (≥ 200) at each size after warm-ups, one request at a
   time, alternating between the sizes (so that both see the machine as it is that minute):
   p50, p95, its SQL statement count (X-Bench-Statements), and one request's statements
   captured to time alone;
3. the floors, in the same run: the framework floor (a trivial endpoint of the same app and
   gunicorn), the database floor (each page's captured statements replayed through psycopg, no
   app), the queue floor (no-op RQ jobs through two `ied worker --burst` processes), and the
   delivery throughput (the `bench-delivery` make target, when it exists);
4. requests per second: the intake API against the framework floor; the queue page through a
   round-robin proxy (tests/bench/proxy.py) to one and then two gunicorn instances sharing
   PostgreSQL and Redis; the RSS of every web worker sampled through the run;
5. one table (page, p50, p95, statements, ratios to the floors, growth 10k → N, target met),
   printed and written with the machine's cores and the commit to docs/benchmarks.md (not --quick),
   with the plans of any page that misses its target; exits 1 when a target is missed.

`make bench` runs it in full (about 10 minutes on 2 cores); `make bench BENCH_ARGS=--quick` is
100k leads and fewer requests. Not a pytest file: its name does not match test_*.py.
"""

import argparse
import http.client
import json
import os
import pickle
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402
import redis  # noqa: E402
from rq import Queue  # noqa: E402
from rq.job import Job  # noqa: E402

from tests.bench.load import load, log  # noqa: E402
from tests.bench.plans import explain  # noqa: E402
from tests.support.postgres import ThrowawayPostgres, free_port  # noqa: E402
from tests.support.redis_server import ThrowawayRedis  # noqa: E402

TARGET_P95_MS = 30.0
MAX_STATEMENTS = 8
MAX_GROWTH = 1.5
INTAKE_SHARE_OF_FLOOR = 0.5
MAX_WORKER_RSS_MB = 200
SMALL_LEADS = 10_000
PASSWORD = "quiet-lantern-orbit-123"
MANAGER = "bench@ied.test"
SECRET_KEY = "bench-secret-key-not-for-production"
BIN = Path(sys.executable).parent
NEXT_LINK = re.compile(r'<a rel="next" href="([^"]+)"')
CSRF_META = re.compile(r'<meta name="csrf-token" content="([^"]+)"')


# HTTP ---------------------------------------------------------------------------------------


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: str
    ms: float


class Client:
    """One browser: its cookies and CSRF token. Each request is a new connection (gunicorn's
    sync workers close after every answer)."""

    def __init__(self, port: int):
        self.port = port
        self.cookies: dict[str, str] = {}
        self.csrf = ""

    def request(self, method: str, path: str, body=None, headers=None) -> Answer:
        headers = dict(headers or {})
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        if isinstance(body, dict):
            body = urlencode(body)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        started = time.perf_counter()
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        try:
            connection.request(method, path, body=body, headers=headers)
            response = connection.getresponse()
            data = response.read()
        finally:
            connection.close()
        ms = (time.perf_counter() - started) * 1000
        for header, value in response.getheaders():
            if header.lower() == "set-cookie":
                name, _, rest = value.partition("=")
                self.cookies[name] = rest.split(";", 1)[0]
        return Answer(response.status, dict(response.getheaders()), data.decode(), ms)

    def login(self, email: str, password: str) -> None:
        page = self.request("GET", "/login")
        self.csrf = CSRF_META.search(page.body).group(1)
        answer = self.request(
            "POST", "/login", {"email": email, "password": password, "csrf_token": self.csrf}
        )
        if answer.status not in (302, 303):
            raise SystemExit(f"login failed: {answer.status}")
        self.csrf = CSRF_META.search(self.request("GET", "/leads").body).group(1)


def requests_per_second(
    port: int,
    make_request: Callable[[Client], None],
    *,
    seconds: float,
    concurrency: int,
    login: bool = True,
) -> float:
    """Completed requests per second with `concurrency` clients hammering for `seconds`."""
    clients = [Client(port) for _ in range(concurrency)]
    if login:
        for client in clients:
            client.login(MANAGER, PASSWORD)
    done = [0] * concurrency
    stop = time.perf_counter() + seconds

    def run(index: int) -> None:
        while time.perf_counter() < stop:
            make_request(clients[index])
            done[index] += 1

    started = time.perf_counter()
    threads = [threading.Thread(target=run, args=(i,)) for i in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(done) / (time.perf_counter() - started)


# Processes ----------------------------------------------------------------------------------


class Gunicorn:
    def __init__(self, env: dict, workers: int, log_path: Path):
        self.port = free_port()
        self.log_file = log_path.open("ab")
        self.process = subprocess.Popen(
            [
                str(BIN / "gunicorn"),
                "--workers",
                str(workers),
                "--bind",
                f"127.0.0.1:{self.port}",
                "--timeout",
                "120",
                "tests.bench.app:app",
            ],
            cwd=ROOT,
            env=env,
            stdout=self.log_file,
            stderr=self.log_file,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if Client(self.port).request("GET", "/bench/floor").status == 200:
                    break
            except OSError:
                time.sleep(0.2)
        else:
            self.stop()
            raise SystemExit(f"gunicorn did not start; see {log_path}")

    def worker_pids(self) -> list[int]:
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        return [int(pid) for pid in children.read_text().split()] if children.exists() else []

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self.log_file.close()


def cpu_times() -> list[int]:
    """The machine's CPU time so far by kind (user, nice, system, idle, iowait, irq, softirq,
    steal, ...), from /proc/stat; empty where there is none."""
    try:
        return [int(part) for part in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
    except OSError:
        return []


def stolen_share(before: list[int], after: list[int]) -> float | None:
    """The share of CPU time the host took from this virtual machine between two readings."""
    if len(before) < 8 or len(after) < 8:
        return None
    spent = [b - a for a, b in zip(before, after, strict=True)]
    return spent[7] / sum(spent[:8]) if sum(spent[:8]) else None


def rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


class RssWatch:
    """The largest RSS any web worker reached, sampled every 0.2 s in the background."""

    def __init__(self):
        self.servers: list[Gunicorn] = []
        self.peak = 0.0
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._sample, daemon=True)
        self.thread.start()

    def _sample(self) -> None:
        while not self.stopped.wait(0.2):
            for server in list(self.servers):
                for pid in server.worker_pids():
                    self.peak = max(self.peak, rss_mb(pid))

    def stop(self) -> None:
        self.stopped.set()
        self.thread.join()


# Pages --------------------------------------------------------------------------------------


@dataclass
class Page:
    label: str
    method: str
    # (path, body, headers) for the i-th request: most pages answer the same request each time,
    # a status transition and an intake post need a fresh lead or id each time.
    build: Callable[[int], tuple[str, object, dict]]
    expect: str | None = None
    after: Callable[[Answer], None] | None = None  # sees each answer (e.g. keeps what it made)
    timings: list[float] = field(default_factory=list)
    sql_in_app: list[float] = field(default_factory=list)
    statements: int = 0
    captured: list = field(default_factory=list)
    db_timings: list[float] = field(default_factory=list)

    def p(self, share: float, values=None) -> float:
        ordered = sorted(values if values is not None else self.timings)
        return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]

    @property
    def p50(self) -> float:
        return self.p(0.5)

    @property
    def p95(self) -> float:
        return self.p(0.95)

    @property
    def db_p50(self) -> float:
        """The SQL alone; for a write that cannot be replayed (a unique key it just used), the
        time its statements took as the app saw them."""
        return self.p(0.5, self.db_timings or self.sql_in_app or [0.0])


def get(label: str, path: str, expect: str | None = None, headers=None) -> Page:
    return Page(label, "GET", lambda i: (path, None, dict(headers or {})), expect)


def sample(dsn: str) -> dict:
    """The rows the pages are about: a typical delivered lead from the middle of the range, a
    cursor half-way down the assigned tab, fresh leads for the transitions, a sent assignment."""
    with psycopg.connect(dsn) as connection:
        run = connection.execute
        lead = run(
            """
            SELECT l.reference, l.email_normalized, l.phone, l.postcode, l.customer_name
            FROM leads l JOIN follow_ups f ON f.lead_id = l.id
            WHERE l.status = 'assigned' AND l.selected_path = 'compare_quotes'
              AND l.email_normalized IS NOT NULL AND l.phone IS NOT NULL
              AND l.id >= (SELECT max(id) / 2 FROM leads)
              AND (SELECT count(*) FROM assignments a WHERE a.lead_id = l.id) = 2
            ORDER BY l.id LIMIT 1
            """
        ).fetchone()
        middle = run(
            "SELECT created_at, id FROM leads WHERE status = 'assigned' "
            "ORDER BY created_at DESC, id DESC OFFSET (SELECT count(*) / 2 FROM leads) LIMIT 1"
        ).fetchone()
        new_leads = [
            row[0] for row in run("SELECT reference FROM leads WHERE status = 'new' ORDER BY id")
        ]
        sent = run(
            "SELECT a.id FROM assignments a JOIN leads l ON l.id = a.lead_id "
            "WHERE a.status = 'sent' AND l.reference = %s ORDER BY a.id LIMIT 1",
            (lead[0],),
        ).fetchone()[0]
    reference, email, phone, postcode, name = lead
    return {
        "reference": reference,
        "email": email,
        "phone": phone,
        "postcode": postcode,
        "name": name,
        "deep_cursor": f"{middle[0].astimezone(UTC).isoformat()}~{middle[1]}",
        "new_leads": new_leads,
        "sent_assignment": sent,
    }


def pages_for(facts: dict, client: Client, extra: dict) -> list[Page]:
    ref = facts["reference"]
    email_prefix = facts["email"].split("@")[0] + "@"
    # The postcode area (RG of RG5 1AA): it fills a page at 10k leads as at 1M, so growth
    # compares the same page; an outward code matches only a handful of leads at 10k.
    area = re.match(r"[A-Z]+", facts["postcode"]).group()
    last_name = facts["name"].split()[-1]
    new_leads = facts["new_leads"]
    htmx = {"HX-Request": "true"}

    def search(q: str, what: str, expect: str | None = None) -> Page:
        return get(f"search by {what}", "/leads?" + urlencode({"q": q}), expect)

    def transition(i: int):
        reference = new_leads.pop()
        return (
            f"/leads/{reference}/advance",
            {"to_status": "reviewing", "tab": "new", "csrf_token": client.csrf},
            {**htmx, "X-CSRFToken": client.csrf},
        )

    def intake(i: int):
        body = json.dumps(
            {
                "external_id": f"bench-{time.time_ns()}-{i}",
                "customer_name": "Bench Customer",
                "email": f"bench.customer{i}@example.com",
                "postcode": "SW1A 1AA",
                "product_interest": "solar_pv",
                "selected_path": "compare_quotes",
                "assessment": {"property_type": "detached"},
            }
        )
        return (
            "/api/v1/leads",
            body,
            {"Authorization": f"Bearer {extra['api_key']}", "Content-Type": "application/json"},
        )

    pages = [
        get("queue: tab new", "/leads"),
        get("queue: tab reviewing", "/leads?tab=reviewing"),
        get("queue: tab ready to route", "/leads?tab=ready_to_route"),
        get("queue: tab assigned", "/leads?tab=assigned"),
        get("queue: tab needs attention", "/leads?tab=attention"),
        get(
            "queue: deep keyset page",
            "/leads?" + urlencode({"tab": "assigned", "after": facts["deep_cursor"]}),
        ),
        get("queue: tab assigned (htmx)", "/leads?tab=assigned", headers=htmx),
        search(ref, "reference", ref),
        search(email_prefix, "email prefix", ref),
        search(facts["phone"], "phone", ref),
        search(area, "postcode area prefix"),
        search(last_name, "name"),
        get("lead page", f"/leads/{ref}", ref),
        Page(
            "intake API (POST)",
            "POST",
            intake,
            after=lambda answer: new_leads.append(json.loads(answer.body)["reference"]),
        ),
        Page("status transition (htmx)", "POST", transition),
        get("follow-ups: overdue", "/follow-ups?due=overdue"),
        get("follow-ups: due today", "/follow-ups?due=due_today"),
        get("follow-ups: open issue", "/follow-ups?issue=open"),
        get("follow-ups: search name", "/follow-ups?" + urlencode({"q": last_name})),
        get("installers", "/installers"),
        get("signed delivery link (landing)", f"/d/{extra['link_token']}"),
        Page(
            "signed delivery page (shown)",
            "POST",
            lambda i: (f"/d/{extra['link_token']}", {}, {}),
            facts["reference"],
        ),
    ]
    for path, label, is_fragment in extra["optional_pages"]:
        pages.append(get(label, path, headers=htmx if is_fragment else None))
    return pages


@dataclass
class Size:
    """One database under its own gunicorn, with a signed-in client and its pages."""

    leads: int
    dsn: str
    server: Gunicorn
    client: Client
    pages: list[Page]
    capture_dir: Path
    counts: dict[str, list[int]] = field(default_factory=dict)


WARMUPS = 3


def measure(sizes: list[Size], index: int, runs: int) -> None:
    """The index-th page of every size, their requests alternating (10k, 1M, 10k, ...), so
    that both sizes see the machine as it is that minute: growth is a ratio of the two."""
    tag = f"page{index}"
    for i in range(WARMUPS + runs + 1):
        for size in sizes:
            _request(size, size.pages[index], i, tag)
    for size in sizes:
        page = size.pages[index]
        # The usual request's count (the intake API's first post also stamps its key's use).
        counts = size.counts.pop(tag)
        page.statements = sorted(counts)[len(counts) // 2]


def _request(size: Size, page: Page, i: int, tag: str) -> None:
    path, body, headers = page.build(i)
    capture = i == WARMUPS
    if capture:
        headers = {**headers, "X-Bench-Capture": tag}
    answer = size.client.request(page.method, path, body, headers)
    if answer.status >= 400:
        raise SystemExit(f"{page.label}: {path} answered {answer.status}\n{answer.body[:500]}")
    if page.expect and page.expect not in answer.body:
        raise SystemExit(f"{page.label}: {path} does not show {page.expect}")
    size.counts.setdefault(tag, []).append(int(answer.headers.get("X-Bench-Statements", 0)))
    if page.after:
        page.after(answer)
    if capture:
        page.captured = pickle.loads((size.capture_dir / f"{tag}.pickle").read_bytes())
    elif i > WARMUPS:
        page.timings.append(answer.ms)
        page.sql_in_app.append(float(answer.headers.get("X-Bench-SQL-ms", 0)))


def database_floor(dsn: str, page: Page, runs: int) -> None:
    """The page's statements alone, through the same driver, in a transaction rolled back."""
    timings = []
    with psycopg.connect(dsn) as connection:
        for _ in range(runs + 2):
            started = time.perf_counter()
            try:
                with connection.cursor() as cursor:
                    for statement, parameters, many in page.captured:
                        if many:
                            cursor.executemany(statement, parameters)
                        else:
                            cursor.execute(statement, parameters or None)
                            if cursor.description:
                                cursor.fetchall()
            except psycopg.errors.UniqueViolation:
                connection.rollback()
                return  # a write of a key it already made: db_p50 falls back to the app's view
            timings.append((time.perf_counter() - started) * 1000)
            connection.rollback()
    page.db_timings = timings[2:]


# Setting up a database ----------------------------------------------------------------------


def prepare_database(server: ThrowawayPostgres, name: str, leads: int, env: dict) -> str:
    """Create, migrate (through the app's own CLI) and load one database; returns its DSN."""
    base = f"postgresql://postgres@127.0.0.1:{server.port}"
    with psycopg.connect(f"{base}/postgres", autocommit=True) as connection:
        connection.execute(f"CREATE DATABASE {name}")
    dsn = f"{base}/{name}"
    run_env = {**env, "DATABASE_URL": dsn}
    flask = [str(BIN / "flask"), "--app", "wsgi"]
    subprocess.run(
        [*flask, "db", "upgrade"], cwd=ROOT, env=run_env, check=True, capture_output=True
    )
    subprocess.run(
        [*flask, "ied", "create-user", MANAGER, "--role", "manager", "--password", PASSWORD],
        cwd=ROOT,
        env=run_env,
        check=True,
        capture_output=True,
    )
    with psycopg.connect(dsn) as connection:
        user_id = connection.execute(
            "SELECT id FROM users WHERE email = %s", (MANAGER,)
        ).fetchone()[0]
        # The database write floor's table (tests/bench/app.py): the bench's own, not the app's.
        connection.execute(
            "CREATE TABLE bench_writes (id bigserial PRIMARY KEY, "
            "written_at timestamptz NOT NULL DEFAULT now())"
        )
    log(f"Loading {leads:,} leads into {name}")
    load(dsn, leads, user_id)
    # The counters, from the rows loaded behind the app's back, by the app's own repairs.
    for command in (
        ["check-cycle-usage", "--repair"],
        ["repair-lead-counts"],
        ["check-daily-tallies", "--repair"],
    ):
        subprocess.run(
            [*flask, "ied", *command], cwd=ROOT, env=run_env, check=True, capture_output=True
        )
    return dsn


def app_extras(dsn: str, env: dict, sent: int) -> dict:
    """An intake API key and a signed link, made by the app's own code; the optional pages."""
    code = f"""
import json
from ied import create_app
from ied.delivery.links import link_token
from ied.delivery.models import Assignment
from ied.extensions import db
from ied.intake.services import create_api_key
app = create_app()
with app.app_context():
    key, _ = create_api_key("bench-{time.time_ns()}")
    db.session.commit()
    token = link_token(db.session.get(Assignment, {{sent}}))
    endpoints = set(app.view_functions)
print(json.dumps({{"api_key": key, "link_token": token, "endpoints": sorted(endpoints)}}))
"""
    out = subprocess.run(
        [sys.executable, "-c", code.replace("{sent}", str(sent))],
        cwd=ROOT,
        env={**env, "DATABASE_URL": dsn},
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    extras = json.loads(out.strip().splitlines()[-1])
    optional = [
        ("dashboard.index", "/dashboard", "dashboard", False),
        ("dashboard.index", "/dashboard?period=90", "dashboard: 90 days (htmx)", True),
        ("finance.index", "/finance", "finance", False),
    ]
    extras["optional_pages"] = [
        (path, label, is_fragment)
        for endpoint, path, label, is_fragment in optional
        if endpoint in extras["endpoints"]
    ]
    return extras


# Floors -------------------------------------------------------------------------------------


def queue_floor(env: dict, redis_url: str, jobs: int) -> float:
    """No-op jobs per second through two `ied worker --burst` processes on this Redis."""
    connection = redis.Redis.from_url(redis_url)
    queue = Queue("delivery", connection=connection)
    queue.empty()
    enqueued = queue.enqueue_many(
        [Queue.prepare_data("tests.bench.jobs.noop", result_ttl=600) for _ in range(jobs)]
    )
    workers = [
        subprocess.Popen(
            [str(BIN / "flask"), "--app", "wsgi", "ied", "worker", "--burst"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(2)
    ]
    for worker in workers:
        worker.wait(timeout=600)
    finished = [
        job
        for job in Job.fetch_many([j.id for j in enqueued], connection=connection)
        if job is not None and job.ended_at is not None
    ]
    if len(finished) < jobs:
        raise SystemExit(f"only {len(finished)} of {jobs} no-op jobs finished")
    first = min(job.started_at for job in finished)
    last = max(job.ended_at for job in finished)
    return jobs / (last - first).total_seconds()


def delivery_throughput() -> tuple[float | None, str]:
    """The faults helper's `make bench-delivery` (emails per second with 2 workers), if any."""
    makefile = (ROOT / "Makefile").read_text()
    if not re.search(r"^bench-delivery:", makefile, re.MULTILINE):
        return None, "no `bench-delivery` make target in this commit"
    result = subprocess.run(
        ["make", "--no-print-directory", "bench-delivery", "BENCH_ARGS="],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )
    lines = (result.stdout + result.stderr).strip().splitlines()
    found = [line for line in lines if re.search(r"[\d.]+ emails/s", line)]
    if not found:
        return None, f"`make bench-delivery` gave no rate: {(lines or ['nothing'])[-1][:200]}"
    rate = float(re.search(r"([\d.]+) emails/s", found[-1]).group(1))
    return rate, found[-1].strip()


# Running ------------------------------------------------------------------------------------


@dataclass
class Run:
    leads: int
    pages: list[Page]
    floor_p50: float = 0.0
    floor_p95: float = 0.0
    floor_rps: float = 0.0
    write_floor_rps: float = 0.0
    intake_rps: float = 0.0


def open_size(dsn: str, leads: int, env: dict, workdir: Path, watch: RssWatch) -> Size:
    capture_dir = workdir / f"capture-{leads}"
    capture_dir.mkdir()
    web_env = {**env, "DATABASE_URL": dsn, "BENCH_CAPTURE_DIR": str(capture_dir)}
    facts = sample(dsn)
    extras = app_extras(dsn, web_env, facts["sent_assignment"])
    server = Gunicorn(web_env, workers=2, log_path=workdir / f"gunicorn-{leads}.log")
    watch.servers.append(server)
    client = Client(server.port)
    client.login(MANAGER, PASSWORD)
    floor = get("framework floor (trivial endpoint)", "/bench/floor")
    return Size(leads, dsn, server, client, [floor, *pages_for(facts, client, extras)], capture_dir)


def run_sizes(
    small_dsn: str, large_dsn: str, leads: int, env: dict, args, workdir: Path, watch: RssWatch
) -> tuple[Run, Run]:
    """Every page at both sizes, interleaved; then, on the large one, requests per second."""
    sizes = []
    try:
        sizes.append(open_size(small_dsn, SMALL_LEADS, env, workdir, watch))
        sizes.append(open_size(large_dsn, leads, env, workdir, watch))
        log(
            f"\nTiming at {SMALL_LEADS:,} and {leads:,} leads, requests alternating: "
            f"{len(sizes[0].pages) - 1} pages, {args.runs} requests each"
        )
        for index in range(len(sizes[0].pages)):
            measure(sizes, index, args.runs)
            for size in sizes:
                page = size.pages[index]
                database_floor(size.dsn, page, args.db_runs)
                log(
                    f"  {size.leads // 1000:>5}k {page.label:<36} p50 {page.p50:6.1f}  "
                    f"p95 {page.p95:6.1f} ms  {page.statements} statements  "
                    f"SQL alone {page.db_p50:5.1f} ms"
                )
        small, large = (
            Run(size.leads, size.pages[1:], size.pages[0].p50, size.pages[0].p95) for size in sizes
        )
        requests_per_second_of(sizes[1], large, args.rps_seconds)
        return small, large
    finally:
        for size in sizes:
            watch.servers.remove(size.server)
            size.server.stop()


def requests_per_second_of(size: Size, run: Run, seconds: float) -> None:
    """The framework floor, the database write floor and the intake API with 4 clients."""
    port = size.server.port
    run.floor_rps, run.write_floor_rps = (
        requests_per_second(
            port,
            lambda c, method=method, path=path: c.request(method, path),
            seconds=seconds,
            concurrency=4,
            login=False,
        )
        for method, path in (("GET", "/bench/floor"), ("POST", "/bench/write-floor"))
    )
    intake = next(page for page in size.pages if page.label.startswith("intake"))
    counter = iter(range(10**9))

    def post_lead(c: Client) -> None:
        path, body, headers = intake.build(next(counter) + 10**6)
        answer = c.request("POST", path, body, headers)
        if answer.status not in (200, 201):
            raise SystemExit(f"intake answered {answer.status}: {answer.body[:300]}")

    run.intake_rps = requests_per_second(
        port, post_lead, seconds=seconds, concurrency=4, login=False
    )
    log(
        f"  framework floor {run.floor_rps:.0f} req/s; database write floor "
        f"{run.write_floor_rps:.0f}; intake API {run.intake_rps:.0f}"
    )


def two_instances(dsn: str, env: dict, workdir: Path, watch: RssWatch, seconds: float) -> dict:
    """The queue page's requests per second through one proxy to one, then two, gunicorn
    instances (one worker each, standing for two machines) sharing PostgreSQL and Redis."""
    web_env = {**env, "DATABASE_URL": dsn, "BENCH_CAPTURE_DIR": str(workdir)}
    servers = [Gunicorn(web_env, 1, workdir / f"instance-{n}.log") for n in (1, 2)]
    watch.servers.extend(servers)
    results = {}
    try:
        for count in (1, 2):
            proxy = subprocess.Popen(
                [
                    sys.executable,
                    str(ROOT / "tests/bench/proxy.py"),
                    *[str(s.port) for s in servers[:count]],
                ],
                stdout=subprocess.PIPE,
                text=True,
            )
            port = int(proxy.stdout.readline())
            try:
                results[count] = requests_per_second(
                    port,
                    lambda c: c.request("GET", "/leads?tab=assigned"),
                    seconds=seconds,
                    concurrency=4,
                )
            finally:
                proxy.terminate()
                proxy.wait()
            log(f"  queue page through the proxy, {count} instance(s): {results[count]:.0f} req/s")
    finally:
        for server in servers:
            watch.servers.remove(server)
            server.stop()
    return results


# Report -------------------------------------------------------------------------------------


def commit() -> str:
    if os.environ.get("BENCH_COMMIT"):  # a run from an exported copy of the tree
        return os.environ["BENCH_COMMIT"]
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=ROOT,
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=ROOT,
            capture_output=True,
            text=True,
        ).stdout.strip()
        return sha + (" (with uncommitted changes)" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def table(small: Run, large: Run) -> tuple[list[str], list[str]]:
    """The Markdown table and the list of missed targets."""
    small_p95 = {page.label: page.p95 for page in small.pages}
    rows = [
        "| page | p50 ms | p95 ms | SQL statements | SQL alone p50 ms | p50 ÷ (framework + SQL) "
        f"| p95 at {small.leads // 1000}k ms | growth | target met |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    missed = []
    for page in large.pages:
        growth = page.p95 / small_p95[page.label] if small_p95.get(page.label) else 0
        misses = []
        if page.p95 > TARGET_P95_MS:
            misses.append(f"p95 > {TARGET_P95_MS:.0f} ms")
        if page.statements > MAX_STATEMENTS:
            misses.append(f"> {MAX_STATEMENTS} statements")
        if growth > MAX_GROWTH:
            misses.append(f"growth > {MAX_GROWTH}×")
        if misses:
            missed.append(f"{page.label}: {', '.join(misses)}")
        ratio = page.p50 / (large.floor_p50 + page.db_p50)
        rows.append(
            f"| {page.label} | {page.p50:.1f} | {page.p95:.1f} | {page.statements} | "
            f"{page.db_p50:.1f} | {ratio:.1f}× | {small_p95.get(page.label, 0):.1f} | "
            f"{growth:.2f}× | {'yes' if not misses else 'MISSED: ' + ', '.join(misses)} |"
        )
    return rows, missed


def report(
    args,
    small: Run,
    large: Run,
    scale: dict,
    queue_rps: float,
    delivery,
    peak_rss: float,
    seconds: float,
    plans: list[str],
    load_before: tuple[float, ...],
    stolen: float | None,
) -> tuple[str, bool]:
    rows, missed = table(small, large)
    intake_share = large.intake_rps / large.floor_rps if large.floor_rps else 0
    if intake_share < INTAKE_SHARE_OF_FLOOR:
        missed.append(f"intake API at {intake_share:.0%} of the framework floor's req/s")
    if peak_rss >= MAX_WORKER_RSS_MB:
        missed.append(f"a web worker reached {peak_rss:.0f} MB RSS")
    delivery_rate, delivery_note = delivery
    if delivery_rate is not None and delivery_rate < 100:
        missed.append(f"delivery at {delivery_rate:.0f} emails/s")
    lines = [
        f"- leads: {large.leads:,} (growth measured from {small.leads:,}); "
        f"{args.runs} requests per page at each size, one at a time, alternating between the "
        f"sizes, after {WARMUPS} warm-ups",
        f"- machine: {os.cpu_count()} cores; load average before the run {load_before[0]:.1f} "
        f"(1 min), {load_before[1]:.1f} (5 min)"
        + (
            f"; CPU time taken by the host while pages were timed {stolen:.0%}"
            if stolen is not None
            else ""
        )
        + ": work beside the bench on the same cores makes single figures noisy (compare "
        "ratios and statement counts first)",
        f"- commit: {commit()}, run {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {seconds:.0f} s",
        f"- framework floor (trivial endpoint, same app and gunicorn): p50 {large.floor_p50:.1f} "
        f"ms, p95 {large.floor_p95:.1f} ms, {large.floor_rps:.0f} req/s with 4 clients",
        f"- database write floor (one row inserted by a statement committing itself, same app "
        f"and gunicorn): {large.write_floor_rps:.0f} req/s with 4 clients = "
        f"{large.write_floor_rps / large.floor_rps:.0%} of the framework floor",
        f"- intake API: {large.intake_rps:.0f} req/s = {intake_share:.0%} of the framework floor "
        f"(target ≥ {INTAKE_SHARE_OF_FLOOR:.0%}), "
        f"{large.intake_rps / large.write_floor_rps:.0%} of the database write floor",
        f"- queue floor: {queue_rps:.0f} no-op RQ jobs/s with 2 `ied worker` processes",
        "- delivery: "
        + (
            f"{delivery_rate:.0f} emails/s (target ≥ 100; ≥ 50% of the queue floor: "
            f"{delivery_rate / queue_rps:.0%})"
            if delivery_rate
            else delivery_note
        ),
        f"- two instances behind one proxy, queue page: {scale[1]:.0f} req/s with one, "
        f"{scale[2]:.0f} req/s with two ({scale[2] / scale[1]:.2f}×)",
        f"- web worker RSS: peak {peak_rss:.0f} MB (target < {MAX_WORKER_RSS_MB} MB)",
    ]
    text = "\n".join(["Settings and floors:", "", *lines, "", *rows, ""])
    if missed:
        text += "\nMissed:\n\n" + "\n".join(f"- {m}" for m in missed) + "\n"
    if plans:
        text += "\nPlans of the pages that missed (EXPLAIN ANALYZE of their statements):\n\n```\n"
        text += "\n".join(plans) + "\n```\n"
    return text, not missed


RESULTS_START = "<!-- bench results start -->"
RESULTS_END = "<!-- bench results end -->"


def write_results(text: str) -> None:
    path = ROOT / "docs" / "benchmarks.md"
    current = (
        path.read_text() if path.exists() else f"# Benchmarks\n\n{RESULTS_START}\n{RESULTS_END}\n"
    )
    before, _, rest = current.partition(RESULTS_START)
    _, _, after = rest.partition(RESULTS_END)
    path.write_text(f"{before}{RESULTS_START}\n{text}{RESULTS_END}{after}")
    log(f"Wrote {path.relative_to(ROOT)}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="100k leads, fewer requests")
    parser.add_argument("--leads", type=int, default=None)
    parser.add_argument("--runs", type=int, default=None, help="timed requests per page")
    parser.add_argument(
        "--no-write", action="store_true", help="keep docs/benchmarks.md (--quick never writes)"
    )
    args = parser.parse_args()
    args.leads = args.leads or (100_000 if args.quick else 1_000_000)
    args.runs = args.runs or (50 if args.quick else 200)
    args.db_runs = 30 if args.quick else 60
    args.rps_seconds = 4 if args.quick else 8

    # SIGTERM (or nohup's hang-up) still runs the clean-up below.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    started = time.perf_counter()
    load_before = os.getloadavg()
    workdir = Path(tempfile.mkdtemp(prefix="ied-bench-"))
    postgres, redis_server = ThrowawayPostgres(), ThrowawayRedis()
    watch = RssWatch()
    try:
        log("Starting a throwaway PostgreSQL cluster and redis-server")
        postgres.start()
        redis_url = redis_server.start()
        env = {
            **os.environ,
            "IED_ENV": "production",
            "SECRET_KEY": SECRET_KEY,
            "REDIS_URL": redis_url,
            "PUBLIC_BASE_URL": "http://127.0.0.1",
            "LOG_FORMAT": "json",
            "SMTP_HOST": "127.0.0.1",
            "SMTP_PORT": str(free_port()),
            "DB_POOL_SIZE": "2",
            "DB_MAX_OVERFLOW": "2",
            "PYTHONPATH": str(ROOT),
            "RATELIMIT_ENABLED": "0",  # the intake API is timed flat out from one address
        }
        small_dsn = prepare_database(postgres, "bench_small", SMALL_LEADS, env)
        large_dsn = prepare_database(postgres, "bench_large", args.leads, env)
        log(f"Loaded in {time.perf_counter() - started:.0f} s since start")

        times_before = cpu_times()
        small, large = run_sizes(small_dsn, large_dsn, args.leads, env, args, workdir, watch)
        stolen = stolen_share(times_before, cpu_times())
        log("\nTwo instances behind one proxy")
        scale = two_instances(large_dsn, env, workdir, watch, args.rps_seconds)
        log("\nQueue floor: no-op RQ jobs through two workers")
        queue_rps = queue_floor(
            {**env, "DATABASE_URL": large_dsn}, redis_url, 500 if args.quick else 2000
        )
        log(f"  {queue_rps:.0f} jobs/s")
        delivery = delivery_throughput()
        log(f"Delivery: {delivery}")
        watch.stop()

        _, missed = table(small, large)
        slow = [
            page
            for page in large.pages
            if page.p95 > TARGET_P95_MS or page.statements > MAX_STATEMENTS
        ]
        plans = explain(large_dsn, [(page.label, page.captured) for page in slow])
        text, ok = report(
            args,
            small,
            large,
            scale,
            queue_rps,
            delivery,
            watch.peak,
            time.perf_counter() - started,
            plans,
            load_before,
            stolen,
        )
        log("\n" + text)
        if not (args.quick or args.no_write):
            write_results(text)
        return 0 if ok else 1
    finally:
        watch.stop()
        log("Stopping PostgreSQL and Redis")
        redis_server.stop()
        postgres.stop()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
