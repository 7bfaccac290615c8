"""Dates in the business time zone: the pages' own formatting writes what strftime would."""

from datetime import UTC, datetime, timedelta

import pytest

from ied.business_time import business_zone
from ied.formatting import local_date, local_datetime, percent

FORMATS = [
    "%d %b %Y %H:%M",  # the default
    "%d %b %Y",
    "%d %b %H:%M",
    "%d %b %H:%M:%S",
    "%d %b %Y %H:%M:%S",
    "%H:%M",
    "{%d} at %H",  # braces are text
]


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_format_the_pages_use_reads_as_strftime_across_a_year(app, fmt):
    zone = "Europe/London"
    app.config["BUSINESS_TIMEZONE"] = zone
    # Every 7 h 13 min 17 s through a year: all months, both daylight-saving changes.
    moment = datetime(2026, 1, 1, tzinfo=UTC)
    with app.test_request_context():
        while moment.year == 2026:
            expected = moment.astimezone(business_zone()).strftime(fmt)
            assert local_datetime(moment, fmt) == expected
            moment += timedelta(hours=7, minutes=13, seconds=17)


def test_the_instant_shows_in_the_business_zone_and_other_directives_still_work(app):
    app.config["BUSINESS_TIMEZONE"] = "Europe/London"
    summer = datetime(2026, 7, 4, 23, 30, 5, tzinfo=UTC)  # 00:30 on the 5th in London
    with app.test_request_context():
        assert local_datetime(summer) == "05 Jul 2026 00:30"
        assert local_date(summer) == "05 Jul 2026"
        assert local_datetime(summer, "%A %d %B %Y") == "Sunday 05 July 2026"  # by strftime
        assert local_datetime(summer, "%H:%M 100%%") == "00:30 100%"
        assert local_datetime(None) == "—"


@pytest.mark.parametrize(
    ("zone", "shown"), [("Europe/London", "05 Jul 00:30"), ("UTC", "04 Jul 23:30")]
)
def test_the_template_filters_follow_the_app_s_business_zone(app, zone, shown):
    app.config["BUSINESS_TIMEZONE"] = zone
    summer = datetime(2026, 7, 4, 23, 30, 5, tzinfo=UTC)
    template = app.jinja_env.from_string(
        "{{ moment|local_datetime('%d %b %H:%M') }} / {{ moment|local_date }}"
        " / {{ none|local_date }}"
    )
    with app.test_request_context():
        day = shown[:2]
        assert template.render(moment=summer, none=None) == f"{shown} / {day} Jul 2026 / —"


@pytest.mark.parametrize(
    ("rate", "shown"),
    [
        (None, "—"),
        (0, "0%"),
        (0.004, "<1%"),
        (0.2, "20%"),
        (0.855, "86%"),
        (0.996, ">99%"),
        (1, "100%"),
    ],
)
def test_a_percentage_never_rounds_failures_or_issues_away(rate, shown):
    assert percent(rate) == shown
