"""Imports every model so metadata, migrations and relationships see all tables."""

from ied.activity.models import ActivityEntry
from ied.auth.models import User
from ied.delivery.models import Assignment, DeliveryAudit, DeliveryEvent
from ied.finance.models import CycleBilling, ReturnRequest
from ied.followups.models import ContactAttempt, FollowUp
from ied.installers.models import Installer
from ied.intake.models import ApiKey
from ied.leads.models import Lead, LeadStatusChange
from ied.tallies.models import DailyTally

__all__ = [
    "ActivityEntry",
    "ApiKey",
    "Assignment",
    "ContactAttempt",
    "CycleBilling",
    "DailyTally",
    "DeliveryAudit",
    "DeliveryEvent",
    "FollowUp",
    "Installer",
    "Lead",
    "LeadStatusChange",
    "ReturnRequest",
    "User",
]
