"""Domain errors shown on the form fields they name, so the service stays the one judge."""

from flask_wtf import FlaskForm


def show_field_errors(form: FlaskForm, errors: dict[str, str]) -> None:
    for name, message in errors.items():
        if name in form:
            form[name].errors = [*form[name].errors, message]
        else:
            form.form_errors.append(message)
