"""An answer to a promise the household no longer has open (closed meanwhile from another device of
the cadre) is kept (issue 24, item 5): the visit is stored whole with the cadre's note, the promise
stays as the first answer closed it, and the difference is a clash shown on the household page."""

from datetime import date, timedelta

from tests.browser.phone_steps import (cadre_client, check, fill, fill_visit, log_in, open_new_form, open_page,
                                       open_section, post_visit, press_sync, server_household,
                                       server_submissions, submit, wait_pending, wait_service_worker)

HOUSEHOLD = "v1-0001"


def test_an_answer_to_a_promise_closed_meanwhile_is_kept_as_a_clash(server, launch_phone, server_client):
    today = date.today()
    other_phone = cadre_client(server)
    made = post_visit(other_phone, HOUSEHOLD, (today - timedelta(days=5)).isoformat(),
                      followups=[("送两袋化肥", (today + timedelta(days=2)).isoformat())])
    followup_id = f"{made}:0"

    ctx = launch_phone("promise-closed-elsewhere")
    page = open_page(ctx)
    log_in(page, server.url, "cadre1")
    wait_service_worker(page)
    open_new_form(page, server.url, HOUSEHOLD, "household_visit")
    fill_visit(page, visit_date=today.isoformat())
    open_section(page, "section_promises")
    check(page, "promises.0.status", "in_progress")
    fill(page, "promises.0.note", "只送了一袋")

    # Meanwhile the promise is closed from another phone.
    post_visit(other_phone, HOUSEHOLD, (today - timedelta(days=1)).isoformat(),
               promises=[(followup_id, "done", "已送到")])
    assert server_household(other_phone, HOUSEHOLD)["open_followups"] == []

    submit(page)
    press_sync(page)
    wait_pending(page, 0)
    assert page.get_attribute("#sync-status", "data-refused") == "0"
    subs = server_submissions(other_phone, HOUSEHOLD)
    assert len(subs) == 3
    mine = [s for s in subs if s["visit_date"] == today.isoformat()][0]
    assert mine["answers"]["promises"][0]["note"] == "只送了一袋"   # nothing the cadre wrote is lost
    assert server_household(other_phone, HOUSEHOLD)["open_followups"] == []
    status, body = server_client.call("GET", f"/households/{HOUSEHOLD}")
    text = body.decode("utf-8")
    assert status == 200 and "跟进事项已在别处办结" in text and "只送了一袋" in text
    assert page.script_errors == []
