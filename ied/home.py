from flask import Blueprint, jsonify, render_template

from ied.auth.access import public
from ied.extensions import db

bp = Blueprint("home", __name__)


@bp.get("/")
def index():
    return render_template("home.html")


@bp.get("/healthz")
@public
def healthz():
    db.session.execute(db.text("SELECT 1"))
    return jsonify(status="ok")
