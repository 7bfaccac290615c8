"""Sessions the server can end, with an idle timeout and an absolute lifetime.

Flask-Login's alternative id: a session stores "<user id>:<session token>" (User.get_id) and is
honoured only while the token matches the user's row. Rotating the token (logout, password
change or reset, deactivation) refuses every cookie that carried the old one, including copies
replayed later. This needs no session store and no new library: the cookie stays signed and
client-side, and the database row the loader reads anyway decides whether it still counts.

Times are stamped in the session at sign-in and refreshed at most once a minute; a session idle
longer than SESSION_IDLE_HOURS, or older than SESSION_LIFETIME_HOURS, counts as signed out.
"""

import hmac
import time
from datetime import timedelta

import sqlalchemy as sa
from flask import Flask, current_app, session
from flask_login import current_user, login_user

from ied.auth.models import User
from ied.extensions import db, login_manager
from ied.input_limits import id_or_none

SIGNED_IN_AT = "ied_signed_in_at"
SEEN_AT = "ied_seen_at"
TOUCH_EVERY_SECONDS = 60
# Built once: Session.get builds and keys a new statement on each call, about 0.5 ms of CPU
# on every signed-in request more than this one (measured in-process, interleaved).
_USER_BY_ID = sa.select(User).where(User.id == sa.bindparam("user_id"))


def start_session(user: User) -> None:
    """Sign this browser in as user, stamping when (the cookie is signed: nothing is planted)."""
    login_user(user)
    session.permanent = True
    now = int(time.time())
    session[SIGNED_IN_AT] = now
    session[SEEN_AT] = now


def _session_is_current(now: float) -> bool:
    config = current_app.config
    signed_in_at = session.get(SIGNED_IN_AT)
    seen_at = session.get(SEEN_AT)
    if not isinstance(signed_in_at, int) or not isinstance(seen_at, int):
        return False
    if now - signed_in_at > config["SESSION_LIFETIME_HOURS"] * 3600:
        return False
    return now - seen_at <= config["SESSION_IDLE_HOURS"] * 3600


def load_user(user_id: str) -> User | None:
    number, _, token = user_id.partition(":")
    user_number = id_or_none(number) if number.isascii() else None  # not "²", not past int
    if user_number is None or not token or not _session_is_current(time.time()):
        return None
    user = db.session.scalars(_USER_BY_ID, {"user_id": user_number}).one_or_none()
    if user is None or not user.active:
        return None
    return user if hmac.compare_digest(user.session_token, token) else None


def touch_session() -> None:
    """Note that the signed-in user is active (at most once a minute, to spare cookie writes)."""
    if not current_user.is_authenticated:
        return
    now = int(time.time())
    if now - session.get(SEEN_AT, 0) >= TOUCH_EVERY_SECONDS:
        session[SEEN_AT] = now


def init_app(app: Flask) -> None:
    config = app.config
    config["PERMANENT_SESSION_LIFETIME"] = timedelta(hours=config["SESSION_LIFETIME_HOURS"])
    config["SESSION_REFRESH_EACH_REQUEST"] = False  # the cookie is rewritten when it changes
    if config["IED_ENV"] == "production":
        # __Host-: the browser keeps it only if Secure, for the whole host, set by no subdomain.
        config.update(
            SESSION_COOKIE_NAME="__Host-session",
            SESSION_COOKIE_SECURE=True,
            SESSION_COOKIE_DOMAIN=None,
            SESSION_COOKIE_PATH="/",
            REMEMBER_COOKIE_NAME="__Host-remember_token",
            REMEMBER_COOKIE_SECURE=True,
            REMEMBER_COOKIE_DOMAIN=None,
            REMEMBER_COOKIE_PATH="/",
        )
    login_manager.user_loader(load_user)
