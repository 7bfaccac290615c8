"""Two sessions racing for the same lead, or an installer's last slot: row locks let one win."""

import threading
import time

import pytest
import sqlalchemy as sa

from ied.delivery import services as delivery
from ied.delivery.models import Assignment
from ied.extensions import db
from ied.installers.models import Installer
from ied.leads.models import Lead, LeadStatusChange

pytestmark = pytest.mark.postgres_only

HOLD_SECONDS = 0.5


@pytest.fixture(autouse=True)
def _postgres_only(is_postgres):
    if not is_postgres:
        pytest.skip("row locks are a PostgreSQL guarantee; SQLite serialises writers instead")


def race(app, run_in_threads, first_call, second_call):
    """The first call assigns and holds its transaction open; the second starts meanwhile."""
    first_has_assigned = threading.Event()

    def first():
        result = first_call()
        first_has_assigned.set()
        time.sleep(HOLD_SECONDS)
        db.session.commit()
        return result

    def second():
        first_has_assigned.wait(10)
        started = time.monotonic()
        try:
            return second_call()
        finally:
            second.waited = time.monotonic() - started

    results = run_in_threads(app, first, lambda: (second(), db.session.commit())[0])
    return results, second.waited


def _load(model, id_):
    return db.session.get(model, id_)


def test_two_sessions_assigning_the_same_lead_cannot_both_win(
    app, run_in_threads, make_lead, make_installer, operator
):
    lead = make_lead("ready_to_route", selected_path="recommended_installer")
    one, two = make_installer(), make_installer()
    lead_id, one_id, two_id, operator_id = lead.id, one.id, two.id, operator.id
    db.session.remove()

    def assign(installer_id):
        from ied.auth.models import User

        return lambda: delivery.assign_installers(
            _load(Lead, lead_id), [installer_id], _load(User, operator_id)
        )

    (first, second), waited = race(app, run_in_threads, assign(one_id), assign(two_id))
    assert isinstance(first, list)
    assert isinstance(second, delivery.AssignmentRefused), second
    assert waited >= HOLD_SECONDS * 0.8, "the second session was not held by the row lock"
    assert (
        db.session.scalar(
            sa.select(sa.func.count()).select_from(Assignment).where(Assignment.lead_id == lead_id)
        )
        == 1
    )
    assert (
        db.session.scalar(
            sa.select(sa.func.count())
            .select_from(LeadStatusChange)
            .where(LeadStatusChange.lead_id == lead_id, LeadStatusChange.to_status == "assigned")
        )
        == 1
    )


def test_two_sessions_cannot_both_take_an_installers_last_slot(
    app, run_in_threads, make_lead, make_installer, operator
):
    installer = make_installer(cycle_cap=1)
    lead_a, lead_b = make_lead("ready_to_route"), make_lead("ready_to_route")
    ids = (lead_a.id, lead_b.id, installer.id, operator.id)
    db.session.remove()

    def assign(lead_id):
        from ied.auth.models import User

        return lambda: delivery.assign_installers(
            _load(Lead, lead_id), [ids[2]], _load(User, ids[3])
        )

    (first, second), waited = race(app, run_in_threads, assign(ids[0]), assign(ids[1]))
    assert isinstance(first, list)
    assert isinstance(second, delivery.AssignmentRefused), second
    assert "cap reached" in str(second)
    assert waited >= HOLD_SECONDS * 0.8
    assert (
        db.session.scalar(
            sa.select(sa.func.count())
            .select_from(Assignment)
            .where(Assignment.installer_id == ids[2])
        )
        == 1
    )
    assert _load(Installer, ids[2]).cycle_cap == 1
