"""Billing truth: the cycle counters kept with each delivery event, and voiding events."""

from dataclasses import dataclass
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from ied.activity.services import record_activity
from ied.auth.models import User
from ied.delivery.models import DeliveryEvent
from ied.errors import DomainError, NotFound
from ied.extensions import db
from ied.finance.models import CycleBilling
from ied.row_locks import lock_rows
from ied.timestamps import utcnow

CENT = Decimal("0.01")


class VoidRefused(DomainError):
    pass


def _insert(table):
    dialect = db.session.get_bind().dialect.name
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)


COUNTERS = ("billed_count", "billed_amount", "voided_count", "voided_amount")


def _change_cycle_billing(installer_id: int, cycle: str, *, add: bool, **values) -> None:
    """Add to (or, for a repair, overwrite) one counter row in one statement: concurrent
    deliveries to the same installer each add their own."""
    table = CycleBilling.__table__
    values = {name: values.get(name, 0) for name in COUNTERS}
    statement = _insert(table).values(installer_id=installer_id, billing_cycle=cycle, **values)
    statement = statement.on_conflict_do_update(
        index_elements=[table.c.installer_id, table.c.billing_cycle],
        set_={
            name: table.c[name] + statement.excluded[name] if add else statement.excluded[name]
            for name in COUNTERS
        },
    )
    db.session.execute(statement)


def count_delivery_event(event: DeliveryEvent) -> None:
    """Called in the transaction that creates the event."""
    _change_cycle_billing(
        event.installer_id, event.billing_cycle, add=True, billed_count=1, billed_amount=event.price
    )


def _count_void(event: DeliveryEvent) -> None:
    _change_cycle_billing(
        event.installer_id,
        event.billing_cycle,
        add=True,
        billed_count=-1,
        billed_amount=-event.price,
        voided_count=1,
        voided_amount=event.price,
    )


def lock_delivery_event(event_id: int) -> DeliveryEvent:
    lock_rows(DeliveryEvent, [event_id])
    event = db.session.scalars(
        sa.select(DeliveryEvent)
        .where(DeliveryEvent.id == event_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).first()
    if event is None:
        raise NotFound(f"No delivery event has the id {event_id}.")
    return event


def void_delivery_event(event_id: int, actor: User | None, reason: str) -> DeliveryEvent:
    """Credit a billed delivery: it leaves the totals and frees its cap slot in this transaction.

    The event stays (never deleted) with who voided it, when and why.
    """
    reason = (reason or "").strip()
    if not reason:
        raise VoidRefused("Give the reason for voiding this delivery.", field="reason")
    event = lock_delivery_event(event_id)
    if event.voided_at is not None:
        who = f" by {event.voided_by.email}" if event.voided_by else ""
        raise VoidRefused(
            f"Delivery event {event.id} was already voided{who} on "
            f"{event.voided_at:%d %b %Y %H:%M} UTC ({event.void_reason}); "
            "it cannot be voided twice."
        )
    event.voided_at = utcnow()
    event.voided_by_id = actor.id if actor else None
    event.void_reason = reason
    _count_void(event)
    record_activity(
        "delivery_event.voided",
        event,
        actor=actor,
        details={"reason": reason, "price": f"{event.price:.2f}", "cycle": event.billing_cycle},
    )
    return event


@dataclass(frozen=True)
class Tally:
    billed_count: int = 0
    billed_amount: Decimal = Decimal("0.00")
    voided_count: int = 0
    voided_amount: Decimal = Decimal("0.00")

    def __str__(self) -> str:
        return (
            f"{self.billed_count} billed ({self.billed_amount}), "
            f"{self.voided_count} voided ({self.voided_amount})"
        )


@dataclass(frozen=True)
class CycleBillingDrift:
    installer_id: int
    billing_cycle: str
    kept: Tally
    counted: Tally


def _tally(billed_count, billed_amount, voided_count, voided_amount) -> Tally:
    def cents(value) -> Decimal:
        return Decimal(value or 0).quantize(CENT)

    return Tally(billed_count or 0, cents(billed_amount), voided_count or 0, cents(voided_amount))


def cycle_billing_drift() -> list[CycleBillingDrift]:
    """Every counter that differs from a direct count of the delivery events it stands for."""
    billed = DeliveryEvent.voided_at.is_(None)
    counted = {
        (installer_id, cycle): _tally(*numbers)
        for installer_id, cycle, *numbers in db.session.execute(
            sa.select(
                DeliveryEvent.installer_id,
                DeliveryEvent.billing_cycle,
                sa.func.count().filter(billed),
                sa.func.sum(DeliveryEvent.price).filter(billed),
                sa.func.count().filter(~billed),
                sa.func.sum(DeliveryEvent.price).filter(~billed),
            ).group_by(DeliveryEvent.installer_id, DeliveryEvent.billing_cycle)
        )
    }
    columns = [CycleBilling.installer_id, CycleBilling.billing_cycle]
    kept = {
        (installer_id, cycle): _tally(*numbers)
        for installer_id, cycle, *numbers in db.session.execute(
            sa.select(*columns, *(getattr(CycleBilling, name) for name in COUNTERS))
        )
    }
    return [
        CycleBillingDrift(*key, kept.get(key, Tally()), counted.get(key, Tally()))
        for key in sorted(counted.keys() | kept.keys())
        if kept.get(key, Tally()) != counted.get(key, Tally())
    ]


def repair_cycle_billing() -> list[CycleBillingDrift]:
    """Set every drifted counter to its direct count; returns what was wrong.

    The no-op UPDATE first locks every counter row (and on SQLite the database), so a delivery
    committing meanwhile either is counted here or adds itself after the repair.
    """
    db.session.execute(
        sa.update(CycleBilling).values(billed_count=CycleBilling.billed_count),
        execution_options={"synchronize_session": False},
    )
    drift = cycle_billing_drift()
    for row in drift:
        _change_cycle_billing(row.installer_id, row.billing_cycle, add=False, **vars(row.counted))
    return drift
