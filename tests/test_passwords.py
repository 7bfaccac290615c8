"""Password rules (length, common, the email) and hashing (scrypt at an OWASP setting, 64 MiB,
upgraded at login)."""

import statistics
import time

import pytest
import sqlalchemy as sa
from werkzeug.security import generate_password_hash

from ied.auth import services
from ied.auth.models import User
from ied.auth.passwords import PASSWORD_HASH_METHOD, password_problem
from ied.config import settings_from_environment
from ied.extensions import db
from tests.conftest import TEST_PASSWORD

# Fifteen of the most common passwords of twelve characters or more in public breach lists.
COMMON_PASSWORDS = [
    "password1234",
    "123456789012",
    "qwertyuiop123",
    "1q2w3e4r5t6y",
    "iloveyou1234",
    "Password123!",
    "passwordpassword",
    "qwerty123456",
    "letmein12345",
    "administrator",
    "111111111111",
    "football1234",
    "abc123abc123",
    "welcome12345",
    "trustno1trustno1",
]


@pytest.mark.parametrize("password", COMMON_PASSWORDS)
def test_common_passwords_are_refused(password):
    assert len(password) >= 12
    assert "too easy to guess" in password_problem(password, "someone@ied.test")


@pytest.mark.parametrize(
    ("password", "email", "problem"),
    [
        ("eleven-char", "someone@ied.test", "at least 12 characters"),
        ("x" * 129, "someone@ied.test", "at most 128 characters"),
        ("margaret.hale-99-lighthouse", "margaret.hale@ied.test", "must not contain the email"),
        ("Margaret.Hale@ied.test!", "margaret.hale@ied.test", "must not contain the email"),
    ],
)
def test_short_long_and_email_passwords_are_refused(password, email, problem):
    assert problem in password_problem(password, email)


@pytest.mark.parametrize("password", [TEST_PASSWORD, "plum-tractor-seaside-42", "Gv7#qLp2!xWz"])
def test_strong_passwords_pass(password):
    assert password_problem(password, "someone@ied.test") is None


def test_every_way_of_creating_a_user_applies_the_rules(app, client, login_as):
    with pytest.raises(services.UserRefused, match="too easy to guess"):
        services.create_user("a@ied.test", "operator", "password1234")
    result = app.test_cli_runner().invoke(
        args=[
            "ied",
            "create-user",
            "b@ied.test",
            "--role",
            "operator",
            "--password",
            "b@ied.test!!",
        ]
    )
    assert result.exit_code != 0 and "must not contain the email" in result.output
    generated = app.test_cli_runner().invoke(
        args=["ied", "create-user", "c@ied.test", "--role", "admin"]
    )
    assert generated.exit_code == 0, generated.output  # a generated password passes the rules
    login_as("admin")
    page = client.post(
        "/admin/users", data={"email": "d@ied.test", "role": "operator", "password": "welcome12345"}
    )
    assert page.status_code == 422 and "too easy to guess" in page.text
    emails = set(db.session.scalars(sa.select(User.email)))
    assert "c@ied.test" in emails and not emails & {"a@ied.test", "b@ied.test", "d@ied.test"}


# OWASP Password Storage Cheat Sheet: scrypt settings (N, r, p) giving the same defence.
OWASP_SCRYPT_SETTINGS = {(2**17, 8, 1), (2**16, 8, 2), (2**15, 8, 3), (2**14, 8, 5), (2**13, 8, 10)}
MAX_HASH_MEMORY = 64 * 2**20  # a login check may take at most this (a worker stays < 200 MB)


def test_production_hashes_with_an_owasp_scrypt_setting_in_64_mib(tmp_path):
    method = settings_from_environment(str(tmp_path))["PASSWORD_HASH_METHOD"]
    assert method == PASSWORD_HASH_METHOD
    name, n, r, p = method.split(":")
    assert name == "scrypt" and (int(n), int(r), int(p)) in OWASP_SCRYPT_SETTINGS
    assert 128 * int(n) * int(r) <= MAX_HASH_MEMORY  # scrypt's memory: 128 x N x r bytes
    stored = generate_password_hash(TEST_PASSWORD, method=method)  # affordable: 64 MiB, once
    assert stored.startswith("scrypt:65536:8:2$")


def test_a_hash_of_the_earlier_2_17_setting_still_signs_in_and_is_redone(app, client, make_user):
    user = make_user()
    user.password_hash = generate_password_hash(TEST_PASSWORD, method="scrypt:131072:8:1")
    db.session.commit()
    right = client.post("/login", data={"email": user.email, "password": TEST_PASSWORD})
    assert right.status_code == 302
    db.session.refresh(user)
    assert user.password_hash.startswith(app.config["PASSWORD_HASH_METHOD"] + "$")
    assert user.check_password(TEST_PASSWORD)


def test_an_old_hash_is_upgraded_at_the_next_successful_login(app, client, make_user):
    user = make_user()
    user.password_hash = generate_password_hash(TEST_PASSWORD, method="pbkdf2:sha256:1000")
    db.session.commit()
    wrong = client.post("/login", data={"email": user.email, "password": "not-the-password"})
    assert wrong.status_code == 422
    db.session.refresh(user)
    assert user.password_hash.startswith("pbkdf2:")  # a failed attempt changes nothing
    right = client.post("/login", data={"email": user.email, "password": TEST_PASSWORD})
    assert right.status_code == 302
    db.session.refresh(user)
    assert user.password_hash.startswith(app.config["PASSWORD_HASH_METHOD"] + "$")
    assert user.check_password(TEST_PASSWORD)


def _median_login_seconds(client, email: str, rounds: int) -> float:
    timings = []
    for _ in range(rounds):
        started = time.perf_counter()
        response = client.post("/login", data={"email": email, "password": "wrong-password-1"})
        timings.append(time.perf_counter() - started)
        assert response.status_code == 422
    return statistics.median(timings)


def test_the_login_takes_as_long_for_an_unknown_email_as_for_a_known_one(make_app):
    # A hash cost that dominates the request, as in production, so a skipped hash would show.
    app = make_app(PASSWORD_HASH_METHOD="scrypt:4096:8:1")
    with app.app_context():
        services.create_user("known@ied.test", "operator", TEST_PASSWORD)
        inactive = services.create_user("gone@ied.test", "operator", TEST_PASSWORD)
        inactive.active = False
        db.session.commit()
    client = app.test_client()
    _median_login_seconds(client, "warm-up@ied.test", 2)
    medians = {}
    for _ in range(2):  # interleaved, so a slow moment of the machine hits every kind alike
        for email in ("nobody@ied.test", "known@ied.test", "gone@ied.test"):
            medians.setdefault(email, []).append(_median_login_seconds(client, email, 5))
    unknown = statistics.median(medians["nobody@ied.test"])
    for email in ("known@ied.test", "gone@ied.test"):
        ratio = unknown / statistics.median(medians[email])
        assert 0.5 <= ratio <= 2, (email, medians)
