"""The dashboard in Chromium: a manager lands on it, switches the period without a reload and
opens a failed delivery from the needs-action list."""

from pathlib import Path

import pytest

from ied.demo import seed_demo
from ied.extensions import db

pytestmark = pytest.mark.browser

SCREENSHOT = Path(__file__).resolve().parent.parent / "docs" / "screenshots" / "dashboard.png"


@pytest.fixture
def demo_data(app):
    seed_demo(lead_count=150)
    db.session.commit()


def test_a_manager_lands_on_the_dashboard_switches_the_period_and_opens_a_failed_delivery(
    browser_page, browser_login, live_server, demo_data
):
    page = browser_page
    page.set_viewport_size({"width": 1280, "height": 900})
    browser_login("manager")
    assert page.url == f"{live_server.url}/dashboard"
    assert page.get_attribute("#deliveries-chart", "data-days") == "30"
    assert page.locator("#deliveries-chart .day").count() == 30
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOT), full_page=True)
    page.evaluate("window.__marker = 'still here'")

    page.click("#period-panels a[data-period='7']")
    page.wait_for_url(f"{live_server.url}/dashboard?period=7")
    page.wait_for_selector("#deliveries-chart[data-days='7']")
    assert page.locator("#deliveries-chart .day").count() == 7
    assert page.locator("#new-leads-table tbody tr").count() == 7
    assert page.get_attribute("#period-panels a[data-period='7']", "aria-current") == "page"
    assert page.evaluate("window.__marker") == "still here"  # swapped, not reloaded

    failed = page.locator("#needs-action tr:has(.badge-failed) a.ref").first
    assignment = failed.get_attribute("href").split("#assignment-")[1]
    reference = failed.inner_text()
    failed.click()
    page.wait_for_url(f"{live_server.url}/leads/{reference}#assignment-{assignment}")
    assert "550" in page.inner_text(f"#assignment-{assignment}")
    assert page.console_errors == []


@pytest.mark.nojs
def test_the_period_switch_works_without_javascript(
    browser_page, browser_login, live_server, demo_data
):
    page = browser_page
    browser_login("manager")
    page.click("#period-panels a[data-period='90']")
    page.wait_for_url(f"{live_server.url}/dashboard?period=90")
    assert page.locator("#deliveries-chart .day").count() == 90
    assert page.locator("#status-table tbody tr").count() == 4
