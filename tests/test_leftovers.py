"""What killed exports and backups leave behind is removed at start, and backups leave out the
session key unless asked (issue 24 #3)."""

import os
import subprocess
import threading
import urllib.error
import urllib.request

from server import create_app
from server.services.backup import write_folder
from server.store import close_app_store, store_layout
from server.store.tinydb import open_readonly
from tests.conftest import PASSWORD, Api
from tests.live import Client, LiveServer, seed, server_behind_gate


def test_backups_leave_out_the_secret_key_unless_asked_and_a_server_without_one_ends_every_login(
        app, tmp_path):
    api = Api(app.test_client())
    assert api.login("cadre1").status_code == 200
    runner = app.test_cli_runner()
    plain, keyed = tmp_path / "plain", tmp_path / "keyed"
    assert runner.invoke(args=["backup", str(plain)]).exit_code == 0
    assert runner.invoke(args=["backup", str(keyed), "--with-secret"]).exit_code == 0
    assert not (plain / "secret_key").exists()
    assert (keyed / "secret_key").read_text() == app.config["SECRET_KEY"]
    cookies = {name: api.client.get_cookie(name).value for name in ("session", "remember_token")
               if api.client.get_cookie(name) is not None}
    assert cookies
    for folder, still_logged_in in ((plain, False), (keyed, True)):
        restored = create_app({"DATA_DIR": str(folder), "TESTING": True, "SNAPSHOT_EVERY": 0})
        try:
            assert (restored.config["SECRET_KEY"] == app.config["SECRET_KEY"]) is still_logged_in
            assert (folder / "secret_key").exists()                    # made at start when absent
            client = restored.test_client()
            for name, value in cookies.items():
                client.set_cookie(name, value, domain="localhost")
            status = client.get("/api/v1/bootstrap").status_code
            assert status == (200 if still_logged_in else 401), folder
            again = Api(restored.test_client())
            assert again.login("cadre1", PASSWORD).status_code == 200   # the same accounts
        finally:
            close_app_store(restored)


def test_the_web_backup_holds_no_secret_key(app, tmp_path):
    out = tmp_path / "out"
    write_folder(open_readonly(app.config["DATA_DIR"], store_layout(app)), app.config, str(out))
    assert not (out / "secret_key").exists() and (out / "core.json").exists()


def dead_pid():
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def test_a_killed_export_and_a_killed_backup_leave_nothing_after_a_restart(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    seed(data)
    # what a kill -9 during a web backup leaves: a whole working copy (with the key) and a half archive
    work = data / "backups" / ".work-20260501-093000"
    work.mkdir(parents=True)
    (work / "secret_key").write_text("k" * 64)
    (data / "backups" / ".tmp-half").write_bytes(b"\x1f\x8b half a tar.gz")
    kept = data / "backups" / "jiedui-20260501-090000.tar.gz"
    kept.write_bytes(b"\x1f\x8b a finished backup")
    stale = data / "tmp" / str(dead_pid())
    (stale / "jiedui-csv-x").mkdir(parents=True)
    (stale / "openpyxl.abc").write_text("sheet rows")

    arrived = str(tmp_path / "arrived")
    os.mkfifo(arrived)
    with server_behind_gate(data, tmp_path, "JIEDUI_TEST_EXPORT_GATE",
                            {"JIEDUI_TEST_EXPORT_ARRIVED": arrived}) as (server, _gate):
        assert not work.exists() and not (data / "backups" / ".tmp-half").exists()
        assert not stale.exists() and kept.exists()
        mine = data / "tmp" / str(server.proc.pid)
        assert mine.is_dir()
        client = Client(server.url)
        assert client.login("super", PASSWORD)[0] == 200

        def export():
            try:
                client.opener.open(urllib.request.Request(
                    server.url + "/exports/submissions.zip?form=household_visit"), timeout=60).read()
            except (urllib.error.URLError, ConnectionError, OSError):
                pass                                           # the server is killed under it
        t = threading.Thread(target=export)
        t.start()
        with open(arrived, "rb", buffering=0) as f:          # the export is writing its CSVs
            assert f.read(1) == b"1"
        left = [p.name for p in mine.iterdir()]
        assert any(name.startswith("jiedui-csv-") for name in left), left   # in our folder, not /tmp
        server.kill9()
        t.join(60)
        assert mine.exists()                                   # what the kill left behind
    again = LiveServer(data).start()
    try:
        assert not mine.exists()
        assert kept.exists()
        assert (data / "tmp" / str(again.proc.pid)).is_dir()
    finally:
        again.stop()
