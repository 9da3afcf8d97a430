"""The household edit page's plots table in a browser at 360 px (issue 25 item 2): rows added and
removed by its module (static/pages/plots-table.js, no inline script), a bad row named on the page
by row and column, then one save; the rows are cards, nothing wider than the screen."""

from tests.browser.phone_steps import open_page
from tests.conftest import PASSWORD

HOUSEHOLD = "v1-0003"


def _login(page, base):
    page.goto(base + "/login")
    page.fill("input[name=username]", "cadre1")
    page.fill("input[name=password]", PASSWORD)
    page.click("form button[type=submit]")
    page.wait_for_load_state("networkidle")


def test_plots_table_rows_added_removed_and_saved_once(server, launch_phone, server_client, tmp_path):
    status, before = server_client.call("GET", f"/api/v1/households/{HOUSEHOLD}")
    ctx = launch_phone("plots-page")
    page = open_page(ctx)
    csp = []
    page.on("console", lambda m: csp.append(m.text) if "Content Security Policy" in m.text else None)
    _login(page, server.url)
    page.goto(f"{server.url}/households/{HOUSEHOLD}/edit")
    rows = page.locator("tr[data-plot-row]")
    assert rows.count() == 2  # the plot and the empty row that adds one
    page.click("[data-add-plot]")
    assert rows.count() == 3
    rows.nth(1).locator("[name$='.name']").fill("坡地")
    rows.nth(1).locator("[name$='.area_mu']").fill("0")
    rows.nth(1).locator("[name$='.east']").fill("王家")
    rows.nth(2).locator("[name$='.name']").fill("菜园")
    rows.nth(2).locator("[name$='.area_mu']").fill("0.3")
    rows.nth(0).locator("[name$='.area_mu']").fill("2.5")
    assert page.evaluate("document.documentElement.scrollWidth") <= 360
    page.screenshot(path=str(tmp_path / "web-plots-360.png"), full_page=True)
    page.click("form button.primary[type=submit]")
    page.wait_for_selector("[role=alert]")
    assert "承包地块 2 面积（亩）" in page.locator("[role=alert]").inner_text()
    status, h = server_client.call("GET", f"/api/v1/households/{HOUSEHOLD}")
    assert h["version"] == before["version"]  # nothing saved
    # shown again as typed (and an empty row to add one); fix the area, remove 菜园, save once
    assert rows.count() == 4 and float(rows.nth(1).locator("[name$='.area_mu']").input_value()) == 0
    assert rows.nth(1).locator("td.bad [aria-invalid=true]").count() == 1
    rows.nth(1).locator("[name$='.area_mu']").fill("0.8")
    rows.nth(2).locator("[data-remove-plot]").click()
    assert rows.count() == 3
    assert rows.nth(2).locator("[name$='.name']").get_attribute("name") == "plots.2.name"  # renumbered
    page.click("form button.primary[type=submit]")
    page.wait_for_url(f"**/households/{HOUSEHOLD}")
    status, h = server_client.call("GET", f"/api/v1/households/{HOUSEHOLD}")
    assert h["version"] == before["version"] + 1
    assert [(p["name"], p["area_mu"]) for p in h["plots"]] == [("大田", 2.5), ("坡地", 0.8)]
    assert h["plots"][1]["east"] == "王家"
    assert csp == [] and page.script_errors == []
