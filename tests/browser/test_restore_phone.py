"""A restore that a phone survives (issue 24, item 1): a backup, two visits synced from the phone,
the server restored from the backup with the command, an admin edits a household; the phone's next
sync sends the two visits again (the server had lost them) and brings the edit."""

import os
import subprocess
import sys
from datetime import date, timedelta

from tests.browser.phone_steps import (fill_visit, goto, last_sync, log_in, open_new_form, open_page,
                                       open_section, press_sync, server_household, server_submissions,
                                       submit, wait_pending, wait_service_worker, wait_synced_after)
from tests.conftest import PASSWORD
from tests.live import ROOT, Client

HOUSEHOLDS = ("v1-0002", "v1-0003")


def flask(data_dir, *args):
    env = dict(os.environ, JIEDUI_DATA_DIR=str(data_dir))
    r = subprocess.run([sys.executable, "-m", "flask", "--app", "server", *args], cwd=ROOT, env=env,
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    return r.stdout


def test_visits_lost_by_a_restore_come_back_from_the_phone_and_edits_reach_it(server, launch_phone,
                                                                               tmp_path):
    ctx = launch_phone("restore")
    page = open_page(ctx)
    log_in(page, server.url, "cadre1")
    wait_service_worker(page)
    epoch = page.evaluate("""async () => { const { getDatabase } = await import('/app/js/db.js');
        return getDatabase().get('meta', 'epoch'); }""")
    assert epoch

    backup = tmp_path / "backup"
    flask(server.data_dir, "backup", str(backup))  # while the server runs

    due = (date.today() + timedelta(days=2)).isoformat()
    for hid in HOUSEHOLDS:
        open_new_form(page, server.url, hid, "household_visit")
        fill_visit(page)
        if hid == HOUSEHOLDS[0]:  # a promise, on Today and in the household's open follow-ups
            open_section(page, "section_promises")
            page.click("[data-action=add-repeat][data-repeat=followups]")
            page.fill("input[name='followups.0.action']", "送两袋化肥")
            page.fill("input[name='followups.0.due_date']", due)
        submit(page)
    press_sync(page)
    wait_pending(page, 0)
    checker = Client(server.url)
    assert checker.login("super", PASSWORD)[0] == 200
    sent = {hid: [s["uuid"] for s in server_submissions(checker, hid)] for hid in HOUSEHOLDS}
    assert all(len(v) == 1 for v in sent.values())

    # the server is stopped, restored from the backup, started again at the same address
    server.stop()
    out = flask(server.data_dir, "restore", str(backup))
    assert "New data epoch" in out
    server.start()
    checker = Client(server.url)
    assert checker.login("super", PASSWORD)[0] == 200
    assert all(server_submissions(checker, hid) == [] for hid in HOUSEHOLDS)  # lost by the restore

    admin = Client(server.url)
    assert admin.login("admin", PASSWORD)[0] == 200
    version = server_household(admin, "v1-0001")["version"]
    status, body = admin.call("PUT", "/api/v1/households/v1-0001",
                              {"changes": {"address": "恢复后改的新地址"}, "base_version": version})
    assert status == 200, body

    before = last_sync(page)
    press_sync(page)
    wait_synced_after(page, before)
    # the two visits are back on the server, under the same uuids
    for hid in HOUSEHOLDS:
        assert [s["uuid"] for s in server_submissions(checker, hid)] == sent[hid]
    # the admin's edit is on the phone, and the phone works in the new epoch
    household, new_epoch = page.evaluate("""async () => { const { getDatabase } = await import('/app/js/db.js');
        const db = getDatabase();
        return [await db.get('households', 'v1-0001'), await db.get('meta', 'epoch')]; }""")
    assert household["address"] == "恢复后改的新地址"
    assert new_epoch != epoch
    # Today and the server agree again: the promise the restore lost is open on both
    promise_ids = [f["id"] for f in server_household(checker, HOUSEHOLDS[0])["open_followups"]]
    assert promise_ids == [f"{sent[HOUSEHOLDS[0]][0]}:0"]
    goto(page, server.url, "/today")
    shown = page.locator(f"[data-household={HOUSEHOLDS[0]}][data-due='{due}']")
    shown.wait_for()
    assert shown.get_attribute("data-followup") == promise_ids[0]
    assert "尚未发送" not in shown.inner_text()
    status, page_status = admin.call("GET", "/admin/backup", headers={"Accept": "application/json"})
    back = {u["id"]: u["back"] for u in page_status["epoch"]["users"]}
    assert back["cadre1"] is True and back["cadre2"] is False
    assert page.script_errors == []
