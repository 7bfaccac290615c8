"""The main navigation: each entry shows only when its page exists and the role may use it."""

from dataclasses import dataclass

from flask import Flask, current_app, request, url_for
from flask_login import current_user


@dataclass(frozen=True)
class NavItem:
    label: str
    url: str
    active: bool


MAIN_NAV = (
    ("leads.queue", "Leads", "operator"),
    ("followups.index", "Follow-ups", "operator"),
    ("dashboard.index", "Dashboard", "manager"),
    ("installers.index", "Installers", "manager"),
    ("finance.index", "Finance", "manager"),
    ("activity.index", "Activity", "manager"),
    ("admin.users", "Users", "admin"),
    ("admin.api_keys", "API keys", "admin"),
    ("mailcatcher.index", "Caught mail", "operator"),
)


def nav_items() -> list[NavItem]:
    if not current_user.is_authenticated:
        return []
    endpoints = current_app.view_functions
    return [
        NavItem(label, url, _is_under(request.path, url))
        for endpoint, label, role in MAIN_NAV
        if endpoint in endpoints and current_user.has_role(role)
        for url in [url_for(endpoint)]
    ]


def _is_under(path: str, url: str) -> bool:
    """The entry's page or one below it (/leads/IED-000042 is under Leads); two entries of one
    blueprint (Users, API keys) are told apart by their paths."""
    base = url.rstrip("/")
    return path in (url, base) or path.startswith(base + "/")


def init_app(app: Flask) -> None:
    app.context_processor(lambda: {"nav_items": nav_items})
