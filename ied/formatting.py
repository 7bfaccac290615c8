"""Jinja filters that show instants in the business time zone."""

from datetime import datetime

from flask import Flask

from ied.business_time import business_zone


def local_datetime(value: datetime | None, fmt: str = "%d %b %Y %H:%M") -> str:
    if value is None:
        return "—"
    return value.astimezone(business_zone()).strftime(fmt)


def local_date(value: datetime | None) -> str:
    return local_datetime(value, "%d %b %Y")


def init_app(app: Flask) -> None:
    app.add_template_filter(local_datetime)
    app.add_template_filter(local_date)
