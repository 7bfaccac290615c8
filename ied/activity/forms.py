from datetime import date

from flask_wtf import FlaskForm
from wtforms import DateField, HiddenField, SearchField, SelectField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import Optional, ValidationError

from ied.activity.models import SUBJECT_LABELS, VERB_LABELS
from ied.activity.queries import NO_USER, ActivityFilters


def _actor(value) -> int | str | None:
    if value in (None, ""):
        return None
    if value == NO_USER:
        return NO_USER
    try:
        return int(value)
    except (TypeError, ValueError):
        return value  # left as given: refused as "not a valid choice"


def _optional(value) -> str | None:
    return value or None


FIRST_DAY, LAST_DAY = date(2000, 1, 1), date(2999, 12, 31)


def _within_calendar(form, field) -> None:
    if field.data and not FIRST_DAY <= field.data <= LAST_DAY:
        raise ValidationError(f"Give a date from {FIRST_DAY} to {LAST_DAY}.")


class ActivityFilterForm(FlaskForm):
    """The log's filters, read from the query string: bookmarkable, never CSRF-checked."""

    class Meta:
        csrf = False

    verb = SelectField(
        "What",
        choices=[SelectChoice("", "Any change")]
        + [SelectChoice(verb, label) for verb, label in VERB_LABELS.items()],
        coerce=_optional,
    )
    actor = SelectField("Who", coerce=_actor)
    subject_type = SelectField(
        "Record",
        choices=[SelectChoice("", "Any record")]
        + [SelectChoice(subject, label) for subject, label in SUBJECT_LABELS.items()],
        coerce=_optional,
    )
    lead = SearchField("Lead", filters=[lambda value: (value or "").strip().upper()[:32] or None])
    since = DateField("From", validators=[Optional(), _within_calendar])
    until = DateField("To", validators=[Optional(), _within_calendar])
    after = HiddenField(filters=[lambda value: value or None])

    def set_actors(self, users) -> None:
        self.actor.choices = [
            SelectChoice("", "Anyone"),
            *(SelectChoice(user.id, user.email) for user in users),
            SelectChoice(NO_USER, "No user: system, installers, intake"),
        ]

    def validate_until(self, field) -> None:
        if field.data and self.since.data and field.data < self.since.data:
            raise ValidationError("The end date is before the start date.")

    def activity_filters(self) -> ActivityFilters:
        """The filters that passed validation; a refused one is shown with its error, unused."""
        names = ("verb", "actor", "subject_type", "lead", "since", "until")
        return ActivityFilters(
            **{name: None if self[name].errors else self[name].data for name in names}
        )

    def query_args(self, **changes) -> dict:
        """The filters as URL parameters (empty ones left out), with some values replaced."""
        values = {
            "verb": self.verb.data,
            "actor": self.actor.data,
            "subject_type": self.subject_type.data,
            "lead": self.lead.data,
            "since": self.since.data.isoformat() if self.since.data else None,
            "until": self.until.data.isoformat() if self.until.data else None,
        }
        values.update(changes)
        return {key: value for key, value in values.items() if value}
