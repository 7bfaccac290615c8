"""FastSelect writes the same markup as WTForms' own select, only faster."""

import pytest
from werkzeug.datastructures import MultiDict
from wtforms import Form, SelectField
from wtforms.fields.choices import SelectChoice
from wtforms.widgets import Select

from ied.followups.forms import choices as select_choices
from ied.form_values import optional_int
from ied.form_widgets import FastSelect

CHOICES = [("", "Every installer"), (1, "Acme & <Sons>"), (2, 'Quote "Heat"'), (3, "")]


@pytest.mark.parametrize(
    "choices, coerce, submitted",
    [
        (CHOICES, optional_int, "2"),
        (CHOICES, optional_int, ""),
        ([(True, "yes"), (False, "no")], lambda value: value in (True, "True"), "True"),
        ([("a&b", "A and B"), ("c", "C")], str, "a&b"),
    ],
)
def test_fast_select_writes_what_wtforms_writes(choices, coerce, submitted):
    class Filters(Form):
        theirs = SelectField(choices=select_choices(choices), coerce=coerce, widget=Select())
        ours = SelectField(choices=select_choices(choices), coerce=coerce, widget=FastSelect())

    form = Filters(MultiDict({"theirs": submitted, "ours": submitted}))
    attributes = {"aria-label": "Installer", "class": "filter"}
    assert str(form.ours(**attributes)) == str(form.theirs(**attributes)).replace("theirs", "ours")
    assert "selected" in str(form.ours())


def test_options_with_their_own_attributes_are_left_to_wtforms():
    class Filters(Form):
        ours = SelectField(
            choices=[
                SelectChoice("", "Any", render_kw={"disabled": True}),
                SelectChoice("x", "X"),
            ],
            widget=FastSelect(),
        )

    html = str(Filters(MultiDict({"ours": "x"})).ours())
    assert '<option disabled value="">Any</option>' in html
    assert '<option selected value="x">X</option>' in html
