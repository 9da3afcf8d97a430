"""Issue 28: what a push leaves is the same after its work moved (household bookkeeping journaled as
patches, the session re-signed once a day, reads without copies): promises and open follow-ups,
summaries equal to the lists, one audit entry per visit, nothing acknowledged missing: after a
burst of single pushes, in a dense household, and after kill -9."""

import random
import shutil
import uuid
from types import SimpleNamespace

import pytest

from server.records.layout import LAYOUT
from server.records import audit, households
from server.store import Store, get_store
from tests.conftest import PASSWORD, Api
from tests.live import Client, LiveServer, seed
from tests.helpers import assert_stats_match_lists

HOUSEHOLDS = ("v1-0001", "v1-0002", "v1-0003")


def visit(household, *, promises=0, answers=(), day="2026-05-01"):
    """A version-2 visit making `promises` new promises and answering earlier ones
    ([(followup id, status)])."""
    body = {"visit_date": day, "visit_type": "home", "present": "户主本人", "topics": ["income_jobs"],
            "family_changes": ["none"], "risk": "no"}
    if promises:
        body["followups"] = [{"action": f"事项{i}", "due_date": "2026-06-01"} for i in range(promises)]
    if answers:
        body["promises"] = [{"followup_id": fid, "status": status, "note": f"说明{status}"}
                            for fid, status in answers]
    return {"uuid": str(uuid.uuid4()), "form": "household_visit", "form_version": 2,
            "household_id": household, "created_at": f"{day}T10:00:00+08:00", "answers": body}


class Promises:
    """What each household's open follow-ups must be: the rule of households.note_visit, kept apart
    (appended in order up to MAX_OPEN_FOLLOWUPS; done or dropped leave; in progress stays)."""

    def __init__(self):
        self.open = {}  # household -> [[id, status, note]]

    def add(self, item, created):
        items = self.open.setdefault(item["household_id"], [])
        for i in range(len(item["answers"].get("followups") or [])):
            if len(items) < households.MAX_OPEN_FOLLOWUPS:
                items.append([f"{created}:{i}", "open", ""])
        for a in item["answers"].get("promises") or []:
            for f in items:
                if f[0] == a["followup_id"]:
                    f[1], f[2] = a["status"], a["note"]
            items[:] = [f for f in items if f[1] not in households.FOLLOWUP_CLOSED]

    def pick(self, household, rng, k):
        items = self.open.get(household) or []
        return [(f[0], rng.choice(households.FOLLOWUP_STATES)) for f in rng.sample(items, min(k, len(items)))]

    def check(self, household_docs):
        for hid, doc in household_docs.items():
            got = [[f["id"], f["status"], f["note"]] for f in doc["open_followups"]]
            assert got == self.open.get(hid, []), hid


class OverHttp:
    """Client (tests/live.py) answering as the test client does, for assert_stats_match_lists."""

    def __init__(self, client):
        self.client = client

    def get(self, url):
        status, body = self.client.call("GET", url)
        return SimpleNamespace(status_code=status, get_json=lambda: body)


def push_one(api, item):
    r = api.post("/api/v1/submissions", {"submissions": [item]})
    assert r.status_code == 200, r.get_json()
    result = r.get_json()["results"][0]
    assert result["status"] == "created", result
    return result["uuid"]


def test_a_burst_of_single_pushes_keeps_promises_summaries_audit_and_every_visit(app, api):
    rng = random.Random(28)
    assert api.login("cadre1").status_code == 200
    model, acked, edits = Promises(), [], {}
    for n in range(60):
        hid = rng.choice(HOUSEHOLDS)
        item = visit(hid, promises=rng.randint(0, 2), answers=model.pick(hid, rng, rng.randint(0, 2)),
                     day=f"2026-05-{1 + n % 28:02d}")
        acked.append(push_one(api, item))
        model.add(item, acked[-1])
        if n % 7 == 3:  # a household edit between the visits: a version bump, bookkeeping kept
            r = api.put(f"/api/v1/households/{hid}", json={"changes": {"address": f"新{n}号"}})
            assert r.status_code == 200, r.get_json()
            edits[hid] = (r.get_json()["household"]["version"], f"新{n}号")
    docs = {hid: api.get(f"/api/v1/households/{hid}").get_json() for hid in HOUSEHOLDS}
    model.check(docs)
    for hid, (version, address) in edits.items():
        assert (docs[hid]["version"], docs[hid]["address"]) == (version, address)
        assert docs[hid]["last_visit_date"] == max(
            s["visit_date"] for s in api.get(f"/api/v1/submissions?household_id={hid}").get_json()["submissions"])
    stored = set()
    for hid in HOUSEHOLDS:
        stored |= {s["uuid"] for s in api.get(f"/api/v1/submissions?household_id={hid}").get_json()["submissions"]}
    assert stored == set(acked)
    with app.app_context():
        logged = [e["target"] for e in audit.entries(get_store(), action="submission")]
        edited = audit.entries(get_store(), action="household_edit")
    assert sorted(logged) == sorted(acked)
    assert len(edited) == sum(1 for n in range(60) if n % 7 == 3)
    supervisor = Api(app.test_client())
    assert supervisor.login("super").status_code == 200
    assert_stats_match_lists(supervisor, supervisor.get("/api/v1/stats").get_json())


def test_a_dense_household_keeps_its_promises_exact_past_the_cap(app, api):
    """More promises than a household may hold open, then answers that close and update some:
    the list is the rule's, and frees room for the next promise."""
    rng = random.Random(7)
    assert api.login("cadre1").status_code == 200
    model = Promises()
    hid = "v1-0001"
    for start in range(0, households.MAX_OPEN_FOLLOWUPS + 40, 20):
        items = [visit(hid, promises=1) for _ in range(20)]
        r = api.post("/api/v1/submissions", {"submissions": items})
        assert all(x["status"] == "created" for x in r.get_json()["results"])
        for item in items:
            model.add(item, item["uuid"])
    doc = api.get(f"/api/v1/households/{hid}").get_json()
    assert len(doc["open_followups"]) == households.MAX_OPEN_FOLLOWUPS
    model.check({hid: doc})
    answers = model.pick(hid, rng, 30)
    item = visit(hid, promises=2, answers=answers)
    push_one(api, item)
    model.add(item, item["uuid"])
    doc = api.get(f"/api/v1/households/{hid}").get_json()
    model.check({hid: doc})
    closed = sum(1 for _f, s in answers if s in households.FOLLOWUP_CLOSED)
    # note_visit's rule (unchanged): a visit's new promises are noted before its answers, so at
    # the cap they find no room; the answers then free some for the next visit's
    assert len(doc["open_followups"]) == households.MAX_OPEN_FOLLOWUPS - closed
    item = visit(hid, promises=2)
    push_one(api, item)
    model.add(item, item["uuid"])
    doc = api.get(f"/api/v1/households/{hid}").get_json()
    model.check({hid: doc})
    assert len(doc["open_followups"]) == min(households.MAX_OPEN_FOLLOWUPS,
                                            households.MAX_OPEN_FOLLOWUPS - closed + 2)


def test_patches_read_back_the_same_after_a_restart(tmp_path):
    """tx.patch: twice in one write, after a put in the same write, and before a put; what memory
    holds is what the journal replays (TinyDB), and the journal line carries only the change."""
    store = Store(tmp_path / "d", layout=LAYOUT, snapshot_every=0).open()
    store.write(lambda tx: tx.put("v1", "households", {"id": "h", "open_followups": [], "n": 0}))

    def twice(tx):
        tx.patch("v1", "households", "h", set={"n": 1}, items={"open_followups": {"append": [{"id": "a"}]}})
        return tx.patch("v1", "households", "h", items={"open_followups": {"append": [{"id": "b"}],
                                                                           "put": [{"id": "a", "s": 2}]}})
    assert store.write(twice)["open_followups"] == [{"id": "a", "s": 2}, {"id": "b"}]

    def put_then_patch(tx):
        tx.put("v1", "households", {"id": "g", "open_followups": [{"id": "x"}]})
        tx.patch("v1", "households", "g", items={"open_followups": {"drop": ["x"], "append": [{"id": "y"}]}})
    store.write(put_then_patch)

    def patch_then_put(tx):
        tx.patch("v1", "households", "h", set={"n": 5})
        doc = tx.get("v1", "households", "h")
        doc["m"] = 1
        tx.put("v1", "households", doc)
    store.write(patch_then_put)
    assert store.write(lambda tx: tx.patch("v1", "households", "nobody", set={"n": 1})) is None
    before = {k: store.get("v1", "households", k) for k in ("h", "g")}
    assert before["h"]["open_followups"] == [{"id": "a", "s": 2}, {"id": "b"}] and before["h"]["n"] == 5
    assert before["g"]["open_followups"] == [{"id": "y"}]
    journal = b"".join(open(p, "rb").read() for p in (tmp_path / "d").glob("journal.*.log"))
    assert b'"op":"patch"' in journal
    # the folder as a crash leaves it: the journal fsynced, no snapshot since; its copy opens
    shutil.copytree(tmp_path / "d", tmp_path / "crashed")
    store.close()
    again = Store(tmp_path / "crashed", layout=LAYOUT, snapshot_every=0).open()
    try:
        assert {k: again.get("v1", "households", k) for k in ("h", "g")} == before
        assert again.seq == store.seq
    finally:
        again.close()


@pytest.mark.parametrize("snapshots", [False, True], ids=["journal-only", "snapshots-between"])
def test_kill_9_after_single_pushes_keeps_promises_audit_and_every_visit(tmp_path, snapshots):
    data = tmp_path / "data"
    data.mkdir()
    seed(data)
    env = ({"JIEDUI_SNAPSHOT_EVERY": "0.05", "JIEDUI_JOURNAL_SNAPSHOT_BYTES": "20000"} if snapshots
           else {"JIEDUI_SNAPSHOT_EVERY": "100000"})
    env["JIEDUI_PRINT_PRERENDER"] = "0"
    rng = random.Random(9)
    server = LiveServer(data, extra_env=env).start()
    model, acked = Promises(), []
    try:
        client = Client(server.url)
        client.login("cadre1", PASSWORD)
        supervisor = Client(server.url)
        supervisor.login("super", PASSWORD)
        for n in range(40):
            hid = rng.choice(HOUSEHOLDS)
            item = visit(hid, promises=rng.randint(0, 2), answers=model.pick(hid, rng, rng.randint(0, 2)))
            status, body = client.call("POST", "/api/v1/submissions", {"submissions": [item]})
            assert status == 200 and body["results"][0]["status"] == "created", body
            acked.append(item["uuid"])
            model.add(item, item["uuid"])
            if n % 9 == 4:
                status, _ = client.call("PUT", f"/api/v1/households/{hid}", {"changes": {"group": f"g{n}"}})
                assert status == 200
            if n in (10, 25):  # summaries computed (and kept beside the village's cursor) midway
                assert supervisor.call("GET", "/api/v1/stats")[0] == 200
        before = {hid: client.call("GET", f"/api/v1/households/{hid}")[1] for hid in HOUSEHOLDS}
        model.check(before)
    finally:
        server.kill9()
    server = LiveServer(data, extra_env=env).start()
    try:
        client = Client(server.url)
        client.login("cadre1", PASSWORD)
        after = {hid: client.call("GET", f"/api/v1/households/{hid}")[1] for hid in HOUSEHOLDS}
        stored = set()
        for hid in HOUSEHOLDS:
            stored |= {s["uuid"] for s in client.call("GET", f"/api/v1/submissions?household_id={hid}")[1]["submissions"]}
        supervisor = Client(server.url)
        supervisor.login("super", PASSWORD)
        assert_stats_match_lists(OverHttp(supervisor), supervisor.call("GET", "/api/v1/stats")[1])
    finally:
        server.stop()
    assert after == before
    assert stored == set(acked)
    store = Store(data, layout=LAYOUT, snapshot_every=0).open()
    try:
        assert sorted(e["target"] for e in audit.entries(store, action="submission")) == sorted(acked)
    finally:
        store.close()


def test_corrections_keep_the_last_visit_date_exact_reading_visits_only_when_needed(app, api):
    """A correction moving an earlier visit's date leaves the latest; one moving the latest back
    finds the next latest (also when another visit shares that date)."""
    assert api.login("cadre1").status_code == 200
    hid = "v1-0002"

    def correct(old, day):
        item = visit(hid, day=day)
        item["supersedes"] = old["uuid"]
        push_one(api, item)
        return item

    def last():
        return api.get(f"/api/v1/households/{hid}").get_json()["last_visit_date"]

    early, mid, late, twin = (visit(hid, day=d) for d in ("2026-05-02", "2026-05-10", "2026-05-20", "2026-05-20"))
    for item in (early, mid, late, twin):
        push_one(api, item)
    assert last() == "2026-05-20"
    early = correct(early, "2026-05-04")  # an earlier visit moves: the latest stays
    assert last() == "2026-05-20"
    late = correct(late, "2026-05-01")  # the latest moves back, but its twin still holds the date
    assert last() == "2026-05-20"
    twin = correct(twin, "2026-05-03")  # now the latest is mid's
    assert last() == "2026-05-10"
    mid = correct(mid, "2026-05-25")  # forward
    assert last() == "2026-05-25"


def session_cookies(response):
    return [h for h in response.headers.getlist("Set-Cookie") if h.startswith("session=")]


def test_the_session_cookie_is_re_signed_once_a_day_not_on_every_request(app, api, monkeypatch):
    from server.web import sessions
    assert session_cookies(api.login("cadre1")), "a login sets the session"
    r = api.get("/api/v1/households/v1-0001")
    assert r.status_code == 200 and not session_cookies(r)
    r = api.post("/api/v1/submissions", {"submissions": [visit("v1-0001")]})
    assert r.status_code == 200 and not session_cookies(r)
    later = sessions._now() + sessions.REFRESH_AFTER_SECONDS + 60
    monkeypatch.setattr(sessions, "_now", lambda: later)
    r = api.get("/api/v1/households/v1-0001")
    assert r.status_code == 200 and session_cookies(r), "a day on, a request re-signs it (it lasts)"
    assert api.client.post("/logout", headers={"X-CSRFToken": api.token}).status_code in (200, 302)
    assert api.get("/api/v1/households/v1-0001").status_code == 401
