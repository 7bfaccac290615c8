"""Billed deliveries for the finance tests, made through the real services."""

from ied.delivery import services as delivery
from ied.delivery.models import DeliveryEvent
from ied.extensions import db


def billed_delivery(make_lead, installer, actor, **lead_fields) -> DeliveryEvent:
    """Assign a fresh lead to the installer and record its delivery as sent (as the worker does)."""
    lead = make_lead("ready_to_route", **lead_fields)
    (assignment,) = delivery.assign_installers(lead, [installer.id], actor)
    event = delivery.record_delivery_success(assignment.id)
    db.session.commit()
    return event
