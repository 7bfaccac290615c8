"""The lead page shows each sent assignment's billable delivery event, and its void (a credit),
apart from the assignment itself; failed and queued assignments have none."""

import re
from decimal import Decimal

from ied.delivery import services as delivery
from ied.extensions import db
from ied.finance import services as finance


def _article(html: str, assignment_id: int) -> str:
    match = re.search(
        rf'<article class="delivery" id="assignment-{assignment_id}">.*?</article>', html, re.S
    )
    assert match, assignment_id
    return match.group(0)


def test_a_sent_assignment_shows_its_event_and_its_void_and_others_show_none(
    client, login_as, make_lead, make_installer, operator
):
    manager = login_as("manager")
    billed = make_installer(company_name="Brightside Solar", price_per_lead=Decimal("31.50"))
    failing, waiting = make_installer(), make_installer()
    lead = make_lead("ready_to_route")
    sent, failed, queued = delivery.assign_installers(
        lead, [billed.id, failing.id, waiting.id], operator
    )
    delivery.record_delivery_success(sent.id)
    delivery.record_delivery_failure(failed.id, "Retries used up")
    db.session.commit()
    event = sent.delivery_event
    cycle = event.billing_cycle

    html = client.get(f"/leads/{lead.reference}").get_data(as_text=True)
    shown = _article(html, sent.id)
    assert 'data-delivery-event="billed"' in shown
    assert f"cycle {cycle}" in shown and "£31.50" in shown and "voided" not in shown
    for other in (failed, queued):
        assert "data-delivery-event" not in _article(html, other.id)

    finance.void_delivery_event(event.id, manager, "Return approved: wrong number")
    db.session.commit()
    html = client.get(f"/leads/{lead.reference}").get_data(as_text=True)
    shown = _article(html, sent.id)
    assert 'data-delivery-event="voided"' in shown
    assert f"cycle {cycle}" in shown and "£31.50" in shown
    assert re.search(
        rf"voided \d\d? \w+ \d{{4}} \d\d:\d\d by {re.escape(manager.email)}: "
        "Return approved: wrong number",
        shown,
    ), shown
    for other in (failed, queued):
        assert "data-delivery-event" not in _article(html, other.id)
