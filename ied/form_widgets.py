"""WTForms' select widget, its plain options written in one f-string each.

WTForms builds every option through html_params (a dict, sorted, each key checked and escaped):
the finance and follow-up filters offer every installer, and their three selects cost about
3 ms of a 20 ms page. The markup is the same as WTForms' own.
"""

from markupsafe import Markup, escape
from wtforms.widgets import Select


class FastSelect(Select):
    @classmethod
    def render_option(cls, choice, **kwargs):
        if choice.render_kw or kwargs:
            return super().render_option(choice, **kwargs)
        value = str(choice.value) if isinstance(choice.value, bool) else choice.value
        label = escape(choice.label or choice.value)
        selected = "selected " if choice.selected else ""
        return Markup(f'<option {selected}value="{escape(value)}">{label}</option>')
