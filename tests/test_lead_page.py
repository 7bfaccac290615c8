"""The lead page: details, history, the assign dialog with its reasons, assigning, phone-ins."""

import re

import sqlalchemy as sa

from ied.delivery.models import Assignment
from ied.extensions import db
from ied.leads.models import Lead, LeadStatusChange

HTMX = {"HX-Request": "true"}


def assignment_count() -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(Assignment))


def test_the_lead_page_shows_customer_answers_history_and_panels(
    client, login_as, make_lead, make_installer
):
    user = login_as("operator")
    recommended = make_installer(company_name="Brightside Solar")
    earlier = make_lead("new", email="jo@example.com")
    lead = make_lead(
        "new",
        email="jo@example.com",
        recommended_installer_id=recommended.id,
        recommendation="A 4 kW array.",
        assessment={
            "property_type": "semi_detached",
            "monthly_bill_gbp": 160,
            "owns_property": True,
        },
    )
    client.post(f"/leads/{lead.reference}/advance", data={"to_status": "reviewing"})
    html = client.get(f"/leads/{lead.reference}").get_data(as_text=True)
    assert lead.customer_name in html and "jo@example.com" in html
    assert "Property type</dt><dd>Semi detached" in html
    assert "Monthly bill (£)</dt><dd>160" in html and "Owns the property</dt><dd>Yes" in html
    assert "A 4 kW array." in html and "Brightside Solar" in html and "Compare quotes" in html
    assert f"Possible duplicate of {earlier.reference}" in html
    assert user.email in html  # who moved it to reviewing
    assert 'id="assignments-panel"' in html and 'id="follow-up-panel"' in html
    assert "Approve for routing" in html


def test_an_unknown_reference_is_404(client, login_as):
    login_as("operator")
    assert client.get("/leads/IED-999999").status_code == 404


def test_the_assign_dialog_lists_eligible_installers_and_the_reasons_for_the_rest(
    client, login_as, make_lead, make_installer, operator
):
    from ied.delivery import services as delivery

    login_as("operator")
    busy = make_installer(company_name="Busy Ltd", cycle_cap=1)
    make_installer(company_name="Far Away", service_areas=["scotland"])
    make_installer(company_name="Batteries Only", products=["battery"])
    make_installer(company_name="Sleepy Co", active=False)
    make_installer(company_name="Roomy Co", cycle_cap=40)
    recommended = make_installer(company_name="Recommended Co")
    delivery.assign_installers(make_lead("ready_to_route"), [busy.id], operator)
    db.session.commit()
    lead = make_lead("ready_to_route", recommended_installer_id=recommended.id)
    html = client.get(f"/leads/{lead.reference}?assign=1").get_data(as_text=True)
    dialog = re.search(r'<dialog id="assign-dialog".*?</dialog>', html, re.S).group(0)
    assert re.match(r'<dialog id="assign-dialog"[^>]*\bopen\b', dialog)
    eligible = re.findall(r'name="installer_ids" value="(\d+)"', dialog)
    assert eligible[0] == str(recommended.id)  # recommended first
    assert "used 0 of 40 this cycle" in dialog
    assert "used 0 this cycle · no cap" in dialog
    excluded = dict(
        re.findall(
            r'data-excluded-installer="\d+">\s*<td>([^<]+?)\s*(?:<span.*?)?</td>'
            r'\s*<td class="wrap">(.*?)</td>',
            dialog,
            re.S,
        )
    )
    reasons = {name: re.findall(r'badge-reason">([^<]+)<', cell) for name, cell in excluded.items()}
    assert reasons == {
        "Busy Ltd": ["cap reached"],
        "Far Away": ["outside area"],
        "Batteries Only": ["product not offered"],
        "Sleepy Co": ["paused"],
    }
    assert "used 1 of 1 this cycle" in dialog
    assert "one to 3 different installers" in dialog


def test_the_assign_dialog_shows_each_eligible_installers_areas_in_words(
    client, login_as, make_lead, make_installer
):
    login_as("operator")
    installer = make_installer(company_name="Two Areas Ltd", service_areas=["london", "SW1"])
    lead = make_lead("ready_to_route")
    html = client.get(f"/leads/{lead.reference}?assign=1").get_data(as_text=True)
    row = re.search(rf'data-installer-choice="{installer.id}">.*?</tr>', html, re.S).group(0)
    areas = re.search(r'<td class="muted">([^<]*)</td>', row).group(1)
    assert areas == "London, SW1"


def test_assigning_two_installers_on_a_compare_quotes_lead(
    client, login_as, make_lead, make_installer, monkeypatch
):
    enqueued = []
    monkeypatch.setattr("ied.delivery.jobs.enqueue_deliveries", enqueued.append)
    login_as("operator")
    first, second = make_installer(), make_installer()
    lead = make_lead("ready_to_route", selected_path="compare_quotes")
    response = client.post(
        f"/leads/{lead.reference}/assign", data={"installer_ids": [str(first.id), str(second.id)]}
    )
    assert response.status_code == 303
    # Back on the lead page, with the way to the tab it was assigned from and its next lead.
    assert response.headers["Location"] == f"/leads/{lead.reference}?tab=ready_to_route"
    db.session.refresh(lead)
    assert lead.status == "assigned"
    assignments = db.session.scalars(sa.select(Assignment).order_by(Assignment.id)).all()
    assert [(a.installer_id, a.status) for a in assignments] == [
        (first.id, "queued"),
        (second.id, "queued"),
    ]
    assert enqueued == [[a.id for a in assignments]]
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "assigned to" in page and first.company_name in page


def test_assigning_over_htmx_swaps_the_lead_body(
    client, login_as, make_lead, make_installer, monkeypatch
):
    monkeypatch.setattr("ied.delivery.jobs.enqueue_deliveries", lambda ids: None)
    login_as("operator")
    installer = make_installer()
    lead = make_lead(
        "ready_to_route",
        selected_path="recommended_installer",
        recommended_installer_id=installer.id,
    )
    response = client.post(
        f"/leads/{lead.reference}/assign", data={"installer_ids": str(installer.id)}, headers=HTMX
    )
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert html.lstrip().startswith('<div id="lead-body">') and "<html" not in html
    assert 'data-status="assigned"' in html


def test_a_refused_assignment_shows_the_rule_and_changes_nothing(
    client, login_as, make_lead, make_installer
):
    login_as("operator")
    first, second = make_installer(), make_installer()
    lead = make_lead("ready_to_route", selected_path="recommended_installer")
    data = {"installer_ids": [str(first.id), str(second.id)]}
    response = client.post(f"/leads/{lead.reference}/assign", data=data, headers=HTMX)
    assert response.status_code == 409
    assert response.headers["HX-Retarget"] == "#assign-error"
    assert "exactly one installer" in response.get_data(as_text=True)
    page = client.post(f"/leads/{lead.reference}/assign", data=data)
    html = page.get_data(as_text=True)
    assert page.status_code == 409
    assert "exactly one installer" in html and '<dialog id="assign-dialog"' in html
    assert html.count("checked") >= 2  # the choices are kept
    db.session.refresh(lead)
    assert lead.status == "ready_to_route" and assignment_count() == 0


def test_assigning_needs_a_lead_ready_to_route(client, login_as, make_lead, make_installer):
    login_as("operator")
    lead = make_lead("reviewing")
    response = client.post(
        f"/leads/{lead.reference}/assign",
        data={"installer_ids": str(make_installer().id)},
        headers=HTMX,
    )
    assert response.status_code == 409
    assert "ready_to_route" in response.get_data(as_text=True)
    assert assignment_count() == 0


def test_a_phone_in_becomes_a_new_lead(client, login_as):
    user = login_as("operator")
    response = client.post(
        "/leads/new",
        data={
            "customer_name": "Liam Green",
            "phone": "07700 900999",
            "postcode": "le1 1aa",
            "product_interest": "heat_pump",
            "selected_path": "recommended_installer",
            "recommended_installer_id": "",
        },
    )
    assert response.status_code == 303
    lead = db.session.scalars(sa.select(Lead)).one()
    assert response.headers["Location"] == f"/leads/{lead.reference}"
    assert (lead.source, lead.status, lead.postcode) == ("phone", "new", "LE1 1AA")
    change = db.session.scalars(sa.select(LeadStatusChange)).one()
    assert change.changed_by_id == user.id


def test_a_phone_in_with_errors_keeps_the_input_and_says_what_is_wrong(client, login_as):
    login_as("operator")
    response = client.post(
        "/leads/new",
        data={
            "customer_name": "Liam Green",
            "postcode": "nowhere",
            "product_interest": "",
            "selected_path": "compare_quotes",
        },
    )
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert 'value="Liam Green"' in html and 'value="nowhere"' in html
    assert "This is not a UK postcode." in html
    assert "Give an email address or a phone number." in html
    assert "Product is required." in html  # not the API's list of codes
    assert "solar_pv, battery" not in html
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Lead)) == 0
    unrouted = client.post("/leads/new", data={"customer_name": "Liam Green", "selected_path": "x"})
    group = re.search(r"<fieldset[^>]*>\s*<legend>[^<]*</legend>", unrouted.get_data(as_text=True))
    assert group and 'aria-describedby="selected_path-error"' in group.group(0)


def test_a_phone_in_matching_a_recent_lead_is_flagged(client, login_as, make_lead):
    login_as("operator")
    earlier = make_lead("new", email=None, phone="07700 900111")
    response = client.post(
        "/leads/new",
        data={
            "customer_name": "Ava Hall",
            "phone": "+44 7700 900111",
            "postcode": "SW1A 1AA",
            "product_interest": "battery",
            "selected_path": "compare_quotes",
        },
        follow_redirects=True,
    )
    html = response.get_data(as_text=True)
    assert f"It may duplicate {earlier.reference}" in html
    assert f"Possible duplicate of {earlier.reference}" in html


def test_add_installers_is_offered_only_while_the_path_has_a_free_place(
    client, login_as, make_lead, make_installer, operator
):
    """A recommended-installer lead's one place is its failed delivery's until it is
    withdrawn; a compare-quotes lead takes more until its limit."""
    from ied.delivery import services as delivery

    login_as("operator")
    first = make_installer()
    single = make_lead("ready_to_route", selected_path="recommended_installer")
    (failed,) = delivery.assign_installers(single, [first.id], operator)
    delivery.record_delivery_failure(failed.id, "550 5.1.1 Mailbox unavailable")
    several = make_lead("ready_to_route", selected_path="compare_quotes")
    delivery.assign_installers(several, [first.id], operator)
    db.session.commit()

    def offers_more(lead) -> bool:
        return ">Add installers</a>" in client.get(f"/leads/{lead.reference}").get_data(
            as_text=True
        )

    assert not offers_more(single)
    assert offers_more(several)
    delivery.withdraw(db.session.get(Assignment, failed.id), operator)
    db.session.commit()
    assert offers_more(single)
