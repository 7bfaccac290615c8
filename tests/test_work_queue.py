"""The work queue: tabs with counts, search, keyset pages and one-click transitions."""

import re
from datetime import timedelta

import pytest
import sqlalchemy as sa

from ied import capped_counts
from ied.business_time import business_today, day_bounds
from ied.delivery import services as delivery
from ied.delivery.models import Assignment
from ied.delivery.services import queued_alert_delay
from ied.extensions import db
from ied.leads import queries
from ied.leads.models import Lead, LeadStatusChange
from ied.timestamps import utcnow
from tests.support.follow_ups import make_follow_up

HTMX = {"HX-Request": "true"}


def tab_count(html: str, tab: str) -> str:
    return re.search(rf'data-count="{tab}">([^<]*)<', html).group(1)


def references(html: str) -> list[str]:
    return re.findall(r'<tr id="lead-(IED-\d+)"', html)


def test_the_queue_needs_a_login(client):
    response = client.get("/leads")
    assert response.status_code == 302
    assert "/login" in response.headers["Location"]


def test_tabs_show_each_status_with_its_count(client, login_as, make_lead):
    login_as("operator")
    new = [make_lead("new") for _ in range(3)]
    reviewing = make_lead("reviewing")
    make_lead("ready_to_route")
    html = client.get("/leads").get_data(as_text=True)
    assert [tab_count(html, tab) for tab in queries.QUEUE_TABS] == ["3", "1", "1", "0", "0"]
    assert references(html) == [lead.reference for lead in reversed(new)]
    html = client.get("/leads?tab=reviewing").get_data(as_text=True)
    assert references(html) == [reviewing.reference]


@pytest.mark.parametrize(
    ("tab", "advice"),
    [
        ("new", "Enter a phone-in lead"),
        ("reviewing", "Start a review"),
        ("ready_to_route", "Approve reviewed leads"),
        ("assigned", "assign installers"),
        ("attention", "failed delivery"),
    ],
)
def test_empty_tabs_say_what_to_do(client, login_as, tab, advice):
    login_as("operator")
    html = client.get(f"/leads?tab={tab}").get_data(as_text=True)
    assert 'class="empty' in html
    assert advice in html


def test_counts_beyond_the_cap_show_as_a_floor(client, login_as, make_lead, monkeypatch):
    monkeypatch.setattr(capped_counts, "COUNT_CAP", 2)
    login_as("operator")
    for _ in range(3):
        make_lead("new")
    html = client.get("/leads").get_data(as_text=True)
    assert tab_count(html, "new") == "2+"


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("IED-{id}", "target"),
        ("ied{id}", "target"),
        ("pat.smith@exa", "target"),
        ("PAT.SMITH@example.com", "target"),
        ("07700 900", "target"),
        ("+44 7700 900123", "target"),
        ("M1", "target"),
        ("m1 1a", "target"),
        ("smith", "target"),
        ("Patricia", "target"),
        ("zzz-nobody", None),
    ],
)
def test_search_finds_a_lead_by_reference_email_phone_postcode_or_name(
    client, login_as, make_lead, query, expected
):
    login_as("operator")
    target = make_lead(
        "reviewing",
        customer_name="Patricia Smith",
        email="pat.smith@example.com",
        phone="07700 900123",
        postcode="M1 1AE",
    )
    make_lead("new", customer_name="Other Person", email="other@example.org", postcode="SW1A 1AA")
    html = client.get("/leads", query_string={"q": query.format(id=target.id)}).get_data(
        as_text=True
    )
    assert references(html) == ([target.reference] if expected else [])
    if not expected:
        assert "No lead matches" in html


def test_search_spans_every_status(client, login_as, make_lead):
    login_as("operator")
    lead = make_lead("ready_to_route", customer_name="Ronan Keating")
    html = client.get("/leads?tab=new&q=Ronan").get_data(as_text=True)
    assert references(html) == [lead.reference]


def test_search_treats_like_wildcards_as_text(client, login_as, make_lead):
    login_as("operator")
    make_lead("new", customer_name="Plain Name")
    html = client.get("/leads", query_string={"q": "%%%"}).get_data(as_text=True)
    assert references(html) == []


def test_keyset_pages_cover_every_lead_once_in_both_orders(
    client, login_as, make_lead, monkeypatch
):
    monkeypatch.setattr(queries, "PAGE_SIZE", 4)
    login_as("operator")
    created = [make_lead("new").reference for _ in range(10)]
    for order, expected in (("newest", created[::-1]), ("oldest", created)):
        seen, url = [], f"/leads?order={order}"
        while url:
            html = client.get(url).get_data(as_text=True)
            assert "OFFSET" not in html
            seen += references(html)
            match = re.search(r'rel="next" href="([^"]+)"', html)
            url = match.group(1).replace("&amp;", "&") if match else None
        assert seen == expected


def test_a_page_of_leads_costs_the_same_queries_however_many_rows(client, login_as, make_lead):
    login_as("operator")

    def flagged_lead():  # its duplicate link points at a lead in another tab
        make_lead("new", email=make_lead("reviewing").email)

    flagged_lead()
    statements = []

    def count(conn, cursor, statement, *args):
        statements.append(statement)

    sa.event.listen(db.engine, "before_cursor_execute", count)
    try:
        client.get("/leads")
        few = len(statements)
        for _ in range(5):
            flagged_lead()
        statements.clear()
        client.get("/leads")
        assert len(statements) == few
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", count)


def test_needs_attention_lists_failed_and_long_queued_deliveries(
    client, login_as, make_lead, make_installer, operator
):
    login_as("operator")
    installer = make_installer()
    failed, stuck, fresh = (make_lead("ready_to_route") for _ in range(3))
    for lead in (failed, stuck, fresh):
        delivery.assign_installers(lead, [installer.id], operator)
    db.session.flush()
    assignment = {a.lead_id: a for a in db.session.scalars(sa.select(Assignment))}
    delivery.record_delivery_failure(assignment[failed.id].id, "550 no such mailbox")
    # Queued 16 minutes ago: as if the clock had moved on since it was assigned.
    assignment[stuck.id].queued_at = utcnow() - queued_alert_delay() - timedelta(minutes=1)
    delivery.refresh_delivery_attention(stuck)
    db.session.commit()
    html = client.get("/leads?tab=attention").get_data(as_text=True)
    assert sorted(references(html)) == sorted([failed.reference, stuck.reference])
    assert tab_count(html, "attention") == "2"
    assert tab_count(html, "assigned") == "3"


def test_start_review_swaps_the_row_and_the_counts_in_one_small_fragment(
    client, login_as, make_lead
):
    user = login_as("operator")
    lead = make_lead("new")
    make_lead("new")
    response = client.post(
        f"/leads/{lead.reference}/advance",
        data={"to_status": "reviewing", "tab": "new"},
        headers=HTMX,
    )
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "<html" not in html and '<nav aria-label="Main"' not in html
    assert len(response.data) < 5000
    assert html.lstrip().startswith(f'<tr id="lead-{lead.reference}"')
    assert 'data-status="reviewing"' in html and "Approve for routing" in html
    assert 'id="queue-tabs"' in html and 'hx-swap-oob="true"' in html
    assert tab_count(html, "new") == "1" and tab_count(html, "reviewing") == "1"
    db.session.refresh(lead)
    assert lead.status == "reviewing"
    change = db.session.scalars(
        sa.select(LeadStatusChange).order_by(LeadStatusChange.id.desc())
    ).first()
    assert (change.from_status, change.to_status, change.changed_by_id) == (
        "new",
        "reviewing",
        user.id,
    )


def test_approve_without_javascript_redirects_back_to_the_queue(
    client, login_as, make_lead, make_installer
):
    login_as("operator")
    make_installer()  # someone can take it: no warning first
    lead = make_lead("reviewing")
    response = client.post(
        f"/leads/{lead.reference}/advance",
        data={"to_status": "ready_to_route", "next": "/leads?tab=reviewing"},
    )
    assert response.status_code == 303
    assert response.headers["Location"] == "/leads?tab=reviewing"
    page = client.get("/leads?tab=reviewing").get_data(as_text=True)
    assert f"{lead.reference} is now ready to route." in page
    db.session.refresh(lead)
    assert lead.status == "ready_to_route"


def test_the_redirect_never_leaves_the_site(client, login_as, make_lead):
    login_as("operator")
    lead = make_lead("new")
    response = client.post(
        f"/leads/{lead.reference}/advance",
        data={"to_status": "reviewing", "next": "https://evil.example/"},
    )
    assert response.headers["Location"] == f"/leads/{lead.reference}"


@pytest.mark.parametrize(
    ("status", "to_status"),
    [
        ("reviewing", "reviewing"),
        ("new", "ready_to_route"),
        ("ready_to_route", "assigned"),
        ("new", "won"),
    ],
)
def test_a_refused_move_shows_why_in_the_row_and_changes_nothing(
    client, login_as, make_lead, status, to_status
):
    login_as("operator")
    lead = make_lead(status)
    history = db.session.scalar(sa.select(sa.func.count()).select_from(LeadStatusChange))
    response = client.post(
        f"/leads/{lead.reference}/advance", data={"to_status": to_status}, headers=HTMX
    )
    html = response.get_data(as_text=True)
    assert response.status_code == 409
    assert 'role="alert"' in html and f'<tr id="lead-{lead.reference}"' in html
    assert "cannot" in html or "only by assigning" in html
    db.session.refresh(lead)
    assert lead.status == status
    assert db.session.scalar(sa.select(sa.func.count()).select_from(LeadStatusChange)) == history


def test_a_refused_move_without_javascript_is_flashed(client, login_as, make_lead):
    login_as("operator")
    lead = make_lead("reviewing")
    response = client.post(
        f"/leads/{lead.reference}/advance", data={"to_status": "reviewing"}, follow_redirects=True
    )
    assert "cannot move to" in response.get_data(as_text=True).replace("&#39;", "'")
    db.session.refresh(lead)
    assert lead.status == "reviewing"


def test_transitions_need_the_csrf_token(make_app, make_user, make_lead):
    from tests.conftest import TEST_PASSWORD

    app = make_app(WTF_CSRF_ENABLED=True)
    with app.app_context():
        client = app.test_client()
        user = make_user("operator")
        login_page = client.get("/login").get_data(as_text=True)
        token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', login_page).group(1)
        client.post(
            "/login", data={"email": user.email, "password": TEST_PASSWORD, "csrf_token": token}
        )
        lead = make_lead("new")
        refused = client.post(
            f"/leads/{lead.reference}/advance", data={"to_status": "reviewing"}, headers=HTMX
        )
        assert refused.status_code == 400
        page = client.get("/leads").get_data(as_text=True)
        token = re.search(r'"X-CSRFToken": "([^"]+)"', page).group(1)
        accepted = client.post(
            f"/leads/{lead.reference}/advance",
            data={"to_status": "reviewing"},
            headers={**HTMX, "X-CSRFToken": token},
        )
        assert accepted.status_code == 200
        assert db.session.get(Lead, lead.id).status == "reviewing"


def _attention_by_direct_query(now) -> set[int]:
    """The tab's meaning read straight from the assignments, as it was before it was kept."""
    return set(
        db.session.scalars(
            sa.select(Assignment.lead_id).where(
                sa.or_(
                    Assignment.status == "failed",
                    sa.and_(
                        Assignment.status == "queued",
                        Assignment.queued_at <= now - queued_alert_delay(),
                    ),
                )
            )
        )
    )


def test_the_kept_attention_moment_follows_every_delivery_change(
    client, login_as, make_lead, make_installer, operator
):
    login_as("operator")
    first, second = make_installer(), make_installer()
    lead = make_lead("ready_to_route")

    def tab() -> list[str]:
        db.session.commit()
        later = utcnow() + queued_alert_delay() + timedelta(seconds=1)
        kept = set(
            db.session.scalars(sa.select(Lead.id).where(Lead.delivery_attention_at <= later))
        )
        assert kept == _attention_by_direct_query(later)  # also true a quarter hour on
        return references(client.get("/leads?tab=attention").get_data(as_text=True))

    one, two = delivery.assign_installers(lead, [first.id, second.id], operator)
    assert tab() == []  # queued just now: not yet stuck
    delivery.record_delivery_failure(one.id, "550 no such mailbox")
    assert tab() == [lead.reference]
    delivery.record_delivery_success(two.id)
    assert tab() == [lead.reference]  # one failed delivery is enough
    delivery.resend(one, operator)
    assert tab() == []
    delivery.record_delivery_failure(one.id, "550 still no mailbox")
    assert tab() == [lead.reference]
    delivery.withdraw(one, operator)
    assert tab() == []
    assert db.session.get(Lead, lead.id).delivery_attention_at is None


def test_the_queue_head_counts_follow_ups_overdue_and_due_today(
    client, login_as, make_lead, make_installer, operator
):
    login_as("operator")
    now = utcnow()
    _, end_of_today = day_bounds(business_today(now))
    for due_at in (
        now - timedelta(days=2),
        now - timedelta(days=1),
        now + (end_of_today - now) / 2,
        end_of_today + timedelta(days=1),
    ):
        make_follow_up(make_lead, make_installer, operator, due_at)
    head = client.get("/leads").get_data(as_text=True)
    today = re.search(r"<p class=\"today\" data-today>(.*?)</p>", head, re.S).group(1)
    assert ">2 overdue</a>" in today and ">1 due today</a>" in today


def test_after_the_alert_setting_changes_the_refresh_command_moves_every_kept_moment(
    app, make_app, make_lead, make_installer, operator
):
    installer = make_installer()
    lead = make_lead("ready_to_route")
    (assignment,) = delivery.assign_installers(lead, [installer.id], operator)
    db.session.commit()
    queued_at, lead_id = assignment.queued_at, lead.id
    assert lead.delivery_attention_at == queued_at + timedelta(minutes=15)
    later = make_app(DELIVERY_QUEUED_ALERT_MINUTES=60)
    with later.app_context():
        result = later.test_cli_runner().invoke(args=["ied", "refresh-delivery-attention"])
        assert result.exit_code == 0 and "1 lead(s) changed." in result.output
        kept = db.session.get(Lead, lead_id).delivery_attention_at
        assert kept == queued_at + timedelta(minutes=60)
        again = later.test_cli_runner().invoke(args=["ied", "refresh-delivery-attention"])
        assert "0 lead(s) changed." in again.output
