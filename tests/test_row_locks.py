"""A row locked and loaded once in a transaction is not read again; the memory of the lock
ends with the transaction, so the next one reads and locks again."""

from ied.extensions import db
from ied.leads.models import Lead
from ied.leads.queries import lead_by_reference
from ied.row_locks import lock_one
from tests.support.statements import recorded_statements


def test_a_locked_lead_is_not_read_again_in_the_same_transaction(make_lead):
    lead = make_lead("new")
    db.session.commit()
    with recorded_statements() as statements:
        locked = lead_by_reference(lead.reference.lower(), lock=True)
        assert locked is not None and locked.id == lead.id
        assert len(statements) >= 1
        statements.clear()
        assert lock_one(Lead, lead.id) is locked
        assert statements == []


def test_the_lock_is_forgotten_when_the_transaction_ends(make_lead):
    lead = make_lead("new")
    db.session.commit()
    lock_one(Lead, lead.id)
    db.session.rollback()
    with recorded_statements() as statements:
        lock_one(Lead, lead.id)
    assert any("FROM leads" in statement for statement in statements), statements


def test_locking_an_unknown_reference_finds_nothing(make_lead):
    assert lead_by_reference("IED-999999", lock=True) is None
