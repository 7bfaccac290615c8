"""The lead page: one template, its blocks, and the one place that gathers what they show.

The leads blueprint serves every route that answers with it (every `/leads/<reference>/...`
one, and resending or withdrawing a delivery), each through `lead_page_parts`, so every part is
drawn from the same context.
"""

from flask import abort, current_app, url_for

from ied.activity.queries import lead_timeline
from ied.auth.access import url_if_allowed
from ied.delivery.queries import assign_options, has_a_free_place, lead_deliveries
from ied.delivery.services import resend_blockers
from ied.followups.forms import create_follow_up_form
from ied.followups.queries import lead_follow_up_panel
from ied.htmx import page_or_blocks, render_block
from ied.installers.services import eligibility_of
from ied.leads.assessment import readable_answers
from ied.leads.models import Lead
from ied.leads.queries import (
    QueuePage,
    delivery_problems,
    lead_by_reference,
    lead_for_page,
    needs_attention,
    next_in_tab,
    queue_counts,
)
from ied.row_links import RowLink
from ied.timestamps import utcnow

LEAD_PAGE = "leads/lead.html"


QUEUE = "leads/queue.html"
# Leads whose routing the queue shows: who could take them once approved or now.
NOT_YET_ASSIGNED = ("reviewing", "ready_to_route")


class QueueRowLinks:
    """The links every queue row carries, built once per page (ied/row_links.py)."""

    def __init__(self, tab: str):
        self.lead = RowLink("leads.show", "reference")
        self.lead_in_tab = RowLink("leads.show", "reference", tab=tab)
        self.assign_page = RowLink("leads.show", "reference", tab=tab, assign=1)
        self.assign_dialog = RowLink("leads.assign_dialog", "reference", tab=tab)
        self.advance = RowLink("leads.advance", "reference")
        self.resend = RowLink("leads.resend", "assignment_id", "id")
        self.withdraw = RowLink("leads.withdraw", "assignment_id", "id")


def queue_rows_context(leads: list[Lead], tab: str, order: str = "newest", q: str = "") -> dict:
    """What the queue's rows show beyond the lead, for a whole page in a fixed number of
    queries: who can take each lead not yet assigned, and why an assigned one needs attention
    (looked up only for those whose kept attention moment has come: on most pages none);
    the rows' links, and the way back to this view after a plain (no-JavaScript) post.
    `routing_column`: whether the table shows its Installers column: on the tabs of leads not
    yet assigned, and for a search (it finds leads in any status); elsewhere it would be empty.
    A row always carries its routing cell, so a row swapped in alone (which knows its tab, not
    the search) fits either table; a New lead advanced in place brings the column back (CSS)."""
    now = utcnow()
    problems = delivery_problems(
        [lead.id for lead in leads if lead.status == "assigned" and needs_attention(lead, now)]
    )
    return {
        "routing_column": bool(q) or tab in NOT_YET_ASSIGNED,
        "eligibility": eligibility_of([lead for lead in leads if lead.status in NOT_YET_ASSIGNED]),
        "problems": problems,
        # Assign another: only while the lead's path has a free place (a recommended-installer
        # lead's one place is held by its failed or stuck delivery until it is withdrawn).
        "assign_another": {
            lead.id
            for lead in leads
            if lead.id in problems and has_a_free_place(lead, problems[lead.id][0].lead_live_count)
        },
        "installers_url": url_if_allowed("installers.index"),
        "links": QueueRowLinks(tab),
        "queue_url": url_for("leads.queue", tab=tab, order=order, q=q or None),
    }


def queue_row_parts(
    reference: str,
    tab: str,
    *,
    status: int = 200,
    oob: bool = False,
    lead: Lead | None = None,
    **extra,
):
    """One queue row, swapped in place (or out of band), and the tab counts, out of band;
    from `lead` when the caller has it loaded."""
    lead = lead or lead_by_reference(reference)
    context = {
        "page": QueuePage([lead], None),  # the rows block, for a page of this one lead
        "tab": tab,
        "order": "newest",
        "q": "",
        **queue_rows_context([lead], tab),
        **extra,
    }
    row = render_block(QUEUE, "queue_rows", oob=oob, **context)
    if oob:  # a table row survives parsing outside its table only inside a template
        row = f"<template>{row}</template>"
    body = row + render_block(QUEUE, "tabs", counts=queue_counts()[0], oob=True, **context)
    return body, status, {"Vary": "HX-Request"}


def on_from_tab(tab: str | None, lead: Lead) -> dict:
    """The way back to the queue tab the operator came from, and on to its next lead: its
    assign dialog when it waits for installers, else its page."""
    if tab is None:
        return {}
    following = next_in_tab(tab, lead)
    next_url = None
    if following is not None:
        if following.status == "ready_to_route":
            next_url = url_for("leads.show", reference=following.reference, tab=tab, assign=1)
        else:
            next_url = url_for("leads.show", reference=following.reference, tab=tab)
    return {"back_tab": tab, "next_lead": following, "next_url": next_url}


def approval_warning(lead: Lead) -> str | None:
    """Said before approving a lead that no installer could take now."""
    if lead.next_status != "ready_to_route":
        return None
    eligibility = eligibility_of([lead])[lead.id]
    if eligibility.eligible:
        return None
    return f"No installer can take {lead.reference} now. {eligibility.why_nobody} Approve anyway?"


def lead_or_404(reference: str) -> Lead:
    """The lead with everything its page shows."""
    return lead_for_page(reference) or abort(404)


def lead_page_context(
    lead: Lead,
    *,
    chosen=None,
    assign_open: bool = False,
    back_tab: str | None = None,
    follow_up_form=None,
    follow_up_installer: int | None = None,
    **extra,
) -> dict:
    """The assign dialog's options are worked out only when it is shown open (every installer's
    choice: a quarter of the page's time); the page's button fetches it when pressed."""
    follow_up_panel = lead_follow_up_panel(lead)
    if follow_up_form is None and follow_up_panel.sent:
        follow_up_form = create_follow_up_form(follow_up_panel.sent, follow_up_installer)
    return {
        "lead": lead,
        "answers": readable_answers(lead.assessment),
        "assignable": has_a_free_place(lead),
        "assign": assign_options(lead, chosen) if assign_open else None,
        "back_tab": back_tab,
        "installers_url": url_if_allowed("installers.index"),
        "deliveries": lead_deliveries(lead),
        "resend_blockers": resend_blockers(lead.assignments),
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
