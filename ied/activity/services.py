"""record_activity: the one writer of the activity log, called by the service making a change."""

import re
from typing import Any

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
    if verb not in VERB_LABELS:
        raise ValueError(f"Unknown activity verb {verb!r}: add it to VERB_LABELS.")
    subject_type = subject_type_of(subject)
    if subject_type not in SUBJECT_LABELS:
        raise ValueError(f"Unknown activity subject {subject_type!r}: add it to SUBJECT_LABELS.")
    if subject.id is None:
        db.session.flush()
    if lead_id is None:
        lead_id = subject.id if subject_type == "lead" else getattr(subject, "lead_id", None)
    entry = ActivityEntry(
        actor_id=actor.id if actor else None,
        actor_label=actor.email if actor else (actor_label or SYSTEM),
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
