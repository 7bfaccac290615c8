"""The strict Content-Security-Policy raises no violation in Chromium, on any page, while the
journeys run: every page of the URL map, htmx swaps on the queue, the lead page and the
follow-ups, the installer's signed page and its button, and the error pages.

A `securitypolicyviolation` listener is installed in every document before its own scripts run
(page.add_init_script) and reports each violation to the test through an exposed binding, so
violations on pages navigated away from are kept too.
"""

import pytest

from tests.test_access_matrix import make_url_values, url_for_rule

pytestmark = pytest.mark.browser

LISTENER = """
document.addEventListener("securitypolicyviolation", (event) => {
  window.__reportCspViolation({
    page: location.href,
    directive: event.violatedDirective,
    blocked: event.blockedURI,
    source: event.sourceFile,
    line: event.lineNumber,
    sample: event.sample,
  });
});
"""


@pytest.fixture
def watched_page(browser_page):
    violations = []
    browser_page.expose_binding(
        "__reportCspViolation", lambda source, violation: violations.append(violation)
    )
    browser_page.add_init_script(LISTENER)
    browser_page.csp_violations = violations
    return browser_page


def test_no_page_or_journey_raises_a_csp_violation(
    app, watched_page, browser_login, live_server, make_user, make_lead, make_installer, operator
):
    page = watched_page
    values = make_url_values(make_user, make_lead, make_installer, operator)
    new_lead = make_lead("new")
    base = live_server.url

    # The installer's signed page: the landing page and its button (no login, no script).
    page.goto(f"{base}/d/{values['token']}")
    page.click("text=Show the lead")
    page.wait_for_selector("text=Assessment")
    page.goto(f"{base}/d/not-a-valid-token")

    browser_login("admin")
    visited = []
    for rule in sorted(app.url_map.iter_rules(), key=lambda rule: rule.rule):
        if "GET" not in rule.methods or rule.endpoint in {"static", "auth.login"}:
            continue
        if rule.rule.endswith(".csv"):  # a download, not a page
            continue
        url = base + url_for_rule(rule.rule, values)
        page.goto(url)
        page.wait_for_load_state("networkidle")
        visited.append(rule.endpoint)
    assert {"leads.queue", "leads.show", "followups.index", "installers.index"} <= set(visited)

    # Journeys with htmx swaps.
    page.goto(f"{base}/leads")
    page.click(f"tr:has-text('{new_lead.reference}') >> text=Start review")
    page.wait_for_selector(f"tr:has-text('{new_lead.reference}') >> text=Reviewing")
    page.fill("input[name=q]", new_lead.customer_name)
    page.wait_for_load_state("networkidle")
    page.goto(f"{base}/leads/{values['reference']}")
    page.wait_for_selector("#assignments-panel")
    page.goto(f"{base}/follow-ups")
    page.click("#due-tabs a[data-due=overdue]")
    page.wait_for_load_state("networkidle")
    page.goto(f"{base}/follow-ups/{values['follow_up_id']}")
    page.wait_for_load_state("networkidle")
    page.goto(f"{base}/leads/IED-999999")  # the 404 page

    assert page.csp_violations == []
    assert [e for e in page.console_errors if "Content Security Policy" in e] == []


def test_the_listener_reports_a_violation_when_there_is_one(watched_page, live_server):
    """The control: an inline script is what the policy forbids, and the listener says so."""
    watched_page.goto(f"{live_server.url}/login")
    watched_page.evaluate("""() => {
        const script = document.createElement("script");
        script.textContent = "window.ran = true";
        document.body.append(script);
    }""")
    watched_page.wait_for_function("() => true")
    watched_page.wait_for_timeout(200)
    assert [v["directive"] for v in watched_page.csp_violations] == ["script-src-elem"]
    assert watched_page.evaluate("window.ran") is None
