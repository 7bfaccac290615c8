"""The installer's signed link: it names one assignment and the installer's link version."""

from urllib.parse import urlsplit

from flask import current_app, request
from itsdangerous import BadData, BadSignature, SignatureExpired, URLSafeTimedSerializer
from wtforms import ValidationError
from wtforms.csrf.core import CSRF

from ied.delivery.models import Assignment
from ied.extensions import db

LINK_SALT = "ied.delivery.installer-link"
RETURN_FORM_SALT = "ied.delivery.return-form"
RETURN_FORM_MAX_AGE = 24 * 3600


class LinkProblem(Exception):
    """Why a link does not open. `reference` names its lead when the link is one we signed, so
    the installer's page can say which lead it was (the reference is no personal data)."""

    def __init__(self, reference: str | None = None):
        super().__init__(reference)
        self.reference = reference


class LinkExpired(LinkProblem):
    pass


class LinkInvalid(LinkProblem):
    """Tampered, unknown, or signed by no key we know."""


class LinkRevoked(LinkProblem):
    """The assignment was `withdrawn` or `failed`, or the installer's links were `replaced`
    (its link version bumped): `why`."""

    def __init__(self, reference: str, why: str):
        super().__init__(reference)
        self.why = why


class LinkPending(LinkProblem):
    """The delivery is still being confirmed: only a delivery we know succeeded (and billed)
    shows its lead."""


def _serializer(salt: str = LINK_SALT) -> URLSafeTimedSerializer:
    # itsdangerous signs with the last key and verifies with any: the fallbacks come first.
    keys = [*current_app.config["SECRET_KEY_FALLBACKS"], current_app.config["SECRET_KEY"]]
    return URLSafeTimedSerializer(keys, salt=salt)


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
        # Signed by us, only too old: its payload still names the lead.
        expired = _assignment_of(_serializer().load_payload(error.payload))
        raise LinkExpired(expired and expired.lead.reference) from error
    except BadSignature as error:
        raise LinkInvalid from error
    assignment = _assignment_of(payload)
    if assignment is None:
        raise LinkInvalid
    reference = assignment.lead.reference
    if payload.get("v") != assignment.installer.link_version:
        raise LinkRevoked(reference, "replaced")
    if assignment.status == "queued":
        raise LinkPending(reference)
    if assignment.status != "sent":
        raise LinkRevoked(reference, assignment.status)
    return assignment


def _assignment_of(payload) -> Assignment | None:
    if not isinstance(payload, dict) or not isinstance(payload.get("a"), int):
        return None
    return db.session.get(Assignment, payload["a"])


class LinkBoundCSRF(CSRF):
    """The CSRF token of a form on a signed page, bound to the link's assignment instead of a
    session: those pages set no cookie, so Flask-WTF's session token cannot be used there.

    The signed token in the URL is the credential (only the installer's email holds it); this
    form token adds that the POST comes from a page we rendered for that assignment and link
    version, within a day. Give the assignment as the form's `meta={"csrf_context": ...}`.
    """

    def setup_form(self, form):
        self.assignment = form.meta.csrf_context
        return super().setup_form(form)

    def _expected(self) -> dict:
        return {"a": self.assignment.id, "v": self.assignment.installer.link_version}

    def generate_csrf_token(self, csrf_token_field) -> str:
        return _serializer(RETURN_FORM_SALT).dumps(self._expected())

    def validate_csrf_token(self, form, field) -> None:
        try:
            payload = _serializer(RETURN_FORM_SALT).loads(
                field.data or "", max_age=RETURN_FORM_MAX_AGE
            )
        except BadData as error:
            # The page answering this carries a new token and the answer as given.
            raise ValidationError(
                "The form was open for more than a day, so nothing was sent. It is renewed "
                "below with your answer: press Ask for a return again."
            ) from error
        if payload != self._expected():
            raise ValidationError("This form belongs to another delivery.")


def posted_from_elsewhere() -> bool:
    """A POST whose Origin names another site. Browsers send `Origin: null` (or none) from a
    page served with `Referrer-Policy: no-referrer`, as the signed pages are, so only a
    foreign origin is refused; the Referer is never required (Flask-WTF's SSL-strict check
    would refuse every such POST over HTTPS)."""
    origin = request.headers.get("Origin")
    if origin in (None, "null"):
        return False
    ours = {
        "{0.scheme}://{0.netloc}".format(urlsplit(current_app.config["PUBLIC_BASE_URL"])),
        request.host_url.rstrip("/"),
    }
    return origin.rstrip("/") not in ours
