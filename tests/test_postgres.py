"""PostgreSQL only: several app servers on one database, faults, schema versions, migrate and backup.

Concurrency is forced, not hoped for: the test holds the store's commit lock (an advisory lock) from
its own connection, so a write reaches its commit and waits there while the other server's write
starts; the test waits on pg_locks for both to be queued, then lets go."""

import json
import os
import subprocess
import threading
from contextlib import contextmanager

import psycopg
import pytest
from tinydb import TinyDB

from server.records.layout import LAYOUT
from server import create_app
from server.store import close_app_store, get_store
from server.store.postgres import COMMIT_LOCK, SCHEMA_VERSION, PgStore
from server.store import SchemaTooNew, StoreUnavailable
from tests.conftest import PASSWORD, Api, seed_world
from tests.helpers import CHEAP_HASH, app_config, attach, jpeg_bytes, phone_visit
from tests.live import PYTHON, ROOT
from tests.pg import wait_for

pytestmark = pytest.mark.postgres


@pytest.fixture
def store_kind():
    """The `app` and `api` fixtures here are on PostgreSQL only."""
    return "postgres"


def make_app(tmp_path, url, name, **extra):
    config = {"DATA_DIR": str(tmp_path / name), "FILES_DIR": str(tmp_path / "files"),
              "DATABASE_URL": url, "TESTING": True, "PASSWORD_HASH_METHOD": CHEAP_HASH}
    config.update(extra)
    return create_app(config)


@pytest.fixture
def servers(tmp_path, pg_url):
    """Two app servers (own data folders, one files folder) on one database, seeded once."""
    apps = [make_app(tmp_path, pg_url, "a"), make_app(tmp_path, pg_url, "b")]
    with apps[0].app_context():
        seed_world(get_store())
    yield apps
    for app in apps:
        close_app_store(app)


def logged_in(app, user="cadre1", password=PASSWORD):
    api = Api(app.test_client())
    assert api.login(user, password).status_code == 200
    return api


@contextmanager
def commit_lock(url):
    """Hold the stores' commit lock: writes reach their commit, then wait."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (COMMIT_LOCK,))
        try:
            yield conn
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (COMMIT_LOCK,))


def waiting(conn):
    """Backends waiting for a lock (the commit lock, a key's lock, a row): [(pid, lock type)]."""
    return conn.execute("SELECT DISTINCT pid, locktype FROM pg_locks WHERE NOT granted ORDER BY pid").fetchall()


def in_thread(fn, *args):
    box = {}
    t = threading.Thread(target=lambda: box.setdefault("result", fn(*args)))
    t.start()
    return t, box


# ---- several servers --------------------------------------------------------------------------


def test_two_servers_ingesting_one_uuid_together_store_it_once(servers, pg_url):
    a, b, c = logged_in(servers[0]), logged_in(servers[1]), logged_in(servers[1])
    item = phone_visit()
    other = dict(item, answers=dict(item["answers"], present="配偶"))
    with commit_lock(pg_url) as conn:
        ta, ra = in_thread(lambda: a.post("/api/v1/submissions", {"submissions": [item]}))
        wait_for(lambda: len(waiting(conn)) == 1, what="server a at its commit")
        tb, rb = in_thread(lambda: b.post("/api/v1/submissions", {"submissions": [item]}))
        tc, rc = in_thread(lambda: c.post("/api/v1/submissions", {"submissions": [other]}))
        wait_for(lambda: len(waiting(conn)) == 3, what="server b waiting for the uuid")
    for t in (ta, tb, tc):
        t.join()
    statuses = sorted(r["result"].get_json()["results"][0]["status"] for r in (ra, rb, rc))
    assert statuses == ["created", "duplicate", "rejected"]
    subs = a.get("/api/v1/submissions?household_id=v1-0001").get_json()["submissions"]
    assert [s["uuid"] for s in subs] == [item["uuid"]] and subs[0]["answers"]["present"] == "户主"


def test_two_servers_pushing_the_same_batches_at_once_store_each_uuid_once(servers):
    apis = [logged_in(servers[0]), logged_in(servers[1])]
    batches = [[phone_visit(f"v1-000{i % 3 + 1}") for i in range(4)] for _ in range(6)]
    results = []
    barrier = threading.Barrier(2)

    def push(api):
        for batch in batches:
            barrier.wait()
            results.append(api.post("/api/v1/submissions", {"submissions": batch}).get_json())
    threads = [threading.Thread(target=push, args=(api,)) for api in apis]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    created = [r["uuid"] for body in results for r in body["results"] if r["status"] == "created"]
    others = [r["status"] for body in results for r in body["results"] if r["status"] != "created"]
    assert sorted(created) == sorted(i["uuid"] for b in batches for i in b) and set(others) == {"duplicate"}
    stored = [s["uuid"] for hid in ("v1-0001", "v1-0002", "v1-0003")
              for s in apis[1].get(f"/api/v1/submissions?household_id={hid}").get_json()["submissions"]]
    assert sorted(stored) == sorted(created)


@pytest.mark.parametrize("fields,kind", [(("phone", "address"), "soft"), (("group", "group"), "hard")])
def test_a_clash_between_two_servers_is_merged_per_field_and_recorded(servers, pg_url, fields, kind):
    a, b = logged_in(servers[0]), logged_in(servers[1])
    values = {"phone": "13700000000", "address": "新地址 8 号", "group": "二组"}
    with commit_lock(pg_url) as conn:
        ta, ra = in_thread(lambda: a.client.put("/api/v1/households/v1-0002", json={
            "changes": {fields[0]: values[fields[0]]}, "base_version": 1}, headers={"X-CSRFToken": a.token}))
        wait_for(lambda: len(waiting(conn)) == 1, what="server a at its commit")
        other = "三组" if kind == "hard" else values[fields[1]]
        tb, rb = in_thread(lambda: b.client.put("/api/v1/households/v1-0002", json={
            "changes": {fields[1]: other}, "base_version": 1}, headers={"X-CSRFToken": b.token}))
        wait_for(lambda: len(waiting(conn)) == 2, what="server b waiting for the household")
    ta.join()
    tb.join()
    assert ra["result"].get_json()["clash"] is None
    clash = rb["result"].get_json()["clash"]
    assert clash["kind"] == kind
    h = a.get("/api/v1/households/v1-0002").get_json()
    assert h["version"] == 3
    if kind == "soft":
        assert h["phone"] == values["phone"] and h["address"] == values["address"]
    else:
        assert h["group"] == "三组" and clash["overwritten"] == {"group": "二组"}


def test_writing_commands_work_beside_running_servers(servers):
    runner = servers[1].test_cli_runner()
    with servers[0].app_context():
        get_store()  # a "server" is up; there is no folder lock on PostgreSQL
    r = runner.invoke(args=["user", "create", "newcadre", "--role", "cadre", "--village", "v1",
                            "--password-stdin"], input="long-enough-pw-1\n")
    assert r.exit_code == 0, r.output
    assert logged_in(servers[0], "newcadre", "long-enough-pw-1").token


def test_a_form_published_on_one_server_is_served_by_the_other(tmp_path, pg_url):
    """Server a gets a new form (archived into the shared files folder); server b notices the
    archive changed and serves it too, without a restart."""
    import shutil
    forms_a = tmp_path / "forms-a"
    shutil.copytree(os.path.join(ROOT, "forms"), forms_a)
    apps = [make_app(tmp_path, pg_url, "a", FORMS_DIR=str(forms_a), FORMS_CHECK_EVERY=0),
            make_app(tmp_path, pg_url, "b", FORMS_CHECK_EVERY=0)]
    try:
        with apps[0].app_context():
            seed_world(get_store())
        b = logged_in(apps[1])
        ids = {f["id"] for f in b.get("/api/v1/bootstrap").get_json()["forms"]}
        assert "pv_lecture" not in ids
        from server.services import form_publish
        with open(os.path.join(ROOT, "tests", "fixtures", "pv_lecture.yaml"), "rb") as f:
            checked, registry = form_publish.publish(apps[0], f.read())  # published on a
        assert checked["ok"] and registry is not None, checked["problems"]
        forms = {f["id"]: f["version"] for f in b.get("/api/v1/bootstrap").get_json()["forms"]}
        assert forms["pv_lecture"] == 1 and b.get("/api/v1/forms/pv_lecture").status_code == 200
        # and after a restart too: the published form is in the shared files folder
        close_app_store(apps[1])
        apps[1] = make_app(tmp_path, pg_url, "b", FORMS_CHECK_EVERY=0)
        again = logged_in(apps[1])
        assert {f["id"] for f in again.get("/api/v1/bootstrap").get_json()["forms"]} >= {"pv_lecture"}
    finally:
        for app in apps:
            close_app_store(app)


# ---- faults -------------------------------------------------------------------------------------


def test_a_connection_lost_mid_push_is_a_503_and_nothing_is_written(app, api, pg_url):
    api.login("cadre1")
    item = phone_visit()
    with commit_lock(pg_url) as conn:
        t, box = in_thread(lambda: api.post("/api/v1/submissions", {"submissions": [item]}))
        wait_for(lambda: len(waiting(conn)) == 1, what="the push at its commit")
        (pid, _), = waiting(conn)
        conn.execute("SELECT pg_terminate_backend(%s)", (pid,))
    t.join()
    r = box["result"]
    assert r.status_code == 503 and r.headers["Retry-After"]
    assert r.get_json()["error"] == "database_unavailable"
    assert api.get(f"/api/v1/submissions/{item['uuid']}").status_code == 404
    assert api.get("/api/v1/households/v1-0001").get_json()["version"] == 1
    again = api.post("/api/v1/submissions", {"submissions": [item]})  # the phone retries later
    assert again.status_code == 200 and again.get_json()["results"][0]["status"] == "created"


def test_an_exhausted_pool_answers_503_and_never_hangs(tmp_path, pg_url):
    app = make_app(tmp_path, pg_url, "d", DB_POOL_SIZE=1, DB_POOL_TIMEOUT=0.3)
    try:
        with app.app_context():
            seed_world(get_store())
        first, second = logged_in(app), logged_in(app)
        with commit_lock(pg_url) as conn:
            t, box = in_thread(lambda: first.post("/api/v1/submissions", {"submissions": [phone_visit()]}))
            wait_for(lambda: len(waiting(conn)) == 1, what="the push holding the only connection")
            r = second.get("/api/v1/households?since=0")
            assert r.status_code == 503 and r.headers["Retry-After"]
            assert r.get_json()["error"] == "database_unavailable"
        t.join()
        assert box["result"].get_json()["results"][0]["status"] == "created"
    finally:
        close_app_store(app)


def test_deadlocks_are_retried(pg_url):
    with PgStore(pg_url, layout=LAYOUT).open() as store:
        # core keys are held one by one (a village is held whole, so it cannot deadlock)
        store.write(lambda tx: [tx.put("core", "meta", {"id": k, "n": 0}) for k in ("A", "B")])
        barrier = threading.Barrier(2)

        def crossing(first, second):
            tries = []

            def fn(tx):
                tries.append(1)
                for i, key in enumerate((first, second)):
                    doc = tx.get("core", "meta", key)
                    doc["n"] += 1
                    tx.put("core", "meta", doc)
                    if i == 0 and len(tries) == 1:
                        barrier.wait(10)
                return len(tries)
            return store.write(fn)
        t1, r1 = in_thread(crossing, "A", "B")
        t2, r2 = in_thread(crossing, "B", "A")
        t1.join()
        t2.join()
        assert store.get("core", "meta", "A")["n"] == 2 and store.get("core", "meta", "B")["n"] == 2
        assert max(r1["result"], r2["result"]) == 2 and store.stats["retries"] >= 1


def flask(*args, env, input=None):
    return subprocess.run([PYTHON, "-m", "flask", "--app", "server", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60, input=input)


def test_a_database_that_cannot_be_reached_stops_init_and_serve_with_a_clear_message(tmp_path):
    env = dict(os.environ, JIEDUI_DATA_DIR=str(tmp_path / "d"),
               JIEDUI_DATABASE_URL=f"postgresql://postgres@/x?host={tmp_path}/nowhere&port=1",
               JIEDUI_DB_CONNECT_TIMEOUT="2")
    for args in (["init"], ["serve", "--port", "1"]):
        r = flask(*args, env=env)
        assert r.returncode != 0
        assert "database cannot be reached" in r.stderr, r.stderr
        assert "Traceback" not in r.stderr


def test_a_schema_newer_than_the_code_refuses_to_start(tmp_path, pg_url):
    with PgStore(pg_url, layout=LAYOUT).open() as store:
        with store._connection() as conn:
            assert conn.execute("SELECT value FROM jiedui_meta WHERE key = 'schema_version'").fetchone()[0] \
                == SCHEMA_VERSION
            conn.execute("UPDATE jiedui_meta SET value = %s WHERE key = 'schema_version'",
                         (json.dumps(SCHEMA_VERSION + 1),))
    with pytest.raises(SchemaTooNew, match="newer than this code"):
        PgStore(pg_url, layout=LAYOUT).open()
    env = dict(os.environ, JIEDUI_DATA_DIR=str(tmp_path / "d"), JIEDUI_DATABASE_URL=pg_url)
    for args in (["init"], ["serve", "--port", "1"]):
        r = flask(*args, env=env)
        assert r.returncode != 0 and "newer than this code" in r.stderr and "Traceback" not in r.stderr


def test_an_older_schema_is_upgraded_in_place_keeping_the_data(pg_url):
    with PgStore(pg_url, layout=LAYOUT).open() as store:
        store.write(lambda tx: tx.put("v1", "households", {"id": "h"}))
        with store._connection() as conn:
            conn.execute("UPDATE jiedui_meta SET value = '0' WHERE key = 'schema_version'")
    with PgStore(pg_url, layout=LAYOUT).open() as store:
        assert store.get("v1", "households", "h")["id"] == "h"
        with store._connection() as conn:
            assert conn.execute("SELECT value FROM jiedui_meta WHERE key = 'schema_version'").fetchone()[0] \
                == SCHEMA_VERSION


def test_reads_raise_store_unavailable_once_the_database_is_gone(tmp_path, pg_cluster):
    url = pg_cluster.new_database("gone_soon")
    store = PgStore(url, layout=LAYOUT, pool_timeout=0.5, connect_timeout=1).open()
    try:
        with pg_cluster.connect() as conn:
            conn.execute("DROP DATABASE gone_soon WITH (FORCE)")
        with pytest.raises(StoreUnavailable):
            store.get("v1", "households", "h")
    finally:
        store.close()


# ---- moving and backing up ------------------------------------------------------------------------


def test_migrate_copies_a_tinydb_folder_idempotently_and_resumes(tmp_path, pg_url):
    data = tmp_path / "tiny"
    tiny = create_app(app_config(str(data)))
    with tiny.app_context():
        seed_world(get_store())
    api = logged_in(tiny)
    pushed = [phone_visit(f"v{n}-0001") for n in (1, 1, 1)]
    assert api.post("/api/v1/submissions", {"submissions": pushed}).status_code == 200
    close_app_store(tiny)

    from server.store.migrate import migrate
    lines = []

    def stop_after_first(partition):
        raise KeyboardInterrupt  # the operator pressed Ctrl-C after the first partition
    with pytest.raises(KeyboardInterrupt):
        migrate(str(data), pg_url, lines.append, LAYOUT, _after_partition=stop_after_first)
    lines.clear()
    assert migrate(str(data), pg_url, lines.append, LAYOUT)  # resumes: the first partition is skipped
    assert sum("already copied" in line for line in lines) == 1 and "All counts match" in lines[-1]
    lines.clear()
    assert migrate(str(data), pg_url, lines.append, LAYOUT)  # idempotent: nothing copied again
    partitions = 3 + len(list((data / "audit").glob("*.json")))  # core, v1, v2, the audit days
    assert sum("already copied" in line for line in lines) == partitions

    on_pg = make_app(tmp_path, pg_url, "pg", FILES_DIR=str(data))
    try:
        pg_api = logged_in(on_pg)  # the same users and passwords
        subs = pg_api.get("/api/v1/submissions?household_id=v1-0001").get_json()["submissions"]
        assert sorted(s["uuid"] for s in subs) == sorted(i["uuid"] for i in pushed)
        dup = pg_api.post("/api/v1/submissions", {"submissions": pushed[:1]}).get_json()
        assert dup["results"][0]["status"] == "duplicate"  # the uuid index came along
        new = pg_api.post("/api/v1/submissions", {"submissions": [phone_visit()]}).get_json()
        assert new["results"][0]["status"] == "created"
        with on_pg.app_context():  # seqs carry on above the migrated ones
            store = get_store()
            assert store.seq > max(s["seq"] for s in subs)
            from server.records import audit  # the audit log's day partitions came along
            assert {i["uuid"] for i in pushed} <= {e["target"] for e in audit.entries(store, action="submission")}
    finally:
        close_app_store(on_pg)


def test_backup_from_postgres_is_a_tinydb_folder_a_county_can_run_alone(servers, tmp_path):
    import hashlib
    api = logged_in(servers[0])
    photo = jpeg_bytes()
    item = phone_visit(photo_1="photo_1-a.jpg")
    item["attachments"] = [{"name": "photo_1-a.jpg", "sha256": hashlib.sha256(photo).hexdigest(),
                            "size": len(photo), "type": "image/jpeg"}]
    assert api.post("/api/v1/submissions", {"submissions": [item]}).get_json()["results"][0]["status"] == "created"
    assert attach(logged_in(servers[1]), item["uuid"], "photo_1-a.jpg", photo).get_json()["complete"] is True
    out = tmp_path / "backup"
    r = servers[1].test_cli_runner().invoke(args=["backup", str(out), "--with-secret"])
    assert r.exit_code == 0, r.output
    for path in [out / "core.json", *(out / "villages").glob("*.json")]:
        with TinyDB(path) as db:  # plain TinyDB opens every file
            assert db.tables()
    assert (out / "attachments" / item["uuid"] / "photo_1-a.jpg").read_bytes() == photo
    assert (out / "secret_key").read_text() == servers[0].config["SECRET_KEY"]
    alone = create_app(app_config(str(out)))
    try:
        assert alone.config["DATABASE_URL"] is None and alone.config["SECRET_KEY"] == servers[0].config["SECRET_KEY"]
        local = logged_in(alone)  # the same accounts and passwords
        sub = local.get(f"/api/v1/submissions/{item['uuid']}").get_json()
        assert sub["answers"]["photo_1"] == "photo_1-a.jpg" and sub["complete"] is True
        h = local.get("/api/v1/households/v1-0001").get_json()
        assert h["last_visit_date"] == "2026-05-01" and h["version"] == 1
        assert len(local.get("/api/v1/households?since=0&limit=100").get_json()["households"]) == 3
        again = local.post("/api/v1/submissions", {"submissions": [item]}).get_json()
        assert again["results"][0]["status"] == "duplicate"  # the uuid is known here too
        fresh = local.post("/api/v1/submissions", {"submissions": [phone_visit()]}).get_json()
        assert fresh["results"][0]["status"] == "created"
        assert local.get(f"/api/v1/submissions/{item['uuid']}").status_code == 200
        with alone.app_context():  # the audit log came along, in its day files
            from server.records import audit
            assert item["uuid"] in {e["target"] for e in audit.entries(get_store(), action="submission")}
        assert list((out / "audit").glob("*.json"))
    finally:
        close_app_store(alone)
