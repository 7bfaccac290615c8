"""The managers' dashboard: what is true now, and how the last 7, 30 or 90 days went.

htmx asks for the period block only (switching the period swaps those charts); every other
request gets the whole page, which reads without JavaScript.
"""

from dataclasses import dataclass

from flask import Blueprint, request, url_for

from ied.auth.access import role_required
from ied.dashboard import queries
from ied.dashboard.charts import Part, cap_chart, daily_chart
from ied.htmx import is_htmx, page_or_block, page_or_blocks
from ied.timestamps import utcnow

bp = Blueprint("dashboard", __name__)

PAGE = "dashboard/index.html"
NEW_LEAD_PARTS = (Part("count", "leads", "new leads"),)
DELIVERY_PARTS = (Part("sent", "sent", "sent"), Part("failed", "failed", "failed"))


@dataclass(frozen=True)
class ChartBar:
    """One bar of a horizontal bar chart and the row of its table: a count and where it leads."""

    key: str
    label: str
    value: int
    href: str


def _status_bars(counts: list[queries.StatusCount]) -> list[ChartBar]:
    return [
        ChartBar(row.status, row.label, row.count, url_for("leads.queue", tab=row.status))
        for row in counts
    ]


def _follow_up_bars(summary: queries.FollowUpSummary) -> list[ChartBar]:
    return [
        ChartBar(key, label, count, url_for("followups.index", **filters))
        for key, label, count, filters in (
            ("overdue", "Overdue", summary.overdue, {"due": "overdue"}),
            ("due_today", "Due today", summary.due_today, {"due": "due_today"}),
            ("upcoming", "Upcoming", summary.upcoming, {"due": "upcoming"}),
            ("open_issue", "Open issues", summary.open_issues, {"issue": "open"}),
        )
    ]


@dataclass(frozen=True)
class Shortlist:
    """The first rows of a per-installer panel, or all of them when the manager asked
    (`?installers=all`), with the link that flips the choice (the period stays)."""

    rows: list
    total: int
    show_all: bool
    toggle_url: str
    first_few: int = queries.INSTALLERS_SHOWN

    @property
    def is_cut(self) -> bool:
        return len(self.rows) < self.total

    @property
    def can_shorten(self) -> bool:
        return self.show_all and self.total > self.first_few


def _show_all() -> bool:
    return request.args.get("installers") == "all"


def _shortlist(rows: list) -> Shortlist:
    show_all = _show_all()
    toggle_url = url_for(
        "dashboard.index", period=_period_days(), installers=None if show_all else "all"
    )
    shown = rows if show_all else rows[: queries.INSTALLERS_SHOWN]
    return Shortlist(shown, len(rows), show_all, toggle_url)


def _period_days() -> int:
    days = request.args.get("period", type=int)
    return days if days in queries.PERIODS else queries.DEFAULT_PERIOD


def _period_context(installer_names: dict[int, str]) -> dict:
    period = queries.period_of(_period_days())
    tallies = queries.period_tallies(period)
    new_leads = queries.new_leads_per_day(period, tallies)
    deliveries = queries.deliveries_per_day(period, tallies)
    return {
        "period": period,
        "periods": queries.PERIODS,
        "new_leads": new_leads,
        "new_leads_chart": daily_chart(
            "new-leads-chart", new_leads.days, NEW_LEAD_PARTS, new_leads.axis_max
        ),
        "deliveries": deliveries,
        "deliveries_chart": daily_chart(
            "deliveries-chart", deliveries.days, DELIVERY_PARTS, deliveries.axis_max
        ),
        "quality": _shortlist(queries.installer_quality(tallies, installer_names)),
        "installers_arg": "all" if _show_all() else None,
    }


@bp.get("/dashboard")
@role_required("manager")
def index():
    if is_htmx():
        names = queries.installer_names()
        # The cap panel's foot follows out of band: it counts installers, nothing more.
        return page_or_blocks(
            PAGE,
            ["period_panels", "caps_foot"],
            **_period_context(names),
            caps=_shortlist(list(names.values())),
        )
    cap_use = queries.cap_use()
    caps = _shortlist(cap_use)
    now = utcnow()
    counts = queries.now_counts(now)
    follow_ups = counts.follow_ups
    return page_or_block(
        PAGE,
        "period_panels",
        **_period_context({row.installer_id: row.installer_name for row in cap_use}),
        now=now,
        status_bars=_status_bars(counts.leads_by_status),
        follow_up_bars=_follow_up_bars(follow_ups),
        needs_action=queries.deliveries_needing_action(now),
        pending_returns=follow_ups.pending_returns,
        caps=caps,
        cap_chart=cap_chart(caps.rows),
    )
