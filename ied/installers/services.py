"""Installer matching and cycle usage: who may receive a lead, and why the others may not."""

from dataclasses import dataclass

import sqlalchemy as sa

from ied.business_time import BillingCycle, billing_cycle
from ied.delivery.models import Assignment, DeliveryEvent
from ied.extensions import db
from ied.installers.models import REGIONS, Installer
from ied.leads.models import Lead


@dataclass(frozen=True)
class CycleUsage:
    cycle: BillingCycle
    delivered: int
    queued: int
    cap: int | None

    @property
    def used(self) -> int:
        return self.delivered + self.queued

    @property
    def remaining(self) -> int | None:
        return None if self.cap is None else max(self.cap - self.used, 0)

    @property
    def is_full(self) -> bool:
        return self.cap is not None and self.used >= self.cap


def cycle_usage(installers: list[Installer]) -> dict[int, CycleUsage]:
    """Non-voided delivery events of each installer's current cycle plus its queued assignments."""
    if not installers:
        return {}
    cycles = {installer.id: billing_cycle(installer.billing_anchor_day) for installer in installers}
    ids = list(cycles)
    delivered = {
        (installer_id, label): count
        for installer_id, label, count in db.session.execute(
            sa.select(DeliveryEvent.installer_id, DeliveryEvent.billing_cycle, sa.func.count())
            .where(
                DeliveryEvent.installer_id.in_(ids),
                DeliveryEvent.billing_cycle.in_({cycle.label for cycle in cycles.values()}),
                DeliveryEvent.voided_at.is_(None),
            )
            .group_by(DeliveryEvent.installer_id, DeliveryEvent.billing_cycle)
        )
    }
    queued = dict(
        db.session.execute(
            sa.select(Assignment.installer_id, sa.func.count())
            .where(Assignment.installer_id.in_(ids), Assignment.status == "queued")
            .group_by(Assignment.installer_id)
        ).all()
    )
    return {
        installer.id: CycleUsage(
            cycle=cycles[installer.id],
            delivered=delivered.get((installer.id, cycles[installer.id].label), 0),
            queued=queued.get(installer.id, 0),
            cap=installer.cycle_cap,
        )
        for installer in installers
    }


def postcode_area(postcode_normalized: str) -> str:
    """The letters that open a postcode: SW1A1AA -> SW."""
    letters = ""
    for char in postcode_normalized:
        if not char.isalpha():
            break
        letters += char
    return letters


def prefix_matches(prefix: str, postcode_normalized: str) -> bool:
    """SW matches any SW postcode, SW1 matches SW1A and SW1P but not SW11, SW1A only SW1A."""
    outward = postcode_normalized[:-3]
    prefix = prefix.replace(" ", "").upper()
    if not prefix or not outward.startswith(prefix):
        return False
    rest = outward[len(prefix):]
    if prefix.isalpha():
        return postcode_area(outward) == prefix
    return rest == "" or rest.isalpha()


def covers_postcode(installer: Installer, postcode_normalized: str) -> bool:
    area = postcode_area(postcode_normalized)
    for service_area in installer.service_areas or []:
        region = REGIONS.get(service_area.strip().lower().replace(" ", "_").replace("-", "_"))
        if region is not None and area in region:
            return True
        if region is None and prefix_matches(service_area, postcode_normalized):
            return True
    return False


@dataclass(frozen=True)
class InstallerChoice:
    installer: Installer
    usage: CycleUsage
    reasons: tuple[str, ...]
    is_recommended: bool

    @property
    def eligible(self) -> bool:
        return not self.reasons


def exclusion_reasons(installer: Installer, lead: Lead, usage: CycleUsage) -> tuple[str, ...]:
    reasons = []
    if not installer.active:
        reasons.append("paused")
    if not covers_postcode(installer, lead.postcode_normalized):
        reasons.append("outside area")
    if lead.product_interest not in (installer.products or []):
        reasons.append("product not offered")
    if usage.is_full:
        reasons.append("cap reached")
    return tuple(reasons)


def installer_choices(lead: Lead) -> list[InstallerChoice]:
    """Every installer for the assign dialog: eligible first (recommended, then least used)."""
    installers = list(db.session.scalars(sa.select(Installer).order_by(Installer.company_name)))
    usage = cycle_usage(installers)
    already = {assignment.installer_id for assignment in lead.assignments}
    choices = []
    for installer in installers:
        reasons = exclusion_reasons(installer, lead, usage[installer.id])
        if installer.id in already:
            reasons = ("already assigned",) + reasons
        choices.append(
            InstallerChoice(
                installer=installer,
                usage=usage[installer.id],
                reasons=reasons,
                is_recommended=installer.id == lead.recommended_installer_id,
            )
        )
    return sorted(
        choices,
        key=lambda choice: (
            not choice.eligible,
            not choice.is_recommended,
            choice.usage.used / choice.usage.cap if choice.usage.cap else 0,
            choice.installer.company_name.lower(),
        ),
    )
