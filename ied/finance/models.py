"""Billing read models kept by the finance services: cycle counters and installer returns."""

from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING

from sqlalchemy import CheckConstraint, ForeignKey, Index, Numeric, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ied.checks import one_of
from ied.extensions import db
from ied.timestamps import UTCDateTime, utcnow

if TYPE_CHECKING:
    from ied.auth.models import User
    from ied.delivery.models import DeliveryEvent
    from ied.installers.models import Installer


class CycleBilling(db.Model):
    """Delivery events of one installer in one billing cycle, billed and voided, as counters.

    Written in the same transaction as the event it counts (created, voided), so cap checks
    and cycle usage read one row instead of counting events; `ied check-cycle-usage` compares
    it with a direct count and repairs it.
    """

    __tablename__ = "cycle_billing"
    installer_id: Mapped[int] = mapped_column(ForeignKey("installers.id"), primary_key=True)
    billing_cycle: Mapped[str] = mapped_column(String(7), primary_key=True)
    billed_count: Mapped[int] = mapped_column(default=0)
    billed_amount: Mapped[Decimal] = mapped_column(Numeric(12, 2), default=Decimal("0"))
    voided_count: Mapped[int] = mapped_column(default=0)
    voided_amount: Mapped[Decimal] = mapped_column(Numeric(12, 2), default=Decimal("0"))


RETURN_REASONS = {
    "wrong_contact_details": "Wrong contact details",
    "customer_unreachable": "Customer unreachable",
    "outside_my_area": "Outside my area",
    "duplicate": "Duplicate",
    "other": "Other",
}
RETURN_STATUSES = ("pending", "approved", "rejected")
RETURN_STATUS_LABELS = {"pending": "Pending", "approved": "Approved", "rejected": "Rejected"}


class ReturnRequest(db.Model):
    """An installer's request to have a delivered lead credited; one per delivery event.

    Decided once (pending -> approved | rejected) and kept: approval voids the event.
    """

    __tablename__ = "return_requests"
    __table_args__ = (
        one_of("reason", tuple(RETURN_REASONS)),
        one_of("status", RETURN_STATUSES),
        CheckConstraint("reason <> 'other' OR reason_text IS NOT NULL", name="other_has_text"),
        Index("ix_return_requests_status_id", "status", "id"),
        Index("ix_return_requests_installer_id_billing_cycle", "installer_id", "billing_cycle"),
        Index("ix_return_requests_requested_at", "requested_at"),  # the dashboard's period
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    delivery_event_id: Mapped[int] = mapped_column(ForeignKey("delivery_events.id"), unique=True)
    installer_id: Mapped[int] = mapped_column(ForeignKey("installers.id"))
    billing_cycle: Mapped[str] = mapped_column(String(7))
    reason: Mapped[str] = mapped_column(String(32))
    reason_text: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    remark: Mapped[str | None] = mapped_column(Text)

    delivery_event: Mapped["DeliveryEvent"] = relationship()
    installer: Mapped["Installer"] = relationship()
    decided_by: Mapped["User | None"] = relationship()

    @property
    def awaits_decision(self) -> bool:
        """Pending: a manager may still approve or reject it; a decision is final."""
        return self.status == "pending"

    @property
    def reason_label(self) -> str:
        label = RETURN_REASONS[self.reason]
        return f"{label}: {self.reason_text}" if self.reason_text else label
