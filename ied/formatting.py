"""Jinja filters: instants in the business time zone, counts and rates. Filters, not macros:
a page calls them once a table cell, and a Jinja macro call costs many times a function's."""

import re
from datetime import datetime
from functools import cache
from zoneinfo import ZoneInfo

from flask import Flask
from jinja2 import pass_environment

from ied.business_time import business_zone

# %b in the C locale, whatever the process locale.
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_TWO_DIGITS = tuple(f"{number:02d}" for number in range(61))
# The strftime directives the pages use, each an index into _fields(local) for str.format:
# strftime cost about 4 us a call and str.format with format specs 4.6 us, the main part of a
# date cell, where looking the pieces up costs about 1.5 us; a list shows a hundred cells.
_FIELD_INDEX = {"%d": 0, "%b": 1, "%Y": 2, "%H": 3, "%M": 4, "%S": 5}
_DIRECTIVE = re.compile(r"%.")
DEFAULT_FORMAT = "%d %b %Y %H:%M"


def _fields(local: datetime) -> tuple[str, ...]:
    return (
        _TWO_DIGITS[local.day],
        _MONTHS[local.month - 1],
        f"{local.year:04d}",
        _TWO_DIGITS[local.hour],
        _TWO_DIGITS[local.minute],
        _TWO_DIGITS[local.second],
    )


@cache
def _format_template(fmt: str) -> str | None:
    """fmt as a str.format template of _fields, or None when it uses a directive not in
    _FIELD_INDEX."""
    parts = _DIRECTIVE.split(fmt)
    directives = _DIRECTIVE.findall(fmt)
    if any(directive not in _FIELD_INDEX for directive in directives):
        return None
    template = parts[0].replace("{", "{{").replace("}", "}}")
    for directive, text in zip(directives, parts[1:], strict=True):
        template += f"{{{_FIELD_INDEX[directive]}}}" + text.replace("{", "{{").replace("}", "}}")
    return template


def local_datetime(
    value: datetime | None, fmt: str = DEFAULT_FORMAT, zone: ZoneInfo | None = None
) -> str:
    """`zone`: the business zone, when the caller has it (a template filter: from its app)."""
    if value is None:
        return "—"
    local = value.astimezone(zone or business_zone())
    template = _format_template(fmt)
    if template is None:
        return local.strftime(fmt)
    return template.format(*_fields(local))


def local_date(value: datetime | None, zone: ZoneInfo | None = None) -> str:
    return local_datetime(value, "%d %b %Y", zone)


# As template filters, the zone comes from the template's own app: through `current_app` it
# cost 2.8 us of a 10 us date cell.
@pass_environment
def _local_datetime_filter(environment, value: datetime | None, fmt: str = DEFAULT_FORMAT):
    return local_datetime(value, fmt, business_zone(environment.app))


@pass_environment
def _local_date_filter(environment, value: datetime | None):
    return local_date(value, business_zone(environment.app))


def thousands(value: int) -> str:
    """1,234; a capped count shows its own label (1000+)."""
    label = getattr(value, "label", None)
    return label if label is not None else f"{value:,}"


def percent(rate: float | None) -> str:
    """A rate as a whole percentage that never reads 100% while something failed, nor 0%
    when something happened: 999 of 1,000 sent is ">99%", 1 issue in 500 "<1%"."""
    if rate is None:
        return "—"
    shown = round(rate * 100)
    if shown == 100 and rate < 1:
        return ">99%"
    if shown == 0 and rate > 0:
        return "<1%"
    return f"{shown}%"


def init_app(app: Flask) -> None:
    app.add_template_filter(_local_datetime_filter, "local_datetime")
    app.add_template_filter(_local_date_filter, "local_date")
    for template_filter in (thousands, percent):
        app.add_template_filter(template_filter)
