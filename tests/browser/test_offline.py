"""No signal in the village: the app opens from the service worker's cache, a visit with a repeat
and a photo is queued in IndexedDB, survives the browser being closed and reopened (still offline),
and is sent once when the phone is back online."""

from tests.browser.phone_steps import (STATUS, fill_visit, log_in, open_new_form, open_page, outbox_items, pending, press_sync, server_submission, server_submissions, small_jpeg, submit, wait_pending, wait_service_worker)

HOUSEHOLD = "v1-0003"
MEMBERS = [
    {"name": "张大树", "relation": "户主", "sex": "male", "birth_year": 1966},
    {"name": "刘春花", "relation": "儿媳", "sex": "female", "birth_year": 1995},
]


def test_visit_queued_offline_survives_a_restart_and_is_sent_once(server, launch_phone, server_client, tmp_path):
    ctx = launch_phone("field")
    page = open_page(ctx)
    log_in(page, server.url, "cadre1")
    wait_service_worker(page)

    ctx.set_offline(True)
    page.reload()  # the shell comes from the service worker's cache
    page.wait_for_selector(".hh-card")
    page.wait_for_selector(f"{STATUS}[data-state=offline]")

    open_new_form(page, server.url, HOUSEHOLD, "household_visit")
    fill_visit(page, changes=("marriage_out",), members=MEMBERS, photo=small_jpeg(tmp_path / "house.jpg"))
    submit(page)
    wait_pending(page, 1)
    press_sync(page)  # still offline: nothing can leave
    page.wait_for_selector(f"{STATUS}[data-state=offline]")
    assert pending(page) == "1"
    assert server_submissions(server_client, HOUSEHOLD) == []
    ctx.close()

    # The phone is switched off and on again, still without signal.
    ctx = launch_phone("field")
    ctx.set_offline(True)
    page = open_page(ctx)
    page.goto(server.url + "/app/#/outbox")
    page.wait_for_selector(".record[data-state=waiting]")
    page.wait_for_selector(f"{STATUS}[data-state=offline]")  # the start-up sync saw no network
    wait_pending(page, 1)
    assert [(i["household_id"], i["state"]) for i in outbox_items(page)] == [(HOUSEHOLD, "waiting")]
    assert server_submissions(server_client, HOUSEHOLD) == []

    ctx.set_offline(False)
    press_sync(page)
    wait_pending(page, 0)
    page.wait_for_selector(f"{STATUS}[data-state=idle]")
    assert outbox_items(page) == []

    subs = server_submissions(server_client, HOUSEHOLD)
    assert len(subs) == 1
    sub = server_submission(server_client, subs[0]["uuid"])
    assert [m["name"] for m in sub["answers"]["members"]] == [m["name"] for m in MEMBERS]
    assert sub["answers"]["family_changes"] == ["marriage_out"]
    assert [(a["name"], a["received"]) for a in sub["attachments"]] == [(sub["answers"]["photo_1"], True)]
    assert sub["complete"] is True
    assert page.script_errors == []
