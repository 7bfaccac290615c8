"""The managers' dashboard: every number checked against a direct count of the seeded rows."""

import re
from collections import Counter
from datetime import timedelta

import pytest
import sqlalchemy as sa

from ied.business_time import business_today, business_zone
from ied.dashboard import queries
from ied.delivery import services as delivery
from ied.delivery.models import Assignment, DeliveryAudit
from ied.demo import seed_demo
from ied.extensions import db
from ied.finance.models import ReturnRequest
from ied.followups.models import FollowUp
from ied.installers.models import Installer
from ied.installers.services import cycle_usage
from ied.leads import status_counts
from ied.leads.models import LEAD_STATUSES, Lead
from ied.leads.queries import ATTENTION, queue_page
from ied.timestamps import utcnow


def local_day(moment):
    return moment.astimezone(business_zone()).date()


def table_rows(html: str, table_id: str) -> list[list[str]]:
    """The cells of a table's body rows, tags stripped."""
    body = html.split(f'id="{table_id}"', 1)[1].split("</table>", 1)[0]
    body = body.split("<tbody>", 1)[1]
    return [
        [
            re.sub(r"<[^>]+>|\s+", " ", cell).strip()
            for cell in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)
        ]
        for row in re.findall(r"<tr[^>]*>(.*?)</tr>", body, re.S)
    ]


@pytest.fixture
def seeded(app):
    seed_demo(lead_count=60)
    db.session.commit()


def test_the_demo_has_a_paused_installer_whose_name_does_not_say_so(app, seeded):
    installers = db.session.scalars(sa.select(Installer)).all()
    paused = [installer.company_name for installer in installers if not installer.active]
    assert paused == ["Coastal Installs"]
    assert not any("paused" in installer.company_name.lower() for installer in installers)


def test_leads_per_status_come_from_the_counter_and_equal_a_direct_count(app, make_lead, operator):
    for status in ("new", "new", "reviewing", "ready_to_route", "ready_to_route"):
        make_lead(status)
    direct = Counter(db.session.scalars(sa.select(Lead.status)))
    assert status_counts.lead_status_counts() == {s: direct.get(s, 0) for s in LEAD_STATUSES}
    db.session.execute(sa.delete(status_counts.LeadStatusCount))  # lost: the repair recounts
    assert status_counts.rebuild() == {s: direct.get(s, 0) for s in LEAD_STATUSES}


def test_a_rolled_back_transition_leaves_the_counter_alone(app, make_lead, operator):
    lead = make_lead("new")
    from ied.leads import services as leads

    leads.start_review(lead, operator)
    db.session.rollback()
    assert status_counts.lead_status_counts()["new"] == 1
    assert status_counts.lead_status_counts()["reviewing"] == 0


def test_every_dashboard_number_equals_a_direct_count_of_the_demo_data(client, login_as, seeded):
    login_as("manager")
    now = utcnow()
    html = client.get("/dashboard?period=90").get_data(as_text=True)
    period = queries.period_of(90, now)
    tallies = queries.period_tallies(period)
    last = period.last_day

    # Leads per status now.
    statuses = Counter(db.session.scalars(sa.select(Lead.status)))
    assert {row.status: row.count for row in queries.now_counts().leads_by_status} == {
        s: statuses.get(s, 0) for s in LEAD_STATUSES
    }
    assert [cells[1] for cells in table_rows(html, "status-table")] == [
        f"{statuses.get(s, 0):,}" for s in LEAD_STATUSES
    ]

    # New leads per day.
    created = Counter(local_day(at) for at in db.session.scalars(sa.select(Lead.created_at)))
    daily = queries.new_leads_per_day(period, tallies)
    assert {d.day: d.count for d in daily.days} == {
        day: created.get(day, 0) for day in period.day_list
    }
    assert sum(created.values()) == daily.total  # the demo spans the 90 days, nothing older
    assert len({d.day for d in daily.days if d.count}) > 20
    assert len(table_rows(html, "new-leads-table")) == 90

    # Delivery attempts per day, sent and failed.
    attempts = Counter(
        (local_day(audit.finished_at), audit.status)
        for audit in db.session.scalars(sa.select(DeliveryAudit))
        if audit.finished_at is not None
    )
    deliveries = queries.deliveries_per_day(period, tallies)
    for day in deliveries.days:
        assert (day.sent, day.failed) == (
            attempts[(day.day, "sent")],
            attempts[(day.day, "failed")],
        )
    assert deliveries.failed > 0 and deliveries.sent > deliveries.failed
    assert f"{deliveries.success_rate * 100:.0f}% success" in html
    today_row = table_rows(html, "deliveries-table")[0]  # newest first
    assert today_row[1:3] == [str(attempts[(last, "sent")]), str(attempts[(last, "failed")])]

    # Deliveries needing action now.
    cutoff = now - timedelta(minutes=15)
    needing = [
        a
        for a in db.session.scalars(sa.select(Assignment))
        if a.status == "failed" or (a.status == "queued" and a.queued_at < cutoff)
    ]
    listed = queries.deliveries_needing_action(now)
    assert listed.total == len(needing) > 0
    assert {item.assignment_id for item in listed.items} <= {a.id for a in needing}
    failed = next(item for item in listed.items if item.status == "failed")
    assert failed.reason == "550 5.1.1 Mailbox unavailable"
    assert f'#assignment-{failed.assignment_id}"' in html

    # Follow-ups per due state, and open issues.
    follow_ups = list(db.session.scalars(sa.select(FollowUp)))
    open_ones = [f for f in follow_ups if f.status in ("pending", "in_progress")]
    today = business_today(now)
    expected = {
        "overdue": sum(f.due_at < now for f in open_ones),
        "due_today": sum(f.due_at >= now and local_day(f.due_at) == today for f in open_ones),
        "upcoming": sum(local_day(f.due_at) > today for f in open_ones),
        "open_issue": sum(f.has_issue and not f.issue_resolved for f in follow_ups),
    }
    assert all(expected.values())
    assert {row[0]: row[1] for row in table_rows(html, "follow-ups-table")} == {
        "Overdue": str(expected["overdue"]),
        "Due today": str(expected["due_today"]),
        "Upcoming": str(expected["upcoming"]),
        "Open issues": str(expected["open_issue"]),
    }
    assert 'href="/follow-ups?due=overdue"' in html and 'href="/follow-ups?issue=open"' in html

    # Returns waiting for a decision.
    pending = db.session.scalar(sa.select(sa.func.count()).where(ReturnRequest.status == "pending"))
    assert queries.now_counts(now).follow_ups.pending_returns == pending > 0
    assert re.search(
        rf'href="/finance/returns"[^>]*>\s*Returns pending\s*<span[^>]*>{pending}<', html
    )

    # Each installer's cycle use against its cap.
    installers = list(db.session.scalars(sa.select(Installer)))
    usage = cycle_usage(installers)
    for installer in installers:
        cycle = usage[installer.id].cycle
        delivered = sum(
            1
            for a in db.session.scalars(
                sa.select(Assignment).where(Assignment.installer_id == installer.id)
            )
            if a.delivery_event is not None
            and a.delivery_event.voided_at is None
            and a.delivery_event.billing_cycle == cycle.label
        )
        queued = db.session.scalar(
            sa.select(sa.func.count()).where(
                Assignment.installer_id == installer.id, Assignment.status == "queued"
            )
        )
        assert usage[installer.id].used == delivered + queued
        cells = next(
            cells for cells in table_rows(html, "caps-table") if cells[0] == installer.company_name
        )
        cap = "no cap" if installer.cycle_cap is None else installer.cycle_cap
        assert cells[1] == f"{delivered + queued} / {cap}"

    # Installer quality over the period.
    starts, ends = period.starts_at, period.ends_at
    quality = {
        row.installer_id: row
        for row in queries.installer_quality(tallies, queries.installer_names())
    }
    for installer in installers:
        sent = [
            a
            for a in db.session.scalars(
                sa.select(Assignment).where(Assignment.installer_id == installer.id)
            )
            if a.sent_at is not None and starts <= a.sent_at < ends
        ]
        closed = [
            f
            for f in follow_ups
            if f.installer_id == installer.id
            and f.status in ("completed", "closed_with_issue")
            and starts <= f.completed_at < ends
        ]
        if not sent and not closed:
            assert installer.id not in quality
            continue
        row = quality[installer.id]
        assert row.delivered == len(sent)
        assert row.opened == sum(a.first_opened_at is not None for a in sent)
        outcomes = Counter(f.satisfaction_outcome for f in closed)
        assert (row.satisfied, row.mixed, row.unsatisfied) == (
            outcomes["satisfied"],
            outcomes["mixed"],
            outcomes["unsatisfied"],
        )
        assert row.closed_follow_ups == len(closed)
        assert row.with_issue == sum(f.has_issue for f in closed)
        cells = next(
            cells
            for cells in table_rows(html, "quality-table")
            if cells[0] == installer.company_name
        )
        assert cells[1:3] == [str(row.delivered), str(row.opened)]
        asked = [
            r
            for r in db.session.scalars(
                sa.select(ReturnRequest).where(ReturnRequest.installer_id == installer.id)
            )
            if starts <= r.requested_at < ends
        ]
        assert row.returned == len(asked)
        assert cells[4] == str(len(asked))
    assert sum(row.returned for row in quality.values()) > 0
    assert sum(row.opened for row in quality.values()) > 0
    assert sum(row.closed_follow_ups for row in quality.values()) > 0


def test_an_installer_at_its_cap_is_marked(client, login_as, make_lead, make_installer, operator):
    login_as("manager")
    full, roomy = make_installer(cycle_cap=1), make_installer(cycle_cap=10)
    for installer in (full, roomy):
        (assignment,) = delivery.assign_installers(
            make_lead("ready_to_route"), [installer.id], operator
        )
        delivery.record_delivery_success(assignment.id)
    db.session.commit()
    html = client.get("/dashboard").get_data(as_text=True)
    rows = {cells[0]: cells for cells in table_rows(html, "caps-table")}
    assert rows[full.company_name][1:] == ["1 / 1", "at cap"]
    assert rows[roomy.company_name][1:] == ["1 / 10", "10%"]
    assert f'<g class="at-cap" data-installer="{full.id}">' in html
    assert f'<g class="under-cap" data-installer="{roomy.id}">' in html


def test_a_long_installer_name_is_cut_to_fit_the_cap_chart_and_kept_whole_in_its_table(
    client, login_as, make_installer
):
    login_as("manager")
    make_installer(company_name="Capital Insulation Company", cycle_cap=5)
    html = client.get("/dashboard").get_data(as_text=True)
    chart = html.split('class="chart caps"', 1)[1].split("</svg>", 1)[0]
    assert '<text class="label" x="0" y="15">Capital Insulati…</text>' in chart
    assert "<title>Capital Insulation Company: 0 of 5 this cycle</title>" in chart
    assert table_rows(html, "caps-table")[0][0] == "Capital Insulation Company"


def _deliver(make_lead, operator, installer, times: int) -> None:
    for _ in range(times):
        (assignment,) = delivery.assign_installers(
            make_lead("ready_to_route"), [installer.id], operator
        )
        delivery.record_delivery_success(assignment.id)


def test_the_installer_panels_show_the_first_twelve_and_all_on_request(
    client, login_as, make_lead, make_installer, operator
):
    login_as("manager")
    # Installer i has a cap of 20 and i deliveries: the fuller, the busier.
    installers = [
        make_installer(company_name=f"Installer {i:02d}", cycle_cap=20) for i in range(1, 15)
    ]
    uncapped = make_installer(company_name="Aardvark Heat", cycle_cap=None)
    for i, installer in enumerate(installers, start=1):
        _deliver(make_lead, operator, installer, i)
    _deliver(make_lead, operator, uncapped, 20)
    db.session.commit()
    by_use = [f"Installer {i:02d}" for i in range(14, 0, -1)]

    html = client.get("/dashboard").get_data(as_text=True)
    caps = [cells[0] for cells in table_rows(html, "caps-table")]
    assert caps == by_use[:12]  # nearest their cap first; no cap last, so not among them
    assert html.count('class="label" x="0"') == 12 + 4 + 4  # cap bars, statuses, follow-ups
    quality = [cells[0] for cells in table_rows(html, "quality-table")]
    assert quality == ["Aardvark Heat", *by_use[:11]]  # most deliveries first
    assert html.count("The first 12 of 15 installers") == 2
    assert html.count('href="/dashboard?period=30&amp;installers=all"') == 2

    everyone = client.get("/dashboard?period=30&installers=all").get_data(as_text=True)
    assert [cells[0] for cells in table_rows(everyone, "caps-table")] == [
        *by_use,
        "Aardvark Heat",
    ]
    assert len(table_rows(everyone, "quality-table")) == 15
    assert everyone.count("All 15 installers") == 2
    assert 'href="/dashboard?period=30" data-installers-toggle>Show the first 12' in everyone
    # The period links keep the choice, with and without htmx.
    assert 'href="/dashboard?period=7&amp;installers=all"' in everyone
    switched = client.get(
        "/dashboard?period=7&installers=all", headers={"HX-Request": "true"}
    ).get_data(as_text=True)
    assert len(table_rows(switched, "quality-table")) == 15
    assert 'href="/dashboard?period=90&amp;installers=all"' in switched
    # The cap panel's foot, outside the swapped block, follows out of band with the new period.
    assert '<div id="caps-foot" hx-swap-oob="true">' in switched
    assert switched.count('href="/dashboard?period=7" data-installers-toggle') == 2
    assert switched.count("All 15 installers") == 2
    short = client.get("/dashboard?period=7", headers={"HX-Request": "true"}).get_data(as_text=True)
    assert short.count('href="/dashboard?period=7&amp;installers=all"') == 2


def test_a_dashboard_with_few_installers_has_no_show_all_link(
    client, login_as, make_lead, make_installer, operator
):
    login_as("manager")
    _deliver(make_lead, operator, make_installer(cycle_cap=5), 1)
    db.session.commit()
    for url in ("/dashboard", "/dashboard?installers=all"):
        html = client.get(url).get_data(as_text=True)
        assert len(table_rows(html, "caps-table")) == 1
        assert "data-installers-toggle" not in html


@pytest.mark.parametrize("period, days", [(7, 7), (30, 30), (90, 90), (None, 30), (12, 30)])
def test_the_period_picks_the_days_shown(client, login_as, period, days):
    login_as("manager")
    url = "/dashboard" if period is None else f"/dashboard?period={period}"
    html = client.get(url).get_data(as_text=True)
    assert len(table_rows(html, "deliveries-table")) == days
    assert f'data-days="{days}"' in html
    assert re.search(rf'data-period="{days}"\s+aria-current="page"', html)


def test_a_period_switch_over_htmx_answers_the_period_block_only(client, login_as):
    login_as("manager")
    response = client.get("/dashboard?period=7", headers={"HX-Request": "true"})
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "HX-Request" in response.headers["Vary"]
    assert html.lstrip().startswith('<div id="period-panels"')
    assert "<html" not in html and "Leads by status" not in html
    assert len(table_rows(html, "new-leads-table")) == 7
    full = client.get("/dashboard?period=7").get_data(as_text=True)
    assert "<html" in full and "Leads by status" in full and 'id="period-panels"' in full
    assert 'hx-push-url="true"' in full and 'href="/dashboard?period=90"' in full


def test_the_dashboard_page_has_no_inline_style_or_script(client, login_as, seeded):
    login_as("manager")
    html = client.get("/dashboard").get_data(as_text=True)
    assert "style=" not in html
    assert not re.search(r"<script(?![^>]*\bsrc=)", html)


@pytest.mark.parametrize("role, status", [("operator", 403), ("manager", 200), ("admin", 200)])
def test_managers_and_admins_see_the_dashboard_operators_do_not(client, login_as, role, status):
    login_as(role)
    assert client.get("/dashboard").status_code == status
    assert client.get("/dashboard?period=7", headers={"HX-Request": "true"}).status_code == status


def test_signed_out_visitors_are_sent_to_login(client):
    response = client.get("/dashboard")
    assert response.status_code == 302 and "/login" in response.headers["Location"]


@pytest.mark.parametrize("role, landing", [("manager", "/dashboard"), ("admin", "/dashboard")])
def test_managers_and_admins_land_on_the_dashboard(client, login_as, role, landing):
    login_as(role)
    response = client.get("/")
    assert response.status_code == 302 and response.headers["Location"] == landing


def test_a_delivery_queued_longer_than_the_setting_needs_action_on_the_dashboard_and_queue(
    make_app, make_user, make_lead, make_installer, operator
):
    app = make_app(DELIVERY_QUEUED_ALERT_MINUTES=60)
    with app.app_context():
        installer = make_installer()
        references = {}
        for minutes in (30, 90):
            lead = make_lead("ready_to_route")
            (assignment,) = delivery.assign_installers(lead, [installer.id], operator)
            assignment.queued_at = utcnow() - timedelta(minutes=minutes)
            delivery.refresh_delivery_attention(lead)
            references[minutes] = lead.reference
        db.session.commit()
        listed = queries.deliveries_needing_action()
        assert listed.total == 1 and listed.queued_alert_minutes == 60
        (item,) = listed.items
        assert item.status == "queued" and item.reason == "Not attempted yet"
        assert item.lead_reference == references[90]
        # One setting: the queue's Needs attention tab shows the same delivery, not the other.
        attention = [lead.reference for lead in queue_page(ATTENTION).leads]
        assert attention == [references[90]]


def test_the_reason_is_the_latest_attempts_reply(app, make_lead, make_installer, operator):
    installer = make_installer()
    (assignment,) = delivery.assign_installers(
        make_lead("ready_to_route"), [installer.id], operator
    )
    for code, reply in ((421, "4.7.0 Try again later"), (550, "5.7.1 Relaying denied")):
        audit = delivery.begin_attempt(assignment, job_id=None, lease_seconds=60)
        delivery.finish_attempt(audit, status="failed", smtp_code=code, smtp_reply=reply)
    delivery.record_delivery_failure(assignment.id, "550 5.7.1 Relaying denied")
    db.session.commit()
    (item,) = queries.deliveries_needing_action().items
    assert item.reason == "550 5.7.1 Relaying denied"


def test_the_page_runs_the_same_few_statements_whatever_the_data(
    client, login_as, make_lead, make_installer, operator
):
    login_as("manager")
    statements = []

    def counter(*args):
        statements.append(args[2])

    def deliver_some(count: int) -> None:
        installer = make_installer()
        for _ in range(count):
            lead = make_lead("ready_to_route")
            (assignment,) = delivery.assign_installers(lead, [installer.id], operator)
            delivery.record_delivery_success(assignment.id)
        db.session.commit()

    deliver_some(1)
    sa.event.listen(db.engine, "before_cursor_execute", counter)
    try:
        client.get("/dashboard")
        few = len(statements)
        for _ in range(3):
            deliver_some(4)
        statements.clear()
        client.get("/dashboard")
        assert len(statements) == few <= 8
        statements.clear()
        client.get("/dashboard?period=7", headers={"HX-Request": "true"})
        assert len(statements) <= 4
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", counter)


def test_chart_ceiling_is_round():
    assert [queries.chart_ceiling(n) for n in (0, 3, 7, 12, 49, 51, 180, 1200)] == [
        4,
        4,
        10,
        20,
        50,
        100,
        200,
        2000,
    ]


def test_daily_chart_stacks_each_days_parts_and_labels_the_axis():
    from datetime import date

    from ied.dashboard.charts import PLOT_HEIGHT, TOP, Part, daily_chart

    dates = [date(2026, 11, 1) + timedelta(days=n) for n in range(30)]
    days = [
        queries.DeliveryDay(day, queries.day_label(day), sent=n, failed=n % 2)
        for n, day in enumerate(dates)
    ]
    parts = (Part("sent", "sent", "sent"), Part("failed", "failed", "failed"))
    chart = daily_chart("deliveries-chart", days, parts, axis_max=40)
    assert [line.label for line in chart.grid] == ["0", "20", "40"]
    empty, first_stacked = chart.columns[0], chart.columns[1]
    assert empty.bars == []  # nothing sent or failed: no bar at all
    sent, failed = first_stacked.bars
    assert (sent.css, failed.css) == ("sent", "failed")
    assert failed.y + failed.height == pytest.approx(sent.y, abs=0.1)  # failed sits on sent
    assert sent.y + sent.height == pytest.approx(TOP + PLOT_HEIGHT, abs=0.1)
    assert first_stacked.title == "Mon 02 Nov: 1 sent, 1 failed"
    ticked = [int(column.day[-2:]) for column in chart.columns if column.tick]
    assert ticked == [1, 6, 11, 16, 21, 26, 30]  # every 5th day, and the last at the end
    assert chart.columns[-1].tick.anchor == "end"


@pytest.mark.parametrize(
    ("closed", "with_issue", "high"), [(5, 1, True), (6, 1, False), (0, 0, False)]
)
def test_the_quality_row_not_the_template_says_when_the_issue_rate_is_high(
    closed, with_issue, high
):
    row = queries.InstallerQuality(1, "Acme", 5, 5, 0, 0, 0, 0, closed, with_issue)
    assert row.issue_rate_is_high is high


@pytest.mark.parametrize(
    ("used", "cap", "shown"), [(199, 200, 99), (159, 200, 79), (200, 200, 100)]
)
def test_cap_use_never_reads_full_or_amber_before_it_is(app, used, cap, shown):
    from ied.business_time import billing_cycle
    from ied.installers.services import CycleUsage

    usage = CycleUsage(billing_cycle(1), delivered=used, queued=0, cap=cap)
    assert queries.CapUse(1, "Acme", True, usage).percent == shown
