"""The app as gunicorn serves it in `make bench`, plus what the bench needs to see inside it.

- `/bench/floor`: a trivial public endpoint of the same app (its hooks, headers and log line
  included), the framework floor every page is compared with;
- `POST /bench/write-floor`: the least a write through the app's pool can cost, one row
  inserted into the bench's own table `bench_writes` by a statement that commits itself, on
  the connection the intake API writes through (that INSERT: its one round trip), the database
  write floor;
- every answer carries `X-Bench-Statements` (how many SQL statements the request ran);
- and `X-Bench-SQL-ms` (the time its statements took, seen from the app);
- a request with `X-Bench-Capture: <name>` also writes its statements and their parameters to
  BENCH_CAPTURE_DIR/<name>.pickle, so the bench can time that SQL alone (the database floor).
"""

import os
import pickle
import re
import time
from pathlib import Path

import sqlalchemy as sa
from flask import g, has_request_context, request

from ied import create_app
from ied.auth.access import public
from ied.extensions import csrf, db
from ied.pooled_connections import autocommit_connection

app = create_app()
CAPTURE_DIR = Path(os.environ.get("BENCH_CAPTURE_DIR", "/tmp"))
_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


@app.get("/bench/floor")
@public
def floor():
    return "ok"


WRITE_FLOOR_TABLE = "bench_writes"
_WRITE = sa.text(f"INSERT INTO {WRITE_FLOOR_TABLE} DEFAULT VALUES")


@app.post("/bench/write-floor")
@public
@csrf.exempt
def write_floor():
    with autocommit_connection() as connection:
        connection.execute(_WRITE)
    return "ok", 201


def _start_counting():
    g.bench_statements = []
    g.bench_sql_seconds = 0.0


# First of the before-request hooks, so the login check's user load is counted too.
app.before_request_funcs.setdefault(None, []).insert(0, _start_counting)


@app.after_request
def _report_statements(response):
    statements = g.get("bench_statements", [])
    response.headers["X-Bench-Statements"] = str(len(statements))
    response.headers["X-Bench-SQL-ms"] = f"{g.get('bench_sql_seconds', 0.0) * 1000:.2f}"
    name = request.headers.get("X-Bench-Capture", "")
    if _NAME.match(name):
        (CAPTURE_DIR / f"{name}.pickle").write_bytes(pickle.dumps(statements))
    return response


with app.app_context():

    @sa.event.listens_for(db.engine, "before_cursor_execute")
    def _record(conn, cursor, statement, parameters, context, executemany):
        if has_request_context() and "bench_statements" in g:
            g.bench_statements.append((statement, parameters, executemany))
            conn.info["bench_started"] = time.perf_counter()

    @sa.event.listens_for(db.engine, "after_cursor_execute")
    def _time(conn, cursor, statement, parameters, context, executemany):
        started = conn.info.pop("bench_started", None)
        if started is not None and has_request_context():
            g.bench_sql_seconds += time.perf_counter() - started
