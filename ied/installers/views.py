"""Installers for managers: list with cycle usage, create, edit, pause and activate."""

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user

from ied.auth.access import role_required
from ied.errors import DomainError
from ied.extensions import db
from ied.form_errors import show_field_errors
from ied.form_values import on_or_off
from ied.installers import services
from ied.installers.forms import InstallerForm
from ied.installers.models import REGIONS, Installer
from ied.row_links import RowLink

bp = Blueprint("installers", __name__, url_prefix="/installers")

FORM = "installers/form.html"


def installer_or_404(installer_id: int) -> Installer:
    return db.session.get(Installer, installer_id) or abort(404)


@bp.app_template_filter("service_area")
def service_area(area: str) -> str:
    """A region in words (north_west: North West), a postcode prefix as it is."""
    return area.replace("_", " ").title() if area in REGIONS else area


@bp.get("")
@role_required("manager")
def index():
    rows = services.installers_with_usage(Installer.active.desc(), Installer.company_name)
    return render_template(
        "installers/index.html",
        rows=rows,
        edit_link=RowLink("installers.edit", "installer_id", "id"),
        set_active_link=RowLink("installers.set_active", "installer_id", "id"),
    )


def _save(form: InstallerForm, save, installer: Installer | None):
    """Validate, save through the service, or show the form again with its errors (422)."""
    if form.validate_on_submit():
        links_before = installer.link_version if installer else None
        try:
            saved = save(form.installer_input())
        except services.InstallerValidationError as error:
            db.session.rollback()
            show_field_errors(form, error.errors)
        else:
            db.session.commit()
            revoked = links_before is not None and saved.link_version != links_before
            flash(
                f"{saved.company_name} is saved."
                + (" Links emailed to the old address no longer open." if revoked else ""),
                "success",
            )
            return redirect(url_for("installers.index"), 303)
    status = 422 if request.method == "POST" else 200
    return render_template(FORM, form=form, installer=installer, regions=REGIONS), status


@bp.route("/new", methods=["GET", "POST"])
@role_required("manager")
def new():
    return _save(InstallerForm(), lambda data: services.create_installer(data, current_user), None)


@bp.route("/<int:installer_id>/edit", methods=["GET", "POST"])
@role_required("manager")
def edit(installer_id: int):
    installer = installer_or_404(installer_id)
    form = InstallerForm()
    if request.method == "GET":
        form.fill_from(installer)
    return _save(
        form, lambda data: services.update_installer(installer, data, current_user), installer
    )


@bp.post("/<int:installer_id>/active")
@role_required("manager")
def set_active(installer_id: int):
    installer = installer_or_404(installer_id)
    try:
        active = on_or_off(request.form.get("active"))
    except DomainError as error:
        flash(error.message, "error")
        return redirect(url_for("installers.index"), 303)
    services.set_installer_active(installer, active, current_user)
    db.session.commit()
    state = "active again: it receives new leads" if active else "paused: it receives no new leads"
    flash(f"{installer.company_name} is {state}.", "success")
    return redirect(url_for("installers.index"), 303)


@bp.post("/<int:installer_id>/revoke-links")
@role_required("manager")
def revoke_links(installer_id: int):
    installer = installer_or_404(installer_id)
    services.revoke_links(installer, current_user)
    db.session.commit()
    flash(f"Every link emailed to {installer.company_name} so far has stopped working.", "success")
    return redirect(url_for("installers.edit", installer_id=installer.id), 303)
