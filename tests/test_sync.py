"""The phone API: idempotent ingest by uuid, per-item errors, attachments, scope, bad bodies."""

import hashlib
import json
import threading

from tests.conftest import Api
from tests.helpers import attach, jpeg_bytes, push, visit


def test_a_valid_visit_is_created_then_a_repeat_is_a_duplicate(api):
    api.login("cadre1")
    item = visit(notes="<script>alert(1)</script>")
    r = push(api, item)
    assert r.status_code == 200
    assert r.get_json()["results"] == [{"uuid": item["uuid"], "status": "created", "errors": [],
                                        "incomplete": False}]
    again = push(api, item).get_json()["results"][0]
    assert again["status"] == "duplicate"
    stored = api.get(f"/api/v1/submissions/{item['uuid']}").get_json()
    assert stored["answers"]["notes"] == "<script>alert(1)</script>"  # stored as text
    assert stored["review"]["state"] == "received" and stored["cadre_id"] == "cadre1"
    listed = api.get("/api/v1/submissions?household_id=v1-0001").get_json()["submissions"]
    assert [s["uuid"] for s in listed] == [item["uuid"]]
    page = api.get("/households/v1-0001").get_data(as_text=True)
    assert "<script>alert(1)</script>" not in page


def test_same_uuid_with_other_content_is_rejected_and_changes_nothing(api):
    api.login("cadre1")
    item = visit()
    push(api, item)
    changed = dict(item, answers=dict(item["answers"], present="别人"))
    result = push(api, changed).get_json()["results"][0]
    assert result["status"] == "rejected"
    assert "uuid already used with other content" in json.dumps(result["errors"])
    assert api.get(f"/api/v1/submissions/{item['uuid']}").get_json()["answers"]["present"] == "户主本人"


def test_one_bad_item_never_blocks_the_good_ones(api):
    api.login("cadre1")
    good = visit()
    future = visit(visit_date="2999-01-01")
    wrong_choice = visit(visit_type="by_pigeon")
    unknown_form = dict(visit(), form="nope")
    other_village = visit(household="v2-0001")
    not_uuid = dict(visit(), uuid="123")
    unknown_field = visit(favourite_colour="red")
    missing_required = visit()
    del missing_required["answers"]["present"]
    results = push(api, good, future, wrong_choice, unknown_form, other_village, not_uuid,
                   unknown_field, missing_required, "not an object").get_json()["results"]
    assert [r["status"] for r in results] == ["created"] + ["rejected"] * 8
    fields = [{e["field"] for e in r["errors"]} for r in results[1:8]]
    assert "visit_date" in fields[0] and "visit_type" in fields[1] and "form" in fields[2]
    assert "household_id" in fields[3] and "uuid" in fields[4] and "favourite_colour" in fields[5]
    assert "present" in fields[6]
    assert all(e["message"] for r in results[1:] for e in r["errors"])
    assert len(api.get("/api/v1/submissions?household_id=v1-0001").get_json()["submissions"]) == 1


def test_malformed_bodies_are_clear_json_errors(api):
    api.login("cadre1")
    for body in ("not json", "[]", '{"submissions": 5}', "{}"):
        r = api.client.post("/api/v1/submissions", data=body, content_type="application/json",
                            headers={"X-CSRFToken": api.token})
        assert r.status_code == 400 and r.get_json()["error"] == "bad_body", body
    r = push(api, *[visit() for _ in range(101)])
    assert r.status_code == 413
    big = visit(notes="x" * (5 * 1024 * 1024))
    r = push(api, big)
    assert r.status_code == 413 and r.is_json


def test_not_logged_in_is_401(api):
    api.csrf()
    r = push(api, visit())
    assert r.status_code == 401 and r.get_json()["error"] == "login_required"


def test_concurrent_repeats_of_one_batch_store_it_once(app):
    items = [visit() for _ in range(5)]
    outcomes = []

    def send():
        a = Api(app.test_client())
        a.login("cadre1")
        outcomes.append([r["status"] for r in push(a, *items).get_json()["results"]])

    threads = [threading.Thread(target=send) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    flat = [s for o in outcomes for s in o]
    assert flat.count("created") == 5 and flat.count("duplicate") == 25
    a = Api(app.test_client())
    a.login("cadre1")
    assert len(a.get("/api/v1/submissions?household_id=v1-0001").get_json()["submissions"]) == 5


def test_photo_attachment_arrives_later_and_completes_the_submission(app, api):
    api.login("cadre1")
    photo = jpeg_bytes()
    item = visit(photo_1="photo_1-a.jpg")
    item["attachments"] = [{"name": "photo_1-a.jpg", "sha256": hashlib.sha256(photo).hexdigest(),
                            "size": len(photo), "type": "image/jpeg"}]
    res = push(api, item).get_json()["results"][0]
    assert res["status"] == "created" and res["incomplete"] is True
    stored = api.get(f"/api/v1/submissions/{item['uuid']}").get_json()
    assert stored["complete"] is False and stored["attachments"][0]["received"] is False

    assert attach(api, item["uuid"], "photo_1-a.jpg", photo, "0" * 64).status_code == 400
    exe = b"MZ\x90\x00" + b"\x00" * 100
    assert attach(api, item["uuid"], "photo_1-a.jpg", exe).status_code == 409  # not as declared
    r = attach(api, item["uuid"], "photo_1-a.jpg", photo)
    assert r.status_code == 200 and r.get_json()["complete"] is True
    assert attach(api, item["uuid"], "photo_1-a.jpg", photo).get_json()["status"] == "duplicate"
    stored = api.get(f"/api/v1/submissions/{item['uuid']}").get_json()
    assert stored["complete"] is True and stored["attachments"][0]["received"] is True
    with open(f"{app.config['DATA_DIR']}/attachments/{item['uuid']}/photo_1-a.jpg", "rb") as f:
        assert f.read() == photo


def test_an_exe_declared_as_jpeg_is_refused_by_its_content(api):
    api.login("cadre1")
    exe = b"MZ\x90\x00" + b"\x00" * 100
    item = visit(photo_1="p.jpg")
    item["attachments"] = [{"name": "p.jpg", "sha256": hashlib.sha256(exe).hexdigest(),
                            "size": len(exe), "type": "image/jpeg"}]
    assert push(api, item).get_json()["results"][0]["status"] == "created"
    r = attach(api, item["uuid"], "p.jpg", exe)
    assert r.status_code == 415 and r.get_json()["error"] == "bad_type"


def test_attachment_names_and_owners_are_checked(app, api):
    api.login("cadre1")
    photo = jpeg_bytes()
    item = visit(photo_1="p.jpg")
    item["attachments"] = [{"name": "p.jpg", "sha256": hashlib.sha256(photo).hexdigest(),
                            "size": len(photo), "type": "image/jpeg"}]
    push(api, item)
    assert attach(api, item["uuid"], "..%2Fevil.jpg", photo).status_code in (400, 404)
    assert attach(api, item["uuid"], "other.jpg", photo).status_code == 404
    assert attach(api, "not-a-uuid", "p.jpg", photo).status_code == 404
    other = Api(app.test_client())
    other.login("super")  # can see the village, but it is not their submission
    assert attach(other, item["uuid"], "p.jpg", photo).status_code == 404
    stranger = Api(app.test_client())
    stranger.login("cadre2")
    assert stranger.get(f"/api/v1/submissions/{item['uuid']}").status_code == 404
    bad_decl = visit(photo_1="../../x.jpg")
    bad_decl["attachments"] = [{"name": "../../x.jpg", "sha256": "a" * 64, "size": 10,
                                "type": "image/jpeg"}]
    assert push(api, bad_decl).get_json()["results"][0]["status"] == "rejected"


def test_a_visit_recording_members_updates_the_household(api):
    api.login("cadre1")
    members = [{"name": "张v11", "relation": "户主", "sex": "male", "birth_year": 1970},
               {"name": "张小宝", "relation": "孙子", "sex": "male", "birth_year": 2026}]
    item = visit(family_changes=["birth"], members=members)
    item["base_version"] = 1
    assert push(api, item).get_json()["results"][0]["status"] == "created"
    h = api.get("/api/v1/households/v1-0001").get_json()
    assert [m["name"] for m in h["members"]] == ["张v11", "张小宝"] and h["version"] == 2


def test_bootstrap_and_form_definitions_with_etag(api):
    api.login("cadre1")
    boot = api.get("/api/v1/bootstrap").get_json()
    assert {f["id"] for f in boot["forms"]} >= {"household_visit", "pv_enrollment"}
    assert boot["csrf_token"] and boot["user"]["id"] == "cadre1"
    r = api.get("/api/v1/forms/household_visit")
    assert r.status_code == 200 and r.get_json()["id"] == "household_visit" and r.headers["ETag"]
    r2 = api.get("/api/v1/forms/household_visit", headers={"If-None-Match": r.headers["ETag"]})
    assert r2.status_code == 304
    assert api.get("/api/v1/forms/nope").status_code == 404
    assert api.get("/api/v1/forms/household_visit?version=abc").status_code == 400


def test_phone_pulls_its_own_submissions_since_a_cursor_and_incomplete_ones_are_listed(app, api):
    api.login("cadre1")
    a, b = visit(), visit(photo_1="p.jpg")
    b["attachments"] = [{"name": "p.jpg", "sha256": "a" * 64, "size": 10, "type": "image/jpeg"}]
    push(api, a, b)
    body = api.get("/api/v1/submissions?since=0").get_json()
    assert {s["uuid"] for s in body["submissions"]} == {a["uuid"], b["uuid"]}
    assert all(s["review"]["state"] == "received" for s in body["submissions"])
    assert api.get(f"/api/v1/submissions?since={body['next']}").get_json()["submissions"] == []
    other = Api(app.test_client())
    other.login("super")
    assert other.get("/api/v1/submissions?since=0").get_json()["submissions"] == []  # not theirs
    incomplete = other.get("/api/v1/submissions?incomplete=1").get_json()["submissions"]
    assert [s["uuid"] for s in incomplete] == [b["uuid"]]
    assert api.get("/api/v1/submissions").status_code == 400


def test_a_visit_moves_the_households_last_visit_date_forward_only(api):
    api.login("cadre1")
    push(api, visit(visit_date="2026-05-01"))
    push(api, visit(visit_date="2026-03-01"))
    h = api.get("/api/v1/households/v1-0001").get_json()
    assert h["last_visit_date"] == "2026-05-01" and h["version"] == 1


def test_the_app_shell_is_served_gzipped_with_service_worker_scope(client):
    r = client.get("/app/", headers={"Accept-Encoding": "gzip"})
    assert r.status_code == 200 and r.headers["Content-Encoding"] == "gzip"
    import gzip
    assert b"<html" in gzip.decompress(r.data)
    r = client.get("/app/sw.js")
    assert r.headers["Service-Worker-Allowed"] == "/app/" and "Content-Encoding" not in r.headers
    assert client.get("/app/../server/store.py").status_code == 404
