"""The lead page: one template, its blocks, and the one place that gathers what they show.

The leads blueprint serves every `/leads/<reference>/...` route; delivery and follow-up actions
elsewhere answer through `lead_page_parts` too, so every part is drawn from the same context.
"""

from flask import abort, current_app

from ied.activity.queries import lead_timeline
from ied.auth.access import url_if_allowed
from ied.delivery.queries import assign_options, lead_deliveries
from ied.followups.forms import create_follow_up_form
from ied.followups.queries import lead_follow_up_panel
from ied.htmx import page_or_blocks
from ied.leads.assessment import readable_answers
from ied.leads.models import Lead
from ied.leads.queries import PAGE_LOADS, lead_by_reference

LEAD_PAGE = "leads/lead.html"


def lead_or_404(reference: str) -> Lead:
    """The lead with everything its page shows."""
    return lead_by_reference(reference, PAGE_LOADS) or abort(404)


def lead_page_context(
    lead: Lead, *, chosen=None, follow_up_form=None, follow_up_installer: int | None = None, **extra
) -> dict:
    follow_up_panel = lead_follow_up_panel(lead)
    if follow_up_form is None and follow_up_panel.sent:
        follow_up_form = create_follow_up_form(follow_up_panel.sent, follow_up_installer)
    return {
        "lead": lead,
        "answers": readable_answers(lead.assessment),
        "assign": assign_options(lead, chosen),
        "installers_url": url_if_allowed("installers.index"),
        "deliveries": lead_deliveries(lead),
        "follow_up_panel": follow_up_panel,
        "follow_up_form": follow_up_form,
        "follow_up_default_days": current_app.config["FOLLOW_UP_DEFAULT_DAYS"],
        "timeline": lead_timeline(lead),
        "activity_log_url": url_if_allowed("activity.index", lead=lead.reference),
        **extra,
    }


def lead_page_parts(lead: Lead, parts: list[str], status: int = 200, **extra):
    """The whole page, or for htmx the named blocks: the first answers the request's target,
    the others swap out of band."""
    return page_or_blocks(LEAD_PAGE, parts, status, **lead_page_context(lead, **extra))
