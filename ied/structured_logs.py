"""Structured logs: one line per request and one per RQ job, JSON in production.

Every line is a record of the `ied` logger with its fields in `extra={"fields": {...}}`;
`LOG_FORMAT` (json in production, text in development) chooses how they are written to
stderr. A request keeps the caller's `X-Request-ID` (or gets a fresh one) and answers with it,
so a line here can be matched with the proxy's. Our request line replaces werkzeug's access
log, which is turned down to warnings; our job line replaces RQ's own per-job lines (RQ's
loggers write through the same handler, warnings and errors only), so a worker's output is one
format too.
"""

import json
import logging
import re
import sys
import time
import uuid
from datetime import UTC, datetime
from functools import wraps

import sqlalchemy as sa
from flask import Flask, g, request

from ied.security_headers import SIGNED_LINK_PREFIX

REQUEST_ID_HEADER = "X-Request-ID"
# A request id from outside is kept only when it is short and plain (it is echoed in a header
# and written to the logs); anything else is replaced by a fresh one.
_SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_HANDLER_MARK = "ied_structured"

request_log = logging.getLogger("ied.requests")
job_log = logging.getLogger("ied.jobs")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            **getattr(record, "fields", {}),
        }
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


class TextFormatter(logging.Formatter):
    """Readable in a terminal: the message, then the fields as key=value."""

    def format(self, record: logging.LogRecord) -> str:
        fields = " ".join(f"{key}={value}" for key, value in getattr(record, "fields", {}).items())
        line = f"{self.formatTime(record, '%H:%M:%S')} {record.levelname:<7} {record.getMessage()}"
        line = f"{line}  {fields}" if fields else line
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


def configure_logging(app: Flask) -> None:
    """Send the `ied` loggers to stderr in LOG_FORMAT, once per process; time every request."""
    logger = logging.getLogger("ied")
    logger.setLevel(app.config["LOG_LEVEL"])
    for child in (request_log, job_log):  # LOG_LEVEL decides, whatever a caller set on these
        child.setLevel(logging.NOTSET)
    formatter = JsonFormatter() if app.config["LOG_FORMAT"] == "json" else TextFormatter()
    handler = next((h for h in logger.handlers if getattr(h, _HANDLER_MARK, False)), None)
    if handler is None:
        handler = logging.StreamHandler(sys.stderr)
        setattr(handler, _HANDLER_MARK, True)
        logger.addHandler(handler)
        logger.propagate = False
    handler.setFormatter(formatter)
    # Our own line says more than werkzeug's access log (development server only).
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    # RQ's five lines a job say what our job line says: its warnings and errors are kept, in
    # our format (RQ adds its own plain-text handler only where no handler is found).
    rq_logger = logging.getLogger("rq")
    if handler not in rq_logger.handlers:
        rq_logger.addHandler(handler)
    rq_logger.setLevel(logging.WARNING)
    rq_logger.propagate = False

    app.before_request(_start_request)
    app.after_request(_log_request)


def _start_request() -> None:
    g.request_started = time.perf_counter()
    given = request.headers.get(REQUEST_ID_HEADER, "")
    g.request_id = given if _SAFE_REQUEST_ID.match(given) else uuid.uuid4().hex


def logged_path(path: str) -> str:
    """The request's path, a signed link's token left out: it is the installer's credential to
    the customer's details, which nobody reading the logs may hold."""
    if not path.startswith(SIGNED_LINK_PREFIX):
        return path
    _, slash, rest = path[len(SIGNED_LINK_PREFIX) :].partition("/")
    return f"{SIGNED_LINK_PREFIX}[token]{slash}{rest}"


def _log_request(response):
    request_id = g.get("request_id") or uuid.uuid4().hex
    response.headers[REQUEST_ID_HEADER] = request_id
    started = g.get("request_started")
    duration = (time.perf_counter() - started) * 1000 if started else 0.0
    # Only a user this request already loaded, read from its identity: logging must not cost
    # a query of its own (after a commit the user's attributes are expired).
    state = sa.inspect(g.get("_login_user"), raiseerr=False)
    user_id = str(state.identity[0]) if state is not None and state.identity else None
    path = logged_path(request.path)
    request_log.info(
        "%s %s %s",
        request.method,
        path,
        response.status_code,
        extra={
            "fields": {
                "method": request.method,
                "path": path,
                "status": response.status_code,
                "duration_ms": round(duration, 1),
                "user_id": user_id,
                "request_id": request_id,
            }
        },
    )
    return response


def logged_job(function):
    """One line per RQ job: its id, outcome (the job's return value, or the error) and time."""

    @wraps(function)
    def run(*args, **kwargs):
        from rq import get_current_job

        job = get_current_job()
        started = time.perf_counter()
        try:
            result = function(*args, **kwargs)
        except BaseException as error:
            if job is not None:
                _log_job(job.id, function, f"error: {type(error).__name__}", started, error)
            raise
        if job is not None:
            _log_job(job.id, function, "done" if result is None else str(result), started)
        return result

    return run


def _log_job(job_id: str, function, outcome: str, started: float, error=None) -> None:
    job_log.log(
        logging.ERROR if error is not None else logging.INFO,
        "job %s %s",
        job_id,
        outcome,
        exc_info=error,
        extra={
            "fields": {
                "job_id": job_id,
                "function": function.__name__,
                "outcome": outcome,
                "duration_ms": round((time.perf_counter() - started) * 1000, 1),
            }
        },
    )
