"""Logging in as a phone and as a browser, CSRF, throttling, roles and scopes."""

import pytest

from tests.conftest import PASSWORD


def test_login_with_json_returns_the_user_and_lasts(api):
    r = api.login("cadre1")
    assert r.status_code == 200
    body = r.get_json()
    assert body["user"]["id"] == "cadre1" and body["user"]["role"] == "cadre"
    assert "password_hash" not in body["user"]
    cookies = r.headers.getlist("Set-Cookie")
    assert any(c.startswith("remember_token=") for c in cookies), cookies
    assert api.get("/api/v1/bootstrap").status_code == 200


def test_wrong_password_is_401_json_and_changes_nothing(api):
    r = api.login("cadre1", "wrong-password")
    assert r.status_code == 401
    assert r.get_json()["error"] == "bad_login"
    assert api.get("/api/v1/bootstrap").status_code == 401


def test_login_without_csrf_token_is_refused(client):
    r = client.post("/login", json={"username": "cadre1", "password": PASSWORD})
    assert r.status_code == 400 and r.get_json()["error"] == "csrf"


def test_state_changing_api_calls_need_the_csrf_token(api, client):
    api.login("cadre1")
    r = client.post("/api/v1/submissions", json={"submissions": []})
    assert r.status_code == 400 and r.get_json()["error"] == "csrf"
    r = client.post("/api/v1/submissions", json={"submissions": []},
                    headers={"X-CSRFToken": "forged"})
    assert r.status_code == 400


def test_repeated_failures_are_throttled_even_with_the_right_password(api):
    for _ in range(5):
        assert api.login("cadre2", "nope-nope").status_code == 401
    r = api.login("cadre2")
    assert r.status_code == 429
    assert r.get_json()["retry_after"] > 0


def test_login_form_page_in_chinese_by_default_and_english_on_request(client):
    r = client.get("/login")
    html = r.get_data(as_text=True)
    assert r.status_code == 200 and 'lang="zh-CN"' in html and "用户名" in html
    assert 'name="username"' in html and 'name="password"' in html and 'type="submit"' in html
    r = client.get("/login", headers={"Accept-Language": "en-US,en;q=0.9"})
    assert "Username" in r.get_data(as_text=True)


def test_browser_login_form_redirects_only_to_local_pages(client):
    token = client.get("/api/v1/csrf").get_json()["csrf_token"]
    r = client.post("/login", data={"username": "cadre1", "password": PASSWORD, "csrf_token": token,
                                    "next": "//evil.example/"})
    assert r.status_code == 302 and r.headers["Location"] == "/households"


def test_logout_ends_the_session(api):
    api.login("cadre1")
    assert api.post("/logout", {}).status_code == 200
    assert api.get("/api/v1/households").status_code == 401


def test_cadre_cannot_use_admin_pages(api):
    api.login("cadre1")
    assert api.get("/admin/users").status_code == 403


def test_user_create_command_and_its_errors(app, runner):
    from server.store import close_app_store
    close_app_store(app)  # the command takes the folder lock itself
    r = runner.invoke(args=["user", "create", "wang.wu", "--role", "cadre", "--village", "v1",
                            "--password-stdin"], input="long-enough-pw\n")
    assert r.exit_code == 0, r.output
    r = runner.invoke(args=["user", "create", "x", "--role", "cadre", "--village", "nowhere",
                            "--password-stdin"], input="short\n")
    assert r.exit_code == 1
    assert "Unknown village" in r.output and "Username" in r.output and "8 characters" in r.output


@pytest.mark.tinydb_only
def test_write_commands_refuse_while_the_server_owns_the_folder(app, runner):
    from server.store import get_store
    with app.app_context():
        get_store()  # the "server" holds the lock
    r = runner.invoke(args=["user", "create", "someone", "--role", "cadre", "--password-stdin"],
                      input="long-enough-pw\n")
    assert r.exit_code != 0
    assert "/admin" in r.output
