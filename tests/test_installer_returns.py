"""Installer returns: asked for on the signed page within the window, once, under the return
limit; decided by a manager (approval voids the event and frees the cap slot)."""

import re
import time
from datetime import timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa

from ied.activity.models import ActivityEntry
from ied.delivery import services as delivery
from ied.delivery.links import link_token
from ied.extensions import db
from ied.finance import queries as finance_queries
from ied.finance import services as finance
from ied.finance.models import ReturnRequest
from ied.finance.services import REASON_TEXT_LIMIT
from ied.installers.models import Installer
from ied.installers.services import cycle_usage
from tests.support.billing import billed_delivery

HTTPS = {"base_url": "https://backoffice.example", "headers": {"Origin": "null"}}


def form_token(page: str) -> str:
    return re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)


@pytest.fixture
def secure_app(make_app):
    """CSRF on, strict referrer checking on (Flask-WTF's defaults) and HTTPS links."""
    app = make_app(
        WTF_CSRF_ENABLED=True,
        WTF_CSRF_SSL_STRICT=True,
        PUBLIC_BASE_URL="https://backoffice.example",
    )
    with app.app_context():
        yield app


@pytest.fixture
def delivered(secure_app, make_installer, make_lead, operator):
    installer = make_installer(company_name="Acme Solar", cycle_cap=2)
    event = billed_delivery(make_lead, installer, operator)
    return event


def details_page(client, event) -> str:
    response = client.post(f"/d/{link_token(event.assignment)}", **HTTPS)
    assert response.status_code == 200
    return response.get_data(as_text=True)


def activity_count() -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(ActivityEntry))


def ask(client, event, token=None, step="confirm", **data):
    """Post the return form, confirmed unless told another `step` (None: the first press)."""
    token = token if token is not None else form_token(details_page(client, event))
    return client.post(
        f"/d/{link_token(event.assignment)}/return",
        data={"csrf_token": token, **({"step": step} if step else {}), **data},
        **HTTPS,
    )


def test_a_return_is_shown_back_to_be_confirmed_and_nothing_is_asked_until_it_is(
    secure_app, delivered
):
    client = secure_app.test_client()
    token = form_token(details_page(client, delivered))
    activity_before = activity_count()  # the page's open counted
    details = {"reason": "other", "reason_text": "  The number is a fax line\nNobody answers  "}
    check = ask(client, delivered, token=token, step=None, **details)
    assert check.status_code == 200
    page = check.get_data(as_text=True)
    assert "Ask IED to return this lead?" in page and "Yes, ask for the return" in page
    assert "<dd>Other</dd>" in page and "The number is a fax line\nNobody answers</dd>" in page
    assert "#lead-return" in re.search(r'<form method="post" action="([^"]+)"', page).group(1)
    assert 'name="reason" value="other"' in page
    assert finance.pending_returns_count() == 0
    assert activity_count() == activity_before
    # Changing it brings the form back as it was filled in; still nothing asked.
    change = ask(client, delivered, token=form_token(page), step="change", **details)
    assert change.status_code == 200
    form = change.get_data(as_text=True)
    assert '<input checked id="reason-4" name="reason" required type="radio" value="other">' in form
    assert "The number is a fax line" in form and "Yes, ask for the return" not in form
    assert (finance.pending_returns_count(), activity_count()) == (0, activity_before)
    confirmed = ask(client, delivered, token=form_token(page), **details)
    assert confirmed.status_code == 303
    request = db.session.scalars(sa.select(ReturnRequest)).one()
    assert request.reason_text == "The number is a fax line\nNobody answers"


def test_the_address_a_return_form_answered_at_opened_again_leads_back_to_the_link(
    secure_app, delivered
):
    """A phone restoring the tab of an answer (an error, the request to confirm) opens its
    address with a GET: the link's page, not a bare 405."""
    link = f"/d/{link_token(delivered.assignment)}"
    response = secure_app.test_client().get(f"{link}/return", **HTTPS)
    assert (response.status_code, response.headers["Location"]) == (303, link)
    assert (
        response.headers["Referrer-Policy"] == "no-referrer"
        and "Set-Cookie" not in response.headers
    )
    assert finance.pending_returns_count() == 0


def test_over_https_without_referer_the_installer_asks_for_a_return(secure_app, delivered):
    client = secure_app.test_client()
    page = details_page(client, delivered)
    assert "Ask for a return" in page and 'data-return-state="open"' in page
    response = ask(client, delivered, reason="customer_unreachable")
    assert "Referer" not in response.request.headers
    # Post, redirect, get: reloading the answer (or going back to it) asks nothing again.
    assert response.status_code == 303, response.get_data(as_text=True)
    # Back to the link the answer was posted from (a token made now may carry a later second).
    link = response.request.path.removesuffix("/return")
    assert response.headers["Location"] == f"{link}?asked=return"
    assert "Set-Cookie" not in response.headers
    assert response.headers["Referrer-Policy"] == "no-referrer"
    landing = client.get(response.headers["Location"], **HTTPS)
    assert landing.status_code == 200
    assert "You asked for a return of this lead" in landing.get_data(as_text=True)
    assert "You asked for a return" not in client.get(link, **HTTPS).get_data(as_text=True)
    page = details_page(client, delivered)
    assert 'data-return-state="pending"' in page and "IED is reviewing it" in page
    request = db.session.scalars(sa.select(ReturnRequest)).one()
    assert (request.status, request.reason, request.installer_id) == (
        "pending",
        "customer_unreachable",
        delivered.installer_id,
    )
    assert finance.pending_returns_count() == 1
    entry = db.session.scalars(
        sa.select(ActivityEntry).where(ActivityEntry.verb == "return_request.requested")
    ).one()
    assert entry.actor_label == "installer Acme Solar" and entry.lead_id == delivered.lead_id


def test_a_return_post_without_the_link_bound_token_or_from_another_site_is_refused(
    secure_app, delivered, make_lead, make_installer, operator
):
    client = secure_app.test_client()
    missing = ask(client, delivered, token="", reason="duplicate")
    assert missing.status_code == 400 and "nothing was sent" in missing.get_data(as_text=True)
    other = billed_delivery(make_lead, make_installer(), operator)
    foreign_token = form_token(details_page(client, other))
    wrong = ask(client, delivered, token=foreign_token, reason="duplicate")
    assert wrong.status_code == 400 and "another delivery" in wrong.get_data(as_text=True)
    elsewhere = client.post(
        f"/d/{link_token(delivered.assignment)}/return",
        data={"csrf_token": form_token(details_page(client, delivered)), "reason": "duplicate"},
        base_url="https://backoffice.example",
        headers={"Origin": "https://evil.example"},
    )
    assert elsewhere.status_code == 403
    # The installer's page, not the back office's 'Your role does not give access' and sign-in.
    refused = elsewhere.get_data(as_text=True)
    assert "came from a page of another site, so nothing was done" in refused
    assert "Your role" not in refused and "Set-Cookie" not in elsewhere.headers
    tampered = client.post(f"/d/{link_token(delivered.assignment)}x/return", **HTTPS)
    assert tampered.status_code == 404
    assert finance.pending_returns_count() == 0


def test_a_form_left_open_over_a_day_is_renewed_with_its_answer_and_sent_on_the_next_press(
    secure_app, delivered, monkeypatch
):
    client = secure_app.test_client()
    real_time = time.time
    monkeypatch.setattr("itsdangerous.timed.time.time", lambda: real_time() - 25 * 3600)
    old_token = form_token(details_page(client, delivered))  # the page opened yesterday
    monkeypatch.setattr("itsdangerous.timed.time.time", real_time)
    stale = ask(client, delivered, token=old_token, step=None, reason="duplicate")
    assert stale.status_code == 400
    page = stale.get_data(as_text=True)
    assert "press Ask for a return again" in page and "open the link in the email" not in page
    assert 'checked id="reason-3"' in page  # the answer kept
    assert finance.pending_returns_count() == 0
    assert ask(client, delivered, token=form_token(page), reason="duplicate").status_code == 303


def test_other_needs_its_text_and_one_request_per_delivery(secure_app, delivered):
    client = secure_app.test_client()
    token = form_token(details_page(client, delivered))
    no_text = ask(client, delivered, reason="other", reason_text="  ")
    assert no_text.status_code == 422
    assert "Say what is wrong" in no_text.get_data(as_text=True)
    no_reason = ask(client, delivered)
    assert no_reason.status_code == 422
    assert ask(client, delivered, reason="other", reason_text="Business address").status_code == 303
    again = ask(client, delivered, token=token, reason="duplicate")
    assert again.status_code == 409
    assert "only one request per delivery" in again.get_data(as_text=True)
    assert db.session.scalar(sa.select(sa.func.count()).select_from(ReturnRequest)) == 1


@pytest.mark.parametrize(
    ("after", "allowed"),
    [(timedelta(days=14) - timedelta(seconds=1), True), (timedelta(days=14), True),
     (timedelta(days=14, seconds=1), False)],
)  # fmt: skip
def test_the_return_window_is_fourteen_days_from_delivery(delivered, after, allowed):
    now = delivered.occurred_at + after
    if allowed:
        assert finance.request_return(delivered.id, "duplicate", None, now=now).status == "pending"
    else:
        with pytest.raises(finance.ReturnRefused, match="window closed"):
            finance.request_return(delivered.id, "duplicate", None, now=now)
    db.session.rollback()


def test_after_the_window_the_page_says_so(secure_app, delivered):
    delivered.occurred_at -= timedelta(days=15)
    db.session.commit()
    page = details_page(secure_app.test_client(), delivered)
    assert 'data-return-state="closed"' in page and "the window closed on" in page
    assert "Ask for a return" not in page


def test_approval_voids_the_event_frees_the_cap_slot_and_is_final(
    secure_app, delivered, make_user, make_lead
):
    manager = make_user("manager")
    installer = delivered.installer
    billed_delivery(make_lead, installer, manager)  # now at its cap of 2
    assert cycle_usage([installer])[installer.id].is_full
    request = finance.request_return(delivered.id, "outside_my_area", None)
    db.session.commit()
    finance.decide_return(request.id, manager, approve=True, remark="Postcode is in Wales")
    db.session.commit()
    db.session.refresh(delivered)
    assert delivered.voided_at is not None and delivered.voided_by_id == manager.id
    assert delivered.void_reason == "Return approved: Outside my area (Postcode is in Wales)"
    assert not cycle_usage([installer])[installer.id].is_full
    delivery.assign_installers(make_lead("ready_to_route"), [installer.id], manager)
    db.session.rollback()
    assert finance.cycle_billing_drift() == []
    with pytest.raises(finance.ReturnRefused, match="already approved"):
        finance.decide_return(request.id, manager, approve=False, remark="Changed my mind")
    db.session.rollback()
    page = details_page(secure_app.test_client(), delivered)
    assert 'data-return-state="approved"' in page and "Postcode is in Wales" in page
    verbs = db.session.scalars(
        sa.select(ActivityEntry.verb)
        .where(ActivityEntry.subject_type.in_(("delivery_event", "return_request")))
        .order_by(ActivityEntry.id)
    ).all()
    assert verbs == [
        "return_request.requested",
        "delivery_event.voided",
        "return_request.decided",
    ]


def test_rejection_needs_a_remark_and_leaves_the_event_billed(secure_app, delivered, make_user):
    manager = make_user("manager")
    request = finance.request_return(delivered.id, "customer_unreachable", None)
    db.session.commit()
    with pytest.raises(finance.ReturnRefused, match="Say why"):
        finance.decide_return(request.id, manager, approve=False, remark="")
    db.session.rollback()
    finance.decide_return(request.id, manager, approve=False, remark="We reached them on 2 Dec")
    db.session.commit()
    db.session.refresh(delivered)
    assert delivered.voided_at is None
    assert (request.status, request.decided_by_id) == ("rejected", manager.id)
    page = details_page(secure_app.test_client(), delivered)
    assert 'data-return-state="rejected"' in page and "We reached them on 2 Dec" in page


def test_a_return_whose_delivery_was_voided_meanwhile_can_only_be_approved(
    secure_app, delivered, make_user
):
    """Voided on the void page while the return waited: rejecting it would tell the installer
    the delivery stays billed when it was credited."""
    manager = make_user("manager")
    request = finance.request_return(delivered.id, "duplicate", None)
    db.session.commit()
    finance.void_delivery_event(delivered.id, manager, "Duplicate of IED-000001")
    db.session.commit()
    with pytest.raises(finance.ReturnRefused, match="already voided .* approve the return"):
        finance.decide_return(request.id, manager, approve=False, remark="Not a duplicate")
    db.session.rollback()
    assert db.session.get(ReturnRequest, request.id).status == "pending"

    finance.decide_return(request.id, manager, approve=True, remark=None)
    db.session.commit()
    db.session.refresh(delivered)
    assert delivered.void_reason == "Duplicate of IED-000001"  # one credit, the first reason
    page = details_page(secure_app.test_client(), delivered)
    assert 'data-return-state="approved"' in page
    assert finance.cycle_billing_drift() == []


def test_the_return_limit_is_a_share_of_the_cycles_deliveries(
    app, make_installer, make_lead, operator
):
    installer = make_installer(return_limit_percent=25)
    events = [billed_delivery(make_lead, installer, operator) for _ in range(8)]
    for event in events[:2]:  # 25% of 8 deliveries: two returns
        finance.request_return(event.id, "duplicate", None)
    db.session.commit()
    with pytest.raises(finance.ReturnRefused, match=r"up to 25% .* 2 of the 8 delivered"):
        finance.request_return(events[2].id, "duplicate", None)
    db.session.rollback()
    # A rejected request no longer counts against the limit.
    first = db.session.scalars(sa.select(ReturnRequest).order_by(ReturnRequest.id)).first()
    finance.decide_return(first.id, operator, approve=False, remark="Not a duplicate")
    db.session.commit()
    assert finance.request_return(events[2].id, "duplicate", None).status == "pending"


def test_the_installer_form_takes_a_return_limit(client, login_as):
    from tests.test_installers_admin import VALID

    login_as("manager")
    bad = client.post("/installers/new", data={**VALID, "return_limit_percent": "150"})
    assert bad.status_code == 422 and "0 to 100" in bad.get_data(as_text=True)
    saved = client.post("/installers/new", data={**VALID, "return_limit_percent": "10"})
    assert saved.status_code == 303
    assert db.session.scalar(sa.select(Installer.return_limit_percent)) == 10


def test_managers_decide_returns_on_the_finance_tab(
    client, login_as, make_installer, make_lead, operator
):
    event = billed_delivery(make_lead, make_installer(price_per_lead=Decimal("30.00")), operator)
    request = finance.request_return(event.id, "wrong_contact_details", None)
    db.session.commit()
    login_as("manager")
    page = client.get("/finance/returns").get_data(as_text=True)
    assert f'id="return-{request.id}"' in page and "Wrong contact details" in page
    assert "1 pending" in page
    refused = client.post(f"/finance/returns/{request.id}/decision", data={"decision": "reject"})
    assert refused.status_code == 422 and "Say why" in refused.get_data(as_text=True)
    approved = client.post(
        f"/finance/returns/{request.id}/decision", data={"decision": "approve", "remark": "ok"}
    )
    assert approved.status_code == 303
    db.session.refresh(event)
    assert event.voided_at is not None
    twice = client.post(f"/finance/returns/{request.id}/decision", data={"decision": "approve"})
    assert twice.status_code == 409
    decided = client.get("/finance/returns?status=decided").get_data(as_text=True)
    assert 'data-return-status="approved"' in decided
    assert 'class="decision-form"' not in decided  # a decision is final: nothing to press
    assert 'data-event-status="voided"' in client.get("/finance").get_data(as_text=True)


def test_a_decision_refused_on_a_later_page_stays_on_that_page_with_its_remark(
    client, login_as, make_installer, make_lead, operator, monkeypatch
):
    monkeypatch.setattr(finance_queries, "PAGE_SIZE", 1)  # two pages of one request each
    installer = make_installer(price_per_lead=Decimal("30.00"))
    first, second = (
        finance.request_return(
            billed_delivery(make_lead, installer, operator).id, "duplicate", None
        )
        for _ in range(2)
    )
    db.session.commit()
    login_as("manager")
    page_one = client.get("/finance/returns").get_data(as_text=True)
    assert f'id="return-{first.id}"' in page_one and "First page" not in page_one
    page_two = client.get(f"/finance/returns?after={first.id}").get_data(as_text=True)
    assert f'action="/finance/returns/{second.id}/decision?after={first.id}"' in page_two
    assert 'href="/finance/returns">First page</a>' in page_two

    remark = "x" * (REASON_TEXT_LIMIT + 1)  # longer than a remark may be
    refused = client.post(
        f"/finance/returns/{second.id}/decision?after={first.id}",
        data={"decision": "reject", "remark": remark},
    )
    page = refused.get_data(as_text=True)
    assert refused.status_code == 422
    assert f'id="return-{second.id}"' in page and f'id="return-{first.id}"' not in page
    assert f">{remark}</textarea>" in page
    approved = client.post(
        f"/finance/returns/{second.id}/decision?after={first.id}", data={"decision": "approve"}
    )
    assert approved.status_code == 303
    assert approved.headers["Location"] == f"/finance/returns?after={first.id}"


def test_a_decision_on_a_return_decided_meanwhile_says_so_above_the_list(
    client, login_as, make_installer, make_lead, operator, make_user
):
    event = billed_delivery(make_lead, make_installer(price_per_lead=Decimal("30.00")), operator)
    request = finance.request_return(event.id, "duplicate", None)
    db.session.commit()
    colleague = make_user("manager", email="colleague@ied.test")
    login_as("manager")  # has the pending list open...
    finance.decide_return(request.id, colleague, approve=True, remark=None)  # ...and is beaten
    db.session.commit()
    late = client.post(
        f"/finance/returns/{request.id}/decision", data={"decision": "reject", "remark": "Dup"}
    )
    page = late.get_data(as_text=True)
    assert late.status_code == 409
    assert f'id="return-{request.id}"' not in page  # no longer pending: not on the list
    alert = re.search(r'<p class="alert-error" role="alert" id="decision-error">([^<]*)', page)
    assert alert and "already approved by colleague@ied.test" in alert.group(1)
    assert db.session.get(ReturnRequest, request.id).status == "approved"

    unknown = client.post("/finance/returns/2147483647/decision", data={"decision": "approve"})
    assert unknown.status_code == 404
    assert "has the id 2147483647." in unknown.get_data(as_text=True)


def test_an_installer_sees_only_its_own_delivery_and_returns_only_that_one(
    secure_app, delivered, make_lead, make_installer, operator
):
    other = billed_delivery(make_lead, make_installer(), operator, customer_name="Other Person")
    client = secure_app.test_client()
    page = details_page(client, delivered)
    assert delivered.lead.customer_name in page and "Other Person" not in page
    assert other.lead.reference not in page
    assert ask(client, delivered, reason="duplicate").status_code == 303
    assert finance.return_request_for(other) is None


def test_over_the_return_limit_the_signed_page_says_why(
    secure_app, make_installer, make_lead, operator
):
    installer = make_installer(return_limit_percent=10)
    event = billed_delivery(make_lead, installer, operator)  # 10% of 1 delivery: none
    for step in (None, "confirm"):  # said before the installer is asked to confirm, and after
        response = ask(secure_app.test_client(), event, step=step, reason="duplicate")
        assert response.status_code == 409
        page = response.get_data(as_text=True)
        assert "may return up to 10%" in page and 'role="alert"' in page
        assert "Yes, ask for the return" not in page
    assert finance.pending_returns_count() == 0


def test_a_return_explained_at_full_length_can_be_approved_with_a_full_remark(
    secure_app, delivered, make_user
):
    """The installer may explain in up to 1,000 characters and the manager remark as much;
    the credit's void reason quotes both, so approving it must not trip the void reason's own
    limit (the manager could neither approve it nor do anything but reject it)."""
    manager = make_user("manager")
    explanation = "The customer moved house before we called. " * 22  # 968 characters
    request = finance.request_return(delivered.id, "other", explanation)
    db.session.commit()
    remark = "Checked with the customer. " * 37  # 999 characters
    finance.decide_return(request.id, manager, approve=True, remark=remark)
    db.session.commit()
    db.session.refresh(delivered)
    assert delivered.voided_at is not None
    assert delivered.void_reason.startswith("Return approved: Other: The customer moved")
    assert request.status == "approved"
    assert finance.cycle_billing_drift() == []


def test_a_delivery_a_manager_voided_shows_credited_and_offers_no_return(
    secure_app, delivered, make_user
):
    finance.void_delivery_event(delivered.id, make_user("manager"), "Goodwill credit")
    db.session.commit()
    page = details_page(secure_app.test_client(), delivered)
    assert 'data-return-state="credited"' in page
    assert "IED has already credited this delivery" in page
    assert "Ask for a return" not in page
