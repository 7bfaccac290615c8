from flask import Blueprint, current_app, jsonify, redirect, render_template, url_for
from flask_login import current_user
from redis.exceptions import RedisError
from sqlalchemy.exc import SQLAlchemyError

from ied.auth.access import public
from ied.extensions import db
from ied.followups.queries import follow_up_page
from ied.leads.queries import ATTENTION, delivery_problems, queue_counts, queue_page
from ied.queues import redis_connection
from ied.timestamps import utcnow

bp = Blueprint("home", __name__)


# How many items of each kind the start page lists; the rest are one click away.
TODAY_ITEMS = 5


@bp.get("/")
def index():
    """Everyone starts at work: managers and admins on the dashboard once it exists; operators
    (and everyone until then) on today's work: the queue's tabs with their counts, the leads
    needing attention and why, the follow-ups due today."""
    if current_user.has_role("manager") and "dashboard.index" in current_app.view_functions:
        return redirect(url_for("dashboard.index"))
    now = utcnow()
    attention = queue_page(ATTENTION).leads[:TODAY_ITEMS]
    counts, follow_up_counts = queue_counts()  # the queue's head: its tabs and follow-ups
    return render_template(
        "home.html",
        counts=counts,
        attention=attention,
        problems=delivery_problems([lead.id for lead in attention]),
        due_today=follow_up_page("due_today", now=now, page_size=TODAY_ITEMS),
        follow_up_counts=follow_up_counts,
    )


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
