"""record_activity: the one writer of the activity log, called by the service making a change."""

import re
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from ied.activity.models import SUBJECT_LABELS, VERB_LABELS, ActivityEntry
from ied.auth.models import User
from ied.extensions import db

SYSTEM = "system"


def subject_type_of(subject: db.Model) -> str:
    """The snake_case of the record's class: Lead -> lead, DeliveryEvent -> delivery_event."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", type(subject).__name__).lower()


def record_activity(
    verb: str,
    subject: db.Model,
    *,
    actor: User | None = None,
    actor_label: str | None = None,
    lead_id: int | None = None,
    details: dict[str, Any] | None = None,
    flush: bool = True,
) -> ActivityEntry:
    """Add one activity row in the caller's transaction (flushed, never committed; with
    `flush=False` it waits for the caller's next flush, so a batch inserts its rows together).

    `subject` is the record the change touched (flushed, so it has an id). `actor` is the
    signed-in user who made it; without one, `actor_label` says who did ("installer Acme Solar",
    "intake website"), defaulting to "system" for jobs and the CLI. `lead_id` defaults to the
    subject's own lead (the lead itself, or its `lead_id` column), so the lead's timeline finds
    it; pass it for records that reach their lead through another (a delivery audit).
    `details` is a small JSON object: from/to statuses, a reason, an SMTP reply.
    """
    subject_type = subject_type_of(subject)
    _check_kind(verb, subject_type)
    if subject.id is None:
        db.session.flush()
    if lead_id is None:
        lead_id = subject.id if subject_type == "lead" else getattr(subject, "lead_id", None)
    entry = ActivityEntry(
        actor_id=actor.id if actor else None,
        actor_label=_actor_label(actor, actor_label),
        verb=verb,
        subject_type=subject_type,
        subject_id=subject.id,
        lead_id=lead_id,
        details=details or {},
    )
    db.session.add(entry)
    if flush:
        db.session.flush()
    return entry


def _check_kind(verb: str, subject_type: str) -> None:
    if verb not in VERB_LABELS:
        raise ValueError(f"Unknown activity verb {verb!r}: add it to VERB_LABELS.")
    if subject_type not in SUBJECT_LABELS:
        raise ValueError(f"Unknown activity subject {subject_type!r}: add it to SUBJECT_LABELS.")


def _actor_label(actor: User | None, actor_label: str | None) -> str:
    return actor.email if actor else (actor_label or SYSTEM)


def recording_activity_from(verb: str, subject_type: str, source: sa.CTE) -> sa.CTE:
    """record_activity for each row `source` returns (a record just written: its id is the
    subject's, and a lead's own lead_id), inside the statement that writes it (PostgreSQL's
    data-modifying WITH). Its moment, actor and details are parameters: activity_values()."""
    _check_kind(verb, subject_type)
    table = ActivityEntry.__table__
    columns = {
        "created_at": sa.bindparam("activity_created_at", type_=table.c.created_at.type),
        "actor_id": sa.bindparam("activity_actor_id", type_=table.c.actor_id.type),
        "actor_label": sa.bindparam("activity_actor_label", type_=table.c.actor_label.type),
        "verb": sa.literal(verb, table.c.verb.type),
        "subject_type": sa.literal(subject_type, table.c.subject_type.type),
        "subject_id": source.c.id,
        "lead_id": source.c.id if subject_type == "lead" else source.c.lead_id,
        "details": sa.bindparam("activity_details", type_=table.c.details.type),
    }
    rows = sa.select(*columns.values())
    return sa.insert(table).from_select(list(columns), rows).cte("recording_activity")


def activity_values(
    moment: datetime,
    *,
    actor: User | None = None,
    actor_label: str | None = None,
    details: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The parameters of recording_activity_from, as record_activity would write them."""
    return {
        "activity_created_at": moment,
        "activity_actor_id": actor.id if actor else None,
        "activity_actor_label": _actor_label(actor, actor_label),
        "activity_details": details or {},
    }
