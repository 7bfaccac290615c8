from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    DateField,
    HiddenField,
    RadioField,
    SearchField,
    SelectField,
    TextAreaField,
)
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, InputRequired, Optional, ValidationError

from ied.business_time import business_today
from ied.followups.models import (
    CONTACT_OUTCOME_LABELS,
    FOLLOW_UP_STATUS_LABELS,
    SATISFACTION_OUTCOMES,
)
from ied.followups.queries import DUE_STATES
from ied.followups.services import Outcome, default_due_date
from ied.form_values import optional_int
from ied.form_widgets import FastSelect
from ied.formatting import local_date
from ied.input_limits import StorableText, id_or_none

NOTE_LIMIT = 2000
NOTE_TEXT = StorableText(NOTE_LIMIT, multiline=True)


def choices(pairs) -> list[SelectChoice]:
    return [SelectChoice(value, label) for value, label in pairs]


def _optional_choice(value: str | None) -> str | None:
    return value or None


# A due date typed this many years from today either way is a typo (9999 for 2029, 0202 for
# 2026); the last days of the calendar have no end of their business day to be due at.
DUE_DATE_YEARS = 10


class CreateFollowUpForm(FlaskForm):
    installer_id = SelectField(
        "Installer", coerce=optional_int, validators=[InputRequired("Choose an installer.")]
    )
    due_date = DateField("Due date", validators=[InputRequired("Give a due date.")])
    notes = TextAreaField("Why follow up (optional)", validators=[NOTE_TEXT])

    def validate_due_date(self, field) -> None:
        if field.data is None:  # not a date: the field already says so
            return
        today = business_today()
        if abs(field.data.year - today.year) > DUE_DATE_YEARS:
            raise ValidationError(f"Give a due date within {DUE_DATE_YEARS} years of today.")
        # A follow-up made here is work planned from today: one due on a past day would be
        # overdue before anyone could act on it.
        if field.data < today:
            raise ValidationError(f"{field.data:%d %b %Y} has passed: give today or a later day.")


def create_follow_up_form(sent, installer_id: int | None = None) -> CreateFollowUpForm:
    """A fresh form whose due date defaults from the chosen (else the first) sent delivery."""
    chosen = next((a for a in sent if a.installer_id == installer_id), sent[0])
    form = CreateFollowUpForm(
        formdata=None, installer_id=chosen.installer_id, due_date=default_due_date(chosen)
    )
    offer_installers(form, sent)
    return form


def offer_installers(form: CreateFollowUpForm, sent) -> None:
    """The installers a follow-up may be for: those the lead was delivered to."""
    form.installer_id.choices = choices(
        (a.installer_id, f"{a.installer.company_name} (delivered {local_date(a.sent_at)})")
        for a in sent
    )


class ContactAttemptForm(FlaskForm):
    outcome = RadioField(
        "Outcome",
        choices=choices(CONTACT_OUTCOME_LABELS.items()),
        validate_choice=False,
        validators=[DataRequired("Choose what happened.")],
    )
    note = TextAreaField("Note", validators=[NOTE_TEXT])


class OutcomeForm(FlaskForm):
    satisfaction_outcome = RadioField(
        "Satisfaction",
        choices=choices((value, value.capitalize()) for value in SATISFACTION_OUTCOMES),
        coerce=_optional_choice,
        validators=[Optional()],
    )
    has_issue = BooleanField("The customer reported an issue")
    issue_summary = TextAreaField("Issue summary", validators=[NOTE_TEXT])
    issue_resolved = BooleanField("The issue is resolved")
    referral_opportunity = BooleanField("Referral opportunity")
    notes = TextAreaField("Notes", validators=[NOTE_TEXT])
    read_version = HiddenField()  # the outcome this form was filled in over (outcome_version)

    def outcome(self) -> Outcome:
        return Outcome(
            satisfaction_outcome=self.satisfaction_outcome.data,
            has_issue=self.has_issue.data,
            issue_summary=self.issue_summary.data,
            issue_resolved=self.issue_resolved.data,
            referral_opportunity=self.referral_opportunity.data,
            notes=self.notes.data,
        )


class FollowUpFilterForm(FlaskForm):
    """The list's filters, read from the query string: bookmarkable, never CSRF-checked."""

    class Meta:
        csrf = False

    due = HiddenField(filters=[lambda value: value if value in DUE_STATES else None])
    status = SelectField(
        "Status",
        choices=choices([("", "Any status"), *FOLLOW_UP_STATUS_LABELS.items()]),
        filters=[lambda value: value if value in FOLLOW_UP_STATUS_LABELS else None],
        widget=FastSelect(),
    )
    issue = BooleanField("Open issue only", false_values=("", "false", "0"))
    installer = SelectField("Installer", coerce=optional_int, widget=FastSelect())
    q = SearchField("Search", filters=[lambda value: (value or "").strip()[:100] or None])
    after = HiddenField(filters=[id_or_none])

    def query_args(self, **changes) -> dict:
        """The filters as URL parameters (empty ones left out), with some values replaced."""
        values = {
            "due": self.due.data,
            "status": self.status.data,
            "issue": "open" if self.issue.data else None,
            "installer": self.installer.data,
            "q": self.q.data,
        }
        values.update(changes)
        return {key: value for key, value in values.items() if value}
