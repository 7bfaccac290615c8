"""Demo data for `make run` and for looking at pages: built through the real services."""

import random
from datetime import timedelta
from decimal import Decimal

import sqlalchemy as sa

from ied.activity.models import ActivityEntry
from ied.auth.services import create_user
from ied.business_time import billing_cycle, business_today, local_midnight
from ied.delivery import services as delivery
from ied.delivery.models import DeliveryEvent
from ied.extensions import db
from ied.finance import services as finance
from ied.followups import services as followups
from ied.installers.models import Installer
from ied.leads import services as leads
from ied.leads.models import Lead
from ied.tallies.services import rebuild_tallies
from ied.timestamps import utcnow

DEMO_LOGINS = (
    ("operator@ied.localhost", "operator", "amber-falcon-demo"),
    ("manager@ied.localhost", "manager", "cobalt-heron-demo"),
    ("admin@ied.localhost", "admin", "maple-quartz-demo"),
)

DEMO_INSTALLERS = (
    ("Brightside Solar", "Amira Shah", ["london", "SE"], ["solar_pv", "battery"], 40, "35.00", 1),
    (
        "Northern Heat Pumps",
        "Tom Briggs",
        ["north_west", "yorkshire"],
        ["heat_pump", "boiler"],
        25,
        "45.00",
        15,
    ),
    (
        "Volt Home Charging",
        "Priya Nair",
        ["london", "south_east"],
        ["ev_charger", "battery"],
        None,
        "20.00",
        1,
    ),
    (
        "Severn Renewables",
        "Gareth Lloyd",
        ["wales", "BS", "GL"],
        ["solar_pv", "heat_pump"],
        30,
        "38.50",
        8,
    ),
    ("Capital Insulation Co", "Dee Okafor", ["london"], ["insulation", "boiler"], 2, "18.00", 1),
    (
        "Highland Energy",
        "Fiona Reid",
        ["scotland"],
        ["solar_pv", "heat_pump", "battery"],
        12,
        "42.00",
        20,
    ),
    (
        "Midlands Solar Works",
        "Raj Patel",
        ["midlands"],
        ["solar_pv", "battery", "ev_charger"],
        35,
        "33.00",
        1,
    ),
    ("Coastal Installs", "Sam Carter", ["south_west"], ["solar_pv"], 10, "30.00", 1),
)
# Paused in the demo, so that the pages show what a paused installer looks like; its name says
# nothing of it (it would still say so once a manager activates it).
PAUSED_DEMO_INSTALLERS = {"Coastal Installs"}

POSTCODES_BY_AREA = {
    "london": ("SW1A 1AA", "SE1 7PB", "E1 6AN", "N1 9GU", "W1A 0AX"),
    "north_west": ("M1 1AE", "L1 8JQ"),
    "yorkshire": ("LS1 4DY", "S1 2HE"),
    "wales": ("CF10 1EP", "SA1 1NW"),
    "BS": ("BS1 4DJ",),
    "GL": ("GL1 2EH",),
    "SE": ("SE10 9NF",),
    "south_east": ("BN1 1AE", "GU1 3UW"),
    "scotland": ("EH1 1YZ", "G1 1XQ"),
    "midlands": ("B1 1AA", "NG1 5FS"),
    "south_west": ("EX1 1HS",),
}
FIRST = (
    "Alex",
    "Sam",
    "Jo",
    "Chris",
    "Pat",
    "Morgan",
    "Robin",
    "Jamie",
    "Taylor",
    "Casey",
    "Nadia",
    "Omar",
    "Grace",
    "Liam",
    "Ava",
    "Noah",
)
LAST = (
    "Smith",
    "Jones",
    "Taylor",
    "Brown",
    "Williams",
    "Wilson",
    "Evans",
    "Khan",
    "Patel",
    "Murphy",
    "Hughes",
    "Edwards",
    "Green",
    "Hall",
)


def database_is_empty() -> bool:
    return db.session.scalar(sa.select(Lead.id).limit(1)) is None


def _installers() -> list[Installer]:
    installers = []
    for company, contact, areas, products, cap, price, anchor in DEMO_INSTALLERS:
        slug = company.lower().split()[0]
        installer = Installer(
            company_name=company,
            contact_name=contact,
            delivery_email=f"leads@{slug}.example",
            phone="0161 496 0000",
            active=company not in PAUSED_DEMO_INSTALLERS,
            service_areas=areas,
            products=products,
            cycle_cap=cap,
            price_per_lead=Decimal(price),
            billing_anchor_day=anchor,
        )
        db.session.add(installer)
        installers.append(installer)
    db.session.flush()
    return installers


def _lead(rng: random.Random, number: int, installers: list[Installer]) -> Lead:
    recommended = rng.choice([installer for installer in installers if installer.active])
    product = rng.choice(recommended.products)
    postcode = rng.choice(POSTCODES_BY_AREA[rng.choice(recommended.service_areas)])
    path = rng.choice(("compare_quotes", "recommended_installer"))
    name = f"{rng.choice(FIRST)} {rng.choice(LAST)}"
    data = leads.LeadInput(
        customer_name=name,
        email=f"{name.lower().replace(' ', '.')}{number % 70}@example.com",
        phone=f"07700 9{number % 100:02d}{rng.randint(100, 999)}",
        address=f"{rng.randint(1, 200)} High Street",
        postcode=postcode,
        product_interest=product,
        selected_path=path,
        assessment={
            "property_type": rng.choice(["detached", "semi_detached", "terraced", "flat"]),
            "roof_orientation": rng.choice(["south", "east_west", "north"]),
            "monthly_bill_gbp": rng.choice([80, 120, 160, 220]),
            "owns_property": True,
        },
        recommendation=f"A {product.replace('_', ' ')} system sized for the household.",
        recommended_installer_id=recommended.id,
    )
    return leads.create_lead(data, source="website", external_id=f"demo-{number}", actor=None)


def _deliver(assignment, *, fail: bool, retried: bool) -> None:
    if retried:  # a transient refusal first, then the retry gets through
        audit = delivery.begin_attempt(assignment, job_id="demo", lease_seconds=60)
        delivery.finish_attempt(
            audit, status="failed", smtp_code=421, smtp_reply="4.7.0 Try again later"
        )
    audit = delivery.begin_attempt(assignment, job_id="demo", lease_seconds=60)
    if fail:
        delivery.finish_attempt(
            audit, status="failed", smtp_code=550, smtp_reply="5.1.1 Mailbox unavailable"
        )
        delivery.record_delivery_failure(assignment.id, "550 5.1.1 Mailbox unavailable")
    else:
        delivery.finish_attempt(audit, status="sent", smtp_code=250, smtp_reply="2.0.0 OK queued")
        delivery.record_delivery_success(assignment.id)


def _age(rng: random.Random, number: int, lead_count: int) -> timedelta:
    """Leads arrive over the last 90 days, a little busier lately; the newest tenth (those
    still being worked) arrived within the last day."""
    if number > lead_count * 0.9:
        return timedelta(minutes=rng.randint(20, 24 * 60))
    return timedelta(days=89 * (1 - number / (lead_count * 0.9)) ** 1.2, hours=rng.randint(0, 20))


def _backdate(lead: Lead, age: timedelta) -> None:
    """Move everything the services stamped "now" on this lead back by `age`, as if it had
    happened then (billing cycles follow the delivery's moment, its activity entries its
    history's)."""
    moments = [lead, *lead.status_changes]
    for assignment in lead.assignments:
        moments += [assignment, *assignment.audits]
        if assignment.delivery_event is not None:
            moments.append(assignment.delivery_event)
    moments += db.session.scalars(sa.select(ActivityEntry).where(ActivityEntry.lead_id == lead.id))
    for record in moments:
        for column in (
            "created_at",
            "updated_at",
            "changed_at",
            "queued_at",
            "sent_at",
            "first_opened_at",
            "started_at",
            "finished_at",
            "occurred_at",
            "delivery_attention_at",
        ):
            if getattr(record, column, None) is not None:
                setattr(record, column, getattr(record, column) - age)
    events = [a.delivery_event for a in lead.assignments if a.delivery_event is not None]
    for event in events:
        event.billing_cycle = billing_cycle(
            event.installer.billing_anchor_day, event.occurred_at
        ).label
    db.session.flush()
    if events:
        finance.repair_cycle_billing()  # the cycle counters follow the events to their cycles


def seed_demo(lead_count: int = 300, seed: int = 7) -> list[tuple[str, str, str]]:
    rng = random.Random(seed)
    users = {role: create_user(email, role, password) for email, role, password in DEMO_LOGINS}
    operator = users["operator"]
    installers = _installers()
    today = business_today()
    follow_up_plan = iter([-9, -3, -1, 0, 0, 2, 5, 12, -20, -6, 1, 30] * 6)
    for number in range(1, lead_count + 1):
        lead = _lead(rng, number, installers)
        age = _age(rng, number, lead_count)
        # Older leads have all been routed and delivered; the newest are at every stage.
        stage = number % 5 if number > lead_count * 0.9 else 4
        if stage >= 1:
            leads.start_review(lead, operator)
        if stage >= 2:
            leads.approve_for_routing(lead, operator)
        if stage >= 3:
            wanted = 1 if lead.selected_path == "recommended_installer" else 2
            picked = _eligible(lead)[:wanted]
            if picked:
                assignments = delivery.assign_installers(lead, [c.id for c in picked], operator)
                if stage == 4:
                    _deliver_all(rng, number, assignments)
        db.session.refresh(lead)
        _backdate(lead, age)
        sent = [a for a in lead.assignments if a.status == "sent"]
        offset = next(follow_up_plan, None) if sent and number % 3 == 0 else None
        if offset is not None:
            due = local_midnight(today + timedelta(days=offset)) + timedelta(hours=10)
            if offset == 0:  # due in the day's last minute, so "due today", not yet overdue
                due = local_midnight(today + timedelta(days=1)) - timedelta(minutes=1)
            follow_up = followups.create_follow_up(lead, sent[0].installer_id, due, operator)
            _work_follow_up(follow_up, offset, operator, rng)
    _returns_and_voids(users["manager"])
    rebuild_tallies()  # the daily tallies follow the records to the days they were moved to
    return [(email, role, password) for email, role, password in DEMO_LOGINS]


RETURN_PLAN = (
    ("customer_unreachable", None, "pending"),
    ("wrong_contact_details", None, "approved"),
    ("outside_my_area", None, "rejected"),
    ("other", "Customer says they never asked for quotes", "pending"),
    ("duplicate", None, "approved"),
    ("customer_unreachable", None, "rejected"),
)


def _returns_and_voids(manager) -> None:
    """Finance shows voided deliveries and returns pending, approved and rejected."""
    # Returns on recent deliveries (a return may only be asked for within its window after the
    # delivery), voids on older ones.
    recent = DeliveryEvent.occurred_at >= utcnow() - timedelta(days=10)
    newest_first = sa.select(DeliveryEvent.id).order_by(DeliveryEvent.occurred_at.desc())
    for event_id in db.session.scalars(newest_first.where(~recent)).all()[::7][:3]:
        finance.void_delivery_event(event_id, manager, "Test submission from the website team")
    returnable = db.session.scalars(newest_first.where(recent)).all()[::2]
    for event_id, (reason, text, outcome) in zip(returnable, RETURN_PLAN, strict=False):
        request = finance.request_return(event_id, reason, text)
        if outcome != "pending":
            remark = "Checked the call log" if outcome == "rejected" else None
            finance.decide_return(request.id, manager, approve=outcome == "approved", remark=remark)


def _deliver_all(rng: random.Random, number: int, assignments) -> None:
    for index, assignment in enumerate(assignments):
        _deliver(assignment, fail=(number % 15 == 4 and index == 0), retried=number % 11 == 5)
        if assignment.status == "sent" and rng.random() < 0.7:
            delivery.record_link_open(assignment)
            db.session.expire(assignment)  # the open was counted in SQL


def _eligible(lead: Lead) -> list:  # installer rows (id, company_name, ...)
    from ied.installers.services import installer_choices

    return [choice.installer for choice in installer_choices(lead) if choice.eligible]


def _work_follow_up(follow_up, offset: int, actor, rng: random.Random) -> None:
    """Spread follow-ups over every state: pending, in progress, completed, closed with issue."""
    if offset in (-9, 2, 0):
        return
    followups.log_contact_attempt(follow_up, "left_message", actor, "Voicemail")
    if offset in (-3, 5, 1):
        return
    followups.log_contact_attempt(follow_up, "reached_customer", actor, "Spoke to the customer")
    has_issue = offset in (-20, 30)
    followups.record_outcome(
        follow_up,
        followups.Outcome(
            satisfaction_outcome="unsatisfied"
            if has_issue
            else rng.choice(("satisfied", "satisfied", "satisfied", "mixed", "unsatisfied")),
            has_issue=has_issue,
            issue_summary="Installer has not called back" if has_issue else None,
            referral_opportunity=offset == 12,
        ),
        actor,
    )
    if offset != 30:
        followups.close(follow_up, actor)
