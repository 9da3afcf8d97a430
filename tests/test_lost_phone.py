"""A lost phone gives nothing away (issue 24, item 4), server side: the app PIN setting in the
bootstrap, device tokens and the erase a deactivation may ask for (the last push, the "phone
erased" audit entry), and exports that hold only what is the caller's own."""

import hashlib
import io
import zipfile

from openpyxl import load_workbook

from server.records import audit, households, users
from server.store import close_app_store, get_store
from tests.helpers import jpeg_bytes, login, push, visit2

PASSWORD = "correct-horse-42"


def add_cadre(app, name="cadre3", village="v1", pair=("v1-0003",)):
    with app.app_context():
        users.create(name, "cadre", PASSWORD, villages=[village], display_name="孙干部")
        if pair:
            households.pair_many("test", list(pair), name, replace=True)


def rows(api, url, sheet):
    r = api.get(url)
    assert r.status_code == 200, r.get_data(as_text=True)[:300]
    table = [[c.value for c in row] for row in load_workbook(io.BytesIO(r.data))[sheet].iter_rows()]
    return [dict(zip(table[1], row)) for row in table[2:]]


# ---- exports: a cadre takes away only their own ----------------------------------------------------


def test_a_cadre_exports_only_own_visits_and_paired_households(app):
    add_cadre(app)
    cadre1, cadre3 = login(app.test_client(), "cadre1"), login(app.test_client(), "cadre3")
    mine = visit2("v1-0001", visit_date="2026-05-02", risk="yes", risk_reason="户主住院")
    theirs = visit2("v1-0001", visit_date="2026-05-03", risk="yes", risk_reason="欠债三万")
    assert push(cadre1, mine).get_json()["results"][0]["status"] == "created"
    assert push(cadre3, theirs).get_json()["results"][0]["status"] == "created"
    url = "/exports/submissions.xlsx?form=household_visit"
    assert [r["uuid"] for r in rows(cadre1, url, "submissions")] == [mine["uuid"]]
    assert [r["uuid"] for r in rows(cadre3, url + "&village=v1", "submissions")] == [theirs["uuid"]]
    # asking for the other cadre's visits by name gives nothing either
    assert rows(cadre1, url + "&cadre=cadre3", "submissions") == []
    supervisor = login(app.test_client(), "super")
    assert sorted(r["uuid"] for r in rows(supervisor, url, "submissions")) == sorted([mine["uuid"], theirs["uuid"]])
    # the CSV zip is the same book
    data = cadre1.get("/exports/submissions.zip?form=household_visit").data
    csv_text = zipfile.ZipFile(io.BytesIO(data)).read("submissions.csv").decode("utf-8-sig")
    assert mine["uuid"] in csv_text and theirs["uuid"] not in csv_text and "欠债三万" not in csv_text
    # households: only the ones paired with the cadre
    assert sorted(r["id"] for r in rows(cadre1, "/exports/households.xlsx", "households")) == ["v1-0001", "v1-0002"]
    assert [r["id"] for r in rows(cadre3, "/exports/households.xlsx", "households")] == ["v1-0003"]
    assert [r["household_id"] for r in rows(cadre3, "/exports/households.xlsx", "members")] == ["v1-0003"]
    assert len(rows(supervisor, "/exports/households.xlsx?village=v1", "households")) == 3


def test_a_cadre_attachments_zip_holds_only_own_photos(app):
    add_cadre(app)
    cadre1, cadre3 = login(app.test_client(), "cadre1"), login(app.test_client(), "cadre3")
    sent = {}
    for api, name, hid in ((cadre1, "mine.jpg", "v1-0001"), (cadre3, "theirs.jpg", "v1-0002")):
        photo = jpeg_bytes()
        item = visit2(hid, visit_date="2026-05-03", photo_1=name)
        item["attachments"] = [{"name": name, "sha256": hashlib.sha256(photo).hexdigest(),
                                "size": len(photo), "type": "image/jpeg"}]
        assert push(api, item).get_json()["results"][0]["status"] == "created"
        assert api.put(f"/api/v1/submissions/{item['uuid']}/attachments/{name}", data=photo,
                       headers={"X-Content-SHA256": hashlib.sha256(photo).hexdigest()}).status_code == 200
        sent[name] = item["uuid"]

    def names(api):
        r = api.get("/exports/attachments.zip?form=household_visit")
        assert r.status_code == 200
        return zipfile.ZipFile(io.BytesIO(r.data)).namelist()
    assert names(cadre1) == [f"v1-0001/2026-05-03-{sent['mine.jpg']}-mine.jpg"]
    assert names(cadre3) == [f"v1-0002/2026-05-03-{sent['theirs.jpg']}-theirs.jpg"]
    assert len(names(login(app.test_client(), "super"))) == 2


# ---- the app PIN setting ------------------------------------------------------------------------------


def test_bootstrap_says_whether_the_county_requires_an_app_pin(app, api):
    api.login("cadre1")
    lock = api.get("/api/v1/bootstrap").get_json()["settings"]["phone_lock"]
    assert lock == {"required": False, "idle_minutes": 5, "wrong_pins": 10}
    app.config.update(PHONE_LOCK=True, PHONE_LOCK_IDLE_MINUTES=0.5)
    lock = api.get("/api/v1/bootstrap").get_json()["settings"]["phone_lock"]
    assert lock == {"required": True, "idle_minutes": 0.5, "wrong_pins": 10}


def test_the_pin_setting_is_read_from_the_environment(tmp_path, monkeypatch):
    from server import create_app
    from tests.helpers import app_config
    monkeypatch.setenv("JIEDUI_PHONE_LOCK", "1")
    monkeypatch.setenv("JIEDUI_PHONE_LOCK_IDLE_MINUTES", "2")
    app = create_app(app_config(tmp_path / "data"))
    assert app.config["PHONE_LOCK"] is True and app.config["PHONE_LOCK_IDLE_MINUTES"] == 2


# ---- device tokens and the erase ------------------------------------------------------------------


def register(api):
    r = api.post("/api/v1/device", {})
    assert r.status_code == 200
    return r.get_json()["token"]


def test_a_device_learns_of_an_erase_only_when_an_admin_asks_for_it(app, api, client):
    api.login("cadre1")
    token = register(api)
    other = register(login(app.test_client(), "cadre2"))
    anonymous = app.test_client()
    assert anonymous.get(f"/api/v1/device/{token}/status").get_json() == {"erase": False}
    # a plain deactivation ends the sessions but asks no erase
    admin = login(app.test_client(), "admin")
    assert admin.client.post("/admin/users/cadre1", data={"action": "deactivate", "csrf_token": admin.csrf()}).status_code == 302
    assert anonymous.get(f"/api/v1/device/{token}/status").get_json() == {"erase": False}
    assert api.get("/api/v1/bootstrap").status_code == 401
    admin.client.post("/admin/users/cadre1", data={"action": "activate", "csrf_token": admin.csrf()})
    r = admin.client.post("/admin/users/cadre1", data={"action": "deactivate", "erase_phones": "1",
                                                       "csrf_token": admin.csrf()}, follow_redirects=True)
    assert "清除" in r.get_data(as_text=True)
    assert anonymous.get(f"/api/v1/device/{token}/status").get_json() == {"erase": True}
    # another user's phone, an unknown token and a guessed one are never told to erase
    assert anonymous.get(f"/api/v1/device/{other}/status").get_json() == {"erase": False}
    assert anonymous.get("/api/v1/device/" + "x" * 43 + "/status").get_json() == {"erase": False}
    assert anonymous.get("/api/v1/device/short/status").get_json() == {"erase": False}
    # nobody can confirm an erase that was not asked for
    assert anonymous.post(f"/api/v1/device/{other}/erased").status_code == 404


def test_an_erasing_phone_sends_its_last_visits_then_the_audit_says_phone_erased(app, api, runner):
    api.login("cadre1")
    token = register(api)
    item = visit2("v1-0001", visit_date="2026-05-04", notes="最后一次走访")
    photo = jpeg_bytes()
    item["answers"]["photo_1"] = "last.jpg"
    item["attachments"] = [{"name": "last.jpg", "sha256": hashlib.sha256(photo).hexdigest(),
                            "size": len(photo), "type": "image/jpeg"}]
    anonymous = app.test_client()
    # before any erase is asked, the token carries no push
    assert anonymous.post(f"/api/v1/device/{token}/submissions", json={"submissions": [item]}).status_code == 404
    close_app_store(app)  # the command takes the folder lock itself
    result = runner.invoke(args=["user", "deactivate", "cadre1", "--erase-phones"])
    assert result.exit_code == 0, result.output
    assert "erase" in result.output
    assert api.post("/api/v1/submissions", {"submissions": [item]}).status_code == 401
    r = anonymous.post(f"/api/v1/device/{token}/submissions", json={"submissions": [item]})
    assert r.status_code == 200, r.get_data(as_text=True)
    assert r.get_json()["results"][0]["status"] == "created"
    r = anonymous.put(f"/api/v1/device/{token}/submissions/{item['uuid']}/attachments/last.jpg", data=photo,
                      headers={"X-Content-SHA256": hashlib.sha256(photo).hexdigest()})
    assert r.status_code == 200, r.get_data(as_text=True)
    supervisor = login(app.test_client(), "super")
    stored = supervisor.get(f"/api/v1/submissions/{item['uuid']}").get_json()
    assert stored["cadre_id"] == "cadre1" and stored["attachments"][0]["received"] is True
    # the same checks as any push: a household out of scope is refused
    stray = visit2("v2-0001", visit_date="2026-05-04")
    r = anonymous.post(f"/api/v1/device/{token}/submissions", json={"submissions": [stray]})
    assert r.get_json()["results"][0]["status"] == "rejected"
    assert anonymous.post(f"/api/v1/device/{token}/erased").get_json() == {"ok": True}
    with app.app_context():
        entries = audit.entries(get_store(), action="phone_erased")
    assert [(e["user"], e["target"]) for e in entries] == [("cadre1", "cadre1")]
    # the token is spent: no more pushes, no second confirmation, and no erase asked of it again
    assert anonymous.post(f"/api/v1/device/{token}/submissions", json={"submissions": [stray]}).status_code == 404
    assert anonymous.post(f"/api/v1/device/{token}/erased").status_code == 404
    assert anonymous.get(f"/api/v1/device/{token}/status").get_json() == {"erase": False}
    audit_page = login(app.test_client(), "admin").get("/admin/audit?action=phone_erased")
    assert audit_page.get_data(as_text=True).count('<td data-label="操作">手机已清除</td>') == 1


def test_device_tokens_survive_a_password_change_and_activation_cancels_the_erase(app, api, runner):
    api.login("cadre1")
    token = register(api)
    anonymous = app.test_client()
    close_app_store(app)
    assert runner.invoke(args=["user", "deactivate", "cadre1", "--erase-phones"]).exit_code == 0
    assert anonymous.get(f"/api/v1/device/{token}/status").get_json() == {"erase": True}
    close_app_store(app)
    assert runner.invoke(args=["user", "activate", "cadre1"]).exit_code == 0
    assert anonymous.get(f"/api/v1/device/{token}/status").get_json() == {"erase": False}


def test_registering_a_device_needs_a_login_and_csrf(app, client):
    assert client.post("/api/v1/device").status_code in (400, 401)
    assert client.get("/api/v1/device").status_code == 405
