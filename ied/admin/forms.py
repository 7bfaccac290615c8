from flask_wtf import FlaskForm
from wtforms import EmailField, PasswordField, SelectField, StringField
from wtforms.fields.choices import SelectChoice

from ied.auth.forms import USER_EMAIL_LENGTH
from ied.auth.models import ROLES
from ied.input_limits import StorableText


class NewUserForm(FlaskForm):
    email = EmailField("Email", validators=[StorableText(USER_EMAIL_LENGTH)])
    role = SelectField(
        "Role", choices=[SelectChoice(role, role) for role in ROLES], validate_choice=False
    )
    password = PasswordField("Starting password", render_kw={"autocomplete": "new-password"})


class ResetPasswordForm(FlaskForm):
    password = PasswordField("New password", render_kw={"autocomplete": "new-password"})


class NewApiKeyForm(FlaskForm):
    source = StringField("Source")
