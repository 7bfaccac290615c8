"""Finance in Chromium: an installer asks for a return on the signed page, a manager approves
it on the finance returns tab, and the delivery event shows voided in finance."""

from decimal import Decimal
from pathlib import Path

import pytest
from playwright.sync_api import expect

from ied.delivery.links import link_url
from ied.extensions import db
from tests.support.billing import billed_delivery

pytestmark = pytest.mark.browser

SCREENSHOT = Path(__file__).resolve().parent.parent / "docs" / "screenshots" / "finance.png"


def test_installer_asks_for_a_return_and_the_manager_approves_it_in_finance(
    browser_page, browser_login, live_server, make_lead, make_installer, operator, chromium
):
    solar = make_installer(
        company_name="Bright Solar", price_per_lead=Decimal("35.00"), cycle_cap=20
    )
    heat = make_installer(company_name="Warm Homes Heat", price_per_lead=Decimal("48.00"))
    event = billed_delivery(make_lead, solar, operator, customer_name="Ada Byron")
    for _ in range(3):
        billed_delivery(make_lead, solar, operator)
    for _ in range(2):
        billed_delivery(make_lead, heat, operator)
    link = link_url(event.assignment)
    db.session.commit()

    # The installer, in a browser of its own (no cookie, no script on these pages).
    installer = chromium.new_context(java_script_enabled=False).new_page()
    try:
        installer.goto(link)
        installer.click("text=Show the lead")
        installer.wait_for_selector("#lead-return[data-return-state=open]")
        assert "Ada Byron" in installer.inner_text("main")
        installer.set_viewport_size({"width": 1280, "height": 900})
        installer.screenshot(path="/tmp/ied-installer-return-form.png", full_page=True)
        installer.check("input[name=reason][value=customer_unreachable]")
        installer.click("text=Ask for a return")
        installer.click("text=Yes, ask for the return")  # asked once, never changed: it checks
        # Back on the link's page (post, redirect, get), which says the request was sent.
        installer.wait_for_selector("text=You asked for a return of this lead")
        installer.click("text=Show the lead")
        installer.wait_for_selector("#lead-return[data-return-state=pending]")
        assert "IED is reviewing it" in installer.inner_text("#lead-return")
    finally:
        installer.context.close()

    browser_login("manager")
    page = browser_page
    page.set_viewport_size({"width": 1280, "height": 800})
    page.goto(f"{live_server.url}/finance/returns")
    page.screenshot(path="/tmp/ied-finance-returns.png", full_page=True)
    row = page.locator("#return-requests tbody tr").first
    assert "Customer unreachable" in row.inner_text()
    row.locator("textarea[name=remark]").fill("Number disconnected")
    page.once("dialog", lambda dialog: dialog.accept())  # decisions are final: it asks first
    row.locator("button[value=approve]").click()
    page.wait_for_url(f"{live_server.url}/finance/returns")
    assert "approved: its delivery is voided" in page.inner_text(".flashes")

    page.goto(f"{live_server.url}/finance")
    voided = page.locator(f"#event-{event.id}")
    assert voided.get_attribute("data-event-status") == "voided"
    assert "Return approved: Customer unreachable (Number disconnected)" in voided.inner_text()
    assert page.inner_text("[data-total=billed_count]") == "5"
    assert page.inner_text("[data-total=voided_count]") == "1"

    # Filters swap the results over htmx and keep the URL.
    page.evaluate("window.__stillHere = true")
    page.select_option("select[name=state]", "voided")
    page.wait_for_url(f"{live_server.url}/finance?*state=voided*")
    expect(page.locator("#finance-events tbody tr")).to_have_count(1)
    assert page.evaluate("window.__stillHere") is True
    page.select_option("select[name=state]", "")
    expect(page.locator("#finance-events tbody tr")).to_have_count(6)
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOT), full_page=True)
    page.click("#finance-totals tbody tr:first-child >> text=Statement")
    page.wait_for_selector("#statement-summary")
    page.screenshot(path="/tmp/ied-finance-statement.png", full_page=True)
    assert page.console_errors == []

    # Voiding without a reason is refused inline at once (no "go ahead?" for what cannot go
    # ahead); with one, it asks for confirmation.
    page.goto(f"{live_server.url}/finance")
    page.click(f"#event-{event.id + 1} >> text=Void…")
    prompts = []
    page.on("dialog", lambda dialog: (prompts.append(dialog.message), dialog.dismiss()))
    page.click("text=Void this delivery")
    page.wait_for_selector(".field.has-error")
    assert prompts == []
    # Focus is on the refused field, where the fix is typed, not at the top of the page.
    assert page.evaluate("document.activeElement.name") == "reason"
    page.screenshot(path="/tmp/ied-finance-void.png", full_page=True)
    page.fill("textarea[name=reason]", "Duplicate of another delivery")
    page.click("text=Void this delivery")
    page.wait_for_timeout(300)
    assert prompts and prompts[0].startswith(f"Void delivery event {event.id + 1}")
    assert page.locator(".field.has-error").count() == 1  # dismissed: nothing was sent


@pytest.mark.parametrize("decision", ["approve", "reject"])
def test_a_return_decision_asks_first_and_cancelling_it_decides_nothing(
    browser_page, browser_login, live_server, make_lead, make_installer, operator, decision
):
    """Approving credits the installer and rejecting keeps the bill; both are final, so each
    button names what it does before it does it, like voiding."""
    from ied.finance import services as finance

    solar = make_installer(company_name="Bright Solar", price_per_lead=Decimal("35.00"))
    event = billed_delivery(make_lead, solar, operator)
    finance.request_return(event.id, "customer_unreachable", None)
    db.session.commit()
    browser_login("manager")
    page = browser_page
    page.goto(f"{live_server.url}/finance/returns")
    row = page.locator("#return-requests tbody tr").first
    row.locator("textarea[name=remark]").fill("Number disconnected")
    prompts = []
    page.once("dialog", lambda dialog: (prompts.append(dialog.message), dialog.dismiss()))
    row.locator(f"button[value={decision}]").click()
    page.wait_for_timeout(300)
    assert prompts and event.lead.reference in prompts[0] and "Bright Solar" in prompts[0]
    assert ("£35.00" in prompts[0]) is (decision == "approve")
    assert page.url == f"{live_server.url}/finance/returns"
    assert row.get_attribute("data-return-status") == "pending"
    assert row.locator("textarea[name=remark]").input_value() == "Number disconnected"

    page.once("dialog", lambda dialog: dialog.accept())
    row.locator(f"button[value={decision}]").click()
    page.wait_for_selector(".flashes")
    verb = "approved" if decision == "approve" else "rejected"
    assert f"Return of {event.lead.reference} {verb}" in page.inner_text(".flashes")
    assert page.console_errors == []


def test_rejecting_a_return_without_a_remark_is_refused_without_asking_first(
    browser_page, browser_login, live_server, make_lead, make_installer, operator
):
    from ied.finance import services as finance

    event = billed_delivery(make_lead, make_installer(company_name="Bright Solar"), operator)
    finance.request_return(event.id, "customer_unreachable", None)
    db.session.commit()
    browser_login("manager")
    page = browser_page
    page.goto(f"{live_server.url}/finance/returns")
    prompts = []
    page.on("dialog", lambda dialog: (prompts.append(dialog.message), dialog.dismiss()))
    row = page.locator("#return-requests tbody tr").first
    row.locator("button[value=reject]").click()
    page.wait_for_selector("#return-requests p.error[role=alert]")
    assert prompts == []
    assert (
        page.locator("#return-requests tbody tr").first.get_attribute("data-return-status")
        == "pending"
    )
