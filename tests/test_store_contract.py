"""The store interface, as the record owners rely on it, on both stores (TinyDB and PostgreSQL)."""

import math
import threading

import pytest
from tinydb import Query

from server.records.layout import LAYOUT
from server.store import CORE, Store, StoreLayout, UnstorableValue

# Another domain than this one: nothing in the store may depend on the names records/layout.py gives.
OTHER = StoreLayout(global_keys={"things": "code"}, families=("log",))


@pytest.fixture
def open_store(store_kind, tmp_path, request):
    """open_store() opens (again) the same store: a folder for TinyDB, a schema for PostgreSQL;
    with the domain's layout (records/layout.py) unless another is given."""
    opened = []
    url = request.getfixturevalue("pg_url") if store_kind == "postgres" else None

    def make(layout=LAYOUT):
        if url:
            from server.store.postgres import PgStore
            store = PgStore(url, layout=layout, pool_size=10).open()
        else:
            store = Store(tmp_path / "data", layout=layout, snapshot_every=0).open()
        opened.append(store)
        return store
    yield make
    for s in opened:
        s.close()


def test_every_change_gets_a_larger_seq_across_a_restart(open_store):
    store = open_store()
    a = store.write(lambda tx: tx.put("v1", "households", {"id": "a"}))
    b = store.write(lambda tx: tx.put("v2", "households", {"id": "b"}))
    a2 = store.write(lambda tx: tx.put("v1", "households", {"id": "a", "x": 1}))
    assert a["seq"] < b["seq"] < a2["seq"] == store.seq
    store.close()
    again = open_store()
    c = again.write(lambda tx: tx.put("v1", "households", {"id": "c"}))
    assert c["seq"] > a2["seq"]
    assert again.get("v1", "households", "a") == {"id": "a", "x": 1, "seq": a2["seq"]}


def test_a_failing_write_function_changes_nothing(open_store):
    store = open_store()

    def half_then_fail(tx):
        tx.put("v1", "households", {"id": "h1"})
        tx.put(CORE, "users", {"id": "u"})
        raise ValueError("row 7 is bad")
    with pytest.raises(ValueError, match="row 7"):
        store.write(half_then_fail)
    assert store.get("v1", "households", "h1") is None and store.get(CORE, "users", "u") is None
    assert store.search("v1", "households") == [] and store.partition_seq("v1") == 0


def test_a_value_json_cannot_hold_fails_that_write_alone(open_store):
    store = open_store()
    with pytest.raises(UnstorableValue):
        store.write(lambda tx: tx.put("v1", "households", {"id": "h", "x": math.nan}))
    assert store.write(lambda tx: tx.put("v1", "households", {"id": "h", "x": 1}))["x"] == 1


def test_a_write_reads_its_own_writes_and_deletes(open_store):
    store = open_store()
    store.write(lambda tx: tx.put("v1", "households", {"id": "gone"}))

    def fn(tx):
        tx.put("v1", "households", {"id": "h", "n": 1})
        tx.delete("v1", "households", "gone")
        return (tx.get("v1", "households", "h")["n"], tx.get("v1", "households", "gone"),
                sorted(d["id"] for d in tx.search("v1", "households")))
    assert store.write(fn) == (1, None, ["h"])
    assert store.get("v1", "households", "gone") is None


def test_concurrent_read_modify_write_loses_no_update(open_store):
    store = open_store()
    store.write(lambda tx: tx.put(CORE, "meta", {"id": "counter", "n": 0}))

    def bump(tx):
        doc = tx.get(CORE, "meta", "counter")
        doc["n"] += 1
        tx.put(CORE, "meta", doc)

    threads = [threading.Thread(target=lambda: [store.write(bump) for _ in range(25)]) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert store.get(CORE, "meta", "counter")["n"] == 150


def test_reads_are_copies_that_cannot_change_the_store(open_store):
    store = open_store()
    store.write(lambda tx: tx.put("v1", "households", {"id": "h", "members": [{"name": "a"}]}))
    doc = store.get("v1", "households", "h")
    doc["members"][0]["name"] = "changed"
    store.search("v1", "households")[0]["members"].append({"name": "x"})
    assert store.get("v1", "households", "h")["members"] == [{"name": "a"}]

    def keep_and_change(tx):
        mine = {"id": "k", "list": [1]}
        stored = tx.put("v1", "households", mine)
        mine["list"].append(2)
        stored["list"].append(3)
    store.write(keep_and_change)
    assert store.get("v1", "households", "k")["list"] == [1]


def test_searches_take_tinydb_queries_callables_and_a_seq_cursor(open_store):
    store = open_store()

    def fill(tx):
        for i in range(10):
            tx.put("v1", "submissions", {"uuid": f"u{i}", "household_id": f"h{i % 3}"})
    store.write(fill)
    assert len(store.search("v1", "submissions", Query().household_id == "h1")) == 3
    assert len(store.search("v1", "submissions", lambda d: d["household_id"] == "h2")) == 3
    assert store.count("v1", "submissions") == 10
    assert store.count("v1", "submissions", lambda d: d["household_id"] == "h0") == 4
    assert store.search("nope", "submissions") == [] and store.count("nope", "submissions") == 0
    middle = sorted(d["seq"] for d in store.search("v1", "submissions"))[4]
    later = store.search("v1", "submissions", since=middle)
    assert len(later) == 5 and all(d["seq"] > middle for d in later)
    assert len(store.search("v1", "submissions", lambda d: d["household_id"] == "h0", since=middle)) == 2


def test_a_submission_is_found_by_uuid_alone(open_store):
    store = open_store()
    store.write(lambda tx: tx.put("v2", "submissions", {"uuid": "u-1"}))
    assert store.partition_of("submissions", "u-1") == "v2"
    assert store.partition_of("submissions", "u-2") is None
    assert store.write(lambda tx: tx.partition_of("submissions", "u-1")) == "v2"
    store.write(lambda tx: tx.delete("v2", "submissions", "u-1"))
    assert store.partition_of("submissions", "u-1") is None


def test_bad_partition_names_are_refused(open_store):
    store = open_store()
    for bad in ("../etc", "", "a b", "x" * 40):
        with pytest.raises(ValueError):
            store.write(lambda tx, bad=bad: tx.put(bad, "households", {"id": "x"}))


def test_partition_seq_moves_with_every_write_to_that_village_only(open_store):
    store = open_store()
    store.write(lambda tx: tx.put("v1", "households", {"id": "v1-0001"}))
    store.write(lambda tx: tx.put("v2", "households", {"id": "v2-0001"}))
    first = store.partition_seq("v1")
    assert first > 0 and store.partition_seq("v2") > first
    store.write(lambda tx: tx.put("v2", "households", {"id": "v2-0002"}))
    assert store.partition_seq("v1") == first
    store.write(lambda tx: tx.delete("v1", "households", "v1-0001"))
    second = store.partition_seq("v1")
    assert second > first
    assert store.partition_seq("nowhere") == 0
    assert store.village_ids() == ["v1", "v2"]
    store.close()
    assert open_store().partition_seq("v1") == second


def test_a_write_in_flight_moves_no_cursor_until_it_can_be_read(open_store):
    """A reader that sees the store's seq move must find the change behind it: the background
    printer took a village whose cursor had not moved yet for caught up, and never looked again."""
    store = open_store()
    store.write(lambda tx: tx.put("v1", "households", {"id": "v1-0001"}))
    before = store.seq
    seen = []

    def change(tx):
        tx.put("v1", "households", {"id": "v1-0002"})
        tx.delete("v1", "households", "v1-0001")
        seen.append((store.seq, store.partition_seq("v1")))
    store.write(change)
    assert seen == [(before, before)]
    assert store.seq > before and store.partition_seq("v1") == store.seq
    assert [h["id"] for h in store.search("v1", "households")] == ["v1-0002"]


def test_many_uuids_are_located_at_once(open_store):
    store = open_store()
    store.write(lambda tx: [tx.put(v, "submissions", {"uuid": u}) for v, u in (("v1", "a"), ("v2", "b"))])
    assert store.partitions_of("submissions", ["a", "b", "c"]) == {"a": "v1", "b": "v2", "c": None}

    def fn(tx):
        tx.put("v3", "submissions", {"uuid": "c"})
        return tx.partitions_of("submissions", ["a", "c", "d"]), tx.partition_of("submissions", "b")
    assert store.write(fn) == ({"a": "v1", "c": "v3", "d": None}, "v2")


# ---- the rest of the interface (server/store/protocol.py), on both stores ---------------------


def test_both_stores_and_their_transactions_keep_the_protocol(open_store):
    from server.store import protocol
    store = open_store()
    assert isinstance(store, protocol.Store)
    assert store.write(lambda tx: isinstance(tx, protocol.Transaction))
    for name in [n for n in dir(protocol.Store) if not n.startswith("_")]:
        assert hasattr(store, name), name


def test_peek_reads_the_stored_document_inside_and_outside_a_write(open_store):
    store = open_store()
    store.write(lambda tx: tx.put("v1", "households", {"id": "h", "n": 1}))
    assert store.peek("v1", "households", "h")["n"] == 1
    assert store.peek("v1", "households", "nobody") is None

    def fn(tx):
        tx.put("v1", "households", {"id": "h", "n": 2})
        return tx.peek("v1", "households", "h")["n"], tx.peek("v1", "households", "nobody")
    assert store.write(fn) == (2, None)


def test_peek_many_reads_stored_documents_in_the_order_asked(open_store):
    store = open_store()
    store.write(lambda tx: [tx.put("v1", "households", {"id": h, "n": n}) for n, h in enumerate("abc")])
    got = store.peek_many("v1", "households", ["c", "nobody", "a", "c", "nul\x00"])
    assert [(d["id"], d["n"]) for d in got] == [("c", 2), ("a", 0), ("c", 2)]
    assert store.peek_many("v1", "households", []) == []
    assert store.peek_many("v2", "households", ["a"]) == []


def test_a_patch_changes_part_of_a_document_and_reads_back_after_a_restart(open_store):
    """tx.patch (issue 28): fields set; list items appended, put by id (in place) and dropped;
    twice in one write and after a put in it; a new seq; nothing for an absent document."""
    store = open_store()
    first = store.write(lambda tx: tx.put("v1", "households", {"id": "h", "n": 0, "open": [{"id": "a"}]}))

    def fn(tx):
        tx.patch("v1", "households", "h", set={"n": 1}, items={"open": {"append": [{"id": "b"}]}})
        tx.put("v1", "households", {"id": "g", "open": []})
        tx.patch("v1", "households", "g", items={"open": {"put": [{"id": "x"}]}})
        mid = tx.get("v1", "households", "h")
        done = tx.patch("v1", "households", "h", items={"open": {"put": [{"id": "a", "s": 2}, {"id": "c"}],
                                                                 "drop": ["b"]}})
        return mid, done, tx.patch("v1", "households", "nobody", set={"n": 1})
    mid, done, absent = store.write(fn)
    assert mid["open"] == [{"id": "a"}, {"id": "b"}] and mid["n"] == 1 and absent is None
    assert done["open"] == [{"id": "a", "s": 2}, {"id": "c"}] and done["seq"] > first["seq"]
    with pytest.raises(UnstorableValue):
        store.write(lambda tx: tx.patch("v1", "households", "h", set={"n": math.nan}))
    before = {k: store.get("v1", "households", k) for k in ("h", "g")}
    assert before["h"] == dict(done) and before["g"]["open"] == [{"id": "x"}]
    assert store.partition_seq("v1") == store.seq
    store.close()
    again = open_store()
    assert {k: again.get("v1", "households", k) for k in ("h", "g")} == before


def test_family_partitions_are_listed_oldest_first(open_store):
    store = open_store()
    for day in ("20260502", "20260501", "20260601"):
        store.write(lambda tx, day=day: tx.put(f"audit.{day}", "audit", {"id": day}))
    assert store.partitions("audit") == ["audit.20260501", "audit.20260502", "audit.20260601"]
    assert store.write(lambda tx: tx.partitions("audit"))[0] == "audit.20260501"
    assert store.village_ids() == []  # a family's day is not a village


def test_a_summary_is_kept_until_its_village_changes(open_store):
    store = open_store()
    store.write(lambda tx: tx.put("v1", "households", {"id": "a"}))
    calls = []

    def compute():
        calls.append(1)
        return {"households": store.count("v1", "households")}
    assert store.summary("v1", "size", compute) == {"households": 1}
    assert store.summary("v1", "size", compute) == {"households": 1} and len(calls) == 1
    store.write(lambda tx: tx.put("v2", "households", {"id": "b"}))  # another village: still kept
    assert store.summary("v1", "size", compute) == {"households": 1} and len(calls) == 1
    store.write(lambda tx: tx.put("v1", "households", {"id": "c"}))
    assert store.summary("v1", "size", compute) == {"households": 2} and len(calls) == 2


def test_export_is_a_plain_tinydb_folder_of_everything(open_store, tmp_path):
    import json
    store = open_store()
    store.write(lambda tx: [tx.put(CORE, "users", {"id": "u1"}), tx.put("v1", "households", {"id": "h1"}),
                            tx.put("v1", "submissions", {"uuid": "s1"}),
                            tx.put("audit.20260501", "audit", {"id": "e1"})])
    out = tmp_path / "export"
    seq = store.export_to(str(out))
    assert seq == store.seq
    village = json.loads((out / "villages" / "v1.json").read_text(encoding="utf-8"))
    assert [d["id"] for d in village["households"].values()] == ["h1"]
    assert [d["uuid"] for d in village["submissions"].values()] == ["s1"]
    core = json.loads((out / "core.json").read_text(encoding="utf-8"))
    assert [d["id"] for d in core["users"].values()] == ["u1"]
    assert (out / "audit" / "20260501.json").exists()
    again = Store(str(out), layout=LAYOUT, snapshot_every=0).open()  # the TinyDB store opens it as it is
    try:
        assert again.get("v1", "households", "h1")["id"] == "h1"
        assert again.partition_of("submissions", "s1") == "v1"
    finally:
        again.close()


def test_snapshot_loses_nothing_and_reopening_reads_the_same(open_store):
    store = open_store()
    store.write(lambda tx: tx.put("v1", "households", {"id": "h", "n": 1}))
    store.snapshot()
    store.write(lambda tx: tx.put("v1", "households", {"id": "h", "n": 2}))
    store.close()
    assert open_store().get("v1", "households", "h")["n"] == 2


# ---- the layout is passed in: the store names no record ------------------------------------------


def test_another_layout_decides_keys_families_folders_and_reopening(open_store, tmp_path):
    """Opened with a layout of another domain ({"things": "code"} unique server-wide, a "log"
    family by day), everything the domain's layout decides follows it: keyed lookups and locate,
    the family's partitions, the backup's folders, the key index after a reopen; the domain's own
    names ("submissions" by uuid, "audit.<day>") mean nothing to it."""
    import json
    store = open_store(OTHER)
    assert store.layout == OTHER
    store.write(lambda tx: [tx.put("v1", "things", {"code": "t-1", "n": 1}),
                            tx.put("v2", "things", {"code": "t-2"}),
                            tx.put("log.20260502", "entries", {"id": "e2"}),
                            tx.put("log.20260501", "entries", {"id": "e1"})])

    def check(store):
        assert store.get("v1", "things", "t-1")["n"] == 1
        assert store.locate("things", "t-2") == "v2" and store.partition_of("things", "t-1") == "v1"
        assert store.partitions_of("things", ["t-1", "t-2", "t-3"]) == {"t-1": "v1", "t-2": "v2", "t-3": None}
        assert store.write(lambda tx: (tx.locate("things", "t-2"), tx.partitions("log"))) == \
            ("v2", ["log.20260501", "log.20260502"])
        assert store.partitions("log") == ["log.20260501", "log.20260502"]
        assert store.get("log.20260501", "entries", "e1")["id"] == "e1"
        assert store.village_ids() == ["v1", "v2"] and store.partitions("audit") == []
    check(store)
    if not isinstance(store, Store):  # indexed as a global key, not found by a scan of every village
        indexed = store._read(lambda conn: conn.execute("SELECT tbl, key, village FROM jiedui_keys "
                                                        "ORDER BY key").fetchall())
        assert indexed == [("things", "t-1", "v1"), ("things", "t-2", "v2")]
    # keys by "code" in "things" only: by "id" elsewhere, the domain's names included
    with pytest.raises(ValueError, match="'code'"):
        store.write(lambda tx: tx.put("v1", "things", {"id": "t-9"}))
    with pytest.raises(ValueError, match="'id'"):
        store.write(lambda tx: tx.put("v1", "submissions", {"uuid": "s-1"}))
    with pytest.raises(ValueError, match="bad partition"):  # a family this layout does not have
        store.write(lambda tx: tx.put("audit.20260501", "audit", {"id": "a"}))
    found = store.write(lambda tx: [tx.put("v1", "things", {"code": "t-1", "n": 1, "again": True}),
                                    tx.search("v1", "things")])[1]  # a write reads its own, by code
    assert [(d["code"], d.get("again")) for d in found] == [("t-1", True)]

    out = tmp_path / "export"
    store.export_to(str(out))
    assert sorted(p.name for p in out.iterdir() if p.is_dir()) == ["log", "villages"]
    assert sorted(p.name for p in (out / "log").iterdir()) == ["20260501.json", "20260502.json"]
    day = json.loads((out / "log" / "20260501.json").read_text(encoding="utf-8"))
    assert day["_meta"]["1"]["partition"] == "log.20260501" and list(day["entries"].values())[0]["id"] == "e1"
    village = json.loads((out / "villages" / "v2.json").read_text(encoding="utf-8"))
    assert [d["code"] for d in village["things"].values()] == ["t-2"]
    backup = Store(str(out), layout=OTHER, snapshot_every=0).open()  # its key index names "things"
    try:
        check(backup)
    finally:
        backup.close()

    store.close()
    again = open_store(OTHER)
    if isinstance(again, Store):  # found through the key index: only the village holding it loads
        assert again.locate("things", "t-2") == "v2" and "v1" not in again._partitions
    check(again)
    if isinstance(again, Store):  # the folder's files, and the key index rebuilt from them alone
        again.close()
        data = tmp_path / "data"
        assert (data / "log" / "20260502.json").exists() and not (data / "audit").exists()
        for name in ("catalog.json", "keys.idx", "keys.new"):
            (data / name).unlink()
        rebuilt = open_store(OTHER)
        assert rebuilt.locate("things", "t-1") == "v1" and "v2" not in rebuilt._partitions
        check(rebuilt)


def test_a_layout_is_a_checked_value_that_cannot_change():
    assert OTHER.key_field("things") == "code" and OTHER.key_field("submissions") == "id"
    assert OTHER.family_of("log.20260501") == ("log", "20260501") and OTHER.family_of("audit.20260501") is None
    assert OTHER.family_of("log.2026") is None and OTHER.folders() == ("villages", "log")
    assert OTHER == StoreLayout({"things": "code"}, ["log"]) and hash(OTHER) == hash(StoreLayout({"things": "code"}, ("log",)))
    assert OTHER != LAYOUT
    with pytest.raises(AttributeError):
        OTHER.families = ("audit",)
    with pytest.raises(TypeError):
        OTHER.global_keys["submissions"] = "uuid"
    for bad in ("villages", "core", "Log", "log.day", "", "a/b", 7):
        with pytest.raises(ValueError):
            StoreLayout(families=(bad,))
    for bad in ({"things": ""}, {"": "code"}, {"things": None}):
        with pytest.raises(ValueError):
            StoreLayout(global_keys=bad)
    with pytest.raises(TypeError):  # no store opens without being told its layout
        Store("/nonexistent")
    with pytest.raises(TypeError):
        Store("/nonexistent", layout={"submissions": "uuid"})
