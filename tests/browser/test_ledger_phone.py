"""The land ledger on a 360 px phone: the cadre records a signing offline (state, consultants, date,
the head's finger signature) and it syncs like a visit; a household far away confirms through its
link, with a finger signature, and the same link is refused afterwards."""

import re
import subprocess

from tests.browser.phone_steps import (check, fill, log_in, open_new_form, open_page, press_sync, sign, submit,
                                       wait_pending, wait_service_worker, wait_synced)

HOUSEHOLD = "v1-0002"


def test_ledger_signed_offline_then_synced(server, launch_phone, server_client, tmp_path):
    shots = tmp_path
    ctx = launch_phone("ledger")
    page = open_page(ctx)
    log_in(page, server.url, "cadre1")
    wait_service_worker(page)
    ctx.set_offline(True)
    open_new_form(page, server.url, HOUSEHOLD, "land_ledger")
    check(page, "state", "signed")
    fill(page, "consultants", "刘长老、陈长老")
    fill(page, "signed_on", "2026-05-20")
    sign(page)
    submit(page)
    wait_pending(page, 1)
    ctx.set_offline(False)
    press_sync(page)
    wait_pending(page, 0)
    status, h = server_client.call("GET", f"/api/v1/households/{HOUSEHOLD}")
    assert status == 200
    assert h["ledger"]["state"] == "signed" and h["ledger"]["consultants"] == ["刘长老", "陈长老"]
    assert h["ledger"]["signed_on"] == "2026-05-20"
    # the phone shows the household's ledger and plots offline, as last synced
    press_sync(page)
    wait_synced(page)
    ctx.set_offline(True)
    page.goto(f"{server.url}/app/#/households/{HOUSEHOLD}")
    page.wait_for_selector("[data-ledger-state=signed]")
    assert "刘长老、陈长老" in page.locator("[data-section=ledger]").inner_text()
    assert page.locator("[data-section=ledger] [data-plot]").count() == 1
    assert page.evaluate("document.documentElement.scrollWidth") <= 360
    page.screenshot(path=str(shots / "phone-ledger-household.png"), full_page=True)
    ctx.set_offline(False)
    # the head's signature from the phone is on the household's confirmation sheet
    status, pdf = server_client.call("GET", f"/households/{HOUSEHOLD}/ledger.pdf")
    assert status == 200
    listed = subprocess.run(["pdfimages", "-list", "-"], input=pdf, capture_output=True, check=True).stdout
    assert len(listed.decode().strip().splitlines()) >= 3  # two header lines and the signature
    assert page.script_errors == []


def test_remote_confirmation_on_a_phone(server, launch_phone, server_client):
    status, link = server_client.call("POST", f"/api/v1/households/{HOUSEHOLD}/ledger/link", {})
    assert status == 200
    ctx = launch_phone("far-away")
    page = open_page(ctx)
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(link["url"])
    assert page.viewport_size["width"] == 360
    assert "大田" in page.content() and link["code"] in page.content()
    # nothing squeezed past the screen
    assert page.evaluate("document.documentElement.scrollWidth") <= 360
    pad = page.locator("#pad")
    pad.scroll_into_view_if_needed()
    box = pad.bounding_box()
    page.mouse.move(box["x"] + 20, box["y"] + 40)
    page.mouse.down()
    page.mouse.move(box["x"] + 200, box["y"] + 80, steps=10)
    page.mouse.up()
    page.fill("#name", "张v12")
    page.click("button.primary")
    page.wait_for_selector("text=已确认")
    status, h = server_client.call("GET", f"/api/v1/households/{HOUSEHOLD}")
    assert h["ledger"]["state"] == "confirmed_remote" and re.fullmatch(r"[0-9a-f]{64}", h["ledger"]["signature"])
    page.goto(link["url"])
    assert "链接无效或已过期" in page.content()
    assert errors == []
