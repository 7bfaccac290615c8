from datetime import date, datetime
from typing import TYPE_CHECKING

from sqlalchemy import Date, ForeignKey, Index, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ied.checks import one_of
from ied.extensions import db
from ied.timestamps import UTCDateTime, utcnow

if TYPE_CHECKING:
    from ied.installers.models import Installer
    from ied.leads.models import Lead

FOLLOW_UP_STATUSES = ("pending", "in_progress", "completed", "closed_with_issue")
OPEN_FOLLOW_UP_STATUSES = ("pending", "in_progress")
CLOSED_FOLLOW_UP_STATUSES = ("completed", "closed_with_issue")
FOLLOW_UP_TRANSITIONS = {
    "pending": ("in_progress",),
    "in_progress": ("completed", "closed_with_issue"),
    "completed": (),
    "closed_with_issue": (),
}
CONTACT_OUTCOMES = ("attempted", "left_message", "no_response", "reached_customer")
SATISFACTION_OUTCOMES = ("satisfied", "mixed", "unsatisfied")
FOLLOW_UP_STATUS_LABELS = {
    "pending": "Pending",
    "in_progress": "In progress",
    "completed": "Completed",
    "closed_with_issue": "Closed with issue",
}
CONTACT_OUTCOME_LABELS = {
    "attempted": "Attempted",
    "left_message": "Left message",
    "no_response": "No response",
    "reached_customer": "Reached customer",
}
_OPEN_SQL = "status IN ('pending', 'in_progress')"


class FollowUp(db.Model):
    __tablename__ = "follow_ups"
    __table_args__ = (
        one_of("status", FOLLOW_UP_STATUSES),
        one_of("last_contact_outcome", CONTACT_OUTCOMES),
        one_of("satisfaction_outcome", SATISFACTION_OUTCOMES),
        Index(
            "ix_follow_ups_open_due_at",
            "due_at",
            "id",
            postgresql_where=text(_OPEN_SQL),
            sqlite_where=text(_OPEN_SQL),
        ),
        Index("ix_follow_ups_status_due_at", "status", "due_at", "id"),
        # The list without a due filter: every status, earliest due first, keyset on (due_at, id).
        Index("ix_follow_ups_due_at_id", "due_at", "id"),
        Index("ix_follow_ups_installer_id_due_at", "installer_id", "due_at"),
        # The dashboard's satisfaction and issue rate over the follow-ups closed in a period.
        Index("ix_follow_ups_completed_at", "completed_at"),
        Index(
            "ix_follow_ups_open_issue",
            "due_at",
            postgresql_where=text("has_issue AND NOT issue_resolved"),
            sqlite_where=text("has_issue AND NOT issue_resolved"),
        ),
        # The open-issue list's due-state counts, each from the index alone (status and due_at).
        Index(
            "ix_follow_ups_open_issue_status_due_at",
            "status",
            "due_at",
            postgresql_where=text("has_issue AND NOT issue_resolved"),
            sqlite_where=text("has_issue AND NOT issue_resolved"),
        ),
        # The list's search (SEARCH_COLUMNS), as the leads' own search indexes serve the queue's.
        Index("ix_follow_ups_lead_reference", "lead_reference"),
        *(
            Index(
                f"ix_follow_ups_{column}",
                column,
                postgresql_ops={column: "varchar_pattern_ops"},
            )
            for column in ("email_normalized", "phone_normalized", "postcode_normalized")
        ),
        Index(
            "ix_follow_ups_customer_name_search",
            "customer_name",
            postgresql_using="gin",
            postgresql_ops={"customer_name": "gin_trgm_ops"},
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    lead_id: Mapped[int] = mapped_column(ForeignKey("leads.id"), unique=True)
    installer_id: Mapped[int] = mapped_column(ForeignKey("installers.id"))
    status: Mapped[str] = mapped_column(String(20), default="pending")
    due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    contact_attempt_count: Mapped[int] = mapped_column(default=0)
    last_contacted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_contacted_by_email: Mapped[str | None] = mapped_column(String(254))
    last_contact_outcome: Mapped[str | None] = mapped_column(String(20))
    satisfaction_outcome: Mapped[str | None] = mapped_column(String(20))
    has_issue: Mapped[bool] = mapped_column(default=False)
    issue_summary: Mapped[str | None] = mapped_column(Text)
    issue_resolved: Mapped[bool] = mapped_column(default=False)
    referral_opportunity: Mapped[bool] = mapped_column(default=False)
    notes: Mapped[str | None] = mapped_column(Text)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    # The lead's searched fields, copied when the follow-up is made (a lead's never change after
    # intake): the list's search reads them from this table's indexes, which hold a row per
    # follow-up, where the leads' hold ten leads or more per follow-up; a common name or a
    # postcode area matched thousands of those at a million leads (SEARCH_COLUMNS).
    lead_reference: Mapped[str] = mapped_column(String(32))
    customer_name: Mapped[str] = mapped_column(String(200))
    email_normalized: Mapped[str | None] = mapped_column(String(254))
    phone_normalized: Mapped[str | None] = mapped_column(String(20))
    postcode_normalized: Mapped[str] = mapped_column(String(12))

    lead: Mapped["Lead"] = relationship(back_populates="follow_up")
    installer: Mapped["Installer"] = relationship()
    contact_attempts: Mapped[list["ContactAttempt"]] = relationship(
        back_populates="follow_up", order_by="ContactAttempt.id"
    )

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_FOLLOW_UP_STATUSES

    @property
    def has_open_issue(self) -> bool:
        return self.has_issue and not self.issue_resolved


# Each kind of search (ied/leads/search.py) and the follow-up's column it reads.
SEARCH_COLUMNS = {
    "reference": FollowUp.lead_reference,
    "email": FollowUp.email_normalized,
    "phone": FollowUp.phone_normalized,
    "postcode": FollowUp.postcode_normalized,
    "name": FollowUp.customer_name,
}


class ContactAttempt(db.Model):
    __tablename__ = "contact_attempts"
    __table_args__ = (one_of("outcome", CONTACT_OUTCOMES),)

    id: Mapped[int] = mapped_column(primary_key=True)
    follow_up_id: Mapped[int] = mapped_column(ForeignKey("follow_ups.id"), index=True)
    contacted_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    contacted_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    contacted_by_email: Mapped[str] = mapped_column(String(254))
    outcome: Mapped[str] = mapped_column(String(20))
    note: Mapped[str | None] = mapped_column(Text)

    follow_up: Mapped[FollowUp] = relationship(back_populates="contact_attempts")


DIGEST_STATUSES = ("sending", "sent", "skipped", "failed")


class FollowUpDigest(db.Model):
    """One manager's overdue digest for one business day: the unique pair makes sending once-only.

    A worker claims the row before sending ("sending"); a transient failure deletes the claim so
    the next scheduled run tries again, a permanent one (5xx, an address SMTP cannot carry)
    keeps the day's row as "failed", a day with nothing due is recorded as "skipped".
    """

    __tablename__ = "follow_up_digests"
    __table_args__ = (
        UniqueConstraint("business_date", "user_id"),
        one_of("status", DIGEST_STATUSES),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    business_date: Mapped[date] = mapped_column(Date)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    status: Mapped[str] = mapped_column(String(16), default="sending")
    follow_up_count: Mapped[int] = mapped_column(default=0)
    claimed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    smtp_reply: Mapped[str | None] = mapped_column(Text)
