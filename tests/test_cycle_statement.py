"""The installer cycle statement: each installer's cycle runs from local midnight of its anchor
day in the business time zone, across month ends and clock changes; billed, credited, cap
usage and amount due, as a page and a CSV."""

import csv
import io
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from ied.business_time import billing_cycle, named_billing_cycle
from ied.extensions import db
from ied.finance import services as finance
from ied.finance.queries import cycle_statement
from tests.support.billing import billed_delivery


def utc(*parts) -> datetime:
    return datetime(*parts, tzinfo=UTC)


@pytest.mark.parametrize(
    ("anchor", "label", "starts_utc", "ends_utc"),
    [
        # Anchor day 1: the cycle ends at the month's end, at local (GMT) midnight.
        (1, "2026-11", utc(2026, 11, 1, 0), utc(2026, 12, 1, 0)),
        # Anchor day 1 across the year end.
        (1, "2026-12", utc(2026, 12, 1, 0), utc(2027, 1, 1, 0)),
        # Anchor day 25: starts in summer time (00:00 BST = 23:00 UTC the day before), the
        # clocks go back that night, it ends in winter time: 31 days and one hour long.
        (25, "2026-10", utc(2026, 10, 24, 23), utc(2026, 11, 25, 0)),
        # Anchor day 28 across the spring change (29 March 2026): 31 days less an hour.
        (28, "2026-03", utc(2026, 3, 28, 0), utc(2026, 4, 27, 23)),
    ],
)  # fmt: skip
def test_cycle_bounds_follow_the_anchor_day_in_business_time(
    app, anchor, label, starts_utc, ends_utc
):
    cycle = named_billing_cycle(anchor, label)
    assert (cycle.starts_at, cycle.ends_at) == (starts_utc, ends_utc)
    # The instant before the start belongs to the previous cycle, the start to this one.
    assert billing_cycle(anchor, starts_utc - timedelta(seconds=1)).label != label
    assert billing_cycle(anchor, starts_utc).label == label
    assert billing_cycle(anchor, ends_utc - timedelta(seconds=1)).label == label
    assert billing_cycle(anchor, ends_utc).label != label


def test_an_event_late_on_the_last_evening_of_october_bills_to_november_for_anchor_day_1(app):
    # 23:30 UTC on 31 October is 23:30 GMT: still October. In March the same UTC time is
    # already 1 April in London (BST).
    assert billing_cycle(1, utc(2026, 10, 31, 23, 30)).label == "2026-10"
    assert billing_cycle(1, utc(2026, 3, 31, 23, 30)).label == "2026-04"


@pytest.fixture
def month(make_lead, make_installer, operator, make_user):
    installer = make_installer(
        company_name="Cap Co", cycle_cap=10, price_per_lead=Decimal("20.00"), billing_anchor_day=1
    )
    events = [billed_delivery(make_lead, installer, operator) for _ in range(4)]
    manager = make_user("manager")
    returned = finance.request_return(events[0].id, "duplicate", None)
    db.session.commit()
    finance.decide_return(returned.id, manager, approve=True, remark=None)
    finance.void_delivery_event(events[1].id, manager, "Test lead")
    rejected = finance.request_return(events[2].id, "customer_unreachable", None)
    db.session.commit()
    finance.decide_return(rejected.id, manager, approve=False, remark="Reached them")
    db.session.commit()
    return installer, events


def test_statement_totals_billed_credited_cap_and_amount_due(app, month):
    installer, events = month
    statement = cycle_statement(installer, billing_cycle(1).label)
    assert len(statement.deliveries) == 4 and len(statement.credited) == 2
    assert statement.delivered_amount == Decimal("80.00")
    assert statement.credited_amount == Decimal("40.00")
    assert statement.amount_due == Decimal("40.00")
    assert statement.billed_count == 2


@pytest.mark.parametrize(("label", "dead_end"), [("0001-01", "0000-12"), ("9999-11", "9999-12")])
def test_the_first_and_last_statements_link_no_cycle_that_has_none(
    client, login_as, make_installer, label, dead_end
):
    installer = make_installer()
    login_as("manager")
    page = client.get(f"/finance/statements/{installer.id}/{label}")
    assert page.status_code == 200
    assert f"/{dead_end}" not in page.get_data(as_text=True)  # its statement is a 404


def test_statement_page_and_csv(client, login_as, month):
    installer, events = month
    label = billing_cycle(1).label
    login_as("manager")
    page = client.get(f"/finance/statements/{installer.id}/{label}").get_data(as_text=True)
    assert 'data-summary="deliveries">4 · £80.00<' in page
    assert 'data-summary="credited">2 · −£40.00<' in page
    assert 'data-summary="cap">2 of 10<' in page
    assert 'data-summary="due"><strong>£40.00</strong>' in page
    assert "Return approved: Duplicate" in page and "Return rejected" in page
    current = client.get(f"/finance/statements/{installer.id}")
    assert current.headers["Location"].endswith(f"/finance/statements/{installer.id}/{label}")
    assert client.get(f"/finance/statements/{installer.id}/2026-13").status_code == 404
    assert client.get(f"/finance/statements/999/{label}").status_code == 404
    # Labels of the right shape whose cycle has no start or no end in the calendar.
    for impossible in ("0000-01", "9999-12"):
        for tail in ("", "/statement.csv"):
            url = f"/finance/statements/{installer.id}/{impossible}{tail}"
            assert client.get(url).status_code == 404, url
    assert client.get(f"/finance/statements/{installer.id}/9999-11").status_code == 200

    response = client.get(f"/finance/statements/{installer.id}/{label}/statement.csv")
    rows = list(csv.reader(io.StringIO(response.get_data(as_text=True))))
    assert rows[0] == [
        "event_id",
        "occurred_at_utc",
        "lead_reference",
        "price",
        "status",
        "credit",
        "credited_at_utc",
        "credit_reason",
    ]
    assert [row[4] for row in rows[1:5]] == ["credited", "credited", "billed", "billed"]
    assert rows[1][5] == "-20.00" and rows[3][5] == "0.00"
    assert rows[-3:] == [
        ["deliveries", "4", "", "80.00"],
        ["credited", "2", "", "-40.00"],
        ["amount_due", "2", "", "40.00"],
    ]
