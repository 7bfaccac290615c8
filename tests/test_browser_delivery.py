"""In Chromium: assign, watch the delivery audit rows appear without reloading, open the
caught email and follow its signed link."""

import os
import signal

import pytest

from ied.mailcatcher.server import MailCatcher
from tests.conftest import TEST_PASSWORD
from tests.support.live_server import LiveServer
from tests.support.postgres import free_port
from tests.support.worker_process import start_worker

pytestmark = pytest.mark.browser


@pytest.fixture
def mail_app(make_app, tmp_path):
    """An app whose SMTP server is the local mail catcher, with its Caught mail page on."""
    port = free_port()
    app = make_app(MAIL_CATCHER_ENABLED=True, MAIL_CATCHER_DIR=str(tmp_path), SMTP_PORT=port)
    catcher = MailCatcher(str(tmp_path), "127.0.0.1", port)
    catcher.start()
    with app.app_context():
        server = LiveServer(app).start()
        app.config["PUBLIC_BASE_URL"] = server.url
        yield app, server
        server.stop()
    catcher.stop()


def test_assign_watch_the_audit_rows_arrive_and_open_the_emailed_link(
    chromium, mail_app, make_lead, make_installer, make_user
):
    app, server = mail_app
    installer = make_installer(company_name="Brightside Solar", service_areas=["SW"])
    lead = make_lead(
        "ready_to_route",
        selected_path="recommended_installer",
        customer_name="Ada Byron",
        recommended_installer_id=installer.id,
    )
    operator = make_user("operator")
    worker = start_worker(app)
    page = chromium.new_context().new_page()
    errors = []
    page.on("console", lambda msg: msg.type == "error" and errors.append(msg.text))
    try:
        page.goto(f"{server.url}/login")
        page.fill("input[name=email]", operator.email)
        page.fill("input[name=password]", TEST_PASSWORD)
        page.click("button[type=submit]")
        page.goto(f"{server.url}/leads/{lead.reference}")
        page.click("text=Assign installers")
        page.check(f"input[name=installer_ids][value='{installer.id}']")
        page.click("text=Assign and queue deliveries")
        page.wait_for_selector("#assignments-panel [data-assignment-status]")
        page.evaluate("window.__stillTheSamePage = true")

        # The worker sends; the panel refreshes itself until the delivery settles.
        page.wait_for_selector("#assignments-panel tr[data-audit-status=sent]", timeout=30_000)
        assert page.evaluate("window.__stillTheSamePage") is True
        assert page.inner_text("#assignments-panel [data-assignment-status]") == "sent"
        assert page.get_attribute("#assignments-panel", "hx-trigger") is None  # stopped polling
        # The follow-up panel follows: now that a delivery is sent, it offers a follow-up.
        page.wait_for_selector("#follow-up-panel form")
        page.screenshot(path="/tmp/ied-delivery-panel.png", full_page=True)

        page.click("nav >> text=Caught mail")
        page.click(f"text=New lead {lead.reference}")
        assert "Ada Byron" not in page.inner_text("main")  # the email names no customer
        link = page.get_attribute("pre a[href*='/d/']", "href")
        assert link.startswith(f"{server.url}/d/")
        page.goto(link)
        assert "Ada Byron" not in page.inner_text("main")  # fetching the link shows no customer
        page.click("text=Show the lead")
        assert "Ada Byron" in page.inner_text("main")
        assert errors == []
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        worker.wait(30)
        page.context.close()
