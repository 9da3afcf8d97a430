"""What a county needs to run the system for real, online and on the command line: villages, a
fresh install with no demo data, pairing in bulk, forms published without a restart, backups, and
a roster's every error in one report."""

import io
import os
import shutil
import subprocess
import sys
import tarfile

import pytest
import yaml

from server import create_app
from server.forms import formdefs
from server.web.auth import User
from server.records import audit, households, users, villages
from server.store import close_app_store, get_store
from tests.conftest import PASSWORD, Api
from tests.helpers import app_config, new_uuid
from tests.live import Client, LiveServer

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))



def served_version(api, form_id):
    """The version of a form the phone is offered (bootstrap's list, by id)."""
    return next(f["version"] for f in api.get("/api/v1/bootstrap").get_json()["forms"] if f["id"] == form_id)

def flask_cli(data_dir, *args, stdin=None):
    env = dict(os.environ, JIEDUI_DATA_DIR=str(data_dir))
    return subprocess.run([sys.executable, "-m", "flask", "--app", "server", *args], cwd=ROOT, env=env,
                          input=stdin, capture_output=True, text=True)


def form_post(api, path, data, **kw):
    return api.client.post(path, data=dict(data, csrf_token=api.token), **kw)


# ---- villages -------------------------------------------------------------------------------------


def test_admin_creates_and_edits_a_village_with_clear_messages(app, api):
    api.login("admin")
    r = form_post(api, "/admin/villages", {"id": "430699102001", "name": "新丰村", "township": "石门镇",
                                           "county": "青溪县"})
    assert r.status_code == 302
    assert villages.get("430699102001", get_store(app))["name"] == "新丰村"
    page = api.get("/admin/villages").get_data(as_text=True)
    assert "新丰村" in page and "430699102001" in page
    for bad, words in ((dict(id="v1", name="重复村"), "已存在"), (dict(id="村一", name="x"), "字母或数字"),
                       (dict(id="a b", name="x"), "字母或数字"), (dict(id="x" * 33, name="x"), "字母或数字"),
                       (dict(id="core", name="x"), "保留"), (dict(id="v9", name=""), "村名必填"),
                       (dict(id="v9", name="x" * 51), "最多 50 字")):
        r = form_post(api, "/admin/villages", bad)
        assert r.status_code == 400 and words in r.get_data(as_text=True), bad
    assert villages.get("v9", get_store(app)) is None
    api.client.set_cookie("lang", "en")
    r = form_post(api, "/admin/villages", {"id": "v1", "name": "again"})
    assert "already exists" in r.get_data(as_text=True)
    r = form_post(api, "/admin/villages/430699102001", {"name": "新丰村（新）", "township": "石门镇",
                                                        "county": "青溪县"})
    assert r.status_code == 302 and villages.get("430699102001", get_store(app))["name"] == "新丰村（新）"
    r = form_post(api, "/admin/villages/430699102001", {"name": "", "township": "", "county": ""})
    assert r.status_code == 400
    assert api.get("/admin/villages/nowhere").status_code == 404
    actions = [e["action"] for e in audit.entries(get_store(app), target="430699102001")]
    assert actions == ["village_update", "village_create"]
    api.login("super")
    assert api.get("/admin/villages").status_code == 403


def test_fresh_install_cli_path_to_a_stored_visit_with_no_demo_data(tmp_path):
    data = tmp_path / "data"
    assert flask_cli(data, "init").returncode == 0
    r = flask_cli(data, "village", "create", "430699103001", "--name", "石桥村", "--township", "石门镇",
                  "--county", "青溪县")
    assert r.returncode == 0, r.stderr
    r = flask_cli(data, "village", "create", "430699103001", "--name", "again")
    assert r.returncode == 1 and "already exists" in r.stderr
    r = flask_cli(data, "village", "create", "bad/id", "--name", "x")
    assert r.returncode == 1 and "letters or digits" in r.stderr
    for name, role in (("wang.fang", "cadre"), ("county", "admin")):
        args = ["user", "create", name, "--role", role, "--password-stdin"]
        if role == "cadre":
            args += ["--village", "430699103001"]
        r = flask_cli(data, *args, stdin="a-long-password\n")
        assert r.returncode == 0, r.stderr
    roster = tmp_path / "roster.csv"
    roster.write_text("户主姓名,家庭人口,联系电话,类别,组别,帮扶责任人\n"
                      "刘大山,3,13800001111,脱贫户,2组,wang.fang\n"
                      "陈小河,2,13800002222,低保户,3组,wang.fang\n", encoding="utf-8")
    r = flask_cli(data, "import-roster", str(roster), "--village", "430699103001")
    assert r.returncode == 0 and "2" in r.stdout, r.stderr
    server = LiveServer(data).start()
    try:
        r = flask_cli(data, "village", "create", "430699103002", "--name", "x")
        assert r.returncode != 0 and "/admin" in r.stderr  # the lock rule: the server owns the folder
        cadre = Client(server.url)
        assert cadre.login("wang.fang", "a-long-password")[0] == 200
        status, body = cadre.call("GET", "/api/v1/households?since=0")
        assert status == 200 and len(body["households"]) == 2
        hid = body["households"][0]["id"]
        item = {"uuid": new_uuid(), "form": "household_visit", "form_version": 2, "household_id": hid,
                "created_at": "2026-03-02T10:00:00+08:00",
                "answers": {"visit_date": "2026-03-02", "visit_type": "home", "present": "户主本人",
                            "topics": ["income_jobs"], "family_changes": ["none"], "risk": "no"}}
        status, body = cadre.call("POST", "/api/v1/submissions", {"submissions": [item]})
        assert status == 200 and body["results"][0]["status"] == "created", body
        admin = Client(server.url)
        assert admin.login("county", "a-long-password")[0] == 200
        status, stats = admin.call("GET", "/api/v1/stats")
        assert status == 200
        assert [(v["id"], v["households"], v["paired"], v["never_visited"]) for v in stats["villages"]] == \
            [("430699103001", 2, 2, 1)]
        assert stats["cadres"][0]["id"] == "wang.fang" and stats["cadres"][0]["households"] == 2
    finally:
        server.stop()
    assert not (data / "villages" / "430699101001.json").exists()  # no demo data anywhere


def test_fresh_install_web_path_to_a_stored_visit(tmp_path):
    data = tmp_path / "data"
    assert flask_cli(data, "init").returncode == 0
    assert flask_cli(data, "user", "create", "county", "--role", "admin", "--password-stdin",
                     stdin="a-long-password\n").returncode == 0
    app = create_app(app_config(str(data)))
    try:
        admin = Api(app.test_client())
        assert admin.login("county", "a-long-password").status_code == 200
        assert form_post(admin, "/admin/villages", {"id": "430699104001", "name": "枫林村"}).status_code == 302
        r = form_post(admin, "/admin/users", {"username": "li.na", "role": "cadre", "password": "a-long-password",
                                              "villages": ["430699104001"]})
        assert r.status_code == 302
        roster = "户主姓名,家庭人口,类别,帮扶责任人\n周大树,4,监测户,li.na\n".encode("gbk")
        r = form_post(admin, "/admin/roster", {"village": "430699104001", "file": (io.BytesIO(roster), "r.csv")},
                      content_type="multipart/form-data")
        assert r.status_code == 200 and "新增 1" in r.get_data(as_text=True)
        cadre = Api(app.test_client())
        assert cadre.login("li.na", "a-long-password").status_code == 200
        hid = cadre.get("/api/v1/households").get_json()["households"][0]["id"]
        item = {"uuid": new_uuid(), "form": "household_visit", "form_version": 2, "household_id": hid,
                "created_at": "2026-03-02T10:00:00+08:00",
                "answers": {"visit_date": "2026-03-02", "visit_type": "home", "present": "户主本人",
                            "topics": ["income_jobs"], "family_changes": ["none"], "risk": "no"}}
        r = cadre.post("/api/v1/submissions", {"submissions": [item]})
        assert r.get_json()["results"][0]["status"] == "created"
        stats = admin.get("/api/v1/stats").get_json()
        assert stats["villages"][0]["never_visited"] == 0 and stats["villages"][0]["households"] == 1
    finally:
        close_app_store(app)


# ---- pairing in bulk ----------------------------------------------------------------------------------


def test_bulk_pairing_and_a_cadre_rotating_out(app, api):
    store = get_store(app)
    users.create("cadre3", "cadre", PASSWORD, villages=["v1"], display_name="孙干部", store=store)
    api.login("admin")
    page = api.get("/admin/pairing?village=v1").get_data(as_text=True)
    assert page.count('name="household_ids"') == 3 and "李干部" in page
    before = {h["id"]: h for h in households.in_village("v1", store)}
    r = form_post(api, "/admin/pairing?village=v1", {"action": "pair", "cadre": "cadre3", "mode": "add",
                                                     "household_ids": ["v1-0001", "v1-0002"]})
    assert r.status_code == 302
    after = {h["id"]: h for h in households.in_village("v1", store)}
    assert after["v1-0001"]["cadre_ids"] == ["cadre1", "cadre3"]
    assert after["v1-0002"]["cadre_ids"] == ["cadre1", "cadre3"]
    assert after["v1-0003"] == before["v1-0003"]
    assert after["v1-0001"]["version"] == before["v1-0001"]["version"] + 1
    history = households.history_of(User(users.get("admin", store)), "v1-0001", store)
    assert history[0]["source"] == "pairing" and history[0]["after"] == {"cadre_ids": ["cadre1", "cadre3"]}
    bulk = audit.entries(store, action="pairing_bulk")
    assert len(bulk) == 1 and bulk[0]["details"]["households"] == ["v1-0001", "v1-0002"]

    # a household of a village the cadre does not work in: refused, and nothing changes
    r = form_post(api, "/admin/pairing?village=v1", {"action": "pair", "cadre": "cadre3", "mode": "replace",
                                                     "household_ids": ["v1-0003", "v2-0001"]})
    assert r.status_code == 400 and "v2-0001" in r.get_data(as_text=True)
    assert households.get("v1-0003", store) == before["v1-0003"]
    # filter: unpaired only, by category, by group
    assert api.get("/admin/pairing?village=v1&unpaired=1").get_data(as_text=True).count('name="household_ids"') == 0
    assert api.get("/admin/pairing?village=v1&category=dibao").get_data(as_text=True).count('name="household_ids"') == 0
    assert api.get("/admin/pairing?village=v1&of_cadre=cadre3").get_data(as_text=True).count('name="household_ids"') == 2

    # cadre1 rotates out: everything of theirs goes to cadre3, without duplicates
    r = form_post(api, "/admin/pairing", {"action": "move", "from_cadre": "cadre1", "to_cadre": "cadre3"})
    assert r.status_code == 302
    moved = {h["id"]: h["cadre_ids"] for h in households.in_village("v1", store)}
    assert moved == {"v1-0001": ["cadre3"], "v1-0002": ["cadre3"], "v1-0003": ["cadre3"]}
    assert audit.entries(store, action="pairing_move")[0]["details"]["moved"] == 3
    stats = api.get("/api/v1/stats?village=v1").get_json()
    by_id = {c["id"]: c for c in stats["cadres"]}
    assert by_id["cadre3"]["households"] == 3 and by_id["cadre1"]["households"] == 0
    # cadre2's households cannot go to cadre3, who does not work in v2: nothing moves
    r = form_post(api, "/admin/pairing", {"action": "move", "from_cadre": "cadre2", "to_cadre": "cadre3"})
    assert r.status_code == 400 and "v2" in r.get_data(as_text=True)
    assert all(h["cadre_ids"] == ["cadre2"] for h in households.in_village("v2", store))
    api.login("cadre1")
    assert api.get("/admin/pairing").status_code == 403  # supervisors may pair their villages (issue 26)


# ---- forms -----------------------------------------------------------------------------------------------


@pytest.fixture
def forms_app(tmp_path):
    forms_dir = tmp_path / "forms"
    shutil.copytree(os.path.join(ROOT, "forms"), forms_dir)
    app = create_app(app_config(str(tmp_path / "data"), FORMS_DIR=str(forms_dir)))
    from tests.conftest import seed_world
    with app.app_context():
        seed_world(get_store())
    yield app
    close_app_store(app)


def pv_v3():
    with open(os.path.join(ROOT, "forms", "pv_enrollment.yaml"), encoding="utf-8") as f:
        data = yaml.safe_load(f)
    data["version"] = 3
    data["title"] = {"zh": "户用光伏登记（2026 版）", "en": "Rooftop PV enrollment (2026)"}
    data["fields"][-1]["fields"].append({"name": "installer", "type": "text",
                                         "label": {"zh": "安装单位", "en": "Installer"}})
    return data


def dump(data):
    return yaml.safe_dump(data, allow_unicode=True, sort_keys=False).encode("utf-8")


def upload(api, path, data, name="pv_enrollment.yaml"):
    return form_post(api, path, {"file": (io.BytesIO(data), name)}, content_type="multipart/form-data")


PV_ANSWERS = {"interested": "yes", "consent": "yes", "roof_type": "flat_concrete", "roof_area_m2": 80,
              "orientation": "flat", "shading": "none", "structure_ok": "yes", "capacity_kw": 8,
              "funding_mode": "subsidised", "grid_stage": "applied", "lecture_attended": "no"}


def pv_item(version, **extra):
    return {"uuid": new_uuid(), "form": "pv_enrollment", "form_version": version,
            "household_id": "v1-0001", "created_at": "2026-05-01T10:00:00+08:00",
            "answers": dict(PV_ANSWERS, **extra)}


def test_a_published_form_is_served_without_restart_and_old_versions_still_accepted(forms_app, tmp_path):
    admin, cadre = Api(forms_app.test_client()), Api(forms_app.test_client())
    admin.login("admin")
    cadre.login("cadre1")
    served = {f["id"]: f["version"] for f in cadre.get("/api/v1/bootstrap").get_json()["forms"]}
    assert served["pv_enrollment"] == 2
    r = upload(admin, "/admin/forms/check", dump(pv_v3()))
    page = r.get_data(as_text=True)
    assert r.status_code == 200 and "检查通过" in page and "安装单位" in page and "phone-frame" in page
    assert served_version(cadre, "pv_enrollment") == 2  # checking publishes nothing
    r = upload(admin, "/admin/forms/publish", dump(pv_v3()))
    assert r.status_code == 302
    forms = {f["id"]: f for f in cadre.get("/api/v1/bootstrap").get_json()["forms"]}
    assert forms["pv_enrollment"]["version"] == 3
    definition = cadre.get("/api/v1/forms/pv_enrollment").get_json()
    assert definition["version"] == 3 and definition["title"]["zh"] == "户用光伏登记（2026 版）"
    r = cadre.post("/api/v1/submissions", {"submissions": [pv_item(3, installer="县供电公司"), pv_item(2),
                                                           pv_item(1)]})
    assert [x["status"] for x in r.get_json()["results"]] == ["created", "created", "created"], r.get_json()
    r = cadre.post("/api/v1/submissions", {"submissions": [pv_item(2, installer="x")]})
    assert r.get_json()["results"][0]["status"] == "rejected"  # v2 has no such question
    forms_dir = tmp_path / "forms"
    published = tmp_path / "data" / "forms-published"
    # published beside the data, never into the code's forms/ (a git pull must not meet it)
    assert yaml.safe_load((published / "pv_enrollment.yaml").read_text(encoding="utf-8"))["version"] == 3
    assert yaml.safe_load((forms_dir / "pv_enrollment.yaml").read_text(encoding="utf-8"))["version"] == 2
    assert (tmp_path / "data" / "forms" / "pv_enrollment" / "3.json").exists()
    page = admin.get("/admin/forms").get_data(as_text=True)
    assert "第 3 版" in page and "正在使用" in page and "admin" in page
    assert audit.entries(get_store(forms_app), action="form_publish")[0]["details"]["version"] == 3
    assert admin.get("/admin/forms/pv_enrollment/1").status_code == 200
    assert admin.get("/admin/forms/pv_enrollment/9").status_code == 404
    assert admin.get("/admin/forms/pv_enrollment/x").status_code == 404
    # a restarted server loads the same forms and serves v3
    close_app_store(forms_app)
    again = create_app(app_config(str(tmp_path / "data"), FORMS_DIR=str(forms_dir)))
    try:
        other = Api(again.test_client())
        other.login("cadre1")
        assert {f["id"]: f["version"] for f in other.get("/api/v1/bootstrap").get_json()["forms"]}["pv_enrollment"] == 3
    finally:
        close_app_store(again)


def test_form_uploads_that_are_refused_change_nothing(forms_app, tmp_path):
    admin = Api(forms_app.test_client())
    admin.login("admin")
    before = sorted((p.relative_to(tmp_path), p.read_bytes()) for p in (tmp_path / "forms").rglob("*") if p.is_file())
    served = admin.get("/api/v1/bootstrap").get_json()["forms"]
    changed_same_version = pv_v3()
    changed_same_version["version"] = 2
    bad_condition = pv_v3()
    bad_condition["fields"][0]["fields"][1]["relevant"] = {"field": "interested", "op": "resembles", "value": "yes"}
    unknown_ref = pv_v3()
    unknown_ref["fields"][0]["fields"][1]["relevant"] = {"field": "nothing_here", "op": "eq", "value": "yes"}
    older = pv_v3()
    older["version"] = 1
    cases = [
        (b"\x89PNG\r\n\x1a\n\x00\x00binary", "UTF-8"),
        (b"id: [unclosed\n  version: 3", "not valid YAML"),
        (b"- just\n- a list\n", "mapping"),
        (b"x" * (256 * 1024 + 1), "larger than"),
        (dump(changed_same_version), "version 2 is already published with other content"),
        (dump(older), "already published"),
        (dump(bad_condition), "op"),
        (dump(unknown_ref), "nothing_here"),
        (open(os.path.join(ROOT, "forms", "pv_enrollment.yaml"), "rb").read(), "nothing to publish"),
    ]
    for data, words in cases:
        for path in ("/admin/forms/check", "/admin/forms/publish"):
            r = upload(admin, path, data)
            page = r.get_data(as_text=True)
            assert r.status_code == 400 and words in page and "未发布" in page, (path, words, page[-3000:])
    r = form_post(admin, "/admin/forms/publish", {})
    assert r.status_code == 400
    assert admin.get("/api/v1/bootstrap").get_json()["forms"] == served
    after = sorted((p.relative_to(tmp_path), p.read_bytes()) for p in (tmp_path / "forms").rglob("*") if p.is_file())
    assert after == before
    assert not (tmp_path / "data" / "forms" / "pv_enrollment" / "3.json").exists()
    assert audit.entries(get_store(forms_app), action="form_publish") == []
    admin.login("super")
    assert admin.get("/admin/forms").status_code == 403


def alias_bomb():
    """About 1 KB: eight levels of ten aliases each, each anchored on a field's condition, so the
    last field's condition holds a hundred million once expanded."""
    fields = ['- {name: interested, type: text, label: {zh: 意愿, en: Interest}}',
              '- {name: f0, type: text, label: {zh: 甲, en: A}, relevant: &a0 {field: interested, '
              'op: eq, value: "yes"}}']
    for i in range(1, 9):
        fields.append(f"- {{name: f{i}, type: text, label: {{zh: 甲, en: A}}, relevant: &a{i} "
                      f"{{all: [{','.join([f'*a{i - 1}'] * 10)}]}}}}")
    return ("id: pv_enrollment\nversion: 3\ntitle: {zh: 光伏, en: PV}\nfields:\n"
            + "\n".join(fields) + "\n").encode("utf-8")


def test_yaml_aliases_are_refused_in_form_files(forms_app, tmp_path):
    """A few hundred bytes of nested aliases were accepted as a form of a million conditions (15-37 s
    of checking on the server, 3.5 GB on the phone). Form files may not use aliases at all."""
    bomb = alias_bomb()
    assert len(bomb) < 2048
    admin = Api(forms_app.test_client())
    admin.login("admin")
    for path in ("/admin/forms/check", "/admin/forms/publish"):
        r = upload(admin, path, bomb)
        page = r.get_data(as_text=True)
        assert r.status_code == 400 and "不允许使用 YAML 别名" in page and "未发布" in page, page[-2000:]
    r = form_post(admin, "/admin/forms/check", {"file": (io.BytesIO(bomb), "pv.yaml")},
                  content_type="multipart/form-data", headers={"Accept-Language": "en"})
    assert r.status_code == 400 and "YAML aliases (&amp;anchor … *alias) are not allowed" in r.get_data(as_text=True)
    # the same file shipped in forms/ stops the start with the file named, in both languages
    (tmp_path / "forms" / "pv_enrollment.yaml").write_bytes(bomb)
    with pytest.raises(formdefs.FormDefinitionError) as refused:
        formdefs.load_definition_file(tmp_path / "forms" / "pv_enrollment.yaml")
    assert "pv_enrollment.yaml" in str(refused.value) and "YAML aliases" in str(refused.value)
    assert "别名" in str(refused.value)


def test_a_lone_surrogate_in_a_label_is_refused_not_a_500(forms_app):
    admin = Api(forms_app.test_client())
    admin.login("admin")
    text = dump(pv_v3()).decode("utf-8").replace("安装单位", '"安装\\ud800单位"').encode("utf-8")
    assert b"\\ud800" in text
    for path in ("/admin/forms/check", "/admin/forms/publish"):
        r = upload(admin, path, text)
        page = r.get_data(as_text=True)
        # libyaml refuses the escape itself; the pure-Python loader's text is caught after loading
        assert r.status_code == 400 and "未发布" in page, page[-2000:]
        assert "U+D800" in page or "escape" in page
    assert served_version(admin, "pv_enrollment") == 2


# ---- backups -------------------------------------------------------------------------------------------


def test_backup_from_the_web_is_the_cli_backup_as_one_download(app, api, tmp_path):
    from server.services.backup import of_app
    api.login("admin")
    r = form_post(api, "/admin/backup", {})
    assert r.status_code == 303
    runner = of_app(app)
    runner.wait(60)
    status = api.get("/admin/backup", headers={"Accept": "application/json"}).get_json()
    assert status["running"] is False and status["error"] is None and len(status["backups"]) == 1
    entry = status["backups"][0]
    r = api.get(entry["url"])
    assert r.status_code == 200 and r.headers["Content-Type"] == "application/gzip"
    assert int(r.headers["Content-Length"]) == entry["size"]
    with tarfile.open(fileobj=io.BytesIO(r.data), mode="r:gz") as tar:
        names = set(tar.getnames())
        top = entry["name"][:-len(".tar.gz")]
        assert {f"{top}/core.json", f"{top}/villages/v1.json", f"{top}/villages/v2.json",
                f"{top}/forms/pv_enrollment/2.json"} <= names
        assert f"{top}/secret_key" not in names   # a stolen archive signs no session
        assert any(n.startswith(f"{top}/forms/") for n in names)
        tar.extractall(tmp_path / "restored", filter="data")
    # the same picture as the command-line backup makes
    cli_out = tmp_path / "cli"
    from server.services.backup import write_folder
    from server.store import store_layout
    from server.store.tinydb import open_readonly
    write_folder(open_readonly(app.config["DATA_DIR"], store_layout(app)), app.config, str(cli_out))
    restored = tmp_path / "restored" / top
    assert sorted(p.name for p in restored.iterdir()) == sorted(p.name for p in cli_out.iterdir())
    page = api.get("/admin/backup").get_data(as_text=True)
    assert entry["name"] in page and "MB" in page
    assert audit.entries(get_store(app), action="backup")[0]["target"] == entry["name"]
    # one at a time
    runner.lock.acquire()
    try:
        r = api.post("/admin/backup", {})
        assert r.status_code == 409 and r.get_json()["started"] is False
        r = form_post(api, "/admin/backup", {})
        assert "已有一个备份正在进行" in api.get("/admin/backup").get_data(as_text=True)
    finally:
        runner.lock.release()
    assert api.get("/admin/backup/..%2Fcore.json").status_code == 404
    assert api.get("/admin/backup/jiedui-20990101-000000.tar.gz").status_code == 404
    api.login("super")
    assert api.get("/admin/backup").status_code == 403


# ---- the roster's every error at once -------------------------------------------------------------------


def test_a_roster_with_three_kinds_of_error_is_reported_at_once(app, api):
    api.login("admin")
    roster = ("户编号,户主姓名,家庭人口,联系电话,类别,帮扶责任人\n"
              "1,刘大山,3,12345,脱贫户,cadre1\n"          # row 2: a phone that is not one (format)
              "2,王小河,2,13800001111,低保户,cadre1\n"
              "2,王小河,2,13800001111,低保户,cadre1\n"    # row 4: the same household number twice
              "3,陈石头,4,13800002222,一般户,nobody\n"    # row 5: no such cadre
              "4,赵四,两,13800003333,脱贫户,ghost\n")     # row 6: a format error and an unknown cadre
    r = form_post(api, "/admin/roster", {"village": "v1", "file": (io.BytesIO(roster.encode("gbk")), "r.csv")},
                  content_type="multipart/form-data")
    page = r.get_data(as_text=True)
    assert r.status_code == 400 and "没有导入任何内容" in page
    for words in ("第 2 行", "12345", "第 4 行", "与第 3 行重复", "第 5 行", "nobody", "第 6 行", "两", "ghost"):
        assert words in page, words
    assert len(households.in_village("v1", get_store(app))) == 3  # nothing imported
    # the command reports the same, in one run
    path = os.path.join(app.config["DATA_DIR"], "r.csv")
    with open(path, "w", encoding="utf-8") as f:
        f.write(roster)
    from server.services.roster import run_import
    summary, errors = run_import(get_store(app), path, "v1", "cli")
    assert summary is None
    assert {(e["row"], e["column"]) for e in errors} == {(2, "联系电话"), (4, "户编号"), (5, "帮扶责任人"),
                                                       (6, "家庭人口"), (6, "帮扶责任人")}


def test_a_new_form_without_sections_is_published_and_listed(forms_app, tmp_path):
    admin = Api(forms_app.test_client())
    admin.login("admin")
    lecture = {"id": "lecture_attendance", "version": 1, "title": {"zh": "宣讲签到", "en": "Lecture attendance"},
               "subject": "household",
               "effects": {"visit_date": "lecture_date"},
               "fields": [{"name": "lecture_date", "type": "date", "label": {"zh": "日期", "en": "Date"},
                           "required": True},
                          {"name": "topic", "type": "select_one", "label": {"zh": "主题", "en": "Topic"},
                           "choices": [{"name": "pv", "label": {"zh": "光伏政策", "en": "PV scheme"}},
                                       {"name": "safety", "label": {"zh": "用电安全", "en": "Electrical safety"}}]}]}
    r = upload(admin, "/admin/forms/check", dump(lecture), name="whatever.yml")
    assert r.status_code == 200 and "这是一个新表单" in r.get_data(as_text=True) and "用电安全" in r.get_data(as_text=True)
    assert upload(admin, "/admin/forms/publish", dump(lecture)).status_code == 302
    assert (tmp_path / "data" / "forms-published" / "lecture_attendance.yaml").exists()
    cadre = Api(forms_app.test_client())
    cadre.login("cadre1")
    assert "lecture_attendance" in {f["id"] for f in cadre.get("/api/v1/bootstrap").get_json()["forms"]}
    item = {"uuid": new_uuid(), "form": "lecture_attendance", "form_version": 1, "household_id": "v1-0003",
            "created_at": "2026-05-01T10:00:00+08:00", "answers": {"lecture_date": "2026-05-01", "topic": "pv"}}
    assert cadre.post("/api/v1/submissions", {"submissions": [item]}).get_json()["results"][0]["status"] == "created"
    admin.login("super")
    stats = admin.get("/api/v1/stats?village=v1").get_json()
    assert stats["villages"][0]["never_visited"] == 2  # a form that dates a visit counts as one
