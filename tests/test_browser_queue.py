"""An operator takes a lead from `new` to `assigned` in Chromium, with and without JavaScript,
and with the keyboard alone."""

import pytest
import sqlalchemy as sa

from ied.delivery import services as delivery
from ied.extensions import db
from ied.leads.models import Lead

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


def status_of(reference: str) -> str:
    db.session.expire_all()
    return db.session.scalars(sa.select(Lead.status).where(Lead.reference == reference)).one()


def test_operator_routes_a_lead_without_a_page_reload(
    browser_page, browser_login, live_server, routing_setup
):
    page = browser_page
    lead, eligible, _ = routing_setup
    browser_login("operator")
    assert page.url == f"{live_server.url}/"  # the start page: today's work
    page.screenshot(path="/tmp/ops-ied-today.png", full_page=True)
    page.click(".today-tiles [data-tab=new]")  # one click to the queue
    page.wait_for_url(f"{live_server.url}/leads?tab=new")
    page.wait_for_load_state("load")
    assert count(page, "new") == "2" and count(page, "reviewing") == "0"
    page.evaluate("window.__marker = 'same page'")

    page.click(f"#lead-{lead.reference} button:has-text('Start review')")
    page.wait_for_selector(f'#lead-{lead.reference} [data-status="reviewing"]')
    assert count(page, "new") == "1" and count(page, "reviewing") == "1"

    # The row clicked is the current one, and stays so through its swap: `a` acts on it.
    page.wait_for_selector(f"#lead-{lead.reference}.selected")
    page.keyboard.press("a")
    page.wait_for_selector(f'#lead-{lead.reference} [data-status="ready_to_route"]')
    assert count(page, "reviewing") == "0" and count(page, "ready_to_route") == "1"
    assert page.inner_text(f"#lead-{lead.reference} td.routing").startswith("2 can take it")
    page.keyboard.press("?")
    assert page.is_visible("#keyboard-help")
    help_text = page.inner_text("#keyboard-help")
    for key in ("j", "k", "Tab", "Enter", "a", "n", "Esc", "/", "?", "Space"):
        assert key in help_text
    page.keyboard.press("Escape")
    page.screenshot(path="/tmp/ops-ied-queue.png", full_page=True)

    # The assign dialog opens over the queue: no page load.
    page.click(f"#lead-{lead.reference} a:has-text('Assign')")
    page.wait_for_selector("#assign-dialog:modal")
    assert page.evaluate("window.__marker") == "same page"
    dialog = page.inner_text("#assign-dialog")
    assert "Highland Energy" in dialog and "outside area" in dialog
    assert "Coastal Installs" in dialog and "paused" in dialog
    assert "used 0 of 40 this cycle" in dialog
    for installer in eligible:  # both fit in the three places: ticked already
        assert page.is_checked(f'#assign-dialog input[name=installer_ids][value="{installer.id}"]')
    page.screenshot(path="/tmp/ops-ied-assign-dialog.png", full_page=True)
    page.click("#assign-dialog button[type=submit]")
    page.wait_for_selector("#assign-dialog:modal >> text=Deliveries are queued.")
    page.wait_for_selector(f'#lead-{lead.reference} [data-status="assigned"]')
    assert "Back to New" in page.inner_text("#assign-dialog")  # the tab it was opened from
    page.screenshot(path="/tmp/ops-ied-assigned-over-queue.png", full_page=True)
    assert page.evaluate("window.__marker") == "same page"
    assert status_of(lead.reference) == "assigned"
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
    page.wait_for_selector("#assign-dialog[open]")  # the lead page, its dialog open
    assert "outside area" in page.inner_text("#assign-dialog")
    page.screenshot(path="/tmp/ops-ied-assign-nojs.png", full_page=True)
    page.click("#assign-dialog button[type=submit]")
    page.wait_for_selector('.page-head [data-status="assigned"]')
    assert page.is_visible("text=Deliveries are queued.")
    page.click("text=← Ready to route leads")
    page.wait_for_url(f"{live_server.url}/leads?tab=ready_to_route")


def test_from_the_fifteenth_row_a_lead_is_assigned_in_four_keys(
    browser_page, browser_login, live_server, make_installer, make_lead
):
    """Login, one click from the start page to the queue; row selection aside (j x15),
    new -> assigned takes a, a, a, Enter; n goes on."""
    page = browser_page
    make_installer(company_name="Only Installer")
    leads = [make_lead("new", selected_path="recommended_installer") for _ in range(16)]
    target, following = leads[-15], leads[-16]  # newest first: the 15th row, then the 16th
    browser_login("operator")
    page.click(".today-tiles [data-tab=new]")  # the one click
    page.wait_for_url(f"{live_server.url}/leads?tab=new")
    page.wait_for_load_state("load")  # ied.js (deferred) listens from here on
    page.evaluate("window.__marker = 'same page'")
    for _ in range(15):
        page.keyboard.press("j")
    assert page.get_attribute(f"#lead-{target.reference}", "aria-selected") == "true"

    keys = ["a", "a", "a", "Enter"]
    page.keyboard.press(keys[0])
    # The selection survives the swap, on the same lead (ied.js marks the new row once htmx has
    # settled it, a few ms after the swap), with focus inside its row.
    selected = f'#lead-{target.reference}[aria-selected="true"]'
    page.wait_for_selector(f'{selected} [data-status="reviewing"]')
    assert (
        page.evaluate(
            "document.activeElement.closest('tr') && document.activeElement.closest('tr').id"
        )
        == f"lead-{target.reference}"
    )
    page.keyboard.press(keys[1])
    page.wait_for_selector(f'{selected} [data-status="ready_to_route"]')
    page.keyboard.press(keys[2])
    page.wait_for_selector("#assign-dialog:modal")
    page.screenshot(path="/tmp/ops-ied-keys-dialog.png", full_page=True)
    page.keyboard.press(keys[3])
    page.wait_for_selector(f'#lead-{target.reference} [data-status="assigned"]')
    assert len(keys) <= 8 and status_of(target.reference) == "assigned"

    page.keyboard.press("n")  # on to the next lead of the tab: its row is the current one
    page.wait_for_selector("#assign-dialog", state="hidden")
    assert page.get_attribute(f"#lead-{following.reference}", "aria-selected") == "true"
    assert page.evaluate("window.__marker") == "same page"
    assert page.console_errors == []


def test_tab_and_j_k_share_the_current_row(
    browser_page, browser_login, live_server, make_installer, make_lead
):
    page = browser_page
    make_installer()
    first, second, third = (make_lead("new") for _ in range(3))  # rows: third, second, first
    browser_login("operator")
    page.goto(f"{live_server.url}/leads")
    page.focus(f"#lead-{second.reference} a.ref")
    page.keyboard.press("Tab")  # Tab on within the row: still the row of `second`
    assert page.get_attribute(f"#lead-{second.reference}", "aria-selected") == "true"
    page.keyboard.press("Escape")
    page.evaluate("document.activeElement.blur()")
    page.keyboard.press("a")  # focus is gone, the selection is not
    page.wait_for_selector(f'#lead-{second.reference} [data-status="reviewing"]')
    page.keyboard.press("j")
    assert page.get_attribute(f"#lead-{first.reference}", "aria-selected") == "true"
    page.keyboard.press("k")
    page.keyboard.press("k")
    assert page.get_attribute(f"#lead-{third.reference}", "aria-selected") == "true"

    # On the lead page a transition takes a note, shown in the history; the head swaps alone.
    page.goto(f"{live_server.url}/leads/{second.reference}")
    page.evaluate("window.__marker = 'same page'")
    page.fill("#lead-head input[name=note]", "Checked the address")
    page.click("#lead-head button:has-text('Approve for routing')")
    page.wait_for_selector('#lead-head [data-status="ready_to_route"]')
    page.wait_for_selector("#status-history >> text=Checked the address")
    assert page.evaluate("window.__marker") == "same page"
    page.screenshot(path="/tmp/ops-ied-lead-page.png", full_page=True)
    assert page.console_errors == []


def test_a_lead_nobody_can_take_says_so_in_the_queue(
    browser_page, browser_login, live_server, make_installer, make_lead, operator
):
    page = browser_page
    make_installer(company_name="Full Co", cycle_cap=0)
    stuck = make_lead("ready_to_route", customer_name="Nobody Can", product_interest="heat_pump")
    failing = make_lead("ready_to_route", customer_name="Bounced Mail")
    (assignment,) = delivery.assign_installers(
        failing, [make_installer(company_name="Bouncy Co", products=["solar_pv"]).id], operator
    )
    delivery.record_delivery_failure(assignment.id, "550 5.1.1 Mailbox unavailable")
    db.session.commit()
    browser_login("operator")
    page.goto(f"{live_server.url}/leads?tab=ready_to_route")
    row = page.inner_text(f"#lead-{stuck.reference}")
    assert "nobody can take it" in row and "Full Co cap reached" in row
    assert page.locator(f"#lead-{stuck.reference} a:has-text('Assign')").count() == 0
    page.screenshot(path="/tmp/ops-ied-queue-nobody.png", full_page=True)
    page.goto(f"{live_server.url}/leads?tab=attention")
    row = page.inner_text(f"#lead-{failing.reference}")
    assert "failed: 550 5.1.1 Mailbox unavailable" in row
    page.screenshot(path="/tmp/ops-ied-queue-attention.png", full_page=True)
    page.click(f"#lead-{failing.reference} button:has-text('Resend')")
    page.wait_for_selector(f"#lead-{failing.reference} button:has-text('Resend')", state="detached")
    assert "failed: 550" not in page.inner_text(f"#lead-{failing.reference}")
    assert page.console_errors == []


def focused_row_id(page) -> str | None:
    return page.evaluate(
        "() => document.activeElement.closest('tr') && document.activeElement.closest('tr').id"
    )


def test_escape_out_of_the_assign_dialog_puts_focus_back_on_the_lead(
    browser_page, browser_login, live_server, make_installer, make_lead
):
    """Closing the dialog (Escape or Cancel) used to leave focus on <body>: the next Tab started
    again from the skip link at the top of the page instead of the lead just looked at."""
    page = browser_page
    make_installer()
    first, second = (make_lead("ready_to_route") for _ in range(2))  # rows: second, first
    browser_login("operator")
    page.goto(f"{live_server.url}/leads?tab=ready_to_route")
    page.wait_for_load_state("load")
    page.keyboard.press("j")
    page.keyboard.press("j")
    page.keyboard.press("a")
    page.wait_for_selector("#assign-dialog:modal")
    page.keyboard.press("Escape")
    page.wait_for_selector("#assign-dialog:modal", state="detached")
    assert focused_row_id(page) == f"lead-{first.reference}"

    page.keyboard.press("a")
    page.wait_for_selector("#assign-dialog:modal")
    page.click("#assign-dialog >> text=Cancel")
    page.wait_for_selector("#assign-dialog:modal", state="detached")
    assert focused_row_id(page) == f"lead-{first.reference}"

    # On the lead page, back on the button that opened it.
    page.goto(f"{live_server.url}/leads/{second.reference}")
    page.click("text=Assign installers")
    page.wait_for_selector("#assign-dialog:modal")
    page.keyboard.press("Escape")
    page.wait_for_selector("#assign-dialog:modal", state="detached")
    assert page.evaluate("() => document.activeElement.textContent.trim()") == "Assign installers"
    assert page.console_errors == []


def test_a_search_typed_in_leaves_no_tab_current_and_clearing_it_brings_the_tab_back(
    browser_page, browser_login, live_server, make_lead
):
    """The results of a search span every status; the tab it was typed on stayed underlined."""
    make_lead("new", customer_name="Grace Hall")
    make_lead("reviewing", customer_name="Grace Evans")
    page = browser_page
    browser_login("operator")
    page.goto(f"{live_server.url}/leads?tab=new")
    current = '#queue-tabs a[aria-current="page"]'
    assert page.get_attribute(current, "data-tab") == "new"
    page.fill("input[name=q]", "Grace")
    page.wait_for_selector("#queue-results >> text=Leads in every status matching")
    page.wait_for_selector(current, state="detached")
    page.fill("input[name=q]", "")
    page.wait_for_selector('#queue-tabs a[data-tab="new"][aria-current="page"]')
    assert page.console_errors == []


def test_a_hasty_second_click_on_a_row_just_swapped_takes_no_second_step(
    browser_page, browser_login, live_server, routing_setup
):
    """The row's next button appears where the first was: a click meant once (or a second
    one a moment later) does not approve a lead nobody has reviewed."""
    page = browser_page
    lead, _, _ = routing_setup
    row = f"#lead-{lead.reference}"
    browser_login("operator")
    posts = []
    page.on("request", lambda request: posts.append(request.url) if request.method == "POST" else 0)
    page.goto(f"{live_server.url}/leads?tab=new")
    page.click(f"{row} button:has-text('Start review')")
    page.wait_for_selector(f'{row}[data-just-swapped] [data-status="reviewing"]')
    page.click(f"{row} button:has-text('Approve for routing')")  # at once, as a hasty click lands
    page.wait_for_timeout(400)
    assert len(posts) == 1 and status_of(lead.reference) == "reviewing"

    page.wait_for_selector(f"{row}:not([data-just-swapped])")  # on screen long enough to read
    page.click(f"{row} button:has-text('Approve for routing')")
    page.wait_for_selector(f'{row} [data-status="ready_to_route"]')
    assert len(posts) == 2 and status_of(lead.reference) == "ready_to_route"
