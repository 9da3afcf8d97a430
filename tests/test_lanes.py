"""Bounded work (issue 24 #3): exports and previews run in lanes like prints, a few at once in all
and one or two per user; past that 503 `busy` with Retry-After, and the rest of the server keeps
answering. The attachments ZIP is made as it is sent, with no temporary copy."""

import hashlib
import io
import os
import queue
import threading
import zipfile

import pytest

from server.core import thumbnails
from server.services import sheets
from server.web import lanes
from tests.conftest import PASSWORD
from tests.live import Client, fetch, seed, server_behind_gate
from tests.helpers import jpeg_bytes, login, push, visit

EXPORT = "/exports/submissions.xlsx?form=household_visit"
JSON = {"Accept": "application/json"}


def test_a_lane_counts_per_user_and_in_all():
    lane = lanes.Lane("export", 2, 1)
    a = lane.enter("a")
    with pytest.raises(lanes.Problem) as busy:
        lane.enter("a")                                   # one per user
    assert busy.value.status == 503 and busy.value.extra["retry_after"] > 0
    b = lane.enter("b")
    with pytest.raises(lanes.Problem):
        lane.enter("c")                                   # two in all
    a()
    a()                                                   # releasing twice frees one slot only
    assert lane.inside == 1
    c = lane.enter("c")
    b(), c()
    assert lane.inside == 0


def test_a_lane_lets_a_few_wait_and_refuses_the_rest_at_once():
    lane = lanes.Lane("preview", 1, 1, max_waiting=1, wait=30)
    a = lane.enter("a")
    got = queue.Queue()
    waiter = threading.Thread(target=lambda: got.put(lane.enter("b")))
    waiter.start()
    assert lane.wait_for_waiters(1, timeout=30)
    with pytest.raises(lanes.Problem):
        lane.enter("c")                                   # the waiting room is full: at once
    a()
    waiter.join(30)
    got.get(timeout=1)()
    assert lane.inside == 0 and lane.waiting == 0


class Held:
    """Calls of `module.name` wait inside their lane until released: `entered` counts them in."""

    def __init__(self, monkeypatch, module, name):
        self.entered = threading.Semaphore(0)
        self.go = threading.Event()
        real = getattr(module, name)

        def held(*args, **kwargs):
            self.entered.release()
            self.go.wait(60)
            return real(*args, **kwargs)
        monkeypatch.setattr(module, name, held)


def test_exports_past_the_lane_answer_busy_at_once(app, monkeypatch):
    app.config.update(EXPORT_LANE=2, EXPORT_LANE_PER_USER=1)
    held = Held(monkeypatch, sheets, "write_submissions")
    apis = {name: login(app.test_client(), name) for name in ("super", "admin", "cadre1")}
    answers = queue.Queue()

    def export(name):
        answers.put((name, apis[name].get(EXPORT)))
    first = threading.Thread(target=export, args=("super",))
    first.start()
    assert held.entered.acquire(timeout=30)               # super's export is inside
    r = login(app.test_client(), "super").get(EXPORT, headers=JSON)   # super again, elsewhere
    assert r.status_code == 503 and r.get_json()["error"] == "busy"
    assert int(r.headers["Retry-After"]) > 0 and "服务器正忙" in r.get_json()["message_zh"]
    second = threading.Thread(target=export, args=("admin",))
    second.start()
    assert held.entered.acquire(timeout=30)               # admin's is inside: the lane is full
    r = apis["cadre1"].get(EXPORT)
    assert r.status_code == 503 and int(r.headers["Retry-After"]) > 0      # two in all
    assert push(apis["cadre1"], visit()).get_json()["results"][0]["status"] == "created"
    held.go.set()
    first.join(30), second.join(30)
    done = dict(answers.get(timeout=1) for _ in range(2))
    assert done["super"].status_code == done["admin"].status_code == 200
    assert lanes.get("export", app).inside == 0
    assert apis["cadre1"].get(EXPORT).status_code == 200  # and the lane is free again


def test_the_attachments_zip_streams_and_frees_its_slot(app, monkeypatch):
    cadre = login(app.test_client(), "cadre1")
    photo = jpeg_bytes()
    item = visit(photo_1="p1.jpg")
    item["attachments"] = [{"name": "p1.jpg", "sha256": hashlib.sha256(photo).hexdigest(),
                            "size": len(photo), "type": "image/jpeg"}]
    push(cadre, item)
    cadre.put(f"/api/v1/submissions/{item['uuid']}/attachments/p1.jpg", data=photo,
              headers={"X-Content-SHA256": hashlib.sha256(photo).hexdigest()})
    made = []
    real_zipfile = sheets.zipfile.ZipFile

    def no_temp_files(*args, **kwargs):                   # the ZIP is written to the response
        made.append(args[0])
        return real_zipfile(*args, **kwargs)
    monkeypatch.setattr(sheets.zipfile, "ZipFile", no_temp_files)
    supervisor = login(app.test_client(), "super")
    r = supervisor.get("/exports/attachments.zip?form=household_visit", buffered=False)
    assert r.status_code == 200 and r.is_streamed
    assert lanes.get("export", app).inside == 1            # held while it is being sent
    body = b"".join(r.response)
    r.close()
    assert lanes.get("export", app).inside == 0
    assert all(not hasattr(f, "seek") for f in made)      # never a file on disk
    zf = zipfile.ZipFile(io.BytesIO(body))
    assert zf.read(zf.namelist()[0]) == photo and zf.testzip() is None
    unread = supervisor.get("/exports/attachments.zip?form=household_visit", buffered=False)
    unread.close()                                         # a client gone before the first byte
    assert lanes.get("export", app).inside == 0


def _two_photos(app):
    cadre = login(app.test_client(), "cadre1")
    photos = {}
    item = visit(photo_1="p1.jpg", photo_2="p2.jpg")
    item["attachments"] = []
    for name, color in (("p1.jpg", (1, 2, 3)), ("p2.jpg", (9, 9, 9))):
        photos[name] = jpeg_bytes(color)
        item["attachments"].append({"name": name, "sha256": hashlib.sha256(photos[name]).hexdigest(),
                                    "size": len(photos[name]), "type": "image/jpeg"})
    push(cadre, item)
    for name, data in photos.items():
        cadre.put(f"/api/v1/submissions/{item['uuid']}/attachments/{name}", data=data,
                  headers={"X-Content-SHA256": hashlib.sha256(data).hexdigest()})
    return cadre, f"/api/v1/submissions/{item['uuid']}/attachments"


def test_previews_past_the_lane_and_its_waiting_room_answer_busy(app, monkeypatch):
    app.config.update(PREVIEW_LANE=4, PREVIEW_LANE_PER_USER=1, PREVIEW_LANE_WAITING=0)
    cadre, url = _two_photos(app)
    slow = Held(monkeypatch, thumbnails, "make")
    supervisor = login(app.test_client(), "super")
    answers = queue.Queue()
    t = threading.Thread(target=lambda: answers.put(supervisor.get(f"{url}/p1.jpg?thumb=1")))
    t.start()
    assert slow.entered.acquire(timeout=30)
    r = login(app.test_client(), "super").get(f"{url}/p2.jpg?thumb=1")
    assert r.status_code == 503 and int(r.headers["Retry-After"]) > 0
    assert cadre.get(f"{url}/p2.jpg").status_code == 200   # the photo itself needs no lane
    slow.go.set()
    t.join(30)
    assert answers.get(timeout=1).status_code == 200
    assert supervisor.get(f"{url}/p2.jpg?thumb=1").status_code == 200


def test_a_pages_previews_wait_their_turn_instead_of_breaking(app, monkeypatch):
    """A review page asks for all its previews at once: past the user's slots they wait briefly."""
    app.config.update(PREVIEW_LANE=4, PREVIEW_LANE_PER_USER=1)
    _cadre, url = _two_photos(app)
    slow = Held(monkeypatch, thumbnails, "make")
    supervisor = login(app.test_client(), "super")
    answers = queue.Queue()
    first = threading.Thread(target=lambda: answers.put(supervisor.get(f"{url}/p1.jpg?thumb=1")))
    first.start()
    assert slow.entered.acquire(timeout=30)
    other = login(app.test_client(), "super")
    second = threading.Thread(target=lambda: answers.put(other.get(f"{url}/p2.jpg?thumb=1")))
    second.start()
    assert lanes.get("preview", app).wait_for_waiters(1, timeout=30)   # it waits for the slot
    slow.go.set()
    first.join(30), second.join(30)
    assert [answers.get(timeout=1).status_code for _ in range(2)] == [200, 200]
    assert lanes.get("preview", app).inside == 0


@pytest.fixture
def gated_server(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    seed(data)
    with server_behind_gate(data, tmp_path, "JIEDUI_TEST_EXPORT_GATE",
                      {"JIEDUI_EXPORT_LANE": "2", "JIEDUI_EXPORT_LANE_PER_USER": "1"}) as gated:
        yield gated


def test_twelve_exports_by_one_cadre_leave_another_cadres_push_alone(gated_server):
    """Through waitress (8 threads): twelve exports at once by one user, one of them held inside
    the lane; the eleven others answer 503 without waiting, and another user's push is answered
    while the held export is still running."""
    server, gate = gated_server
    exporter = Client(server.url)
    assert exporter.login("cadre1", PASSWORD)[0] == 200
    answers = queue.Queue()
    threads = [threading.Thread(target=lambda: answers.put(fetch(exporter, EXPORT)))
               for _ in range(12)]
    for t in threads:
        t.start()
    refused = [answers.get(timeout=120) for _ in range(11)]      # answered while one is held
    assert [status for status, _, _ in refused] == [503] * 11
    assert all(int(headers["Retry-After"]) > 0 for _, headers, _ in refused)

    other = Client(server.url)
    assert other.login("cadre2", PASSWORD)[0] == 200
    status, body = other.call("POST", "/api/v1/submissions",
                              {"submissions": [visit("v2-0001")]}, timeout=60)
    assert status == 200 and body["results"][0]["status"] == "created"
    assert answers.empty()                                        # the held export is still running

    os.write(gate, b"x")
    status, _, body = answers.get(timeout=120)
    assert status == 200 and body[:2] == b"PK"
    for t in threads:
        t.join(30)
