"""The login expired while the cadre was offline: the sync is refused (401), the outbox keeps the
visit, the app asks for the login, and after logging in again the visit is sent exactly once."""

from tests.browser.phone_steps import (STATUS, fill_login, fill_visit, last_sync, log_in, open_new_form, open_page, outbox_items, server_submissions, submit, wait_pending, wait_service_worker, wait_synced_after)

HOUSEHOLD = "v1-0002"


def test_expired_login_keeps_the_outbox_until_the_cadre_logs_in_again(server, launch_phone, server_client):
    ctx = launch_phone("cadre1")
    page = open_page(ctx)
    log_in(page, server.url, "cadre1")
    synced_before = last_sync(page)
    wait_service_worker(page)

    ctx.set_offline(True)
    open_new_form(page, server.url, HOUSEHOLD, "household_visit")
    fill_visit(page, visit_type="phone", topics=("schooling",))
    submit(page)
    wait_pending(page, 1)
    page.wait_for_selector(f"{STATUS}[data-state=offline]")

    ctx.clear_cookies()  # the session (and the remember-me cookie) is gone
    refused = []
    page.on("response", lambda r: refused.append(r.url) if r.status == 401 else None)
    ctx.set_offline(False)  # back online: the app syncs by itself ("online" event)
    page.wait_for_url("**/login**")  # refused with 401, the app sends the cadre to log in
    assert refused, "the server should have refused the sync with 401"
    assert server_submissions(server_client, HOUSEHOLD) == []
    assert [(i["household_id"], i["state"]) for i in outbox_items(page)] == [(HOUSEHOLD, "waiting")]

    fill_login(page, "cadre1")  # the login page brings the cadre back to the app
    wait_synced_after(page, synced_before)
    assert page.get_attribute(STATUS, "data-refused") == "0"
    assert outbox_items(page) == []
    subs = server_submissions(server_client, HOUSEHOLD)
    assert len(subs) == 1
    assert subs[0]["answers"]["visit_type"] == "phone" and subs[0]["cadre_id"] == "cadre1"
    assert page.script_errors == []
