"""Assignments, delivery attempts and the billable delivery events; the installer link."""
