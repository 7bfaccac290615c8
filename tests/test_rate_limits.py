"""Rate limits on real Redis, counted across two app instances as across gunicorn workers."""

import itertools
import json
from pathlib import Path

import pytest
from flask import Flask
from limits.storage import RedisStorage
from openapi_core import Config, OpenAPI
from openapi_core.contrib.werkzeug import WerkzeugOpenAPIRequest, WerkzeugOpenAPIResponse
from werkzeug.test import EnvironBuilder

from ied.config import settings_from_environment
from ied.extensions import db
from ied.intake.services import create_api_key
from ied.leads.models import Lead
from ied.queues import redis_connection
from tests.conftest import TEST_PASSWORD

URL = "/api/v1/leads"
# The API document, reading RFC 9457 problems as the JSON they are.
SPEC = OpenAPI.from_file_path(
    str(Path(__file__).parent.parent / "docs/api/openapi.yaml"),
    config=Config(extra_media_type_deserializers={"application/problem+json": json.loads}),
)


@pytest.fixture
def two_apps(app, make_app):
    """Two apps sharing the test Redis and database, as two machines behind one balancer."""

    def build(**settings) -> tuple[Flask, Flask]:
        first, second = (make_app(RATELIMIT_ENABLED=True, **settings) for _ in range(2))
        one, other = first.extensions["ied_limiter"], second.extensions["ied_limiter"]
        assert one is not other and one.storage is not other.storage  # nothing shared in memory
        assert isinstance(one.storage, RedisStorage) and isinstance(other.storage, RedisStorage)
        return first, second

    return build


def sign_in(client, email: str, password: str = "wrong-password-1", forwarded_for=None):
    headers = {"X-Forwarded-For": forwarded_for} if forwarded_for else {}
    return client.post("/login", data={"email": email, "password": password}, headers=headers)


def assert_too_many_html(response, at_most: int) -> None:
    assert response.status_code == 429
    assert 0 < int(response.headers["Retry-After"]) <= at_most
    assert response.mimetype == "text/html"
    assert "Too many attempts" in response.text and "try again" in response.text


def test_failed_sign_ins_to_one_account_are_counted_across_both_apps(two_apps, make_user):
    first, second = two_apps(RATE_LIMIT_LOGIN_PER_ACCOUNT="3 per minute")
    user, bystander = make_user(), make_user()
    clients = itertools.cycle([first.test_client(), second.test_client()])
    assert [sign_in(next(clients), user.email).status_code for _ in range(3)] == [422] * 3
    for client in (next(clients), next(clients)):
        assert_too_many_html(sign_in(client, user.email.upper()), at_most=60)
    # Locked for everyone, the right password included, until the window moves on...
    assert sign_in(next(clients), user.email, TEST_PASSWORD).status_code == 429
    # ...but only this account.
    assert sign_in(next(clients), bystander.email, TEST_PASSWORD).status_code == 302
    keys = redis_connection(first).keys("*account:*")
    assert keys and all(user.email.encode() in key for key in keys)


def test_successful_sign_ins_do_not_count(two_apps, make_user):
    first, second = two_apps(RATE_LIMIT_LOGIN_PER_ACCOUNT="2 per minute")
    user = make_user()
    for app in (first, second, first, second):
        assert sign_in(app.test_client(), user.email, TEST_PASSWORD).status_code == 302


def test_failed_sign_ins_from_one_address_are_counted_across_accounts(two_apps):
    first, second = two_apps(RATE_LIMIT_LOGIN_PER_ADDRESS="3 per minute")
    clients = itertools.cycle([first.test_client(), second.test_client()])
    statuses = [sign_in(next(clients), f"guess{n}@ied.test").status_code for n in range(5)]
    assert statuses == [422, 422, 422, 429, 429]
    assert first.test_client().get("/login").status_code == 200  # the form itself stays open


def test_behind_a_proxy_the_address_comes_from_x_forwarded_for(two_apps):
    first, second = two_apps(RATE_LIMIT_LOGIN_PER_ADDRESS="2 per minute", PROXY_FIX_X_FOR=1)
    one, two = "203.0.113.7", "198.51.100.9"
    for app in (first, second):
        assert sign_in(app.test_client(), "a@ied.test", forwarded_for=one).status_code == 422
    assert sign_in(first.test_client(), "b@ied.test", forwarded_for=one).status_code == 429
    assert sign_in(second.test_client(), "c@ied.test", forwarded_for=two).status_code == 422


def test_without_proxy_fix_a_forged_x_forwarded_for_changes_nothing(two_apps):
    first, second = two_apps(RATE_LIMIT_LOGIN_PER_ADDRESS="2 per minute")
    statuses = [
        sign_in(app.test_client(), f"x{n}@ied.test", forwarded_for=f"192.0.2.{n}").status_code
        for n, app in enumerate((first, second, first))
    ]
    assert statuses == [422, 422, 429]


def test_failed_password_changes_are_limited_per_account(two_apps, make_user):
    first, second = two_apps(RATE_LIMIT_LOGIN_PER_ACCOUNT="2 per minute")
    user = make_user()
    clients = [first.test_client(), second.test_client()]
    for client in clients:
        assert sign_in(client, user.email, TEST_PASSWORD).status_code == 302
    wrong = {"current_password": "a-guess-1", "password": "x", "confirm": "x"}
    statuses = [c.post("/account/password", data=wrong).status_code for c in clients * 2]
    assert statuses == [422, 422, 429, 429]


def test_intake_calls_are_limited_per_key_across_both_apps_with_a_json_problem(app, two_apps):
    first, second = two_apps(RATE_LIMIT_INTAKE_PER_KEY="2 per minute")
    raw_key, _ = create_api_key("website")
    other_key, _ = create_api_key("partner")
    db.session.commit()

    def post(app: Flask, key: str):
        def request() -> EnvironBuilder:
            headers = {"Authorization": f"Bearer {key}"}
            return EnvironBuilder(
                path=URL, method="POST", json={}, headers=headers, base_url="http://localhost/"
            )

        response = app.test_client().open(request())
        spec_request = WerkzeugOpenAPIRequest(request().get_request())
        SPEC.validate_response(spec_request, WerkzeugOpenAPIResponse(response))
        return response

    assert [post(a, raw_key).status_code for a in (first, second)] == [422, 422]
    refused = post(first, raw_key)
    assert refused.status_code == 429
    assert refused.mimetype == "application/problem+json"
    assert 0 < int(refused.headers["Retry-After"]) <= 60
    problem = refused.get_json()
    assert problem["status"] == 429 and problem["title"] == "Too Many Requests"
    assert problem["retry_after"] == int(refused.headers["Retry-After"])
    assert "API key" in problem["message"]
    assert post(second, other_key).status_code == 422  # another source is not held up
    assert db.session.query(Lead).count() == 0


def test_limits_are_on_by_default_and_read_from_settings(tmp_path, monkeypatch):
    settings = settings_from_environment(str(tmp_path))
    assert settings["RATELIMIT_ENABLED"] is True
    assert settings["RATE_LIMIT_LOGIN_PER_ACCOUNT"] == "10 per 15 minutes"
    assert settings["PROXY_FIX_X_FOR"] == 0
    monkeypatch.setenv("RATE_LIMIT_INTAKE_PER_KEY", "5 per second")
    monkeypatch.setenv("PROXY_FIX_X_FOR", "2")
    settings = settings_from_environment(str(tmp_path))
    assert (settings["RATE_LIMIT_INTAKE_PER_KEY"], settings["PROXY_FIX_X_FOR"]) == (
        "5 per second",
        2,
    )


def test_a_malformed_limit_stops_the_app_at_start(make_app):
    with pytest.raises(ValueError):
        make_app(RATELIMIT_ENABLED=True, RATE_LIMIT_LOGIN_PER_ACCOUNT="ten an hour")


def test_calls_with_unknown_keys_are_limited_per_address_across_both_apps(app, two_apps):
    """Each made-up key would otherwise get a fresh per-key allowance: guessing is unlimited."""
    first, second = two_apps(
        RATE_LIMIT_INTAKE_BAD_KEY_PER_ADDRESS="3 per minute", PROXY_FIX_X_FOR=1
    )
    raw_key, _ = create_api_key("website")
    db.session.commit()

    def post(app: Flask, key: str, address: str = "203.0.113.7"):
        headers = {"Authorization": f"Bearer {key}", "X-Forwarded-For": address}
        return app.test_client().post(URL, json={}, headers=headers)

    statuses = [post(a, f"guess-{n}").status_code for n, a in enumerate([first, second] * 3)]
    assert statuses == [401, 401, 401, 429, 429, 429]
    refused = post(first, "guess-again")
    assert refused.mimetype == "application/problem+json"
    assert 0 < int(refused.headers["Retry-After"]) <= 60
    assert "unknown API key" in refused.get_json()["message"]
    assert post(second, raw_key, address="198.51.100.9").status_code == 422  # others go on
    assert db.session.query(Lead).count() == 0
