from datetime import date

from sqlalchemy.orm import Mapped, mapped_column

from ied.extensions import db

# Business-wide tallies (not one installer's) sit on installer_id 0.
BUSINESS_WIDE = 0


class DailyTally(db.Model):
    """What happened on each business day, counted by the services that make it happen, in
    the same transaction (ied/tallies/services.py), so the dashboard's period figures read a
    few rows per day instead of every lead, attempt and follow-up of the period.

    Business-wide rows (installer_id 0) are spread over TALLY_SHARDS rows a day, by the id of
    what they count, so concurrent intakes and deliveries rarely wait on one row; an
    installer's rows are one a day (their writers already queue on the installer's cycle
    counter).
    """

    __tablename__ = "daily_tallies"

    day: Mapped[date] = mapped_column(primary_key=True)
    installer_id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    shard: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    # Business-wide: leads received; delivery attempts finished, by outcome.
    leads_created: Mapped[int] = mapped_column(default=0)
    attempts_sent: Mapped[int] = mapped_column(default=0)
    attempts_failed: Mapped[int] = mapped_column(default=0)
    # Per installer: deliveries sent that day, and how many of those a person opened since.
    deliveries_sent: Mapped[int] = mapped_column(default=0)
    deliveries_opened: Mapped[int] = mapped_column(default=0)
    # Per installer: returns asked for, and follow-ups closed by satisfaction and issue.
    returns_requested: Mapped[int] = mapped_column(default=0)
    follow_ups_closed: Mapped[int] = mapped_column(default=0)
    follow_ups_satisfied: Mapped[int] = mapped_column(default=0)
    follow_ups_mixed: Mapped[int] = mapped_column(default=0)
    follow_ups_unsatisfied: Mapped[int] = mapped_column(default=0)
    follow_ups_with_issue: Mapped[int] = mapped_column(default=0)


TALLIES = (
    "leads_created",
    "attempts_sent",
    "attempts_failed",
    "deliveries_sent",
    "deliveries_opened",
    "returns_requested",
    "follow_ups_closed",
    "follow_ups_satisfied",
    "follow_ups_mixed",
    "follow_ups_unsatisfied",
    "follow_ups_with_issue",
)
