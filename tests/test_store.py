"""What only the TinyDB store does: its files, journal, folder lock, snapshots and group commit.
The interface both stores keep is tested in test_store_contract.py."""

import json
import os
import shutil
import threading

import pytest
from tinydb import TinyDB

from server.records.layout import LAYOUT
from server.store import CORE, Store, StoreLocked


def test_written_documents_survive_a_clean_restart_as_plain_tinydb(tmp_path):
    with Store(tmp_path, layout=LAYOUT, snapshot_every=0) as store:
        store.write(lambda tx: tx.put("v1", "households", {"id": "v1-0001", "head_name": "张三"}))
        store.write(lambda tx: tx.put(CORE, "users", {"id": "li", "role": "cadre"}))
    # what the snapshot wrote is a file plain TinyDB reads
    assert TinyDB(tmp_path / "villages" / "v1.json").table("households").all()[0]["head_name"] == "张三"
    with Store(tmp_path, layout=LAYOUT) as store:
        assert store.get("v1", "households", "v1-0001")["head_name"] == "张三"
        assert store.get(CORE, "users", "li")["role"] == "cadre"


def copy_crash_image(src, dst):
    """The files as a kill -9 would leave them: journal written, no final snapshot, no lock holder."""
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("lock"))


def test_acknowledged_writes_are_replayed_from_the_journal_and_a_torn_line_is_dropped(tmp_path, caplog):
    store = Store(tmp_path / "live", layout=LAYOUT, snapshot_every=0).open()
    for i in range(50):
        store.write(lambda tx, i=i: tx.put("v1", "submissions", {"uuid": f"u{i}", "n": i}))
    copy_crash_image(tmp_path / "live", tmp_path / "crashed")
    store.close()
    journals = sorted(p for p in os.listdir(tmp_path / "crashed") if p.startswith("journal"))
    with open(tmp_path / "crashed" / journals[-1], "ab") as f:
        f.write(b'{"seq": 999, "ops": [{"op": "put", "p": "v1", "t": "subm')  # torn mid-write
    with Store(tmp_path / "crashed", layout=LAYOUT, snapshot_every=0) as again:
        assert len(again.search("v1", "submissions")) == 50
        assert again.get("v1", "submissions", "u49")["n"] == 49
        assert again.get("v1", "submissions", "u999") is None
    assert "torn" in caplog.text
    # after the restart's snapshot the village file holds everything and opens in plain TinyDB
    assert len(TinyDB(tmp_path / "crashed" / "villages" / "v1.json").table("submissions")) == 50


def test_a_corrupt_line_in_the_middle_of_the_journal_stops_start_up(tmp_path):
    store = Store(tmp_path / "live", layout=LAYOUT, snapshot_every=0).open()
    for i in range(3):
        store.write(lambda tx, i=i: tx.put("v1", "submissions", {"uuid": f"u{i}"}))
    copy_crash_image(tmp_path / "live", tmp_path / "crashed")
    store.close()
    journal = sorted(p for p in (tmp_path / "crashed").iterdir() if p.name.startswith("journal"))[-1]
    lines = journal.read_bytes().split(b"\n")
    lines[1] = b"garbage"
    journal.write_bytes(b"\n".join(lines))
    with pytest.raises(RuntimeError, match="corrupt"):
        Store(tmp_path / "crashed", layout=LAYOUT).open()


def test_snapshot_then_more_writes_then_crash_loses_nothing(tmp_path):
    store = Store(tmp_path / "live", layout=LAYOUT, snapshot_every=0).open()
    store.write(lambda tx: tx.put("v1", "households", {"id": "h1", "v": 1}))
    store.snapshot()
    store.write(lambda tx: tx.put("v1", "households", {"id": "h1", "v": 2}))
    store.write(lambda tx: tx.delete("v1", "households", "h1"))
    store.write(lambda tx: tx.put("v1", "households", {"id": "h2", "v": 3}))
    copy_crash_image(tmp_path / "live", tmp_path / "crashed")
    store.close()
    with Store(tmp_path / "crashed", layout=LAYOUT) as again:
        assert again.get("v1", "households", "h1") is None
        assert again.get("v1", "households", "h2")["v"] == 3


def test_a_second_process_cannot_open_the_same_folder(tmp_path):
    with Store(tmp_path, layout=LAYOUT, snapshot_every=0):
        with pytest.raises(StoreLocked, match="data folder"):
            Store(tmp_path, layout=LAYOUT).open()
    with Store(tmp_path, layout=LAYOUT, snapshot_every=0):  # released on close: a restart is never blocked
        pass


def test_concurrent_writers_share_fsyncs_and_lose_no_update(tmp_path):
    """TinyDB's group commit (the update count itself is in the contract suite, on both stores)."""
    with Store(tmp_path, layout=LAYOUT, snapshot_every=0) as store:
        store.write(lambda tx: tx.put(CORE, "meta", {"id": "counter", "n": 0}))

        def bump(tx):
            doc = tx.get(CORE, "meta", "counter")
            doc["n"] += 1
            tx.put(CORE, "meta", doc)

        threads = [threading.Thread(target=lambda: [store.write(bump) for _ in range(50)])
                   for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert store.get(CORE, "meta", "counter")["n"] == 400
        # and writers shared fsyncs: fewer batches than writes
        assert store.stats["batches"] < store.stats["writes"]


def test_background_snapshots_truncate_the_journal(tmp_path):
    with Store(tmp_path, layout=LAYOUT, snapshot_every=0) as store:
        for i in range(20):
            store.write(lambda tx, i=i: tx.put("v1", "submissions", {"uuid": f"u{i}"}))
        before = sum(p.stat().st_size for p in tmp_path.iterdir() if p.name.startswith("journal"))
        store.snapshot()
        after = sum(p.stat().st_size for p in tmp_path.iterdir() if p.name.startswith("journal"))
        assert before > 0 and after == 0
        data = json.loads((tmp_path / "villages" / "v1.json").read_text())
        assert len(data["submissions"]) == 20

