"""Intake API keys: one per source, hashed at rest, revocable."""

import hashlib
import secrets

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from ied.activity.services import record_activity
from ied.auth.models import User
from ied.errors import DomainError
from ied.extensions import db
from ied.intake.models import ApiKey
from ied.leads.models import Lead
from ied.leads.services import LeadInput, LeadValidationError, create_lead
from ied.timestamps import utcnow

KEY_PREFIX = "ied_"


class ApiKeyRefused(DomainError):
    pass


def hash_key(raw_key: str) -> str:
    return hashlib.sha256(raw_key.encode()).hexdigest()


def create_api_key(source: str, actor: User | None = None) -> tuple[str, ApiKey]:
    """Return the raw key (shown once, never stored) and its record."""
    source = (source or "").strip().lower()
    if not source or not source.replace("-", "").replace("_", "").isalnum() or len(source) > 64:
        raise ApiKeyRefused(
            "Source is a short name of letters, digits, - and _ (e.g. website).", field="source"
        )
    raw_key = KEY_PREFIX + secrets.token_urlsafe(32)
    api_key = ApiKey(
        source=source,
        key_prefix=raw_key[:12],
        key_hash=hash_key(raw_key),
        created_by_id=actor.id if actor else None,
    )
    db.session.add(api_key)
    db.session.flush()
    record_activity(
        "api_key.created",
        api_key,
        actor=actor,
        details={"source": source, "key_prefix": api_key.key_prefix},
    )
    return raw_key, api_key


def authenticate_api_key(raw_key: str) -> ApiKey | None:
    if not raw_key:
        return None
    api_key = db.session.scalars(
        sa.select(ApiKey).where(ApiKey.key_hash == hash_key(raw_key), ApiKey.revoked_at.is_(None))
    ).first()
    return api_key


def revoke_api_key(api_key: ApiKey, actor: User | None = None) -> ApiKey:
    if api_key.revoked_at is None:
        api_key.revoked_at = utcnow()
        record_activity(
            "api_key.revoked",
            api_key,
            actor=actor,
            details={"source": api_key.source, "key_prefix": api_key.key_prefix},
        )
    return api_key


def record_key_use(api_key: ApiKey) -> None:
    db.session.execute(
        sa.update(ApiKey).where(ApiKey.id == api_key.id).values(last_used_at=utcnow())
    )


# The intake API's fields and the JSON types each accepts (None: the field may be null).
STRING = (str, type(None))
LEAD_FIELDS: dict[str, tuple[type, ...]] = {
    "external_id": (str,),
    "customer_name": (str,),
    "email": STRING,
    "phone": STRING,
    "address": STRING,
    "postcode": (str,),
    "product_interest": (str,),
    "selected_path": (str,),
    "assessment": (dict, type(None)),
    "recommendation": STRING,
    "recommended_installer_id": (int, type(None)),
    "notes": STRING,
}
REQUIRED_FIELDS = ("external_id", "customer_name", "postcode", "product_interest", "selected_path")
TYPE_NAMES = {str: "a string", dict: "an object", int: "an integer"}
MAX_EXTERNAL_ID = 128


def parse_lead_payload(payload: object) -> tuple[str, LeadInput]:
    """The external id and the lead input of a JSON body, or every shape error by field name."""
    if not isinstance(payload, dict):
        raise LeadValidationError({"body": "The body must be a JSON object of lead fields."})
    errors = {name: "Unknown field." for name in payload if name not in LEAD_FIELDS}
    for name in REQUIRED_FIELDS:
        if payload.get(name) in (None, ""):
            errors[name] = "This field is required."
    for name, allowed in LEAD_FIELDS.items():
        value = payload.get(name)
        if name in errors or name not in payload:
            continue
        if isinstance(value, bool) or not isinstance(value, allowed):
            errors[name] = f"Must be {TYPE_NAMES[allowed[0]]}" + (
                " or null." if type(None) in allowed else "."
            )
    external_id = payload.get("external_id")
    if "external_id" not in errors and len(external_id) > MAX_EXTERNAL_ID:
        errors["external_id"] = f"At most {MAX_EXTERNAL_ID} characters."
    if errors:
        raise LeadValidationError(errors)
    values = {
        name: payload[name] for name in LEAD_FIELDS if name in payload and name != "external_id"
    }
    values["assessment"] = values.get("assessment") or {}
    return external_id, LeadInput(**values)


def find_lead(source: str, external_id: str) -> Lead | None:
    return db.session.scalars(
        sa.select(Lead).where(Lead.source == source, Lead.external_id == external_id)
    ).first()


def receive_lead(data: LeadInput, *, source: str, external_id: str) -> tuple[Lead, bool]:
    """The source's lead for this external id, created if new; True when this call created it.

    Identical calls racing each other all try the insert; the unique (source, external_id)
    constraint lets exactly one through and the others read the winner's lead.
    """
    existing = find_lead(source, external_id)
    if existing is not None:
        return existing, False
    try:
        with db.session.begin_nested():
            lead = create_lead(data, source=source, external_id=external_id)
    except IntegrityError:
        existing = find_lead(source, external_id)
        if existing is None:
            raise
        return existing, False
    return lead, True
