"""Withdrawing races the delivery job: an email the SMTP server may be accepting right now
cannot be taken back, or the installer would hold the lead (the email carries the customer's
details) while nothing is billed and the lead page says withdrawn."""

from datetime import timedelta

import pytest

from ied.delivery import services
from ied.delivery.jobs import OpenedAttempt, record_attempt_outcomes
from ied.delivery.models import Assignment
from ied.errors import DomainError
from ied.extensions import db
from ied.mail import PreparedEmail, SmtpOutcome
from ied.timestamps import utcnow


@pytest.fixture
def queued(make_lead, make_installer, operator) -> Assignment:
    lead = make_lead("ready_to_route")
    (assignment,) = services.assign_installers(lead, [make_installer().id], operator)
    db.session.commit()
    return assignment


def test_a_delivery_being_sent_cannot_be_withdrawn_and_is_billed_once_accepted(queued, operator):
    audit = services.begin_attempt(queued, job_id="delivery-test", lease_seconds=120)
    db.session.commit()
    with pytest.raises(DomainError, match="being sent"):
        services.withdraw(queued, operator)
    db.session.rollback()

    accepted = SmtpOutcome(accepted=True, permanent=False, code=250, reply="OK")
    attempt = OpenedAttempt(audit.id, queued.id, PreparedEmail((), b""))
    assert record_attempt_outcomes([(attempt, accepted, utcnow())]) == ["sent"]
    assignment = db.session.get(Assignment, queued.id)
    assert assignment.status == "sent"
    assert assignment.delivery_event is not None


def test_an_attempt_whose_lease_ran_out_no_longer_holds_the_withdrawal(queued, operator):
    audit = services.begin_attempt(queued, job_id="delivery-test", lease_seconds=120)
    audit.lease_expires_at = utcnow() - timedelta(seconds=1)  # its worker died mid-send
    db.session.commit()
    services.withdraw(queued, operator)
    db.session.commit()
    assert db.session.get(Assignment, queued.id).status == "withdrawn"
