"""The follow-up contract's validation scenarios, driven through the HTTP layer."""

import re
from datetime import UTC, date, datetime, timedelta

import pytest
import sqlalchemy as sa

from ied.business_time import business_today
from ied.delivery import services as delivery
from ied.delivery.models import DeliveryEvent
from ied.extensions import db
from ied.followups.models import ContactAttempt, FollowUp
from ied.leads.models import LeadStatusChange
from tests import test_follow_up_contract
from tests.support.follow_ups import deliver, make_follow_up

HTMX = {"HX-Request": "true"}
# A lead delivered to one installer, with a second installer whose delivery failed.
delivered_lead = test_follow_up_contract.delivered_lead


def count(model, *where) -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(model).where(*where))


def reload(follow_up: FollowUp) -> FollowUp:
    db.session.expire_all()
    return db.session.get(FollowUp, follow_up.id)


@pytest.fixture
def pending(app, make_lead, make_installer, operator):
    return make_follow_up(
        make_lead, make_installer, operator, datetime.now(UTC) + timedelta(days=3)
    )


def create(client, lead, installer_id, due_date, headers=None):
    return client.post(
        f"/leads/{lead.reference}/follow-up",
        data={"installer_id": installer_id, "due_date": due_date, "notes": "Check the install"},
        headers=headers or {},
    )


def log_attempt(client, follow_up, outcome, note="", headers=None):
    return client.post(
        f"/follow-ups/{follow_up.id}/attempts",
        data={"outcome": outcome, "note": note},
        headers=headers or {},
    )


def record_outcome(client, follow_up, headers=None, **fields):
    data = {"satisfaction_outcome": "satisfied", "notes": ""}
    data.update(fields)
    return client.post(f"/follow-ups/{follow_up.id}/outcome", data=data, headers=headers or {})


def test_a_lead_does_not_create_a_follow_up_until_operations_explicitly_needs_it(
    client, login_as, delivered_lead, make_lead
):
    login_as("operator")
    lead, good, _ = delivered_lead
    panel = client.get(f"/leads/{lead.reference}/follow-up/new", headers=HTMX).get_data(
        as_text=True
    )
    assert "Create follow-up" in panel
    assert count(FollowUp) == 0  # delivery alone creates nothing

    undelivered = make_lead("ready_to_route")
    panel = client.get(f"/leads/{undelivered.reference}/follow-up/new").get_data(as_text=True)
    assert "Create follow-up" not in panel
    assert "no sent delivery yet" in panel
    response = create(client, undelivered, good.id, "2030-01-15", HTMX)
    assert response.status_code == 409
    assert "no sent delivery yet" in response.get_data(as_text=True)
    assert count(FollowUp) == 0


def test_the_default_due_date_of_a_long_ago_delivery_is_today_not_a_past_day(
    app, client, login_as, delivered_lead
):
    """Fourteen days after a delivery of two months ago made the new follow-up overdue."""
    from ied.business_time import business_today

    login_as("operator")
    lead, good, _ = delivered_lead
    sent = db.session.scalars(
        sa.select(delivery.Assignment).where(delivery.Assignment.installer_id == good.id)
    ).one()
    sent.sent_at = datetime.now(UTC) - timedelta(days=60)
    db.session.commit()
    form = client.get(f"/leads/{lead.reference}/follow-up/new").get_data(as_text=True)
    due = form.split('name="due_date"')[1].split(">")[0]
    assert f'value="{business_today().isoformat()}"' in due


def test_a_delivered_lead_can_create_one_primary_follow_up_record(
    app, client, login_as, delivered_lead
):
    login_as("operator")
    lead, good, bad = delivered_lead
    form = client.get(f"/leads/{lead.reference}/follow-up/new").get_data(as_text=True)
    sent_at = db.session.scalars(
        sa.select(delivery.Assignment.sent_at).where(delivery.Assignment.installer_id == good.id)
    ).one()
    default = (sent_at + timedelta(days=app.config["FOLLOW_UP_DEFAULT_DAYS"])).date()
    assert f'value="{default.isoformat()}"' in form  # the default is shown before saving
    installers = form.split('name="installer_id"')[1].split("</select>")[0]
    assert good.company_name in installers
    assert bad.company_name not in installers  # only installers whose delivery was sent

    missing_date = create(client, lead, good.id, "")
    assert missing_date.status_code == 422
    assert "Give a due date." in missing_date.get_data(as_text=True)
    assert "Check the install" in missing_date.get_data(as_text=True)  # input kept
    # A typed year the calendar ends at (no end of that business day: a 500 before), or one
    # two thousand years back (an instantly overdue follow-up, saved before).
    assert create(client, lead, good.id, "not a date").status_code == 422
    for far in ("9999-12-31", "0202-05-01"):
        response = create(client, lead, good.id, far, HTMX)
        assert response.status_code == 422, far
        assert "within 10 years of today" in response.get_data(as_text=True)
    yesterday = business_today() - timedelta(days=1)
    past = create(client, lead, good.id, yesterday.isoformat(), HTMX)
    assert past.status_code == 422
    assert f"{yesterday:%d %b %Y} has passed: give today or a later day." in past.get_data(
        as_text=True
    )
    failed_installer = create(client, lead, bad.id, "2030-01-15", HTMX)
    assert failed_installer.status_code == 422
    assert count(FollowUp) == 0

    response = create(client, lead, good.id, "2030-01-15")
    assert response.status_code == 303
    follow_up = db.session.scalars(sa.select(FollowUp)).one()
    assert response.headers["Location"].endswith(f"/follow-ups/{follow_up.id}")
    assert (follow_up.status, follow_up.installer_id) == ("pending", good.id)
    assert follow_up.due_at.astimezone(UTC) == datetime(2030, 1, 15, 23, 59, 59, tzinfo=UTC)
    assert follow_up.notes == "Check the install"

    again = create(client, lead, good.id, "2030-02-01", HTMX)
    assert again.status_code == 409
    assert "already has its follow-up" in again.get_data(as_text=True)
    assert count(FollowUp) == 1


def test_creating_with_htmx_swaps_the_panel_to_the_follow_up(client, login_as, delivered_lead):
    login_as("operator")
    lead, good, _ = delivered_lead
    response = create(client, lead, good.id, "2030-01-15", HTMX)
    body = response.get_data(as_text=True)
    assert response.status_code == 200
    assert 'id="follow-up-panel"' in body
    assert "Follow-up created." in body and "Open follow-up" in body
    assert "<html" not in body


def test_a_due_follow_up_can_remain_pending_until_action_starts(
    client, login_as, make_lead, make_installer, operator
):
    follow_up = make_follow_up(
        make_lead, make_installer, operator, datetime.now(UTC) - timedelta(days=3)
    )
    login_as("manager")
    overdue = client.get("/follow-ups?due=overdue").get_data(as_text=True)
    assert follow_up.lead.reference in overdue
    assert "3 days overdue" in overdue
    page = client.get(f"/follow-ups/{follow_up.id}").get_data(as_text=True)
    assert "Start working it" in page
    assert reload(follow_up).status == "pending"


def test_once_staff_begin_working_it_status_moves_to_in_progress(
    client, login_as, pending, make_lead, make_installer, operator
):
    user = login_as("operator")
    response = client.post(f"/follow-ups/{pending.id}/start")
    assert response.status_code == 303
    assert (reload(pending).status, reload(pending).started_at is not None) == ("in_progress", True)

    # Logging a first contact attempt also starts a pending follow-up.
    other = make_follow_up(make_lead, make_installer, operator, datetime.now(UTC))
    response = log_attempt(client, other, "no_response", "Rang twice", HTMX)
    assert response.status_code == 200
    other = reload(other)
    assert other.status == "in_progress"
    assert (
        other.contact_attempt_count,
        other.last_contacted_by_email,
        other.last_contact_outcome,
    ) == (1, user.email, "no_response")
    body = response.get_data(as_text=True)
    assert 'id="follow-up-attempts"' in body and "Rang twice" in body
    # The summary (count, last contact, status) swaps out of band in the same response.
    assert 'id="follow-up-summary" hx-swap-oob="true"' in body
    assert "data-attempt-count>1<" in body and "In progress" in body


def test_contact_happens_and_satisfaction_recorded_with_no_open_issue_becomes_completed(
    client, login_as, pending
):
    login_as("operator")
    assert log_attempt(client, pending, "reached_customer").status_code == 303
    assert record_outcome(client, pending, referral_opportunity="y").status_code == 303
    assert client.post(f"/follow-ups/{pending.id}/close").status_code == 303
    follow_up = reload(pending)
    assert (follow_up.status, follow_up.satisfaction_outcome, follow_up.referral_opportunity) == (
        "completed",
        "satisfied",
        True,
    )
    assert follow_up.completed_at is not None


def test_contact_happens_but_a_customer_issue_remains_open_becomes_closed_with_issue(
    client, login_as, pending
):
    login_as("operator")
    log_attempt(client, pending, "reached_customer")
    record_outcome(
        client,
        pending,
        satisfaction_outcome="unsatisfied",
        has_issue="y",
        issue_summary="Scaffolding left behind",
    )
    assert client.post(f"/follow-ups/{pending.id}/close", headers=HTMX).status_code == 200
    assert reload(pending).status == "closed_with_issue"
    open_issues = client.get("/follow-ups?issue=open").get_data(as_text=True)
    assert pending.lead.reference in open_issues

    response = client.post(f"/follow-ups/{pending.id}/resolve-issue", headers=HTMX)
    assert response.status_code == 200
    assert (reload(pending).status, reload(pending).issue_resolved) == ("closed_with_issue", True)
    assert pending.lead.reference not in client.get("/follow-ups?issue=open").get_data(as_text=True)


@pytest.mark.parametrize(
    ("case", "outcomes", "satisfaction", "reason"),
    [
        ("no contact at all", [], "satisfied", "reached the customer"),
        ("only a message left", ["left_message"], "satisfied", "reached the customer"),
        ("no satisfaction recorded", ["reached_customer"], "", "satisfaction"),
    ],
)
def test_closing_is_refused_with_a_clear_reason_until_contact_and_satisfaction(
    client, login_as, pending, case, outcomes, satisfaction, reason
):
    login_as("operator")
    for outcome in outcomes:
        log_attempt(client, pending, outcome)
    record_outcome(client, pending, satisfaction_outcome=satisfaction)
    status_before = reload(pending).status
    response = client.post(f"/follow-ups/{pending.id}/close", headers=HTMX)
    assert response.status_code == 409
    body = response.get_data(as_text=True)
    assert 'role="alert"' in body and reason in body
    assert reload(pending).status == status_before
    # Without htmx: back to the page, the reason flashed, nothing changed.
    plain = client.post(f"/follow-ups/{pending.id}/close", follow_redirects=True)
    assert reason in plain.get_data(as_text=True)
    assert reload(pending).status == status_before


def test_bad_input_is_shown_inline_with_422_and_kept(client, login_as, pending):
    login_as("operator")
    no_outcome = log_attempt(client, pending, "", "Kept note", HTMX)
    assert no_outcome.status_code == 422
    assert "Choose what happened." in no_outcome.get_data(as_text=True)
    assert "Kept note" in no_outcome.get_data(as_text=True)
    # The radios' error is their group's description: a screen reader says it on reaching them.
    group = re.search(
        r"<fieldset[^>]*>\s*<legend>Outcome</legend>", no_outcome.get_data(as_text=True)
    )
    assert group and 'aria-describedby="outcome-error"' in group.group(0)
    assert '<p class="error" id="outcome-error">Choose what happened.</p>' in no_outcome.get_data(
        as_text=True
    )
    bogus = log_attempt(client, pending, "won", "", HTMX)
    assert bogus.status_code == 422 and "Outcome must be one of" in bogus.get_data(as_text=True)
    no_summary = record_outcome(
        client, pending, has_issue="y", issue_summary=" ", notes="Kept notes"
    )
    assert no_summary.status_code == 422
    assert "Describe the issue" in no_summary.get_data(as_text=True)
    assert "Kept notes" in no_summary.get_data(as_text=True)
    assert count(ContactAttempt) == 0
    assert reload(pending).satisfaction_outcome is None


def test_an_htmx_action_says_what_it_did_in_the_part_it_swaps(client, login_as, pending):
    """Saving the outcome as it already was changes nothing on screen: without a word the
    button would look as if it did nothing."""
    login_as("operator")
    saved = record_outcome(client, pending, headers=HTMX, satisfaction_outcome="")
    assert saved.status_code == 200
    outcome_part = saved.get_data(as_text=True).split('id="follow-up-summary"')[0]
    assert 'role="status">Outcome recorded.</p>' in outcome_part
    logged = log_attempt(client, pending, "attempted", headers=HTMX)
    assert 'role="status">Contact attempt logged.</p>' in logged.get_data(as_text=True)
    page = client.get(f"/follow-ups/{pending.id}").get_data(as_text=True)
    assert 'role="status"' not in page  # a page drawn afresh has nothing to report


def test_a_closed_follow_up_takes_no_more_attempts(client, login_as, pending):
    login_as("operator")
    log_attempt(client, pending, "reached_customer")
    record_outcome(client, pending)
    client.post(f"/follow-ups/{pending.id}/close")
    response = log_attempt(client, pending, "attempted", headers=HTMX)
    assert response.status_code == 409
    assert "contact attempts are logged on open follow-ups only" in response.get_data(as_text=True)
    assert count(ContactAttempt) == 1


def test_dashboard_and_admin_views_can_filter_due_in_progress_completed_and_issue_bearing(
    client, login_as, make_lead, make_installer, operator
):
    now = datetime.now(UTC)
    made = {
        name: make_follow_up(make_lead, make_installer, operator, now + timedelta(days=days))
        for name, days in [
            ("overdue", -2),
            ("upcoming", 5),
            ("in_progress", 9),
            ("completed", 1),
            ("issue", -1),
        ]
    }
    login_as("manager")
    client.post(f"/follow-ups/{made['in_progress'].id}/start")
    for name, extra in [("completed", {}), ("issue", {"has_issue": "y", "issue_summary": "Leak"})]:
        log_attempt(client, made[name], "reached_customer")
        record_outcome(client, made[name], **extra)
        client.post(f"/follow-ups/{made[name].id}/close")

    def shown(query: str) -> set[str]:
        body = client.get(f"/follow-ups?{query}", headers=HTMX).get_data(as_text=True)
        return {name for name, follow_up in made.items() if follow_up.lead.reference in body}

    assert shown("due=overdue") == {"overdue"}
    assert shown("due=upcoming") == {"upcoming", "in_progress"}
    assert shown("status=in_progress") == {"in_progress"}
    assert shown("due=done") == {"completed", "issue"}
    assert shown("issue=open") == {"issue"}
    assert shown("") == set(made)


# A follow-up never changes the lead's status or history, nor billing: every action, one by one.


def snapshot(lead):
    db.session.expire_all()
    return (
        db.session.get(type(lead), lead.id).status,
        db.session.execute(
            sa.select(LeadStatusChange.id, LeadStatusChange.to_status).order_by(LeadStatusChange.id)
        ).all(),
        db.session.execute(
            sa.select(
                DeliveryEvent.id,
                DeliveryEvent.price,
                DeliveryEvent.voided_at,
                DeliveryEvent.billing_cycle,
            )
        ).all(),
    )


ACTIONS = {
    "create": lambda client, lead, f: create(client, lead, f["installer"].id, "2030-01-15"),
    "start": lambda client, lead, f: client.post(f"/follow-ups/{f['follow_up'].id}/start"),
    "log attempt": lambda client, lead, f: log_attempt(client, f["follow_up"], "reached_customer"),
    "record outcome": lambda client, lead, f: record_outcome(
        client, f["follow_up"], has_issue="y", issue_summary="Broken tile"
    ),
    "close": lambda client, lead, f: client.post(f"/follow-ups/{f['follow_up'].id}/close"),
    "mark issue resolved": lambda client, lead, f: client.post(
        f"/follow-ups/{f['follow_up'].id}/resolve-issue"
    ),
}


@pytest.mark.parametrize("action", list(ACTIONS))
def test_no_follow_up_action_changes_the_lead_lifecycle_or_billing(
    client, login_as, make_lead, make_installer, operator, action
):
    installer = make_installer()
    lead = deliver(make_lead("ready_to_route"), [installer], operator)
    login_as("operator")
    fixtures = {"installer": installer}
    steps = list(ACTIONS)
    for step in steps[: steps.index(action)]:  # bring the follow-up to where the action applies
        assert ACTIONS[step](client, lead, fixtures).status_code == 303, step
        fixtures["follow_up"] = db.session.scalars(sa.select(FollowUp)).one()
    before = snapshot(lead)
    response = ACTIONS[action](client, lead, fixtures)
    assert response.status_code == 303
    assert snapshot(lead) == before


def test_an_htmx_post_with_csrf_on_needs_the_token_from_the_page(
    make_app, make_user, make_lead, make_installer
):
    app = make_app(WTF_CSRF_ENABLED=True)
    with app.app_context():
        from tests.conftest import TEST_PASSWORD

        operator = make_user("operator")
        follow_up = make_follow_up(
            make_lead,
            make_installer,
            operator,
            datetime.combine(date(2030, 1, 15), datetime.min.time(), UTC),
        )
        client = app.test_client()
        login_page = client.get("/login").get_data(as_text=True)
        token = login_page.split('name="csrf-token" content="')[1].split('"')[0]
        client.post(
            "/login", data={"email": operator.email, "password": TEST_PASSWORD, "csrf_token": token}
        )
        page = client.get(f"/follow-ups/{follow_up.id}").get_data(as_text=True)
        token = page.split('name="csrf-token" content="')[1].split('"')[0]
        refused = client.post(f"/follow-ups/{follow_up.id}/start", headers=HTMX)
        assert refused.status_code == 400
        assert reload(follow_up).status == "pending"
        started = client.post(
            f"/follow-ups/{follow_up.id}/start", headers={**HTMX, "X-CSRFToken": token}
        )
        assert started.status_code == 200
        assert reload(follow_up).status == "in_progress"


def test_the_lead_pages_follow_up_panel_says_when_the_follow_up_is_overdue(
    client, login_as, make_lead, make_installer, operator
):
    """The follow-up list and page flag it; the lead page showed only Pending and a date."""
    login_as("operator")
    late = make_follow_up(
        make_lead, make_installer, operator, datetime.now(UTC) - timedelta(days=3)
    )
    html = client.get(f"/leads/{late.lead.reference}").get_data(as_text=True)
    panel = html[html.index('id="follow-up-panel"') : html.index('id="status-history"')]
    assert '<span class="badge badge-overdue">3 days overdue</span>' in panel

    soon = make_follow_up(
        make_lead, make_installer, operator, datetime.now(UTC) + timedelta(days=3)
    )
    html = client.get(f"/leads/{soon.lead.reference}").get_data(as_text=True)
    panel = html[html.index('id="follow-up-panel"') : html.index('id="status-history"')]
    assert "overdue" not in panel and "due today" not in panel


def test_the_close_button_is_the_primary_action_only_once_it_can_close(client, login_as, pending):
    login_as("operator")

    def close_button() -> str:
        page = client.get(f"/follow-ups/{pending.id}").get_data(as_text=True)
        return page.split(">Close as completed<")[0].rsplit("<button", 1)[1]

    assert "primary" not in close_button()  # nobody reached yet: it can only refuse
    log_attempt(client, pending, "reached_customer")
    record_outcome(client, pending, satisfaction_outcome="satisfied")
    assert 'class="button primary"' in close_button()


def test_an_outcome_saved_over_one_someone_else_saved_meanwhile_is_refused_and_kept(
    client, login_as, pending
):
    """Two people with the page open: the second save would silently replace the first."""
    login_as("operator")
    page = client.get(f"/follow-ups/{pending.id}").get_data(as_text=True)
    read_version = re.search(r'name="read_version" type="hidden" value="(\w+)"', page).group(1)
    theirs = record_outcome(client, pending, satisfaction_outcome="unsatisfied", notes="Theirs")
    assert theirs.status_code == 303

    mine = record_outcome(
        client,
        pending,
        HTMX,
        satisfaction_outcome="satisfied",
        notes="Mine",
        read_version=read_version,
    )
    body = mine.get_data(as_text=True)
    assert mine.status_code == 422
    assert "Someone else saved this outcome after you opened the page" in body
    assert "satisfaction now: unsatisfied" in body and "Mine" in body  # my entries kept
    assert (reload(pending).satisfaction_outcome, reload(pending).notes) == (
        "unsatisfied",
        "Theirs",
    )

    again = re.search(r'name="read_version" type="hidden" value="(\w+)"', body).group(1)
    saved = record_outcome(
        client, pending, HTMX, satisfaction_outcome="satisfied", notes="Mine", read_version=again
    )
    assert saved.status_code == 200
    assert (reload(pending).satisfaction_outcome, reload(pending).notes) == ("satisfied", "Mine")
