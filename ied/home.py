from flask import Blueprint, jsonify, render_template
from redis.exceptions import RedisError
from sqlalchemy.exc import SQLAlchemyError

from ied.auth.access import public
from ied.extensions import db
from ied.queues import redis_connection

bp = Blueprint("home", __name__)


@bp.get("/")
def index():
    return render_template("home.html")


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
