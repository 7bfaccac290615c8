"""The lead page as one room: its blocks swap in place, their neighbours follow out of band, a
transition may carry a note, and the assign dialog ticks the obvious choice."""

import re
from pathlib import Path

from ied.delivery import services as delivery
from ied.extensions import db
from ied.leads.models import LeadStatusChange
from ied.leads.services import NOTE_LIMIT

HTMX = {"HX-Request": "true"}
TEMPLATES = Path(__file__).resolve().parent.parent / "ied" / "templates"


def test_a_transition_from_the_lead_page_swaps_its_head_and_history_with_the_note(
    client, login_as, make_lead
):
    login_as("operator")
    lead = make_lead("new")
    response = client.post(
        f"/leads/{lead.reference}/advance",
        data={"to_status": "reviewing", "place": "lead", "note": "  Called to confirm  "},
        headers=HTMX,
    )
    body = response.get_data(as_text=True)
    assert response.status_code == 200 and "<html" not in body
    assert body.lstrip().startswith('<div class="row page-head" id="lead-head"')
    assert 'data-status="reviewing"' in body and "Approve for routing" in body
    assert '<section class="card" id="status-history" hx-swap-oob="true"' in body
    assert "Called to confirm</td>" in body
    assert "assign-slot" not in body  # the assign dialog is fetched when it is opened
    change = db.session.scalars(
        db.select(LeadStatusChange).where(LeadStatusChange.to_status == "reviewing")
    ).one()
    assert change.note == "Called to confirm"


def test_a_refused_transition_on_the_lead_page_says_why_in_its_head(client, login_as, make_lead):
    login_as("operator")
    lead = make_lead("reviewing")
    response = client.post(
        f"/leads/{lead.reference}/advance",
        data={"to_status": "assigned", "place": "lead"},
        headers=HTMX,
    )
    assert response.status_code == 409
    assert "only by assigning installers" in response.get_data(as_text=True)


def test_the_assignment_note_lands_in_the_status_history(
    client, login_as, make_lead, make_installer
):
    login_as("operator")
    installer = make_installer(company_name="Note Solar")
    lead = make_lead("ready_to_route", selected_path="recommended_installer")
    client.post(
        f"/leads/{lead.reference}/assign",
        data={"installer_ids": [str(installer.id)], "note": "Customer asked for mornings"},
    )
    page = client.get(f"/leads/{lead.reference}").get_data(as_text=True)
    assert "Assigned to Note Solar · Customer asked for mornings" in page


def test_the_note_inputs_stop_where_the_service_does(client, login_as, make_lead):
    """The transition's and the assign dialog's note inputs carry the limit the service refuses
    beyond (a browser stops typing there; a longer note posted anyway is refused by field)."""
    login_as("operator")
    lead, ready = make_lead("new"), make_lead("ready_to_route")
    page = client.get(f"/leads/{lead.reference}").get_data(as_text=True)
    dialog = client.get(f"/leads/{ready.reference}/assign").get_data(as_text=True)
    for html in (page, dialog):
        assert re.findall(r'<input type="text" name="note" maxlength="(\d+)"', html) == [
            str(NOTE_LIMIT)
        ]
    too_long = "x" * (NOTE_LIMIT + 1)
    for headers in (HTMX, {}):
        response = client.post(
            f"/leads/{lead.reference}/advance",
            data={"to_status": "reviewing", "place": "lead", "note": too_long},
            headers=headers,
        )
        body = response.get_data(as_text=True)
        assert response.status_code == 422
        assert f"At most {NOTE_LIMIT} characters." in body
        assert f'value="{too_long}"' in body  # what was typed is still there
    db.session.expire_all()
    assert lead.status == "new"


def test_a_refused_assignment_keeps_the_note_typed(client, login_as, make_lead, make_installer):
    login_as("operator")
    installer = make_installer()
    lead = make_lead("ready_to_route")
    note = "Mornings only, " + "please " * (NOTE_LIMIT // 7)
    response = client.post(
        f"/leads/{lead.reference}/assign", data={"installer_ids": [str(installer.id)], "note": note}
    )
    body = response.get_data(as_text=True)
    assert response.status_code == 422 and f"At most {NOTE_LIMIT} characters." in body
    assert f'value="{note}"' in body
    assert f'name="installer_ids" value="{installer.id}" checked' in body
    db.session.expire_all()
    assert lead.status == "ready_to_route"


def _ticked(html: str) -> list[str]:
    dialog = re.search(r'<dialog id="assign-dialog".*?</dialog>', html, re.S).group(0)
    return re.findall(r'name="installer_ids" value="(\d+)" checked', dialog)


def test_the_obvious_installer_is_ticked(client, login_as, make_lead, make_installer):
    login_as("operator")
    recommended = make_installer(company_name="Recommended Co")
    make_installer(company_name="Scottish Co", service_areas=["scotland"])
    compare = make_lead(
        "ready_to_route", selected_path="compare_quotes", recommended_installer_id=recommended.id
    )
    html = client.get(f"/leads/{compare.reference}/assign").get_data(as_text=True)
    assert _ticked(html) == [str(recommended.id)]  # the only eligible one, and recommended

    second = make_installer(company_name="Second Co")
    single = make_lead(
        "ready_to_route",
        selected_path="recommended_installer",
        recommended_installer_id=recommended.id,
    )
    assert _ticked(client.get(f"/leads/{single.reference}/assign").get_data(as_text=True)) == [
        str(recommended.id)
    ]
    unrecommended = make_lead("ready_to_route", selected_path="recommended_installer")
    html = client.get(f"/leads/{unrecommended.reference}/assign").get_data(as_text=True)
    assert _ticked(html) == []  # two could take it, none recommended: the operator picks
    assert str(second.id) in html


def test_the_assign_dialog_over_htmx_is_the_dialog_alone(client, login_as, make_lead):
    login_as("operator")
    lead = make_lead("ready_to_route")
    body = client.get(f"/leads/{lead.reference}/assign", headers=HTMX).get_data(as_text=True)
    assert body.lstrip().startswith('<div id="assign-slot"') and "<html" not in body
    assert re.search(r'<dialog id="assign-dialog"[^>]*\bopen\b', body)


def test_resend_answers_its_block_and_the_dialog_opened_after_counts_it_live(
    client, login_as, make_lead, make_installer, operator
):
    login_as("operator")
    lead = make_lead("ready_to_route", selected_path="compare_quotes")
    (assignment,) = delivery.assign_installers(lead, [make_installer().id], operator)
    delivery.record_delivery_failure(assignment.id, "550 5.1.1 Mailbox unavailable")
    db.session.commit()
    dialog_url = f"/leads/{lead.reference}/assign?place=lead"
    body = client.post(f"/assignments/{assignment.id}/resend", headers=HTMX).get_data(as_text=True)
    assert body.lstrip().startswith('<section class="card" id="assignments-panel"')
    assert "assign-slot" not in body  # the dialog is not on the page until it is opened
    assert "1 already live." in client.get(dialog_url, headers=HTMX).get_data(as_text=True)


def test_a_failed_delivery_to_a_paused_or_full_installer_says_why_instead_of_a_resend_button(
    client, login_as, make_lead, make_installer, operator
):
    """The queue left Resend out for a paused installer; the lead page offered it, to refuse."""
    login_as("operator")
    paused, full, fine = (
        make_installer(company_name="Paused Co"),
        make_installer(company_name="Full Co", cycle_cap=1),
        make_installer(company_name="Fine Co"),
    )
    lead = make_lead("ready_to_route", selected_path="compare_quotes")
    assignments = delivery.assign_installers(lead, [paused.id, full.id, fine.id], operator)
    for assignment in assignments:
        delivery.record_delivery_failure(assignment.id, "550 5.1.1 Mailbox unavailable")
    (billed,) = delivery.assign_installers(make_lead("ready_to_route"), [full.id], operator)
    delivery.record_delivery_success(billed.id)
    paused.active = False
    db.session.commit()
    html = client.get(f"/leads/{lead.reference}").get_data(as_text=True)
    panel = {
        assignment.installer_id: re.search(
            rf'id="assignment-{assignment.id}">.*?</article>', html, re.S
        ).group(0)
        for assignment in assignments
    }
    assert "Resend once Paused Co can take leads again: paused." in panel[paused.id]
    assert "Resend once Full Co can take leads again: cap reached." in panel[full.id]
    for installer in (paused, full):
        assert ">Resend</button>" not in panel[installer.id]
        assert ">Withdraw</button>" in panel[installer.id]
    assert ">Resend</button>" in panel[fine.id] and "data-resend-blocked" not in panel[fine.id]


def test_the_lead_page_fetches_its_assign_dialog_when_it_is_opened(
    client, login_as, make_lead, make_installer
):
    """Not rendered with the page (every installer's choice), fetched by the button; over the
    lead page (place=lead) the dialog's form answers with the lead's body, not the queue's."""
    login_as("operator")
    installer = make_installer()
    lead = make_lead("ready_to_route", selected_path="recommended_installer")
    html = client.get(f"/leads/{lead.reference}").get_data(as_text=True)
    assert '<dialog id="assign-dialog"' not in html and installer.company_name not in html
    button = re.search(r'<a class="button primary" href="[^"]*"\s+hx-get="([^"]+)"', html)
    assert button.group(1) == f"/leads/{lead.reference}/assign?place=lead"
    dialog = client.get(button.group(1), headers=HTMX).get_data(as_text=True)
    assert re.search(r'<dialog id="assign-dialog"[^>]*\bopen\b', dialog)
    assert 'hx-target="#lead-body"' in dialog and 'name="over_queue"' not in dialog
    assert installer.company_name in dialog
    over_queue = client.get(f"/leads/{lead.reference}/assign?tab=ready_to_route", headers=HTMX)
    assert 'hx-target="#assign-slot"' in over_queue.get_data(as_text=True)


def test_the_lead_pages_assign_dialog_keeps_the_tab_and_says_when_the_lead_moved_on(
    client, login_as, make_lead, make_installer, operator
):
    login_as("operator")
    lead = make_lead("ready_to_route", selected_path="compare_quotes")
    delivery.assign_installers(lead, [make_installer().id], operator)
    db.session.commit()
    html = client.get(f"/leads/{lead.reference}?tab=assigned").get_data(as_text=True)
    url = re.search(r'hx-get="(/leads/[^"]+/assign[^"]*)"', html).group(1).replace("&amp;", "&")
    assert url == f"/leads/{lead.reference}/assign?tab=assigned&place=lead"
    dialog = client.get(url, headers=HTMX).get_data(as_text=True)
    assert '<input type="hidden" name="tab" value="assigned">' in dialog
    new = make_lead("new")  # a page left open while the lead was not (or no longer) assignable
    stale = client.get(f"/leads/{new.reference}/assign?place=lead", headers=HTMX)
    body = stale.get_data(as_text=True)
    assert re.search(r'<dialog id="assign-dialog"[^>]*\bopen\b', body)
    assert f"{new.reference} cannot be assigned now" in body and "It is new now." in body


def test_no_template_polls_on_load_or_asks_the_database():
    for template in TEMPLATES.rglob("*.html"):
        text = template.read_text()
        assert 'hx-trigger="load"' not in text, template
        assert "lead_follow_up_panel(" not in text, template
