from datetime import datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy import JSON, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ied.checks import one_of
from ied.extensions import db
from ied.timestamps import UTCDateTime, utcnow

if TYPE_CHECKING:
    from ied.auth.models import User
    from ied.delivery.models import Assignment
    from ied.followups.models import FollowUp
    from ied.installers.models import Installer

LEAD_STATUSES = ("new", "reviewing", "ready_to_route", "assigned")
# The locked lifecycle: each status has at most one next status, nothing goes back.
NEXT_LEAD_STATUS = {"new": "reviewing", "reviewing": "ready_to_route", "ready_to_route": "assigned"}
# What moving to each status is called on a button. `assigned` comes only from assigning
# installers (the assign dialog); the others are one click.
NEXT_ACTION_LABELS = {
    "reviewing": "Start review",
    "ready_to_route": "Approve for routing",
    "assigned": "Assign",
}
ONE_CLICK_STATUSES = ("reviewing", "ready_to_route")
SELECTED_PATHS = ("compare_quotes", "recommended_installer")
PRODUCTS = ("solar_pv", "battery", "heat_pump", "ev_charger", "insulation", "boiler")
PRODUCT_LABELS = {
    "solar_pv": "Solar PV",
    "battery": "Battery storage",
    "heat_pump": "Heat pump",
    "ev_charger": "EV charger",
    "insulation": "Insulation",
    "boiler": "Boiler",
}
PATH_LABELS = {"compare_quotes": "Compare quotes", "recommended_installer": "Recommended installer"}
# What the path means to the installer the lead is delivered to (its email and signed page).
PATH_NOTES_FOR_INSTALLERS = {
    "compare_quotes": "the customer is comparing quotes from several installers",
    "recommended_installer": "the customer asked for one installer: this lead goes to you alone",
}
STATUS_LABELS = {
    "new": "New",
    "reviewing": "Reviewing",
    "ready_to_route": "Ready to route",
    "assigned": "Assigned",
}


class Lead(db.Model):
    __tablename__ = "leads"
    __table_args__ = (
        UniqueConstraint("source", "external_id"),
        one_of("status", LEAD_STATUSES),
        one_of("selected_path", SELECTED_PATHS),
        one_of("product_interest", PRODUCTS),
        Index("ix_leads_status_created_at_id", "status", "created_at", "id"),
        Index("ix_leads_created_at_id", "created_at", "id"),
        # Pattern opclasses on PostgreSQL so the queue's prefix searches (LIKE 'x%') use these
        # indexes whatever the database collation; equality (duplicate checks) still does.
        Index(
            "ix_leads_email_normalized_created_at",
            "email_normalized",
            "created_at",
            postgresql_ops={"email_normalized": "varchar_pattern_ops"},
        ),
        Index(
            "ix_leads_phone_normalized_created_at",
            "phone_normalized",
            "created_at",
            postgresql_ops={"phone_normalized": "varchar_pattern_ops"},
        ),
        Index(
            "ix_leads_postcode_normalized",
            "postcode_normalized",
            postgresql_ops={"postcode_normalized": "varchar_pattern_ops"},
        ),
        # Name search is a substring match: a trigram index on PostgreSQL (pg_trgm), a plain one
        # elsewhere.
        Index(
            "ix_leads_customer_name_search",
            "customer_name",
            postgresql_using="gin",
            postgresql_ops={"customer_name": "gin_trgm_ops"},
        ),
        # The Needs-attention tab: only leads with a failed or queued delivery are in it, so
        # its pages and its capped count read a few index entries however many leads there are.
        Index(
            "ix_leads_delivery_attention",
            "created_at",
            "id",
            postgresql_where=sa.text("delivery_attention_at IS NOT NULL"),
            postgresql_include=["delivery_attention_at"],
            sqlite_where=sa.text("delivery_attention_at IS NOT NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    reference: Mapped[str] = mapped_column(String(32), unique=True)
    source: Mapped[str] = mapped_column(String(64))
    external_id: Mapped[str | None] = mapped_column(String(128))
    customer_name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(254))
    email_normalized: Mapped[str | None] = mapped_column(String(254))
    phone: Mapped[str | None] = mapped_column(String(40))
    phone_normalized: Mapped[str | None] = mapped_column(String(20))
    address: Mapped[str | None] = mapped_column(Text)
    postcode: Mapped[str] = mapped_column(String(12))
    postcode_normalized: Mapped[str] = mapped_column(String(12))
    product_interest: Mapped[str] = mapped_column(String(32))
    assessment: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    recommendation: Mapped[str | None] = mapped_column(Text)
    recommended_installer_id: Mapped[int | None] = mapped_column(
        ForeignKey("installers.id"), index=True
    )
    selected_path: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(20), default="new")
    possible_duplicate_of_id: Mapped[int | None] = mapped_column(ForeignKey("leads.id"), index=True)
    notes: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    # When the lead's deliveries start needing an operator: the moment a delivery failed, or a
    # queued one's queued_at + DELIVERY_QUEUED_ALERT_MINUTES; empty while every delivery is
    # sent or withdrawn.
    # Kept by ied/delivery/services.py in the transaction that changes an assignment.
    delivery_attention_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    recommended_installer: Mapped["Installer | None"] = relationship()
    possible_duplicate_of: Mapped["Lead | None"] = relationship(remote_side=[id])
    status_changes: Mapped[list["LeadStatusChange"]] = relationship(
        back_populates="lead", order_by="LeadStatusChange.id"
    )
    assignments: Mapped[list["Assignment"]] = relationship(
        back_populates="lead", order_by="Assignment.id"
    )
    follow_up: Mapped["FollowUp | None"] = relationship(back_populates="lead")

    @property
    def postcode_outward(self) -> str:
        """The postcode's outward code, its area without the street: SW1A 1AA -> SW1A."""
        return self.postcode_normalized[:-3] if len(self.postcode_normalized) > 3 else ""

    @property
    def next_status(self) -> str | None:
        return NEXT_LEAD_STATUS.get(self.status)

    @property
    def one_click_next(self) -> str | None:
        """The next status when one click moves the lead there (not `assigned`)."""
        return self.next_status if self.next_status in ONE_CLICK_STATUSES else None

    def __repr__(self) -> str:
        return f"<Lead {self.reference} {self.status}>"


class LeadStatusChange(db.Model):
    __tablename__ = "lead_status_changes"
    __table_args__ = (
        one_of("to_status", LEAD_STATUSES),
        one_of("from_status", LEAD_STATUSES),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    lead_id: Mapped[int] = mapped_column(ForeignKey("leads.id"), index=True)
    from_status: Mapped[str | None] = mapped_column(String(20))
    to_status: Mapped[str] = mapped_column(String(20))
    changed_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    note: Mapped[str | None] = mapped_column(Text)

    lead: Mapped[Lead] = relationship(back_populates="status_changes")
    changed_by: Mapped["User | None"] = relationship()


class LeadStatusCount(db.Model):
    """How many leads are in each status now, kept by the lifecycle service in the same
    transaction as the change it counts (ied/leads/status_counts.py).

    Each status is spread over STATUS_COUNT_SHARDS rows (by lead id) so that concurrent intakes
    and transitions rarely wait on the same row; a reader sums at most 4 x 16 rows.
    """

    __tablename__ = "lead_status_counts"
    __table_args__ = (one_of("status", LEAD_STATUSES),)

    status: Mapped[str] = mapped_column(String(20), primary_key=True)
    shard: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    lead_count: Mapped[int] = mapped_column(default=0)
