"""POST /api/v1/leads: keys, idempotency, validation, limits, duplicates, and the OpenAPI file."""

import json
import threading
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from openapi_core import OpenAPI
from openapi_core.contrib.werkzeug import WerkzeugOpenAPIRequest, WerkzeugOpenAPIResponse
from psycopg import _queries as psycopg_queries
from werkzeug.test import EnvironBuilder

from ied.extensions import db
from ied.intake.models import ApiKey
from ied.intake.services import KEY_MEMORY_SECONDS, create_api_key, revoke_api_key
from ied.leads.models import Lead, LeadStatusChange
from ied.timestamps import utcnow

SPEC = OpenAPI.from_file_path(str(Path(__file__).parent.parent / "docs/api/openapi.yaml"))
URL = "/api/v1/leads"


def submission(**fields) -> dict:
    body = {
        "external_id": "web-1001",
        "customer_name": "Grace Hall",
        "email": "grace.hall@example.com",
        "phone": "07700 900456",
        "address": "12 High Street",
        "postcode": "sw1a 1aa",
        "product_interest": "solar_pv",
        "selected_path": "compare_quotes",
        "assessment": {"property_type": "semi_detached", "monthly_bill_gbp": 120},
        "recommendation": "A 4 kW system.",
        "notes": "Prefers evenings.",
    }
    body.update(fields)
    return body


@pytest.fixture
def api_key(app) -> str:
    raw_key, _ = create_api_key("website")
    db.session.commit()
    return raw_key


@pytest.fixture
def post(client):
    """Post to the API through the test client; every answer is checked against the spec."""

    def send(body=None, *, key=None, raw: bytes | None = None, content_type="application/json"):
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        data = raw if raw is not None else json.dumps(body).encode()
        builder = EnvironBuilder(
            path=URL, method="POST", data=data, headers=headers, content_type=content_type
        )
        response = client.open(builder)
        spec_request = EnvironBuilder(
            path=URL,
            method="POST",
            data=data,
            headers=headers,
            content_type=content_type,
            base_url="http://localhost/",
        ).get_request()
        SPEC.validate_response(
            WerkzeugOpenAPIRequest(spec_request), WerkzeugOpenAPIResponse(response)
        )
        return response

    return send


def lead_count() -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(Lead))


def test_the_example_submission_matches_the_spec():
    request = EnvironBuilder(
        path=URL, method="POST", json=submission(), headers={"Authorization": "Bearer x"}
    ).get_request()
    SPEC.validate_request(WerkzeugOpenAPIRequest(request))


def test_a_new_submission_becomes_a_new_lead(post, api_key):
    response = post(submission(), key=api_key)
    assert response.status_code == 201
    reference = response.json["reference"]
    assert response.json == {"reference": reference, "status": "new", "possible_duplicate_of": None}
    lead = db.session.scalars(sa.select(Lead)).one()
    assert (lead.reference, lead.source, lead.external_id) == (reference, "website", "web-1001")
    assert (lead.postcode, lead.postcode_normalized) == ("SW1A 1AA", "SW1A1AA")
    assert lead.assessment == {"property_type": "semi_detached", "monthly_bill_gbp": 120}
    assert db.session.get(ApiKey, 1).last_used_at is not None


def test_a_repeat_answers_200_with_the_same_lead_and_changes_nothing(post, api_key):
    first = post(submission(), key=api_key)
    repeat = post(submission(customer_name="Someone Else"), key=api_key)
    assert repeat.status_code == 200
    assert repeat.json["reference"] == first.json["reference"]
    assert lead_count() == 1
    assert db.session.scalar(sa.select(Lead.customer_name)) == "Grace Hall"
    assert db.session.scalar(sa.select(sa.func.count()).select_from(LeadStatusChange)) == 1


def test_external_ids_are_per_source(post, api_key):
    other_key, _ = create_api_key("partner")
    db.session.commit()
    assert post(submission(), key=api_key).status_code == 201
    assert post(submission(), key=other_key).status_code == 201
    assert lead_count() == 2


@pytest.mark.parametrize("key", [None, "ied_not-a-real-key", "revoked"])
def test_no_bad_or_revoked_key_is_401(post, app, key):
    if key == "revoked":
        key, record = create_api_key("website")
        revoke_api_key(record)
        db.session.commit()
    response = post(submission(), key=key)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert lead_count() == 0


def test_a_key_revoked_elsewhere_stops_working_within_the_memory_of_each_process(
    post, app, api_key
):
    """Each web process remembers a valid key KEY_MEMORY_SECONDS; revoked by another process
    (here: straight in the database), it works until that memory is stale, then never."""
    assert post(submission(external_id="web-1"), key=api_key).status_code == 201
    db.session.execute(sa.update(ApiKey).values(revoked_at=utcnow()))
    db.session.commit()
    assert post(submission(external_id="web-2"), key=api_key).status_code == 201
    for known in app.extensions["ied_known_api_keys"].values():
        known.checked_at -= KEY_MEMORY_SECONDS
    assert post(submission(external_id="web-3"), key=api_key).status_code == 401
    assert post(submission(external_id="web-4"), key=api_key).status_code == 401
    assert lead_count() == 2


def test_a_key_revoked_in_this_process_stops_working_once_the_revocation_commits(
    post, app, api_key
):
    assert post(submission(external_id="web-1"), key=api_key).status_code == 201
    revoke_api_key(db.session.scalars(sa.select(ApiKey)).one())
    # Not committed yet: another request still finds the key valid (and remembers it) ...
    assert post(submission(external_id="web-2"), key=api_key).status_code == 201
    db.session.commit()
    # ... and the commit makes this process forget it at once.
    assert post(submission(external_id="web-3"), key=api_key).status_code == 401


@pytest.mark.parametrize(
    ("raw", "content_type"),
    [
        (b"external_id=1", "application/x-www-form-urlencoded"),
        (b"{}", "text/plain"),
        (b"{not json", "application/json"),
    ],
)
def test_a_body_that_is_not_json_is_415(post, api_key, raw, content_type):
    response = post(key=api_key, raw=raw, content_type=content_type)
    assert response.status_code == 415
    assert lead_count() == 0


def test_a_body_over_64_kib_is_413(post, api_key):
    body = submission(notes="x" * (64 * 1024))
    response = post(body, key=api_key)
    assert response.status_code == 413
    assert lead_count() == 0


def test_a_body_just_under_64_kib_is_accepted(post, api_key):
    body = submission(notes="")
    body["notes"] = "x" * (64 * 1024 - len(json.dumps(body)) - 10)
    assert post(body, key=api_key).status_code == 201


@pytest.mark.parametrize(
    ("change", "errors"),
    [
        ({"customer_name": ""}, {"customer_name"}),
        ({"email": None, "phone": None}, {"email", "phone"}),
        ({"email": "not-an-email"}, {"email"}),
        ({"postcode": "12345"}, {"postcode"}),
        ({"product_interest": "windmill"}, {"product_interest"}),
        ({"selected_path": "cheapest"}, {"selected_path"}),
        ({"assessment": ["a", "list"]}, {"assessment"}),
        ({"recommended_installer_id": 999}, {"recommended_installer_id"}),
        ({"recommended_installer_id": "7"}, {"recommended_installer_id"}),
        ({"external_id": ""}, {"external_id"}),
        ({"status": "won", "budget": 5000}, {"status", "budget"}),
        ({"customer_name": 42, "postcode": None}, {"customer_name", "postcode"}),
    ],
)
def test_bad_input_is_422_with_an_error_per_field_and_changes_nothing(
    post, api_key, change, errors
):
    response = post(submission(**change), key=api_key)
    assert response.status_code == 422
    assert set(response.json["errors"]) == errors
    assert lead_count() == 0


def test_unknown_fields_are_refused_by_name(post, api_key):
    response = post(submission(status="won"), key=api_key)
    assert response.json["errors"] == {"status": "Unknown field."}


def test_a_body_that_is_not_an_object_is_422(post, api_key):
    response = post(["a", "list"], key=api_key)
    assert response.status_code == 422
    assert set(response.json["errors"]) == {"body"}


def test_a_lead_sharing_email_or_phone_with_a_recent_one_is_flagged(post, api_key):
    first = post(submission(), key=api_key).json["reference"]
    by_email = post(submission(external_id="web-2", phone=None), key=api_key)
    by_phone = post(
        submission(external_id="web-3", email="other@example.com", phone="+44 7700 900456"),
        key=api_key,
    )
    assert by_email.json["possible_duplicate_of"] == first
    assert by_phone.json["possible_duplicate_of"] == first  # by_email has no phone
    assert lead_count() == 3  # flagged, never merged or dropped


def test_a_lead_older_than_the_window_does_not_flag(post, api_key, app):
    post(submission(), key=api_key)
    window = timedelta(days=app.config["DUPLICATE_WINDOW_DAYS"] + 1)
    db.session.execute(sa.update(Lead).values(created_at=utcnow() - window))
    db.session.commit()
    assert post(submission(external_id="web-2"), key=api_key).json["possible_duplicate_of"] is None


def test_the_api_needs_no_csrf_token(make_app, app):
    csrf_app = make_app(WTF_CSRF_ENABLED=True)
    with csrf_app.app_context():
        raw_key, _ = create_api_key("website")
        db.session.commit()
        response = csrf_app.test_client().post(
            URL, json=submission(), headers={"Authorization": f"Bearer {raw_key}"}
        )
        assert response.status_code == 201


def test_fifty_identical_posts_at_once_create_one_lead(app, api_key, is_postgres):
    if not is_postgres:
        pytest.skip("concurrent writers need PostgreSQL; SQLite serialises them")
    start = threading.Barrier(50)
    statuses, references = [], []

    def post_once():
        client = app.test_client()
        start.wait(10)
        response = client.post(
            URL, json=submission(), headers={"Authorization": f"Bearer {api_key}"}
        )
        statuses.append(response.status_code)
        references.append(response.json["reference"])

    threads = [threading.Thread(target=post_once) for _ in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(statuses) == [200] * 49 + [201]
    assert len(set(references)) == 1
    db.session.expire_all()
    assert lead_count() == 1
    assert db.session.scalar(sa.select(sa.func.count()).select_from(LeadStatusChange)) == 1


def test_on_postgresql_a_call_naming_its_installer_uses_no_session_connection(
    app, post, api_key, is_postgres, make_installer
):
    """The recommended installer is looked up on the call's autocommit connection: a session
    left in a transaction by that read would hold a second pool connection to the end of the
    request (fifty such calls at once exhausted a pool of ten)."""
    if not is_postgres:
        pytest.skip("SQLite writes in the session")
    installer_id = make_installer().id
    db.session.commit()
    post(submission(external_id="web-warm"), key=api_key)  # the key is now remembered
    seen = []

    def record(connection, cursor, statement, *args) -> None:
        seen.append((statement, connection.connection.dbapi_connection.autocommit))

    sa.event.listen(db.engine, "before_cursor_execute", record)
    try:
        named = post(
            submission(external_id="web-named", recommended_installer_id=installer_id), key=api_key
        )
        unknown = post(
            submission(external_id="web-unknown", recommended_installer_id=2**31 - 1), key=api_key
        )
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", record)
    assert named.status_code == 201, named.json
    assert unknown.status_code == 422
    assert unknown.json["errors"] == {"recommended_installer_id": "No installer has this id."}
    assert len(seen) == 3 and all(autocommit for _, autocommit in seen), seen


def test_on_postgresql_a_new_lead_is_one_statement_outside_a_transaction(
    app, post, api_key, is_postgres
):
    """Its lead, history, counters, tally and activity row, committed by that one statement:
    no BEGIN, no COMMIT round trip. The connection goes back to the pool transactional. The
    statement is short enough for psycopg to keep its conversion to PostgreSQL's placeholders
    (a longer one is converted again on every call)."""
    if not is_postgres:
        pytest.skip("SQLite writes the lead's records one statement at a time")
    post(submission(external_id="web-warm"), key=api_key)  # the key is now remembered
    seen = []
    sizes = []

    def record(connection, cursor, statement, parameters, *args) -> None:
        dbapi_connection = connection.connection.dbapi_connection
        seen.append((statement, dbapi_connection.autocommit, dbapi_connection))
        sizes.append((len(statement.encode()), len(parameters)))

    sa.event.listen(db.engine, "before_cursor_execute", record)
    try:
        response = post(
            submission(external_id="web-one", email="ada@example.com", phone=None), key=api_key
        )
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", record)
    assert response.status_code == 201
    assert [autocommit for _, autocommit, _ in seen] == [True], [s for s, _, _ in seen]
    assert seen[0][2].autocommit is False  # reset when the request gave it back to the pool
    [(length, parameters)] = sizes
    assert length <= psycopg_queries.MAX_CACHED_STATEMENT_LENGTH
    assert parameters <= psycopg_queries.MAX_CACHED_STATEMENT_PARAMS
    lead = db.session.scalars(sa.select(Lead).filter_by(external_id="web-one")).one()
    assert [change.to_status for change in lead.status_changes] == ["new"]


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [("GET", URL, 405), ("PUT", URL, 405), ("POST", "/api/v1/lead", 404), ("GET", "/api/v2/", 404)],
)
def test_the_api_answers_a_wrong_method_or_address_as_json_too(client, method, path, status):
    """A source's client reads JSON from this API: a wrong method or address was an HTML page."""
    response = client.open(path, method=method)
    assert response.status_code == status
    assert response.mimetype == "application/problem+json"
    assert response.json["status"] == status and response.json["message"]
    if status == 405:
        assert sorted(response.headers["Allow"].split(", ")) == ["OPTIONS", "POST"]
