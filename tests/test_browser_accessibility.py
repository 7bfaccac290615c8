"""Every page each role sees, audited by axe-core in Chromium: no violations of its rules.

The operator's pages are audited signed in as an operator, the managers' and admins' as an admin
(whose header has every link); the installer's signed pages at a desktop and a phone width. Each
page is audited as it first shows and in the states that change its markup: an open dialog, an
empty result, a form refused with its errors. (The Caught mail pages exist only under `make run`.)

axe-playwright-python puts axe into the page with Playwright's evaluate, which the page's
Content-Security-Policy does not govern, so the audit runs under the real CSP.
"""

import pytest
import sqlalchemy as sa
from axe_playwright_python.sync_playwright import Axe

from ied.delivery import services as delivery
from ied.delivery.links import link_token
from ied.delivery.models import Assignment, DeliveryEvent
from ied.demo import seed_demo
from ied.extensions import db
from ied.followups.models import FollowUp
from ied.installers.models import Installer
from ied.intake.services import create_api_key
from ied.leads.models import Lead

pytestmark = pytest.mark.browser

AXE = Axe()
# axe leaves two rules off by default that these pages should meet: target-size (WCAG 2.2 AA,
# 24 px targets: the installers tap their pages on phones) and duplicate-id.
OPTIONS = {
    "resultTypes": ["violations"],
    "rules": {"target-size": {"enabled": True}, "duplicate-id": {"enabled": True}},
}


def violations(page, name: str) -> list[str]:
    """One line per violation axe finds on the page as it is now: page, rule, impact, targets."""
    found = AXE.run(page, options=OPTIONS).response["violations"]
    return [
        f"{name}: {rule['id']} ({rule['impact']}) {[node['target'] for node in rule['nodes']]}"
        for rule in found
    ]


def test_every_staff_page_passes_axe(browser_page, browser_login, live_server, make_lead):
    seed_demo(lead_count=20)
    create_api_key("website")
    db.session.commit()
    ready = make_lead("ready_to_route", postcode="SW1A 1AA")
    page = browser_page
    page.set_viewport_size({"width": 1280, "height": 900})
    url = live_server.url
    found: list[str] = []

    def audit(path: str | None, name: str | None = None) -> None:
        if path is not None:
            page.goto(f"{url}{path}")
        found.extend(violations(page, name or path))

    def audit_refused(name: str) -> None:
        """Submit the page's form as it is (empty or wrong) and audit the page that refuses it."""
        with page.expect_navigation():
            page.click("main form button[type=submit]")
        audit(None, name)

    audit("/login")
    page.fill("input[name=email]", "nobody@ied.test")
    page.fill("input[name=password]", "wrong password")
    audit_refused("login refused")
    operator_id = browser_login("operator").id
    audit("/", "today's work")
    for tab in ("new", "reviewing", "ready_to_route", "assigned", "attention"):
        audit(f"/leads?tab={tab}")
    audit("/leads?tab=assigned&q=Smith", "queue search")
    audit("/leads?tab=new&q=nobody-matches-this", "queue search, no match")
    page.keyboard.press("?")
    page.wait_for_selector("#keyboard-help", state="visible")
    audit(None, "queue, keyboard help")
    page.keyboard.press("Escape")
    page.goto(f"{url}/leads?tab=new")
    page.click("table.queue button:has-text('Start review')")
    page.wait_for_selector("table.queue [data-status=reviewing]")
    audit(None, "queue, a row advanced in place")
    page.goto(f"{url}/leads?tab=ready_to_route")
    page.click(f"#lead-{ready.reference} a:has-text('Assign')")
    page.wait_for_selector("#assign-dialog:modal")
    audit(None, "queue, assign dialog open")
    page.click("#assign-dialog button[type=submit]")
    page.wait_for_selector("#assign-dialog:modal >> text=Deliveries are queued.")
    audit(None, "queue, assign dialog after assigning")
    audit(f"/leads/{ready.reference}/assign", "lead page, assign dialog open without htmx")
    assigned = db.session.scalar(
        sa.select(Lead).join(Lead.assignments).where(Assignment.status == "failed")
    )
    audit(f"/leads/{assigned.reference}", "lead page with assignments")
    follow_up = db.session.scalar(sa.select(FollowUp).order_by(FollowUp.id))
    audit(f"/leads/{follow_up.lead.reference}", "lead page with a follow-up")
    audit(f"/leads/{follow_up.lead.reference}/follow-up/new", "a new follow-up's form")
    audit("/follow-ups")
    audit("/follow-ups?due=overdue", "follow-ups, overdue")
    audit("/follow-ups?q=nobody-matches-this", "follow-ups, no match")
    audit(f"/follow-ups/{follow_up.id}", "a follow-up")
    for status in ("in_progress", "completed"):
        worked = db.session.scalar(sa.select(FollowUp).where(FollowUp.status == status))
        audit(f"/follow-ups/{worked.id}", f"a follow-up {status}")
    audit("/leads/new")
    audit_refused("new lead refused")
    audit("/account/password")
    audit_refused("password change refused")
    audit("/no-such-page", "404 page")

    page.context.clear_cookies()
    browser_login("admin")
    audit("/dashboard")
    audit("/finance")
    audit("/finance/returns")
    with page.expect_navigation():
        page.click("table.returns button:has-text('Reject')")
    audit(None, "a return rejected without a remark")
    installer = db.session.scalar(sa.select(Installer).order_by(Installer.id))
    audit(f"/finance/statements/{installer.id}", "a statement")
    event = db.session.scalar(sa.select(DeliveryEvent).where(DeliveryEvent.voided_at.is_(None)))
    audit(f"/finance/events/{event.id}/void", "void a delivery")
    audit_refused("void refused")
    audit("/activity")
    audit("/installers")
    audit(f"/installers/{installer.id}/edit", "an installer's form")
    audit("/installers/new")
    audit_refused("new installer refused")
    audit("/admin/users")
    audit(f"/admin/users/{operator_id}/password", "reset a password")
    audit("/admin/api-keys")

    assert found == [], "\n".join(found)


@pytest.mark.parametrize("width", [1280, 375])
def test_the_installers_signed_pages_pass_axe(
    browser_page, live_server, make_lead, make_installer, operator, width
):
    lead = make_lead("ready_to_route", customer_name="Grace Hopper", phone="07700 900123")
    assignment = delivery.assign_installers(lead, [make_installer().id], operator)[0]
    db.session.commit()
    delivery.record_delivery_success(assignment.id)
    db.session.commit()
    page = browser_page
    page.set_viewport_size({"width": width, "height": 800})
    link = f"{live_server.url}/d/{link_token(assignment)}"
    found: list[str] = []

    def press_and_audit(button: str, name: str) -> None:
        with page.expect_navigation():
            page.click(button)
        found.extend(violations(page, f"{name} at {width} px"))

    page.goto(link)
    found.extend(violations(page, f"signed link landing at {width} px"))
    press_and_audit("text=Show the lead", "the shown lead")
    ask = "#lead-return button:has-text('Ask for a return')"
    press_and_audit(ask, "return asked with no reason")
    page.check("input[value=other]")
    press_and_audit(ask, "return asked for other without its text")
    page.fill("textarea[name=reason_text]", "The customer moved away")
    press_and_audit(ask, "return to confirm")
    press_and_audit("button:has-text('Yes, ask for the return')", "landing, return asked")
    press_and_audit("text=Show the lead", "the shown lead, return pending")
    for problem, address in (("tampered link", f"{link}x"), ("no such page", f"{link}/nothing")):
        page.goto(address)
        found.extend(violations(page, f"{problem} at {width} px"))
    assert found == [], "\n".join(found)
