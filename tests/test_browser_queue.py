"""An operator takes a lead from `new` to `assigned` in Chromium, with and without JavaScript."""

import pytest

pytestmark = pytest.mark.browser


@pytest.fixture
def routing_setup(make_installer, make_lead):
    """A compare_quotes lead in London, two installers who can take it, two who cannot."""
    eligible = [
        make_installer(company_name="Brightside Solar", cycle_cap=40),
        make_installer(company_name="Capital Energy"),
    ]
    make_installer(company_name="Highland Energy", service_areas=["scotland"])
    make_installer(company_name="Coastal Installs", active=False)
    older = make_lead("new", customer_name="Earlier Enquiry", email="older@example.com")
    lead = make_lead(
        "new", customer_name="Grace Hall", email="grace@example.com", selected_path="compare_quotes"
    )
    return lead, eligible, older


def count(page, tab: str) -> str:
    return page.inner_text(f'#queue-tabs [data-count="{tab}"]')


def assign_in_dialog(page, installers, screenshot: str) -> None:
    """The dialog explains who is left out and why; choosing two installers assigns the lead."""
    dialog = page.inner_text("#assign-dialog")
    assert "Highland Energy" in dialog and "outside area" in dialog
    assert "Coastal Installs" in dialog and "paused" in dialog
    assert "used 0 of 40 this cycle" in dialog
    page.screenshot(path=screenshot, full_page=True)
    for installer in installers:
        page.check(f'#assign-dialog input[value="{installer.id}"]')
    page.click("#assign-dialog button[type=submit]")
    page.wait_for_selector('.page-head [data-status="assigned"]')
    assert page.is_visible("text=Deliveries are queued.")


def test_operator_routes_a_lead_without_a_page_reload(
    browser_page, browser_login, live_server, routing_setup
):
    page = browser_page
    lead, eligible, _ = routing_setup
    browser_login("operator")
    page.goto(f"{live_server.url}/leads")
    assert count(page, "new") == "2" and count(page, "reviewing") == "0"
    page.evaluate("window.__marker = 'same page'")

    page.click(f"#lead-{lead.reference} button:has-text('Start review')")
    page.wait_for_selector(f'#lead-{lead.reference} [data-status="reviewing"]')
    assert count(page, "new") == "1" and count(page, "reviewing") == "1"

    # The keyboard: j selects the first row (the newest: this lead), a runs its next action.
    page.keyboard.press("j")
    page.keyboard.press("a")
    page.wait_for_selector(f'#lead-{lead.reference} [data-status="ready_to_route"]')
    assert count(page, "reviewing") == "0" and count(page, "ready_to_route") == "1"
    assert page.evaluate("window.__marker") == "same page"  # no full page load
    page.keyboard.press("?")
    assert page.is_visible("#keyboard-help")
    page.keyboard.press("Escape")
    page.screenshot(path="/tmp/ied-queue.png", full_page=True)

    page.click(f"#lead-{lead.reference} a:has-text('Assign')")
    page.wait_for_selector("#assign-dialog:modal")
    assign_in_dialog(page, eligible, "/tmp/ied-assign-dialog.png")
    assert page.is_visible("text=Brightside Solar") and page.is_visible("text=Capital Energy")
    page.screenshot(path="/tmp/ied-lead-assigned.png", full_page=True)
    assert page.console_errors == []


@pytest.mark.nojs
def test_operator_routes_a_lead_without_javascript(
    browser_page, browser_login, live_server, routing_setup
):
    page = browser_page
    lead, eligible, _ = routing_setup
    browser_login("operator")
    page.goto(f"{live_server.url}/leads")
    page.click(f"#lead-{lead.reference} button:has-text('Start review')")
    page.wait_for_selector(f"text={lead.reference} is now reviewing.")
    assert count(page, "new") == "1" and count(page, "reviewing") == "1"

    page.goto(f"{live_server.url}/leads?tab=reviewing")
    page.click(f"#lead-{lead.reference} button:has-text('Approve for routing')")
    page.wait_for_selector(f"text={lead.reference} is now ready to route.")
    assert count(page, "ready_to_route") == "1"

    page.goto(f"{live_server.url}/leads?tab=ready_to_route")
    page.click(f"#lead-{lead.reference} a:has-text('Assign')")
    page.wait_for_selector("#assign-dialog[open]")
    assign_in_dialog(page, eligible, "/tmp/ied-assign-nojs.png")
