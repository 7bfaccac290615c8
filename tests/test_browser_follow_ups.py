"""Follow-ups in Chromium: the managers' filters over htmx, and an operator working one."""

from datetime import UTC, datetime, timedelta

import pytest

from tests.support.follow_ups import end_of_today, make_follow_up

pytestmark = pytest.mark.browser


def row_states(page) -> list[str]:
    return page.eval_on_selector_all(
        "#follow-up-results tbody tr", "rows => rows.map(r => r.dataset.dueState)"
    )


def test_a_manager_filters_overdue_without_a_reload_and_back_restores_the_filter(
    browser_page, browser_login, live_server, make_lead, make_installer, operator
):
    now = datetime.now(UTC)
    for due_at in (
        now - timedelta(days=6),
        now - timedelta(days=2),
        end_of_today(),
        now + timedelta(days=3),
        now + timedelta(days=8),
    ):
        make_follow_up(make_lead, make_installer, operator, due_at)
    browser_login("manager")
    page = browser_page
    page.set_viewport_size({"width": 1300, "height": 700})
    page.goto(f"{live_server.url}/follow-ups")
    assert sorted(row_states(page)) == ["due_today", "overdue", "overdue", "upcoming", "upcoming"]
    page.evaluate("window.__marker = 'still here'")

    page.click("#due-tabs a[data-due=overdue]")
    page.wait_for_url(f"{live_server.url}/follow-ups?due=overdue")
    page.wait_for_selector("#due-tabs a[data-due=overdue][aria-current=page]")
    assert row_states(page) == ["overdue", "overdue"]
    assert "6 days overdue" in page.inner_text("#follow-up-results")
    page.screenshot(path="/tmp/ied-follow-ups-overdue.png", full_page=True)

    page.click("#due-tabs a[data-due=upcoming]")
    page.wait_for_url(f"{live_server.url}/follow-ups?due=upcoming")
    page.wait_for_function(
        "document.querySelectorAll('#follow-up-results tbody tr').length == 2"
        " && document.querySelector('tr[data-due-state=upcoming]')"
    )
    page.go_back()
    page.wait_for_url(f"{live_server.url}/follow-ups?due=overdue")
    page.wait_for_selector("#due-tabs a[data-due=overdue][aria-current=page]")
    page.wait_for_function("!document.querySelector('tr[data-due-state=upcoming]')")
    assert row_states(page) == ["overdue", "overdue"]
    assert page.evaluate("window.__marker") == "still here"  # never a full reload
    assert page.console_errors == []


def test_an_operator_works_a_follow_up_to_closed_with_issue_then_resolves_it(
    browser_page, browser_login, live_server, make_lead, make_installer, operator
):
    follow_up = make_follow_up(
        make_lead,
        make_installer,
        operator,
        datetime.now(UTC) + timedelta(days=1),
        phone="07700 900123",
    )
    browser_login("operator")
    page = browser_page
    page.set_viewport_size({"width": 1300, "height": 900})
    page.on("dialog", lambda dialog: dialog.accept())
    page.goto(f"{live_server.url}/follow-ups/{follow_up.id}")
    page.evaluate("window.__marker = 'still here'")
    status = "#follow-up-summary [data-follow-up-status]"
    assert page.get_attribute(status, "data-follow-up-status") == "pending"

    page.click("text=Start working it")
    page.wait_for_selector("#follow-up-summary [data-follow-up-status=in_progress]")

    page.click("#follow-up-summary button:has-text('Close')")  # refused: nobody reached yet
    page.wait_for_selector("#follow-up-summary [role=alert]:has-text('reached the customer')")

    page.check("#follow-up-attempts input[value=left_message]")
    page.fill("#follow-up-attempts textarea[name=note]", "Voicemail, will ring back")
    page.click("#follow-up-attempts button[type=submit]")
    page.wait_for_selector("#follow-up-attempts tr[data-outcome=left_message]")
    assert page.inner_text("#follow-up-summary [data-attempt-count]") == "1"

    page.check("#follow-up-attempts input[value=reached_customer]")
    page.click("#follow-up-attempts button[type=submit]")
    page.wait_for_selector("#follow-up-summary [data-attempt-count]:has-text('2')")
    assert "Reached customer" in page.inner_text("#follow-up-summary [data-last-contact]")

    page.check("#follow-up-outcome input[value=unsatisfied]")
    page.check("#follow-up-outcome input[name=has_issue]")
    page.fill("#follow-up-outcome textarea[name=issue_summary]", "Scaffolding left in the garden")
    page.click("#follow-up-outcome button[type=submit]")
    page.wait_for_selector("#follow-up-summary button:has-text('Close with open issue')")
    page.screenshot(path="/tmp/ied-follow-up-working.png", full_page=True)

    page.click("#follow-up-summary button:has-text('Close with open issue')")
    page.wait_for_selector("#follow-up-summary [data-follow-up-status=closed_with_issue]")
    assert page.locator("#follow-up-attempts form").count() == 0  # closed: no more attempts

    page.click("text=Mark issue resolved")
    page.wait_for_selector("#follow-up-summary dd:has-text('Resolved')")
    assert page.get_attribute(status, "data-follow-up-status") == "closed_with_issue"
    assert page.evaluate("window.__marker") == "still here"
    page.screenshot(path="/tmp/ied-follow-up-closed.png", full_page=True)
    # The refused close answered 409 on purpose; Chromium logs every 4xx. Nothing else failed.
    assert [e for e in page.console_errors if "409 (CONFLICT)" not in e] == []


def test_a_tab_clicked_straight_after_a_search_shows_that_tab_not_the_search_alone(
    browser_page, browser_login, live_server, make_lead, make_installer, operator
):
    """Leaving the search box for a tab fires its `change` (the form's request) just before the
    tab's own request; the form's answer must not win and leave the tab's table unswapped."""
    now = datetime.now(UTC)
    for due_at in (now - timedelta(days=3), now + timedelta(days=4)):
        make_follow_up(make_lead, make_installer, operator, due_at, customer_name="Grace Khan")
    make_follow_up(make_lead, make_installer, operator, now + timedelta(days=5))
    browser_login("manager")
    page = browser_page
    page.goto(f"{live_server.url}/follow-ups")
    page.click("#q")
    page.keyboard.type("Khan")
    page.wait_for_function(
        "() => document.querySelectorAll('#follow-up-results tbody tr').length == 2"
    )

    page.click("#due-tabs a[data-due=overdue]")
    page.wait_for_url(f"{live_server.url}/follow-ups?due=overdue&q=Khan")
    page.wait_for_selector("#due-tabs a[data-due=overdue][aria-current=page]")
    page.wait_for_load_state("networkidle")
    assert row_states(page) == ["overdue"]

    page.check("#issue")  # the other filters still ask as soon as they change
    page.wait_for_selector("#follow-up-results .empty")
    page.fill("#q", "")  # as the search box's clear button does
    page.wait_for_url(lambda url: "q=&" in url)
    assert page.console_errors == []
