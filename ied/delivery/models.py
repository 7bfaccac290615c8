from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING

from sqlalchemy import ForeignKey, Index, Numeric, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ied.checks import one_of
from ied.extensions import db
from ied.timestamps import UTCDateTime, utcnow

if TYPE_CHECKING:
    from ied.auth.models import User
    from ied.installers.models import Installer
    from ied.leads.models import Lead

ASSIGNMENT_STATUSES = ("queued", "sent", "failed", "withdrawn")
ASSIGNMENT_TRANSITIONS = {
    "queued": ("sent", "failed", "withdrawn"),
    "sent": (),
    "failed": ("queued", "withdrawn"),
    "withdrawn": (),
}
# "sending" marks an attempt that has started and not yet reported; it becomes sent or failed.
AUDIT_STATUSES = ("sending", "sent", "failed")


class Assignment(db.Model):
    __tablename__ = "assignments"
    __table_args__ = (
        UniqueConstraint("lead_id", "installer_id"),
        one_of("status", ASSIGNMENT_STATUSES),
        Index("ix_assignments_status_created_at", "status", "created_at"),
        Index("ix_assignments_installer_id_status", "installer_id", "status"),
        # Queued deliveries by how long they have waited (needing action past the alert setting).
        Index(
            "ix_assignments_queued_at",
            "queued_at",
            postgresql_where=text("status = 'queued'"),
            sqlite_where=text("status = 'queued'"),
        ),
        # Deliveries sent and opened per installer over a date range, read from the index alone:
        # the daily tallies' recount (ied check-daily-tallies) since the dashboard reads them.
        Index(
            "ix_assignments_sent_at_installer_opened", "sent_at", "installer_id", "first_opened_at"
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    lead_id: Mapped[int] = mapped_column(ForeignKey("leads.id"), index=True)
    installer_id: Mapped[int] = mapped_column(ForeignKey("installers.id"))
    status: Mapped[str] = mapped_column(String(16), default="queued")
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    queued_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    withdrawn_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    withdrawn_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    first_opened_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    open_count: Mapped[int] = mapped_column(default=0)

    lead: Mapped["Lead"] = relationship(back_populates="assignments")
    installer: Mapped["Installer"] = relationship()
    audits: Mapped[list["DeliveryAudit"]] = relationship(
        back_populates="assignment", order_by="DeliveryAudit.attempt_number"
    )
    delivery_event: Mapped["DeliveryEvent | None"] = relationship(back_populates="assignment")

    @property
    def allowed_next(self) -> tuple[str, ...]:
        return ASSIGNMENT_TRANSITIONS[self.status]

    def __repr__(self) -> str:
        return (
            f"<Assignment {self.id} lead={self.lead_id} "
            f"installer={self.installer_id} {self.status}>"
        )


class DeliveryAudit(db.Model):
    """One email attempt. Finished rows are never updated and no row is ever deleted."""

    __tablename__ = "delivery_audits"
    __table_args__ = (
        UniqueConstraint("assignment_id", "attempt_number"),
        one_of("status", AUDIT_STATUSES),
        Index("ix_delivery_audits_status_lease_expires_at", "status", "lease_expires_at"),
        # The dashboard's attempts per day, sent and failed, from the index alone.
        Index("ix_delivery_audits_finished_at_status", "finished_at", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    assignment_id: Mapped[int] = mapped_column(ForeignKey("assignments.id"))
    attempt_number: Mapped[int] = mapped_column()
    recipient: Mapped[str] = mapped_column(String(254))
    status: Mapped[str] = mapped_column(String(16), default="sending")
    smtp_code: Mapped[int | None] = mapped_column()
    smtp_reply: Mapped[str | None] = mapped_column(Text)
    error: Mapped[str | None] = mapped_column(Text)
    message_id: Mapped[str] = mapped_column(String(255))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    job_id: Mapped[str | None] = mapped_column(String(128))

    assignment: Mapped[Assignment] = relationship(back_populates="audits")


class DeliveryEvent(db.Model):
    """The billable fact: one per assignment whose delivery succeeded."""

    __tablename__ = "delivery_events"
    __table_args__ = (
        Index("ix_delivery_events_installer_id_billing_cycle", "installer_id", "billing_cycle"),
        Index("ix_delivery_events_billing_cycle_occurred_at", "billing_cycle", "occurred_at"),
        Index("ix_delivery_events_occurred_at", "occurred_at"),
        # The finance list: newest first (by id) within a cycle, an installer, or voided ones.
        Index("ix_delivery_events_billing_cycle_id", "billing_cycle", "id"),
        Index("ix_delivery_events_installer_id_id", "installer_id", "id"),
        Index(
            "ix_delivery_events_voided_id",
            "id",
            postgresql_where=text("voided_at IS NOT NULL"),
            sqlite_where=text("voided_at IS NOT NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    assignment_id: Mapped[int] = mapped_column(ForeignKey("assignments.id"), unique=True)
    lead_id: Mapped[int] = mapped_column(ForeignKey("leads.id"), index=True)
    installer_id: Mapped[int] = mapped_column(ForeignKey("installers.id"))
    billing_cycle: Mapped[str] = mapped_column(String(7))
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    price: Mapped[Decimal] = mapped_column(Numeric(10, 2))
    voided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    void_reason: Mapped[str | None] = mapped_column(Text)
    voided_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))

    assignment: Mapped[Assignment] = relationship(back_populates="delivery_event")
    installer: Mapped["Installer"] = relationship()
    lead: Mapped["Lead"] = relationship()
    voided_by: Mapped["User | None"] = relationship()

    @property
    def is_voided(self) -> bool:
        return self.voided_at is not None
