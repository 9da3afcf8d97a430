"""A bad connection to the server: pushes fail before the server stores them, and once after it
stored them (the answer lost on the way back). The phone retries until everything is through, and
the server ends with exactly one copy of each item: nothing lost, nothing twice."""

from tests.browser.phone_steps import (STATUS, fill_visit, log_in, open_new_form, open_page, pending, press_sync, server_submission, server_submissions, set_faults, small_jpeg, submit, wait_pending, wait_service_worker)

HOUSEHOLDS = ["v1-0001", "v1-0002", "v1-0003"]
# A function, not a bare expression: Playwright evals bare expressions in the page, which the
# pages' Content-Security-Policy (script-src 'self') forbids.
NOT_SYNCING = "() => document.querySelector('#sync-status').dataset.state !== 'syncing'"


def test_failed_and_lost_pushes_are_retried_without_duplicates(server, launch_phone, server_client, tmp_path):
    ctx = launch_phone("cadre1")
    page = open_page(ctx)
    log_in(page, server.url, "cadre1")
    pushes = []
    page.on("response", lambda r: pushes.append(r.status)
            if r.request.method == "POST" and r.url.endswith("/api/v1/submissions") else None)

    # Three visits wait in the outbox (made offline, so they leave together).
    wait_service_worker(page)  # the form's code comes from the cache when offline
    ctx.set_offline(True)
    for n, household_id in enumerate(HOUSEHOLDS):
        open_new_form(page, server.url, household_id, "household_visit")
        fill_visit(page, present=f"第{n + 1}户户主", topics=("health_insurance",),
                   photo=small_jpeg(tmp_path / f"p{n}.jpg", (40 * n, 90, 200)) if n == 1 else None)
        submit(page)
        wait_pending(page, n + 1)
    assert pushes == []

    set_faults(server_client, fail_before_store=2, fail_after_store=1)
    ctx.set_offline(False)
    states = []
    for _ in range(10):  # each round is one whole sync run; four are needed
        page.wait_for_function(NOT_SYNCING)
        if pending(page) == "0":
            break
        press_sync(page)
        page.wait_for_function(NOT_SYNCING)
        states.append(page.get_attribute(STATUS, "data-state"))
    wait_pending(page, 0)
    page.wait_for_selector(f"{STATUS}[data-state=idle][data-refused='0']")

    assert "error" in states  # the failures were shown, not hidden
    assert pushes == [503, 503, 503, 200]  # two lost before storing, one answer lost, then duplicates
    assert set_faults(server_client) == {"fail_before_store": 0, "fail_after_store": 0}
    for n, household_id in enumerate(HOUSEHOLDS):
        subs = server_submissions(server_client, household_id)
        assert len(subs) == 1, household_id
        sub = server_submission(server_client, subs[0]["uuid"])
        assert sub["answers"]["present"] == f"第{n + 1}户户主"
        assert sub["complete"] is True
        assert [a["received"] for a in sub["attachments"]] == ([True] if n == 1 else [])
    assert page.script_errors == []
