"""A pooled PostgreSQL connection the server has closed is replaced before a request uses it,
without a round trip to the server on every checkout (ied/pooled_connections.py)."""

import re
import tempfile
import time

import psycopg
import pytest
import sqlalchemy as sa

from ied.extensions import db
from ied.intake.services import create_api_key

QUERY_SENT = re.compile(r'\tF\t\d+\t(?:Query|Parse)\t (?:"[^"]*" )?"([^"]*)"')


@pytest.fixture(autouse=True)
def _postgres_only(is_postgres):
    if not is_postgres:
        pytest.skip("the check is PostgreSQL's; SQLite keeps pool_pre_ping")


def pooled_backend(app) -> int:
    """The server process behind the connection the app's pool hands out next."""
    with app.app_context():
        pid = db.session.execute(sa.text("SELECT pg_backend_pid()")).scalar_one()
        db.session.remove()
    return pid


def terminate(database_url: str, pid: int) -> None:
    """Stop the server process the way a restart or an idle timeout does, and wait for it."""
    dsn = sa.make_url(database_url).set(drivername="postgresql").render_as_string(False)
    with psycopg.connect(dsn, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        deadline = time.monotonic() + 10
        while admin.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", (pid,)).fetchone():
            assert time.monotonic() < deadline, "the backend did not stop"
            time.sleep(0.02)


def statements_sent_during(app, request) -> list[str]:
    """What the pooled connection sent the server during `request()`, from libpq's own trace of
    its messages: the text of each query, pings included (the pool's pre-ping does not pass
    through SQLAlchemy's statement events)."""
    with tempfile.TemporaryFile("w+") as trace:
        with app.app_context():
            pooled = db.engine.raw_connection()
            pooled.driver_connection.pgconn.trace(trace.fileno())
            pooled.close()
        request()
        with app.app_context():
            pooled = db.engine.raw_connection()
            pooled.driver_connection.pgconn.untrace()
            pooled.close()
        trace.seek(0)
        return QUERY_SENT.findall(trace.read())


def test_a_page_after_the_server_closed_its_pooled_connection(make_app, test_settings):
    app = make_app()
    client = app.test_client()
    assert client.get("/healthz").status_code == 200
    closed = pooled_backend(app)
    terminate(test_settings["SQLALCHEMY_DATABASE_URI"], closed)

    response = client.get("/healthz")

    assert response.status_code == 200, response.get_json()
    assert pooled_backend(app) != closed


def test_an_intake_call_after_the_server_closed_its_pooled_connection(make_app, test_settings):
    app = make_app()
    with app.app_context():
        key, _ = create_api_key("website")
        db.session.commit()
        db.session.remove()
    terminate(test_settings["SQLALCHEMY_DATABASE_URI"], pooled_backend(app))

    response = app.test_client().post(
        "/api/v1/leads",
        json={
            "external_id": "after-restart-1",
            "customer_name": "Grace Hall",
            "email": "grace.hall@example.com",
            "postcode": "SW1A 1AA",
            "product_interest": "solar_pv",
            "selected_path": "compare_quotes",
        },
        headers={"Authorization": f"Bearer {key}"},
    )

    assert response.status_code == 201, response.get_json()


def test_a_healthy_connection_is_kept_and_not_pinged(make_app):
    app = make_app()
    client = app.test_client()
    assert client.get("/healthz").status_code == 200
    first = pooled_backend(app)

    # /healthz's own statement in its transaction, and no ping before them.
    sent = statements_sent_during(app, lambda: client.get("/healthz"))
    assert sent == ["BEGIN", "SELECT 1", "ROLLBACK"]

    assert pooled_backend(app) == first
