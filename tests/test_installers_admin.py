"""Installers for managers: list with usage, create and edit with inline errors, pause."""

from decimal import Decimal

import pytest
import sqlalchemy as sa

from ied.extensions import db
from ied.installers.models import Installer
from tests.support.billing import billed_delivery

VALID = {
    "company_name": "Sunny Roofs",
    "contact_name": "Dee Okafor",
    "delivery_email": "leads@sunny.example",
    "phone": "0161 496 0000",
    "service_areas": "london, sw1a, North West",
    "products": ["solar_pv", "battery"],
    "cycle_cap": "40",
    "price_per_lead": "35.50",
    "billing_anchor_day": "15",
}


@pytest.mark.parametrize("role", ["operator"])
def test_installers_are_for_managers(client, login_as, role):
    login_as(role)
    assert client.get("/installers").status_code == 403


def test_a_manager_creates_an_installer(client, login_as):
    login_as("manager")
    response = client.post("/installers/new", data=VALID)
    assert response.status_code == 303
    installer = db.session.scalars(sa.select(Installer)).one()
    assert installer.service_areas == ["london", "SW1A", "north_west"]
    assert installer.products == ["solar_pv", "battery"]
    assert (installer.cycle_cap, installer.price_per_lead, installer.billing_anchor_day) == (
        40,
        Decimal("35.50"),
        15,
    )
    html = client.get("/installers").get_data(as_text=True)
    assert "Sunny Roofs" in html and "0 / 40" in html
    assert "London, SW1A, North West</td>" in html  # regions in words, prefixes as they are
    # Each row's button says whose it is to a screen reader, its visible word first.
    assert 'aria-label="Pause Sunny Roofs">Pause</button>' in html


def test_an_empty_cap_means_no_cap(client, login_as):
    login_as("manager")
    client.post("/installers/new", data={**VALID, "cycle_cap": ""})
    assert db.session.scalar(sa.select(Installer.cycle_cap)) is None


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"company_name": ""}, "company_name", "Company name is required."),
        ({"delivery_email": ""}, "delivery_email", "Give the email address"),
        ({"delivery_email": "nope"}, "delivery_email", "An email address must have an @-sign."),
        # Valid addresses, but only over SMTPUTF8, which delivery does not use.
        ({"delivery_email": "jörg@sunny.example"}, "delivery_email", "plain ASCII"),
        ({"delivery_email": "leads@müller.example"}, "delivery_email", "xn--mller-kva.example"),
        (
            {"service_areas": "atlantis"},
            "service_areas",
            "Not a region or postcode prefix: ATLANTIS",
        ),
        ({"service_areas": ""}, "service_areas", "at least one region"),
        ({"products": []}, "products", "Choose at least one product."),
        ({"cycle_cap": "-1"}, "cycle_cap", "0 or more"),
        ({"cycle_cap": "lots"}, "cycle_cap", "Not a valid integer value."),
        ({"price_per_lead": "-5"}, "price_per_lead", "0 or more"),
        ({"price_per_lead": "sNaN"}, "price_per_lead", "Give a number, such as 25"),
        ({"price_per_lead": "Infinity"}, "price_per_lead", "Give a number, such as 25"),
        ({"cycle_cap": "99999999999"}, "cycle_cap", "Give a number up to 2147483647."),
        ({"billing_anchor_day": "31"}, "billing_anchor_day", "from 1 to 28"),
    ],
)
def test_bad_input_shows_inline_errors_keeps_the_input_and_saves_nothing(
    client, login_as, change, field, message
):
    login_as("manager")
    response = client.post("/installers/new", data={**VALID, **change})
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert f'id="{field}-error"' in html or "has-error" in html
    assert message in html
    assert 'value="Dee Okafor"' in html
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Installer)) == 0


@pytest.mark.parametrize(
    ("field", "typed"),
    [("cycle_cap", "lots"), ("billing_anchor_day", "2.5"), ("price_per_lead", "1,000")],
)
def test_a_number_that_does_not_parse_gets_one_error_not_a_range_error_too(
    client, login_as, field, typed
):
    login_as("manager")
    response = client.post("/installers/new", data={**VALID, field: typed})
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert html.count('class="error"') == 1, html
    assert "Not a valid" in html and "up to" not in html
    assert f'value="{typed}"' in html


def test_saving_a_new_delivery_email_says_the_old_links_stopped(client, login_as, make_installer):
    login_as("manager")
    installer = make_installer(delivery_email="leads@sunny.example")
    edit = f"/installers/{installer.id}/edit"
    same = client.post(edit, data={**VALID, "phone": "0161 496 0001"}, follow_redirects=True)
    assert "is saved." in same.get_data(as_text=True)
    assert "no longer open" not in same.get_data(as_text=True)
    moved = client.post(
        edit, data={**VALID, "delivery_email": "new@sunny.example"}, follow_redirects=True
    )
    assert "Links emailed to the old address no longer open." in moved.get_data(as_text=True)


def test_editing_keeps_what_is_not_changed(client, login_as, make_installer):
    login_as("manager")
    installer = make_installer(company_name="Old Name", service_areas=["SE", "london"])
    form = client.get(f"/installers/{installer.id}/edit").get_data(as_text=True)
    assert 'value="SE, london"' in form
    response = client.post(
        f"/installers/{installer.id}/edit",
        data={**VALID, "company_name": "New Name", "cycle_cap": ""},
    )
    assert response.status_code == 303
    db.session.refresh(installer)
    assert installer.company_name == "New Name" and installer.cycle_cap is None


def test_the_billing_day_stays_once_a_delivery_is_billed(
    client, login_as, make_installer, make_lead, operator
):
    """Billed deliveries keep the label of the cycle they fell in: moving the anchor day would
    count November's deliveries in a cycle that starts on 28 November."""
    login_as("manager")
    installer = make_installer(billing_anchor_day=1)
    url = f"/installers/{installer.id}/edit"
    changed = {**VALID, "company_name": "Renamed Roofs", "billing_anchor_day": "28"}
    assert client.post(url, data=changed).status_code == 303  # nothing billed yet: it may move
    db.session.refresh(installer)
    assert installer.billing_anchor_day == 28
    billed_delivery(make_lead, installer, operator)

    response = client.post(url, data={**changed, "billing_anchor_day": "1"})

    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert "Stays 28: this installer has billed deliveries" in html and 'value="1"' in html
    db.session.refresh(installer)
    assert installer.billing_anchor_day == 28
    assert client.post(url, data={**changed, "company_name": "Sunny Again"}).status_code == 303


def test_pause_and_activate(client, login_as, make_installer):
    login_as("manager")
    installer = make_installer()
    page = client.get("/installers").get_data(as_text=True)
    assert f'action="/installers/{installer.id}/active"' in page
    assert '<input type="hidden" name="active" value="0">' in page
    response = client.post(f"/installers/{installer.id}/active", data={"active": "0"})
    assert response.status_code == 303
    db.session.refresh(installer)
    assert installer.active is False
    assert "paused" in client.get("/installers").get_data(as_text=True)
    client.post(f"/installers/{installer.id}/active", data={"active": "1"})
    db.session.refresh(installer)
    assert installer.active is True


def _sent_link(make_lead, installer, operator):
    from ied.delivery import services as delivery
    from ied.delivery.links import link_token

    assignment = delivery.assign_installers(make_lead("ready_to_route"), [installer.id], operator)[
        0
    ]
    db.session.commit()
    delivery.record_delivery_success(assignment.id)
    db.session.commit()
    return f"/d/{link_token(assignment)}"


def test_a_manager_revokes_every_link_of_an_installer(
    client, login_as, make_installer, make_lead, operator
):
    installer = make_installer(company_name="O'Brien Solar")
    link = _sent_link(make_lead, installer, operator)
    assert client.get(link).status_code == 200
    login_as("manager")
    page = client.get(f"/installers/{installer.id}/edit").get_data(as_text=True)
    assert "Revoke all links" in page and "O&#39;Brien" in page
    response = client.post(f"/installers/{installer.id}/revoke-links")
    assert response.status_code == 303
    assert client.get(link).status_code == 410


def test_operators_cannot_revoke_links(client, login_as, make_installer):
    installer = make_installer()
    login_as("operator")
    assert client.post(f"/installers/{installer.id}/revoke-links").status_code == 403
    db.session.refresh(installer)
    assert installer.link_version == 1


def test_a_new_delivery_email_revokes_the_old_links(make_installer, make_lead, operator):
    from ied.installers import services as installer_services

    installer = make_installer(delivery_email="leads@solar.example")
    before = installer.link_version
    unchanged = installer_services.InstallerInput(
        company_name=installer.company_name,
        contact_name=installer.contact_name,
        delivery_email=installer.delivery_email.upper(),
        phone=installer.phone,
        service_areas=installer.service_areas,
        products=installer.products,
        cycle_cap=None,
        price_per_lead=installer.price_per_lead,
        billing_anchor_day=1,
    )
    installer_services.update_installer(installer, unchanged, None)
    assert installer.link_version == before
    moved = installer_services.InstallerInput(
        **{**unchanged.__dict__, "delivery_email": "leads@new-solar.example"}
    )
    installer_services.update_installer(installer, moved, None)
    assert installer.link_version == before + 1
