"""The installer's signed pages as an installer reads them: on a phone (375 and 414 px) as well
as on a desktop, in Chromium."""

import email
import email.policy
import re

import pytest

from ied.delivery.email import installer_email
from ied.delivery.links import link_token
from tests.support.billing import billed_delivery

pytestmark = pytest.mark.browser

PHONES = [320, 375, 414]

# How much of its card's width (inside the padding) the narrowest fact's value gets.
NARROWEST_FACT = """() => Math.min(...[...document.querySelectorAll('main dl.facts dd')].map(dd => {
  const card = dd.closest('.card'), style = getComputedStyle(card);
  const inside = card.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight);
  return dd.getBoundingClientRect().width / inside;
}))"""

# Every control of the page that a finger must hit, with the height of the box it can be hit in
# (a radio button is hit through its label as well).
TAP_TARGETS = """() => [...document.querySelectorAll('main :is(a, button, input, textarea)')]
  .filter(e => e.type !== 'hidden')
  .map(e => {
    const box = (e.type === 'radio' ? e.closest('li') : e).getBoundingClientRect();
    return [e.textContent.trim() || e.value || e.name, Math.round(box.height)];
  })"""

# How far any element of a card reaches past the card's own right edge (inside its padding).
OVERFLOW = """() => Math.max(...[...document.querySelectorAll('main .card')].map(card => {
  const padding = parseFloat(getComputedStyle(card).paddingRight);
  const edge = card.getBoundingClientRect().right - padding;
  const rights = [...card.querySelectorAll('*')].map(e => e.getBoundingClientRect().right);
  return Math.max(...rights) - edge;
}))"""

# On how many lines the lead's reference (IED-000001) is drawn in the page's heading.
LINES_OF_THE_REFERENCE = """() => {
  const walker = document.createTreeWalker(document.querySelector('h1'), NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const at = node.textContent.search(/IED-\\d+/);
    if (at < 0) continue;
    const range = document.createRange();
    range.setStart(node, at);
    range.setEnd(node, at + node.textContent.slice(at).match(/IED-\\d+/)[0].length);
    return new Set([...range.getClientRects()].map(r => Math.round(r.top))).size;
  }
}"""


def show_the_lead(page) -> None:
    """Press the button and wait for the lead's page to load, its stylesheet with it."""
    page.click("text=Show the lead")
    page.wait_for_load_state("load")


@pytest.fixture
def delivered_link(live_server, make_lead, make_installer, operator):
    installer = make_installer(
        company_name="Brightside Solar & Storage Ltd", service_areas=["NR", "london"]
    )
    event = billed_delivery(
        make_lead,
        installer,
        operator,
        customer_name="Alexandra Fitzgerald-Montgomery",
        phone="07700 900123",
        email="alexandra.fitzgerald-montgomery@a-long-domain-name.example",
        address="Flat 12, The Old Mill, 145 Longbridge Road, Little Snoring",
        postcode="NR21 0AB",
        product_interest="heat_pump",
        recommendation="A 5 kW air source heat pump with a 200 l cylinder.",
    )
    return f"{live_server.url}/d/{link_token(event.assignment)}"


@pytest.mark.parametrize("width", PHONES)
def test_on_a_phone_the_lead_fits_the_screen_and_every_control_is_big_enough_to_tap(
    browser_page, delivered_link, width
):
    page = browser_page
    page.set_viewport_size({"width": width, "height": 800})
    page.goto(delivered_link)
    assert [target for target in page.evaluate(TAP_TARGETS) if target[1] < 40] == []
    show_the_lead(page)
    page.screenshot(path=f"/tmp/ied-installer-lead-{width}.png", full_page=True)
    assert page.evaluate("() => document.documentElement.scrollWidth") <= width
    assert page.evaluate(OVERFLOW) <= 0
    targets = page.evaluate(TAP_TARGETS)
    names = {name for name, _ in targets}
    assert {"07700 900123", "customer_unreachable", "Ask for a return"} <= names
    assert [target for target in targets if target[1] < 40] == []
    # Text a phone zooms into when focused (iOS does below 16 px), and a reference broken in two.
    assert page.eval_on_selector("textarea", "e => parseFloat(getComputedStyle(e).fontSize)") >= 16
    assert page.evaluate(LINES_OF_THE_REFERENCE) == 1
    assert page.evaluate(NARROWEST_FACT) > 0.95  # each value as wide as its card, label above


def test_on_a_tablets_touch_screen_every_control_is_big_enough_to_tap(chromium, delivered_link):
    page = chromium.new_context(viewport={"width": 768, "height": 1024}, has_touch=True).new_page()
    try:
        page.goto(delivered_link)
        show_the_lead(page)
        assert [target for target in page.evaluate(TAP_TARGETS) if target[1] < 40] == []
        assert (
            page.eval_on_selector("textarea", "e => parseFloat(getComputedStyle(e).fontSize)") >= 16
        )
    finally:
        page.context.close()


def html_part(assignment) -> str:
    message = email.message_from_bytes(
        installer_email(assignment, "<test@ied.test>").data, policy=email.policy.default
    )
    return message.get_body(preferencelist=("html",)).get_content()


def test_the_emails_html_reads_at_full_size_in_a_phones_mail_client_and_shows_the_address(
    chromium, make_lead, make_installer, operator
):
    installer = make_installer(company_name="Brightside Solar & Storage Ltd")
    assignment = billed_delivery(make_lead, installer, operator).assignment
    html = html_part(assignment)
    link = re.search(r'href="([^"]+/d/[^"]+)"', html).group(1)
    # The address as text too, for a client that drops the button or a reader who copies it.
    assert f">{link}</a>" in html
    # A mail client on a phone lays out an HTML email like a mobile browser: without a viewport
    # of the device's width it draws it 980 px wide and shrinks it, its 15 px text to 6 px.
    for width in PHONES:
        page = chromium.new_context(
            viewport={"width": width, "height": 700}, is_mobile=True, device_scale_factor=2
        ).new_page()
        try:
            page.set_content(html)
            page.screenshot(path=f"/tmp/ied-installer-email-{width}.png", full_page=True)
            assert page.evaluate("() => window.innerWidth") == width
            assert page.evaluate("() => document.documentElement.scrollWidth") <= width
        finally:
            page.context.close()


IN_SIGHT = (
    "e => { const box = e.getBoundingClientRect(); return box.top >= 0 && box.top < innerHeight; }"
)


@pytest.mark.nojs  # the signed pages have no script: it all works as plain forms
def test_on_a_phone_asking_for_a_return_keeps_its_answer_in_sight_and_asks_to_confirm_it(
    browser_page, delivered_link
):
    page = browser_page
    page.set_viewport_size({"width": 375, "height": 700})
    page.goto(delivered_link)
    show_the_lead(page)
    page.click("text=Ask for a return")  # no reason chosen
    error = page.locator("#lead-return .error")
    assert "Choose why" in error.inner_text() and error.evaluate(IN_SIGHT)
    page.check("input[name=reason][value=outside_my_area]")
    page.click("text=Ask for a return")
    question = page.locator("text=Ask IED to return this lead?")
    assert question.evaluate(IN_SIGHT)
    assert "Outside my area" in page.inner_text("#lead-return")
    answer = page.locator("#lead-return dl").bounding_box()
    buttons = page.locator("#lead-return .actions").bounding_box()
    assert buttons["y"] >= answer["y"] + answer["height"] + 8  # apart from the answer above
    page.screenshot(path="/tmp/ied-installer-return-confirm-375.png", full_page=True)
    page.click("text=Change the reason")
    assert page.is_checked("input[name=reason][value=outside_my_area]")
    assert page.locator("#lead-return h2").evaluate(IN_SIGHT)
    page.check("input[name=reason][value=duplicate]")
    page.click("text=Ask for a return")
    page.click("text=Yes, ask for the return")
    page.wait_for_selector("text=You asked for a return of this lead")
    assert "(Duplicate)" in page.inner_text("main")


@pytest.mark.nojs
def test_a_return_refused_for_want_of_a_reason_is_told_to_a_screen_reader_on_the_choices(
    browser_page, delivered_link
):
    page = browser_page
    page.goto(delivered_link)
    show_the_lead(page)
    page.click("text=Ask for a return")
    choices = page.get_by_role("group", name="Why should this lead be returned?")
    assert (
        choices.evaluate(
            "group => (group.getAttribute('aria-describedby') || '').split(' ')"
            ".map(id => document.getElementById(id)?.textContent).join(' ')"
        )
        == "Choose why the lead should be returned."
    )
