import pytest

pytestmark = pytest.mark.browser


def test_sign_in_and_out_in_chromium(browser_page, browser_login, live_server):
    user = browser_login("manager")
    assert user.email in browser_page.inner_text("header")
    browser_page.screenshot(path="/tmp/ied-home.png")
    browser_page.click("text=Sign out")
    browser_page.wait_for_url(f"{live_server.url}/login")
    assert browser_page.console_errors == []
