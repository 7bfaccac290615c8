"""The hot pages run at most MAX_STATEMENTS SQL statements, however much their lead holds.

A page's statement count is a property of its code (no N+1, no per-row loads), so it is tested
here; how long the statements take is for `make bench`. Each count is the whole request's, as
`make bench` counts it (X-Bench-Statements): the signed-in user's load included, with
installers in the database (without any, the queue rows' eligibility reads nothing).
"""

import json
from datetime import timedelta

from ied.delivery import services as delivery
from ied.delivery.jobs import ABANDONED
from ied.delivery.models import Assignment
from ied.extensions import db
from ied.followups import services as followups
from ied.intake.services import create_api_key
from ied.row_locks import lock_one
from ied.timestamps import utcnow
from tests.support.follow_ups import deliver
from tests.support.statements import recorded_statements

MAX_STATEMENTS = 8


def _get(client, url: str, headers=None) -> list[str]:
    db.session.expire_all()  # nothing cached from the setup: the request loads what it shows
    with recorded_statements() as statements:
        response = client.get(url, headers=headers or {})
    assert response.status_code == 200, url
    return statements


def _attempt(assignment_id: int, status: str, error: str | None = None) -> None:
    assignment = lock_one(Assignment, assignment_id)
    audit = delivery.begin_attempt(assignment, job_id=None, lease_seconds=60)
    delivery.finish_attempt(audit, status=status, smtp_code=250, error=error)


def _busy_lead(make_lead, make_installer, operator, installers: int):
    """A compare-quotes lead with three deliveries (sent, failed after retries, queued), their
    audit rows, status history and a follow-up, among `installers` installers."""
    chosen = [make_installer() for _ in range(3)]
    for _ in range(installers - 3):
        make_installer()
    lead = make_lead("ready_to_route")
    sent, failed, queued = delivery.assign_installers(lead, [i.id for i in chosen], operator)
    _attempt(sent.id, "sent")
    delivery.record_delivery_success(sent.id)
    for _ in range(3):
        _attempt(failed.id, "failed", ABANDONED)
    delivery.record_delivery_failure(failed.id, "Retries used up")
    followups.create_follow_up(lead, chosen[0].id, utcnow() + timedelta(days=3), operator)
    db.session.commit()
    return lead, queued


def test_the_lead_page_does_not_grow_with_its_deliveries_or_installers(
    client, login_as, make_lead, make_installer, operator
):
    login_as("manager")
    small, _ = _busy_lead(make_lead, make_installer, operator, installers=3)
    before = _get(client, f"/leads/{small.reference}")

    big, queued = _busy_lead(make_lead, make_installer, operator, installers=12)
    for _ in range(4):
        _attempt(queued.id, "failed", "421 try later")
    db.session.commit()
    after = _get(client, f"/leads/{big.reference}")

    assert len(after) <= MAX_STATEMENTS, "\n\n".join(after)
    assert len(after) == len(before), "\n\n".join(after)


def test_the_queue_tabs_searches_and_next_pages_stay_within_the_budget(
    client, login_as, make_lead, make_installer, operator
):
    login_as("manager")
    installer = make_installer()
    leads = [make_lead("ready_to_route", customer_name=f"Pat Jones {n}") for n in range(3)]
    deliver(leads[0], [installer], operator)
    urls = [
        "/leads",
        "/leads?tab=reviewing",
        "/leads?tab=ready_to_route",
        "/leads?tab=assigned",
        "/leads?tab=attention",
        f"/leads?q={leads[1].reference}",
        f"/leads?q={leads[1].email}",
        "/leads?q=Jones",
        "/leads?q=SW1A",
        "/installers",
        "/follow-ups",
        "/follow-ups?due=overdue",
        "/follow-ups?due=due_today",
        "/follow-ups?issue=open",
    ]
    for url in urls:
        for headers in ({}, {"HX-Request": "true"}):
            statements = _get(client, url, headers)
            assert len(statements) <= MAX_STATEMENTS, (url, statements)


def test_an_htmx_status_transition_stays_within_the_budget(
    client, login_as, make_lead, make_installer, is_postgres
):
    login_as("operator")
    make_installer(cycle_cap=40)
    make_installer(billing_anchor_day=15)
    url = f"/leads/{make_lead('new').reference}/advance"
    db.session.expire_all()
    with recorded_statements() as statements:
        response = client.post(
            url,
            data={"to_status": "reviewing", "tab": "new"},
            headers={"HX-Request": "true"},
        )
    assert response.status_code == 200
    # SQLite (`make run`) has no SELECT ... FOR UPDATE: its row lock is an UPDATE first.
    budget = MAX_STATEMENTS if is_postgres else MAX_STATEMENTS + 1
    assert len(statements) <= budget, "\n\n".join(statements)


def _failed_delivery(lead, installer, operator) -> None:
    (assignment,) = delivery.assign_installers(lead, [installer.id], operator)
    delivery.record_delivery_failure(assignment.id, "550 no such user")
    db.session.commit()


def test_a_search_across_every_status_reads_routing_and_problems_once(
    client, login_as, make_lead, make_installer, operator
):
    """Rows not yet assigned show who can take them, assigned ones needing attention their
    delivery problems: each is one statement for the whole page, however many rows and
    installers; assigned rows whose deliveries need nothing look nothing up."""
    login_as("manager")
    installers = [make_installer() for _ in range(3)]
    for status in ("new", "reviewing", "ready_to_route"):
        make_lead(status, customer_name="Pat Jones")
    deliver(make_lead("ready_to_route", customer_name="Pat Jones"), installers[:1], operator)
    # The user, the page of leads, the tab and follow-up counts, the installers with their cycle
    # usage.
    assert len(_get(client, "/leads?q=Jones")) == 4
    _failed_delivery(
        make_lead("ready_to_route", customer_name="Pat Jones"), installers[0], operator
    )
    few = _get(client, "/leads?q=Jones")
    for status in ("reviewing", "ready_to_route") * 5:
        make_lead(status, customer_name="Pat Jones")
    for _ in range(5):
        _failed_delivery(
            make_lead("ready_to_route", customer_name="Pat Jones"), installers[1], operator
        )
    make_installer()
    many = _get(client, "/leads?q=Jones")
    # ... and the delivery problems of the assigned rows needing attention.
    assert len(few) == len(many) == 5, "\n\n".join(many)


def test_an_htmx_search_swaps_its_results_without_counting_the_tabs(client, login_as, make_lead):
    """The search box swaps the results block as the operator types; the tab and follow-up
    counts stand outside it, so that request does not count them."""
    login_as("operator")
    lead = make_lead("new", customer_name="Pat Jones")
    html = client.get("/leads?q=Jones", headers={"HX-Request": "true"}).get_data(as_text=True)
    assert html.lstrip().startswith('<div id="queue-results" ') and lead.reference in html
    assert 'id="queue-tabs"' not in html
    swapped = _get(client, "/leads?q=Jones", {"HX-Request": "true"})
    assert len(swapped) == len(_get(client, "/leads?q=Jones")) - 1, "\n\n".join(swapped)


def test_an_intake_call_stays_within_the_budget_even_when_it_looks_its_key_up(
    app, client, make_installer, is_postgres
):
    make_installer()
    raw_key, _ = create_api_key("website")
    db.session.commit()
    headers = {"Authorization": f"Bearer {raw_key}"}
    # The first is new; the second shares its email, the third their phone (possible duplicates,
    # each answered with the newest such lead's reference).
    duplicates, counts = [], []
    for number, email in enumerate(["pat@example.com", "pat@example.com", "sam@example.com"]):
        body = {
            "external_id": f"web-{number}",
            "customer_name": "Pat Jones",
            "email": email,
            "phone": "07700 900123",
            "postcode": "SW1A 1AA",
            "product_interest": "solar_pv",
            "selected_path": "compare_quotes",
            "assessment": {"property_type": "detached"},
        }
        app.extensions.pop("ied_known_api_keys", None)  # the key is looked up, as on a new worker
        db.session.expire_all()
        with recorded_statements() as statements:
            response = client.post(
                "/api/v1/leads",
                data=json.dumps(body),
                headers=headers,
                content_type="application/json",
            )
        assert response.status_code == 201, response.text
        assert len(statements) <= MAX_STATEMENTS, "\n\n".join(statements)
        duplicates.append(response.json["possible_duplicate_of"])
        counts.append(len(statements))
    assert duplicates[0] is None and None not in duplicates[1:]
    # On PostgreSQL the key's look-up and the new lead's one statement: the duplicate's reference
    # comes in the new lead's row, no statement of its own (the first call also stamps the
    # key's first use). SQLite writes the lead's records one statement at a time.
    assert counts[1] == counts[2] == (2 if is_postgres else 7), counts
