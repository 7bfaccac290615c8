"""Who may open what: login for everything but a few public endpoints, roles on top."""

from functools import wraps

from flask import Flask, abort, current_app, redirect, request, url_for
from flask_login import current_user

from ied.auth.sessions import touch_session
from ied.extensions import login_manager


def public(view):
    """Mark a view as open without login (login page, installer link, intake API, health)."""
    view.is_public = True
    return view


def role_required(role: str):
    def decorator(view):
        @wraps(view)
        def wrapped(*args, **kwargs):
            if not current_user.is_authenticated:
                return login_manager.unauthorized()
            if not current_user.has_role(role):
                abort(403)
            return view(*args, **kwargs)

        wrapped.required_role = role
        return wrapped

    return decorator


def url_if_allowed(endpoint: str, **values) -> str | None:
    """The page's URL when the signed-in user's role may open it (and it exists), else None:
    so no page offers a link its reader would get 403 on."""
    view = current_app.view_functions.get(endpoint)
    if view is None:
        return None
    role = getattr(view, "required_role", None)
    if role is not None and not (current_user.is_authenticated and current_user.has_role(role)):
        return None
    return url_for(endpoint, **values)


def init_app(app: Flask) -> None:
    login_manager.login_view = "auth.login"
    login_manager.login_message = "Sign in to continue."
    login_manager.login_message_category = "info"

    @app.before_request
    def require_login():
        if request.endpoint is None or request.endpoint == "static":
            return None
        view = app.view_functions.get(request.endpoint)
        if getattr(view, "is_public", False):
            return None
        if current_user.is_authenticated:
            touch_session()
            return None
        if request.headers.get("HX-Request"):
            response = app.response_class(status=401)
            response.headers["HX-Redirect"] = url_for("auth.login", next=request.full_path)
            return response
        return redirect(url_for("auth.login", next=request.full_path))
