"""Requests that used to break the server (issue 9, findings 1-3): each is refused with a clear
JSON error, changes nothing, and every other write goes on."""

import errno
import json

import pytest

from server.records.layout import LAYOUT
from server.records import households
from server.store import Store, UnstorableValue
from tests.helpers import login, visit_item


def put_household(api, hid, body, raw=None):
    data = raw if raw is not None else json.dumps(body)
    return api.client.put(f"/api/v1/households/{hid}", data=data, content_type="application/json",
                          headers={"X-CSRFToken": api.token})


# ---- finding 1: one request stopped all writes ---------------------------------------------------


def test_a_lone_surrogate_is_refused_and_later_writes_go_on(app, api):
    api.login("cadre1")
    # json.dumps writes "\ud800" as an escape: the raw body is valid UTF-8 with a lone surrogate
    r = put_household(api, "v1-0001", {"changes": {"head_name": "a\ud800"}})
    assert r.status_code == 400 and r.get_json()["error"] == "bad_body"
    r = put_household(api, "v1-0001", {"changes": {"head_name": "李四"}, "base_version": 1})
    assert r.status_code == 200 and r.get_json()["household"]["head_name"] == "李四"
    r = api.post("/api/v1/submissions", {"submissions": [visit_item()]})
    assert r.get_json()["results"][0]["status"] == "created"


def test_the_store_refuses_unstorable_documents_and_keeps_writing(tmp_path):
    with Store(str(tmp_path / "d"), layout=LAYOUT, snapshot_every=0) as store:
        for bad in ({"id": "x", "name": "a\ud800"}, {"id": "x", "n": float("nan")},
                    {"id": "x", "n": float("inf")}, {"id": "x", "o": object()}):
            with pytest.raises(UnstorableValue):
                store.write(lambda tx, bad=bad: (tx.put("v1", "households", {"id": "ok-before"}),
                                                 tx.put("v1", "households", bad)))
            # nothing of the failed write is readable, not even its first document
            assert store.get("v1", "households", "ok-before") is None
            assert store.get("v1", "households", "x") is None
        store.write(lambda tx: tx.put("v1", "households", {"id": "fine"}))
        assert store.get("v1", "households", "fine")["id"] == "fine"
    with Store(str(tmp_path / "d"), layout=LAYOUT, snapshot_every=0) as store:  # and the journal replays cleanly
        assert store.get("v1", "households", "fine") is not None
        assert store.get("v1", "households", "x") is None


class FullDisk:
    """Stands in for the store's journal file (a test's hook, not the store's): every append fails
    as on a full disk."""
    closed = False

    def write(self, data):
        raise OSError(errno.ENOSPC, "No space left on device")

    def flush(self):
        pass

    def close(self):
        self.closed = True


def fill_the_disk(store, monkeypatch):
    """From now on every journal append fails with ENOSPC, and no new journal can be started."""
    monkeypatch.setattr(store, "_journal", FullDisk())

    def no_room(_no):
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(store, "_start_journal", no_room)


def test_a_failed_fsync_leaves_memory_as_it_was(tmp_path, monkeypatch):
    with Store(str(tmp_path / "d"), layout=LAYOUT, snapshot_every=0) as store:
        store.write(lambda tx: tx.put("v1", "households", {"id": "h", "v": 1}))
        with monkeypatch.context() as m:
            fill_the_disk(store, m)
            with pytest.raises(OSError):
                store.write(lambda tx: tx.put("v1", "households", {"id": "h", "v": 2}))
        assert store.get("v1", "households", "h")["v"] == 1  # not durable, so not readable
        store.write(lambda tx: tx.put("v1", "households", {"id": "h", "v": 3}))
    with Store(str(tmp_path / "d"), layout=LAYOUT, snapshot_every=0) as store:
        assert store.get("v1", "households", "h")["v"] == 3


@pytest.mark.tinydb_only
def test_a_full_disk_answers_503_storage_full_and_loses_nothing_acknowledged(app, api, monkeypatch):
    """It answered 500: a phone took it for a refusal of the visit. Now 503 storage_full with
    Retry-After (the phone keeps the visit and retries), and every push acknowledged before and
    after is there after a restart."""
    from server.store import close_app_store, get_store
    from tests.helpers import visit
    api.login("cadre1")
    before, lost, after = visit(), visit("v1-0002"), visit("v1-0003")
    assert api.post("/api/v1/submissions", {"submissions": [before]}).status_code == 200
    store = get_store(app)
    with monkeypatch.context() as m:
        fill_the_disk(store, m)
        for _ in range(2):                                   # and it stays so while the disk is full
            r = api.post("/api/v1/submissions", {"submissions": [lost]})
            assert r.status_code == 503, r.get_json()
            body = r.get_json()
            assert body["error"] == "storage_full" and int(r.headers["Retry-After"]) > 0
            assert "磁盘已满" in body["message_zh"] and "disk is full" in body["message_en"]
        assert api.get(f"/api/v1/submissions/{lost['uuid']}").status_code == 404
    # room again: the retry and the next push go through
    assert api.post("/api/v1/submissions", {"submissions": [lost, after]}).get_json()["results"][0]["status"] == "created"
    close_app_store(app)
    for item in (before, lost, after):
        assert api.get(f"/api/v1/submissions/{item['uuid']}").status_code == 200


def test_a_photo_that_finds_no_room_answers_503_and_is_taken_once_there_is(app, api, monkeypatch):
    import hashlib

    from server.records import attachments
    from tests.helpers import jpeg_bytes, visit
    api.login("cadre1")
    photo = jpeg_bytes()
    item = visit(photo_1="p.jpg")
    item["attachments"] = [{"name": "p.jpg", "sha256": hashlib.sha256(photo).hexdigest(),
                            "size": len(photo), "type": "image/jpeg"}]
    api.post("/api/v1/submissions", {"submissions": [item]})
    url = f"/api/v1/submissions/{item['uuid']}/attachments/p.jpg"
    headers = {"X-Content-SHA256": hashlib.sha256(photo).hexdigest()}
    real = attachments.write_atomic

    def no_room(path, data, **kw):
        raise OSError(errno.ENOSPC, "No space left on device", path)
    with monkeypatch.context() as m:
        m.setattr(attachments, "write_atomic", no_room)
        r = api.put(url, data=photo, headers=dict(headers))
        assert r.status_code == 503 and r.get_json()["error"] == "storage_full"
        assert int(r.headers["Retry-After"]) > 0
    assert api.get(f"/api/v1/submissions/{item['uuid']}").get_json()["complete"] is False
    assert attachments.write_atomic is real
    r = api.put(url, data=photo, headers=dict(headers))
    assert r.status_code == 200 and r.get_json()["complete"] is True
    from server.core import thumbnails                 # and a preview that finds no room
    with monkeypatch.context() as m:
        def no_room_for_previews(*args, **kwargs):
            raise OSError(errno.ENOSPC, "No space left on device")
        m.setattr(thumbnails, "atomic_file", no_room_for_previews)
        r = api.get(f"{url}?thumb=1")
        assert r.status_code == 503 and r.get_json()["error"] == "storage_full"
    assert api.get(f"{url}?thumb=1").status_code == 200


def test_an_exception_in_a_write_function_fails_only_that_write(tmp_path):
    with Store(str(tmp_path / "d"), layout=LAYOUT, snapshot_every=0) as store:
        def boom(tx):
            tx.put("v1", "households", {"id": "half"})
            raise RuntimeError("a bug in a write function")
        with pytest.raises(RuntimeError):
            store.write(boom)
        assert store.get("v1", "households", "half") is None
        assert store.write(lambda tx: tx.put("v1", "households", {"id": "next"}))["id"] == "next"


# ---- finding 2: NaN poisoned a village, an 11 MB value reached every phone -----------------------


@pytest.mark.parametrize("raw", [
    '{"changes": {"pv_status": {"stage": "installed", "capacity_kw": NaN}}}',
    '{"changes": {"pv_status": {"stage": "installed", "capacity_kw": Infinity}}}',
    '{"changes": {"pv_status": {"stage": "installed", "capacity_kw": -Infinity}}}',
    '{"changes": {"pv_status": {"stage": "installed", "capacity_kw": 1e400}}}',
])
def test_nan_and_infinity_are_refused(api, raw):
    api.login("cadre1")
    r = put_household(api, "v1-0001", None, raw=raw)
    assert r.status_code == 400 and r.get_json()["error"] == "bad_body"
    feed = api.get("/api/v1/households?since=0").get_data(as_text=True)
    assert "NaN" not in feed and "Infinity" not in feed
    json.loads(feed, parse_constant=lambda c: pytest.fail(f"{c} in the feed"))


@pytest.mark.parametrize("pv_status,field", [
    ({"stage": "installed", "capacity_kw": 5000}, "pv_status"),           # out of bounds
    ({"stage": "installed", "capacity_kw": "9"}, "pv_status"),            # wrong type
    ({"stage": "装好了", "capacity_kw": 9}, "pv_status"),                  # not a stage code
    ({"stage": "installed", "notes": "x" * 100}, "pv_status"),            # unknown key
    ("installed", "pv_status"),
])
def test_pv_status_is_checked_against_its_schema(api, pv_status, field):
    api.login("cadre1")
    r = put_household(api, "v1-0001", {"changes": {"pv_status": pv_status}})
    assert r.status_code == 400
    assert [e["field"] for e in r.get_json()["errors"]] == [field]
    assert api.get("/api/v1/households/v1-0001").get_json()["version"] == 1


def test_a_huge_value_never_reaches_the_store(api):
    api.login("cadre1")
    big = "x" * (11 * 1024 * 1024)
    r = put_household(api, "v1-0001", {"changes": {"address": big}})
    assert r.status_code == 413 and r.get_json()["error"] == "too_large"
    r = put_household(api, "v1-0001", {"changes": {"address": "x" * 201}})
    assert r.status_code == 400 and r.get_json()["errors"][0]["field"] == "address"
    assert api.get("/api/v1/households/v1-0001").get_json()["address"] == "1号"


def test_a_valid_pv_status_is_stored(api):
    api.login("cadre1")
    status = {"stage": "installed", "capacity_kw": 8.5, "expected_kwh_year": 9350,
              "funding_mode": "subsidised"}
    r = put_household(api, "v1-0001", {"changes": {"pv_status": status}, "base_version": 1})
    assert r.status_code == 200
    assert api.get("/api/v1/households/v1-0001").get_json()["pv_status"]["capacity_kw"] == 8.5


# ---- finding 3: deep nesting, "²", created_at, names ending in a newline -----------------------------


def test_deeply_nested_json_is_a_clear_400(api):
    api.login("cadre1")
    for raw in ("[" * 5000 + "]" * 5000, '{"submissions": ' + "[" * 100 + "]" * 100 + "}",
                '{"changes": ' + '{"a":' * 3000 + "1" + "}" * 3000 + "}"):
        for url in ("/api/v1/submissions", "/api/v1/households/v1-0001"):
            method = api.client.put if "households" in url else api.client.post
            r = method(url, data=raw, content_type="application/json", headers={"X-CSRFToken": api.token})
            assert r.status_code == 400 and r.is_json, (url, raw[:30])


@pytest.mark.parametrize("url", [
    "/api/v1/forms/household_visit?version=²", "/api/v1/forms/household_visit?version=١",
    "/api/v1/households?since=²", "/api/v1/households?limit=³", "/api/v1/submissions?since=²",
    "/api/v1/households?since=99999999999999999999999999", "/households?page=²",
])
def test_unicode_digits_in_query_strings_are_a_400_not_a_500(api, url):
    api.login("cadre1")
    r = api.get(url)
    assert r.status_code == 400, r.get_data(as_text=True)[:200]


def test_unicode_digits_in_form_posts_and_bodies(api):
    api.login("cadre1")
    r = put_household(api, "v1-0001", {"changes": {"head_name": "李四"}, "base_version": "²"})
    assert r.status_code == 400
    token = api.token
    r = api.client.post("/households/v1-0001/edit", data={
        "csrf_token": token, "head_name": "李四", "base_version": "²", "population": "³",
        "members.0.name": "李四", "members.0.birth_year": "１９７０"})
    assert r.status_code == 400 and "须为" in r.get_data(as_text=True)
    assert api.get("/api/v1/households/v1-0001").get_json()["version"] == 1


@pytest.mark.parametrize("created_at", ["9999-99-99", "2026-13-45T10:00:00", "<b>now</b>",
                                        "2026-05-04", "1970-01-01T00:00:00Z", "2126-05-04T10:00:00+08:00",
                                        "2026-05-04T10:00:00+08:00\n"])
def test_created_at_must_be_a_sane_iso_datetime(api, created_at):
    api.login("cadre1")
    item = dict(visit_item(), created_at=created_at)
    result = api.post("/api/v1/submissions", {"submissions": [item]}).get_json()["results"][0]
    assert result["status"] == "rejected"
    assert [e["field"] for e in result["errors"]] == ["created_at"]


def test_an_attachment_name_may_not_end_in_a_newline(api):
    api.login("cadre1")
    item = visit_item(visit_type="home", photo_1="p.jpg\n")
    item["attachments"] = [{"name": "p.jpg\n", "sha256": "0" * 64, "size": 10, "type": "image/jpeg"}]
    result = api.post("/api/v1/submissions", {"submissions": [item]}).get_json()["results"][0]
    assert result["status"] == "rejected"
    r = api.put(f"/api/v1/submissions/{item['uuid']}/attachments/p.jpg%0A", data=b"x")
    assert r.status_code in (400, 404) and r.is_json


def test_error_replies_do_not_grow_with_what_was_sent(api):
    api.login("cadre1")
    answers = {f"k{i}": 0 for i in range(300_000)}
    item = visit_item()
    item["answers"].update(answers)
    body = json.dumps({"submissions": [item]})
    assert len(body) < 4 * 1024 * 1024
    r = api.client.post("/api/v1/submissions", data=body, content_type="application/json",
                        headers={"X-CSRFToken": api.token})
    assert r.status_code == 200
    errors = r.get_json()["results"][0]["errors"]
    assert len(errors) <= 51 and len(r.get_data()) < 50_000
    assert "more errors" in errors[-1]["message_en"]


def test_households_owner_refuses_what_its_schema_does_not_allow():
    clean, errors = households.clean_changes({"population": float("nan"), "members": [{"name": ""}],
                                              "category": "rich", "head_name": "\x00"})
    assert {e["field"] for e in errors} == {"population", "members", "category", "head_name"}


@pytest.mark.parametrize("path", ["/admin/users/%00", "/admin/villages/%00", "/admin/users/a%00b",
                                  "/villages/%00/print", "/households/%00", "/api/v1/households/v1-%00",
                                  "/api/v1/submissions/%00", "/households/%00/profile.pdf", "/review/%00"])
def test_a_nul_in_a_path_is_a_404_on_either_store_never_a_500(app, path):
    """PostgreSQL cannot hold a NUL in text: a %00 in an admin path answered 500 there."""
    admin = login(app.test_client(), "admin")
    assert admin.get(path).status_code in (400, 404)
