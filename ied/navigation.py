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
    current_blueprint = request.blueprint
    return [
        NavItem(label, url_for(endpoint), endpoint.split(".")[0] == current_blueprint)
        for endpoint, label, role in MAIN_NAV
        if endpoint in endpoints and current_user.has_role(role)
    ]


def init_app(app: Flask) -> None:
    app.context_processor(lambda: {"nav_items": nav_items})
