"""Jinja filters: instants in the business time zone, counts and rates. Filters, not macros:
a page calls them once a table cell, and a Jinja macro call costs many times a function's."""

from datetime import datetime

from flask import Flask

from ied.business_time import business_zone


def local_datetime(value: datetime | None, fmt: str = "%d %b %Y %H:%M") -> str:
    if value is None:
        return "—"
    return value.astimezone(business_zone()).strftime(fmt)


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
