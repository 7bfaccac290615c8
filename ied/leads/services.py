"""The lead lifecycle: the only code that writes Lead.status."""

import re
from dataclasses import dataclass, field
from datetime import timedelta
from functools import cache
from typing import Any, NamedTuple

import sqlalchemy as sa
from flask import current_app
from sqlalchemy.orm import aliased

from ied.activity.services import activity_values, record_activity, recording_activity_from
from ied.auth.models import User
from ied.errors import DomainError
from ied.extensions import db
from ied.input_limits import column_length, is_id, text_errors, text_problem
from ied.leads.models import NEXT_LEAD_STATUS, PRODUCTS, SELECTED_PATHS, Lead, LeadStatusChange
from ied.leads.status_counts import count_status_change, counting_new_leads
from ied.row_locks import lock_one
from ied.tallies.services import add_to_tally, tally_day_of, tallying_from
from ied.timestamps import utcnow

REFERENCE_PREFIX = "IED-"
_POSTCODE = re.compile(r"^[A-Z]{1,2}[0-9][A-Z0-9]?[0-9][A-Z]{2}$")
# As typed: ASCII letters and digits, spaces around and between the two halves.
_POSTCODE_AS_TYPED = re.compile(r" *[A-Za-z]{1,2}[0-9][A-Za-z0-9]? *[0-9][A-Za-z]{2} *")
MAX_POSTCODE_AS_TYPED = 16
# The lead's free-text fields (the postcode has its pattern), and those that may hold line breaks.
LEAD_TEXT_FIELDS = ("customer_name", "email", "phone", "address", "recommendation", "notes")
LEAD_MULTILINE_FIELDS = ("address", "recommendation", "notes")


class IllegalLeadTransition(DomainError):
    pass


def reference_sql(lead_id: sa.ColumnElement[int]) -> sa.ColumnElement[str]:
    """A lead's reference from its id, in SQL (PostgreSQL and SQLite): IED-000042, at least six
    digits, so that the INSERT taking the id writes the reference with it."""
    six_digits = sa.func.substr(sa.cast(lead_id + 1_000_000, sa.String), 2)
    digits = sa.case((lead_id < 1_000_000, six_digits), else_=sa.cast(lead_id, sa.String))
    return sa.literal(REFERENCE_PREFIX, sa.String) + digits


def normalize_email(email: str | None) -> str | None:
    # "İ" is the one character whose lower case is two: fold it to "i" so that the normalized
    # address is never longer than the address (both columns hold 254).
    email = (email or "").strip().replace("\u0130", "i").lower()
    return email or None


def normalize_phone(phone: str | None) -> str | None:
    """ASCII digits only, UK numbers folded to the national form so +44 7700... matches 07700..."""
    digits = re.sub(r"[^0-9]", "", phone or "")
    if digits.startswith("44") and len(digits) >= 11:
        digits = "0" + digits[2:]
    return digits or None


def normalize_postcode(postcode: str) -> str:
    return re.sub(r"\s", "", postcode or "").upper()


def format_postcode(postcode: str) -> str:
    compact = normalize_postcode(postcode)
    return f"{compact[:-3]} {compact[-3:]}" if len(compact) > 3 else compact


def is_valid_postcode(postcode: str) -> bool:
    return len(postcode) <= MAX_POSTCODE_AS_TYPED and bool(_POSTCODE_AS_TYPED.fullmatch(postcode))


@dataclass
class LeadInput:
    """What intake (API or phone-in form) hands to create_lead, already shaped but unchecked."""

    customer_name: str
    postcode: str
    product_interest: str
    selected_path: str
    email: str | None = None
    phone: str | None = None
    address: str | None = None
    assessment: dict[str, Any] = field(default_factory=dict)
    recommendation: str | None = None
    recommended_installer_id: int | None = None
    notes: str | None = None


def validate_lead_input(data: LeadInput, connection: sa.Connection | None = None) -> dict[str, str]:
    """Every problem with the input, by field name; empty when the lead may be created. The
    recommended installer is looked up on `connection` when given (the intake call's, outside
    the session), else in the session."""
    errors: dict[str, str] = {}
    if not (data.customer_name or "").strip():
        errors["customer_name"] = "Customer name is required."
    if not normalize_email(data.email) and not normalize_phone(data.phone):
        errors["email"] = "Give an email address or a phone number."
        errors["phone"] = "Give a phone number or an email address."
    if data.email and "@" not in data.email:
        errors["email"] = "This is not an email address."
    if data.phone and not normalize_phone(data.phone):
        errors["phone"] = "This is not a phone number."
    elif len(normalize_phone(data.phone) or "") > column_length(Lead, "phone_normalized"):
        errors["phone"] = f"At most {column_length(Lead, 'phone_normalized')} digits."
    if not (data.postcode or "").strip():
        errors["postcode"] = "Postcode is required."
    elif not is_valid_postcode(data.postcode):
        errors["postcode"] = "This is not a UK postcode."
    if not data.product_interest:
        errors["product_interest"] = "Product is required."
    elif data.product_interest not in PRODUCTS:
        errors["product_interest"] = f"Product must be one of: {', '.join(PRODUCTS)}."
    if data.selected_path not in SELECTED_PATHS:
        errors["selected_path"] = f"Selected path must be one of: {', '.join(SELECTED_PATHS)}."
    if not isinstance(data.assessment, dict):
        errors["assessment"] = "Assessment must be an object of answers."
    if data.recommended_installer_id is not None and not _installer_exists(
        data.recommended_installer_id, connection
    ):
        errors["recommended_installer_id"] = "No installer has this id."
    texts = {name: getattr(data, name) for name in LEAD_TEXT_FIELDS}
    return {**errors, **text_errors(Lead, texts, multiline=LEAD_MULTILINE_FIELDS)}


def _installer_exists(installer_id: object, connection: sa.Connection | None) -> bool:
    from ied.installers.models import Installer

    if not is_id(installer_id):
        return False
    if connection is None:  # the session may have it loaded already (the new-lead form does)
        return db.session.get(Installer, installer_id) is not None
    found = connection.execute(sa.select(Installer.id).where(Installer.id == installer_id))
    return found.first() is not None


def _next_lead_id(dialect: str) -> sa.ColumnElement[int]:
    """The id the new lead gets, taken inside its INSERT: PostgreSQL's sequence of leads.id;
    SQLite writes one transaction at a time, so the next rowid is max(id) + 1."""
    if dialect == "postgresql":
        return sa.func.nextval(sa.func.pg_get_serial_sequence("leads", "id"))
    return sa.select(sa.func.coalesce(sa.func.max(Lead.id), 0) + 1).scalar_subquery()


# The columns a new lead's INSERT takes from its input (each a bound parameter of that name).
_LEAD_INPUT_COLUMNS = (
    "source",
    "external_id",
    "customer_name",
    "email",
    "email_normalized",
    "phone",
    "phone_normalized",
    "address",
    "postcode",
    "postcode_normalized",
    "product_interest",
    "assessment",
    "recommendation",
    "recommended_installer_id",
    "selected_path",
    "notes",
    "created_at",
    "updated_at",
)


# What the new lead's INSERT returns: what the records written with it and the callers of
# create_lead read (its other columns load when read). Returning them all made the intake
# statement longer than psycopg keeps converted to PostgreSQL's placeholders (4 kB,
# psycopg._queries.MAX_CACHED_STATEMENT_LENGTH): each call converted it again, 15% of the
# Python function calls an intake call makes.
NEW_LEAD_RETURNS = ("id", "reference", "status", "possible_duplicate_of_id", "created_at")


@cache
def _lead_insert(dialect: str) -> sa.Insert:
    """The new lead's INSERT, built once per dialect (its parameters change, never its shape,
    so SQLAlchemy compiles it once): the id from the sequence, the reference made from it, the
    possible duplicate (the newest lead of the window sharing the normalized email or phone;
    NULL parameters match nothing), NEW_LEAD_RETURNS returned."""
    table = Lead.__table__
    if dialect == "postgresql":  # one nextval for the id and the reference
        new_id = sa.select(
            sa.select(_next_lead_id(dialect).label("id")).cte("new_lead").c.id
        ).scalar_subquery()
    else:
        # No CTE: Python's sqlite3 opens a transaction only before a statement starting with
        # INSERT, so `WITH ... INSERT` ran outside the caller's transaction (committed at once,
        # whatever became of the rest). One writer at a time: both subqueries see the same max.
        new_id = _next_lead_id(dialect)
    duplicate = (
        sa.select(Lead.id)
        .where(
            sa.or_(
                Lead.email_normalized == sa.bindparam("duplicate_email", type_=sa.String),
                Lead.phone_normalized == sa.bindparam("duplicate_phone", type_=sa.String),
            ),
            Lead.created_at >= sa.bindparam("duplicate_since", type_=table.c.created_at.type),
        )
        .order_by(Lead.created_at.desc(), Lead.id.desc())
        .limit(1)
        .scalar_subquery()
    )
    return (
        sa.insert(table)
        .values(
            id=new_id,
            reference=reference_sql(new_id),
            status="new",
            possible_duplicate_of_id=duplicate,
            **{name: sa.bindparam(name, type_=table.c[name].type) for name in _LEAD_INPUT_COLUMNS},
        )
        .returning(*(table.c[name] for name in NEW_LEAD_RETURNS))
    )


@cache
def _lead_with_its_records() -> sa.Select:
    """PostgreSQL: the new lead and everything its arrival writes, in one statement (a
    data-modifying WITH), so that intake is one round trip: the lead, its first history row,
    the status counter, the daily tally and the activity row, as _insert_by_statements
    writes them one statement at a time."""
    created = _lead_insert("postgresql").cte("created")
    history = sa.insert(LeadStatusChange.__table__).from_select(
        ["lead_id", "from_status", "to_status", "changed_by_id", "changed_at", "note"],
        sa.select(
            created.c.id,
            sa.null(),
            created.c.status,
            sa.bindparam("changed_by_id", type_=sa.Integer),
            created.c.created_at,
            sa.bindparam("note", type_=sa.Text),
        ),
    )
    return sa.select(*created.c, duplicate_reference(created.c.possible_duplicate_of_id)).add_cte(
        history.cte("first_history"),
        counting_new_leads(created),
        tallying_from(created, leads_created=1),
        recording_activity_from("lead.created", "lead", created),
    )


@cache
def _lead_entity_with_its_records() -> sa.Select:
    return sa.select(Lead).from_statement(_lead_with_its_records())


class LeadSummary(NamedTuple):
    """A lead as the intake API answers with it, in plain values: read from a row, it costs no
    entity to load (about a tenth of an intake call's CPU), and the possible duplicate's
    reference comes in the same row (read from the entity, it was a second statement)."""

    reference: str
    status: str
    possible_duplicate_of: str | None  # the earlier lead's reference


def duplicate_reference(duplicate_id: sa.ColumnElement[int]) -> sa.Label:
    """The reference of the lead `duplicate_id` names, as a scalar subquery of one row (its
    label is not the relationship's name: the new lead's statement is also read as entities)."""
    duplicate = aliased(Lead)
    return (
        sa.select(duplicate.reference)
        .where(duplicate.id == duplicate_id)
        .scalar_subquery()
        .label("possible_duplicate_reference")
    )


def create_lead(
    data: LeadInput, *, source: str, external_id: str | None = None, actor: User | None = None
) -> Lead:
    """A fresh submission becomes `new`, with its first history row and a duplicate flag.

    The INSERT takes the id, writes the reference made from it and the possible duplicate's
    id, and returns the row; on PostgreSQL the lead's other records are written by the same
    statement. A source's external id that is taken (unique with the source) raises
    IntegrityError from that INSERT, as any constraint does.
    """
    row, activity = _new_lead_values(data, source, external_id, actor)
    if db.session.get_bind().dialect.name == "postgresql":
        return _insert_in_one_statement(row, activity)
    return _insert_by_statements(row, activity)


def add_lead(
    data: LeadInput, *, source: str, external_id: str | None, connection: sa.Connection | None
) -> LeadSummary:
    """create_lead for the intake API, answered with the new lead's summary. On PostgreSQL the
    same statement, run on `connection` (the caller's, outside the session) and its row read as
    plain values; elsewhere (no connection) the session's statements."""
    row, activity = _new_lead_values(data, source, external_id, None, connection)
    if connection is not None:
        values = _one_statement_values(row, activity)
        created = connection.execute(_lead_with_its_records(), values).one()
        return LeadSummary(created.reference, created.status, created.possible_duplicate_reference)
    lead = _insert_by_statements(row, activity)
    duplicate = lead.possible_duplicate_of
    return LeadSummary(lead.reference, lead.status, duplicate.reference if duplicate else None)


def _new_lead_values(
    data: LeadInput,
    source: str,
    external_id: str | None,
    actor: User | None,
    connection: sa.Connection | None = None,
) -> tuple[dict, dict]:
    """The new lead's row and its activity's values, once the input is valid."""
    errors = validate_lead_input(data, connection)
    if errors:
        raise LeadValidationError(errors)
    now = utcnow()
    email, phone = normalize_email(data.email), normalize_phone(data.phone)
    window = timedelta(days=current_app.config["DUPLICATE_WINDOW_DAYS"])
    row = {
        "source": source,
        "external_id": external_id,
        "customer_name": data.customer_name.strip(),
        "email": (data.email or "").strip() or None,
        "email_normalized": email,
        "phone": (data.phone or "").strip() or None,
        "phone_normalized": phone,
        "address": (data.address or "").strip() or None,
        "postcode": format_postcode(data.postcode),
        "postcode_normalized": normalize_postcode(data.postcode),
        "product_interest": data.product_interest,
        "assessment": data.assessment or {},
        "recommendation": data.recommendation,
        "recommended_installer_id": data.recommended_installer_id,
        "selected_path": data.selected_path,
        "notes": data.notes,
        "created_at": now,
        "updated_at": now,
        "duplicate_email": email,
        "duplicate_phone": phone,
        "duplicate_since": now - window,
        "changed_by_id": actor.id if actor else None,
        "note": f"Received from {source}",
    }
    activity = {
        "actor": actor,
        "actor_label": f"intake {source}",
        "details": {"source": source, "status": "new"},
    }
    return row, activity


def _one_statement_values(row: dict, activity: dict) -> dict:
    moment = row["created_at"]
    return {**row, **tally_day_of(moment), **activity_values(moment, **activity)}


def _insert_in_one_statement(row: dict, activity: dict) -> Lead:
    values = _one_statement_values(row, activity)
    return db.session.scalars(_lead_entity_with_its_records(), values).one()


def _insert_by_statements(row: dict, activity: dict) -> Lead:
    insert = _lead_insert(db.session.get_bind().dialect.name)
    lead = db.session.scalars(sa.select(Lead).from_statement(insert), row).one()
    db.session.execute(
        sa.insert(LeadStatusChange.__table__),
        {
            "lead_id": lead.id,
            "from_status": None,
            "to_status": lead.status,
            "changed_by_id": row["changed_by_id"],
            "changed_at": lead.created_at,
            "note": row["note"],
        },
    )
    count_status_change(lead.id, None, lead.status)
    add_to_tally(lead.created_at, shard_key=lead.id, leads_created=1)
    record_activity("lead.created", lead, **activity)
    return lead


class LeadValidationError(DomainError):
    def __init__(self, errors: dict[str, str]):
        super().__init__("The lead has errors: " + "; ".join(errors.values()))
        self.errors = errors


def change_status(lead: Lead, to_status: str, actor: User | None, note: str | None = None) -> Lead:
    """Move a lead one step along the lifecycle, or refuse with the reason."""
    allowed = NEXT_LEAD_STATUS.get(lead.status)
    if to_status != allowed:
        next_text = (
            f"the only allowed next status is '{allowed}'"
            if allowed
            else ("it is the last status of the lifecycle; nothing follows it")
        )
        raise IllegalLeadTransition(
            f"Lead {lead.reference} is '{lead.status}' and cannot move to '{to_status}': "
            f"{next_text}."
        )
    db.session.add(
        LeadStatusChange(
            lead=lead,
            from_status=lead.status,
            to_status=to_status,
            changed_by_id=actor.id if actor else None,
            note=note,
        )
    )
    details = {"from": lead.status, "to": to_status, **({"note": note} if note else {})}
    count_status_change(lead.id, lead.status, to_status)
    lead.status = to_status
    record_activity("lead.status_changed", lead, actor=actor, details=details)
    return lead


def start_review(lead: Lead, actor: User | None, note: str | None = None) -> Lead:
    return advance(lead, "reviewing", actor, note)


def approve_for_routing(lead: Lead, actor: User | None, note: str | None = None) -> Lead:
    return advance(lead, "ready_to_route", actor, note)


def advance(lead: Lead, to_status: str, actor: User | None, note: str | None = None) -> Lead:
    """The one-click transitions; `assigned` only comes from assigning installers."""
    if to_status == "assigned":
        raise IllegalLeadTransition(
            f"Lead {lead.reference} becomes 'assigned' only by assigning installers to it."
        )
    return change_status(lock_one(Lead, lead.id), to_status, actor, clean_note(note))


NOTE_LIMIT = 500


class NoteRefused(DomainError):
    pass


def clean_note(note: str | None) -> str | None:
    """An operator's note on a transition: trimmed, empty means none; refused (by field) when
    it cannot be stored, e.g. holds NUL, which PostgreSQL text cannot."""
    note = (note or "").strip() or None
    if note is not None and (problem := text_problem(note, NOTE_LIMIT)):
        raise NoteRefused(f"Note: {problem}", field="note")
    return note
