"""Issue 26 item 1, first run and people: init makes the first admin, accounts in bulk from a
sheet with login slips, one-time passwords replaced at first login, supervisors managing the
cadres of their own villages (and nothing else), deactivation that asks and hands over."""

import csv
import io
import json
import re
import zipfile

import pytest

from server import create_app
from server.cli import data as init_cli
from server.core import passwords
from server.records import audit, households, users, villages
from server.store import close_app_store, get_store
from tests.conftest import PASSWORD, Api
from tests.helpers import app_config, login, pdf_text, xlsx_bytes

GOOD_PASSWORD = "my-own-Secret-58"
OTP_RE = re.compile(r'<code class="otp">([^<]+)</code>')


def form_post(api, path, data, **kw):
    return api.client.post(path, data={"csrf_token": api.token, **data}, **kw)


def one_time_logins(text):
    return OTP_RE.findall(text)


def store_of(app):
    with app.app_context():
        return get_store()


# ---- init: the first admin ---------------------------------------------------------------------------


@pytest.fixture
def empty_app(tmp_path, database_url):
    config = app_config(tmp_path / "data")
    if database_url:
        config["DATABASE_URL"] = database_url
    app = create_app(config)
    yield app
    close_app_store(app)


def test_init_without_a_terminal_makes_admin_with_a_one_time_password_once(empty_app):
    runner = empty_app.test_cli_runner()
    r = runner.invoke(args=["init"])
    assert r.exit_code == 0, r.output
    assert "First administrator created: admin" in r.output
    otp = re.search(r"One-time password: (\S+)", r.output).group(1)
    assert set(otp) <= set(passwords.READABLE) and len(otp) == passwords.ONE_TIME_LENGTH
    close_app_store(empty_app)
    again = runner.invoke(args=["init"])
    assert again.exit_code == 0 and "An administrator exists: admin" in again.output
    assert "One-time password" not in again.output
    api = Api(empty_app.test_client())
    r = api.login("admin", otp)
    assert r.status_code == 200 and r.get_json()["password_change_required"] is True
    r = api.get("/api/v1/bootstrap")
    assert r.status_code == 403 and r.get_json()["error"] == "password_change_required"


def test_init_takes_the_first_admin_from_the_command_line_and_it_is_not_one_time(empty_app):
    runner = empty_app.test_cli_runner()
    r = runner.invoke(args=["init", "--admin", "county", "--password-stdin"], input="a-long-password\n")
    assert r.exit_code == 0 and "First administrator created: county" in r.output, r.output
    api = Api(empty_app.test_client())
    r = api.login("county", "a-long-password")
    assert r.status_code == 200 and "password_change_required" not in r.get_json()
    assert api.get("/api/v1/bootstrap").status_code == 200
    close_app_store(empty_app)
    r = runner.invoke(args=["init", "--admin", "other", "--password-stdin"], input="a-long-password\n")
    assert r.exit_code == 0 and "An administrator exists: county" in r.output
    with empty_app.app_context():
        assert users.get("other") is None


def test_init_asks_for_the_first_admin_on_a_terminal(empty_app, monkeypatch):
    monkeypatch.setattr(init_cli, "on_terminal", lambda: True)
    r = empty_app.test_cli_runner().invoke(args=["init"], input="chief\nlong-enough-9\nlong-enough-9\n")
    assert r.exit_code == 0 and "First administrator created: chief" in r.output, r.output
    assert Api(empty_app.test_client()).login("chief", "long-enough-9").status_code == 200


def test_init_refuses_a_bad_first_admin_and_password_stdin_alone(empty_app):
    runner = empty_app.test_cli_runner()
    r = runner.invoke(args=["init", "--admin", "county", "--password-stdin"], input="short\n")
    assert r.exit_code == 1 and "8 characters" in r.output
    r = runner.invoke(args=["init", "--password-stdin"], input="a-long-password\n")
    assert r.exit_code != 0 and "--admin" in r.output
    with empty_app.app_context():
        assert users.list_all() == []


@pytest.mark.tinydb_only  # the demo's volume is tested once
def test_init_demo_keeps_the_demo_logins(empty_app):
    r = empty_app.test_cli_runner().invoke(args=["init", "--demo"])
    assert r.exit_code == 0 and "admin-demo-2026" in r.output and "An administrator exists" in r.output
    api = Api(empty_app.test_client())
    assert api.login("admin", "admin-demo-2026").status_code == 200
    assert api.get("/api/v1/bootstrap").status_code == 200


# ---- one-time passwords --------------------------------------------------------------------------------


def reset_on_the_web(app, admin, user_id="cadre1"):
    r = form_post(admin, f"/admin/users/{user_id}", {"action": "password", "password": "", "password2": ""})
    assert r.status_code == 200, r.get_data(as_text=True)[:500]
    assert r.headers["Cache-Control"] == "no-store"
    (otp,) = one_time_logins(r.get_data(as_text=True))
    assert f'name="password" value="{otp}"' in r.get_data(as_text=True)  # the slips form carries it
    return otp


def test_a_reset_on_the_web_gives_a_one_time_password_that_gates_everything_until_changed(app):
    admin = login(app.test_client(), "admin")
    otp = reset_on_the_web(app, admin)
    assert Api(app.test_client()).login("cadre1").status_code == 401  # the old password is gone
    phone = Api(app.test_client())
    r = phone.login("cadre1", otp)
    assert r.status_code == 200 and r.get_json()["password_change_required"] is True
    for path in ("/api/v1/bootstrap", "/api/v1/households", "/api/v1/submissions?household_id=v1-0001"):
        r = phone.get(path)
        assert r.status_code == 403 and r.get_json()["error"] == "password_change_required", path
        assert "新密码" in r.get_json()["message_zh"] and "new password" in r.get_json()["message_en"]
    r = phone.post("/api/v1/submissions", {"submissions": []})
    assert r.status_code == 403 and r.get_json()["error"] == "password_change_required"
    assert phone.get("/api/v1/csrf").status_code == 200
    page = phone.client.get("/households", headers={"Accept": "text/html"})
    assert page.status_code == 302 and page.headers["Location"].startswith("/account/password")
    assert phone.client.get(page.headers["Location"]).status_code == 200
    r = phone.post("/api/v1/account/password", {"current_password": otp, "new_password": GOOD_PASSWORD})
    assert r.status_code == 200
    assert phone.get("/api/v1/households").status_code == 200
    with app.app_context():
        assert not users.must_change_password(users.get("cadre1"))
        assert "user_password_own" in [e["action"] for e in audit.entries(get_store(), target="cadre1")]
    assert Api(app.test_client()).login("cadre1", GOOD_PASSWORD).status_code == 200


@pytest.mark.parametrize("new, field, en", [
    ("short", "new_password", "at least 8"),
    ("cadre1", "new_password", "at least 8"),
    ("cadre1234", "new_password", "username"),
    ("password123", "new_password", "too common"),
    ("11111111", "new_password", "too common"),
    (None, "new_password", "at least 8"),
])
def test_a_weak_new_password_is_refused_with_why_and_nothing_changes(app, new, field, en):
    admin = login(app.test_client(), "admin")
    otp = reset_on_the_web(app, admin)
    phone = Api(app.test_client())
    phone.login("cadre1", otp)
    r = phone.post("/api/v1/account/password", {"current_password": otp, "new_password": new})
    body = r.get_json()
    assert r.status_code == 400 and body["error"] == "password_refused"
    assert body["errors"][0]["field"] == field and en in body["errors"][0]["message_en"]
    assert body["errors"][0]["message_zh"]
    assert phone.get("/api/v1/households").status_code == 403
    with app.app_context():
        assert users.must_change_password(users.get("cadre1"))


def test_the_one_time_password_itself_and_a_wrong_current_one_are_refused(app):
    admin = login(app.test_client(), "admin")
    otp = reset_on_the_web(app, admin)
    phone = Api(app.test_client())
    phone.login("cadre1", otp)
    r = phone.post("/api/v1/account/password", {"current_password": otp, "new_password": otp})
    assert r.status_code == 400 and "differ" in r.get_json()["errors"][0]["message_en"]
    r = phone.post("/api/v1/account/password", {"current_password": "wrong-one-x", "new_password": GOOD_PASSWORD})
    assert r.status_code == 400 and r.get_json()["errors"][0]["field"] == "current_password"
    r = phone.post("/api/v1/account/password", {"current_password": otp})
    assert r.status_code == 400
    r = phone.client.post("/api/v1/account/password", data="[1]", content_type="application/json",
                          headers={"X-CSRFToken": phone.token})
    assert r.status_code == 400 and r.get_json()["error"] == "bad_body"


def test_the_change_password_page_in_both_languages(app):
    admin = login(app.test_client(), "admin")
    otp = reset_on_the_web(app, admin)
    phone = Api(app.test_client())
    phone.csrf()
    r = phone.client.post("/login", data={"username": "cadre1", "password": otp, "csrf_token": phone.token,
                                          "next": "/households"})
    assert r.status_code == 302 and r.headers["Location"].startswith("/account/password")
    page = phone.client.get(r.headers["Location"]).get_data(as_text=True)
    assert "一次性密码" in page
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    r = phone.client.post("/account/password", data={"csrf_token": token, "current_password": otp,
                                                     "new_password": "password123", "new_password2": "password123",
                                                     "next": "/households"}, headers={"Accept-Language": "en"})
    assert r.status_code == 400 and "too common" in r.get_data(as_text=True)
    r = phone.client.post("/account/password", data={"csrf_token": token, "current_password": otp,
                                                     "new_password": GOOD_PASSWORD, "new_password2": "x" * 9,
                                                     "next": "/households"})
    assert r.status_code == 400 and "不一致" in r.get_data(as_text=True)
    r = phone.client.post("/account/password", data={"csrf_token": token, "current_password": otp,
                                                     "new_password": GOOD_PASSWORD,
                                                     "new_password2": GOOD_PASSWORD, "next": "/households"})
    assert r.status_code == 302 and r.headers["Location"] == "/households"
    assert phone.client.get("/households").status_code == 200


def test_a_password_given_on_the_command_line_or_typed_for_oneself_is_not_one_time(app, runner):
    close_app_store(app)
    r = runner.invoke(args=["user", "set-password", "cadre1", "--password-stdin"], input="from-the-cli-42\n")
    assert r.exit_code == 0
    phone = Api(app.test_client())
    assert phone.login("cadre1", "from-the-cli-42").status_code == 200
    assert phone.get("/api/v1/households").status_code == 200
    admin = login(app.test_client(), "admin")
    r = form_post(admin, "/admin/users/admin", {"action": "password", "password": "admin-typed-77",
                                                 "password2": "admin-typed-77"})
    assert r.status_code == 302
    assert admin.get("/api/v1/households").status_code == 200


def test_a_password_typed_by_an_admin_for_someone_else_is_one_time_too(app):
    admin = login(app.test_client(), "admin")
    r = form_post(admin, "/admin/users/cadre1", {"action": "password", "password": "typed-for-you-1",
                                                  "password2": "typed-for-you-1"})
    assert r.status_code == 302
    phone = Api(app.test_client())
    assert phone.login("cadre1", "typed-for-you-1").status_code == 200
    assert phone.get("/api/v1/households").status_code == 403


# ---- bulk import -------------------------------------------------------------------------------------


def sheet_csv(rows, header=("用户名", "姓名", "角色", "村", "手机号", "派出单位")):
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue().encode("utf-8")


GOOD_ROWS = [("wang.li", "王丽", "驻村干部", "v1", "13912345678", "县农业农村局"),
             ("zhou.gang", "周刚", "cadre", "v1、v2", "", "县委党校"),
             ("chen.du", "陈督", "督导", "v1; v2", "139 0000 1111", "长寿镇")]


@pytest.fixture
def cli(app, runner):
    close_app_store(app)  # the commands take the folder lock themselves
    return runner


def test_cli_user_import_creates_accounts_with_one_time_passwords_and_slips(app, cli, tmp_path):
    path = tmp_path / "users.csv"
    path.write_bytes(sheet_csv(GOOD_ROWS))
    slips = tmp_path / "slips.pdf"
    r = cli.invoke(args=["user", "import", str(path), "--slips", str(slips)])
    assert r.exit_code == 0, r.output
    report = json.loads(r.output[:r.output.rindex("}") + 1])
    assert report["errors"] == []
    made = {c["username"]: c for c in report["created"]}
    assert set(made) == {"wang.li", "zhou.gang", "chen.du"}
    assert made["zhou.gang"]["villages"] == ["v1", "v2"] and made["chen.du"]["role"] == "supervisor"
    assert made["chen.du"]["phone"] == "13900001111"
    for c in made.values():
        assert set(c["password"]) <= set(passwords.READABLE) and not set(c["password"]) & set("0O1l")
    text = pdf_text(slips.read_bytes())
    for c in made.values():
        assert c["username"] in text and c["password"] in text
    assert "王丽" in text and "http://127.0.0.1:5000/app/" in text
    phone = Api(app.test_client())
    assert phone.login("wang.li", made["wang.li"]["password"]).status_code == 200
    assert phone.get("/api/v1/households").status_code == 403
    with app.app_context():
        assert "user_import" in [e["action"] for e in audit.entries(get_store())]
    close_app_store(app)
    r = cli.invoke(args=["user", "import", str(path)])  # the same sheet again: every name is taken
    assert r.exit_code == 1 and "is taken" in r.output


def test_cli_user_import_reports_every_error_by_row_and_column_and_writes_nothing(app, cli, tmp_path):
    rows = [["用户名", "姓名", "角色", "村", "手机号", "派出单位"],
            ["li.one", "李一", "驻村干部", "v1", "13800000001", ""],
            ["li.one", "李一二", "驻村干部", "v1", "", ""],
            ["cadre1", "重名", "驻村干部", "v1", "", ""],
            ["li.three", "李三", "驻村干部", "atlantis、v1", "", ""],
            ["li.four", "李四", "皇帝", "v1", "", ""],
            ["li.five", "李五", "驻村干部", "v2", 12345, ""],
            ["Bad Name!", "李六", "驻村干部", "v2", "", ""],
            ["li.seven", "李七", "驻村干部", "", "", ""]]
    path = tmp_path / "users.xlsx"
    path.write_bytes(xlsx_bytes(rows, title="长寿镇驻村干部名单"))
    r = cli.invoke(args=["user", "import", str(path)])
    assert r.exit_code == 1
    errors = json.loads(r.output)["errors"]
    found = {(e["row"], e["column"]) for e in errors}
    assert found == {(4, "用户名"), (5, "用户名"), (6, "村"), (7, "角色"), (8, "手机号"), (9, "用户名"),
                     (10, "村")}, errors
    by_row = {e["row"]: e for e in errors}
    assert "第 3 行" in by_row[4]["zh"] and "repeats row 3" in by_row[4]["en"]
    assert "atlantis" in by_row[6]["en"] and "未知的村" in by_row[6]["zh"]
    with app.app_context():
        assert users.get("li.one") is None


@pytest.mark.tinydb_only  # reading the file happens before any store
@pytest.mark.parametrize("name, data, en", [
    ("big.csv", b"a" * (2 * 1024 * 1024 + 1), "larger than"),
    ("empty.csv", b"", "empty"),
    ("old.xls", b"\xd0\xcf\x11\xe0" + b"\0" * 100, ".xls"),
    ("header.csv", "姓名,村\n张三,v1\n".encode(), "username"),
])
def test_cli_user_import_refuses_unreadable_files(app, cli, tmp_path, name, data, en):
    path = tmp_path / name
    path.write_bytes(data)
    r = cli.invoke(args=["user", "import", str(path)])
    assert r.exit_code == 1 and en in r.output


@pytest.mark.tinydb_only
def test_a_users_workbook_that_would_unpack_huge_is_refused_before_reading(app, cli, tmp_path):
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("[Content_Types].xml", "<Types/>")
        zf.writestr("xl/sharedStrings.xml", b"\0" * (41 << 20))
    path = tmp_path / "bomb.xlsx"
    path.write_bytes(out.getvalue())
    assert len(out.getvalue()) < 200_000
    r = cli.invoke(args=["user", "import", str(path)])
    assert r.exit_code == 1 and "MB" in r.output


def test_cli_dry_run_writes_nothing(app, cli, tmp_path):
    path = tmp_path / "users.csv"
    path.write_bytes(sheet_csv(GOOD_ROWS[:1]))
    r = cli.invoke(args=["user", "import", str(path), "--dry-run"])
    assert r.exit_code == 0 and json.loads(r.output)["accounts"][0]["username"] == "wang.li"
    with app.app_context():
        assert users.get("wang.li") is None


def upload(api, data, name="users.csv", **kw):
    return form_post(api, "/admin/users/import", {"step": "preview", "file": (io.BytesIO(data), name)},
                     content_type="multipart/form-data", **kw)


def confirm_of(page):
    """The fields of the preview's confirm form."""
    form = re.search(r'<input type="hidden" name="step" value="confirm">.*?</form>', page, re.S).group(0)
    fields = dict(re.findall(r'<input type="hidden" name="(filename|data)" value="([^"]*)"', form))
    return dict(fields, step="confirm")


def test_the_import_page_previews_confirms_shows_passwords_once_and_prints_slips(app):
    admin = login(app.test_client(), "admin")
    template = admin.get("/admin/users/import-template.xlsx")
    assert template.status_code == 200
    from openpyxl import load_workbook
    ws = load_workbook(io.BytesIO(template.data)).worksheets[0]
    ws.delete_rows(2, 2)
    ws.append(["wang.li", "王丽", "驻村干部", "v1", "13912345678", "县农业农村局"])
    ws.append(["zhou.gang", "周刚", "督导", "v1 v2", "", ""])
    buf = io.BytesIO()
    ws.parent.save(buf)
    r = upload(admin, buf.getvalue(), "users.xlsx")
    page = r.get_data(as_text=True)
    assert r.status_code == 200 and "wang.li" in page and "确认导入" in page
    with app.app_context():
        assert users.get("wang.li") is None  # a preview writes nothing
    r = form_post(admin, "/admin/users/import", confirm_of(page))
    page = r.get_data(as_text=True)
    assert r.status_code == 200
    otps = one_time_logins(page)
    assert len(otps) == 2
    with app.app_context():
        assert users.get("zhou.gang")["role"] == "supervisor"
        assert users.must_change_password(users.get("wang.li"))
    r = form_post(admin, "/admin/users/slips.pdf", {"username": ["wang.li", "zhou.gang"], "password": otps})
    assert r.status_code == 200 and r.mimetype == "application/pdf"
    text = pdf_text(r.data)
    assert "王丽" in text and otps[0] in text and "/app/" in text


def test_the_import_page_shows_every_error_and_writes_nothing(app):
    admin = login(app.test_client(), "admin")
    data = sheet_csv([("a.b", "甲", "驻村干部", "v1", "110", ""), ("a.b", "乙", "国王", "v9", "", "")])
    r = upload(admin, data, headers={"Accept-Language": "en"})
    page = r.get_data(as_text=True)
    assert r.status_code == 400
    for words in ("Nothing was imported", "11-digit", "repeats row 2", "not one of cadre", "v9"):
        assert words in page
    r = upload(admin, data)
    assert "未导入任何内容" in r.get_data(as_text=True) or "没有导入任何内容" in r.get_data(as_text=True)
    with app.app_context():
        assert users.get("a.b") is None


def add_other_township(app):
    with app.app_context():
        villages.create("v3", name="红岩村", township="石门镇", county="平江县", actor="test")
        users.create("cadre3", "cadre", PASSWORD, villages=["v1"], display_name="孙干部")
        users.create("cross", "cadre", PASSWORD, villages=["v1", "v3"], display_name="跨镇干部")
        users.create("far", "cadre", PASSWORD, villages=["v3"], display_name="外镇干部")


@pytest.mark.parametrize("row", [("boss", "大官", "管理员", "", "", ""),
                                 ("other.sup", "督导二", "督导", "v1", "", ""),
                                 ("far.away", "外镇", "驻村干部", "v3", "", ""),
                                 ("half", "一半", "驻村干部", "v1、v3", "", "")])
def test_a_supervisor_importing_beyond_their_villages_gets_403_nothing_written_and_audited(app, row):
    add_other_township(app)
    sup = login(app.test_client(), "super")
    data = sheet_csv([("ok.one", "好", "驻村干部", "v1", "", ""), row])
    r = upload(sup, data)
    assert r.status_code == 403 and "没有权限" in r.get_data(as_text=True)
    r = form_post(sup, "/admin/users/import", {"step": "confirm", "filename": "u.csv",
                                               "data": __import__("base64").b64encode(data).decode()})
    assert r.status_code == 403
    with app.app_context():
        assert users.get("ok.one") is None and users.get(row[0]) is None
        refusals = [e for e in audit.entries(get_store(), user="super") if e["action"] == "forbidden"]
    assert len(refusals) == 2 and refusals[0]["details"]["attempted"] == "user_import"


def test_a_supervisor_imports_cadres_of_their_own_villages(app):
    sup = login(app.test_client(), "super")
    r = upload(sup, sheet_csv([("ok.one", "好", "", "v1", "", "")]))
    assert r.status_code == 200
    r = form_post(sup, "/admin/users/import", confirm_of(r.get_data(as_text=True)))
    assert r.status_code == 200 and len(one_time_logins(r.get_data(as_text=True))) == 1
    with app.app_context():
        assert users.get("ok.one")["role"] == "cadre"


# ---- supervisors manage their own villages' cadres ------------------------------------------------


def test_a_supervisor_sees_and_manages_only_the_cadres_of_their_villages(app):
    add_other_township(app)
    sup = login(app.test_client(), "super")
    page = sup.get("/admin/users").get_data(as_text=True)
    for shown in ("cadre1", "cadre2", "cadre3"):
        assert f'href="/admin/users/{shown}"' in page
    for hidden in ("admin", "super", "cross", "far"):
        assert f'href="/admin/users/{hidden}"' not in page
    nav = re.search(r'<nav class="subnav".*?</nav>', page, re.S).group(0)
    assert "/admin/pairing" in nav and "/admin/roster" in nav and "/admin/users" in nav
    assert "/admin/forms" not in nav and "/admin/backup" not in nav and "/admin/audit" not in nav
    assert sup.get("/admin/forms").status_code == 403 and sup.get("/admin/villages").status_code == 403
    assert sup.get("/admin/roster").status_code == 200
    assert sup.get("/admin/users/cadre1").status_code == 200
    assert sup.get("/admin/users/admin").status_code == 403
    # a reset, a deactivation and an activation of their own cadre
    otp = reset_on_the_web(app, sup)
    assert Api(app.test_client()).login("cadre1", otp).status_code == 200
    assert form_post(sup, "/admin/users/cadre1", {"action": "deactivate"}).status_code == 302
    assert form_post(sup, "/admin/users/cadre1", {"action": "activate"}).status_code == 302
    r = form_post(sup, "/admin/users/cadre1", {"action": "profile", "display_name": "李干部", "role": "cadre",
                                                "villages": ["v1", "v2"], "phone": "", "unit": ""})
    assert r.status_code == 302
    with app.app_context():
        assert users.get("cadre1")["villages"] == ["v1", "v2"]


@pytest.mark.parametrize("target, form", [
    ("admin", {"action": "password", "password": "", "password2": ""}),
    ("admin", {"action": "deactivate"}),
    ("super", {"action": "password", "password": "", "password2": ""}),
    ("cross", {"action": "deactivate"}),
    ("far", {"action": "activate"}),
    ("cadre1", {"action": "profile", "display_name": "李干部", "role": "cadre", "villages": ["v1", "v3"],
                "phone": "", "unit": ""}),
    ("cadre1", {"action": "profile", "display_name": "李干部", "role": "supervisor", "villages": ["v1"],
                "phone": "", "unit": ""}),
])
def test_a_supervisor_touching_anyone_else_gets_403_nothing_written_and_audited(app, target, form):
    add_other_township(app)
    kept = ("password_hash", "active", "role", "villages", "display_name", "session_gen")
    with app.app_context():
        before = {k: users.get(target).get(k) for k in kept}
    sup = login(app.test_client(), "super")
    r = form_post(sup, f"/admin/users/{target}", form)
    assert r.status_code == 403 and "本人负责的村" in r.get_data(as_text=True)
    with app.app_context():
        assert {k: users.get(target).get(k) for k in kept} == before
        refusals = [e for e in audit.entries(get_store(), user="super") if e["action"] == "forbidden"]
    assert len(refusals) == 1 and refusals[0]["target"] == target


def test_a_supervisor_cannot_create_an_admin_by_the_form(app):
    sup = login(app.test_client(), "super")
    r = form_post(sup, "/admin/users", {"username": "sneaky", "role": "admin", "password": "a-long-password"})
    assert r.status_code == 403
    r = form_post(sup, "/admin/users", {"username": "new.cadre", "role": "cadre", "villages": ["v1"]})
    assert r.status_code == 200 and len(one_time_logins(r.get_data(as_text=True))) == 1
    with app.app_context():
        assert users.get("sneaky") is None and users.must_change_password(users.get("new.cadre"))


def test_a_supervisor_pairs_and_rotates_their_cadres_but_no_one_elses(app):
    add_other_township(app)
    sup = login(app.test_client(), "super")
    page = sup.get("/admin/pairing?village=v1").get_data(as_text=True)
    assert "孙干部" in page and "跨镇干部" not in page
    r = form_post(sup, "/admin/pairing?village=v1", {"action": "move", "from_cadre": "cadre1",
                                                      "to_cadre": "cadre3", "move_village": "v1"})
    assert r.status_code == 302
    with app.app_context():
        assert households.get("v1-0001")["cadre_ids"] == ["cadre3"]
    r = form_post(sup, "/admin/pairing?village=v1", {"action": "move", "from_cadre": "cadre3",
                                                      "to_cadre": "cross", "move_village": "v1"})
    assert r.status_code == 403
    r = form_post(sup, "/admin/pairing?village=v1", {"action": "pair", "cadre": "cross",
                                                      "household_ids": ["v1-0002"], "mode": "add"})
    assert r.status_code == 403
    with app.app_context():
        assert households.get("v1-0001")["cadre_ids"] == ["cadre3"]
        assert "cross" not in households.get("v1-0002")["cadre_ids"]


def test_a_supervisor_imports_the_roster_of_their_own_village_only(app):
    add_other_township(app)
    sup = login(app.test_client(), "super")
    roster = "户主姓名,家庭人口,类别\n周大树,4,监测户\n".encode("gbk")
    r = form_post(sup, "/admin/roster", {"village": "v3", "file": (io.BytesIO(roster), "r.csv")},
                  content_type="multipart/form-data")
    assert r.status_code == 400
    r = form_post(sup, "/admin/roster", {"village": "v1", "file": (io.BytesIO(roster), "r.csv")},
                  content_type="multipart/form-data")
    assert r.status_code == 200 and "新增 1" in r.get_data(as_text=True)


# ---- deactivation asks, and hands the households over ------------------------------------------------


def test_deactivating_asks_first_and_hands_the_households_to_another_cadre(app):
    add_other_township(app)
    admin = login(app.test_client(), "admin")
    edit = admin.get("/admin/users/cadre1").get_data(as_text=True)
    assert 'action="/admin/users/cadre1/deactivate"' in edit
    page = admin.get("/admin/users/cadre1/deactivate").get_data(as_text=True)
    assert "确认停用" in page and "3 户" in page
    assert 'value="cadre3"' in page and 'value="cadre2"' not in page and 'value="far"' not in page
    r = form_post(admin, "/admin/users/cadre1", {"action": "deactivate", "handover_to": "cadre2"})
    assert r.status_code == 400  # cadre2 does not work in v1: nothing happens
    with app.app_context():
        assert users.get("cadre1")["active"] and households.get("v1-0001")["cadre_ids"] == ["cadre1"]
    r = form_post(admin, "/admin/users/cadre1", {"action": "deactivate", "handover_to": "cadre3"})
    assert r.status_code == 302
    with app.app_context():
        assert not users.get("cadre1")["active"]
        assert all(households.get(f"v1-000{i}")["cadre_ids"] == ["cadre3"] for i in (1, 2, 3))
        actions = [e["action"] for e in audit.entries(get_store())]
    assert "pairing_move" in actions and "user_deactivate" in actions


def test_the_deactivation_page_in_english_and_for_a_user_with_no_households(app):
    admin = login(app.test_client(), "admin")
    page = admin.get("/admin/users/super/deactivate", headers={"Accept-Language": "en"}).get_data(as_text=True)
    assert "Confirm deactivation" in page and "no paired households" in page
    assert admin.get("/admin/users/nobody/deactivate").status_code == 404


def test_guessing_the_current_password_on_the_change_endpoint_is_slowed_down(app):
    phone = login(app.test_client(), "cadre1")
    answers = [phone.post("/api/v1/account/password", {"current_password": f"guess-{i:04d}",
                                                        "new_password": GOOD_PASSWORD}).status_code
               for i in range(12)]
    assert answers[0] == 400 and answers[-1] == 429
    assert Api(app.test_client()).login("cadre1").status_code in (200, 429)
    with app.app_context():
        assert users.check_password(users.get("cadre1"), PASSWORD)


@pytest.mark.tinydb_only
def test_init_then_init_demo_gives_the_demo_admin_its_printed_password(empty_app):
    runner = empty_app.test_cli_runner()
    assert runner.invoke(args=["init"]).exit_code == 0
    close_app_store(empty_app)
    r = runner.invoke(args=["init", "--demo"])
    assert r.exit_code == 0 and "admin-demo-2026" in r.output, r.output
    api = Api(empty_app.test_client())
    assert api.login("admin", "admin-demo-2026").status_code == 200
    assert api.get("/api/v1/bootstrap").status_code == 200


def test_a_one_time_password_does_not_open_openrosa_basic_auth(app):
    import base64
    admin = login(app.test_client(), "admin")
    otp = reset_on_the_web(app, admin)
    header = {"Authorization": "Basic " + base64.b64encode(f"cadre1:{otp}".encode()).decode()}
    r = app.test_client().get("/openrosa/formList", headers=header)
    assert r.status_code == 403 and "新密码" in r.get_data(as_text=True)
    phone = Api(app.test_client())
    phone.login("cadre1", otp)
    assert phone.post("/api/v1/account/password", {"current_password": otp,
                                                    "new_password": GOOD_PASSWORD}).status_code == 200
    header = {"Authorization": "Basic " + base64.b64encode(f"cadre1:{GOOD_PASSWORD}".encode()).decode()}
    assert app.test_client().get("/openrosa/formList", headers=header).status_code == 200
