"""Sessions the server can end: a saved cookie replayed after each revoking event is refused."""

import time

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from ied.activity.models import ActivityEntry
from ied.auth.models import User
from ied.auth.sessions import SEEN_AT, SIGNED_IN_AT, TOUCH_EVERY_SECONDS
from ied.extensions import db
from tests.conftest import TEST_PASSWORD

NEW_PASSWORD = "plum-tractor-seaside-42"


@pytest.fixture
def web(app, make_app) -> Flask:
    """A second app whose requests each get their own app context, as under a real server.

    (Requests to the `app` fixture share the test's pushed context and with it flask.g, where
    Flask-Login caches the signed-in user: a replayed cookie there would not even be read.)
    """
    return make_app()


def signed_in_client(app: Flask, user: User, password: str = TEST_PASSWORD) -> FlaskClient:
    client = app.test_client()
    response = client.post("/login", data={"email": user.email, "password": password})
    assert response.status_code == 302, response.get_data(as_text=True)
    assert client.get("/leads").status_code == 200
    return client


def saved_cookie(app: Flask, client: FlaskClient) -> str:
    return client.get_cookie(app.config["SESSION_COOKIE_NAME"]).value


def replay(app: Flask, cookie: str) -> FlaskClient:
    """A fresh browser that carries only the saved cookie."""
    client = app.test_client()
    client.set_cookie(app.config["SESSION_COOKIE_NAME"], cookie)
    return client


def assert_refused(client: FlaskClient) -> None:
    page = client.get("/")
    assert page.status_code == 302 and page.headers["Location"].startswith("/login")
    fragment = client.get("/leads", headers={"HX-Request": "true"})
    assert fragment.status_code == 401 and fragment.headers["HX-Redirect"].startswith("/login")


def test_a_saved_cookie_still_works_until_something_ends_it(web, make_user):
    """The control: without a revoking event the replayed cookie is a signed-in browser."""
    client = signed_in_client(web, make_user())
    assert replay(web, saved_cookie(web, client)).get("/leads").status_code == 200


def test_logout_ends_the_cookie_and_every_other_session(web, make_user):
    user = make_user()
    client, elsewhere = signed_in_client(web, user), signed_in_client(web, user)
    cookie = saved_cookie(web, client)
    assert client.post("/logout").status_code == 302
    assert_refused(replay(web, cookie))
    assert_refused(elsewhere)
    assert signed_in_client(web, user)  # signing in again works


def test_changing_ones_password_ends_the_other_sessions_and_keeps_this_one(web, make_user):
    user = make_user()
    other, changer = signed_in_client(web, user), signed_in_client(web, user)
    old_cookie_of_changer = saved_cookie(web, changer)
    assert changer.get("/account/password").status_code == 200
    response = changer.post(
        "/account/password",
        data={"current_password": TEST_PASSWORD, "password": NEW_PASSWORD, "confirm": NEW_PASSWORD},
    )
    assert response.status_code == 303
    assert changer.get("/leads").status_code == 200  # this browser stays signed in
    changed = sa.select(ActivityEntry).where(ActivityEntry.verb == "user.password_changed")
    assert [(e.subject_id, e.actor_id) for e in db.session.scalars(changed)] == [(user.id,) * 2]
    assert_refused(other)
    assert_refused(replay(web, old_cookie_of_changer))
    refused = web.test_client().post(
        "/login", data={"email": user.email, "password": TEST_PASSWORD}
    )
    assert refused.status_code == 422
    assert signed_in_client(web, user, NEW_PASSWORD)


@pytest.mark.parametrize(
    ("data", "field_error"),
    [
        ({"current_password": "not-my-password", "password": NEW_PASSWORD}, "not your current"),
        ({"current_password": TEST_PASSWORD, "password": "short"}, "at least 12 characters"),
        ({"current_password": TEST_PASSWORD, "password": "password123456"}, "too easy to guess"),
        ({"current_password": TEST_PASSWORD, "password": TEST_PASSWORD}, "different from"),
    ],
)
def test_a_refused_change_says_why_inline_and_changes_nothing(web, make_user, data, field_error):
    user = make_user()
    client = signed_in_client(web, user)
    cookie = saved_cookie(web, client)
    response = client.post("/account/password", data={"confirm": data["password"], **data})
    assert response.status_code == 422
    assert field_error in response.get_data(as_text=True)
    assert replay(web, cookie).get("/leads").status_code == 200  # no session ended
    assert signed_in_client(web, user)  # the old password still signs in


def test_the_two_new_passwords_must_match(web, make_user):
    client = signed_in_client(web, make_user())
    response = client.post(
        "/account/password",
        data={"current_password": TEST_PASSWORD, "password": NEW_PASSWORD, "confirm": "other"},
    )
    assert response.status_code == 422 and "The two new passwords differ." in response.text


def test_an_admins_reset_ends_that_users_sessions(web, make_user):
    user = make_user()
    cookie = saved_cookie(web, signed_in_client(web, user))
    admin_user = make_user("admin")
    admin = signed_in_client(web, admin_user)
    assert admin.get(f"/admin/users/{user.id}/password").status_code == 200
    response = admin.post(f"/admin/users/{user.id}/password", data={"password": NEW_PASSWORD})
    assert response.status_code == 303
    assert_refused(replay(web, cookie))
    assert signed_in_client(web, user, NEW_PASSWORD)
    assert admin.get("/leads").status_code == 200
    entries = sa.select(ActivityEntry).where(ActivityEntry.verb == "user.password_reset")
    (entry,) = db.session.scalars(entries)
    assert (entry.subject_id, entry.actor_id) == (user.id, admin_user.id)


def test_an_admins_reset_applies_the_rules_and_not_to_themselves(web, make_user):
    user = make_user()
    cookie = saved_cookie(web, signed_in_client(web, user))
    admin_user = make_user("admin")
    admin = signed_in_client(web, admin_user)
    weak = admin.post(f"/admin/users/{user.id}/password", data={"password": "qwertyuiop123"})
    assert weak.status_code == 422 and "too easy to guess" in weak.text
    own = admin.post(f"/admin/users/{admin_user.id}/password", data={"password": NEW_PASSWORD})
    assert own.status_code == 422 and "Password page" in own.text
    assert replay(web, cookie).get("/leads").status_code == 200
    assert admin.get("/admin/users/999999/password").status_code == 404


def test_deactivation_ends_that_users_sessions(web, make_user):
    user = make_user()
    cookie = saved_cookie(web, signed_in_client(web, user))
    admin = signed_in_client(web, make_user("admin"))
    admin.post(f"/admin/users/{user.id}/active", data={"active": "0"})
    assert_refused(replay(web, cookie))
    admin.post(f"/admin/users/{user.id}/active", data={"active": "1"})
    assert_refused(replay(web, cookie))  # coming back does not revive the old cookie
    assert signed_in_client(web, user)


def _stamp(client: FlaskClient, **seconds_ago: int) -> None:
    now = int(time.time())
    with client.session_transaction() as session:
        for key, ago in seconds_ago.items():
            session[key] = now - ago


def test_an_idle_session_ends(web, make_user):
    web.config["SESSION_IDLE_HOURS"] = 12
    user = make_user()
    fresh, idle = signed_in_client(web, user), signed_in_client(web, user)
    _stamp(fresh, **{SEEN_AT: 11 * 3600})
    _stamp(idle, **{SEEN_AT: 12 * 3600 + 60})
    assert fresh.get("/leads").status_code == 200
    assert_refused(idle)


def test_activity_keeps_the_session_alive_but_not_past_its_lifetime(web, make_user):
    web.config.update(SESSION_IDLE_HOURS=12, SESSION_LIFETIME_HOURS=24)
    user = make_user()
    client = signed_in_client(web, user)
    _stamp(client, **{SEEN_AT: TOUCH_EVERY_SECONDS + 5})
    assert client.get("/leads").status_code == 200
    with client.session_transaction() as session:
        assert time.time() - session[SEEN_AT] < 5  # the request counted as activity
    old = signed_in_client(web, user)
    _stamp(old, **{SIGNED_IN_AT: 24 * 3600 + 60, SEEN_AT: 60})
    assert_refused(old)


def test_a_cookie_from_before_session_tokens_is_refused(web, make_user):
    user = make_user()
    client = signed_in_client(web, user)
    with client.session_transaction() as session:
        session["_user_id"] = str(user.id)  # the old form of the id, with no token
    assert_refused(client)


def test_production_cookies_are_host_prefixed_secure_httponly_lax(make_app, make_user):
    app = make_app(IED_ENV="production", SECRET_KEY="a-long-random-production-secret-key-0123")
    user = make_user()
    response = app.test_client().post(
        "/login", data={"email": user.email, "password": TEST_PASSWORD}
    )
    assert response.status_code == 302
    (cookie,) = response.headers.getlist("Set-Cookie")
    attributes = [part.strip() for part in cookie.split(";")]
    assert attributes[0].startswith("__Host-session=")
    assert {"Secure", "HttpOnly", "SameSite=Lax", "Path=/"} <= set(attributes)
    assert not any(part.lower().startswith("domain=") for part in attributes)
    assert any(part.startswith("Expires=") for part in attributes)  # the absolute lifetime
    assert app.config["REMEMBER_COOKIE_NAME"].startswith("__Host-")
    assert app.config["REMEMBER_COOKIE_SECURE"] and app.config["REMEMBER_COOKIE_HTTPONLY"]
    assert app.config["REMEMBER_COOKIE_SAMESITE"] == "Lax"


def test_development_cookies_stay_usable_over_plain_http(web, make_user):
    response = web.test_client().post(
        "/login", data={"email": make_user().email, "password": TEST_PASSWORD}
    )
    (cookie,) = response.headers.getlist("Set-Cookie")
    assert cookie.startswith("session=") and "Secure" not in cookie and "HttpOnly" in cookie


def test_the_header_links_to_the_password_page(web, make_user):
    page = signed_in_client(web, make_user()).get("/").text
    assert 'href="/account/password"' in page


@pytest.mark.parametrize("number", ["²", "٣", "99999999999", "0"])
def test_a_signed_session_whose_user_number_no_user_can_have_is_signed_out(web, number):
    """Only a cookie signed with the secret key gets here; still no 500 from what it holds."""
    client = web.test_client()
    now = int(time.time())
    with client.session_transaction() as state:
        state.update({"_user_id": f"{number}:token", SIGNED_IN_AT: now, SEEN_AT: now})
    response = client.get("/leads")
    assert response.status_code == 302 and "/login" in response.headers["Location"]
