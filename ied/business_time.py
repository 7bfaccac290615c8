"""Calendar questions answered in the business time zone (days, billing cycles)."""

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from flask import Flask, current_app

from ied.timestamps import utcnow


def business_zone(app: Flask | None = None) -> ZoneInfo:
    """`app`: when the caller has it (a template filter, from its environment); looking it up
    through `current_app` costs more than the zone itself."""
    return ZoneInfo((app or current_app).config["BUSINESS_TIMEZONE"])


def local_midnight(day: date) -> datetime:
    """The instant (aware) a business day starts; correct across daylight-saving changes."""
    return datetime.combine(day, time.min, tzinfo=business_zone())


def business_today(now: datetime | None = None) -> date:
    return (now or utcnow()).astimezone(business_zone()).date()


def day_bounds(day: date) -> tuple[datetime, datetime]:
    return local_midnight(day), local_midnight(day + timedelta(days=1))


@dataclass(frozen=True)
class BillingCycle:
    label: str
    starts_at: datetime
    ends_at: datetime


def _add_months(year: int, month: int, months: int) -> tuple[int, int]:
    index = year * 12 + (month - 1) + months
    return index // 12, index % 12 + 1


@dataclass(frozen=True)
class CurrentCycles:
    """Which monthly cycle is current for each anchor day (1-28), from one look at the clock:
    an installer anchored on a day up to today's is in this month's cycle, one anchored later
    still in last month's."""

    today_day: int
    this_month: str
    last_month: str

    def label(self, anchor_day: int) -> str:
        return self.this_month if anchor_day <= self.today_day else self.last_month


def current_cycles(at: datetime | None = None) -> CurrentCycles:
    today = business_today(at)
    year, month = _add_months(today.year, today.month, -1)
    return CurrentCycles(
        today.day, f"{today.year:04d}-{today.month:02d}", f"{year:04d}-{month:02d}"
    )


def billing_cycle(anchor_day: int, at: datetime | None = None) -> BillingCycle:
    """Monthly cycle starting on the installer's anchor day (1-28), labelled by its start month."""
    return named_billing_cycle(anchor_day, current_cycles(at).label(anchor_day))


_CYCLE_LABEL = re.compile(r"([0-9]{4})-(0[1-9]|1[0-2])")


def is_cycle_label(label: str) -> bool:
    """A `YYYY-MM` label whose cycle starts and ends in the calendar: year 1 to 9999, and a
    month after it (so not 9999-12)."""
    match = _CYCLE_LABEL.fullmatch(label)
    return match is not None and (1, 1) <= (int(match[1]), int(match[2])) < (9999, 12)


def named_billing_cycle(anchor_day: int, label: str) -> BillingCycle:
    """The cycle labelled `YYYY-MM` for an installer with this anchor day: from local midnight
    of the anchor day that month to local midnight of the anchor day the next month."""
    return _named_billing_cycle(anchor_day, label, current_app.config["BUSINESS_TIMEZONE"])


@lru_cache(maxsize=4096)
def _named_billing_cycle(anchor_day: int, label: str, zone_name: str) -> BillingCycle:
    # Remembered: a page showing 50 installers' usage asks for the same few cycles every time.
    zone = ZoneInfo(zone_name)
    year, month = (int(part) for part in label.split("-"))
    next_year, next_month = _add_months(year, month, 1)
    return BillingCycle(
        label=label,
        starts_at=datetime.combine(date(year, month, anchor_day), time.min, tzinfo=zone),
        ends_at=datetime.combine(date(next_year, next_month, anchor_day), time.min, tzinfo=zone),
    )
