"""The managers' activity log (/activity) and the lead page's timeline."""

import re
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from ied.activity.models import ActivityEntry
from ied.activity.queries import PAGE_SIZE, TIMELINE_SIZE
from ied.activity.services import record_activity
from ied.extensions import db
from tests.support.statements import recorded_statements


@pytest.fixture
def log(app):
    """Record an entry through the service, optionally back-dated, and commit it."""

    def write(verb, subject, *, at: datetime | None = None, **options) -> ActivityEntry:
        entry = record_activity(verb, subject, **options)
        if at is not None:
            entry.created_at = at
        db.session.commit()
        return entry

    return write


def shown_ids(html: str) -> list[int]:
    return [int(i) for i in re.findall(r'data-entry="(\d+)"', html)]


def all_ids(*where) -> list[int]:
    return list(
        db.session.scalars(
            sa.select(ActivityEntry.id)
            .where(*where)
            .order_by(ActivityEntry.created_at.desc(), ActivityEntry.id.desc())
        )
    )


@pytest.mark.parametrize("role, status", [("operator", 403), ("manager", 200), ("admin", 200)])
def test_the_log_is_for_managers_and_admins(client, login_as, role, status):
    login_as(role)
    assert client.get("/activity").status_code == status
    assert ('href="/activity"' in client.get("/leads").get_data(as_text=True)) == (status == 200)


def test_signed_out_visitors_are_sent_to_login(client):
    assert client.get("/activity").status_code == 302


def test_an_empty_log_says_so(client, login_as):
    login_as("manager")
    html = client.get("/activity?verb=installer.paused").get_data(as_text=True)
    assert "No activity matches these filters." in html


def test_each_filter_narrows_the_log(client, login_as, make_lead, make_user, log):
    manager = login_as("manager")
    first, second = make_lead(), make_lead()
    user = make_user("operator")
    old = datetime(2026, 3, 10, 12, tzinfo=UTC)
    by_manager = log("lead.status_changed", first, actor=manager)
    by_system = log("lead.status_changed", second, at=old)
    on_user = log("user.updated", user, actor=manager)

    def ids(query: str) -> set[int]:
        response = client.get(f"/activity?{query}")
        assert response.status_code == 200
        return set(shown_ids(response.get_data(as_text=True)))

    assert ids("verb=user.updated") == {on_user.id}
    assert ids(f"actor={manager.id}") == {by_manager.id, on_user.id}
    assert by_system.id in ids("actor=none") and by_manager.id not in ids("actor=none")
    assert on_user.id in ids("subject_type=user")
    assert ids("subject_type=user") == set(all_ids(ActivityEntry.subject_type == "user"))
    assert by_manager.id not in ids("subject_type=user")
    assert ids(f"lead={second.reference.lower()}") == set(
        all_ids(ActivityEntry.lead_id == second.id)
    )
    assert ids("since=2026-03-10&until=2026-03-10") == {by_system.id}
    assert ids("until=2026-03-09") == set()
    assert ids(f"verb=lead.status_changed&lead={first.reference}&actor={manager.id}") == {
        by_manager.id
    }


def test_filters_stay_in_the_url_and_in_the_form(client, login_as):
    login_as("manager")
    html = client.get("/activity?verb=user.updated&since=2026-03-01").get_data(as_text=True)
    assert '<option selected value="user.updated">' in html
    assert 'value="2026-03-01"' in html
    assert 'href="/activity"' in html  # clear filters


def test_a_bad_filter_is_refused_inline_and_the_others_still_apply(
    client, login_as, make_lead, log
):
    login_as("manager")
    lead = make_lead()
    entry = log("lead.status_changed", lead)
    response = client.get("/activity?verb=lead.won&since=2026-02-30&subject_type=lead")
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "Not a valid choice" in html and "Not a valid date value" in html
    assert entry.id in shown_ids(html)  # the subject filter still applies
    assert set(shown_ids(html)) == set(all_ids(ActivityEntry.subject_type == "lead"))


@pytest.mark.parametrize(
    "query", ["until=9999-12-31", "since=0001-01-01", "actor=99999999999999999999", "after=x~y"]
)
def test_filters_at_the_edges_are_refused_or_ignored_never_a_500(client, login_as, query):
    login_as("manager")
    response = client.get(f"/activity?{query}")
    assert response.status_code == (200 if query.startswith("after") else 422)


def test_the_end_before_the_start_is_refused(client, login_as):
    login_as("manager")
    response = client.get("/activity?since=2026-03-10&until=2026-03-01")
    assert response.status_code == 422
    assert "The end date is before the start date." in response.get_data(as_text=True)


def test_keyset_pages_walk_the_whole_log_newest_first_without_repeats(
    client, login_as, make_lead, log
):
    login_as("manager")
    lead = make_lead()
    tie = datetime(2026, 5, 1, 9, tzinfo=UTC)  # equal times: the id breaks the tie
    for number in range(PAGE_SIZE + 20):
        log("lead.status_changed", lead, at=tie if number % 3 else tie - timedelta(minutes=number))
    seen, url, pages = [], "/activity", 0
    while url:
        html = client.get(url).get_data(as_text=True)
        seen += shown_ids(html)
        pages += 1
        found = re.search(r'rel="next" href="([^"]+)"', html)
        url = found.group(1).replace("&amp;", "&") if found else None
    assert pages == 2
    assert seen == all_ids()


def test_keyset_pages_keep_the_filters(client, login_as, make_lead, make_user, log):
    login_as("manager")
    lead = make_lead()
    user = make_user("operator")
    for _ in range(PAGE_SIZE + 5):
        log("lead.status_changed", lead)
        log("user.updated", user)
    first = client.get("/activity?subject_type=user").get_data(as_text=True)
    next_url = re.search(r'rel="next" href="([^"]+)"', first).group(1).replace("&amp;", "&")
    assert "subject_type=user" in next_url
    second = client.get(next_url).get_data(as_text=True)
    assert shown_ids(first) + shown_ids(second) == all_ids(ActivityEntry.subject_type == "user")


def test_htmx_gets_the_results_only(client, login_as, make_lead):
    login_as("manager")
    make_lead()
    response = client.get("/activity?subject_type=lead", headers={"HX-Request": "true"})
    html = response.get_data(as_text=True)
    assert html.lstrip().startswith('<div id="activity-results">')
    assert "<html" not in html and shown_ids(html)
    assert "HX-Request" in response.headers["Vary"]


def test_the_query_count_does_not_grow_with_the_rows_shown(client, login_as, make_lead, log):
    login_as("manager")
    lead = make_lead()
    with recorded_statements() as statements:
        client.get("/activity")
        few = len(statements)
        for _ in range(PAGE_SIZE):
            log("lead.status_changed", lead, actor_label="installer Acme")
        statements.clear()
        html = client.get("/activity").get_data(as_text=True)
        assert len(shown_ids(html)) == PAGE_SIZE
        assert len(statements) == few


def test_the_lead_page_shows_its_latest_activity_and_links_to_the_rest(
    client, login_as, make_lead, log
):
    login_as("manager")
    lead, other = make_lead("reviewing"), make_lead()
    html = client.get(f"/leads/{lead.reference}").get_data(as_text=True)
    assert shown_ids(html) == all_ids(ActivityEntry.lead_id == lead.id)
    assert "Lead status changed" in html and "new → reviewing" in html
    for _ in range(TIMELINE_SIZE):
        log("lead.status_changed", lead)
    html = client.get(f"/leads/{lead.reference}").get_data(as_text=True)
    assert shown_ids(html) == all_ids(ActivityEntry.lead_id == lead.id)[:TIMELINE_SIZE]
    assert f'href="/activity?lead={lead.reference}"' in html
    assert not set(shown_ids(html)) & set(all_ids(ActivityEntry.lead_id == other.id))


def test_operators_see_the_timeline_without_a_link_to_the_managers_log(client, login_as, make_lead):
    login_as("operator")
    lead = make_lead()
    html = client.get(f"/leads/{lead.reference}").get_data(as_text=True)
    assert shown_ids(html) == all_ids(ActivityEntry.lead_id == lead.id)
    assert "/activity" not in html


def test_a_lead_is_named_by_its_reference_other_records_by_their_id(
    client, login_as, make_lead, make_installer, log
):
    login_as("manager")
    lead, installer = make_lead(), make_installer(company_name="Named Co")
    log("installer.updated", installer)
    html = client.get("/activity").get_data(as_text=True)
    assert f'<a href="/leads/{lead.reference}">Lead {lead.reference}</a>' in html
    assert f">Lead {lead.id}<" not in html
    assert f'<a href="/installers/{installer.id}/edit">Installer {installer.id}</a>' in html
