"""Issue 9 finding 5: sessions can be revoked, and the account lifecycle (CLI and /admin/users)."""

import re

import pytest

from server.records import audit, users
from server.store import close_app_store, get_store
from tests.conftest import PASSWORD, Api
from tests.helpers import visit

NEW_PASSWORD = "a-new-password-77"


def logged_in(app, username="cadre1", password=PASSWORD):
    api = Api(app.test_client())
    assert api.login(username, password).status_code == 200
    return api


def cookies_of(api):
    return {name: api.client.get_cookie(name).value for name in ("session", "remember_token")
            if api.client.get_cookie(name) is not None}


def replay(app, cookies, only=None):
    """A fresh client holding saved cookies, as a thief who copied them would."""
    client = app.test_client()
    for name, value in cookies.items():
        if only is None or name in only:
            client.set_cookie(name, value)
    return client


def can_sync(client):
    return client.get("/api/v1/households").status_code == 200


# ---- sessions end ---------------------------------------------------------------------------------


def test_the_remember_cookie_alone_keeps_a_phone_logged_in(app):
    """What the revocation tests rely on: a saved remember-me cookie is a login by itself."""
    saved = cookies_of(logged_in(app))
    assert set(saved) == {"session", "remember_token"}
    assert can_sync(replay(app, saved, only={"remember_token"}))
    assert can_sync(replay(app, saved, only={"session"}))


def test_after_logout_neither_the_old_session_nor_the_old_remember_cookie_works(app):
    api = logged_in(app)
    saved = cookies_of(api)
    assert api.post("/logout", {}).status_code == 200
    assert not can_sync(api.client)
    r = replay(app, saved).get("/api/v1/households")
    assert r.status_code == 401 and r.get_json()["error"] == "login_required"
    assert not can_sync(replay(app, saved, only={"session"}))
    assert not can_sync(replay(app, saved, only={"remember_token"}))


def test_logout_on_one_device_leaves_the_others_logged_in(app):
    phone, desktop = logged_in(app), logged_in(app)
    desktop.post("/logout", {})
    assert can_sync(phone.client) and not can_sync(desktop.client)


def test_the_remember_cookie_differs_per_login(app):
    first, second = cookies_of(logged_in(app)), cookies_of(logged_in(app))
    assert first["remember_token"] != second["remember_token"]


def every_cookie_refused(app, saved_sets):
    for saved in saved_sets:
        for only in ({"session"}, {"remember_token"}, None):
            client = replay(app, saved, only)
            r = client.get("/api/v1/households")
            assert r.status_code == 401 and r.get_json()["error"] == "login_required"
            page = client.get("/households")
            assert page.status_code == 302 and page.headers["Location"].startswith("/login")


def test_a_new_password_ends_every_session_of_that_user_at_once(app):
    phone, desktop, other = logged_in(app), logged_in(app), logged_in(app, "cadre2")
    saved = [cookies_of(phone), cookies_of(desktop)]
    with app.app_context():
        doc, errors = users.set_password("cadre1", NEW_PASSWORD, actor="admin")
    assert not errors
    assert not can_sync(phone.client) and not can_sync(desktop.client)
    every_cookie_refused(app, saved)
    assert can_sync(other.client), "another user's session is untouched"
    assert Api(app.test_client()).login("cadre1").status_code == 401
    assert can_sync(logged_in(app, "cadre1", NEW_PASSWORD).client)


def test_deactivation_ends_every_session_and_refuses_login_until_activated(app):
    phone = logged_in(app)
    saved = [cookies_of(phone)]
    with app.app_context():
        assert users.deactivate("cadre1", actor="admin")[1] == []
    every_cookie_refused(app, saved)
    r = Api(app.test_client()).login("cadre1")
    assert r.status_code == 401 and r.get_json()["error"] == "account_inactive"
    with app.app_context():
        assert users.activate("cadre1", actor="admin")[1] == []
    assert can_sync(logged_in(app).client)
    every_cookie_refused(app, saved)  # activating does not bring the old sessions back


def test_new_villages_end_every_session_and_the_next_login_sees_the_new_scope(app):
    phone = logged_in(app)
    saved = [cookies_of(phone)]
    assert phone.get("/api/v1/households/v1-0001").status_code == 200
    with app.app_context():
        assert users.set_villages("cadre1", ["v2"], actor="admin")[1] == []
    every_cookie_refused(app, saved)
    again = logged_in(app)
    assert again.get("/api/v1/households/v1-0001").status_code == 404
    assert again.get("/api/v1/households/v2-0001").status_code == 200


def test_a_profile_change_that_keeps_the_scope_keeps_the_sessions(app):
    phone = logged_in(app)
    with app.app_context():
        doc, errors = users.update("cadre1", {"display_name": "李新名", "phone": "13912345678",
                                              "unit": "县委"}, actor="admin")
    assert not errors and doc["display_name"] == "李新名"
    assert can_sync(phone.client)


def test_a_lapsed_login_answers_401_json_and_the_outbox_is_sent_after_logging_in_again(app):
    """A phone back after more than 60 idle days: 401 JSON (the phone keeps its outbox), never a
    redirect or a lost visit; after logging in, the same push is stored."""
    phone = logged_in(app)
    app.config["FIXED_NOW"] = "2099-01-01T08:00:00+08:00"  # long after the login was last used
    item = visit()
    r = phone.post("/api/v1/submissions", {"submissions": [item]})
    assert r.status_code == 401 and r.get_json()["error"] == "login_required"
    assert phone.login("cadre1").status_code == 200
    r = phone.post("/api/v1/submissions", {"submissions": [item]})
    assert r.status_code == 200 and r.get_json()["results"][0]["status"] == "created"


def test_a_login_in_daily_use_does_not_lapse(app):
    phone = logged_in(app)
    for day in ("2026-02-20", "2026-04-15", "2026-06-10"):  # used every ~55 days
        app.config["FIXED_NOW"] = f"{day}T09:00:00+08:00"
        assert can_sync(phone.client), day


def test_the_store_holds_no_login_token_only_its_hash(app):
    api = logged_in(app)
    remember = api.client.get_cookie("remember_token").value
    token = remember.split("|")[0].split(":")[-1]
    with app.app_context():
        doc = users.get("cadre1")
    assert token and token not in str(doc)
    assert len(doc["logins"]) == 1


# ---- the CLI --------------------------------------------------------------------------------------


@pytest.fixture
def cli(app, runner):
    close_app_store(app)  # the commands take the folder lock themselves
    return runner


def test_cli_set_password_ends_sessions_and_the_new_password_works(app, cli):
    r = cli.invoke(args=["user", "set-password", "cadre1", "--password-stdin"], input=NEW_PASSWORD + "\n")
    assert r.exit_code == 0, r.output
    assert Api(app.test_client()).login("cadre1").status_code == 401
    assert Api(app.test_client()).login("cadre1", NEW_PASSWORD).status_code == 200


def test_cli_set_password_locks_a_lost_phone_out(app, runner):
    phone = logged_in(app)
    saved = [cookies_of(phone)]
    close_app_store(app)  # the phone's server is stopped while the command runs
    r = runner.invoke(args=["user", "set-password", "cadre1", "--password-stdin"], input=NEW_PASSWORD + "\n")
    assert r.exit_code == 0, r.output
    every_cookie_refused(app, saved)


def test_cli_deactivate_activate_and_set_villages(app, cli):
    r = cli.invoke(args=["user", "deactivate", "cadre1"])
    assert r.exit_code == 0, r.output
    assert Api(app.test_client()).login("cadre1").get_json()["error"] == "account_inactive"
    close_app_store(app)
    r = cli.invoke(args=["user", "activate", "cadre1"])
    assert r.exit_code == 0, r.output
    r = cli.invoke(args=["user", "set-villages", "cadre1", "--village", "v1", "--village", "v2"])
    assert r.exit_code == 0, r.output
    api = logged_in(app)
    assert api.get("/api/v1/households/v2-0001").status_code == 200
    with app.app_context():
        actions = [e["action"] for e in audit.entries(get_store(), target="cadre1")]
    assert {"user_deactivate", "user_activate", "user_villages"} <= set(actions)


def test_cli_refuses_bad_input_and_changes_nothing(app, cli):
    r = cli.invoke(args=["user", "set-password", "cadre1", "--password-stdin"], input="short\n")
    assert r.exit_code == 1 and "8 characters" in r.output
    r = cli.invoke(args=["user", "set-villages", "cadre1", "--village", "nowhere"])
    assert r.exit_code == 1 and "Unknown village" in r.output
    r = cli.invoke(args=["user", "deactivate", "nobody"])
    assert r.exit_code == 1 and "No such user" in r.output
    r = cli.invoke(args=["user", "deactivate", "admin"])
    assert r.exit_code == 1 and "administrator" in r.output
    assert Api(app.test_client()).login("cadre1").status_code == 200
    assert Api(app.test_client()).login("admin").status_code == 200


@pytest.mark.tinydb_only  # on PostgreSQL there is no folder lock: test_postgres.py
@pytest.mark.parametrize("args", [["set-password", "cadre1", "--password-stdin"], ["deactivate", "cadre1"],
                                  ["activate", "cadre1"], ["set-villages", "cadre1", "--village", "v1"]])
def test_cli_writing_commands_refuse_while_a_server_runs_and_name_the_page(app, runner, args):
    with app.app_context():
        get_store()  # the "server" holds the folder lock
    r = runner.invoke(args=["user", *args], input=NEW_PASSWORD + "\n")
    assert r.exit_code != 0
    assert "/admin/users" in r.output


# ---- /admin/users -----------------------------------------------------------------------------------


def admin_post(api, path, data):
    return api.client.post(path, data={"csrf_token": api.token, **data})


def test_users_list_links_each_user_to_its_edit_page_and_shows_status(app):
    with app.app_context():
        users.deactivate("cadre2", actor="admin")
    admin = logged_in(app, "admin")
    html = admin.get("/admin/users").get_data(as_text=True)
    for name in ("cadre1", "cadre2", "super", "admin"):
        assert f'href="/admin/users/{name}"' in html
    row = re.search(r'href="/admin/users/cadre2".*?</tr>', html, re.S).group(0)
    assert "已停用" in row
    assert "启用" in re.search(r'href="/admin/users/cadre1".*?</tr>', html, re.S).group(0)


def test_admin_edits_a_profile_and_a_change_of_villages_ends_the_users_sessions(app):
    phone = logged_in(app)
    admin = logged_in(app, "admin")
    r = admin_post(admin, "/admin/users/cadre1", {"action": "profile", "display_name": "李卫",
                                                   "role": "cadre", "villages": ["v1", "v2"],
                                                   "phone": "139 1234 5678", "unit": "县农业农村局"})
    assert r.status_code == 302 and r.headers["Location"] == "/admin/users/cadre1"
    with app.app_context():
        doc = users.get("cadre1")
    assert doc["display_name"] == "李卫" and doc["villages"] == ["v1", "v2"] and doc["phone"] == "13912345678"
    assert not can_sync(phone.client)
    assert can_sync(admin.client)


@pytest.mark.parametrize("field,value,zh,en", [
    ("phone", "12345", "11 位大陆手机号", "11-digit mainland mobile"),
    ("phone", "2381234567８", "11 位大陆手机号", "11-digit mainland mobile"),
    ("villages", ["v1", "atlantis"], "未知的村", "Unknown village"),
    ("role", "emperor", "角色须为", "Role must be"),
    ("display_name", "x" * 51, "姓名最多", "Name: at most"),
])
def test_admin_edit_page_shows_errors_in_both_languages_and_changes_nothing(app, field, value, zh, en):
    admin = logged_in(app, "admin")
    form = {"action": "profile", "display_name": "李干部", "role": "cadre", "villages": ["v1"],
            "phone": "13800138000", "unit": ""}
    form[field] = value
    with app.app_context():
        before = users.get("cadre1")
    r = admin_post(admin, "/admin/users/cadre1", form)
    assert r.status_code == 400 and zh in r.get_data(as_text=True)
    r = admin.client.post("/admin/users/cadre1", data={"csrf_token": admin.token, **form},
                          headers={"Accept-Language": "en"})
    assert r.status_code == 400 and en in r.get_data(as_text=True)
    with app.app_context():
        assert users.get("cadre1") == before


def test_admin_resets_a_password_and_deactivates_and_activates_on_the_page(app):
    phone = logged_in(app)
    admin = logged_in(app, "admin")
    r = admin_post(admin, "/admin/users/cadre1", {"action": "password", "password": NEW_PASSWORD,
                                                   "password2": "something-else"})
    assert r.status_code == 400 and "两次输入的密码不一致" in r.get_data(as_text=True)
    assert can_sync(phone.client)
    r = admin_post(admin, "/admin/users/cadre1", {"action": "password", "password": NEW_PASSWORD,
                                                   "password2": NEW_PASSWORD})
    assert r.status_code == 302
    assert not can_sync(phone.client)
    assert Api(app.test_client()).login("cadre1", NEW_PASSWORD).status_code == 200
    assert admin_post(admin, "/admin/users/cadre1", {"action": "deactivate"}).status_code == 302
    assert Api(app.test_client()).login("cadre1", NEW_PASSWORD).status_code == 401
    page = admin.get("/admin/users/cadre1").get_data(as_text=True)
    assert "启用账号" in page
    assert admin_post(admin, "/admin/users/cadre1", {"action": "activate"}).status_code == 302
    assert Api(app.test_client()).login("cadre1", NEW_PASSWORD).status_code == 200


def test_an_admin_who_resets_their_own_password_stays_logged_in_here_only(app):
    admin, other_device = logged_in(app, "admin"), logged_in(app, "admin")
    r = admin_post(admin, "/admin/users/admin", {"action": "password", "password": NEW_PASSWORD,
                                                  "password2": NEW_PASSWORD})
    assert r.status_code == 302
    assert admin.get("/admin/users").status_code == 200
    assert not can_sync(other_device.client)


def test_an_admin_cannot_deactivate_themselves_nor_the_last_admin(app):
    admin = logged_in(app, "admin")
    r = admin_post(admin, "/admin/users/admin", {"action": "deactivate"})
    assert r.status_code == 400
    with app.app_context():
        assert users.get("admin")["active"] is True
    r = admin_post(admin, "/admin/users/admin", {"action": "profile", "display_name": "管理员",
                                                  "role": "cadre", "villages": [], "phone": "", "unit": ""})
    assert r.status_code == 400 and "管理员" in r.get_data(as_text=True)


def test_edit_pages_are_for_admins_only_and_404_for_unknown_users(app):
    cadre = logged_in(app)
    assert cadre.get("/admin/users/cadre1").status_code == 403
    assert admin_post(cadre, "/admin/users/cadre1", {"action": "deactivate"}).status_code == 403
    admin = logged_in(app, "admin")
    assert admin.get("/admin/users/nobody").status_code == 404


def test_creating_a_user_checks_the_phone(app):
    admin = logged_in(app, "admin")
    r = admin_post(admin, "/admin/users", {"username": "zhao.liu", "role": "cadre", "password": PASSWORD,
                                            "phone": "110", "villages": ["v1"]})
    assert r.status_code == 400 and "11 位大陆手机号" in r.get_data(as_text=True)
    with app.app_context():
        assert users.get("zhao.liu") is None
