"""Deliveries on the lead page: the self-refreshing panel, resend and withdraw."""

import pytest

from ied.delivery import services
from ied.delivery.jobs import deliver_assignment
from ied.delivery.models import Assignment
from ied.extensions import db

HX = {"HX-Request": "true"}


@pytest.fixture
def queued(make_lead, make_installer, operator):
    lead = make_lead("ready_to_route")
    assignment = services.assign_installers(
        lead, [make_installer(company_name="Sunny Ltd").id], operator
    )[0]
    db.session.commit()
    return assignment


def test_the_panel_polls_while_a_delivery_is_queued_and_stops_once_settled(
    client, login_as, queued, smtp_server
):
    login_as("operator")
    url = f"/leads/{queued.lead.reference}/deliveries"
    waiting = client.get(f"{url}?sent=0", headers=HX)
    body = waiting.get_data(as_text=True)
    assert waiting.status_code == 200 and "<html" not in body
    assert 'hx-trigger="every 3s"' in body and "Waiting for the first attempt" in body
    assert 'id="follow-up-panel"' not in body  # nothing was sent: the follow-up block stays
    deliver_assignment(queued.id)
    settled = client.get(f"{url}?sent=0", headers=HX).get_data(as_text=True)
    assert 'hx-trigger="every 3s"' not in settled
    # One more delivery sent: the follow-up block comes along out of band, now offering one.
    assert '<section class="card" id="follow-up-panel" hx-swap-oob="true"' in settled
    assert "Create follow-up" in settled and 'hx-trigger="load"' not in settled
    assert 'data-audit-status="sent"' in settled and "250" in settled
    assert client.get(url).status_code == 302  # without htmx: the lead page


def test_the_lead_page_shows_the_deliveries_panel(client, login_as, queued):
    login_as("operator")
    page = client.get(f"/leads/{queued.lead.reference}").get_data(as_text=True)
    assert 'id="assignments-panel"' in page and "Sunny Ltd" in page


def test_withdraw_with_htmx_swaps_the_panel_and_without_redirects(client, login_as, queued):
    login_as("operator")
    response = client.post(f"/assignments/{queued.id}/withdraw", headers=HX)
    assert response.status_code == 200
    assert "data-assignment-status>withdrawn" in response.get_data(as_text=True)
    db.session.refresh(queued)
    assert queued.status == "withdrawn" and queued.withdrawn_at is not None


def test_withdraw_as_a_plain_post_redirects_with_a_message(client, login_as, queued):
    login_as("operator")
    response = client.post(f"/assignments/{queued.id}/withdraw")
    assert response.status_code == 303
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "no longer opens" in page


def test_a_sent_delivery_cannot_be_withdrawn_and_says_why(client, login_as, queued, smtp_server):
    login_as("operator")
    deliver_assignment(queued.id)
    response = client.post(f"/assignments/{queued.id}/withdraw", headers=HX)
    assert response.status_code == 409
    assert "void its delivery event" in response.get_data(as_text=True)
    db.session.refresh(queued)
    assert queued.status == "sent"


def test_resend_puts_a_failed_delivery_back_in_the_queue_and_enqueues_it(
    app, client, login_as, queued, smtp_server, run_worker
):
    login_as("operator")
    services.record_delivery_failure(queued.id, "550 no such user")
    db.session.commit()
    response = client.post(f"/assignments/{queued.id}/resend", headers=HX)
    assert response.status_code == 200
    assert 'hx-trigger="every 3s"' in response.get_data(as_text=True)
    run_worker()
    assert db.session.get(Assignment, queued.id).status == "sent"
    assert len(smtp_server.messages) == 1


def test_resend_is_refused_for_a_queued_delivery(client, login_as, queued):
    login_as("operator")
    response = client.post(f"/assignments/{queued.id}/resend", headers=HX)
    assert response.status_code == 409
    assert "is &#39;queued&#39; and cannot become &#39;queued&#39;" in response.get_data(
        as_text=True
    )


def test_anonymous_people_cannot_act_on_deliveries(client, queued):
    assert client.post(f"/assignments/{queued.id}/withdraw").status_code == 302
    assert client.get(f"/leads/{queued.lead.reference}/deliveries").status_code == 302
    db.session.refresh(queued)
    assert queued.status == "queued"


def test_the_mail_catcher_shows_caught_messages(
    make_app, tmp_path, make_lead, make_installer, operator
):
    from ied.mailcatcher.server import MailCatcher
    from tests.support.postgres import free_port

    port = free_port()
    app = make_app(MAIL_CATCHER_ENABLED=True, MAIL_CATCHER_DIR=str(tmp_path), SMTP_PORT=port)
    catcher = MailCatcher(str(tmp_path), "127.0.0.1", port)
    catcher.start()
    try:
        with app.app_context():
            lead = make_lead("ready_to_route", customer_name="Caught Customer")
            assignment = services.assign_installers(lead, [make_installer().id], operator)[0]
            db.session.commit()
            assert deliver_assignment(assignment.id) == "sent"
            client = app.test_client()
            client.post(
                "/login", data={"email": operator.email, "password": "correct-horse-battery"}
            )
            listing = client.get("/dev/mail/").get_data(as_text=True)
            assert lead.reference in listing
            name = next(p.name for p in tmp_path.glob("*.eml"))
            message_page = client.get(f"/dev/mail/{name}").get_data(as_text=True)
            assert lead.reference in message_page and "/d/" in message_page
            assert "Caught Customer" not in message_page  # the email names no customer
            assert f'src="/dev/mail/{name}/html"' in message_page
            html_part = client.get(f"/dev/mail/{name}/html")
            html = html_part.get_data(as_text=True)
            assert lead.reference in html and "Caught Customer" not in html
            # The email's own inline styles are allowed in its frame only, never on app pages.
            assert "style-src 'unsafe-inline'" in html_part.headers["Content-Security-Policy"]
            assert html_part.headers["X-Frame-Options"] == "SAMEORIGIN"
            assert client.get(f"/dev/mail/{name}/nothing").status_code == 404
    finally:
        catcher.stop()


def test_the_mail_catcher_is_off_unless_enabled(client, login_as):
    login_as("admin")
    assert client.get("/dev/mail/").status_code == 404
