"""/finance: events by cycle and installer with totals from the counters, filters in the URL,
keyset pages, voiding with a reason, the streamed CSV export; managers only."""

import csv
import io
import tracemalloc
from decimal import Decimal

import pytest
import sqlalchemy as sa

from ied.business_time import billing_cycle, business_today
from ied.delivery.models import DeliveryEvent
from ied.extensions import db
from ied.finance import queries
from ied.finance import services as finance
from ied.finance.queries import EventFilter, cycle_totals
from tests.support.billing import billed_delivery
from tests.support.statements import recorded_statements

FINANCE_URLS = [
    "/finance",
    "/finance/returns",
    "/finance/events.csv",
    "/finance/events/1/void",
    "/finance/statements/1/2026-11",
    "/finance/statements/1/2026-11/statement.csv",
]


@pytest.mark.parametrize("url", FINANCE_URLS)
def test_operators_get_403_on_every_finance_page(client, login_as, url):
    login_as("operator")
    assert client.get(url).status_code == 403
    assert client.post("/finance/events/1/void", data={"reason": "x"}).status_code == 403
    assert (
        client.post("/finance/returns/1/decision", data={"decision": "approve"}).status_code == 403
    )


@pytest.mark.parametrize("url", FINANCE_URLS[:3])
def test_signed_out_visitors_are_sent_to_login(client, url):
    response = client.get(url)
    assert response.status_code == 302 and "/login" in response.headers["Location"]


@pytest.fixture
def billing(make_lead, make_installer, operator):
    """Two installers, four deliveries this cycle, one voided."""
    alpha = make_installer(company_name="Alpha Solar", price_per_lead=Decimal("25.00"))
    beta = make_installer(company_name="Beta Heat", price_per_lead=Decimal("40.50"))
    events = [billed_delivery(make_lead, alpha, operator) for _ in range(3)]
    events.append(billed_delivery(make_lead, beta, operator))
    finance.void_delivery_event(events[0].id, operator, "Customer had moved")
    db.session.commit()
    return alpha, beta, events


def test_totals_after_a_void_come_from_the_counters_and_match_the_events(app, billing):
    alpha, beta, events = billing
    cycle = billing_cycle(1).label
    table = cycle_totals(EventFilter(cycle=cycle))
    by_name = {row.company_name: row for row in table.rows}
    assert (by_name["Alpha Solar"].billed_count, by_name["Alpha Solar"].billed_amount) == (
        2,
        Decimal("50.00"),
    )
    assert (by_name["Alpha Solar"].voided_count, by_name["Alpha Solar"].voided_amount) == (
        1,
        Decimal("25.00"),
    )
    assert (table.total.billed_count, table.total.billed_amount) == (3, Decimal("90.50"))
    direct = db.session.execute(
        sa.select(sa.func.count(), sa.func.sum(DeliveryEvent.price)).where(
            DeliveryEvent.voided_at.is_(None), DeliveryEvent.billing_cycle == cycle
        )
    ).one()
    assert (table.total.billed_count, table.total.billed_amount) == (direct[0], direct[1])
    assert isinstance(table.total.billed_amount, Decimal)


def test_the_page_shows_totals_and_voided_events_apart_with_who_and_why(client, login_as, billing):
    alpha, beta, events = billing
    login_as("manager")
    page = client.get("/finance").get_data(as_text=True)
    assert "Totals · current cycles" in page and f"Statement {billing_cycle(1).label}" in page
    assert 'data-total="billed_count">3<' in page and 'data-total="billed_amount">£90.50<' in page
    assert 'data-total="voided_count">1<' in page
    assert page.count('data-event-status="voided"') == 1
    assert page.count('data-event-status="billed"') == 3
    assert "Customer had moved" in page and "operator" in page


def test_filters_are_kept_in_the_url_and_narrow_the_list(client, login_as, billing):
    alpha, beta, events = billing
    login_as("manager")
    page = client.get(f"/finance?installer={beta.id}").get_data(as_text=True)
    assert f'id="event-{events[3].id}"' in page and f'id="event-{events[1].id}"' not in page
    assert 'data-total="billed_amount">£40.50<' in page
    assert f"installer={beta.id}" in page  # the export link carries the filter
    page = client.get("/finance?state=voided").get_data(as_text=True)
    assert f'id="event-{events[0].id}"' in page and page.count('data-event-status="') == 1
    page = client.get("/finance?cycle=2001-01").get_data(as_text=True)  # unknown: newest cycle
    assert page.count('data-event-status="') == 4
    htmx = client.get("/finance?state=billed", headers={"HX-Request": "true"})
    assert htmx.get_data(as_text=True).strip().startswith('<div id="finance-results">')


def test_keyset_pages_walk_every_event_once(
    app, client, login_as, make_lead, make_installer, operator, monkeypatch
):
    monkeypatch.setattr(queries, "PAGE_SIZE", 2)
    installer = make_installer()
    ids = [billed_delivery(make_lead, installer, operator).id for _ in range(5)]
    login_as("manager")
    seen, url = [], "/finance?cycle=all"
    while url:
        page = client.get(url).get_data(as_text=True)
        seen += [int(part.split('"')[0]) for part in page.split('id="event-')[1:]]
        url = (
            page.split('rel="next" href="')[1].split('"')[0].replace("&amp;", "&")
            if 'rel="next"' in page
            else None
        )
    assert seen == sorted(ids, reverse=True)


def test_voiding_through_the_page_needs_a_reason_and_is_refused_twice(
    app, client, login_as, billing
):
    alpha, beta, events = billing
    login_as("manager")
    event = events[1]
    form = client.get(f"/finance/events/{event.id}/void?next=/finance?installer={alpha.id}")
    assert form.status_code == 200 and "data-confirm" in form.get_data(as_text=True)
    empty = client.post(f"/finance/events/{event.id}/void", data={"reason": "  "})
    assert empty.status_code == 422
    assert "Give the reason" in empty.get_data(as_text=True)
    db.session.refresh(event)
    assert event.voided_at is None
    done = client.post(
        f"/finance/events/{event.id}/void",
        data={"reason": "Wrong number", "next": f"/finance?installer={alpha.id}"},
    )
    assert done.status_code == 303 and done.headers["Location"] == f"/finance?installer={alpha.id}"
    db.session.refresh(event)
    assert event.void_reason == "Wrong number" and event.voided_by_id is not None
    again = client.post(f"/finance/events/{event.id}/void", data={"reason": "Again"})
    assert again.status_code == 409 and "cannot be voided twice" in again.get_data(as_text=True)
    elsewhere = client.post(
        f"/finance/events/{events[2].id}/void",
        data={"reason": "x", "next": "//evil.example/finance"},
    )
    assert elsewhere.headers["Location"] == "/finance"
    assert client.get("/finance/events/999999/void").status_code == 404
    assert finance.cycle_billing_drift() == []


@pytest.mark.parametrize("back", ["/finance\r\nX-Evil: 1", "/finance\u2028"])
def test_a_back_link_no_header_can_carry_returns_to_finance_not_a_500_after_the_void(
    app, client, login_as, billing, back
):
    """The void was committed, then building the redirect to `next` failed: a 500 for a change
    that had been made."""
    alpha, beta, events = billing
    login_as("manager")
    app.config["PROPAGATE_EXCEPTIONS"] = False
    form = client.get(f"/finance/events/{events[1].id}/void", query_string={"next": back})
    assert 'href="/finance"' in form.get_data(as_text=True)
    done = client.post(
        f"/finance/events/{events[1].id}/void", data={"reason": "Wrong number", "next": back}
    )
    assert done.status_code == 303 and done.headers["Location"] == "/finance"
    db.session.refresh(events[1])
    assert events[1].void_reason == "Wrong number"


def read_csv(response) -> list[list[str]]:
    return list(csv.reader(io.StringIO(response.get_data(as_text=True))))


def test_csv_export_has_the_documented_columns_and_the_filtered_events(
    app, client, login_as, billing
):
    alpha, beta, events = billing
    login_as("manager")
    response = client.get(f"/finance/events.csv?installer={alpha.id}")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert "attachment" in response.headers["Content-Disposition"]
    rows = read_csv(response)
    assert tuple(rows[0]) == queries.EXPORT_COLUMNS
    assert [int(row[0]) for row in rows[1:]] == [event.id for event in events[:3]]
    first = dict(zip(rows[0], rows[1], strict=True))
    assert first["price"] == "25.00" and first["status"] == "voided"
    assert first["void_reason"] == "Customer had moved" and first["voided_by"].startswith(
        "operator"
    )
    assert first["installer"] == "Alpha Solar" and first["lead_reference"].startswith("IED-")
    assert dict(zip(rows[0], rows[2], strict=True))["status"] == "billed"


def test_csv_cells_that_a_spreadsheet_would_run_are_quoted(app, client, login_as, billing):
    alpha, beta, events = billing
    finance.void_delivery_event(events[1].id, None, '=HYPERLINK("http://evil")')
    db.session.commit()
    login_as("manager")
    rows = read_csv(client.get("/finance/events.csv?state=voided"))
    reasons = {row[-1] for row in rows[1:]}
    assert '\'=HYPERLINK("http://evil")' in reasons


def test_csv_export_streams_in_flat_memory(
    app, client, login_as, make_lead, make_installer, operator, is_postgres
):
    """Python's peak memory while streaming 40,000 events is no more than while streaming
    10,000: rows come from a server-side cursor a batch at a time and leave as CSV chunks, so a
    million rows need no more."""
    if not is_postgres:
        pytest.skip("the server-side cursor is PostgreSQL's")
    installer = make_installer()
    event = billed_delivery(make_lead, installer, operator)

    def add_events(first: int, count: int) -> None:
        db.session.execute(sa.text("SET session_replication_role = replica"))  # fake assignments
        db.session.execute(
            sa.text(
                "INSERT INTO delivery_events (assignment_id, lead_id, installer_id, "
                "billing_cycle, occurred_at, price) SELECT 1000000 + n, :lead, :installer, "
                ":cycle, now(), 25.00 "
                "FROM generate_series(CAST(:first AS integer), CAST(:last AS integer)) AS n"
            ),
            {
                "lead": event.lead_id,
                "installer": installer.id,
                "cycle": event.billing_cycle,
                "first": first,
                "last": first + count - 1,
            },
        )
        db.session.execute(sa.text("SET session_replication_role = DEFAULT"))
        db.session.commit()

    def stream() -> tuple[int, int, int, int]:
        response = client.get("/finance/events.csv?cycle=all")
        assert response.is_streamed
        tracemalloc.start()
        try:
            size = chunks = lines = 0
            for chunk in response.response:
                size += len(chunk)
                chunks += 1
                lines += chunk.count(b"\n")
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
            response.close()
        return size, chunks, lines, peak

    login_as("manager")
    add_events(1, 10_000)
    stream()  # warm-up: compiled statements, templates and imports are cached
    small_size, _, small_lines, small_peak = stream()
    add_events(10_001, 30_000)
    size, chunks, lines, peak = stream()
    assert (small_lines, lines) == (10_002, 40_002)  # header, the real event, the bulk ones
    assert chunks > 40 and size > 3 * small_size
    assert peak < small_peak * 1.5, f"peak {peak} B for 40k rows, {small_peak} B for 10k"
    assert peak < size / 2


@pytest.mark.parametrize("url", ["/finance", "/finance?cycle=all&state=voided", "/finance/returns"])
def test_finance_pages_send_a_fixed_number_of_statements(
    client, login_as, make_lead, make_installer, operator, url
):
    """Totals come from the counters and the page's events load with their lead, installer
    and voider in one query: more events, installers or returns add no statement."""
    login_as("manager")

    def statements_for_the_page() -> int:
        with recorded_statements() as statements:
            assert client.get(url).status_code == 200
        return len(statements)

    installer = make_installer()
    event = billed_delivery(make_lead, installer, operator)
    finance.void_delivery_event(event.id, operator, "Duplicate")
    finance.request_return(billed_delivery(make_lead, installer, operator).id, "duplicate", None)
    db.session.commit()
    few = statements_for_the_page()
    for _ in range(3):
        other = make_installer()
        for _ in range(2):
            finance.request_return(
                billed_delivery(make_lead, other, operator).id, "customer_unreachable", None
            )
        finance.void_delivery_event(billed_delivery(make_lead, other, operator).id, operator, "x")
    db.session.commit()
    assert statements_for_the_page() == few <= 8


def test_by_default_every_installer_shows_in_its_own_current_cycle(
    client, login_as, make_lead, make_installer, operator
):
    """Cycles follow each installer's anchor day: early in a month an installer anchored later
    is still in the cycle labelled by the month before, and must not drop out of the totals."""
    day = business_today().day
    if day >= 28:
        pytest.skip("no anchor day (1-28) falls after today")
    early = make_installer(company_name="Early Anchor", billing_anchor_day=1)
    late = make_installer(company_name="Late Anchor", billing_anchor_day=day + 1)
    late_cycle = billing_cycle(day + 1).label
    assert late_cycle != billing_cycle(1).label
    events = [billed_delivery(make_lead, installer, operator) for installer in (early, late)]
    login_as("manager")
    page = client.get("/finance").get_data(as_text=True)
    assert all(f'id="event-{event.id}"' in page for event in events)
    assert 'data-total="billed_count">2<' in page
    assert f"/finance/statements/{late.id}/{late_cycle}" in page
    chosen = client.get(f"/finance?cycle={late_cycle}").get_data(as_text=True)
    assert f'id="event-{events[1].id}"' in chosen and f'id="event-{events[0].id}"' not in chosen


def test_event_pages_walk_every_event_once_newest_first(app, billing, monkeypatch):
    alpha, beta, events = billing
    monkeypatch.setattr(queries, "PAGE_SIZE", 3)
    for filters, expected in (
        (EventFilter(), [event.id for event in reversed(events)]),
        (EventFilter(installer_id=alpha.id), [event.id for event in reversed(events[:3])]),
        (EventFilter(state="billed"), [event.id for event in reversed(events[1:])]),
    ):
        walked, after = [], None
        while True:
            page = queries.event_page(filters, after)
            walked += [row.id for row in page.rows]
            if page.next_after is None:
                break
            after = page.next_after
        assert walked == expected, filters
