"""The queue says who can take a lead, why one needs attention, and warns before approving a
lead nobody can take; everyone starts at work; the assign dialog opens over the queue."""

import re
from datetime import timedelta

import sqlalchemy as sa

from ied.delivery import services as delivery
from ied.delivery.services import queued_alert_delay
from ied.extensions import db
from ied.installers.models import Installer
from ied.installers.services import (
    LIFTABLE,
    eligibility_of,
    exclusion_reasons,
    installer_choices,
)
from ied.leads.models import Lead
from ied.timestamps import utcnow
from tests.support.follow_ups import end_of_today, make_follow_up

HTMX = {"HX-Request": "true"}


def row_of(html: str, lead: Lead) -> str:
    return re.search(rf'<tr id="lead-{lead.reference}".*?</tr>', html, re.S).group(0)


def test_everyone_starts_at_work(client, login_as, app, make_lead, make_installer, operator):
    due_today = make_follow_up(make_lead, make_installer, operator, end_of_today())
    failing = make_lead("ready_to_route")
    (assignment,) = delivery.assign_installers(failing, [make_installer().id], operator)
    delivery.record_delivery_failure(assignment.id, "550 5.1.1 Mailbox unavailable")
    make_lead("new")
    db.session.commit()
    login_as("operator")
    today = client.get("/").get_data(as_text=True)
    assert re.search(r'data-tab="new">\s*<span class="tile-count">1</span> New', today)
    assert f"{failing.reference}</a>" in today and "failed: 550 5.1.1 Mailbox unavailable" in today
    assert due_today.lead.reference in today
    client.post("/logout")
    login_as("manager")
    if "dashboard.index" in app.view_functions:
        assert client.get("/").headers["Location"] == "/dashboard"
    else:
        assert client.get("/").status_code == 200


def test_a_ready_lead_shows_who_can_take_it(client, login_as, make_lead, make_installer):
    login_as("operator")
    recommended = make_installer(company_name="Brightside Solar", cycle_cap=0)
    make_installer(company_name="Capital Energy")
    make_installer(company_name="Other Energy")
    lead = make_lead("ready_to_route", recommended_installer_id=recommended.id)
    row = row_of(client.get("/leads?tab=ready_to_route").get_data(as_text=True), lead)
    assert 'data-eligible="2"' in row and "2 can take it" in row
    assert "recommended Brightside Solar: cap reached" in row
    assert ">Assign</a>" in row


def test_a_lead_nobody_can_take_says_why_and_offers_what_the_role_can_do(
    client, login_as, make_lead, make_installer
):
    make_installer(company_name="Full Co", cycle_cap=0)
    make_installer(company_name="Sleepy Co", active=False)
    make_installer(company_name="Scottish Co", service_areas=["scotland"])
    lead = make_lead("ready_to_route")
    login_as("operator")
    row = row_of(client.get("/leads?tab=ready_to_route").get_data(as_text=True), lead)
    assert 'data-eligible="0"' in row and "nobody can take it" in row
    assert "Full Co cap reached" in row and "Sleepy Co paused" in row
    assert "/installers" not in row  # operators get 403 there: no link
    assert ">Assign</a>" not in row and "A manager can" in row
    client.post("/logout")
    login_as("manager")
    row = row_of(client.get("/leads?tab=ready_to_route").get_data(as_text=True), lead)
    assert 'href="/installers"' in row


def test_no_installer_for_the_area_at_all(client, login_as, make_lead, make_installer):
    make_installer(company_name="Scottish Co", service_areas=["scotland"])
    lead = make_lead("ready_to_route", product_interest="heat_pump")
    login_as("operator")
    row = row_of(client.get("/leads?tab=ready_to_route").get_data(as_text=True), lead)
    assert "No installer covers SW for Heat pump." in row


def test_approving_a_lead_nobody_can_take_warns_first(client, login_as, make_lead):
    login_as("operator")
    lead = make_lead("reviewing")
    data = {"to_status": "ready_to_route", "tab": "reviewing"}
    warned = client.post(f"/leads/{lead.reference}/advance", data=data, headers=HTMX)
    body = warned.get_data(as_text=True)
    assert warned.status_code == 409 and "No installer can take" in body
    # The row's button posts the same status again, confirmed (htmx adds hx-vals to the post).
    assert "Approve anyway" in body and """hx-vals='{"confirmed": "1"}'""" in body
    db.session.refresh(lead)
    assert lead.status == "reviewing"  # nothing happened yet
    page = client.post(f"/leads/{lead.reference}/advance", data=data)  # without JavaScript
    assert page.status_code == 409 and "Approve anyway" in page.get_data(as_text=True)
    done = client.post(
        f"/leads/{lead.reference}/advance", data={**data, "confirmed": "1"}, headers=HTMX
    )
    assert done.status_code == 200
    db.session.refresh(lead)
    assert lead.status == "ready_to_route"


def test_approving_a_lead_someone_can_take_needs_no_confirmation(
    client, login_as, make_lead, make_installer
):
    login_as("operator")
    make_installer()
    lead = make_lead("reviewing")
    response = client.post(
        f"/leads/{lead.reference}/advance",
        data={"to_status": "ready_to_route", "tab": "reviewing"},
        headers=HTMX,
    )
    assert response.status_code == 200 and "Approve anyway" not in response.get_data(as_text=True)


def test_needs_attention_says_why_with_the_fix_in_the_row(
    client, login_as, make_lead, make_installer, operator
):
    login_as("operator")
    good, paused = make_installer(company_name="Good Co"), make_installer(company_name="Paused Co")
    lead = make_lead("ready_to_route", selected_path="compare_quotes")
    first, second = delivery.assign_installers(lead, [good.id, paused.id], operator)
    delivery.record_delivery_failure(first.id, "550 5.1.1 Mailbox unavailable")
    delivery.record_delivery_failure(second.id, "550 5.1.1 Mailbox unavailable")
    paused.active = False
    db.session.commit()
    row = row_of(client.get("/leads?tab=attention").get_data(as_text=True), lead)
    assert "Delivery to Good Co failed: 550 5.1.1 Mailbox unavailable." in row
    assert "Paused Co is paused." in row
    assert row.count(">Resend</button>") == 1  # not to the paused one
    assert row.count(">Withdraw</button>") == 2 and "Assign another" in row
    assert row.count('data-problem="failed"') == 2
    assert f'formaction="/assignments/{first.id}/resend"' in row
    for assignment, installer in ((first, good), (second, paused)):
        assert f'formaction="/assignments/{assignment.id}/withdraw"' in row
        assert f"Withdraw this lead from {installer.company_name}? Its link" in row

    resent = client.post(
        f"/assignments/{first.id}/resend", data={"tab": "attention"}, headers=HTMX
    ).get_data(as_text=True)
    assert resent.lstrip().startswith(f'<tr id="lead-{lead.reference}"')
    assert "Good Co failed" not in resent and "Paused Co is paused" in resent
    assert 'id="queue-tabs" aria-label="Lead status" hx-swap-oob="true"' in resent


def test_needs_attention_offers_resend_only_to_an_installer_under_its_cap(
    client, login_as, make_lead, make_installer, operator
):
    """Resend counts the delivery against the installer's cap again: at its cap (its queued
    deliveries of other leads count), the row says so instead of offering what would refuse."""
    login_as("operator")
    full = make_installer(company_name="Full Co", cycle_cap=1)
    room = make_installer(company_name="Room Co", cycle_cap=2)
    lead = make_lead("ready_to_route", selected_path="compare_quotes")
    to_full, to_room = delivery.assign_installers(lead, [full.id, room.id], operator)
    for assignment in (to_full, to_room):
        delivery.record_delivery_failure(assignment.id, "550 5.1.1 Mailbox unavailable")
    delivery.assign_installers(make_lead("ready_to_route"), [full.id], operator)  # queued
    delivery.assign_installers(make_lead("ready_to_route"), [room.id], operator)  # 1 of 2
    db.session.commit()

    row = row_of(client.get("/leads?tab=attention").get_data(as_text=True), lead)
    assert "Full Co is at its cap this cycle." in row
    assert row.count(">Resend</button>") == 1
    assert f'formaction="/assignments/{to_room.id}/resend"' in row
    client.post(f"/assignments/{to_full.id}/resend", data={"tab": "attention"}, headers=HTMX)
    db.session.refresh(to_full)
    assert to_full.status == "failed"  # as resend refuses it


def test_needs_attention_offers_assign_another_only_while_the_path_has_a_free_place(
    client, login_as, make_lead, make_installer, operator
):
    """A recommended-installer lead's one place is its failed delivery's until withdrawn, and
    a compare-quotes lead with three live deliveries is full: the dialog would refuse both."""
    login_as("operator")
    first, second, third = make_installer(), make_installer(), make_installer()
    single = make_lead("ready_to_route", selected_path="recommended_installer")
    (failed,) = delivery.assign_installers(single, [first.id], operator)
    delivery.record_delivery_failure(failed.id, "550 5.1.1 Mailbox unavailable")
    full = make_lead("ready_to_route", selected_path="compare_quotes")
    sent, also_sent, broken = delivery.assign_installers(
        full, [first.id, second.id, third.id], operator
    )
    delivery.record_delivery_success(sent.id)
    delivery.record_delivery_success(also_sent.id)
    delivery.record_delivery_failure(broken.id, "550 5.1.1 Mailbox unavailable")
    db.session.commit()
    page = client.get("/leads?tab=attention").get_data(as_text=True)
    for lead in (single, full):
        row = row_of(page, lead)
        assert ">Withdraw</button>" in row and "Assign another" not in row

    roomy = make_lead("ready_to_route", selected_path="compare_quotes")
    (stuck,) = delivery.assign_installers(roomy, [first.id], operator)
    delivery.record_delivery_failure(stuck.id, "550 5.1.1 Mailbox unavailable")
    db.session.commit()
    assert "Assign another" in row_of(
        client.get("/leads?tab=attention").get_data(as_text=True), roomy
    )


def test_assigning_over_the_queue_offers_the_next_lead(client, login_as, make_lead, make_installer):
    login_as("operator")
    installer = make_installer()
    older = make_lead("ready_to_route", selected_path="recommended_installer")
    lead = make_lead("ready_to_route", selected_path="recommended_installer")
    dialog = client.get(
        f"/leads/{lead.reference}/assign?tab=ready_to_route", headers=HTMX
    ).get_data(as_text=True)
    assert 'hx-target="#assign-slot"' in dialog and 'name="over_queue" value="1"' in dialog
    assert re.search(rf'value="{installer.id}" checked', dialog)  # the only one: ticked
    response = client.post(
        f"/leads/{lead.reference}/assign",
        data={"installer_ids": [str(installer.id)], "tab": "ready_to_route", "over_queue": "1"},
        headers=HTMX,
    )
    body = response.get_data(as_text=True)
    assert response.status_code == 200 and body.lstrip().startswith('<div id="assign-slot"')
    assert f"Next lead: {older.reference}" in body and 'data-key="n"' in body
    assert "Back to Ready to route" in body
    assert f'<tr id="lead-{lead.reference}"' in body and 'data-status="assigned"' in body

    # Without JavaScript: the lead page, with the way back and on.
    plain = client.post(
        f"/leads/{older.reference}/assign",
        data={"installer_ids": [str(installer.id)], "tab": "ready_to_route"},
    )
    page = client.get(plain.headers["Location"]).get_data(as_text=True)
    assert "← Ready to route leads" in page


def test_the_queue_costs_the_same_statements_for_any_page_length(
    client, login_as, make_lead, make_installer, operator
):
    login_as("operator")
    make_installer()
    make_installer(cycle_cap=0)

    def statements_for(tab: str) -> int:
        statements = []

        def count(conn, cursor, statement, *args):
            statements.append(statement)

        sa.event.listen(db.engine, "before_cursor_execute", count)
        try:
            assert client.get(f"/leads?tab={tab}").status_code == 200
        finally:
            sa.event.remove(db.engine, "before_cursor_execute", count)
        return len(statements)

    def add_leads(number: int) -> None:
        for _ in range(number):
            make_lead("ready_to_route")
            failed = make_lead("ready_to_route")
            (assignment,) = delivery.assign_installers(failed, [make_installer().id], operator)
            delivery.record_delivery_failure(assignment.id, "550 no such user")
        db.session.commit()

    add_leads(2)
    few = {tab: statements_for(tab) for tab in ("ready_to_route", "attention")}
    add_leads(12)
    assert {tab: statements_for(tab) for tab in ("ready_to_route", "attention")} == few


def test_the_queue_and_the_assign_dialog_agree_on_who_can_take_each_lead(make_lead, make_installer):
    """The queue's eligibility (a page of leads at once) says what the assign dialog's list
    (one lead, every installer) says: how many may take it, the recommended one's reasons,
    and the installers held back only by a pause or a cap, in the dialog's order."""
    areas = (["london"], ["SW1"], ["M"], ["SW1A", "north_west"], ["E1"], ["scotland"])
    installers = [
        make_installer(
            company_name=f"Fit {n}",
            service_areas=areas[n % len(areas)],
            products=[("solar_pv", "battery"), ("heat_pump",), ("solar_pv",)][n % 3],
            active=n % 4 != 1,
            cycle_cap=[None, 0, 5][n % 3],
        )
        for n in range(12)
    ]
    postcodes = ("SW1A 1AA", "SW1P 3BU", "SW11 1AA", "M1 1AE", "E1 6AN", "EH1 1YZ", "M1 2AB")
    products = ("solar_pv", "heat_pump", "battery")
    leads = [
        make_lead(
            "reviewing",
            postcode=postcodes[n % len(postcodes)],
            product_interest=products[n % len(products)],
            recommended_installer_id=installers[(n * 5) % len(installers)].id if n % 2 else None,
        )
        for n in range(21)
    ]
    queue = eligibility_of(leads)
    for lead in leads:
        choices = installer_choices(lead)
        routing = queue[lead.id]
        assert routing.eligible == sum(choice.eligible for choice in choices)
        held = [c for c in choices if c.reasons and set(c.reasons) <= set(LIFTABLE)]
        assert [(c.installer.id, c.reasons) for c in routing.held_back] == [
            (c.installer.id, c.reasons) for c in held
        ]
        recommended = next((c for c in choices if c.is_recommended), None)
        if recommended is None:
            assert routing.recommended is None
        else:
            assert routing.recommended.installer.id == recommended.installer.id
            assert routing.recommended.reasons == recommended.reasons
        # What the dialog offers (installers read as columns, their areas parsed once per
        # text) is what assigning checks (the installer's record, exclusion_reasons).
        for choice in choices:
            installer = db.session.get(Installer, choice.installer.id)
            assert choice.reasons == exclusion_reasons(installer, lead, choice.usage)


def test_the_routing_column_follows_an_installer_s_areas_and_products_at_once(
    client, login_as, make_lead, make_installer
):
    installer = make_installer(service_areas=["M"], products=["heat_pump"])
    lead = make_lead("ready_to_route", postcode="SW1A 1AA", product_interest="solar_pv")
    login_as("operator")

    def routing() -> str:
        row = row_of(client.get("/leads?tab=ready_to_route").get_data(as_text=True), lead)
        return re.search(r'data-eligible="(\d*)"', row).group(1)

    assert routing() == "0"
    for areas, products, eligible in [
        (["SW1A"], ["heat_pump"], "0"),  # covers it, does not offer it
        (["SW1A"], ["heat_pump", "solar_pv"], "1"),
        (["london"], ["solar_pv"], "1"),  # a region covering SW
        (["scotland"], ["solar_pv"], "0"),
        (["SW"], ["solar_pv"], "1"),
    ]:
        installer.service_areas, installer.products = areas, products
        db.session.commit()
        assert routing() == eligible, (areas, products)


def test_a_search_shows_the_delivery_problems_of_the_assigned_rows_that_have_them(
    client, login_as, make_lead, make_installer, operator
):
    login_as("operator")
    installer = make_installer(company_name="Good Co")
    failed, stuck, fresh, sent = (
        make_lead("ready_to_route", customer_name="Pat Jones") for _ in range(4)
    )
    assignment = {
        lead.id: delivery.assign_installers(lead, [installer.id], operator)[0]
        for lead in (failed, stuck, fresh, sent)
    }
    delivery.record_delivery_failure(assignment[failed.id].id, "550 no such mailbox")
    delivery.record_delivery_success(assignment[sent.id].id)
    # Queued 16 minutes ago: as if the clock had moved on since it was assigned.
    assignment[stuck.id].queued_at = utcnow() - queued_alert_delay() - timedelta(minutes=1)
    delivery.refresh_delivery_attention(stuck)
    db.session.commit()
    for url in ("/leads?q=Jones", "/leads?tab=assigned"):
        html = client.get(url).get_data(as_text=True)
        assert "Delivery to Good Co failed: 550 no such mailbox." in row_of(html, failed)
        assert "Delivery to Good Co queued for 16 min." in row_of(html, stuck)
        for fine in (fresh, sent):
            assert 'class="problem"' not in row_of(html, fine)
