"""Read what the local mail catcher caught. Registered only when MAIL_CATCHER_ENABLED is on."""

import re
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path

from flask import Blueprint, abort, current_app, make_response, render_template

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
        has_html=html is not None,
    )


# Emails style themselves inline, as mail clients need; the app's own pages may not.
EMAIL_HTML_POLICY = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'self'"
)


@bp.get("/<name>/html")
@role_required("operator")
def html_part(name: str):
    """The email's HTML part alone, for the sandboxed frame on the message page."""
    html = read_message(name).get_body(preferencelist=("html",))
    if html is None:
        abort(404)
    response = make_response(html.get_content())
    response.headers["Content-Security-Policy"] = EMAIL_HTML_POLICY
    response.headers["X-Frame-Options"] = "SAMEORIGIN"
    return response
