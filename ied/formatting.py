"""Jinja filters: instants in the business time zone, counts and rates. Filters, not macros:
a page calls them once a table cell, and a Jinja macro call costs many times a function's."""

import re
from datetime import datetime
from functools import cache

from flask import Flask

from ied.business_time import business_zone

# %b in the C locale, whatever the process locale.
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
# The strftime directives the pages use, as str.format fields of (local datetime, month name):
# strftime cost about 4 us a call, the main part of a date cell, and a list shows a hundred.
_FIELDS = {
    "%d": "{0.day:02d}",
    "%b": "{1}",
    "%Y": "{0.year:04d}",
    "%H": "{0.hour:02d}",
    "%M": "{0.minute:02d}",
    "%S": "{0.second:02d}",
}
_DIRECTIVE = re.compile(r"%.")


@cache
def _format_template(fmt: str) -> str | None:
    """fmt as a str.format template, or None when it uses a directive not in _FIELDS."""
    parts = _DIRECTIVE.split(fmt)
    directives = _DIRECTIVE.findall(fmt)
    if any(directive not in _FIELDS for directive in directives):
        return None
    template = parts[0].replace("{", "{{").replace("}", "}}")
    for directive, text in zip(directives, parts[1:], strict=True):
        template += _FIELDS[directive] + text.replace("{", "{{").replace("}", "}}")
    return template


def local_datetime(value: datetime | None, fmt: str = "%d %b %Y %H:%M") -> str:
    if value is None:
        return "—"
    local = value.astimezone(business_zone())
    template = _format_template(fmt)
    if template is None:
        return local.strftime(fmt)
    return template.format(local, _MONTHS[local.month - 1])


def local_date(value: datetime | None) -> str:
    return local_datetime(value, "%d %b %Y")


def thousands(value: int) -> str:
    """1,234; a capped count shows its own label (1000+)."""
    label = getattr(value, "label", None)
    return label if label is not None else f"{value:,}"


def percent(rate: float | None) -> str:
    return "—" if rate is None else f"{rate * 100:.0f}%"


def init_app(app: Flask) -> None:
    for template_filter in (local_datetime, local_date, thousands, percent):
        app.add_template_filter(template_filter)
