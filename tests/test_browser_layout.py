"""At 1280 px the admin tables fit their card: no column (their row actions last) is pushed out
of sight behind a horizontal scroll."""

from decimal import Decimal


def overflow(page) -> int:
    """How many pixels the page's data table is wider than the box that holds it."""
    return page.evaluate(
        "() => { const t = document.querySelector('table.data');"
        " return t.scrollWidth - t.closest('.table-wrap').clientWidth; }"
    )


def test_the_installers_table_fits_at_1280_px(
    browser_page, browser_login, live_server, make_installer
):
    for number in range(3):
        make_installer(
            company_name=f"Midlands Solar Works {number}",
            contact_name="Gareth Lloyd",
            phone="0161 496 0000",
            delivery_email=f"leads{number}@brightside-solar.example",
            service_areas=["north_west", "yorkshire"],
            products=["solar_pv", "battery", "heat_pump"],
            cycle_cap=40,
            price_per_lead=Decimal("38.50"),
            billing_anchor_day=15,
        )
    browser_page.set_viewport_size({"width": 1280, "height": 900})
    browser_login("manager")
    browser_page.goto(f"{live_server.url}/installers")
    assert overflow(browser_page) <= 0
    assert browser_page.get_by_role("button", name="Pause").first.is_visible()
