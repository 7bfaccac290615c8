"""The installer's signed link: the lead delivered to it, and its return request. (Resending
and withdrawing a delivery answer with the lead page's blocks: the leads blueprint serves them.)"""

from flask import Blueprint, current_app, redirect, render_template, request, url_for

from ied.auth.access import public
from ied.delivery import services
from ied.delivery.forms import ReturnRequestForm
from ied.delivery.links import (
    LinkExpired,
    LinkInvalid,
    LinkPending,
    LinkRevoked,
    posted_from_elsewhere,
    resolve_link,
)
from ied.delivery.models import Assignment
from ied.errors import DomainError
from ied.extensions import csrf, db
from ied.finance import services as finance
from ied.finance.models import RETURN_REASONS
from ied.form_errors import show_field_errors
from ied.leads.assessment import readable_answers
from ied.leads.models import PATH_LABELS, PATH_NOTES_FOR_INSTALLERS, PRODUCT_LABELS

bp = Blueprint("delivery", __name__)

INSTALLER_LINK_HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Robots-Tag": "noindex",
}


@bp.get("/d/<token>")
@public
def installer_link(token: str):
    """What the email link lands on: the link's state and a button to show the lead.

    Mail scanners and link previews fetch links (GET, HEAD, prefetch) with no person behind
    them, so fetching this page records nothing: only pressing "Show the lead" counts.
    """
    assignment = _resolve_or_problem(token)
    if not isinstance(assignment, Assignment):
        return assignment
    asked = request.args.get("asked") == "return"  # back from asking for a return: say so
    body = render_template(
        "delivery/installer_link.html",
        assignment=assignment,
        return_request=asked and finance.return_state(assignment.delivery_event).request,
        **_lead_facts(assignment),
    )
    return body, 200, INSTALLER_LINK_HEADERS


@bp.post("/d/<token>")
@public
@csrf.exempt  # the signed token in the URL is the credential; the page sets no cookie
def open_installer_link(token: str):
    """The installer pressed "Show the lead": count the open and show the customer's details."""
    assignment = _resolve_or_problem(token)
    if not isinstance(assignment, Assignment):
        return assignment
    services.record_link_open(assignment)
    answer = render_installer_lead(assignment)  # from what is loaded, before the commit expires it
    db.session.commit()
    return answer


def render_installer_lead(
    assignment: Assignment,
    status: int = 200,
    return_form: ReturnRequestForm | None = None,
    return_problem: str | None = None,
    confirming: bool = False,
):
    """The lead's details for the installer it was delivered to, with its return request (or,
    `confirming`, the return request filled in, to be confirmed)."""
    return_form = return_form or ReturnRequestForm(meta={"csrf_context": assignment})
    body = render_template(
        "delivery/installer_lead.html",
        assignment=assignment,
        answers=readable_answers(assignment.lead.assessment),
        returns=finance.return_state(assignment.delivery_event),
        return_form=return_form,
        return_problem=return_problem,
        reason_to_confirm=RETURN_REASONS[return_form.reason.data] if confirming else None,
        return_window_days=current_app.config["RETURN_WINDOW_DAYS"],
        **_lead_facts(assignment),
    )
    return body, status, INSTALLER_LINK_HEADERS


@bp.post("/d/<token>/return")
@public
@csrf.exempt  # no session on signed pages: ReturnRequestForm checks its link-bound token
def request_return(token: str):
    """The installer asks for this delivery to be returned (credited). A request is made once
    and cannot be changed, so the form's answer is first shown back to be confirmed
    (`step=confirm` sends it, `step=change` brings the form back as it was filled in)."""
    assignment = _resolve_or_problem(token)
    if not isinstance(assignment, Assignment):
        return assignment
    if posted_from_elsewhere():
        return _link_problem("elsewhere", 403, assignment.lead.reference)
    form = ReturnRequestForm(meta={"csrf_context": assignment})
    step = request.form.get("step")
    if step == "change":
        return render_installer_lead(assignment, return_form=form)
    if not form.validate():
        stale = form.errors.get("csrf_token")
        return render_installer_lead(assignment, 400 if stale else 422, form, stale and stale[0])
    ask = finance.request_return if step == "confirm" else finance.check_return
    try:
        ask(assignment.delivery_event.id, form.reason.data, form.reason_text.data)
    except DomainError as error:
        db.session.rollback()
        show_field_errors(form, {error.field or "": error.message})
        return render_installer_lead(
            assignment, 422 if error.field else 409, form, None if error.field else error.message
        )
    if step != "confirm":
        return render_installer_lead(assignment, return_form=form, confirming=True)
    db.session.commit()
    # To the link's page, which says the request was sent: reloading it asks nothing again.
    answer = redirect(url_for(".installer_link", token=token, asked="return"), 303)
    answer.headers.update(INSTALLER_LINK_HEADERS)
    return answer


@bp.get("/d/<token>/return")
@public
def return_address(token: str):
    """The address a return form answered at (its errors, or the request to confirm), opened
    again: a phone restoring the tab, a reload, a copied address. Back to the link's page,
    which opens the lead again, rather than a bare 405; a link that does not open says why."""
    assignment = _resolve_or_problem(token)
    if not isinstance(assignment, Assignment):
        return assignment
    answer = redirect(url_for(".installer_link", token=token), 303)
    answer.headers.update(INSTALLER_LINK_HEADERS)
    return answer


def _lead_facts(assignment: Assignment) -> dict:
    lead = assignment.lead
    return {
        "lead": lead,
        "installer": assignment.installer,
        "product": PRODUCT_LABELS.get(lead.product_interest, lead.product_interest),
        "path": PATH_LABELS.get(lead.selected_path, lead.selected_path),
        "path_note": PATH_NOTES_FOR_INSTALLERS.get(lead.selected_path),
    }


def _resolve_or_problem(token: str):
    """The link's assignment, or the page saying why it does not open."""
    try:
        return resolve_link(token)
    except LinkExpired as problem:
        return _link_problem("expired", 410, problem.reference)
    except LinkRevoked as problem:
        return _link_problem(problem.why, 410, problem.reference)
    except LinkPending as problem:
        return _link_problem("pending", 409, problem.reference)
    except LinkInvalid:
        return _link_problem("invalid", 404)


def signed_address_not_found():
    """An address under /d/ that no route takes (a link cut short, or run on by a mail client):
    the installer's "Link not found", with no cookie, not the back office's page and sign-in."""
    return _link_problem("invalid", 404)


def _link_problem(kind: str, status: int, reference: str | None = None):
    """`reference`: the lead's, when the link is one we signed."""
    body = render_template("delivery/link_problem.html", kind=kind, reference=reference)
    return body, status, INSTALLER_LINK_HEADERS
