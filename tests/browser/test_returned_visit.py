"""A visit returned by a supervisor shows up on the phone, is fixed and resent, and the server
holds the correction linked to the original (issue 11, the phone's part)."""

import hashlib
import uuid

from tests.browser.phone_steps import (cadre_client, fill, fill_visit, goto, last_sync, log_in, open_new_form, open_page, press_sync, server_submission, server_submissions, show, small_jpeg, submit, wait_pending, wait_service_worker, wait_synced_after)

HOUSEHOLD = "v1-0001"


def test_a_returned_visit_is_fixed_on_the_phone_and_the_correction_replaces_it(server, launch_phone, server_client, tmp_path):
    ctx = launch_phone("returned")
    page = open_page(ctx)
    log_in(page, server.url, "cadre1")
    wait_service_worker(page)
    open_new_form(page, server.url, HOUSEHOLD, "household_visit")
    fill_visit(page, present="户主本人", photo=small_jpeg(tmp_path / "house.jpg"))
    submit(page)
    wait_pending(page, 0)
    [original] = [s["uuid"] for s in server_submissions(server_client, HOUSEHOLD)]

    status, body = server_client.call("POST", f"/api/v1/submissions/{original}/review", {
        "state": "has_issues", "comment": "在场人员请写全名",
        "fields": {"present": "写清楚在场人的姓名"}})
    assert status == 200, body
    assert body["state"] == "has_issues" and body["uuid"] == original  # the review itself

    before = last_sync(page)
    press_sync(page)
    wait_synced_after(page, before)
    goto(page, server.url, "/today")
    page.locator(f"[data-review=has_issues][data-uuid='{original}']").wait_for()

    ctx.set_offline(True)  # the decision is on the phone: the rest needs no signal
    goto(page, server.url, "/returned")
    card = page.locator(f"[data-review=has_issues][data-uuid='{original}']")
    card.wait_for()
    assert "在场人员请写全名" in card.inner_text()
    beside = card.locator("[data-answer=present] [data-review-field=present]")
    assert "写清楚在场人的姓名" in beside.inner_text()
    card.locator("[data-answer=photo_1] img").wait_for()  # the photo, from the phone

    card.locator("[data-action=fix]").click()
    page.wait_for_selector("form.form")
    page.locator("#f-present .review-note").wait_for()
    assert page.input_value("input[name=present]") == "户主本人"
    fill(page, "present", "户主张大山、妻子李秀英")
    show(page, "photo_1")
    page.locator("#f-photo_1 .photo-preview img").wait_for()  # photos kept for the correction
    submit(page)
    wait_pending(page, 1)

    ctx.set_offline(False)
    before = last_sync(page)
    press_sync(page)
    wait_synced_after(page, before)
    subs = {s["uuid"]: s for s in server_submissions(server_client, HOUSEHOLD)}
    [fixed] = [u for u in subs if u != original]
    correction = server_submission(server_client, fixed)
    assert correction["supersedes"] == original
    assert correction["answers"]["present"] == "户主张大山、妻子李秀英"
    assert correction["complete"] is True  # the photo was uploaded again under the correction
    assert server_submission(server_client, original)["superseded_by"] == fixed

    goto(page, server.url, "/outbox")
    page.locator(f".record[data-uuid='{original}'][data-review=superseded]").wait_for()
    assert "已更正" in page.locator(f".record[data-uuid='{original}']").inner_text()
    assert "待审核" in page.locator(f".record[data-uuid='{fixed}']").inner_text()
    goto(page, server.url, "/returned")
    assert page.locator("[data-review=has_issues]").count() == 0
    assert page.script_errors == []


def test_a_visit_returned_from_another_phone_is_fixed_with_its_photo_fetched_again(server, launch_phone, server_client, tmp_path):
    """The visit was sent from another phone (or before this one was reset): the phone learns of
    the decision, lists it, and the correction carries the photo, fetched from the server."""
    other = cadre_client(server)
    photo = open(small_jpeg(tmp_path / "door.jpg", color=(90, 120, 200)), "rb").read()
    sha = hashlib.sha256(photo).hexdigest()
    sent = str(uuid.uuid4())
    item = {"uuid": sent, "form": "household_visit", "form_version": 2, "household_id": HOUSEHOLD,
            "created_at": "2025-10-08T09:00:00+08:00",
            "answers": {"visit_date": "2025-10-08", "visit_type": "home", "present": "户主",
                        "topics": ["income_jobs"], "family_changes": ["none"], "risk": "no",
                        "photo_1": "photo_1-door.jpg"},
            "attachments": [{"name": "photo_1-door.jpg", "sha256": sha, "size": len(photo), "type": "image/jpeg"}]}
    status, body = other.call("POST", "/api/v1/submissions", {"submissions": [item]})
    assert body["results"][0]["status"] == "created", body
    status, body = other.call("PUT", f"/api/v1/submissions/{sent}/attachments/photo_1-door.jpg", photo,
                              {"X-Content-SHA256": sha, "Content-Type": "image/jpeg"})
    assert status in (200, 201), body
    status, body = server_client.call("POST", f"/api/v1/submissions/{sent}/review",
                                      {"state": "has_issues", "comment": "门牌看不清，请重拍或说明"})
    assert status == 200, body

    page = open_page(launch_phone("returned-elsewhere"))
    log_in(page, server.url, "cadre1")
    goto(page, server.url, "/today")
    card = page.locator(f"[data-review=has_issues][data-uuid='{sent}']")
    card.wait_for()
    assert "门牌看不清" in card.inner_text()
    card.locator("[data-action=fix]").click()
    page.wait_for_selector("form.form")
    show(page, "photo_1")
    page.locator("#f-photo_1 .photo-preview img").wait_for()  # fetched from the server
    fill(page, "present", "户主张大山")
    submit(page)
    wait_pending(page, 0)
    [fixed] = [s["uuid"] for s in server_submissions(server_client, HOUSEHOLD) if s["uuid"] != sent]
    correction = server_submission(server_client, fixed)
    assert correction["supersedes"] == sent and correction["complete"] is True
    assert [a["sha256"] for a in correction["attachments"]] == [sha]
    assert page.script_errors == []
