"""The admin pages and the commands that mirror them; backup while serving, and restore."""

import io
import os
import shutil

from tinydb import TinyDB

from tests.conftest import PASSWORD
from tests.live import Client, LiveServer, seed

ROSTER = "户主姓名,家庭人口,联系电话,类别,组别,地址\n刘大山,3,13800001111,脱贫户,2组,青石村2组\n"


def upload(api, data, filename="roster.csv", village="v1"):
    return api.client.post("/admin/roster", data={"csrf_token": api.token, "village": village,
                                                  "file": (io.BytesIO(data), filename)},
                           content_type="multipart/form-data")


def test_roster_upload_page_imports_gbk_and_reimport_does_not_duplicate(api):
    api.login("admin")
    r = upload(api, ROSTER.encode("gbk"))
    assert r.status_code == 200 and "新增 1" in r.get_data(as_text=True)
    r = upload(api, ROSTER.encode("utf-8-sig"))
    assert "未变 1" in r.get_data(as_text=True)
    heads = [h["head_name"] for h in api.get("/api/v1/households?limit=100").get_json()["households"]]
    assert heads.count("刘大山") == 1


def test_roster_upload_errors_are_reported_and_nothing_is_stored(api):
    api.login("admin")
    bad = ROSTER + ",2,123,火星户,3组,\n"
    r = upload(api, bad.encode())
    page = r.get_data(as_text=True)
    assert r.status_code == 400 and "第 3 行" in page and "没有导入任何内容" in page
    assert "刘大山" not in str(api.get("/api/v1/households?limit=100").get_json())
    r = upload(api, b"PK\x03\x04 not really a workbook", "roster.xlsx")
    assert r.status_code == 400
    r = upload(api, b"x" * (5 * 1024 * 1024 + 10), "big.csv")
    assert r.status_code in (400, 413)
    r = upload(api, ROSTER.encode(), "../../etc/passwd.csv", village="v9")
    assert r.status_code == 400


def test_admin_creates_a_user_online_and_they_can_log_in(app, api):
    api.login("admin")
    r = api.client.post("/admin/users", data={"csrf_token": api.token, "username": "sun.li",
                                              "role": "cadre", "password": "a-long-password",
                                              "villages": ["v2"], "unit": "县人民医院"})
    assert r.status_code == 302
    from tests.conftest import Api
    other = Api(app.test_client())
    assert other.login("sun.li", "a-long-password").status_code == 200
    assert {v["id"] for v in other.get("/api/v1/bootstrap").get_json()["villages"]} == {"v2"}
    r = api.client.post("/admin/users", data={"csrf_token": api.token, "username": "X!",
                                              "role": "king", "password": "short"})
    assert r.status_code == 400


def test_backup_while_serving_gives_a_folder_that_restores(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    seed(data)
    server = LiveServer(data, extra_env={"JIEDUI_SNAPSHOT_EVERY": "0"}).start()
    try:
        c = Client(server.url)
        c.login("cadre1", PASSWORD)
        status, body = c.call("PUT", "/api/v1/households/v1-0001",
                              {"changes": {"address": "备份前的新地址"}, "base_version": 1})
        assert status == 200
        out = tmp_path / "backup"
        env = dict(os.environ, JIEDUI_DATA_DIR=str(data))
        import subprocess
        import sys
        r = subprocess.run([sys.executable, "-m", "flask", "--app", "server", "backup", str(out)],
                           cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                           env=env, capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
    finally:
        server.stop()
    # the backup is plain TinyDB files, without a journal, and holds the acknowledged edit
    assert not [p for p in os.listdir(out) if p.startswith("journal")]
    with TinyDB(out / "villages" / "v1.json") as db:
        assert any(h["address"] == "备份前的新地址" for h in db.table("households").all())
    restored = tmp_path / "restored"
    shutil.copytree(out, restored)
    server = LiveServer(restored).start()
    try:
        c = Client(server.url)
        assert c.login("cadre1", PASSWORD)[0] == 200
        assert c.call("GET", "/api/v1/households/v1-0001")[1]["address"] == "备份前的新地址"
    finally:
        server.stop()


def test_init_demo_creates_data_and_prints_logins(tmp_path):
    import subprocess
    import sys
    env = dict(os.environ, JIEDUI_DATA_DIR=str(tmp_path / "d"))
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    r = subprocess.run([sys.executable, "-m", "flask", "--app", "server", "init", "--demo"], cwd=root,
                       env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "admin-demo-2026" in r.stdout
    with TinyDB(tmp_path / "d" / "core.json") as db:
        assert len(db.table("villages")) == 3
    r = subprocess.run([sys.executable, "-m", "flask", "--app", "server", "init", "--demo"], cwd=root,
                       env=env, capture_output=True, text=True)
    assert r.returncode == 0 and "already has data" in r.stdout


def test_second_server_on_the_same_folder_exits_with_a_clear_message(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    seed(data)
    first = LiveServer(data).start()
    try:
        second = LiveServer(data)
        try:
            second.start(timeout=20)
            raise AssertionError("a second server started on the same folder")
        except RuntimeError as e:
            assert "exited" in str(e)
        with open(os.path.join(data, f"server-{second.port}.log"), encoding="utf-8") as f:
            assert "Another process" in f.read()
    finally:
        first.stop()
