"""Restore from a backup without losing what phones hold (issue 24, item 1): the command and the
admin page check the backup before replacing anything, a new data epoch tells phones to pull
everything again, and phones re-send the visits and photos the server lacks."""

import hashlib
import io
import os
import tarfile

import pytest

from server.store import close_app_store
from tests.conftest import Api
from tests.helpers import attach, jpeg_bytes, push, visit

# The restore works on the TinyDB folder; on PostgreSQL it is refused (the last test).
tinydb_only = pytest.mark.tinydb_only


def logged_in(app, name):
    api = Api(app.test_client())
    assert api.login(name).status_code == 200
    return api


def pull(api, since, epoch=None):
    url = f"/api/v1/households?since={since}" + (f"&epoch={epoch}" if epoch else "")
    return api.get(url).get_json()


def pull_all(api, epoch):
    since, found = 0, {}
    while True:
        page = pull(api, since, epoch)
        assert not page.get("reset")
        if not page["households"]:
            return since, found
        found.update({h["id"]: h for h in page["households"]})
        since = page["next"]


@tinydb_only
def test_restore_round_trip_phone_resends_what_the_server_lost(app, runner, tmp_path):
    phone = logged_in(app, "cadre1")
    boot = phone.get("/api/v1/bootstrap").get_json()
    old_epoch = boot["epoch"]
    assert isinstance(old_epoch, str) and old_epoch  # "1" until the first restore
    before = visit()
    assert push(phone, before).get_json()["results"][0]["status"] == "created"

    out = tmp_path / "backup"
    r = runner.invoke(args=["backup", str(out)])
    assert r.exit_code == 0, r.output

    # two more visits after the backup, one with a photo; the phone's cursors move past the backup
    photo = jpeg_bytes()
    a = visit("v1-0002", photo_1="photo_1-a.jpg")
    a["attachments"] = [{"name": "photo_1-a.jpg", "sha256": hashlib.sha256(photo).hexdigest(),
                         "size": len(photo), "type": "image/jpeg"}]
    b = visit("v1-0003")
    results = push(phone, a, b).get_json()["results"]
    assert [x["status"] for x in results] == ["created", "created"]
    assert attach(phone, a["uuid"], "photo_1-a.jpg", photo).get_json()["complete"] is True
    cursor, _ = pull_all(phone, old_epoch)
    subs = phone.get(f"/api/v1/submissions?since=0&epoch={old_epoch}").get_json()
    sub_cursor = subs["next"]
    assert {s["uuid"] for s in subs["submissions"]} == {before["uuid"], a["uuid"], b["uuid"]}

    # the server is stopped and restored from the backup with the command
    close_app_store(app)
    r = runner.invoke(args=["restore", str(out)])
    assert r.exit_code == 0, r.output
    assert "New data epoch" in r.output and "before-restore-" in r.output
    asides = [n for n in os.listdir(app.config["DATA_DIR"]) if n.startswith("before-restore-")]
    assert len(asides) == 1  # the data before the restore is kept, not deleted

    # the phone's cursor is ahead of the restored server: told to reset, even without an epoch
    page = pull(phone, cursor)
    assert page["reset"] is True and page["households"] == [] and page["next"] == 0
    page = phone.get(f"/api/v1/submissions?since={sub_cursor}").get_json()
    assert page["reset"] is True and page["submissions"] == []

    # an admin edits two households on the restored server
    admin = logged_in(app, "admin")
    for hid, address in (("v1-0001", "恢复后改的地址一"), ("v1-0002", "恢复后改的地址二")):
        version = admin.get(f"/api/v1/households/{hid}").get_json()["version"]
        r = admin.put(f"/api/v1/households/{hid}", json={"changes": {"address": address},
                                                         "base_version": version})
        assert r.status_code == 200, r.get_json()

    # the phone's next contact: a new epoch; its old epoch in a pull is told to reset too
    boot = phone.get("/api/v1/bootstrap").get_json()
    new_epoch = boot["epoch"]
    assert new_epoch != old_epoch
    assert pull(phone, cursor, old_epoch)["reset"] is True

    # the phone asks which of its visits the server holds, and re-sends the rest
    r = phone.post("/api/v1/submissions/known", {"uuids": [before["uuid"], a["uuid"], b["uuid"]]})
    assert r.status_code == 200
    assert r.get_json()["known"] == [{"uuid": before["uuid"], "missing": []}]
    results = push(phone, a, b).get_json()["results"]
    assert [x["status"] for x in results] == ["created", "created"]
    known = phone.post("/api/v1/submissions/known", {"uuids": [a["uuid"], b["uuid"]]}).get_json()["known"]
    assert {"uuid": a["uuid"], "missing": ["photo_1-a.jpg"]} in known
    assert attach(phone, a["uuid"], "photo_1-a.jpg", photo).get_json()["complete"] is True

    # pulling everything again brings the admin's edits
    _, households = pull_all(phone, new_epoch)
    assert households["v1-0001"]["address"] == "恢复后改的地址一"
    assert households["v1-0002"]["address"] == "恢复后改的地址二"
    subs = phone.get(f"/api/v1/submissions?since=0&epoch={new_epoch}").get_json()["submissions"]
    assert {s["uuid"] for s in subs} == {before["uuid"], a["uuid"], b["uuid"]}
    assert all(s["complete"] for s in subs)

    # the admin page says who has come back since the restore
    status = admin.get("/admin/backup", headers={"Accept": "application/json"}).get_json()
    people = {u["id"]: u for u in status["epoch"]["users"]}
    assert status["epoch"]["reason"] == "restore" and status["epoch"]["epoch"] == new_epoch
    assert people["cadre1"]["back"] is True and people["cadre2"]["back"] is False
    page = admin.get("/admin/backup").get_data(as_text=True)
    assert "尚未回来" in page and "已回来" in page


@tinydb_only
def test_a_bad_backup_is_refused_and_nothing_changes(app, runner, tmp_path):
    phone = logged_in(app, "cadre1")
    epoch = phone.get("/api/v1/bootstrap").get_json()["epoch"]
    item = visit()
    assert push(phone, item).get_json()["results"][0]["status"] == "created"
    out = tmp_path / "backup"
    assert runner.invoke(args=["backup", str(out)]).exit_code == 0
    # while the server runs the command refuses and names the page
    r = runner.invoke(args=["restore", str(out)])
    assert r.exit_code == 1 and "/admin/backup" in r.output
    close_app_store(app)
    (out / "villages" / "v1.json").write_text("{ not json", encoding="utf-8")
    r = runner.invoke(args=["restore", str(out)])
    assert r.exit_code == 1 and "v1" in r.output and "nothing was changed" in r.output
    empty = tmp_path / "empty"
    empty.mkdir()
    r = runner.invoke(args=["restore", str(empty)])
    assert r.exit_code == 1 and "core.json" in r.output
    junk = tmp_path / "junk.tar.gz"
    junk.write_bytes(b"\x1f\x8b not really")
    r = runner.invoke(args=["restore", str(junk)])
    assert r.exit_code == 1 and "nothing was changed" in r.output
    # nothing changed: the same epoch, the visit still there, no folder moved aside
    phone = logged_in(app, "cadre1")
    assert phone.get("/api/v1/bootstrap").get_json()["epoch"] == epoch
    assert phone.get(f"/api/v1/submissions/{item['uuid']}").status_code == 200
    data_dir = app.config["DATA_DIR"]
    assert not [n for n in os.listdir(data_dir) if n.startswith(("before-restore-", ".restore"))]


@tinydb_only
def test_admin_page_checks_and_stages_a_restore_for_the_next_start(app, tmp_path):
    from server.services.backup import of_app
    admin = logged_in(app, "admin")
    epoch = admin.get("/api/v1/bootstrap").get_json()["epoch"]
    assert admin.post("/admin/backup", {}).status_code == 202
    of_app(app).wait(60)
    name = admin.get("/admin/backup", headers={"Accept": "application/json"}).get_json()["backups"][0]["name"]
    phone = logged_in(app, "cadre1")
    after = visit()
    assert push(phone, after).get_json()["results"][0]["status"] == "created"

    # a damaged upload is refused with a reason; nothing is staged
    r = admin.client.post("/admin/backup/restore", data={"csrf_token": admin.token,
                          "archive": (io.BytesIO(b"not a tar"), "x.tar.gz")},
                          headers={"Accept": "application/json"})
    assert r.status_code == 400 and r.get_json()["error"] == "backup_unusable"
    # an archive holding a broken village is refused
    bad = tmp_path / "bad.tar.gz"
    with tarfile.open(of_app(app).path_of(name)) as tar:
        tar.extractall(tmp_path / "x", filter="data")
    top = tmp_path / "x" / name[:-len(".tar.gz")]
    (top / "villages" / "v2.json").write_text("[1, 2", encoding="utf-8")
    with tarfile.open(bad, "w:gz") as tar:
        tar.add(top, arcname="b")
    r = admin.client.post("/admin/backup/restore", data={"csrf_token": admin.token,
                          "archive": (open(bad, "rb"), "bad.tar.gz")},
                          headers={"Accept": "application/json"})
    assert r.status_code == 400 and "v2" in r.get_json()["message_en"]
    assert admin.get("/admin/backup", headers={"Accept": "application/json"}).get_json()["pending_restore"] is None
    # only admins
    r = phone.post("/admin/backup/restore", {"name": name})
    assert r.status_code == 403

    # a listed backup: checked, staged; the running data is untouched until the next start
    r = admin.client.post("/admin/backup/restore", data={"csrf_token": admin.token, "name": name},
                          headers={"Accept": "application/json"})
    assert r.status_code == 202, r.get_json()
    staged = r.get_json()["pending_restore"]
    assert staged["households"] == 5 and staged["epoch"] != epoch
    assert phone.get(f"/api/v1/submissions/{after['uuid']}").status_code == 200
    page = admin.get("/admin/backup").get_data(as_text=True)
    assert "下次启动" in page and name in page

    # the next start swaps it in: the new epoch, the visit made after the backup gone (the phone
    # re-sends it), the old data kept aside
    close_app_store(app)
    phone = logged_in(app, "cadre1")
    assert phone.get("/api/v1/bootstrap").get_json()["epoch"] == staged["epoch"]
    assert phone.get(f"/api/v1/submissions/{after['uuid']}").status_code == 404
    assert push(phone, after).get_json()["results"][0]["status"] == "created"
    data_dir = app.config["DATA_DIR"]
    assert [n for n in os.listdir(data_dir) if n.startswith("before-restore-")]
    assert not os.path.exists(os.path.join(data_dir, "restore-pending"))


def test_known_refuses_bad_bodies(app):
    phone = logged_in(app, "cadre1")
    assert phone.post("/api/v1/submissions/known", {"uuids": "x"}).status_code == 400
    assert phone.post("/api/v1/submissions/known", {"uuids": ["not-a-uuid"]}).status_code == 400
    r = phone.post("/api/v1/submissions/known", {"uuids": ["00000000-0000-4000-8000-000000000000"] * 1001})
    assert r.status_code == 413
    other = logged_in(app, "cadre2")
    item = visit()
    assert push(phone, item).get_json()["results"][0]["status"] == "created"
    # another village's cadre learns nothing about it
    assert other.post("/api/v1/submissions/known", {"uuids": [item["uuid"]]}).get_json()["known"] == []


def test_on_postgresql_the_command_restores_the_database_and_the_page_refuses(app, runner, tmp_path,
                                                                              store_kind):
    if store_kind != "postgres":
        pytest.skip("the PostgreSQL variant only")
    admin = logged_in(app, "admin")
    r = admin.client.post("/admin/backup/restore", data={"csrf_token": admin.token,
                          "name": "jiedui-20260101-000000.tar.gz"}, headers={"Accept": "application/json"})
    assert r.status_code == 409 and r.get_json()["error"] == "restore_on_database"

    phone = logged_in(app, "cadre1")
    assert phone.get("/api/v1/bootstrap").get_json()["epoch"] == "1"
    before = visit()
    assert push(phone, before).get_json()["results"][0]["status"] == "created"
    out = tmp_path / "backup"
    assert runner.invoke(args=["backup", str(out)]).exit_code == 0
    photo = jpeg_bytes()
    a = visit("v1-0002", photo_1="photo_1-a.jpg")
    a["attachments"] = [{"name": "photo_1-a.jpg", "sha256": hashlib.sha256(photo).hexdigest(),
                         "size": len(photo), "type": "image/jpeg"}]
    b = visit("v1-0003")
    assert [x["status"] for x in push(phone, a, b).get_json()["results"]] == ["created", "created"]
    assert attach(phone, a["uuid"], "photo_1-a.jpg", photo).get_json()["complete"] is True
    cursor, _ = pull_all(phone, "1")

    # a damaged backup is refused and the database is unchanged
    broken = tmp_path / "broken"
    import shutil
    shutil.copytree(out, broken)
    (broken / "villages" / "v1.json").write_text("{", encoding="utf-8")
    r = runner.invoke(args=["restore", str(broken)])
    assert r.exit_code == 1 and "nothing was changed" in r.output
    assert phone.get(f"/api/v1/submissions/{a['uuid']}").status_code == 200

    r = runner.invoke(args=["restore", str(out)])
    assert r.exit_code == 0, r.output
    assert "New data epoch" in r.output
    new_epoch = phone.get("/api/v1/bootstrap").get_json()["epoch"]
    assert new_epoch != "1"
    assert phone.get(f"/api/v1/submissions/{a['uuid']}").status_code == 404
    assert phone.get(f"/api/v1/submissions/{before['uuid']}").status_code == 200
    assert pull(phone, cursor)["reset"] is True
    assert pull(phone, cursor, "1")["reset"] is True
    known = phone.post("/api/v1/submissions/known",
                       {"uuids": [before["uuid"], a["uuid"], b["uuid"]]}).get_json()["known"]
    assert known == [{"uuid": before["uuid"], "missing": []}]
    assert [x["status"] for x in push(phone, a, b).get_json()["results"]] == ["created", "created"]
    assert attach(phone, a["uuid"], "photo_1-a.jpg", photo).get_json()["complete"] is True
    admin = logged_in(app, "admin")
    version = admin.get("/api/v1/households/v1-0001").get_json()["version"]
    assert admin.put("/api/v1/households/v1-0001", json={"changes": {"address": "恢复后的地址"},
                                                         "base_version": version}).status_code == 200
    _, households = pull_all(phone, new_epoch)
    assert households["v1-0001"]["address"] == "恢复后的地址"


@tinydb_only
def test_the_command_restores_the_admin_pages_archive(app, runner):
    from server.services.backup import of_app
    admin = logged_in(app, "admin")
    assert admin.post("/admin/backup", {}).status_code == 202
    of_app(app).wait(60)
    name = admin.get("/admin/backup", headers={"Accept": "application/json"}).get_json()["backups"][0]["name"]
    archive = of_app(app).path_of(name)
    phone = logged_in(app, "cadre1")
    later = visit()
    assert push(phone, later).get_json()["results"][0]["status"] == "created"
    close_app_store(app)
    r = runner.invoke(args=["restore", archive])
    assert r.exit_code == 0, r.output
    phone = logged_in(app, "cadre1")
    assert phone.get(f"/api/v1/submissions/{later['uuid']}").status_code == 404
    assert phone.get("/api/v1/bootstrap").get_json()["epoch"] != "1"
    # the backups themselves stay where they were
    assert of_app(app).path_of(name) == archive


@tinydb_only
def test_what_a_killed_restore_left_is_removed_at_the_next_start(app):
    data_dir = app.config["DATA_DIR"]
    close_app_store(app)
    os.makedirs(os.path.join(data_dir, ".restore-20260101-000000-abcd", "data", "villages"))
    with open(os.path.join(data_dir, ".restore-upload-20260101-000000-abcd.tar.gz"), "wb") as f:
        f.write(b"half an upload")
    phone = logged_in(app, "cadre1")
    assert phone.get("/api/v1/bootstrap").get_json()["epoch"] == "1"
    assert not [n for n in os.listdir(data_dir) if n.startswith(".restore")]


@tinydb_only
def test_the_check_reads_every_log_day_counts_the_backup_and_wants_an_administrator(app, runner, tmp_path):
    """The store loads every partition the layout names (an unreadable audit day refuses the
    backup); the records layer counts what it holds and a backup with no administrator is refused."""
    import json
    phone = logged_in(app, "cadre1")
    assert push(phone, visit(), visit("v1-0002")).get_json()["results"][0]["status"] == "created"
    out = tmp_path / "backup"
    assert runner.invoke(args=["backup", str(out)]).exit_code == 0
    close_app_store(app)
    day = sorted((out / "audit").glob("*.json"))[-1]
    kept = day.read_bytes()
    day.write_text("{ not json", encoding="utf-8")
    r = runner.invoke(args=["restore", str(out)])
    assert r.exit_code == 1 and f"audit.{day.stem}" in r.output and "nothing was changed" in r.output
    day.write_bytes(kept)

    core_file = out / "core.json"
    core = json.loads(core_file.read_bytes())
    without = json.loads(json.dumps(core))
    for user in without["users"].values():
        user["role"] = "supervisor" if user["role"] == "admin" else user["role"]
    core_file.write_text(json.dumps(without, ensure_ascii=False), encoding="utf-8")
    r = runner.invoke(args=["restore", str(out)])
    assert r.exit_code == 1 and "administrator" in r.output
    core_file.write_text(json.dumps(core, ensure_ascii=False), encoding="utf-8")

    villages = [json.loads(p.read_bytes()) for p in (out / "villages").glob("*.json")]
    households = sum(len(v.get("households", {})) for v in villages)
    submissions = sum(len(v.get("submissions", {})) for v in villages)
    assert households and submissions == 2
    r = runner.invoke(args=["restore", str(out)])
    assert r.exit_code == 0, r.output
    assert (f"{len(core['villages'])} 村 villages, {households} 户 households, {submissions} 条记录 "
            f"submissions") in r.output
