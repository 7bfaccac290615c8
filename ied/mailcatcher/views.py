"""Read what the local mail catcher caught. Registered only when MAIL_CATCHER_ENABLED is on."""

import re
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path

from flask import Blueprint, abort, current_app, render_template

from ied.auth.access import role_required

bp = Blueprint("mailcatcher", __name__, url_prefix="/dev/mail")
_NAME = re.compile(r"^[0-9]+-[0-9a-f]{8}\.eml$")


def _folder() -> Path:
    return Path(current_app.config["MAIL_CATCHER_DIR"])


def read_message(name: str) -> EmailMessage:
    if not _NAME.match(name) or not (_folder() / name).exists():
        abort(404)
    return BytesParser(policy=policy.default).parsebytes((_folder() / name).read_bytes())


@bp.get("/")
@role_required("operator")
def index():
    names = sorted((p.name for p in _folder().glob("*.eml")), reverse=True)[:200]
    messages = [(name, read_message(name)) for name in names]
    return render_template("mailcatcher/index.html", messages=messages)


@bp.get("/<name>")
@role_required("operator")
def show(name: str):
    message = read_message(name)
    text = message.get_body(preferencelist=("plain",))
    html = message.get_body(preferencelist=("html",))
    return render_template(
        "mailcatcher/show.html",
        name=name,
        message=message,
        text=text.get_content() if text else "",
        html=html.get_content() if html else None,
    )
