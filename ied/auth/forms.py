from flask_wtf import FlaskForm
from wtforms import EmailField, PasswordField, SubmitField
from wtforms.validators import DataRequired, EqualTo

from ied.auth.models import User
from ied.auth.passwords import MIN_PASSWORD_LENGTH
from ied.input_limits import StorableText, column_length

USER_EMAIL_LENGTH = column_length(User, "email")

NEW_PASSWORD_HINT = (
    f"At least {MIN_PASSWORD_LENGTH} characters, not a common password and not your email; "
    "a few unrelated words work well."
)


class LoginForm(FlaskForm):
    email = EmailField("Email", validators=[DataRequired(), StorableText(USER_EMAIL_LENGTH)])
    password = PasswordField("Password", validators=[DataRequired()])
    submit = SubmitField("Sign in")


class ChangePasswordForm(FlaskForm):
    current_password = PasswordField(
        "Current password",
        validators=[DataRequired()],
        render_kw={"autocomplete": "current-password"},
    )
    password = PasswordField(
        "New password", validators=[DataRequired()], render_kw={"autocomplete": "new-password"}
    )
    confirm = PasswordField(
        "New password again",
        validators=[DataRequired(), EqualTo("password", "The two new passwords differ.")],
        render_kw={"autocomplete": "new-password"},
    )
