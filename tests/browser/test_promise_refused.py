"""An answer to a promise the household no longer has open (closed meanwhile from elsewhere) is
refused by the server, which names the field; the phone shows the refusal beside that promise and
lets the cadre drop the stale entry and resend."""

from datetime import date, timedelta

from tests.browser.phone_steps import (cadre_client, check, fill_visit, log_in, open_new_form, open_page, open_section, post_visit, press_sync, server_household, server_submissions, submit, wait_pending, wait_service_worker)

HOUSEHOLD = "v1-0001"


def test_an_answer_to_a_promise_closed_meanwhile_is_refused_beside_it(server, launch_phone):
    today = date.today()
    other_phone = cadre_client(server)
    made = post_visit(other_phone, HOUSEHOLD, (today - timedelta(days=5)).isoformat(),
                      followups=[("送两袋化肥", (today + timedelta(days=2)).isoformat())])
    followup_id = f"{made}:0"

    ctx = launch_phone("refused-promise")
    page = open_page(ctx)
    log_in(page, server.url, "cadre1")
    wait_service_worker(page)
    open_new_form(page, server.url, HOUSEHOLD, "household_visit")
    fill_visit(page, visit_date=today.isoformat())
    check(page, "promises.0.status", "in_progress")

    # Meanwhile the promise is closed from another phone.
    post_visit(other_phone, HOUSEHOLD, (today - timedelta(days=1)).isoformat(),
               promises=[(followup_id, "done", "已送到")])
    assert server_household(other_phone, HOUSEHOLD)["open_followups"] == []

    submit(page)
    press_sync(page)
    page.wait_for_selector("#sync-status[data-refused='1']")
    card = page.locator(".refused-card")
    card.wait_for()
    assert "跟进事项" in card.inner_text()
    card.locator("[data-action=fix]").click()
    page.wait_for_selector("form.form")
    open_section(page, "section_promises")
    error = page.locator("#f-promises-0-followup_id .field-error")
    error.wait_for(state="visible")
    assert "跟进事项" in error.inner_text()

    page.click("[data-action=remove-closed-promise]")
    assert page.locator("input[name='promises.0.followup_id']").count() == 0
    submit(page)
    wait_pending(page, 0)
    assert page.get_attribute("#sync-status", "data-refused") == "0"
    assert len(server_submissions(other_phone, HOUSEHOLD)) == 3
    assert page.script_errors == []
