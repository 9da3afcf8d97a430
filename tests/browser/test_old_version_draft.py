"""A draft typed on version 1 of the visit form (phones in the field still hold such drafts after
the form moved on): the drafts list and the draft itself say so; "move to the new version" carries
the answers whose questions still exist, says what was dropped, and the moved draft is sent as the
current version (3)."""

import uuid

from tests.browser.phone_steps import (fill_visit, goto, log_in, open_page, server_submission, server_submissions, submit, wait_pending, open_section)

HOUSEHOLD = "v1-0003"


def test_a_draft_on_an_older_form_version_is_flagged_and_moved(server, launch_phone):
    page = open_page(launch_phone("old-draft"))
    log_in(page, server.url, "cadre1")
    draft_id = str(uuid.uuid4())
    page.evaluate("""async ([id, household]) => {
        const { getDatabase } = await import('/app/js/db.js');
        await getDatabase().put('drafts', id, {
            id, form: 'household_visit', form_version: 1, household_id: household, base_version: 1,
            created_at: new Date().toISOString(), updated_at: new Date().toISOString(), rev: 3,
            answers: { visit_date: '2025-10-08', visit_type: 'home', present: '户主张三',
                       topics: ['income_jobs'], family_changes: ['none'], risk: 'no',
                       followups: [{ action: '送化肥', due_date: '2025-10-20', done: 'no' }] } });
    }""", [draft_id, HOUSEHOLD])

    goto(page, server.url, "/drafts")
    card = page.locator(f"[data-draft='{draft_id}']")
    card.locator("[data-outdated]").wait_for()

    card.locator("a", has_text="继续填写").click()
    notice = page.locator(".notice[data-outdated]")
    notice.wait_for()
    assert "第 1 版" in notice.inner_text()
    assert page.input_value("input[name=present]") == "户主张三"  # still the old version's form
    assert page.locator("form.form[data-section]").count() == 0

    page.click("[data-action=move-version]")
    moved = page.locator(".notice[data-moved]")
    moved.wait_for()
    assert "是否办结" in moved.inner_text()  # the old question the new version does not ask
    assert page.locator(".notice[data-outdated]").count() == 0
    page.wait_for_selector("form.form[data-section=section_visit]")
    assert page.input_value("input[name=present]") == "户主张三"
    assert page.input_value("input[name=visit_date]") == "2025-10-08"
    open_section(page, "section_promises")
    assert page.input_value("input[name='followups.0.action']") == "送化肥"

    # Reopened from the drafts list it is the new version now, and it is sent as such.
    goto(page, server.url, "/drafts")
    assert page.locator(f"[data-draft='{draft_id}'] [data-outdated]").count() == 0
    page.locator(f"[data-draft='{draft_id}'] a", has_text="继续填写").click()
    page.wait_for_selector("form.form[data-section]")
    fill_visit(page, present="户主张三")
    submit(page)
    wait_pending(page, 0)
    subs = server_submissions(_client(server), HOUSEHOLD)
    assert [s["uuid"] for s in subs] == [draft_id]
    sub = server_submission(_client(server), draft_id)
    assert sub["form_version"] == 3
    assert sub["answers"]["followups"] == [{"action": "送化肥", "due_date": "2025-10-20"}]
    assert page.script_errors == []


def _client(server):
    from tests.browser.phone_steps import cadre_client
    return cadre_client(server)
