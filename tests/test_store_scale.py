"""The store at county size: villages loaded on first use, dropped under a memory budget and
reloaded the same, journals replayed without loading every village, uuids found through a
persisted index, summaries kept beside the change cursor, a corrupt village answering 503 alone."""

import json
import logging
import os
import shutil

import pytest
from tinydb import TinyDB

from server.records.layout import LAYOUT
from server.store import CORE, PartitionUnavailable, Store
from server.store.tinydb import _KeyIndex
from tests.conftest import Api
from tests.helpers import app_config, new_uuid, phone_visit

MB = 1 / 1024  # memory_mb for "almost nothing": every village is over budget


def visit(village, n, **extra):
    return dict({"uuid": f"00000000-0000-4000-8000-{village[-1]}{n:011d}",
                 "household_id": f"{village}-0001", "village_id": village, "n": n,
                 "answers": {"notes": "家中房屋安全，饮水正常。" * 3}}, **extra)


def fill(store, villages=("v1", "v2", "v3"), visits=20):
    def write(tx):
        for vid in villages:
            tx.put(CORE, "villages", {"id": vid, "name": vid})
            tx.put(vid, "households", {"id": f"{vid}-0001", "village_id": vid, "head_name": "张三"})
            for n in range(visits):
                tx.put(vid, "submissions", visit(vid, n))
    store.write(write)


def loaded(store):
    return set(store._partitions) - {CORE}


def crash_image(src, dst):
    """The files as a kill -9 would leave them: journal written, no final snapshot."""
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("lock"))


def everything(store, vid):
    return (store.search(vid, "submissions"), store.search(vid, "households"),
            store.count(vid, "submissions"), store.partition_seq(vid))


# ---- lazy loading and eviction ------------------------------------------------------------------


def test_a_village_dropped_under_the_budget_reloads_and_answers_the_same(tmp_path):
    with Store(tmp_path, layout=LAYOUT, snapshot_every=0, memory_mb=MB, idle_seconds=0) as store:
        fill(store)
        store.snapshot()
        before = {vid: everything(store, vid) for vid in ("v1", "v2", "v3")}
        store._evict()  # clean and idle: every village goes
        assert loaded(store) == set()
        assert store.stats["evictions"] >= 3
        assert {vid: everything(store, vid) for vid in ("v1", "v2", "v3")} == before
        assert store.get("v2", "submissions", visit("v2", 7)["uuid"])["n"] == 7


def test_a_dirty_village_is_never_dropped(tmp_path):
    with Store(tmp_path, layout=LAYOUT, snapshot_every=0, memory_mb=MB, idle_seconds=0) as store:
        fill(store)
        assert store._evict() == 0 and loaded(store) == {"v1", "v2", "v3"}  # nothing snapshotted
        store.snapshot()
        store.write(lambda tx: tx.put("v2", "submissions", visit("v2", 99)))
        store._evict()
        assert loaded(store) == {"v2"}  # written since the snapshot: kept
        assert store.get("v2", "submissions", visit("v2", 99)["uuid"])["n"] == 99


def test_writes_to_a_dropped_village_survive_a_crash_and_a_restart(tmp_path):
    store = Store(tmp_path / "live", layout=LAYOUT, snapshot_every=0, memory_mb=MB, idle_seconds=0).open()
    fill(store)
    store.snapshot()
    store._evict()
    assert "v1" not in loaded(store)
    store.write(lambda tx: tx.put("v1", "submissions", visit("v1", 500)))  # reloads v1, then writes
    crash_image(tmp_path / "live", tmp_path / "crashed")
    store.close()
    with Store(tmp_path / "crashed", layout=LAYOUT, snapshot_every=0) as again:
        assert again.count("v1", "submissions") == 21
        assert again.get("v1", "submissions", visit("v1", 500)["uuid"])["n"] == 500


def test_a_budget_smaller_than_one_village_loads_it_anyway_and_says_so(tmp_path, caplog):
    with Store(tmp_path, layout=LAYOUT, snapshot_every=0) as store:
        fill(store, villages=("v1",), visits=50)
    caplog.set_level(logging.WARNING, logger="server.store")
    with Store(tmp_path, layout=LAYOUT, snapshot_every=0, memory_mb=MB) as store:
        assert store.count("v1", "submissions") == 50
        assert "more than the memory budget" in caplog.text and "v1" in caplog.text
        store.write(lambda tx: tx.put("v1", "submissions", visit("v1", 50)))
        assert store.count("v1", "submissions") == 51


def test_opening_loads_no_village_and_knows_them_all(tmp_path):
    with Store(tmp_path, layout=LAYOUT, snapshot_every=0) as store:
        fill(store, villages=[f"v{i}" for i in range(1, 10)], visits=5)
        store.write(lambda tx: tx.put("audit.20260501", "audit", {"id": "a1", "action": "x"}))
        seqs = {vid: store.partition_seq(vid) for vid in store.village_ids()}
    with Store(tmp_path, layout=LAYOUT, snapshot_every=0) as store:
        assert loaded(store) == set() and store.stats["scans"] == 0  # no file read to open
        assert store.village_ids() == sorted(seqs)
        assert {vid: store.partition_seq(vid) for vid in store.village_ids()} == seqs
        assert loaded(store) == set()  # cursors come from the catalogue
        # a uuid is found through the key index: only its village loads
        assert store.locate("submissions", visit("v7", 3)["uuid"]) == "v7"
        assert loaded(store) == {"v7"}
        assert store.locate("submissions", "00000000-0000-4000-8000-000000000000") is None
        assert loaded(store) == {"v7"}


def test_the_journal_replays_into_villages_that_are_not_loaded_yet(tmp_path):
    store = Store(tmp_path / "live", layout=LAYOUT, snapshot_every=0).open()
    fill(store, villages=("v1", "v2", "v3"), visits=3)
    store.snapshot()
    store.write(lambda tx: tx.put("v2", "submissions", visit("v2", 40)))
    store.write(lambda tx: tx.delete("v3", "submissions", visit("v3", 0)["uuid"]))
    store.write(lambda tx: tx.put("v9", "households", {"id": "v9-0001", "village_id": "v9"}))
    seqs = {vid: store.partition_seq(vid) for vid in ("v1", "v2", "v3", "v9")}
    crash_image(tmp_path / "live", tmp_path / "crashed")
    store.close()
    with Store(tmp_path / "crashed", layout=LAYOUT, snapshot_every=0) as again:
        assert loaded(again) == set()
        assert {vid: again.partition_seq(vid) for vid in seqs} == seqs
        assert again.village_ids() == ["v1", "v2", "v3", "v9"]
        assert again.locate("submissions", visit("v2", 40)["uuid"]) == "v2"
        assert again.count("v3", "submissions") == 2
        assert again.get("v9", "households", "v9-0001")["village_id"] == "v9"
        assert loaded(again) == {"v2", "v3", "v9"}  # v1 had nothing in the journal
        again.snapshot()  # journal entries reach their files; the journals go
    journals = [p for p in os.listdir(tmp_path / "crashed") if p.startswith("journal")]
    assert all(os.path.getsize(tmp_path / "crashed" / p) == 0 for p in journals)
    assert len(TinyDB(tmp_path / "crashed" / "villages" / "v2.json").table("submissions")) == 4
    with Store(tmp_path / "crashed", layout=LAYOUT, snapshot_every=0) as third:
        assert third.count("v3", "submissions") == 2 and third.partition_seq("v2") == seqs["v2"]


def test_the_snapshot_loads_what_the_journal_named_so_the_journal_can_go(tmp_path):
    store = Store(tmp_path / "live", layout=LAYOUT, snapshot_every=0).open()
    fill(store, villages=("v1", "v2"), visits=2)
    crash_image(tmp_path / "live", tmp_path / "crashed")
    store.close()
    with Store(tmp_path / "crashed", layout=LAYOUT, snapshot_every=0) as again:
        assert loaded(again) == set()
        again.snapshot()
        assert loaded(again) == {"v1", "v2"}
    assert len(TinyDB(tmp_path / "crashed" / "villages" / "v1.json").table("submissions")) == 2


def test_the_catalogue_and_index_are_rebuilt_when_missing(tmp_path):
    with Store(tmp_path, layout=LAYOUT, snapshot_every=0) as store:
        fill(store)
        seqs = {vid: store.partition_seq(vid) for vid in store.village_ids()}
    os.remove(tmp_path / "catalog.json")
    os.remove(tmp_path / "keys.idx")
    os.remove(tmp_path / "keys.new")
    with Store(tmp_path, layout=LAYOUT, snapshot_every=0) as store:
        assert {vid: store.partition_seq(vid) for vid in store.village_ids()} == seqs
        assert store.locate("submissions", visit("v3", 5)["uuid"]) == "v3"
    assert os.path.exists(tmp_path / "catalog.json") and os.path.exists(tmp_path / "keys.idx")


def test_a_village_file_changed_behind_the_stores_back_is_read_again(tmp_path):
    with Store(tmp_path, layout=LAYOUT, snapshot_every=0) as store:
        fill(store, villages=("v1",), visits=2)
    path = tmp_path / "villages" / "v1.json"
    data = json.loads(path.read_text())
    data["submissions"]["99"] = visit("v1", 99, seq=1)
    path.write_text(json.dumps(data, ensure_ascii=False))  # e.g. restored by hand
    with Store(tmp_path, layout=LAYOUT, snapshot_every=0) as store:
        assert store.locate("submissions", visit("v1", 99)["uuid"]) == "v1"
        assert store.count("v1", "submissions") == 3


def test_the_key_index_never_misses_even_when_every_key_collides(tmp_path, monkeypatch):
    monkeypatch.setattr(_KeyIndex, "hash", staticmethod(lambda key: 42))
    with Store(tmp_path, layout=LAYOUT, snapshot_every=0) as store:
        fill(store, visits=3)
        for vid in ("v1", "v2", "v3"):
            for n in range(3):
                assert store.locate("submissions", visit(vid, n)["uuid"]) == vid
        assert store.locate("submissions", visit("v1", 77)["uuid"]) is None
        store.write(lambda tx: tx.delete("v2", "submissions", visit("v2", 1)["uuid"]))
        assert store.locate("submissions", visit("v2", 1)["uuid"]) is None
    with Store(tmp_path, layout=LAYOUT, snapshot_every=0) as store:  # persisted, merged, read back
        assert store.locate("submissions", visit("v3", 2)["uuid"]) == "v3"


def test_the_key_index_survives_a_merge_and_a_round_trip():
    index = _KeyIndex()
    for i in range(3000):
        index.add(f"uuid-{i}", f"v{i % 7}")
    items = index.recent_items()
    index.add("uuid-late", "v3")  # added while the merge is being sorted: stays recent
    index.install_base(*index.merged_base(items))
    assert len(index.recent) == 1
    for i in range(3000, 3100):
        index.add(f"uuid-{i}", "v1")
    again = _KeyIndex.load(index.base_bytes(), index.recent_bytes())
    for i in (0, 1234, 2999):
        assert again.candidates(f"uuid-{i}") == [f"v{i % 7}"]
    assert again.candidates("uuid-3050") == ["v1"] and again.candidates("uuid-late") == ["v3"]
    assert len(again) == 3101
    with pytest.raises(ValueError):
        _KeyIndex.load(index.base_bytes()[:-8], index.recent_bytes())


def test_locate_inside_a_write_sees_the_batch(tmp_path):
    with Store(tmp_path, layout=LAYOUT, snapshot_every=0) as store:
        def write(tx):
            tx.put("v4", "submissions", visit("v4", 1))
            return tx.locate("submissions", visit("v4", 1)["uuid"])
        assert store.write(write) == "v4"
        assert store.write(lambda tx: tx.locate("submissions", visit("v4", 1)["uuid"])) == "v4"


# ---- summaries kept beside the cursor ----------------------------------------------------------


def test_a_summary_is_kept_across_restarts_and_recomputed_after_a_write(tmp_path):
    calls = []

    def count_of(store, vid):
        def compute():
            calls.append(vid)
            return {"visits": len(store.search(vid, "submissions"))}
        return store.summary(vid, "stats", compute)

    with Store(tmp_path, layout=LAYOUT, snapshot_every=0) as store:
        fill(store)
        assert count_of(store, "v1") == {"visits": 20} and calls == ["v1"]
        assert count_of(store, "v1") == {"visits": 20} and calls == ["v1"]
    with Store(tmp_path, layout=LAYOUT, snapshot_every=0) as store:
        assert count_of(store, "v1") == {"visits": 20} and calls == ["v1"]
        assert loaded(store) == set()  # answered from the catalogue
        store.write(lambda tx: tx.put("v1", "submissions", visit("v1", 20)))
        assert count_of(store, "v1") == {"visits": 21} and calls == ["v1", "v1"]


# ---- a corrupt village file ------------------------------------------------------------------------


def test_a_corrupt_village_file_makes_only_that_village_unavailable(tmp_path, caplog):
    with Store(tmp_path, layout=LAYOUT, snapshot_every=0) as store:
        fill(store)
    path = tmp_path / "villages" / "v2.json"
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 2])  # torn by a disk fault
    broken = path.read_bytes()
    with Store(tmp_path, layout=LAYOUT, snapshot_every=0) as store:
        assert store.count("v1", "submissions") == 20
        with pytest.raises(PartitionUnavailable) as info:
            store.get("v2", "submissions", visit("v2", 1)["uuid"])
        assert info.value.partition == "v2"
        with pytest.raises(PartitionUnavailable):
            store.write(lambda tx: tx.put("v2", "submissions", visit("v2", 77)))
        store.write(lambda tx: tx.put("v3", "submissions", visit("v3", 77)))
        assert store.count("v3", "submissions") == 21
    assert path.read_bytes() == broken  # left as it was, for repair
    path.write_bytes(raw)  # repaired
    with Store(tmp_path, layout=LAYOUT, snapshot_every=0) as store:
        assert store.count("v2", "submissions") == 20


@pytest.mark.parametrize("damage", ["meta_seq_null", "doc_seq_null", "meta_not_a_table"])
def test_a_village_file_repaired_badly_is_unavailable_never_a_hang_or_a_refused_start(tmp_path, damage):
    """A village file hand-repaired into valid JSON that is not what the store writes (a `null`
    seq): the server used to refuse to start (TypeError), or answer 500 once and then hang every
    reader of the village. Now any exception while loading makes that village unavailable."""
    import json
    import threading
    with Store(tmp_path, layout=LAYOUT, snapshot_every=0) as store:
        fill(store)
    path = tmp_path / "villages" / "v2.json"
    data = json.loads(path.read_bytes())
    if damage == "meta_seq_null":
        data["_meta"]["1"]["seq"] = None
    elif damage == "doc_seq_null":
        next(iter(data["submissions"].values()))["seq"] = None
    else:
        data["_meta"] = {"1": ["seq"]}
    path.write_text(json.dumps(data))
    with Store(tmp_path, layout=LAYOUT, snapshot_every=0) as store:                  # it starts
        assert store.count("v1", "submissions") == 20
        answers = []

        def read_v2():
            for _ in range(3):                                         # again and again
                try:
                    store.get("v2", "submissions", visit("v2", 1)["uuid"])
                    answers.append("read")
                except PartitionUnavailable as e:
                    answers.append(e.partition)
        reader = threading.Thread(target=read_v2)
        reader.start()
        reader.join(60)
        assert not reader.is_alive(), "a reader of the broken village hangs"
        assert answers == ["v2"] * 3
        store.write(lambda tx: tx.put("v3", "submissions", visit("v3", 77)))
        assert store.count("v3", "submissions") == 21
    assert json.loads(path.read_bytes()) == data                       # left as it was, for repair


def test_journal_entries_of_a_corrupt_village_are_kept_until_it_is_repaired(tmp_path):
    store = Store(tmp_path / "live", layout=LAYOUT, snapshot_every=0).open()
    fill(store, villages=("v1", "v2"), visits=2)
    store.snapshot()
    store.write(lambda tx: tx.put("v2", "submissions", visit("v2", 30)))
    crash_image(tmp_path / "live", tmp_path / "crashed")
    store.close()
    path = tmp_path / "crashed" / "villages" / "v2.json"
    good = path.read_bytes()
    path.write_bytes(b"{not json")
    with Store(tmp_path / "crashed", layout=LAYOUT, snapshot_every=0) as again:
        again.write(lambda tx: tx.put("v1", "submissions", visit("v1", 30)))
        again.snapshot()  # v1 goes to its file; v2's journal entry is carried into the new journal
        again.snapshot()
    path.write_bytes(good)
    with Store(tmp_path / "crashed", layout=LAYOUT, snapshot_every=0) as again:
        assert again.get("v2", "submissions", visit("v2", 30)["uuid"])["n"] == 30
        assert again.count("v1", "submissions") == 3


# ---- backup with villages not in memory -----------------------------------------------------------


def test_backup_and_snapshot_with_dropped_villages_hold_everything(tmp_path):
    with Store(tmp_path / "data", layout=LAYOUT, snapshot_every=0, memory_mb=MB, idle_seconds=0) as store:
        fill(store, villages=("v1", "v2", "v3", "v4"), visits=10)
        store.snapshot()
        store._evict()
        store.write(lambda tx: tx.put("v2", "submissions", visit("v2", 200)))  # v2 back, dirty
        assert loaded(store) == {"v2"}
        store.export_to(str(tmp_path / "backup"))
        store.snapshot()
        expected = {vid: store.count(vid, "submissions") for vid in store.village_ids()}
    assert expected == {"v1": 10, "v2": 11, "v3": 10, "v4": 10}
    for vid, n in expected.items():  # plain TinyDB reads both the snapshot and the backup
        assert len(TinyDB(tmp_path / "data" / "villages" / f"{vid}.json").table("submissions")) == n
        assert len(TinyDB(tmp_path / "backup" / "villages" / f"{vid}.json").table("submissions")) == n
    with Store(tmp_path / "backup", layout=LAYOUT, snapshot_every=0) as restored:
        assert loaded(restored) == set()  # the backup carries its catalogue and key index
        assert {vid: restored.count(vid, "submissions") for vid in restored.village_ids()} == expected
        assert restored.locate("submissions", visit("v2", 200)["uuid"]) == "v2"


# ---- audit entries -----------------------------------------------------------------------------


def test_audit_entries_live_in_day_partitions_not_in_core(app):
    from server.records import audit
    from server.store import get_store
    with app.app_context():
        store = get_store()
        store.write(lambda tx: audit.record(tx, "admin", "test_action", "x", {"a": 1}))
        days = store.partitions("audit")
        assert days and all(d.startswith("audit.") for d in days)
        assert not store.search(CORE, "audit", lambda e: e["action"] == "test_action")
        found = audit.entries(store, action="test_action")
        assert [(e["user"], e["target"], e["details"]) for e in found] == [("admin", "x", {"a": 1})]
        assert "test_action" in audit.actions(store)
        assert "audit.x" not in store.village_ids() and not any(v.startswith("audit") for v in store.village_ids())


# ---- through the server ------------------------------------------------------------------------


@pytest.mark.tinydb_only
def test_a_corrupt_village_answers_503_naming_it_while_the_others_work(app, api):
    from server.store import close_app_store
    close_app_store(app)  # everything in its file
    path = os.path.join(app.config["DATA_DIR"], "villages", "v2.json")
    with open(path, "r+b") as f:
        f.truncate(os.path.getsize(path) // 2)
    with open(path, "rb") as f:
        broken = f.read()
    assert api.login("super").status_code == 200
    r = api.get("/api/v1/households/v2-0001")
    assert r.status_code == 503
    body = r.get_json()
    assert body["error"] == "partition_unavailable" and body["partition"] == "v2"
    assert "v2" in body["message_zh"] and "v2" in body["message_en"]
    assert api.get("/api/v1/households/v1-0001").status_code == 200
    item = {"uuid": new_uuid(), "form": "household_visit", "form_version": 1,
            "household_id": "v1-0001", "created_at": "2026-05-01T10:00:00+08:00",
            "answers": {"visit_date": "2026-05-01", "visit_type": "phone", "present": "户主",
                        "topics": ["income_jobs"], "family_changes": ["none"], "risk": "no"}}
    assert api.login("cadre1").status_code == 200
    r = api.post("/api/v1/submissions", {"submissions": [item]})
    assert r.status_code == 200 and r.get_json()["results"][0]["status"] == "created"
    assert api.login("cadre2").status_code == 200
    r = api.post("/api/v1/submissions", {"submissions": [dict(item, uuid=new_uuid(),
                                                              household_id="v2-0001")]})
    assert r.status_code == 503 and r.get_json()["partition"] == "v2"
    close_app_store(app)
    with open(path, "rb") as f:
        assert f.read() == broken  # left untouched for repair


@pytest.mark.tinydb_only
def test_a_null_seq_village_leaves_the_dashboard_of_the_others_working(app, api):
    """A supervisor of v1 and v2 with v2's file repaired into a `null` seq: the dashboard shows v1
    and names v2 (it answered 503 for the whole page); v2 alone answers 503 naming it."""
    import json

    from server.store import close_app_store
    close_app_store(app)
    path = os.path.join(app.config["DATA_DIR"], "villages", "v2.json")
    with open(path) as f:
        data = json.load(f)
    data["_meta"]["1"]["seq"] = None
    with open(path, "w") as f:
        json.dump(data, f)
    assert api.login("super").status_code == 200
    for _ in range(2):                                         # and again: no hang after the first
        r = api.get("/api/v1/households/v2-0001")
        assert r.status_code == 503 and r.get_json()["partition"] == "v2"
    body = api.get("/api/v1/stats").get_json()
    assert [v["id"] for v in body["villages"]] == ["v1"] and body["villages"][0]["households"] == 3
    assert body["unavailable"] == [{"id": "v2", "name": "白沙村"}]
    page = api.get("/dashboard")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert "青石村" in text and "白沙村（v2）" in text and "无法读取" in text
    r = api.get("/api/v1/stats?village=v2")
    assert r.status_code == 503 and r.get_json()["partition"] == "v2"
    assert api.get("/api/v1/stats?village=v1").get_json()["unavailable"] == []
    listed = api.get("/api/v1/stats/list?kind=households").get_json()    # the lists behind numbers
    assert [h["id"] for h in listed["items"]] == ["v1-0001", "v1-0002", "v1-0003"]
    assert listed["unavailable"] == [{"id": "v2", "name": "白沙村"}]
    page = api.get("/dashboard/list?kind=households").get_data(as_text=True)
    assert "白沙村（v2）" in page and "v1-0001" in page
    assert api.get("/api/v1/stats/list?kind=households&village=v2").status_code == 503


def test_a_write_to_a_dropped_village_is_durable_across_kill_9(tmp_path):
    import threading
    import time

    import subprocess
    import sys

    from tests.conftest import PASSWORD
    from tests.live import ROOT, Client, LiveServer, seed

    def visits(n):
        return [phone_visit("v1-0001") for _ in range(n)]

    def push(client, n):
        status, body = client.call("POST", "/api/v1/submissions", {"submissions": visits(n)})
        assert status == 200
        return [r["uuid"] for r in body["results"] if r["status"] == "created"]

    data = tmp_path / "data"
    data.mkdir()
    seed(data)
    server = LiveServer(data, extra_env={"JIEDUI_MEMORY_MB": "0.001",
                                         "JIEDUI_SNAPSHOT_EVERY": "0.1"}).start()
    log_path = data / f"server-{server.port}.log"
    try:
        client = Client(server.url)
        client.login("cadre1", PASSWORD)
        acked = push(client, 3)
        deadline = time.monotonic() + 60
        while "dropped" not in log_path.read_text() or "v1" not in log_path.read_text():
            assert time.monotonic() < deadline, "v1 was never dropped from memory"
            threading.Event().wait(0.05)  # the condition is the log line; poll it
        acked += push(client, 3)  # v1 read back from its file, then written
        backup = tmp_path / "backup"  # while the server runs, v1's last writes only in the journal
        subprocess.run([sys.executable, "-m", "flask", "--app", "server", "backup", str(backup)],
                       cwd=ROOT, env=dict(os.environ, JIEDUI_DATA_DIR=str(data)), check=True,
                       capture_output=True)
    finally:
        server.kill9()
    assert len(acked) == 6
    backed_up = TinyDB(backup / "villages" / "v1.json").table("submissions")
    assert set(acked) <= {d["uuid"] for d in backed_up.all()}
    server = LiveServer(data).start()
    try:
        client = Client(server.url)
        client.login("cadre1", PASSWORD)
        _status, body = client.call("GET", "/api/v1/submissions?household_id=v1-0001")
        assert set(acked) <= {s["uuid"] for s in body["submissions"]}
    finally:
        server.stop()


def test_writers_readers_snapshots_and_evictions_at_once_lose_nothing(tmp_path):
    """Read-modify-write counters in six villages from eight threads, while readers read, the
    snapshotter snapshots every few milliseconds and the budget drops idle villages."""
    import random
    import threading

    villages = [f"v{i}" for i in range(1, 5)]  # written all along; v5 and v6 only read
    store = Store(tmp_path, layout=LAYOUT, snapshot_every=0.005, journal_snapshot_bytes=2000, memory_mb=MB,
                  idle_seconds=0).open()
    store.write(lambda tx: [tx.put(v, "meta", {"id": "counter", "n": 0})
                            for v in villages + ["v5", "v6"]])
    store.snapshot()
    done, errors = [0] * 8, []

    def bump(tx, vid):
        doc = tx.get(vid, "meta", "counter")
        doc["n"] += 1
        tx.put(vid, "meta", doc)

    def writer(k):
        rng = random.Random(k)
        try:
            for _ in range(60):
                store.write(lambda tx, v=rng.choice(villages): bump(tx, v))
                done[k] += 1
        except Exception as e:  # reported below; the test fails on any
            errors.append(e)

    def reader(k):
        rng = random.Random(100 + k)
        try:
            while not stop.is_set():
                doc = store.get(rng.choice(villages + ["v5", "v6"]), "meta", "counter")
                assert doc is not None and doc["n"] >= 0
        except Exception as e:
            errors.append(e)

    stop = threading.Event()
    threads = [threading.Thread(target=writer, args=(k,)) for k in range(8)]
    readers = [threading.Thread(target=reader, args=(k,)) for k in range(2)]
    for t in threads + readers:
        t.start()
    for t in threads:
        t.join()
    stop.set()
    for t in readers:
        t.join()
    assert errors == []
    assert sum(store.get(v, "meta", "counter")["n"] for v in villages) == sum(done) == 480
    assert store.stats["evictions"] > 0 and store.stats["loads"] > 7 and store.stats["snapshots"] > 1
    store.close()
    with Store(tmp_path, layout=LAYOUT, snapshot_every=0) as again:
        assert sum(again.get(v, "meta", "counter")["n"] for v in villages) == 480


@pytest.mark.tinydb_only
def test_the_county_page_after_a_restart_reads_summaries_not_villages(app, api):
    from server import create_app
    from server.store import close_app_store, get_store
    app.config["FIXED_NOW"] = "2026-05-20T02:00:00Z"
    assert api.login("super").status_code == 200
    before = api.get("/api/v1/stats").get_json()
    close_app_store(app)  # summaries go to the catalogue with the snapshot
    # a fresh process: no cache in memory
    again = create_app(app_config(app.config["DATA_DIR"], FIXED_NOW="2026-05-20T02:00:00Z"))
    client = Api(again.test_client())
    assert client.login("super").status_code == 200
    try:
        assert client.get("/api/v1/stats").get_json()["villages"] == before["villages"]
        with again.app_context():
            assert loaded(get_store()) == set()  # no village was read to answer
    finally:
        close_app_store(again)
