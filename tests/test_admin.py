"""Admin pages: users (create, change role, deactivate) and intake API keys (create, revoke)."""

import re

import pytest
import sqlalchemy as sa

from ied.auth.models import User
from ied.auth.services import authenticate
from ied.extensions import db
from ied.intake.models import ApiKey
from ied.intake.services import authenticate_api_key
from tests.conftest import TEST_PASSWORD


@pytest.mark.parametrize("role", ["operator", "manager"])
@pytest.mark.parametrize("path", ["/admin/users", "/admin/api-keys"])
def test_admin_pages_are_for_admins(client, login_as, role, path):
    login_as(role)
    assert client.get(path).status_code == 403
    assert client.post(path, data={}).status_code == 403


def test_create_a_user_who_can_then_sign_in(client, login_as):
    login_as("admin")
    response = client.post(
        "/admin/users",
        data={"email": "New@ied.test", "role": "manager", "password": "a-long-password"},
    )
    assert response.status_code == 303
    user = db.session.scalars(sa.select(User).where(User.email == "new@ied.test")).one()
    assert user.role == "manager"
    assert authenticate("new@ied.test", "a-long-password") == user


def test_a_bad_user_is_refused_inline(client, login_as):
    login_as("admin")
    response = client.post(
        "/admin/users", data={"email": "x@ied.test", "role": "manager", "password": "short"}
    )
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "at least 12 characters" in html and 'value="x@ied.test"' in html


@pytest.mark.parametrize(
    "email", ["a@ied.test, b@other.test", "Zoe <zoe@ied.test>", "zoë@ied.test", '"a,b"@ied.test']
)
def test_a_user_email_is_one_plain_address(client, login_as, email):
    """The digest is mailed to a manager's address: a list or a name there would send it to
    someone else too, and a non-ASCII one could not be sent."""
    login_as("admin")
    response = client.post(
        "/admin/users", data={"email": email, "role": "manager", "password": "a-long-password"}
    )
    assert response.status_code == 422
    assert "Give one email address" in response.get_data(as_text=True)
    assert db.session.scalar(sa.select(sa.func.count()).select_from(User)) == 1  # the admin


def test_change_role_and_deactivate(client, login_as, make_user):
    login_as("admin")
    user = make_user("operator")
    client.post(f"/admin/users/{user.id}/role", data={"role": "manager"})
    client.post(f"/admin/users/{user.id}/active", data={"active": "0"})
    db.session.refresh(user)
    assert (user.role, user.active) == ("manager", False)
    assert authenticate(user.email, TEST_PASSWORD) is None


def test_an_admin_cannot_lock_themselves_out(client, login_as):
    admin = login_as("admin")
    page = client.post(
        f"/admin/users/{admin.id}/active", data={"active": "0"}, follow_redirects=True
    ).get_data(as_text=True)
    assert "You cannot deactivate yourself." in page
    db.session.refresh(admin)
    assert admin.active


def test_row_buttons_name_the_row_they_act_on(client, login_as, make_user):
    login_as("admin")
    other = make_user("manager", email="pat@ied.test")
    client.post("/admin/api-keys", data={"source": "website"})
    users = client.get("/admin/users").get_data(as_text=True)
    keys = client.get("/admin/api-keys").get_data(as_text=True)
    assert f'aria-label="Deactivate {other.email}">Deactivate</button>' in users
    assert f'aria-label="Reset password for {other.email}">Reset password</a>' in users
    prefix = db.session.scalars(sa.select(ApiKey.key_prefix)).one()
    assert f'aria-label="Revoke the key of website ({prefix})">Revoke</button>' in keys


def test_a_new_api_key_is_shown_once_and_works_until_revoked(client, login_as):
    login_as("admin")
    response = client.post("/admin/api-keys", data={"source": "website"})
    html = response.get_data(as_text=True)
    assert response.status_code == 201
    raw_key = re.search(r"data-new-key>([^<]+)<", html).group(1)
    assert authenticate_api_key(raw_key) is not None
    record = db.session.scalars(sa.select(ApiKey)).one()
    assert record.key_hash != raw_key and raw_key not in client.get("/admin/api-keys").get_data(
        as_text=True
    )
    client.post(f"/admin/api-keys/{record.id}/revoke")
    assert authenticate_api_key(raw_key) is None


def test_a_bad_source_name_is_refused_inline(client, login_as):
    login_as("admin")
    response = client.post("/admin/api-keys", data={"source": "no spaces please"})
    assert response.status_code == 422
    assert "Source is a short name" in response.get_data(as_text=True)


def _form_for(html: str, action: str) -> str | None:
    """The opening tag of the form posting to `action`, or None."""
    match = re.search(rf'<form[^>]*action="{re.escape(action)}"[^>]*>', html)
    return match.group(0) if match else None


def test_deactivating_and_revoking_ask_first_and_no_admin_is_offered_to_deactivate_themselves(
    client, login_as, make_user
):
    """One click signs a colleague out everywhere or stops the website's intake: the plain
    forms ask first (data-confirm, ied.js), and the admin's own row offers nothing it refuses."""
    admin = login_as("admin")
    other = make_user("operator")
    users = client.get("/admin/users").get_data(as_text=True)
    assert _form_for(users, f"/admin/users/{admin.id}/active") is None
    assert "data-confirm=" in _form_for(users, f"/admin/users/{other.id}/active")
    client.post("/admin/api-keys", data={"source": "website"})
    key = db.session.scalars(sa.select(ApiKey)).one()
    keys = client.get("/admin/api-keys").get_data(as_text=True)
    assert "data-confirm=" in _form_for(keys, f"/admin/api-keys/{key.id}/revoke")
