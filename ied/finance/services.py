"""Billing truth: the cycle counters kept with each delivery event, voiding events, and the
installers' return requests with the managers' decisions."""

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

import sqlalchemy as sa
from flask import current_app

from ied.activity.services import record_activity
from ied.auth.models import User
from ied.delivery.models import DeliveryEvent
from ied.errors import DomainError
from ied.extensions import db
from ied.finance.models import RETURN_REASONS, CycleBilling, ReturnRequest
from ied.formatting import local_datetime
from ied.installers.models import Installer
from ied.row_locks import lock_one
from ied.tallies.services import add_to_tally
from ied.timestamps import utcnow
from ied.upserts import add_to_counters, upsert

REASON_TEXT_LIMIT = 1000

CENT = Decimal("0.01")


class VoidRefused(DomainError):
    pass


class ReturnRefused(DomainError):
    pass


COUNTERS = ("billed_count", "billed_amount", "voided_count", "voided_amount")


def _add_to_cycle_billing(installer_id: int, cycle: str, **values) -> None:
    """Add to one counter row in one statement: concurrent deliveries to the same installer
    each add their own."""
    row = {"installer_id": installer_id, "billing_cycle": cycle}
    row |= {name: values.get(name, 0) for name in COUNTERS}
    add_to_counters(CycleBilling.__table__, ("installer_id", "billing_cycle"), [row])


def _set_cycle_billing(installer_id: int, cycle: str, **values) -> None:
    """Overwrite one counter row (a repair)."""
    table = CycleBilling.__table__
    statement = upsert(table).values(installer_id=installer_id, billing_cycle=cycle, **values)
    db.session.execute(
        statement.on_conflict_do_update(
            index_elements=[table.c.installer_id, table.c.billing_cycle],
            set_={name: statement.excluded[name] for name in COUNTERS},
        )
    )


def count_delivery_events(events: list[DeliveryEvent]) -> None:
    """Called in the transaction that creates the events: one statement for all of them, its
    rows in key order so two batches adding to the same counters never deadlock."""
    rows: dict[tuple[int, str], dict] = {}
    for event in events:
        row = rows.setdefault(
            (event.installer_id, event.billing_cycle),
            {"installer_id": event.installer_id, "billing_cycle": event.billing_cycle}
            | dict.fromkeys(COUNTERS, 0),
        )
        row["billed_count"] += 1
        row["billed_amount"] += event.price
    if rows:
        add_to_counters(
            CycleBilling.__table__,
            ("installer_id", "billing_cycle"),
            [rows[key] for key in sorted(rows)],
        )


def _count_void(event: DeliveryEvent) -> None:
    _add_to_cycle_billing(
        event.installer_id,
        event.billing_cycle,
        billed_count=-1,
        billed_amount=-event.price,
        voided_count=1,
        voided_amount=event.price,
    )


def void_delivery_event(event_id: int, actor: User | None, reason: str) -> DeliveryEvent:
    """Credit a billed delivery: it leaves the totals and frees its cap slot in this transaction.

    The event stays (never deleted) with who voided it, when and why.
    """
    reason = (reason or "").strip()
    if not reason:
        raise VoidRefused("Give the reason for voiding this delivery.", field="reason")
    if len(reason) > REASON_TEXT_LIMIT:
        raise VoidRefused(f"Keep the reason under {REASON_TEXT_LIMIT} characters.", field="reason")
    return _void(event_id, actor, reason)


def _void(event_id: int, actor: User | None, reason: str) -> DeliveryEvent:
    """void_delivery_event once the reason is known good: a manager's typed one is checked
    there; an approved return's quotes the request and the remark, each already checked, and
    may be longer than either (the column is text)."""
    event = lock_one(DeliveryEvent, event_id)
    if event.voided_at is not None:
        who = f" by {event.voided_by.email}" if event.voided_by else ""
        raise VoidRefused(
            f"Delivery event {event.id} was already voided{who} on "
            f"{local_datetime(event.voided_at)} ({event.void_reason}); "
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
        _set_cycle_billing(row.installer_id, row.billing_cycle, **vars(row.counted))
    return drift


# Installer returns --------------------------------------------------------------------------


def return_window_closes_at(event: DeliveryEvent) -> datetime:
    return event.occurred_at + timedelta(days=current_app.config["RETURN_WINDOW_DAYS"])


@dataclass(frozen=True)
class ReturnState:
    """What the installer's page says about returning this delivery."""

    request: ReturnRequest | None
    window_closes_at: datetime
    window_open: bool
    credited: bool  # voided by a manager without a return request

    @property
    def can_request(self) -> bool:
        return self.request is None and self.window_open and not self.credited

    @property
    def state(self) -> str:
        """In a word: the request's status, else credited, open (may ask) or closed."""
        if self.request is not None:
            return self.request.status
        if self.credited:
            return "credited"
        return "open" if self.window_open else "closed"


def return_request_for(event: DeliveryEvent) -> ReturnRequest | None:
    return db.session.scalars(
        sa.select(ReturnRequest).where(ReturnRequest.delivery_event_id == event.id)
    ).first()


def return_state(event: DeliveryEvent, now: datetime | None = None) -> ReturnState:
    closes_at = return_window_closes_at(event)
    request = return_request_for(event)
    return ReturnState(
        request=request,
        window_closes_at=closes_at,
        window_open=(now or utcnow()) <= closes_at,
        credited=event.is_voided and request is None,
    )


def _refuse_over_return_limit(installer: Installer, cycle: str) -> None:
    percent = installer.return_limit_percent
    if percent is None:
        return
    deliveries = db.session.scalar(
        sa.select(CycleBilling.billed_count + CycleBilling.voided_count).where(
            CycleBilling.installer_id == installer.id, CycleBilling.billing_cycle == cycle
        )
    )
    used = db.session.scalar(
        sa.select(sa.func.count())
        .select_from(ReturnRequest)
        .where(
            ReturnRequest.installer_id == installer.id,
            ReturnRequest.billing_cycle == cycle,
            ReturnRequest.status.in_(("pending", "approved")),
        )
    )
    allowed = (deliveries or 0) * percent // 100
    if used >= allowed:
        raise ReturnRefused(
            f"{installer.company_name} may return up to {percent}% of a billing cycle's "
            f"deliveries: {allowed} of the {deliveries or 0} delivered in the {cycle} cycle, "
            f"and {used} {'is' if used == 1 else 'are'} already asked for. "
            "Contact IED if this lead should still be credited."
        )


def _checked_return_reason(reason: str, reason_text: str | None) -> str | None:
    """The explanation as kept (None when blank), or why the reason is refused."""
    reason_text = (reason_text or "").strip() or None
    if reason not in RETURN_REASONS:
        raise ReturnRefused("Choose why the lead should be returned.", field="reason")
    if reason == "other" and not reason_text:
        raise ReturnRefused("Say what is wrong with the lead.", field="reason_text")
    if reason_text and len(reason_text) > REASON_TEXT_LIMIT:
        raise ReturnRefused(
            f"Keep the explanation under {REASON_TEXT_LIMIT} characters.", field="reason_text"
        )
    return reason_text


def _refuse_unless_returnable(
    event: DeliveryEvent, installer: Installer, now: datetime | None
) -> None:
    state = return_state(event, now)
    if state.request is not None:
        raise ReturnRefused(
            f"A return of this lead was already asked for on "
            f"{local_datetime(state.request.requested_at)}; only one request per delivery."
        )
    if state.credited:
        raise ReturnRefused("This delivery was already credited by IED: nothing to return.")
    if not state.window_open:
        raise ReturnRefused(
            f"Returns are possible for {current_app.config['RETURN_WINDOW_DAYS']} days after "
            f"delivery; the window closed on {local_datetime(state.window_closes_at)}."
        )
    _refuse_over_return_limit(installer, event.billing_cycle)


def check_return(
    event_id: int, reason: str, reason_text: str | None, now: datetime | None = None
) -> None:
    """Refuses what `request_return` would refuse, asking nothing: the installer's page checks
    a request before the installer confirms it (it can be asked once and not changed)."""
    _checked_return_reason(reason, reason_text)
    event = db.session.get(DeliveryEvent, event_id)
    _refuse_unless_returnable(event, event.installer, now)


def request_return(
    event_id: int, reason: str, reason_text: str | None, now: datetime | None = None
) -> ReturnRequest:
    """The installer asks for a delivered lead to be credited: once, within the window."""
    reason_text = _checked_return_reason(reason, reason_text)
    event = lock_one(DeliveryEvent, event_id)
    # The installer's lock makes concurrent requests count each other against the limit.
    installer = lock_one(Installer, event.installer_id)
    _refuse_unless_returnable(event, installer, now)
    request = ReturnRequest(
        delivery_event_id=event.id,
        installer_id=event.installer_id,
        billing_cycle=event.billing_cycle,
        reason=reason,
        reason_text=reason_text,
        status="pending",
        requested_at=now or utcnow(),
    )
    db.session.add(request)
    db.session.flush()
    add_to_tally(request.requested_at, installer_id=request.installer_id, returns_requested=1)
    record_activity(
        "return_request.requested",
        request,
        actor_label=f"installer {installer.company_name}",
        lead_id=event.lead_id,
        details={"reason": request.reason_label, "delivery_event_id": event.id},
    )
    return request


def decide_return(
    request_id: int, actor: User | None, *, approve: bool, remark: str | None
) -> ReturnRequest:
    """A manager approves (the event is voided: a credit, and its cap slot is free again) or
    rejects (the event stays billed) a pending return; the decision is final and kept."""
    remark = (remark or "").strip() or None
    if not approve and not remark:
        raise ReturnRefused(
            "Say why the return is rejected: the installer reads it.", field="remark"
        )
    if remark and len(remark) > REASON_TEXT_LIMIT:
        raise ReturnRefused(
            f"Keep the remark under {REASON_TEXT_LIMIT} characters.", field="remark"
        )
    request = lock_one(ReturnRequest, request_id)
    if not request.awaits_decision:
        who = f" by {request.decided_by.email}" if request.decided_by else ""
        raise ReturnRefused(
            f"This return was already {request.status}{who} on "
            f"{local_datetime(request.decided_at)}; a decision is final."
        )
    event = lock_one(DeliveryEvent, request.delivery_event_id)
    if not approve and event.is_voided:
        # Voided on the void page meanwhile: the installer has had the credit, and a rejection
        # would tell them the delivery stays billed.
        who = f" by {event.voided_by.email}" if event.voided_by else ""
        raise ReturnRefused(
            f"This delivery was already voided{who} on {local_datetime(event.voided_at)}: "
            "approve the return to close it (the credit is not given twice)."
        )
    request.status = "approved" if approve else "rejected"
    request.decided_at = utcnow()
    request.decided_by_id = actor.id if actor else None
    request.remark = remark
    if approve and not event.is_voided:  # a manager may have voided it meanwhile: one credit
        detail = f" ({remark})" if remark else ""
        _void(event.id, actor, f"Return approved: {request.reason_label}{detail}")
    record_activity(
        "return_request.decided",
        request,
        actor=actor,
        lead_id=event.lead_id,
        details={"decision": request.status, "remark": remark, "delivery_event_id": event.id},
    )
    return request


def pending_returns_count() -> int:
    """Return requests waiting for a manager (the finance pages' Returns tab)."""
    return db.session.scalar(
        sa.select(sa.func.count())
        .select_from(ReturnRequest)
        .where(ReturnRequest.status == "pending")
    )
