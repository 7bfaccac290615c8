import re
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from ied.extensions import db
from ied.formatting import local_datetime
from ied.timestamps import UTCDateTime, utcnow

# Every verb the product records, with the words the log shows for it. The log's verb filter
# offers these (never a DISTINCT over the history); record_activity refuses any other.
VERB_LABELS = {
    "lead.created": "Lead received",
    "lead.status_changed": "Lead status changed",
    "assignment.created": "Installer assigned",
    "assignment.status_changed": "Assignment status changed",
    "assignment.opened": "Installer opened the lead",
    "delivery.attempted": "Delivery attempt",
    "delivery_event.voided": "Delivery event voided",
    "return_request.requested": "Return requested",
    "return_request.decided": "Return decided",
    "follow_up.created": "Follow-up created",
    "follow_up.started": "Follow-up started",
    "follow_up.contact_logged": "Contact attempt logged",
    "follow_up.outcome_recorded": "Follow-up outcome recorded",
    "follow_up.closed": "Follow-up closed",
    "follow_up.issue_resolved": "Follow-up issue resolved",
    "installer.created": "Installer created",
    "installer.updated": "Installer updated",
    "installer.paused": "Installer paused",
    "installer.resumed": "Installer resumed",
    "installer.links_revoked": "Installer links revoked",
    "user.created": "User created",
    "user.updated": "User updated",
    "user.deactivated": "User deactivated",
    "user.reactivated": "User reactivated",
    "user.password_changed": "Password changed",
    "user.password_reset": "Password reset",
    "api_key.created": "API key created",
    "api_key.revoked": "API key revoked",
}
SUBJECT_LABELS = {
    "lead": "Lead",
    "assignment": "Assignment",
    "delivery_audit": "Delivery attempt",
    "delivery_event": "Delivery event",
    "return_request": "Return request",
    "follow_up": "Follow-up",
    "installer": "Installer",
    "user": "User",
    "api_key": "API key",
}


def _as_words(status: Any) -> str:
    """A status code as the words the pages use for it: ready_to_route -> ready to route."""
    return str(status).replace("_", " ")


_MOMENT = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}")


def _moment(value: str) -> datetime | None:
    """A moment kept in the details as ISO 8601 with its offset (a follow-up's due_at)."""
    if not _MOMENT.match(value):
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


def _shown(value: Any) -> str:
    if isinstance(value, str) and (moment := _moment(value)) is not None:
        return local_datetime(moment)  # in business time, as every other time on the pages
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return ", ".join(map(str, value))
    if isinstance(value, dict) and {"from", "to"} <= value.keys():
        return f"{value['from']} → {value['to']}"
    return str(value)


class ActivityEntry(db.Model):
    """Who or what changed which record, when and how. Never updated, never deleted."""

    __tablename__ = "activity_entries"
    __table_args__ = (
        # The lead page's timeline: newest first for one lead.
        Index("ix_activity_entries_lead_id_created_at_id", "lead_id", "created_at", "id"),
        # The log, unfiltered and under each filter, keyset-paged on (created_at, id).
        Index("ix_activity_entries_created_at_id", "created_at", "id"),
        Index("ix_activity_entries_verb_created_at_id", "verb", "created_at", "id"),
        Index("ix_activity_entries_actor_id_created_at_id", "actor_id", "created_at", "id"),
        Index("ix_activity_entries_subject_type_created_at_id", "subject_type", "created_at", "id"),
        Index("ix_activity_entries_subject", "subject_type", "subject_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # A signed-in user, or NULL for the system, an installer at its link or an intake source;
    # actor_label names whoever it was either way (a user's email at the time).
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    actor_label: Mapped[str] = mapped_column(String(254))
    verb: Mapped[str] = mapped_column(String(64))
    subject_type: Mapped[str] = mapped_column(String(32))
    subject_id: Mapped[int] = mapped_column()
    lead_id: Mapped[int | None] = mapped_column(ForeignKey("leads.id"))
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)

    @property
    def verb_label(self) -> str:
        return VERB_LABELS[self.verb]

    @property
    def subject_label(self) -> str:
        return SUBJECT_LABELS[self.subject_type]

    @property
    def summary(self) -> str:
        """The details in a line: "new → reviewing · note: Looks fine"."""
        details = {name: value for name, value in (self.details or {}).items() if value is not None}
        parts = []
        if "from" in details and "to" in details:
            moved = (_as_words(details.pop("from")), _as_words(details.pop("to")))
            parts.append(" → ".join(moved))
        parts += [f"{name.replace('_', ' ')}: {_shown(value)}" for name, value in details.items()]
        return " · ".join(parts)

    def __repr__(self) -> str:
        return f"<ActivityEntry {self.verb} {self.subject_type}:{self.subject_id}>"
