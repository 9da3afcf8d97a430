"""The cadre's day on the phone: a promise made at a visit and due yesterday is on Today with no
signal; the next visit carries it forward, the cadre marks it done offline, Today drops it at once,
and once synced the server's household no longer lists it open."""

from datetime import date, timedelta

from tests.browser.phone_steps import (STATUS, check, fill, fill_visit, goto, log_in, open_page, open_section, post_visit, press_sync, cadre_client, server_household, server_submissions, submit, wait_pending, wait_service_worker, wait_synced_after, last_sync)

HOUSEHOLD = "v1-0002"
ACTION = "联系镇卫生院办理慢病卡"


def test_a_promise_due_yesterday_is_on_today_offline_and_the_next_visit_closes_it(server, launch_phone):
    today = date.today()
    yesterday = (today - timedelta(days=1)).isoformat()
    made = post_visit(cadre_client(server), HOUSEHOLD, (today - timedelta(days=3)).isoformat(),
                      followups=[(ACTION, yesterday)])
    followup_id = f"{made}:0"

    ctx = launch_phone("today")
    page = open_page(ctx)
    log_in(page, server.url, "cadre1")
    wait_service_worker(page)

    ctx.set_offline(True)
    page.reload()
    goto(page, server.url, "/today")
    item = page.locator(f"[data-followup='{followup_id}']")
    item.wait_for()
    assert item.get_attribute("data-household") == HOUSEHOLD
    assert item.get_attribute("data-due") == yesterday
    assert "overdue" in item.get_attribute("class")
    assert ACTION in item.inner_text()
    assert page.locator("[data-tab=today] .count").inner_text() != ""  # counted on the tab

    # One tap: the visit form for that household, the promise carried forward into it.
    item.locator("a").click()
    page.wait_for_selector("form.form")
    assert page.input_value("input[name='promises.0.followup_id']") == followup_id
    fill_visit(page, visit_date=today.isoformat())
    open_section(page, "section_promises")
    entry = page.locator(f".promise-entry[data-followup='{followup_id}']")
    assert ACTION in entry.inner_text()
    assert page.locator("[data-action=add-repeat][data-repeat=promises]").count() == 0  # cannot add
    check(page, "promises.0.status", "done")
    fill(page, "promises.0.note", "慢病卡已办好")
    submit(page)
    wait_pending(page, 1)

    goto(page, server.url, "/today")  # still offline: the phone already knows it is done
    page.wait_for_selector(f"{STATUS}[data-state=offline]")
    assert page.locator(f"[data-followup='{followup_id}']").count() == 0
    assert server_household(cadre_client(server), HOUSEHOLD)["open_followups"][0]["id"] == followup_id

    before = last_sync(page)
    ctx.set_offline(False)
    press_sync(page)
    wait_synced_after(page, before)
    assert server_household(cadre_client(server), HOUSEHOLD)["open_followups"] == []
    mine = [s for s in server_submissions(cadre_client(server), HOUSEHOLD) if s["uuid"] != made]
    assert [(p["followup_id"], p["status"]) for p in mine[0]["answers"]["promises"]] == [(followup_id, "done")]
    assert page.locator(f"[data-followup='{followup_id}']").count() == 0
    assert page.script_errors == []


def test_a_promise_made_offline_is_on_today_and_closed_by_a_second_offline_visit(server, launch_phone):
    today = date.today()
    ctx = launch_phone("two-visits")
    page = open_page(ctx)
    log_in(page, server.url, "cadre1")
    wait_service_worker(page)
    ctx.set_offline(True)

    # Morning: a promise due today, made with no signal.
    goto(page, server.url, f"/households/{HOUSEHOLD}/forms/household_visit")
    page.wait_for_selector("form.form")
    fill_visit(page, visit_date=today.isoformat())
    open_section(page, "section_promises")
    page.click("[data-action=add-repeat][data-repeat=followups]")
    page.fill("input[name='followups.0.action']", "送两袋化肥")
    page.fill("input[name='followups.0.due_date']", today.isoformat())
    submit(page)
    goto(page, server.url, "/today")
    promise = page.locator(f"[data-household={HOUSEHOLD}][data-due='{today.isoformat()}']")
    promise.wait_for()
    assert "尚未发送" in promise.inner_text()
    followup_id = promise.get_attribute("data-followup")

    # Afternoon: the fertiliser is delivered; the second visit carries the promise and closes it.
    promise.locator("a").click()
    page.wait_for_selector("form.form")
    assert page.input_value("input[name='promises.0.followup_id']") == followup_id
    fill_visit(page, visit_date=today.isoformat())
    check(page, "promises.0.status", "done")
    submit(page)
    wait_pending(page, 2)
    goto(page, server.url, "/today")
    assert page.locator(f"[data-followup='{followup_id}']").count() == 0

    before = last_sync(page)
    ctx.set_offline(False)
    press_sync(page)
    wait_synced_after(page, before)  # both accepted, in the order they were made
    assert page.get_attribute(STATUS, "data-refused") == "0"
    assert len(server_submissions(cadre_client(server), HOUSEHOLD)) == 2
    assert server_household(cadre_client(server), HOUSEHOLD)["open_followups"] == []
    assert page.script_errors == []
