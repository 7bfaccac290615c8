from flask import Blueprint, current_app, jsonify, redirect, url_for
from flask_login import current_user
from redis.exceptions import RedisError
from sqlalchemy.exc import SQLAlchemyError

from ied.auth.access import public
from ied.extensions import db
from ied.queues import redis_connection

bp = Blueprint("home", __name__)


@bp.get("/")
def index():
    """Everyone starts at work: managers and admins on the dashboard once it exists,
    operators (and everyone until then) on the lead queue."""
    if current_user.has_role("manager") and "dashboard.index" in current_app.view_functions:
        return redirect(url_for("dashboard.index"))
    return redirect(url_for("leads.queue"))


@bp.get("/healthz")
@public
def healthz():
    """200 when the database and Redis both answer; 503 naming each one that did not."""
    checks = {"database": _database_answers(), "redis": _redis_answers()}
    failed = [name for name, ok in checks.items() if not ok]
    if failed:
        return jsonify(status="unavailable", failed=failed), 503
    return jsonify(status="ok")


def _database_answers() -> bool:
    try:
        db.session.execute(db.text("SELECT 1"))
    except SQLAlchemyError:
        db.session.rollback()
        return False
    return True


def _redis_answers() -> bool:
    try:
        return bool(redis_connection().ping())
    except RedisError:
        return False
