"""Billing read models kept by the finance services: cycle counters and installer returns."""

from decimal import Decimal

from sqlalchemy import ForeignKey, Numeric, String
from sqlalchemy.orm import Mapped, mapped_column

from ied.extensions import db


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
