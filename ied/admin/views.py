"""Admin pages: users (create, change role, reset password, deactivate) and intake API keys."""

import sqlalchemy as sa
from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user

from ied.admin.forms import NewApiKeyForm, NewUserForm, ResetPasswordForm
from ied.auth import services as user_services
from ied.auth.access import role_required
from ied.auth.forms import NEW_PASSWORD_HINT
from ied.auth.models import ROLES, User
from ied.errors import DomainError
from ied.extensions import db
from ied.form_errors import show_field_errors
from ied.form_values import on_or_off
from ied.intake import services as intake_services
from ied.intake.models import ApiKey

bp = Blueprint("admin", __name__, url_prefix="/admin")


@bp.before_request
@role_required("admin")
def admins_only():
    return None


def _refused_or_done(action, done: str, back: str):
    """Run one change; a refusal is flashed and changes nothing. Always back to the list."""
    try:
        action()
        db.session.commit()
        flash(done, "success")
    except DomainError as error:
        db.session.rollback()
        flash(error.message, "error")
    return redirect(back, 303)


def _users_page(form: NewUserForm, status: int = 200):
    listed = db.session.scalars(sa.select(User).order_by(User.active.desc(), User.email))
    return render_template(
        "admin/users.html", accounts=listed, form=form, roles=ROLES, hint=NEW_PASSWORD_HINT
    ), status


@bp.get("/users")
def users():
    return _users_page(NewUserForm())


@bp.post("/users")
def create_user():
    form = NewUserForm()
    if form.validate_on_submit():
        try:
            user = user_services.create_user(
                form.email.data or "",
                form.role.data or "",
                form.password.data or "",
                actor=current_user,
            )
        except user_services.UserRefused as error:
            db.session.rollback()
            show_field_errors(form, {error.field or "email": error.message})
        else:
            db.session.commit()
            flash(f"{user.email} can now sign in as {user.role}.", "success")
            return redirect(url_for("admin.users"), 303)
    return _users_page(form, 422)


def _user_or_404(user_id: int) -> User:
    return db.session.get(User, user_id) or abort(404)


@bp.post("/users/<int:user_id>/role")
def change_role(user_id: int):
    user = _user_or_404(user_id)
    role = request.form.get("role", "")
    return _refused_or_done(
        lambda: user_services.change_role(user, role, current_user),
        f"{user.email} is now {role}.",
        url_for("admin.users"),
    )


@bp.route("/users/<int:user_id>/password", methods=["GET", "POST"])
def reset_password(user_id: int):
    user = _user_or_404(user_id)
    form = ResetPasswordForm()
    if form.validate_on_submit():
        try:
            user_services.reset_password(user, form.password.data or "", current_user)
        except user_services.UserRefused as error:
            db.session.rollback()
            show_field_errors(form, {error.field or "password": error.message})
        else:
            db.session.commit()
            flash(
                f"{user.email} has a new password and is signed out everywhere; tell it to them.",
                "success",
            )
            return redirect(url_for("admin.users"), 303)
    status = 422 if request.method == "POST" else 200
    return render_template(
        "admin/reset_password.html", account=user, form=form, hint=NEW_PASSWORD_HINT
    ), status


@bp.post("/users/<int:user_id>/active")
def set_active(user_id: int):
    user = _user_or_404(user_id)
    value = request.form.get("active")
    active = value == "1"
    return _refused_or_done(
        lambda: user_services.set_active(user, on_or_off(value), current_user),
        f"{user.email} is {'active again' if active else 'deactivated and signed out everywhere'}.",
        url_for("admin.users"),
    )


def _api_keys_page(form: NewApiKeyForm, status: int = 200, new_key: str | None = None):
    keys = db.session.scalars(
        sa.select(ApiKey).order_by(ApiKey.revoked_at.is_not(None), ApiKey.created_at.desc())
    )
    return render_template("admin/api_keys.html", keys=keys, form=form, new_key=new_key), status


@bp.get("/api-keys")
def api_keys():
    return _api_keys_page(NewApiKeyForm())


@bp.post("/api-keys")
def create_api_key():
    form = NewApiKeyForm()
    if form.validate_on_submit():
        try:
            raw_key, _ = intake_services.create_api_key(form.source.data or "", current_user)
        except intake_services.ApiKeyRefused as error:
            db.session.rollback()
            show_field_errors(form, {error.field or "source": error.message})
        else:
            db.session.commit()
            # Shown in this answer only: the database keeps just its hash.
            return _api_keys_page(NewApiKeyForm(formdata=None), 201, new_key=raw_key)
    return _api_keys_page(form, 422)


@bp.post("/api-keys/<int:key_id>/revoke")
def revoke_api_key(key_id: int):
    api_key = db.session.get(ApiKey, key_id) or abort(404)
    return _refused_or_done(
        lambda: intake_services.revoke_api_key(api_key, current_user),
        f"The {api_key.source} key {api_key.key_prefix}… is revoked; calls with it now get 401.",
        url_for("admin.api_keys"),
    )
