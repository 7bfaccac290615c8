"""The managers' activity log: every change, filterable and keyset-paged, full page or htmx."""

import sqlalchemy as sa
from flask import Blueprint, request, url_for

from ied.activity.forms import ActivityFilterForm
from ied.activity.queries import ActivityRow, activity_page
from ied.auth.access import role_required
from ied.auth.models import User
from ied.extensions import db
from ied.htmx import page_or_block

bp = Blueprint("activity", __name__)

LOG_PAGE = "activity/index.html"


@bp.app_template_global("activity_subject_url")
def subject_url(row: ActivityRow) -> str | None:
    """Where the touched record is shown: its own page, else the page of its lead."""
    entry = row.entry
    if entry.subject_type == "follow_up":
        return url_for("followups.show", follow_up_id=entry.subject_id)
    if entry.subject_type == "installer":
        return url_for("installers.edit", installer_id=entry.subject_id)
    if row.lead_reference:
        return url_for("leads.show", reference=row.lead_reference)
    return None


@bp.get("/activity")
@role_required("manager")
def index():
    filters = ActivityFilterForm(formdata=request.args)
    filters.set_actors(db.session.scalars(sa.select(User).order_by(User.email)))
    valid = filters.validate()
    page = activity_page(filters.activity_filters(), after=filters.after.data)
    return page_or_block(LOG_PAGE, "results", 200 if valid else 422, filters=filters, page=page)
