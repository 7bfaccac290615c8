"""The installer's signed link: valid, expired, tampered, withdrawn, revoked, rotated key."""

import email
import email.policy
import re
import time
from datetime import timedelta

import pytest

from ied.delivery import services
from ied.delivery.email import installer_email
from ied.delivery.links import link_token
from ied.extensions import db
from ied.formatting import local_date
from ied.timestamps import utcnow

HEADERS = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer", "X-Robots-Tag": "noindex"}


@pytest.fixture
def sent_assignment(make_lead, make_installer, operator):
    lead = make_lead(
        "ready_to_route", customer_name="Grace Hopper", phone="07700 900123", address="1 Navy Way"
    )
    assignment = services.assign_installers(lead, [make_installer().id], operator)[0]
    db.session.commit()
    services.record_delivery_success(assignment.id)
    db.session.commit()
    return assignment


def check_signed_page(response):
    for header, value in HEADERS.items():
        assert response.headers[header] == value
    page = response.get_data(as_text=True)
    # The token in the URL is the only credential: no cookie, no session CSRF token, no script
    # (the return form's token is bound to the link: tests/test_installer_returns.py).
    assert "Set-Cookie" not in response.headers
    assert "<script" not in page and 'name="csrf-token"' not in page
    return response, page


def open_link(client, token, **kwargs):
    return check_signed_page(client.get(f"/d/{token}", **kwargs))


def show_lead(client, token):
    return check_signed_page(client.post(f"/d/{token}"))


def test_a_valid_link_shows_that_lead_when_the_installer_asks_and_counts_those_opens(
    client, sent_assignment
):
    token = link_token(sent_assignment)
    response, page = open_link(client, token)
    assert response.status_code == 200
    assert sent_assignment.lead.reference in page and "Show the lead" in page
    assert f'<form method="post" action="/d/{token}">' in page
    assert "Grace Hopper" not in page and "07700 900123" not in page
    response, page = show_lead(client, token)
    assert response.status_code == 200
    for fact in (
        "Grace Hopper",
        "07700 900123",
        "1 Navy Way",
        sent_assignment.lead.reference,
        "Property type",
        "Compare quotes",
    ):
        assert fact in page
    show_lead(client, token)
    db.session.refresh(sent_assignment)
    assert sent_assignment.open_count == 2
    first = sent_assignment.first_opened_at
    assert first is not None
    show_lead(client, token)
    db.session.refresh(sent_assignment)
    assert sent_assignment.first_opened_at == first


@pytest.mark.parametrize(
    "fetch",
    [
        lambda client, url: client.get(url),
        lambda client, url: client.head(url),
        lambda client, url: client.get(url, headers={"Sec-Purpose": "prefetch"}),
        lambda client, url: client.get(url, headers={"Purpose": "prefetch"}),
        lambda client, url: client.get(url, headers={"User-Agent": "Mozilla/5.0 (compatible)"}),
    ],
    ids=["get", "head", "sec-purpose-prefetch", "purpose-prefetch", "browser-like-get"],
)
def test_a_scanners_fetch_of_the_link_is_not_an_open(client, sent_assignment, fetch):
    url = f"/d/{link_token(sent_assignment)}"
    for _ in range(3):
        assert fetch(client, url).status_code == 200
    db.session.refresh(sent_assignment)
    assert (sent_assignment.open_count, sent_assignment.first_opened_at) == (0, None)


def test_showing_the_lead_of_a_link_that_no_longer_opens_shows_and_counts_nothing(
    client, sent_assignment
):
    token = link_token(sent_assignment)
    sent_assignment.installer.link_version += 1
    db.session.commit()
    response, page = show_lead(client, token)
    assert response.status_code == 410 and "Grace Hopper" not in page
    response, page = show_lead(client, token[:-3] + ("AAA" if not token.endswith("AAA") else "BBB"))
    assert response.status_code == 404 and "Grace Hopper" not in page
    db.session.refresh(sent_assignment)
    assert sent_assignment.open_count == 0


def test_no_login_is_needed_and_no_navigation_is_shown(client, sent_assignment):
    _, page = open_link(client, link_token(sent_assignment))
    assert "Sign out" not in page and "/leads" not in page
    assert 'href="/"' not in page  # the brand would lead to a sign-in the installer has none for


def test_an_expired_link_answers_410_with_how_to_get_it_resent(
    app, client, sent_assignment, monkeypatch
):
    token = link_token(sent_assignment)
    later = time.time() + (app.config["DELIVERY_LINK_MAX_AGE_DAYS"] + 1) * 86400
    monkeypatch.setattr("itsdangerous.timed.time.time", lambda: later)  # time moved on
    response, page = open_link(client, token)
    assert response.status_code == 410
    assert "expired" in page and app.config["IED_CONTACT"] in page
    assert f"To see lead {sent_assignment.lead.reference} again" in page  # which one it was
    assert "reply to the email" not in page  # the sender's address takes no replies
    assert "Grace Hopper" not in page


def test_a_tampered_link_answers_404(client, sent_assignment):
    token = link_token(sent_assignment)
    tampered = token[:-3] + ("AAA" if not token.endswith("AAA") else "BBB")
    for bad in (tampered, "not-a-token", token.replace(".", "x", 1)):
        response, page = open_link(client, bad)
        assert response.status_code == 404
        assert "Grace Hopper" not in page


@pytest.mark.parametrize("address", ["/d/", "/d/{token}/", "/d/{token}/open", "/d/{token}/return/"])
def test_an_address_under_the_link_that_no_page_takes_is_the_installers_link_not_found(
    client, sent_assignment, address
):
    """A link cut short or run on by a mail client: the signed pages' 'Link not found', with
    no cookie, not the back office's 404 offering a sign-in the installer has none for."""
    response, page = open_link(client, address.format(token=link_token(sent_assignment))[3:])
    assert response.status_code == 404
    assert "Link not found" in page and "Open it again from the email" in page
    assert 'href="/"' not in page and "start page" not in page


def test_a_well_signed_link_for_an_unknown_assignment_answers_404(app, client, sent_assignment):
    from ied.delivery.links import _serializer

    response, _ = open_link(client, _serializer().dumps({"a": 99_999, "v": 1}))
    assert response.status_code == 404


def test_a_withdrawn_assignment_link_answers_410(client, make_lead, make_installer, operator):
    lead = make_lead("ready_to_route", customer_name="Withdrawn Person")
    assignment = services.assign_installers(lead, [make_installer().id], operator)[0]
    db.session.commit()
    token = link_token(assignment)
    services.withdraw(assignment, operator)
    db.session.commit()
    response, page = open_link(client, token)
    assert response.status_code == 410
    assert "Withdrawn Person" not in page
    # Not 'withdrawn or replaced': the installer reads which, of which lead, and that it is
    # not billed.
    assert "IED withdrew this lead" in page and f"IED took lead {lead.reference} back" in page
    assert "not billed to you" in page and "replaced" not in page


def test_bumping_the_installers_link_version_revokes_its_links(client, sent_assignment):
    token = link_token(sent_assignment)
    sent_assignment.installer.link_version += 1
    db.session.commit()
    response, page = open_link(client, token)
    assert response.status_code == 410
    assert "Grace Hopper" not in page
    assert "This link was replaced" in page and "withdrew" not in page
    assert f"To have lead {sent_assignment.lead.reference} sent to you again" in page
    response, page = show_lead(client, link_token(sent_assignment))  # a new link works again
    assert response.status_code == 200 and "Grace Hopper" in page


def test_old_keys_in_fallbacks_still_verify_after_rotation(make_app, sent_assignment):
    token = link_token(sent_assignment)  # signed with test-secret-key
    rotated = make_app(SECRET_KEY="a-brand-new-key", SECRET_KEY_FALLBACKS=["test-secret-key"])
    with rotated.app_context():
        assert rotated.test_client().post(f"/d/{token}").status_code == 200
    forgotten = make_app(SECRET_KEY="a-brand-new-key", SECRET_KEY_FALLBACKS=[])
    with forgotten.app_context():
        assert forgotten.test_client().get(f"/d/{token}").status_code == 404


@pytest.mark.parametrize(
    ("status", "code", "says"),
    [("queued", 409, "not ready yet"), ("failed", 410, "This lead was not delivered")],
)
def test_only_a_delivery_known_to_have_succeeded_shows_its_lead(
    client, make_lead, make_installer, operator, status, code, says
):
    lead = make_lead("ready_to_route", customer_name="Not Yet Billed")
    assignment = services.assign_installers(lead, [make_installer().id], operator)[0]
    db.session.commit()
    if status == "failed":
        services.record_delivery_failure(assignment.id, "Retries used up: abandoned")
        db.session.commit()
    token = link_token(assignment)
    for response, page in (open_link(client, token), show_lead(client, token)):
        assert response.status_code == code
        assert says in page and "Not Yet Billed" not in page and lead.reference in page
    db.session.refresh(assignment)
    assert assignment.open_count == 0


def email_parts(assignment) -> list[str]:
    """The email's plain-text and HTML bodies, as the installer's mail client reads them."""
    message = email.message_from_bytes(
        installer_email(assignment, "<test@ied.test>").data, policy=email.policy.default
    )
    return [message.get_body(preferencelist=(part,)).get_content() for part in ("plain", "html")]


@pytest.mark.parametrize(
    ("path", "says"),
    [
        (
            "recommended_installer",
            "the customer asked for one installer: this lead goes to you alone",
        ),
        ("compare_quotes", "the customer is comparing quotes from several installers"),
    ],
)
def test_the_email_and_the_page_say_what_the_path_means_and_until_when_the_link_opens(
    app, client, make_lead, make_installer, operator, path, says
):
    installer = make_installer()
    lead = make_lead("ready_to_route", selected_path=path, recommended_installer_id=installer.id)
    assignment = services.assign_installers(lead, [installer.id], operator)[0]
    db.session.commit()
    services.record_delivery_success(assignment.id)
    db.session.commit()
    # Until a date, not "for 30 days" from a day the installer has to work out.
    closes = local_date(utcnow() + timedelta(days=app.config["DELIVERY_LINK_MAX_AGE_DAYS"]))
    for body in email_parts(assignment):
        assert says in body
        assert re.search(rf"The link works until {closes} \d\d:\d\d\.", body)
    _, page = show_lead(client, link_token(assignment))
    assert says in page
