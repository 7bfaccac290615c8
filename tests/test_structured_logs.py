"""One log line per request and per RQ job, with the fields the operations side greps for."""

import io
import json
import logging

import pytest
from rq import SimpleWorker

from ied.delivery.jobs import deliver_assignment, requeue_stalled
from ied.queues import delivery_queue, redis_connection
from ied.structured_logs import REQUEST_ID_HEADER
from tests.conftest import TEST_PASSWORD


@pytest.fixture
def log_lines():
    """What the `ied` loggers write to their stream during the test, line by line."""
    handler = next(h for h in logging.getLogger("ied").handlers if hasattr(h, "ied_structured"))
    stream = io.StringIO()
    previous = handler.setStream(stream)
    yield lambda: stream.getvalue().splitlines()
    handler.setStream(previous)


def test_a_request_logs_one_json_line_and_answers_with_its_request_id(
    make_app, make_user, log_lines
):
    app = make_app(LOG_FORMAT="json")
    client = app.test_client()
    with app.app_context():
        user = make_user("operator")
        email, user_id = user.email, user.id
    client.post("/login", data={"email": email, "password": TEST_PASSWORD})
    log_lines()  # the login's own line is not this test's subject

    response = client.get("/leads", headers={REQUEST_ID_HEADER: "proxy-abc.123"})

    assert response.status_code == 200
    assert response.headers[REQUEST_ID_HEADER] == "proxy-abc.123"
    lines = [json.loads(line) for line in log_lines() if '"ied.requests"' in line]
    assert len(lines) == 2  # the login above, then this page
    line = lines[-1]
    assert line["method"] == "GET"
    assert line["path"] == "/leads"
    assert line["status"] == 200
    assert line["user_id"] == str(user_id)
    assert line["request_id"] == "proxy-abc.123"
    assert isinstance(line["duration_ms"], float) and line["duration_ms"] > 0


def test_a_signed_link_is_logged_without_its_token(make_app, log_lines):
    """The token is the installer's credential (the lead's customer, for weeks): whoever reads
    the logs must not be able to open the lead with it."""
    app = make_app(LOG_FORMAT="json")
    client = app.test_client()
    token = "eyJhIjoxLCJ2IjoxfQ.axMTTA.0Fds4HxqTRqd95weXj6ST5mrp9E"
    for method, path in (("GET", f"/d/{token}"), ("POST", f"/d/{token}/return")):
        client.open(path, method=method)
    lines = [json.loads(line) for line in log_lines() if '"ied.requests"' in line]
    assert [line["path"] for line in lines] == ["/d/[token]", "/d/[token]/return"]
    assert not any(token in line for line in log_lines())


def test_an_error_at_a_signed_link_is_logged_without_its_token(make_app, log_lines, monkeypatch):
    app = make_app(LOG_FORMAT="json", PROPAGATE_EXCEPTIONS=False)
    token = "eyJhIjoxLCJ2IjoxfQ.axMTTA.0Fds4HxqTRqd95weXj6ST5mrp9E"

    def fail(_):
        raise RuntimeError("the database went away")

    monkeypatch.setattr("ied.delivery.views.resolve_link", fail)
    assert app.test_client().get(f"/d/{token}").status_code == 500
    lines = log_lines()
    assert any("Exception on /d/[token] [GET]" in line for line in lines)
    assert not any(token in line for line in lines)


def test_a_request_without_a_usable_id_gets_a_fresh_one(make_app, log_lines):
    app = make_app(LOG_FORMAT="json")
    client = app.test_client()

    plain = client.get("/login")
    hostile = client.get("/login", headers={REQUEST_ID_HEADER: "x\u00e9" + "y" * 300})

    assert len(plain.headers[REQUEST_ID_HEADER]) == 32
    fresh = hostile.headers[REQUEST_ID_HEADER]
    assert len(fresh) == 32 and fresh != plain.headers[REQUEST_ID_HEADER]
    lines = [json.loads(line) for line in log_lines()]
    assert [line["request_id"] for line in lines] == [plain.headers[REQUEST_ID_HEADER], fresh]
    assert lines[0]["user_id"] is None


def test_development_lines_are_readable_text_and_werkzeug_is_quiet(make_app, log_lines):
    app = make_app(LOG_FORMAT="text")

    app.test_client().get("/login?next=/leads")

    (line,) = log_lines()
    assert "GET /login 200" in line
    assert "path=/login " in line and "status=200" in line
    assert logging.getLogger("werkzeug").getEffectiveLevel() == logging.WARNING


def test_each_rq_job_logs_its_id_outcome_and_duration(make_app, log_lines):
    app = make_app(LOG_FORMAT="json")
    with app.app_context():
        queue = delivery_queue(app)
        done = queue.enqueue(requeue_stalled)
        broken = queue.enqueue(deliver_assignment, 987654)  # no such assignment
        SimpleWorker([queue], connection=redis_connection(app)).work(
            burst=True, logging_level="WARNING"
        )

    lines = {line["job_id"]: line for line in map(json.loads, log_lines()) if "job_id" in line}
    assert lines[done.id]["outcome"] == "0"  # nothing was stalled
    assert lines[done.id]["function"] == "requeue_stalled"
    assert lines[done.id]["level"] == "info"
    assert lines[broken.id]["outcome"].startswith("error: ")
    assert lines[broken.id]["level"] == "error"
    assert "exception" in lines[broken.id]
    assert all(line["duration_ms"] >= 0 for line in lines.values())
