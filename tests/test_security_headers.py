"""Security headers on every kind of answer: pages, fragments, the API, the signed page, assets."""

import pytest

from ied.security_headers import CONTENT_SECURITY_POLICY


def assert_common_headers(response) -> None:
    csp = response.headers["Content-Security-Policy"]
    assert csp == CONTENT_SECURITY_POLICY
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert "frame-ancestors 'none'" in csp
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["X-Content-Type-Options"] == "nosniff"


@pytest.mark.parametrize("path", ["/dashboard", "/leads", "/follow-ups", "/installers", "/healthz"])
def test_pages_carry_the_policy_and_are_never_cached(client, login_as, path):
    login_as("manager")
    response = client.get(path)
    assert response.status_code == 200
    assert_common_headers(response)
    assert response.headers["Referrer-Policy"] == "same-origin"
    assert response.headers["Cache-Control"] == "no-store"
    assert "Strict-Transport-Security" not in response.headers


def test_htmx_fragments_and_errors_carry_them_too(client, login_as):
    login_as("operator")
    fragment = client.get("/leads", headers={"HX-Request": "true"})
    forbidden = client.get("/installers")
    for response in (fragment, forbidden):
        assert_common_headers(response)
        assert response.headers["Cache-Control"] == "no-store"
    assert forbidden.status_code == 403


def test_signed_pages_send_no_referrer(client):
    response = client.get("/d/not-a-valid-token")
    assert response.status_code == 404
    assert_common_headers(response)
    assert response.headers["Referrer-Policy"] == "no-referrer"


def test_static_assets_may_be_cached(client):
    response = client.get("/static/ied.js")
    assert_common_headers(response)
    assert response.headers.get("Cache-Control") != "no-store"
    response.close()


def test_production_answers_ask_for_https_only(make_app):
    app = make_app(IED_ENV="production", SECRET_KEY="a-long-random-production-secret-key-0123")
    response = app.test_client().get("/login")
    assert response.headers["Strict-Transport-Security"].startswith("max-age=")
