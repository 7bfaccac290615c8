"""What pages show of routing and delivery: the assign dialog's options, the lead page's
deliveries block, and the deliveries needing action (the queue's Needs attention, the dashboard).
Read functions; the blueprints hand their results to their templates."""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from ied.delivery.models import Assignment
from ied.delivery.services import (
    ASSIGNABLE_LEAD_STATUSES,
    is_live,
    max_installers,
    path_rule,
    queued_alert_delay,
)
from ied.installers.services import InstallerChoice, installer_choices
from ied.leads.models import Lead
from ied.timestamps import utcnow


@dataclass(frozen=True)
class AssignOptions:
    """The assign dialog: who can take the lead, who cannot and why, and what to pre-tick."""

    assignable: bool
    eligible: list[InstallerChoice]
    excluded: list[InstallerChoice]
    path_rule: str
    single: bool
    live_count: int
    ticked: frozenset[int]


def is_assignable(lead: Lead) -> bool:
    """Whether installers can be assigned to the lead now (the assign dialog opens)."""
    return lead.status in ASSIGNABLE_LEAD_STATUSES


def has_a_free_place(lead: Lead, live_count: int | None = None) -> bool:
    """Whether its path leaves room for another installer now (its page and the queue offer
    to add one): a recommended-installer lead's one place stays its failed delivery's until
    withdrawn. `live_count`: its live assignments, when counted already (the queue's rows
    do not load them)."""
    if live_count is None:
        live_count = _live_count(lead)
    return is_assignable(lead) and live_count < max_installers(lead)


def _live_count(lead: Lead) -> int:
    return sum(1 for assignment in lead.assignments if is_live(assignment))


def assign_options(lead: Lead, chosen: Iterable[int] | None = None) -> AssignOptions:
    """`chosen` keeps what the operator ticked (a refused form shown again); without it the
    obvious choice is ticked: on a one-installer path the recommended one (else the only
    eligible one), on compare_quotes every eligible one when they all fit in the free places."""
    assignable = is_assignable(lead)
    choices = installer_choices(lead) if assignable else []
    eligible = [choice for choice in choices if choice.eligible]
    limit = max_installers(lead)
    live_count = _live_count(lead)
    if chosen is not None:
        ticked = frozenset(chosen)
    else:
        ticked = frozenset(_obvious_choice(eligible, limit - live_count, single=limit == 1))
    return AssignOptions(
        assignable=assignable,
        eligible=eligible,
        excluded=[choice for choice in choices if not choice.eligible],
        path_rule=path_rule(lead),
        single=limit == 1,
        live_count=live_count,
        ticked=ticked,
    )


def _obvious_choice(eligible: list[InstallerChoice], free: int, *, single: bool) -> list[int]:
    if free <= 0 or not eligible:
        return []
    if single:
        recommended = [choice for choice in eligible if choice.is_recommended]
        only = recommended or (eligible if len(eligible) == 1 else [])
        return [choice.installer.id for choice in only]
    if len(eligible) <= free:
        return [choice.installer.id for choice in eligible]
    return []


@dataclass(frozen=True)
class LeadDeliveries:
    """The deliveries block: how many still wait to be sent (it polls while any do) and how
    many were sent (the follow-up block changes when that does)."""

    waiting: int
    sent: int


def lead_deliveries(lead: Lead) -> LeadDeliveries:
    statuses = [assignment.status for assignment in lead.assignments]
    return LeadDeliveries(waiting=statuses.count("queued"), sent=statuses.count("sent"))


def queued_alert_cutoff(now: datetime | None = None) -> datetime:
    """A delivery still queued since before this is stuck in retries or waiting for a dead
    worker."""
    return (now or utcnow()) - queued_alert_delay()


def delivery_needs_action_kinds(
    now: datetime | None = None, *, queued_before=None
) -> tuple[sa.ColumnElement[bool], ...]:
    """The two kinds of assignment an operator must look at, each one prefix of the index on
    (status, created_at): failed, and queued for too long (before `queued_before`, which may be
    a bind parameter; else the cutoff at `now`)."""
    if queued_before is None:
        queued_before = queued_alert_cutoff(now)
    return (
        Assignment.status == "failed",
        sa.and_(Assignment.status == "queued", Assignment.queued_at < queued_before),
    )


def delivery_needs_action(now: datetime | None = None) -> sa.ColumnElement[bool]:
    """Assignments an operator must look at: failed, or queued for too long."""
    return sa.or_(*delivery_needs_action_kinds(now))
