"""At 1024 px (and up) the tables fit their card: no column (their row actions last) is pushed
out of sight behind a horizontal scroll; at 1024 px the top bar fits the screen."""

import os
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from ied.delivery import services as delivery
from ied.extensions import db
from ied.finance import services as finance
from ied.followups import services as followups
from ied.leads.queries import QUEUE_TABS
from tests.conftest import TEST_PASSWORD
from tests.support.follow_ups import deliver, end_of_today, make_follow_up
from tests.support.live_server import LiveServer


def overflow(page) -> int:
    """How many pixels the page's data table is wider than the box that holds it."""
    return page.evaluate(
        "() => { const t = document.querySelector('table.data');"
        " return t.scrollWidth - t.closest('.table-wrap').clientWidth; }"
    )


@pytest.mark.parametrize("width", [1024, 1280])
def test_the_installers_table_fits_at_1280_and_1024_px(
    browser_page, browser_login, live_server, make_installer, width
):
    for number in range(3):
        make_installer(
            company_name=f"Midlands Solar Works {number}",
            contact_name="Gareth Lloyd",
            phone="0161 496 0000",
            delivery_email=f"leads{number}@brightside-solar.example",
            service_areas=["north_west", "yorkshire"],
            products=["solar_pv", "battery", "heat_pump"],
            cycle_cap=40,
            price_per_lead=Decimal("38.50"),
            billing_anchor_day=15,
        )
    browser_page.set_viewport_size({"width": width, "height": 900})
    browser_login("manager")
    browser_page.goto(f"{live_server.url}/installers")
    browser_page.screenshot(path=f"/tmp/ied-installers-{width}.png", full_page=True)
    assert overflow(browser_page) <= 0
    assert browser_page.get_by_role("button", name="Pause").first.is_visible()


def test_the_ready_to_route_tab_fits_at_1280_px_with_compact_rows(
    browser_page, browser_login, live_server, make_installer, make_lead
):
    london = [
        make_installer(company_name=f"Brightside Solar & Storage {n}", service_areas=["london"])
        for n in range(2)
    ]
    make_installer(company_name="Northern Heat Pumps Ltd", service_areas=["north_west"])
    for n in range(3):
        make_lead(
            "ready_to_route",
            customer_name=f"Alexandra Fitzgerald-Montgomery {n}",
            product_interest="battery",
            recommended_installer_id=london[0].id,
        )
    nobody = make_lead(
        "ready_to_route",
        customer_name="Hamish MacDonald-Stewart",
        postcode="KW15 1HR",
        product_interest="heat_pump",
        selected_path="compare_quotes",
        recommended_installer_id=london[1].id,
    )
    browser_page.set_viewport_size({"width": 1280, "height": 900})
    browser_login("manager")
    browser_page.goto(f"{live_server.url}/leads?tab=ready_to_route")
    row = browser_page.locator(f"#lead-{nobody.reference}")
    assert "nobody can take it" in row.inner_text()
    browser_page.screenshot(path="/tmp/leadbill-ready-to-route.png", full_page=True)
    assert overflow(browser_page) <= 0
    action = row.locator("td.row-action")
    box, viewport = action.bounding_box(), browser_page.viewport_size
    assert box["x"] + box["width"] <= viewport["width"]
    assert row.get_by_role("link", name="Open installers").is_visible()
    assert row.bounding_box()["height"] <= 120


@pytest.mark.parametrize("role", ["operator", "manager", "admin"])
def test_the_top_bar_fits_1024_px_on_one_line_for_every_role(
    browser_page, browser_login, live_server, role
):
    """An admin's eight links, the brand and who is signed in: no label broken over two lines,
    nothing pushed off the right edge (Sign out used to be half out of sight)."""
    browser_page.set_viewport_size({"width": 1024, "height": 700})
    user = browser_login(role)
    page = browser_page
    assert page.evaluate("() => document.documentElement.scrollWidth") <= 1024
    assert page.evaluate("() => document.querySelector('.topbar').offsetHeight") <= 48
    sign_out = page.get_by_role("button", name="Sign out").bounding_box()
    assert sign_out["x"] + sign_out["width"] <= 1024
    line = page.evaluate(
        "() => parseFloat(getComputedStyle(document.querySelector('.topbar nav a')).lineHeight)"
    )
    heights = page.eval_on_selector_all(
        ".topbar nav a, .topbar .brand, .whoami a, .whoami button",
        "els => els.map(e => e.getBoundingClientRect().height)",
    )
    assert all(height < 2 * line for height in heights)
    assert page.get_attribute(".whoami .role", "title") == user.email


def test_a_follow_up_with_its_contact_log_fits_1024_px(
    browser_page, browser_login, live_server, make_lead, make_installer, operator
):
    """The contact log's table used to push its column (and the page) past the window, and a
    long email ran out of the summary card."""

    follow_up = make_follow_up(
        make_lead,
        make_installer,
        operator,
        datetime.now(UTC) + timedelta(days=2),
        email="maximilian.fitzgerald-montgomery@a-very-long-domain-name.example.co.uk",
    )
    followups.log_contact_attempt(follow_up, "left_message", operator, "Voicemail, ring back")
    followups.log_contact_attempt(follow_up, "reached_customer", operator, "Spoke to them")
    db.session.commit()
    browser_page.set_viewport_size({"width": 1024, "height": 800})
    browser_login("operator")
    page = browser_page
    page.goto(f"{live_server.url}/follow-ups/{follow_up.id}")
    assert page.evaluate("() => document.documentElement.scrollWidth") <= 1024
    for card in ("#follow-up-summary", "#follow-up-attempts"):
        box = page.locator(card).bounding_box()
        assert box["x"] + box["width"] <= 1024
    summary = page.locator("#follow-up-summary").bounding_box()
    email = page.locator("#follow-up-summary a[href^=mailto]").bounding_box()
    assert email["x"] + email["width"] <= summary["x"] + summary["width"]
    assert page.locator("#follow-up-attempts th:has-text('Note')").is_visible()
    log = page.locator("#follow-up-attempts .table-wrap")
    assert log.evaluate("e => e.scrollWidth <= e.clientWidth")  # every column in sight


BADGE_CONTRAST = """() => [...document.querySelectorAll('.badge')].map(badge => {
  const rgb = c => c.match(/\\d+(\\.\\d+)?/g).slice(0, 3).map(Number);
  const lum = c => { const [r, g, b] = rgb(c).map(v => { v /= 255;
    return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; });
    return 0.2126 * r + 0.7152 * g + 0.0722 * b; };
  const style = getComputedStyle(badge);
  const [a, b] = [lum(style.color), lum(style.backgroundColor)];
  return [badge.className, (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05)];
})"""


def test_every_status_badge_is_readable_small_text(
    browser_page, browser_login, live_server, make_lead, make_installer, operator
):
    """Badges are 12 px text: WCAG AA asks 4.5:1 of their colour on their background (the
    amber of Ready to route, Pending, Queued and due today gave 4.39:1)."""

    for status in ("new", "reviewing", "ready_to_route"):
        make_lead(status)
    make_follow_up(make_lead, make_installer, operator, end_of_today())
    make_follow_up(make_lead, make_installer, operator, datetime.now(UTC) - timedelta(days=2))
    browser_login("manager")
    page = browser_page
    for path in ("/dashboard", "/follow-ups"):
        page.goto(f"{live_server.url}{path}")
        badges = page.evaluate(BADGE_CONTRAST)
        assert badges
        assert [(name, round(ratio, 2)) for name, ratio in badges if ratio < 4.5] == []


def test_an_assigned_lead_does_not_look_delivered(
    browser_page, browser_login, live_server, make_lead, make_installer, operator
):
    """The lead contract: assigned means captured into distribution, not delivered. Its badge
    is not the green of a sent delivery, and both stay readable."""
    lead = deliver(make_lead("ready_to_route"), [make_installer()], operator)
    browser_login("operator")
    page = browser_page
    page.goto(f"{live_server.url}/leads/{lead.reference}")
    colours = page.evaluate(
        """() => ['.badge-assigned', '.badge-sent'].map(
             selector => getComputedStyle(document.querySelector(selector)).backgroundColor)"""
    )
    assert colours[0] != colours[1], colours
    badges = dict(page.evaluate(BADGE_CONTRAST))
    assert badges["badge badge-assigned"] >= 4.5 and badges["badge badge-sent"] >= 4.5, badges


WIDER_THAN_THEIR_BOX = """() => [...document.querySelectorAll('main table.data')].map(table => {
  const box = table.closest('.table-wrap') || table.parentElement;
  return table.scrollWidth - box.clientWidth;
}).filter(over => over > 0)"""


@pytest.fixture
def busy_back_office(make_lead, make_installer, operator):
    """A day's worth of work with long names: leads in every tab (some nobody can take, some
    failing, some possible duplicates), delivered leads with follow-ups, contact logs and issues,
    returns waiting, and a lead whose delivery took two attempts. Returns that lead."""

    installers = [
        make_installer(
            company_name=f"{name} {n}",
            contact_name="Gareth Lloyd-Williams",
            delivery_email=f"new-leads.{n}@{domain}.co.uk",
            service_areas=["london", "north_west", "yorkshire"],
        )
        for n, (name, domain) in enumerate(
            [
                ("Brightside Solar & Storage", "brightside-solar-storage"),
                ("Capital Energy Renewables", "capital-energy-renewables"),
                ("Midlands Heat Pumps", "midlands-heat-pumps"),
            ]
        )
    ]
    make_installer(
        company_name="Highland Energy Co-operative",
        service_areas=["scotland"],
        products=["solar_pv"],
    )
    make_installer(company_name="Coastal Installs & Roofing", active=False)

    def customer(n: int, status: str = "new", **fields):
        values = {
            "customer_name": f"Alexandra Fitzgerald-Montgomery {n}",
            "email": f"alexandra.fitzgerald-montgomery.{n}@a-long-domain-name.example.co.uk",
            "phone": f"07700 900{n:03}",
        }
        return make_lead(status, **{**values, **fields})

    first = customer(0)
    for n in range(1, 6):
        customer(n, email=first.email if n % 2 else None)  # some possible duplicates
    for n in range(6, 10):
        customer(n, "reviewing", selected_path="recommended_installer")
    for n in range(10, 14):
        customer(n, "ready_to_route", recommended_installer_id=installers[n % 3].id)
    customer(14, "ready_to_route", postcode="KW15 1HR", product_interest="heat_pump")
    now = datetime.now(UTC)
    for n in range(15, 21):
        lead = deliver(customer(n, "ready_to_route"), installers[:2], operator)
        follow_up = followups.create_follow_up(
            lead, installers[n % 2].id, now + timedelta(days=n - 18), operator
        )
        followups.log_contact_attempt(follow_up, "left_message", operator, "Voicemail")
        followups.log_contact_attempt(follow_up, "reached_customer", operator, "Spoke to them")
        followups.record_outcome(
            follow_up,
            followups.Outcome(
                satisfaction_outcome="mixed",
                has_issue=n % 2 == 0,
                issue_summary="Scaffolding left on the drive for three weeks",
            ),
            operator,
        )
        event = lead.assignments[0].delivery_event
        finance.request_return(
            event.id, "other", "The customer says they never asked for a quote, twice over."
        )
    for n in range(21, 24):  # failing: they need attention
        (assignment,) = delivery.assign_installers(
            customer(n, "ready_to_route"), [installers[2].id], operator
        )
        delivery.record_delivery_failure(
            assignment.id,
            "550 5.1.1 <new-leads@midlands-heat-pumps.example.co.uk>: Recipient address "
            "rejected: User unknown in virtual mailbox table",
        )
    audited = customer(24, "ready_to_route")
    (assignment,) = delivery.assign_installers(audited, [installers[0].id], operator)
    for status, code, reply in [
        (
            "failed",
            451,
            "4.7.1 <new-leads.0@brightside-solar-storage.co.uk>: "
            "Recipient address rejected: Greylisted, please try again in 300 seconds",
        ),
        ("sent", 250, "2.0.0 Ok: queued as 4F3A2B1C0D9E"),
    ]:
        audit = delivery.begin_attempt(
            assignment, job_id="7c9e6679-7425-40de-944b-e07fc1f90ae7", lease_seconds=60
        )
        delivery.finish_attempt(audit, status=status, smtp_code=code, smtp_reply=reply)
    delivery.record_delivery_success(assignment.id)
    db.session.commit()
    return audited


@pytest.mark.parametrize("width", [1024, 1366])
def test_every_work_table_fits_its_box_at_1024_and_1366_px(
    browser_page, browser_login, live_server, busy_back_office, width
):
    """No column of the day's tables (the queue's Next action, a follow-up's Attempts and Issue,
    a return's Approve and Reject) hides behind a sideways scroll on a 1024 px laptop."""
    os.makedirs("/tmp/layout", exist_ok=True)
    page = browser_page
    page.set_viewport_size({"width": width, "height": 800})
    pages = {
        "operator": [
            *(f"/leads?tab={tab}" for tab in QUEUE_TABS),
            "/follow-ups",
            f"/leads/{busy_back_office.reference}",
        ],
        "manager": [
            "/leads?tab=ready_to_route",
            "/leads?q=Fitzgerald",
            "/finance/returns",
            "/activity",
        ],
    }
    wider, out_of_sight = {}, {}
    for role, paths in pages.items():
        page.context.clear_cookies()
        browser_login(role)
        for path in paths:
            page.goto(f"{live_server.url}{path}")
            name = f"{role}-{path.strip('/').replace('/', '-').replace('?', '-')}"
            page.screenshot(path=f"/tmp/layout/{name}-{width}.png", full_page=True)
            assert page.locator("main table.data").count(), path
            if over := page.evaluate(WIDER_THAN_THEIR_BOX):
                wider[path] = over
            if path.startswith("/leads?"):
                # The Next action buttons (Start review, Approve, Assign, Resend): in the window.
                buttons = page.locator("table.queue td.row-action .button").all()
                assert buttons, path
                boxes = [button.bounding_box() for button in buttons]
                right = [box["x"] + box["width"] for box in boxes]
                if hidden := [round(edge - width) for edge in right if edge > width]:
                    out_of_sight[path] = hidden
    assert not wider, f"tables wider than their box: {wider}, buttons out of sight: {out_of_sight}"
    assert not out_of_sight, out_of_sight


def test_a_lead_advanced_on_the_new_tab_brings_the_installers_column_and_still_fits(
    browser_page, browser_login, live_server, make_installer, make_lead
):
    """The New tab has no Installers column (it would be empty) until a lead started there
    has routing to show; then the table, and a warning before approving a lead nobody can
    take, still fit 1024 px."""
    make_installer(company_name="Brightside Solar & Storage", service_areas=["london"])
    started, nobody = (
        make_lead(
            "new",
            customer_name=f"Alexandra Fitzgerald-Montgomery {n}",
            email=f"alexandra.fitzgerald-montgomery.{n}@a-long-domain-name.example.co.uk",
            postcode=postcode,
        )
        for n, postcode in enumerate(["SW1A 1AA", "KW15 1HR"])
    )
    page = browser_page
    page.set_viewport_size({"width": 1024, "height": 800})
    browser_login("operator")
    page.goto(f"{live_server.url}/leads?tab=new")
    assert not page.locator("th.routing").is_visible()
    for lead in (started, nobody):
        page.click(f"#lead-{lead.reference} button:has-text('Start review')")
        # Swapped in and marked as such (ied.js), so that the wait below is for the mark to go:
        # waited for before htmx marks it, a click could land just as it is marked.
        page.wait_for_selector(
            f'#lead-{lead.reference}[data-just-swapped] [data-status="reviewing"]'
        )
    assert page.locator("th.routing").is_visible()
    assert page.inner_text(f"#lead-{started.reference} td.routing").startswith("1 can take it")
    # A row just swapped in ignores pointer clicks for a moment (ied.js: no second step by a
    # hasty second click).
    page.wait_for_selector(f"#lead-{nobody.reference}:not([data-just-swapped])")
    page.click(f"#lead-{nobody.reference} button:has-text('Approve for routing')")
    page.wait_for_selector(f"#lead-{nobody.reference} .warning")
    page.screenshot(path="/tmp/layout/new-tab-advanced-1024.png", full_page=True)
    assert overflow(page) <= 0
    button = page.locator(f"#lead-{nobody.reference} button:has-text('Approve anyway')")
    box = button.bounding_box()
    assert box["x"] + box["width"] <= 1024


def test_the_new_user_form_stands_apart_from_the_users_table(
    browser_page, browser_login, live_server
):
    """The form's card sat flush against the table's bottom border (so did New key's)."""
    browser_page.set_viewport_size({"width": 1280, "height": 900})
    browser_login("admin")
    browser_page.goto(f"{live_server.url}/admin/users")
    gap = browser_page.evaluate(
        "() => document.querySelector('.table-wrap + .card').getBoundingClientRect().top"
        " - document.querySelector('.table-wrap').getBoundingClientRect().bottom"
    )
    assert gap >= 16


def test_an_admins_top_bar_with_caught_mail_fits_1024_px_on_one_line(
    chromium, make_app, make_user, tmp_path
):
    """`make run` adds Caught mail: a ninth link, which went to a second line at 1024 px."""
    app = make_app(MAIL_CATCHER_ENABLED=True, MAIL_CATCHER_DIR=str(tmp_path))
    admin = make_user("admin")
    with app.app_context():
        server = LiveServer(app).start()
        try:
            page = chromium.new_context(viewport={"width": 1024, "height": 700}).new_page()
            page.goto(f"{server.url}/login")
            page.fill("input[name=email]", admin.email)
            page.fill("input[name=password]", TEST_PASSWORD)
            page.click("button[type=submit]")
            page.wait_for_url(lambda url: "/login" not in url)
            assert page.get_by_role("link", name="Caught mail").is_visible()
            assert page.evaluate("() => document.querySelector('.topbar').offsetHeight") <= 48
            assert page.evaluate("() => document.documentElement.scrollWidth") <= 1024
        finally:
            server.stop()
