from datetime import timedelta

import pytest
import sqlalchemy as sa

from ied import create_app
from ied.auth.models import User
from ied.config import UnsafeConfiguration
from ied.extensions import db
from ied.intake.models import ApiKey
from ied.intake.services import authenticate_api_key, hash_key, revoke_api_key
from tests.conftest import TEST_PASSWORD

PROTECTED = ["/", "/logout"]


@pytest.mark.parametrize("path", ["/"])
def test_pages_need_login(client, path):
    response = client.get(path)
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login")


def test_htmx_requests_without_login_are_told_where_to_sign_in(client):
    response = client.get("/", headers={"HX-Request": "true"})
    assert response.status_code == 401
    assert response.headers["HX-Redirect"].startswith("/login")


def test_public_pages_need_no_login(client):
    assert client.get("/login").status_code == 200
    assert client.get("/healthz").get_json() == {"status": "ok"}


def test_login_and_logout(client, make_user):
    user = make_user("manager")
    response = client.post(
        "/login?next=/", data={"email": user.email.upper(), "password": TEST_PASSWORD}
    )
    assert response.status_code == 302
    page = client.get("/", follow_redirects=True).get_data(as_text=True)  # the start page
    assert user.email in page and "manager" in page
    assert client.post("/logout").status_code == 302
    assert client.get("/").status_code == 302


def test_wrong_password_is_refused_inline_and_keeps_the_email(client, make_user):
    user = make_user()
    response = client.post("/login", data={"email": user.email, "password": "wrong-password"})
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert "Email or password is wrong" in page
    assert f'value="{user.email}"' in page


def test_inactive_users_cannot_sign_in(client, make_user):
    user = make_user()
    user.active = False
    db.session.commit()
    response = client.post("/login", data={"email": user.email, "password": TEST_PASSWORD})
    assert response.status_code == 422


def test_login_refuses_offsite_next(client, make_user):
    user = make_user()
    response = client.post(
        "/login?next=https://evil.example/", data={"email": user.email, "password": TEST_PASSWORD}
    )
    assert response.headers["Location"] == "/"


def test_a_next_with_a_line_break_signs_in_to_the_landing_page_not_a_500(app, client, make_user):
    user = make_user()
    app.config["PROPAGATE_EXCEPTIONS"] = False
    response = client.post(
        "/login?next=/leads%0d%0aX-Evil:%201",
        data={"email": user.email, "password": TEST_PASSWORD},
    )
    assert response.status_code == 302 and response.headers["Location"] == "/"


def test_csrf_is_required_when_enabled(make_app, make_user):
    app = make_app(WTF_CSRF_ENABLED=True)
    with app.app_context():
        user = make_user()
        response = app.test_client().post(
            "/login", data={"email": user.email, "password": TEST_PASSWORD}
        )
        assert response.status_code == 400
        assert "Form expired" in response.get_data(as_text=True)


def test_a_production_form_sent_over_plain_http_says_it_needs_https(make_app, make_user):
    """A browser does not keep the Secure session cookie a plain-http page sets (the test
    client does: here it is left out), and with it goes the form's CSRF token."""
    app = make_app(
        IED_ENV="production",
        SECRET_KEY="a-long-random-production-secret-key-0123",
        WTF_CSRF_ENABLED=True,
    )
    user = make_user()
    for base_url, keeps_the_cookie, title in (
        ("http://back.office", False, "This address needs HTTPS"),
        ("https://back.office", True, "Form expired"),  # a token that is not the session's
        ("http://back.office", True, "Form expired"),  # a proxy not yet trusted for the scheme
    ):
        client = app.test_client()
        if keeps_the_cookie:
            client.get("/login", base_url=base_url)
        response = client.post(
            "/login",
            data={"email": user.email, "password": TEST_PASSWORD, "csrf_token": "stale"},
            base_url=base_url,
            headers={"Referer": f"{base_url}/login"},
        )
        assert response.status_code == 400
        assert title in response.get_data(as_text=True), (base_url, keeps_the_cookie)


@pytest.mark.parametrize(
    ("role", "may"),
    [
        ("operator", "operator"),
        ("manager", "operator"),
        ("manager", "manager"),
        ("admin", "manager"),
        ("admin", "admin"),
    ],
)
def test_roles_nest(role, may):
    assert User(role=role).has_role(may)


@pytest.mark.parametrize(
    ("role", "may_not"), [("operator", "manager"), ("operator", "admin"), ("manager", "admin")]
)
def test_roles_do_not_reach_up(role, may_not):
    assert not User(role=role).has_role(may_not)


def test_production_refuses_the_development_secret_key(monkeypatch):
    monkeypatch.setenv("IED_ENV", "production")
    monkeypatch.delenv("SECRET_KEY", raising=False)
    with pytest.raises(UnsafeConfiguration, match="SECRET_KEY"):
        create_app({"SQLALCHEMY_DATABASE_URI": "sqlite://"})


def test_cli_create_user_and_api_key(app):
    runner = app.test_cli_runner()
    result = runner.invoke(
        args=[
            "ied",
            "create-user",
            "Ops@IED.test",
            "--role",
            "manager",
            "--password",
            "a-long-password",
        ]
    )
    assert result.exit_code == 0, result.output
    user = db.session.scalars(sa.select(User).where(User.email == "ops@ied.test")).one()
    assert (user.role, user.check_password("a-long-password")) == ("manager", True)
    duplicate = runner.invoke(
        args=[
            "ied",
            "create-user",
            "ops@ied.test",
            "--role",
            "admin",
            "--password",
            "a-long-password",
        ]
    )
    assert duplicate.exit_code != 0 and "already exists" in duplicate.output

    result = runner.invoke(args=["ied", "create-api-key", "website"])
    assert result.exit_code == 0, result.output
    raw_key = result.output.strip().splitlines()[-1]
    stored = db.session.scalars(sa.select(ApiKey)).one()
    assert stored.key_hash == hash_key(raw_key) and raw_key not in stored.key_hash
    assert authenticate_api_key(raw_key).source == "website"
    revoke_api_key(stored)
    db.session.commit()
    assert authenticate_api_key(raw_key) is None


def test_cli_seed_demo_fills_every_state(app):
    from ied.activity.models import ActivityEntry
    from ied.delivery.models import Assignment, DeliveryAudit, DeliveryEvent
    from ied.finance.models import ReturnRequest
    from ied.finance.services import cycle_billing_drift
    from ied.followups.models import FollowUp
    from ied.followups.queries import due_state_counts
    from ied.leads.models import Lead

    result = app.test_cli_runner().invoke(args=["ied", "seed-demo", "--if-empty"])
    assert result.exit_code == 0, result.output
    # The backdated leads' activity moved with them: a lead's timeline and its status history
    # tell the same times.
    created = db.session.execute(
        sa.select(Lead.created_at, ActivityEntry.created_at).join(
            ActivityEntry,
            (ActivityEntry.lead_id == Lead.id) & (ActivityEntry.verb == "lead.created"),
        )
    ).all()
    assert len(created) > 100
    assert all(abs(entry_at - lead_at) < timedelta(seconds=1) for lead_at, entry_at in created)
    assert "operator@ied.localhost" in result.output and "maple-quartz-demo" in result.output

    def grouped(column):
        return dict(db.session.execute(sa.select(column, sa.func.count()).group_by(column)).all())

    assert set(grouped(Lead.status)) == {"new", "reviewing", "ready_to_route", "assigned"}
    assert set(grouped(Lead.selected_path)) == {"compare_quotes", "recommended_installer"}
    assert {"queued", "sent", "failed"} <= set(grouped(Assignment.status))
    assert set(grouped(DeliveryAudit.status)) == {"sent", "failed"}
    assert set(grouped(FollowUp.status)) == {
        "pending",
        "in_progress",
        "completed",
        "closed_with_issue",
    }
    assert all(count > 0 for count in due_state_counts().values())
    assert db.session.scalar(sa.select(sa.func.count()).select_from(DeliveryEvent)) > 0
    assert set(grouped(ReturnRequest.status)) == {"pending", "approved", "rejected"}
    assert (
        db.session.scalar(sa.select(sa.func.count()).where(DeliveryEvent.voided_at.is_not(None)))
        > 3
    )
    assert cycle_billing_drift() == []
    again = app.test_cli_runner().invoke(args=["ied", "seed-demo", "--if-empty"])
    assert "skipped" in again.output


def test_production_refuses_the_mail_catcher(monkeypatch):
    monkeypatch.setenv("IED_ENV", "production")
    monkeypatch.setenv("SECRET_KEY", "a-real-production-secret")
    monkeypatch.setenv("MAIL_CATCHER_ENABLED", "1")
    with pytest.raises(UnsafeConfiguration, match="MAIL_CATCHER_ENABLED"):
        create_app({"SQLALCHEMY_DATABASE_URI": "sqlite://"})
