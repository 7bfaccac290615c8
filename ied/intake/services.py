"""Intake API keys: one per source, hashed at rest, revocable."""

import hashlib
import secrets
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache

import sqlalchemy as sa
from flask import current_app, has_app_context
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ied.activity.services import record_activity
from ied.auth.models import User
from ied.errors import DomainError
from ied.extensions import db
from ied.input_limits import column_length, text_problem
from ied.intake.models import ApiKey
from ied.leads.models import Lead
from ied.leads.services import (
    LeadInput,
    LeadSummary,
    LeadValidationError,
    add_lead,
    duplicate_reference,
)
from ied.pooled_connections import autocommit_connection
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


# Each web process remembers a valid key this long, so that a source posting many leads a
# second does not look its key up in the database every time: a revoked key stops working
# within KEY_MEMORY_SECONDS in every process (in the process that revoked it, as soon as the
# revocation commits). Only valid keys are remembered: an unknown or new key is always looked
# up.
KEY_MEMORY_SECONDS = 5.0


@dataclass
class KnownKey:
    """What a call needs of its valid key, as the database said at `checked_at`."""

    id: int
    source: str
    last_used_at: datetime | None
    checked_at: float  # time.monotonic()


def _known_keys() -> dict[str, KnownKey]:
    return current_app.extensions.setdefault("ied_known_api_keys", {})


def authenticate_api_key(raw_key: str) -> KnownKey | None:
    """The presented key if it is valid (not revoked), from this process's memory of it when
    that is fresh, else from the database."""
    if not raw_key:
        return None
    key_hash = hash_key(raw_key)
    known = _known_keys().get(key_hash)
    if known is not None and time.monotonic() - known.checked_at < KEY_MEMORY_SECONDS:
        return known
    # Outside the session, as the call's writes are on PostgreSQL: a connection held by the
    # session until the end of the request would be a second one per call.
    with autocommit_connection() as connection:
        row = connection.execute(
            sa.select(ApiKey.id, ApiKey.source, ApiKey.last_used_at).where(
                ApiKey.key_hash == key_hash, ApiKey.revoked_at.is_(None)
            )
        ).first()
    if row is None:
        _known_keys().pop(key_hash, None)
        return None
    known = KnownKey(row.id, row.source, row.last_used_at, time.monotonic())
    _known_keys()[key_hash] = known
    return known


REVOKED_KEYS = "ied_revoked_api_keys"


def revoke_api_key(api_key: ApiKey, actor: User | None = None) -> ApiKey:
    """Revoke in the caller's transaction; this process forgets the key once that commits (not
    before: another request of this process could look it up meanwhile and remember it)."""
    if api_key.revoked_at is None:
        api_key.revoked_at = utcnow()
        db.session.info.setdefault(REVOKED_KEYS, set()).add(api_key.key_hash)
        record_activity(
            "api_key.revoked",
            api_key,
            actor=actor,
            details={"source": api_key.source, "key_prefix": api_key.key_prefix},
        )
    return api_key


@sa.event.listens_for(Session, "after_commit")
def _forget_revoked_keys(session: Session) -> None:
    # A revocation that rolled back is forgotten at a later commit: harmless, the key is then
    # only looked up again.
    revoked = session.info.pop(REVOKED_KEYS, ())
    if revoked and has_app_context():
        for key_hash in revoked:
            _known_keys().pop(key_hash, None)


# "Last used" is shown to the minute: a key posting many leads a second updates its row about
# once a minute (in each web process), not once per lead.
KEY_USE_PRECISION = timedelta(minutes=1)


def record_key_use(api_key: KnownKey, connection: sa.Connection | None) -> None:
    now = utcnow()
    if api_key.last_used_at is not None and api_key.last_used_at > now - KEY_USE_PRECISION:
        return
    (connection or db.session).execute(
        sa.update(ApiKey).where(ApiKey.id == api_key.id).values(last_used_at=now)
    )
    api_key.last_used_at = now


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
MAX_EXTERNAL_ID = column_length(Lead, "external_id")
# Assessment answers, as docs/api/openapi.yaml declares them: a flat object whose values are
# scalars, or lists or objects of scalars (two levels at most).
MAX_ANSWERS = 100
MAX_ANSWER_NAME = 100
MAX_ANSWER_TEXT = 1000
MAX_ANSWER_NUMBER = 10**15


def parse_lead_payload(payload: object) -> tuple[str, LeadInput]:
    """The external id and the lead input of a JSON body, or every shape error by field name."""
    if not isinstance(payload, dict):
        raise LeadValidationError({"body": "The body must be a JSON object of lead fields."})
    errors = {name: "Unknown field." for name in payload if name not in LEAD_FIELDS}
    for name in REQUIRED_FIELDS:
        if payload.get(name) in (None, ""):
            errors[name] = "This field is required."
    values = {}
    for name, allowed in LEAD_FIELDS.items():
        value = _integral(payload.get(name)) if int in allowed else payload.get(name)
        if name in errors or name not in payload:
            continue
        if isinstance(value, bool) or not isinstance(value, allowed):
            errors[name] = f"Must be {TYPE_NAMES[allowed[0]]}" + (
                " or null." if type(None) in allowed else "."
            )
        values[name] = value
    if "external_id" not in errors and (
        problem := text_problem(payload["external_id"], MAX_EXTERNAL_ID)
    ):
        errors["external_id"] = problem
    if "assessment" not in errors and (problem := _assessment_problem(values.get("assessment"))):
        errors["assessment"] = problem
    if errors:
        raise LeadValidationError(errors)
    external_id = values.pop("external_id")
    values["assessment"] = values.get("assessment") or {}
    return external_id, LeadInput(**values)


def _integral(value: object) -> object:
    """JSON has one number type: 7.0 is the integer 7 (as JSON Schema reads it)."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _assessment_problem(answers: dict | None) -> str | None:
    if not answers:
        return None
    if len(answers) > MAX_ANSWERS:
        return f"At most {MAX_ANSWERS} answers."
    for name, answer in answers.items():
        problem = _answer_name_problem(name)
        if problem is None and isinstance(answer, list):
            problem = _answers_problem(answer)
        elif problem is None and isinstance(answer, dict):
            problem = next(filter(None, map(_answer_name_problem, answer)), None)
            problem = problem or _answers_problem(list(answer.values()))
        elif problem is None:
            problem = _scalar_problem(answer)
        if problem:
            return f"Answer {name[:MAX_ANSWER_NAME]!r}: {problem}"
    return None


def _answer_name_problem(name: str) -> str | None:
    return text_problem(name, MAX_ANSWER_NAME)


def _answers_problem(values: list) -> str | None:
    if len(values) > MAX_ANSWERS:
        return f"At most {MAX_ANSWERS} values."
    return next(filter(None, map(_scalar_problem, values)), None)


def _scalar_problem(value: object) -> str | None:
    """An answer is text, a number, true/false or null; lists and objects only one level deep."""
    if isinstance(value, str):
        return text_problem(value, MAX_ANSWER_TEXT, multiline=True)
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        if not -MAX_ANSWER_NUMBER <= value <= MAX_ANSWER_NUMBER:  # inf and 1e400 too
            return f"Numbers lie between -{MAX_ANSWER_NUMBER:.0e} and {MAX_ANSWER_NUMBER:.0e}."
        return None
    return "Lists and objects hold text, numbers, true, false or null."


@cache
def _summary_by_external_id() -> sa.Select:
    """Built once, when first used: aliasing the lead configures every mapper."""
    return sa.select(
        Lead.reference, Lead.status, duplicate_reference(Lead.possible_duplicate_of_id)
    ).where(Lead.source == sa.bindparam("source"), Lead.external_id == sa.bindparam("external_id"))


def find_lead(
    source: str, external_id: str, connection: sa.Connection | None
) -> LeadSummary | None:
    row = (
        (connection or db.session)
        .execute(_summary_by_external_id(), {"source": source, "external_id": external_id})
        .first()
    )
    return LeadSummary(*row) if row else None


def receive_lead(
    data: LeadInput, *, api_key: KnownKey, external_id: str
) -> tuple[LeadSummary, bool]:
    """The source's lead for this external id, created if new (True when this call created
    it), and the key's use stamped.

    On PostgreSQL the call's statements run on a pooled connection in autocommit, outside the
    session (autocommit_connection): a new lead and all it writes are one statement
    (add_lead), so the common call is that one round trip. Elsewhere they run in the session's
    transaction, committed here: on every database the call's writes are committed when this
    returns.

    The common call, a new lead, runs its insert with no lookup or savepoint before it; a
    repeat is found by the unique (source, external_id) constraint refusing that insert (which
    wrote nothing: on PostgreSQL it was the whole write, elsewhere the session is rolled back),
    and the lead already there is read. Identical calls racing each other: PostgreSQL lets
    exactly one insert through, the others wait for it to commit, are refused and read it. A
    repeat is validated too: the same body, the same answer.
    """
    if db.engine.dialect.name != "postgresql":
        received = _receive(data, api_key, external_id, connection=None)
        db.session.commit()
        return received
    with autocommit_connection() as connection:
        return _receive(data, api_key, external_id, connection=connection)


def _receive(
    data: LeadInput, api_key: KnownKey, external_id: str, *, connection: sa.Connection | None
) -> tuple[LeadSummary, bool]:
    source = api_key.source
    try:
        received = add_lead(data, source=source, external_id=external_id, connection=connection)
        created = True
    except IntegrityError:
        if connection is None:
            db.session.rollback()
        received = find_lead(source, external_id, connection)
        if received is None:
            raise
        created = False
    record_key_use(api_key, connection)
    return received, created
