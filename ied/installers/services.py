"""Installer matching and cycle usage: who may receive a lead, and why the others may not."""

import json
import re
from dataclasses import dataclass, replace
from decimal import Decimal
from functools import cache, lru_cache

import sqlalchemy as sa
from email_validator import EmailNotValidError, validate_email
from sqlalchemy.orm import Bundle

from ied.activity.services import record_activity
from ied.auth.models import User
from ied.business_time import BillingCycle, CurrentCycles, current_cycles, named_billing_cycle
from ied.delivery.models import Assignment, DeliveryEvent
from ied.errors import DomainError
from ied.extensions import db
from ied.finance.models import CycleBilling
from ied.installers.models import REGIONS, Installer
from ied.leads.models import PRODUCT_LABELS, PRODUCTS, Lead


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
        return cap_reached(self.cap, self.delivered, self.queued)


def cap_reached(cap: int | None, delivered: int, queued: int) -> bool:
    return cap is not None and delivered + queued >= cap


# As columns of a query of installers: the counter of each one's current cycle (non-voided
# events) and its queued assignments. The current cycle's label by anchor day comes as
# parameters (_cycle_parameters): anchor days up to today's day are in this month's cycle, the
# later ones still in last month's. Built once: only the parameters change from call to call.
# The queued ones are counted through an alias of their own, so that the columns also count
# right inside a query of assignments (the queue's delivery problems): there, the table itself
# would be correlated with the outer query's assignment row.
_QUEUED = Assignment.__table__.alias("queued")
_CURRENT_LABEL = sa.case(
    (
        Installer.billing_anchor_day <= sa.bindparam("cycle_today_day", type_=sa.Integer),
        sa.bindparam("cycle_label_this_month", type_=sa.String),
    ),
    else_=sa.bindparam("cycle_label_last_month", type_=sa.String),
)
_USAGE_COLUMNS = (
    sa.func.coalesce(
        sa.select(CycleBilling.billed_count)
        .where(
            CycleBilling.installer_id == Installer.id,
            CycleBilling.billing_cycle == _CURRENT_LABEL,
        )
        .scalar_subquery(),
        0,
    ),
    sa.select(sa.func.count())
    .select_from(_QUEUED)
    .where(_QUEUED.c.installer_id == Installer.id, _QUEUED.c.status == "queued")
    .scalar_subquery(),
)


def usage_columns() -> tuple[sa.ColumnElement, sa.ColumnElement]:
    """The current cycle's billed and queued counts as two columns, for a query of another
    domain with the installer in its FROM; it runs with usage_parameters()."""
    return _USAGE_COLUMNS


def usage_parameters() -> dict[str, int | str]:
    return _cycle_parameters(current_cycles())


def _cycle_parameters(current: CurrentCycles) -> dict[str, int | str]:
    return {
        "cycle_today_day": current.today_day,
        "cycle_label_this_month": current.this_month,
        "cycle_label_last_month": current.last_month,
    }


class _Cycles(dict):
    """Current billing cycles by anchor day, each worked out once, when first asked for."""

    def __init__(self, current: CurrentCycles):
        super().__init__()
        self.current = current

    def __missing__(self, anchor_day: int) -> BillingCycle:
        cycle = self[anchor_day] = named_billing_cycle(anchor_day, self.current.label(anchor_day))
        return cycle


def _usage(installer: Installer | sa.Row, cycles: _Cycles, billed: int, queued: int) -> CycleUsage:
    return CycleUsage(
        cycle=cycles[installer.billing_anchor_day],
        delivered=billed,
        queued=queued,
        cap=installer.cycle_cap,
    )


@cache
def _names_by_name_with_usage() -> sa.Select:
    """Installers by name with their usage, as plain columns (`installer`: a Bundle of what a
    usage reads and a usage chart names) instead of entities: 50 plain rows against 50
    installers loaded with their areas and products."""
    installer = Bundle(
        "installer",
        Installer.id,
        Installer.company_name,
        Installer.active,
        Installer.billing_anchor_day,
        Installer.cycle_cap,
    )
    return sa.select(installer, *_USAGE_COLUMNS).order_by(Installer.company_name)


@cache
def _fits_with_usage() -> sa.Select:
    """What matching and the routing views read of each installer (InstallerFit, the queue's
    routing column, the assign dialog), as plain columns: the entities cost about as much again
    as the whole statement, and a Bundle of the columns a fifth of matching. The areas and
    products come as their JSON text, parsed once per distinct text (_scope_from_json)."""
    return sa.select(
        Installer.id,
        Installer.company_name,
        Installer.active,
        Installer.billing_anchor_day,
        Installer.cycle_cap,
        sa.cast(Installer.service_areas, sa.Text).label("service_areas"),
        sa.cast(Installer.products, sa.Text).label("products"),
        *_USAGE_COLUMNS,
    ).order_by(Installer.company_name)


def _with_usage(statement: sa.Select) -> list[tuple]:
    current = current_cycles()
    cycles = _Cycles(current)
    rows = db.session.execute(statement, _cycle_parameters(current))
    return [
        (installer, _usage(installer, cycles, billed, queued)) for installer, billed, queued in rows
    ]


def installers_with_usage(*order_by) -> list[tuple[Installer, CycleUsage]]:
    """Every installer (the entity) with its cycle usage, in `order_by` order, in one
    statement."""
    return _with_usage(sa.select(Installer, *_USAGE_COLUMNS).order_by(*order_by))


def usage_by_installer_name() -> list[tuple[sa.Row, CycleUsage]]:
    """Every installer's id, company_name and active flag with its cycle usage, by name."""
    return _with_usage(_names_by_name_with_usage())


def cycle_usage(installers: list[Installer]) -> dict[int, CycleUsage]:
    """These installers' cycle usage, in one statement."""
    if not installers:
        return {}
    current = current_cycles()
    cycles = _Cycles(current)
    counts = {
        installer_id: (billed, queued)
        for installer_id, billed, queued in db.session.execute(
            sa.select(Installer.id, *_USAGE_COLUMNS).where(
                Installer.id.in_([installer.id for installer in installers])
            ),
            _cycle_parameters(current),
        )
    }
    return {
        installer.id: _usage(installer, cycles, *counts[installer.id]) for installer in installers
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
    rest = outward[len(prefix) :]
    if prefix.isalpha():
        return postcode_area(outward) == prefix
    return rest == "" or rest.isalpha()


@dataclass(frozen=True)
class InstallerChoice:
    installer: Installer | sa.Row  # a Row: the columns _fits_with_usage reads (_fits_by_use)
    usage: CycleUsage
    reasons: tuple[str, ...]
    is_recommended: bool
    service_areas: tuple[str, ...] = ()  # as the installer lists them, for the dialog

    @property
    def eligible(self) -> bool:
        return not self.reasons


# Reasons a manager can lift (activate, raise the cap) as against area and product, which
# say the installer does not do this job at all.
PAUSED, CAP_REACHED = LIFTABLE = ("paused", "cap reached")


# The postcode areas its regions cover, its own prefixes, its products, its areas as listed.
Scope = tuple[frozenset[str], tuple[str, ...], frozenset[str], tuple[str, ...]]


def _region_key(area: str) -> str:
    """A service area as REGIONS keys it: South East, south-east -> south_east."""
    return area.strip().lower().replace(" ", "_").replace("-", "_")


def _scope(service_areas: list[str] | None, products: list[str] | None) -> Scope:
    """What matching reads of an installer's service areas and products: the postcode areas
    its regions cover, its own postcode prefixes, its products; and the areas as listed, which
    the assign dialog shows (a Row's service_areas is the column's JSON text)."""
    areas: set[str] = set()
    prefixes = []
    for service_area in service_areas or []:
        region = REGIONS.get(_region_key(service_area))
        if region is None:
            prefixes.append(service_area)
        else:
            areas.update(region)
    return frozenset(areas), tuple(prefixes), frozenset(products or []), tuple(service_areas or ())


@lru_cache(maxsize=1024)
def _scope_from_json(service_areas: str | None, products: str | None) -> Scope:
    """_scope from the columns' JSON text, worked out once per distinct text: the queue's
    routing column reads every installer on every page, and they seldom change."""
    return _scope(
        json.loads(service_areas) if service_areas else None,
        json.loads(products) if products else None,
    )


class InstallerFit:
    """One installer's standing for matching, read once from the installer and its cycle
    usage into plain values (a page matches 50 leads against every installer): the reasons it
    may not take a lead depend on the lead only through its postcode and product."""

    __slots__ = (
        "installer",
        "id",
        "usage",
        "areas",
        "prefixes",
        "products",
        "service_areas",
        "reasons_by_fit",
    )

    def __init__(
        self, installer: Installer | sa.Row, usage: CycleUsage, scope: Scope | None = None
    ):
        """`scope`: _scope of its areas and products, when the caller has it already."""
        self.installer = installer
        self.id = installer.id
        self.usage = usage
        self.areas, self.prefixes, self.products, self.service_areas = scope or _scope(
            installer.service_areas, installer.products
        )
        paused = () if installer.active else (PAUSED,)
        full = (CAP_REACHED,) if usage.is_full else ()
        area = ("outside area",)
        product = ("product not offered",)
        # By (covers the postcode, offers the product), each in the reasons' reading order;
        # one that covers and offers has only LIFTABLE ones.
        self.reasons_by_fit = {
            (True, True): paused + full,
            (True, False): paused + product + full,
            (False, True): paused + area + full,
            (False, False): paused + area + product + full,
        }

    def covers(self, area: str, postcode_normalized: str) -> bool:
        """`area` is postcode_area(postcode_normalized), worked out once per lead."""
        return area in self.areas or (
            bool(self.prefixes)
            and any(prefix_matches(prefix, postcode_normalized) for prefix in self.prefixes)
        )

    def reasons(self, area: str, postcode_normalized: str, product: str) -> tuple[str, ...]:
        return self.reasons_by_fit[self.covers(area, postcode_normalized), product in self.products]

    def choice(self, reasons: tuple[str, ...], recommended_id: int | None) -> InstallerChoice:
        return InstallerChoice(
            installer=self.installer,
            usage=self.usage,
            reasons=reasons,
            is_recommended=self.id == recommended_id,
            service_areas=self.service_areas,
        )


def _lead_reasons(fit: InstallerFit, lead: Lead) -> tuple[str, ...]:
    postcode = lead.postcode_normalized
    return fit.reasons(postcode_area(postcode), postcode, lead.product_interest)


def exclusion_reasons(installer: Installer, lead: Lead, usage: CycleUsage) -> tuple[str, ...]:
    return _lead_reasons(InstallerFit(installer, usage), lead)


def installer_choices(lead: Lead) -> list[InstallerChoice]:
    """Every installer for the assign dialog: eligible first (recommended, then least used)."""
    already = {assignment.installer_id for assignment in lead.assignments}
    recommended_id = lead.recommended_installer_id
    choices = []
    for fit in _fits_by_use():
        reasons = _lead_reasons(fit, lead)
        if fit.id in already:
            reasons = ("already assigned",) + reasons
        choices.append(fit.choice(reasons, recommended_id))
    # Stable: least used first stays the order within eligible and recommended.
    return sorted(choices, key=lambda choice: (not choice.eligible, not choice.is_recommended))


def _fits_by_use() -> list[InstallerFit]:
    """Every installer's fit, least used share of its cap first, then by name."""
    current = current_cycles()
    cycles = _Cycles(current)
    fits = []
    for row in db.session.execute(_fits_with_usage(), _cycle_parameters(current)):
        *_, service_areas, products, billed, queued = row
        # The row is what a view shows of the installer (its company_name), read when shown.
        usage = _usage(row, cycles, billed, queued)
        fits.append(InstallerFit(row, usage, _scope_from_json(service_areas, products)))
    return sorted(
        fits,
        key=lambda fit: (
            fit.usage.used / fit.usage.cap if fit.usage.cap else 0,
            fit.installer.company_name.lower(),
        ),
    )


@dataclass(frozen=True)
class Eligibility:
    """Who can take a lead now, for the queue: how many, the recommended one's state, and
    when nobody can, the installers that would if a manager lifted a pause or a cap."""

    eligible: int
    recommended: InstallerChoice | None
    held_back: tuple[InstallerChoice, ...]
    area: str
    product: str

    @property
    def why_nobody(self) -> str | None:
        if self.eligible:
            return None
        if not self.held_back:
            return f"No installer covers {self.area} for {PRODUCT_LABELS[self.product]}."
        held = "; ".join(
            f"{choice.installer.company_name} {' and '.join(choice.reasons)}"
            for choice in self.held_back[:3]
        )
        return f"Those covering {self.area} cannot take it now: {held}."


def eligibility_of(leads: list[Lead]) -> dict[int, Eligibility]:
    """Eligibility of leads not yet assigned, for a whole page in one query (installers with
    their cycle usage) whatever its length; each installer's standing is read once, and leads
    alike in what matching looks at (postcode area and outward code, product) are matched once."""
    if not leads:
        return {}
    fits = _fits_by_use()
    fits_by_id = {fit.id: fit for fit in fits}
    offering: dict[str, list[InstallerFit]] = {}  # by product, least used first
    for fit in fits:
        for product in fit.products:
            offering.setdefault(product, []).append(fit)
    standings: dict[tuple[str, str, str], _Standing] = {}
    result = {}
    for lead in leads:
        postcode, product = lead.postcode_normalized, lead.product_interest
        area = postcode_area(postcode)
        key = (area, postcode[:-3], product)  # all that covers() and the products look at
        standing = standings.get(key)
        if standing is None:
            standing = standings[key] = _Standing.of(offering.get(product, ()), area, postcode)
        result[lead.id] = standing.eligibility(
            fits_by_id.get(lead.recommended_installer_id), area, postcode, product
        )
    return result


@dataclass(frozen=True)
class _Standing:
    """Who may take one kind of lead: how many, and those held back only by what a manager
    can lift (least used first): the installers that cover it and offer its product, whose
    only reasons can then be a pause or a full cap (InstallerFit.reasons_by_fit)."""

    eligible: int
    held_back: tuple[InstallerFit, ...]

    @classmethod
    def of(cls, offering, area: str, postcode: str):
        """`offering`: the installers offering the lead's product."""
        eligible = 0
        held_back = []
        for fit in offering:
            if fit.covers(area, postcode):
                if fit.reasons_by_fit[True, True]:
                    held_back.append(fit)
                else:
                    eligible += 1
        return cls(eligible, tuple(held_back))

    def eligibility(
        self, recommended_fit: InstallerFit | None, area: str, postcode: str, product: str
    ) -> Eligibility:
        recommended = None
        recommended_id = None
        if recommended_fit is not None:
            recommended_id = recommended_fit.id
            recommended = recommended_fit.choice(
                recommended_fit.reasons(area, postcode, product), recommended_id
            )
        held_back = [
            fit.choice(fit.reasons_by_fit[True, True], recommended_id) for fit in self.held_back
        ]
        held_back.sort(key=lambda choice: not choice.is_recommended)  # the assign dialog's order
        return Eligibility(
            eligible=self.eligible,
            recommended=recommended,
            held_back=tuple(held_back),
            area=area,
            product=product,
        )


_AREA_PREFIX = re.compile(r"^[A-Z]{1,2}([0-9][A-Z0-9]?)?$")


@dataclass
class InstallerInput:
    """What the installer form hands over, already typed but unchecked."""

    company_name: str
    contact_name: str
    delivery_email: str
    phone: str | None
    service_areas: list[str]
    products: list[str]
    cycle_cap: int | None
    price_per_lead: Decimal | None
    billing_anchor_day: int | None
    return_limit_percent: int | None = None


class InstallerValidationError(DomainError):
    def __init__(self, errors: dict[str, str]):
        super().__init__("The installer has errors: " + "; ".join(errors.values()))
        self.errors = errors


def normalize_service_area(area: str) -> str:
    """Regions by their key (south_east), postcode prefixes upper-case without spaces (SW1A)."""
    key = _region_key(area)
    return key if key in REGIONS else area.replace(" ", "").upper()


def validate_installer_input(data: InstallerInput) -> dict[str, str]:
    errors: dict[str, str] = {}
    if not data.company_name.strip():
        errors["company_name"] = "Company name is required."
    if not data.contact_name.strip():
        errors["contact_name"] = "Contact name is required."
    try:
        address = validate_email((data.delivery_email or "").strip(), check_deliverability=False)
    except EmailNotValidError as error:
        errors["delivery_email"] = (
            f"{error}"  # the library says what is wrong with it
            if (data.delivery_email or "").strip()
            else "Give the email address leads are delivered to."
        )
    else:
        if not data.delivery_email.isascii():
            # Deliveries go out without SMTPUTF8: an address must be ASCII to be sent to.
            errors["delivery_email"] = "Give the address in plain ASCII" + (
                f" ({address.ascii_email}): a delivery cannot be sent to it as written."
                if address.ascii_email
                else ": a delivery cannot be sent to it as written."
            )
    if not data.service_areas:
        errors["service_areas"] = "Give at least one region or postcode prefix."
    else:
        unknown = [
            area
            for area in data.service_areas
            if area not in REGIONS and not _AREA_PREFIX.match(area)
        ]
        if unknown:
            errors["service_areas"] = (
                f"Not a region or postcode prefix: {', '.join(unknown)}. Regions are "
                f"{', '.join(REGIONS)}; prefixes look like SW, SW1 or SW1A."
            )
    if not data.products:
        errors["products"] = "Choose at least one product."
    elif set(data.products) - set(PRODUCTS):
        errors["products"] = f"Products must be among: {', '.join(PRODUCTS)}."
    if data.cycle_cap is not None and data.cycle_cap < 0:
        errors["cycle_cap"] = "The cap is a number of leads, 0 or more; leave it empty for no cap."
    if data.price_per_lead is None or data.price_per_lead < 0:
        errors["price_per_lead"] = "Give the price per delivered lead, 0 or more."
    elif data.price_per_lead.as_tuple().exponent < -2:
        errors["price_per_lead"] = "Prices have at most two decimals."
    if data.billing_anchor_day is None or not 1 <= data.billing_anchor_day <= 28:
        errors["billing_anchor_day"] = "The billing cycle starts on a day from 1 to 28."
    if data.return_limit_percent is not None and not 0 <= data.return_limit_percent <= 100:
        errors["return_limit_percent"] = (
            "The return limit is a percentage from 0 to 100; leave it empty for no limit."
        )
    return errors


INSTALLER_FIELDS = (
    "company_name",
    "contact_name",
    "delivery_email",
    "phone",
    "service_areas",
    "products",
    "cycle_cap",
    "price_per_lead",
    "billing_anchor_day",
    "return_limit_percent",
)


def _apply(installer: Installer, data: InstallerInput) -> Installer:
    areas = [normalize_service_area(area) for area in data.service_areas if area.strip()]
    data = replace(data, service_areas=areas)
    errors = validate_installer_input(data)
    if errors:
        raise InstallerValidationError(errors)
    installer.company_name = data.company_name.strip()
    installer.contact_name = data.contact_name.strip()
    installer.delivery_email = data.delivery_email.strip()
    installer.phone = (data.phone or "").strip() or None
    installer.service_areas = list(dict.fromkeys(data.service_areas))
    installer.products = [product for product in PRODUCTS if product in data.products]
    installer.cycle_cap = data.cycle_cap
    installer.price_per_lead = data.price_per_lead
    installer.billing_anchor_day = data.billing_anchor_day
    installer.return_limit_percent = data.return_limit_percent
    db.session.flush()
    return installer


def create_installer(data: InstallerInput, actor: User | None) -> Installer:
    installer = Installer(active=True)
    db.session.add(installer)
    _apply(installer, data)
    record_activity(
        "installer.created", installer, actor=actor, details={"company": installer.company_name}
    )
    return installer


def update_installer(installer: Installer, data: InstallerInput, actor: User | None) -> Installer:
    """A new delivery address revokes the links mailed to the old one. The billing anchor day
    is kept once a delivery has been billed: each billed delivery carries the label of the cycle
    it fell in, and cap use and statements read a cycle by its label, so moving the day would
    count one cycle's deliveries in another."""
    if data.billing_anchor_day != installer.billing_anchor_day and db.session.scalar(
        sa.select(sa.exists().where(DeliveryEvent.installer_id == installer.id))
    ):
        raise InstallerValidationError(
            {
                "billing_anchor_day": f"Stays {installer.billing_anchor_day}: this installer has "
                "billed deliveries, whose cycles are counted from that day."
            }
        )
    before = {name: getattr(installer, name) for name in INSTALLER_FIELDS}
    _apply(installer, data)
    changed = [name for name in INSTALLER_FIELDS if getattr(installer, name) != before[name]]
    if not changed:
        return installer
    details: dict = {"company": installer.company_name, "changed": changed}
    if installer.delivery_email.lower() != before["delivery_email"].lower():
        installer.link_version += 1
        details["links_revoked"] = True
    record_activity("installer.updated", installer, actor=actor, details=details)
    return installer


def revoke_links(installer: Installer, actor: User | None) -> Installer:
    """Every link already emailed to the installer stops opening; later emails carry new ones."""
    installer.link_version += 1
    record_activity(
        "installer.links_revoked",
        installer,
        actor=actor,
        details={"company": installer.company_name, "link_version": installer.link_version},
    )
    return installer


def set_installer_active(installer: Installer, active: bool, actor: User | None) -> Installer:
    """Pausing keeps the installer's assignments and history; it only stops new matches."""
    if active != installer.active:
        installer.active = active
        verb = "installer.resumed" if active else "installer.paused"
        record_activity(verb, installer, actor=actor, details={"company": installer.company_name})
    return installer
