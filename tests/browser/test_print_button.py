"""From the household screen on the phone a cadre prints the assistance profile while online."""

from tests.browser.phone_steps import log_in, open_page


def test_household_screen_offers_the_profile_pdf_when_online(server, launch_phone):
    ctx = launch_phone("cadre1")
    page = open_page(ctx)
    log_in(page, server.url, "cadre1")
    page.goto(f"{server.url}/app/#/households/v1-0002")
    link = page.locator("[data-action=print-profile]")
    link.wait_for(state="visible")
    href = link.get_attribute("href")
    assert href.startswith("/households/v1-0002/profile.pdf")
    r = ctx.request.get(server.url + href)  # the phone's own cookies
    assert r.status == 200 and r.headers["content-type"] == "application/pdf"
    assert r.body().startswith(b"%PDF")
    # another village's household is not printable from this login
    assert ctx.request.get(f"{server.url}/households/v2-0001/profile.pdf").status == 404
