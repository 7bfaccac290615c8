"""Leads, their lifecycle, the work queue and the lead page."""
