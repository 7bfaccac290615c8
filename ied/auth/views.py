from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_login import current_user, logout_user

from ied.auth import services
from ied.auth.access import public
from ied.auth.forms import NEW_PASSWORD_HINT, ChangePasswordForm, LoginForm
from ied.auth.sessions import start_session
from ied.extensions import db
from ied.form_errors import show_field_errors
from ied.local_paths import local_path

bp = Blueprint("auth", __name__)


@bp.route("/login", methods=["GET", "POST"])
@public
def login():
    if current_user.is_authenticated:
        return redirect(url_for("home.index"))
    form = LoginForm()
    if form.validate_on_submit():
        user = services.authenticate(form.email.data, form.password.data)
        if user is not None:
            db.session.commit()  # a password hash upgraded at this sign-in
            start_session(user)
            return redirect(local_path(request.args.get("next"), url_for("home.index")))
        form.password.errors.append("Email or password is wrong, or the account is inactive.")
    status = 422 if request.method == "POST" else 200
    return render_template("auth/login.html", form=form), status


@bp.post("/logout")
def logout():
    """Signing out ends every session of this account: the cookie alone cannot be recalled."""
    services.end_sessions(current_user)
    db.session.commit()
    logout_user()
    flash("You are signed out.", "info")
    return redirect(url_for("auth.login"))


@bp.route("/account/password", methods=["GET", "POST"])
def change_password():
    form = ChangePasswordForm()
    if form.validate_on_submit():
        try:
            user = services.change_own_password(
                current_user._get_current_object(), form.current_password.data, form.password.data
            )
        except services.UserRefused as error:
            db.session.rollback()
            show_field_errors(form, {error.field or "password": error.message})
        else:
            db.session.commit()
            start_session(user)  # this browser stays signed in with the new token
            flash("Your password is changed; your other sessions are signed out.", "success")
            return redirect(url_for("home.index"), 303)
    status = 422 if request.method == "POST" else 200
    return render_template("auth/password.html", form=form, hint=NEW_PASSWORD_HINT), status
