"""Finance for managers: delivery events by cycle and installer with totals, voiding, the CSV
export, installer returns awaiting a decision, and each installer's cycle statement."""

import csv
import io
from collections.abc import Iterable, Iterator
from decimal import Decimal

import sqlalchemy as sa
from flask import (
    Blueprint,
    Response,
    abort,
    flash,
    redirect,
    render_template,
    request,
    stream_with_context,
    url_for,
)
from flask_login import current_user

from ied.auth.access import role_required
from ied.business_time import billing_cycle, current_cycles, is_cycle_label
from ied.delivery.models import DeliveryEvent
from ied.errors import DomainError, NotFound
from ied.extensions import db
from ied.finance import queries, services
from ied.finance.forms import FinanceFilterForm, ReturnDecisionForm, VoidForm
from ied.finance.models import RETURN_STATUS_LABELS
from ied.form_errors import show_field_errors
from ied.htmx import page_or_block
from ied.input_limits import id_or_none
from ied.installers.models import Installer
from ied.local_paths import local_path
from ied.row_links import RowLink, RowLinks

bp = Blueprint("finance", __name__, url_prefix="/finance")

EVENTS_PAGE = "finance/index.html"
RETURNS_PAGE = "finance/returns.html"
VOID_PAGE = "finance/void.html"
STATEMENT_PAGE = "finance/statement.html"


@bp.app_context_processor
def finance_labels():
    return {"return_status_labels": RETURN_STATUS_LABELS}


def _filters() -> FinanceFilterForm:
    filters = FinanceFilterForm(formdata=request.args)
    rows = db.session.execute(
        sa.select(Installer.id, Installer.company_name, Installer.billing_anchor_day).order_by(
            Installer.company_name
        )
    ).all()
    filters.validate()
    filters.offer(queries.billing_cycles(), [tuple(row) for row in rows], current_cycles())
    return filters


@bp.get("")
@role_required("manager")
def index():
    filters = _filters()
    event_filter = filters.event_filter()
    return page_or_block(
        EVENTS_PAGE,
        "results",
        filters=filters,
        page=queries.event_page(event_filter, filters.after.data),
        totals=queries.cycle_totals(event_filter),
        pending_returns=services.pending_returns_count(),
        lead_link=RowLink("leads.show", "reference"),
        statement_link=RowLinks("finance.statement", "installer_id", "id", by="cycle"),
        void_link=RowLink("finance.void", "event_id", "id", next=request.full_path),
    )


# CSV ----------------------------------------------------------------------------------------

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _cell(value):
    """Text that a spreadsheet would run as a formula is quoted (CSV injection); amounts are
    Decimals, so a credit's minus sign stays a number."""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def _csv_stream(header: Iterable[str], rows: Iterable[Iterable]) -> Iterator[str]:
    """Write rows as CSV text, handing it on in chunks of about 64 KB: nothing accumulates."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow([_cell(value) for value in row])
        if buffer.tell() > 65_536:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def _csv_response(filename: str, header: Iterable[str], rows: Iterable[Iterable]) -> Response:
    return Response(
        stream_with_context(_csv_stream(header, rows)),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


@bp.get("/events.csv")
@role_required("manager")
def export_events():
    filters = _filters()
    event_filter = filters.event_filter()
    name = "-".join(str(part) for part in filters.query_args().values()) or "all"
    return _csv_response(
        f"delivery-events-{name}.csv", queries.EXPORT_COLUMNS, queries.export_rows(event_filter)
    )


# Voiding ------------------------------------------------------------------------------------


def _back_to_finance(url: str | None) -> str:
    """Only back to a finance page of this site, never elsewhere."""
    finance = url_for("finance.index")
    path = local_path(url, finance)
    return path if path.startswith(finance) else finance


@bp.route("/events/<int:event_id>/void", methods=["GET", "POST"])
@role_required("manager")
def void(event_id: int):
    event = db.session.get(DeliveryEvent, event_id) or abort(404)
    form = VoidForm()
    if request.method == "GET":
        form.next.data = request.args.get("next")
    status = 200
    if form.validate_on_submit():
        try:
            services.void_delivery_event(event.id, current_user, form.reason.data)
        except DomainError as error:
            db.session.rollback()
            show_field_errors(form, {error.field or "": error.message})
            status = 422 if error.field else 409
        else:
            db.session.commit()
            flash(
                f"Delivery event {event.id} ({event.installer.company_name}, "
                f"£{event.price}) is voided: it no longer counts in the totals or the cap.",
                "success",
            )
            return redirect(_back_to_finance(form.next.data), 303)
    elif request.method == "POST":
        status = 422
    db.session.refresh(event)
    return render_template(
        VOID_PAGE, event=event, form=form, back=_back_to_finance(form.next.data)
    ), status


# Returns ------------------------------------------------------------------------------------


def _returns_page(status: int = 200, errors: dict | None = None, remarks: dict | None = None):
    """`errors`: by request id, shown on its row; one whose row is not on this page (decided
    meanwhile, or no such request) is shown above the list instead."""
    shown = "decided" if request.args.get("status") == "decided" else "pending"
    after = request.args.get("after", type=id_or_none)
    page = queries.return_page(shown, after)
    errors = errors or {}
    on_page = {row.id for row in page.rows}
    return render_template(
        RETURNS_PAGE,
        shown=shown,
        after=after,
        page=page,
        pending_returns=services.pending_returns_count(),
        errors=errors,
        page_errors=[message for key, message in errors.items() if key not in on_page],
        remarks=remarks or {},
    ), status


@bp.get("/returns")
@role_required("manager")
def returns():
    return _returns_page()


@bp.post("/returns/<int:request_id>/decision")
@role_required("manager")
def decide_return(request_id: int):
    form = ReturnDecisionForm()
    if not form.validate_on_submit() or form.decision.data not in ("approve", "reject"):
        message = "; ".join(sum(form.errors.values(), [])) or "Choose approve or reject."
        return _returns_page(422, {request_id: message}, {request_id: form.remark.data})
    approve = form.decision.data == "approve"
    try:
        decided = services.decide_return(
            request_id, current_user, approve=approve, remark=form.remark.data
        )
    except DomainError as error:
        db.session.rollback()
        status = 404 if isinstance(error, NotFound) else 422 if error.field else 409
        return _returns_page(status, {request_id: error.message}, {request_id: form.remark.data})
    db.session.commit()
    lead = decided.delivery_event.lead.reference
    flash(
        f"Return of {lead} approved: its delivery is voided and credited."
        if approve
        else f"Return of {lead} rejected: the delivery stays billed.",
        "success",
    )
    # Back to the page the decision was made on (its form's action carries `after`).
    return redirect(
        url_for("finance.returns", after=request.args.get("after", type=id_or_none)), 303
    )


# Statements ---------------------------------------------------------------------------------


def _statement(installer_id: int, cycle: str) -> queries.CycleStatement:
    installer = db.session.get(Installer, installer_id) or abort(404)
    if not is_cycle_label(cycle):
        abort(404)
    return queries.cycle_statement(installer, cycle)


def _shift(label: str, months: int) -> str | None:
    """The cycle `months` away, or None when it has no statement (past the calendar's ends)."""
    year, month = (int(part) for part in label.split("-"))
    index = year * 12 + month - 1 + months
    shifted = f"{index // 12:04d}-{index % 12 + 1:02d}"
    return shifted if is_cycle_label(shifted) else None


@bp.get("/statements/<int:installer_id>")
@role_required("manager")
def current_statement(installer_id: int):
    installer = db.session.get(Installer, installer_id) or abort(404)
    cycle = billing_cycle(installer.billing_anchor_day).label
    return redirect(url_for("finance.statement", installer_id=installer.id, cycle=cycle))


@bp.get("/statements/<int:installer_id>/<cycle>")
@role_required("manager")
def statement(installer_id: int, cycle: str):
    return render_template(
        STATEMENT_PAGE,
        statement=_statement(installer_id, cycle),
        previous_cycle=_shift(cycle, -1),
        next_cycle=_shift(cycle, 1),
    )


STATEMENT_COLUMNS = (
    "event_id",
    "occurred_at_utc",
    "lead_reference",
    "price",
    "status",
    "credit",
    "credited_at_utc",
    "credit_reason",
)


@bp.get("/statements/<int:installer_id>/<cycle>/statement.csv")
@role_required("manager")
def statement_csv(installer_id: int, cycle: str):
    statement = _statement(installer_id, cycle)
    lines = (
        (
            line.event.id,
            line.event.occurred_at.isoformat(),
            line.event.lead.reference,
            f"{line.event.price:.2f}",
            "credited" if line.event.is_voided else "billed",
            -line.event.price if line.event.is_voided else Decimal("0.00"),
            line.event.voided_at.isoformat() if line.event.is_voided else "",
            line.event.void_reason or "",
        )
        for line in statement.deliveries
    )
    summary = [
        (),
        ("deliveries", len(statement.deliveries), "", f"{statement.delivered_amount:.2f}"),
        ("credited", len(statement.credited), "", -statement.credited_amount),
        ("amount_due", statement.billed_count, "", f"{statement.amount_due:.2f}"),
    ]
    return _csv_response(
        f"statement-{statement.installer.id}-{cycle}.csv",
        STATEMENT_COLUMNS,
        [*lines, *summary],
    )
