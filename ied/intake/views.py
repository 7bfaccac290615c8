"""The intake API: sources post assessment submissions as new leads with their API key."""

import json

from flask import Blueprint, jsonify, request

from ied.auth.access import public
from ied.extensions import csrf
from ied.intake import services
from ied.leads.services import LeadValidationError

bp = Blueprint("intake", __name__, url_prefix="/api/v1")
csrf.exempt(bp)  # no cookies here: a bearer key authenticates each call

MAX_BODY_BYTES = 64 * 1024


def _problem(status: int, message: str, errors: dict[str, str] | None = None, headers=None):
    body = {"message": message}
    if errors is not None:
        body["errors"] = errors
    return jsonify(body), status, headers or {}


def _refuse_constant(name: str):
    """Python reads NaN, Infinity and -Infinity; JSON has no such numbers."""
    raise ValueError(f"{name} is not a JSON number")


def bearer_key() -> str:
    scheme, _, key = request.headers.get("Authorization", "").partition(" ")
    return key.strip() if scheme.lower() == "bearer" else ""


@bp.post("/leads")
@public
def create_lead():
    api_key = services.authenticate_api_key(bearer_key())
    if api_key is None:
        return _problem(
            401,
            "Send a valid API key as 'Authorization: Bearer <key>'.",
            headers={"WWW-Authenticate": 'Bearer realm="ied-intake"'},
        )
    if not request.is_json:
        return _problem(415, "Send the lead as JSON with 'Content-Type: application/json'.")
    if (request.content_length or 0) > MAX_BODY_BYTES:
        return _problem(413, f"The body is larger than {MAX_BODY_BYTES // 1024} KiB.")
    body = request.stream.read(MAX_BODY_BYTES + 1)  # also bounds bodies sent without a length
    if len(body) > MAX_BODY_BYTES:
        return _problem(413, f"The body is larger than {MAX_BODY_BYTES // 1024} KiB.")
    try:
        payload = json.loads(body, parse_constant=_refuse_constant)
    except ValueError as error:
        return _problem(415, f"The body is not valid JSON: {error}.")
    except RecursionError:
        return _problem(
            422, "The lead has errors; nothing was saved.", {"body": "Nested too deeply."}
        )
    try:
        external_id, data = services.parse_lead_payload(payload)
        lead, created = services.receive_lead(data, api_key=api_key, external_id=external_id)
    except LeadValidationError as error:
        return _problem(422, "The lead has errors; nothing was saved.", error.errors)
    return jsonify(lead._asdict()), 201 if created else 200
