"""Delivery load for the throughput bench and the fault run: queued assignments made through
the real services, an SMTP sink that counts what it accepts, and a no-op job for RQ's floor."""

from decimal import Decimal

from aiosmtpd.controller import Controller

from ied.auth.models import User
from ied.auth.services import create_user
from ied.delivery import services
from ied.extensions import db
from ied.installers.models import Installer
from ied.leads import services as lead_services
from tests.support.postgres import free_port


def noop() -> None:
    """The job whose rate is RQ's floor on this Redis."""


def make_operator(email: str = "operator@faults.test", password: str = "faults-password-1") -> User:
    user = create_user(email, "operator", password)
    db.session.commit()
    return user


def make_installers(count: int) -> list[Installer]:
    installers = [
        Installer(
            company_name=f"Installer {number}",
            contact_name=f"Contact {number}",
            delivery_email=f"installer{number}@installers.test",
            phone="0161 496 0000",
            active=True,
            service_areas=["london"],
            products=["solar_pv", "battery", "heat_pump"],
            cycle_cap=None,
            price_per_lead=Decimal("25.00"),
            billing_anchor_day=1,
        )
        for number in range(1, count + 1)
    ]
    db.session.add_all(installers)
    db.session.commit()
    return installers


def ready_lead(number: int, actor: User):
    lead = lead_services.create_lead(
        lead_services.LeadInput(
            customer_name=f"Customer {number}",
            email=f"customer{number}@example.com",
            postcode="SW1A 1AA",
            product_interest="solar_pv",
            selected_path="compare_quotes",
        ),
        source="load",
        external_id=f"load-{number}",
    )
    lead_services.change_status(lead, "reviewing", actor)
    lead_services.change_status(lead, "ready_to_route", actor)
    return lead


def queued_assignments(count: int, installers: list[Installer], actor: User) -> list[int]:
    """`count` leads, each assigned to one installer (round robin); committed, not enqueued."""
    ids = []
    for number in range(count):
        lead = ready_lead(number, actor)
        installer = installers[number % len(installers)]
        ids.extend(a.id for a in services.assign_installers(lead, [installer.id], actor))
        if number % 100 == 99:
            db.session.commit()
    db.session.commit()
    return ids


class _Counting:
    def __init__(self):
        self.accepted = 0

    async def handle_DATA(self, server, session, envelope):
        self.accepted += 1
        return "250 2.0.0 OK"


class SmtpSink:
    """A real SMTP server (aiosmtpd) that accepts everything and counts it."""

    def __init__(self, handler=None):
        self.port = free_port()
        self.handler = handler or _Counting()
        self.controller = Controller(self.handler, hostname="127.0.0.1", port=self.port)

    def start(self) -> "SmtpSink":
        self.controller.start()
        return self

    def stop(self) -> None:
        self.controller.stop()
