from flask_wtf import FlaskForm
from wtforms import HiddenField, SelectField, TextAreaField
from wtforms.validators import DataRequired

from ied.business_time import CurrentCycles
from ied.finance.queries import EVENT_STATES, EventFilter
from ied.finance.services import REASON_TEXT_LIMIT
from ied.followups.forms import choices
from ied.form_values import optional_int
from ied.form_widgets import FastSelect
from ied.input_limits import StorableText, id_or_none

ALL_CYCLES = "all"
CURRENT_CYCLES = "current"


class FinanceFilterForm(FlaskForm):
    """The finance list's filters, read from the query string: bookmarkable, never CSRF-checked.

    No cycle in the URL (or an unknown one) means each installer's current cycle, which
    follows its anchor day; `cycle=all` means every cycle.
    """

    class Meta:
        csrf = False

    cycle = SelectField("Cycle", validate_choice=False, widget=FastSelect())
    installer = SelectField(
        "Installer", coerce=optional_int, validate_choice=False, widget=FastSelect()
    )
    state = SelectField(
        "Status",
        widget=FastSelect(),
        choices=choices([("", "Billed and voided"), *EVENT_STATES.items()]),
        filters=[lambda value: value if value in EVENT_STATES else None],
    )
    after = HiddenField(filters=[id_or_none])
    current: CurrentCycles | None = None  # set by offer(), as are the anchor days
    anchor_days: dict[int, int] = {}

    def offer(
        self, cycles: list[str], installers: list[tuple[int, str, int]], current: CurrentCycles
    ) -> None:
        """`installers`: (id, company name, billing anchor day) of each, in name order."""
        self.current = current
        self.anchor_days = {installer_id: anchor for installer_id, _, anchor in installers}
        self.cycle.choices = choices(
            [
                (CURRENT_CYCLES, "Current cycles"),
                (ALL_CYCLES, "All cycles"),
                *((cycle, cycle) for cycle in cycles),
            ]
        )
        self.installer.choices = choices(
            [
                ("", "Every installer"),
                *((installer_id, name) for installer_id, name, _ in installers),
            ]
        )
        if self.cycle.data not in (*cycles, ALL_CYCLES):
            self.cycle.data = CURRENT_CYCLES
        if self.installer.data not in self.anchor_days:
            self.installer.data = None

    def statement_cycle(self, installer_id: int) -> str | None:
        """The cycle whose statement a totals row links to (none for all cycles)."""
        if self.cycle.data == CURRENT_CYCLES:
            anchor_day = self.anchor_days.get(installer_id)
            return None if anchor_day is None else self.current.label(anchor_day)
        return None if self.cycle.data == ALL_CYCLES else self.cycle.data

    def event_filter(self) -> EventFilter:
        named = self.cycle.data not in (ALL_CYCLES, CURRENT_CYCLES)
        current = self.cycle.data == CURRENT_CYCLES
        return EventFilter(
            cycle=self.cycle.data if named else None,
            current=self.current if current else None,
            installer_id=self.installer.data,
            state=self.state.data,
        )

    def query_args(self, **changes) -> dict:
        """The filters as URL parameters (empty ones left out), with some values replaced."""
        values = {
            "cycle": self.cycle.data,
            "installer": self.installer.data,
            "state": self.state.data,
        }
        values.update(changes)
        return {key: value for key, value in values.items() if value}


class VoidForm(FlaskForm):
    reason = TextAreaField(
        "Why is this delivery voided?",
        validators=[
            DataRequired("Give the reason for voiding this delivery."),
            StorableText(REASON_TEXT_LIMIT, multiline=True),
        ],
    )
    next = HiddenField()


class ReturnDecisionForm(FlaskForm):
    remark = TextAreaField("Remark", validators=[StorableText(REASON_TEXT_LIMIT, multiline=True)])
    decision = HiddenField()  # never rendered: the button pressed sends approve or reject
