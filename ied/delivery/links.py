"""The installer's signed link: it names one assignment and the installer's link version."""

from flask import current_app
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from ied.delivery.models import Assignment
from ied.extensions import db

LINK_SALT = "ied.delivery.installer-link"


class LinkExpired(Exception):
    pass


class LinkInvalid(Exception):
    """Tampered, unknown, or signed by no key we know."""


class LinkRevoked(Exception):
    """The assignment was withdrawn or failed, or the installer's links were revoked."""


class LinkPending(Exception):
    """The delivery is still being confirmed: only a delivery we know succeeded (and billed)
    shows its lead."""


def _serializer() -> URLSafeTimedSerializer:
    # itsdangerous signs with the last key and verifies with any: the fallbacks come first.
    keys = [*current_app.config["SECRET_KEY_FALLBACKS"], current_app.config["SECRET_KEY"]]
    return URLSafeTimedSerializer(keys, salt=LINK_SALT)


def link_token(assignment: Assignment) -> str:
    return _serializer().dumps({"a": assignment.id, "v": assignment.installer.link_version})


def link_url(assignment: Assignment) -> str:
    return f"{current_app.config['PUBLIC_BASE_URL']}/d/{link_token(assignment)}"


def max_age_seconds() -> int:
    return current_app.config["DELIVERY_LINK_MAX_AGE_DAYS"] * 24 * 3600


def resolve_link(token: str) -> Assignment:
    try:
        payload = _serializer().loads(token, max_age=max_age_seconds())
    except SignatureExpired as error:
        raise LinkExpired from error
    except BadSignature as error:
        raise LinkInvalid from error
    if not isinstance(payload, dict) or not isinstance(payload.get("a"), int):
        raise LinkInvalid
    assignment = db.session.get(Assignment, payload["a"])
    if assignment is None:
        raise LinkInvalid
    if payload.get("v") != assignment.installer.link_version:
        raise LinkRevoked
    if assignment.status == "queued":
        raise LinkPending
    if assignment.status != "sent":
        raise LinkRevoked
    return assignment
