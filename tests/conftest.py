import os
import threading
from collections.abc import Callable, Iterator
from decimal import Decimal

import psycopg
import pytest
import sqlalchemy as sa
from flask import Flask
from flask_migrate import upgrade

from ied import create_app
from ied.auth.models import User
from ied.auth.services import create_user
from ied.extensions import db
from ied.installers.models import Installer
from ied.leads import services as lead_services
from ied.leads.models import Lead
from tests.support.postgres import ThrowawayPostgres
from tests.support.redis_server import ThrowawayRedis

TEST_PASSWORD = "correct-horse-battery"


def _database_backend() -> str:
    backend = os.environ.get("IED_TEST_DB", "sqlite")
    if backend not in {"sqlite", "postgres"}:
        raise pytest.UsageError("IED_TEST_DB must be sqlite or postgres")
    return backend


@pytest.fixture(scope="session")
def database_url(tmp_path_factory) -> Iterator[str]:
    if os.environ.get("IED_TEST_DATABASE_URL"):
        yield os.environ["IED_TEST_DATABASE_URL"]
        return
    if _database_backend() == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('db') / 'ied-test.sqlite3'}"
        return
    server = ThrowawayPostgres()
    try:
        yield server.start()
    finally:
        server.stop()


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    if os.environ.get("IED_TEST_REDIS_URL"):
        yield os.environ["IED_TEST_REDIS_URL"]
        return
    server = ThrowawayRedis()
    try:
        yield server.start()
    finally:
        server.stop()


@pytest.fixture(scope="session")
def test_settings(database_url, redis_url, tmp_path_factory) -> dict:
    return {
        "TESTING": True,
        "SQLALCHEMY_DATABASE_URI": database_url,
        "REDIS_URL": redis_url,
        "WTF_CSRF_ENABLED": False,
        "SECRET_KEY": "test-secret-key",
        "SERVER_NAME": None,
        "PUBLIC_BASE_URL": "http://127.0.0.1:5000",
        "MAIL_CATCHER_DIR": str(tmp_path_factory.mktemp("caught-mail")),
        # Cheap hashes keep the suite fast; tests/test_passwords.py pins the production cost.
        "PASSWORD_HASH_METHOD": "scrypt:1024:8:1",
        # Off unless a test turns them on (tests/test_rate_limits.py): many tests sign in often.
        "RATELIMIT_ENABLED": False,
    }


@pytest.fixture(scope="session")
def migrated_database(test_settings) -> str:
    app = create_app(test_settings)
    with app.app_context():
        upgrade()
        db.engine.dispose()
    return test_settings["SQLALCHEMY_DATABASE_URI"]


@pytest.fixture
def is_postgres(migrated_database) -> bool:
    return migrated_database.startswith("postgresql")


@pytest.fixture
def fresh_database(migrated_database, is_postgres):
    """An empty PostgreSQL database on the test server (its URL); dropped afterwards."""
    if not is_postgres:
        pytest.skip("a second database on the PostgreSQL test server")
    url = sa.engine.make_url(migrated_database)
    name = "ied_fresh_test"
    server = url.set(drivername="postgresql", database="postgres").render_as_string(False)
    with psycopg.connect(server, autocommit=True) as connection:
        connection.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        connection.execute(f"CREATE DATABASE {name}")
    yield url.set(database=name)
    with psycopg.connect(server, autocommit=True) as connection:
        connection.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def _empty_all_tables() -> None:
    tables = [table.name for table in reversed(db.metadata.sorted_tables)]
    if db.engine.dialect.name == "postgresql":
        db.session.execute(sa.text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
    else:
        for table in tables:
            db.session.execute(sa.text(f"DELETE FROM {table}"))
    db.session.commit()


@pytest.fixture
def make_app(test_settings, migrated_database) -> Iterator[Callable[..., Flask]]:
    """Build an app with extra settings; tables are emptied after the test."""
    apps: list[Flask] = []

    def build(**overrides) -> Flask:
        app = create_app({**test_settings, **overrides})
        apps.append(app)
        return app

    yield build
    if apps:
        with apps[0].app_context():
            db.session.remove()
            _empty_all_tables()
    for app in apps:
        with app.app_context():
            db.session.remove()
            db.engine.dispose()
        connection = app.extensions.get("ied_redis")
        if connection is not None:
            connection.flushdb()
            connection.close()


@pytest.fixture
def app(make_app) -> Iterator[Flask]:
    app = make_app()
    with app.app_context():
        yield app


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def make_user(app) -> Callable[..., User]:
    counter = iter(range(1, 10_000))

    def build(role: str = "operator", email: str | None = None, password: str = TEST_PASSWORD):
        user = create_user(email or f"{role}{next(counter)}@ied.test", role, password)
        db.session.commit()
        return user

    return build


@pytest.fixture
def login_as(client, make_user) -> Callable[[str], User]:
    """Sign the test client in through the real login form; returns the user."""

    def sign_in(role: str = "operator") -> User:
        user = make_user(role)
        response = client.post("/login", data={"email": user.email, "password": TEST_PASSWORD})
        assert response.status_code == 302, response.get_data(as_text=True)
        return user

    return sign_in


@pytest.fixture
def operator(make_user) -> User:
    return make_user("operator")


@pytest.fixture
def make_installer(app) -> Callable[..., Installer]:
    counter = iter(range(1, 10_000))

    def build(**fields) -> Installer:
        number = next(counter)
        values = {
            "company_name": f"Installer {number}",
            "contact_name": f"Contact {number}",
            "delivery_email": f"installer{number}@installers.test",
            "phone": "0161 496 0000",
            "active": True,
            "service_areas": ["london"],
            "products": ["solar_pv", "battery", "heat_pump"],
            "cycle_cap": None,
            "price_per_lead": Decimal("25.00"),
            "billing_anchor_day": 1,
        }
        values.update(fields)
        installer = Installer(**values)
        db.session.add(installer)
        db.session.commit()
        return installer

    return build


STATUS_STEPS = ("new", "reviewing", "ready_to_route")


@pytest.fixture
def make_lead(app, operator) -> Callable[..., Lead]:
    """A lead created through the real intake service and walked up to `status`."""
    counter = iter(range(1, 100_000))

    def build(status: str = "new", **fields) -> Lead:
        number = next(counter)
        data = {
            "customer_name": f"Customer {number}",
            "email": f"customer{number}@example.com",
            "phone": None,
            "postcode": "SW1A 1AA",
            "product_interest": "solar_pv",
            "selected_path": "compare_quotes",
            "assessment": {"property_type": "detached"},
        }
        data.update(fields)
        lead = lead_services.create_lead(
            lead_services.LeadInput(**data), source="test", external_id=f"ext-{number}"
        )
        for target in STATUS_STEPS[1 : STATUS_STEPS.index(status) + 1]:
            lead_services.change_status(lead, target, operator)
        db.session.commit()
        return lead

    return build


@pytest.fixture
def run_in_threads():
    """Run callables at once in threads, each in its own app context (own DB connection)."""

    def run(app: Flask, *targets: Callable[[], object]) -> list[object]:
        results: list[object] = [None] * len(targets)

        def runner(index: int, target: Callable[[], object]) -> None:
            with app.app_context():
                try:
                    results[index] = target()
                except Exception as error:  # the test inspects which one lost
                    db.session.rollback()
                    results[index] = error
                finally:
                    db.session.remove()

        threads = [threading.Thread(target=runner, args=(i, t)) for i, t in enumerate(targets)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        return results

    return run


CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture
def live_server(app):
    """The test's app over HTTP; its PUBLIC_BASE_URL points at the server so links work."""
    from tests.support.live_server import LiveServer

    server = LiveServer(app).start()
    app.config["PUBLIC_BASE_URL"] = server.url
    yield server
    server.stop()


@pytest.fixture(scope="session")
def chromium():
    if not os.path.exists(CHROMIUM):
        if os.environ.get("IED_REQUIRE_BROWSER"):
            pytest.fail(f"{CHROMIUM} is required (apt-get install chromium chromium-driver)")
        pytest.skip(f"{CHROMIUM} is not installed")
    from playwright.sync_api import sync_playwright

    playwright = sync_playwright().start()
    browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    yield browser
    browser.close()
    playwright.stop()


@pytest.fixture
def browser_page(chromium, request):
    """A fresh browser context and page; console errors are collected in page.console_errors."""
    context = chromium.new_context(java_script_enabled=not request.node.get_closest_marker("nojs"))
    page = context.new_page()
    page.console_errors = []
    page.on("console", lambda msg: msg.type == "error" and page.console_errors.append(msg.text))
    page.on("pageerror", lambda error: page.console_errors.append(str(error)))
    page.set_default_timeout(10_000)
    yield page
    context.close()


@pytest.fixture
def browser_login(browser_page, live_server, make_user):
    """Sign in through the login form in the browser; returns the user."""

    def sign_in(role: str = "operator") -> User:
        user = make_user(role)
        browser_page.goto(f"{live_server.url}/login")
        browser_page.fill("input[name=email]", user.email)
        browser_page.fill("input[name=password]", TEST_PASSWORD)
        browser_page.click("button[type=submit]")
        browser_page.wait_for_url(lambda url: "/login" not in url)
        return user

    return sign_in


@pytest.fixture
def smtp_server(app):
    """A real in-process SMTP server; the app sends to it."""
    from ied.mail import close_smtp_session
    from tests.support.smtp_server import ScriptedSmtpServer

    server = ScriptedSmtpServer().start()
    app.config.update(SMTP_HOST="127.0.0.1", SMTP_PORT=server.port, SMTP_TIMEOUT=5)
    yield server
    close_smtp_session()  # the session this thread kept open to it
    server.stop()


@pytest.fixture
def run_worker(app):
    """Run a real RQ worker in burst mode in this process until the delivery queue is empty."""
    from rq import SimpleWorker

    from ied.queues import delivery_queue, redis_connection, retry_queue

    def work() -> None:
        queues = [retry_queue(app), delivery_queue(app)]
        worker = SimpleWorker(queues, connection=redis_connection(app))
        worker.work(burst=True, with_scheduler=True, logging_level="WARNING")
        db.session.expire_all()

    return work
