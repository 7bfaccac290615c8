import pytest

pytestmark = pytest.mark.browser


def test_sign_in_and_out_in_chromium(browser_page, browser_login, live_server):
    user = browser_login("manager")
    assert user.email in browser_page.inner_text("header")
    browser_page.screenshot(path="/tmp/ied-home.png")
    browser_page.click("text=Sign out")
    browser_page.wait_for_url(f"{live_server.url}/login")
    assert browser_page.console_errors == []


def test_a_refused_htmx_post_says_so_instead_of_doing_nothing(
    chromium, make_app, make_lead, make_user
):
    from tests.conftest import TEST_PASSWORD
    from tests.support.live_server import LiveServer

    app = make_app(WTF_CSRF_ENABLED=True)
    with app.app_context():
        lead = make_lead("new")
        operator = make_user("operator")
        server = LiveServer(app).start()
        page = chromium.new_context().new_page()
        try:
            page.goto(f"{server.url}/login")
            page.fill("input[name=email]", operator.email)
            page.fill("input[name=password]", TEST_PASSWORD)
            page.click("button[type=submit]")
            page.goto(f"{server.url}/leads")
            # The page went stale: its CSRF token no longer matches the session.
            page.evaluate("""() => {
                document.body.setAttribute('hx-headers', JSON.stringify({'X-CSRFToken': 'stale'}));
                document.querySelectorAll('input[name=csrf_token]').forEach(i => i.value = 'stale');
            }""")
            page.click(f"tr:has-text('{lead.reference}') >> text=Start review")
            page.wait_for_selector("#request-problem")
            assert "Reload it and try again" in page.inner_text("#request-problem")
        finally:
            page.context.close()
            server.stop()


def test_changing_a_role_asks_first_and_cancelling_changes_nothing(
    browser_page, browser_login, live_server, make_user
):
    from ied.auth.models import User
    from ied.extensions import db

    someone = make_user("operator", email="someone@ied.test")
    browser_login("admin")
    page = browser_page
    page.goto(f"{live_server.url}/admin/users")
    page.select_option('select[aria-label="Role of someone@ied.test"]', "admin")
    prompts = []
    page.once("dialog", lambda dialog: (prompts.append(dialog.message), dialog.dismiss()))
    page.click('tr:has-text("someone@ied.test") button:has-text("Change role")')
    page.wait_for_timeout(300)
    assert prompts == ["Change the role of someone@ied.test? What they may do changes at once."]
    db.session.expire_all()
    assert db.session.get(User, someone.id).role == "operator"

    page.once("dialog", lambda dialog: dialog.accept())
    page.click('tr:has-text("someone@ied.test") button:has-text("Change role")')
    page.wait_for_selector(".flashes")
    db.session.expire_all()
    assert db.session.get(User, someone.id).role == "admin"
