"""Delivered leads and follow-ups for the follow-up tests, made through the real services."""

from datetime import datetime

from ied.business_time import business_today
from ied.delivery import services as delivery
from ied.extensions import db
from ied.followups import services as followups
from ied.followups.services import due_at_end_of


def deliver(lead, installers, actor):
    """Assign the installers and record each delivery as sent (as the worker would)."""
    for assignment in delivery.assign_installers(lead, [i.id for i in installers], actor):
        delivery.record_delivery_success(assignment.id)
    db.session.commit()
    return lead


def make_follow_up(make_lead, make_installer, actor, due_at: datetime, installer=None, **lead):
    """A pending follow-up on a freshly delivered lead."""
    installer = installer or make_installer()
    delivered = deliver(make_lead("ready_to_route", **lead), [installer], actor)
    follow_up = followups.create_follow_up(delivered, installer.id, due_at, actor)
    db.session.commit()
    return follow_up


def end_of_today():
    """Due later today whatever the hour the test runs at (but its last second)."""
    return due_at_end_of(business_today())
