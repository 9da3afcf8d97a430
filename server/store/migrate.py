"""`flask --app server migrate --to postgresql://...`: copy a TinyDB data folder into PostgreSQL.

The folder is opened with the TinyDB store (its lock held, so no TinyDB server writes meanwhile; its
journal replayed and snapshotted), then each partition file (plain TinyDB JSON) is copied in one
transaction, keeping every document's seq. Idempotent: a document is written only when the database
does not already hold it at that seq or later. Resumable: a partition whose file has not changed
since it was copied (its sha256 is recorded in jiedui_meta) is skipped, so a run stopped half way
picks up where it stopped. At the end the documents are counted per partition and table on both
sides. Attachments, the forms archive and the secret key go to the shared files folder when that is
not the data folder itself.
"""

import hashlib
import json
import os
import shutil

from server.store.common import CORE, PARTITION_RE
from server.store.tinydb import Store
from server.store.postgres import PgStore

CHUNK = 2000


def _partition_files(data_dir, layout):
    yield CORE, os.path.join(data_dir, "core.json")
    villages = os.path.join(data_dir, "villages")
    if os.path.isdir(villages):
        for name in sorted(os.listdir(villages)):
            if name.endswith(".json") and PARTITION_RE.match(name[:-5]):
                yield name[:-5], os.path.join(villages, name)
    for family in layout.families:  # <family>/<day>.json: partition "<family>.<day>"
        folder = os.path.join(data_dir, family)
        if os.path.isdir(folder):
            for name in sorted(os.listdir(folder)):
                partition = f"{family}.{name[:-5]}"
                if name.endswith(".json") and layout.family_of(partition):
                    yield partition, os.path.join(folder, name)


def _read(path):
    with open(path, "rb") as f:
        raw = f.read()
    data = json.loads(raw)
    meta = data.pop("_meta", {}).get("1", {})
    return hashlib.sha256(raw).hexdigest(), data, meta


def _copy_partition(conn, partition, tables, meta, layout):
    """One partition in one transaction; returns {table: documents in the file}."""
    counts = {}
    max_seq = int(meta.get("last_seq") or 0)
    for table, docs in tables.items():
        kf = layout.key_field(table)
        rows = []
        for doc in docs.values():
            key = doc.get(kf)
            if not isinstance(key, str) or not key:
                raise ValueError(f"{partition}/{table}: a document without a string {kf!r}")
            seq = doc.get("seq") if isinstance(doc.get("seq"), int) else 0
            max_seq = max(max_seq, seq)
            rows.append((key, seq, json.dumps(doc, ensure_ascii=False, separators=(",", ":"))))
        counts[table] = len(rows)
        for i in range(0, len(rows), CHUNK):
            part = rows[i:i + CHUNK]
            keys, seqs, texts = [r[0] for r in part], [r[1] for r in part], [r[2] for r in part]
            if partition == CORE:
                conn.execute(
                    "INSERT INTO jiedui_core (tbl, key, seq, doc) "
                    "SELECT %s, * FROM unnest(%s::text[], %s::bigint[], %s::jsonb[]) "
                    "ON CONFLICT (tbl, key) DO UPDATE SET seq = EXCLUDED.seq, doc = EXCLUDED.doc "
                    "WHERE jiedui_core.seq <= EXCLUDED.seq", (table, keys, seqs, texts))
                continue
            conn.execute(
                "INSERT INTO jiedui_village (village, tbl, key, seq, doc) "
                "SELECT %s, %s, * FROM unnest(%s::text[], %s::bigint[], %s::jsonb[]) "
                "ON CONFLICT (village, tbl, key) DO UPDATE SET seq = EXCLUDED.seq, doc = EXCLUDED.doc "
                "WHERE jiedui_village.seq <= EXCLUDED.seq", (partition, table, keys, seqs, texts))
            if layout.is_global(table):
                taken = conn.execute(
                    "INSERT INTO jiedui_keys (tbl, key, village) SELECT %s, k, %s FROM unnest(%s::text[]) k "
                    "ON CONFLICT (tbl, key) DO UPDATE SET village = jiedui_keys.village "
                    "RETURNING key, village", (table, partition, keys)).fetchall()
                elsewhere = [(k, v) for k, v in taken if v != partition]
                if elsewhere:
                    raise ValueError(f"{table} {elsewhere[0][0]!r} of {partition} is already stored in "
                                     f"{elsewhere[0][1]} ({len(elsewhere)} such)")
    conn.execute("INSERT INTO jiedui_partitions (partition, last_seq) VALUES (%s, %s) "
                 "ON CONFLICT (partition) DO UPDATE SET last_seq = "
                 "GREATEST(jiedui_partitions.last_seq, EXCLUDED.last_seq)", (partition, max_seq))
    conn.execute("SELECT setval('jiedui_seq', GREATEST((SELECT last_value FROM jiedui_seq), %s))",
                 (max(max_seq, 1),))
    return counts


def _db_counts(conn, partition):
    if partition == CORE:
        rows = conn.execute("SELECT tbl, count(*) FROM jiedui_core GROUP BY tbl").fetchall()
    else:
        rows = conn.execute("SELECT tbl, count(*) FROM jiedui_village WHERE village = %s GROUP BY tbl",
                            (partition,)).fetchall()
    return dict(rows)


def copy_files(data_dir, files_dir, echo):
    """Attachments, the forms archive and the secret key into the shared files folder."""
    if os.path.realpath(data_dir) == os.path.realpath(files_dir):
        return
    for folder in ("attachments", "forms"):
        src = os.path.join(data_dir, folder)
        if os.path.isdir(src):
            shutil.copytree(src, os.path.join(files_dir, folder), dirs_exist_ok=True,
                            ignore=shutil.ignore_patterns("*.part*", ".tmp-*"))
            echo(f"  已复制 copied {folder}/ -> {files_dir}")
    key = os.path.join(data_dir, "secret_key")
    if os.path.exists(key) and not os.path.exists(os.path.join(files_dir, "secret_key")):
        shutil.copy2(key, os.path.join(files_dir, "secret_key"))


def migrate(data_dir, url, echo, layout, *, files_dir=None, _after_partition=None):
    """Copy the TinyDB folder `data_dir` into the database at `url`; True when every count matches.
    `layout` (common.StoreLayout) is the one both stores are opened with."""
    # StoreLocked while a TinyDB server runs
    source = Store(data_dir, layout=layout, snapshot_every=0).open()
    try:
        source.snapshot()  # the journal folded into the partition files, which we then read
        target = PgStore(url, layout=layout, pool_size=2).open()
        try:
            with target._connection() as conn:
                ok = _migrate(conn, data_dir, echo, _after_partition, layout)
        finally:
            target.close()
    finally:
        source.close()
    if files_dir:
        copy_files(data_dir, files_dir, echo)
    return ok


def _migrate(conn, data_dir, echo, after_partition, layout):
    copied = skipped = 0
    expected = {}
    for partition, path in _partition_files(data_dir, layout):
        if not os.path.exists(path):
            continue
        sha, tables, meta = _read(path)
        expected[partition] = {t: len(d) for t, d in tables.items()}
        marker = f"migrated:{partition}"
        with conn.transaction():
            row = conn.execute("SELECT value FROM jiedui_meta WHERE key = %s", (marker,)).fetchone()
            if row and row[0].get("sha256") == sha:
                skipped += 1
                echo(f"  {partition}: 已复制过，跳过 already copied, skipped")
                continue
            counts = _copy_partition(conn, partition, tables, meta, layout)
            conn.execute("INSERT INTO jiedui_meta (key, value) VALUES (%s, %s::jsonb) "
                         "ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
                         (marker, json.dumps({"sha256": sha, "counts": counts})))
        copied += 1
        shown = ", ".join(f"{t} {n}" for t, n in sorted(counts.items())) or "empty"
        echo(f"  {partition}: 已复制 copied ({shown})")
        if after_partition:
            after_partition(partition)
    echo(f"分区 Partitions: {copied} 已复制 copied, {skipped} 跳过 skipped. 核对数量 Checking counts...")
    ok = True
    for partition, tables in expected.items():
        have = _db_counts(conn, partition)
        for table, n in sorted(tables.items()):
            got = have.get(table, 0)
            if got != n:
                ok = False
                echo(f"  数量不符 MISMATCH {partition}/{table}: 文件 file {n}, 数据库 database {got}")
    total = sum(sum(t.values()) for t in expected.values())
    if ok:
        echo(f"核对无误 All counts match: {total} documents in {len(expected)} partitions.")
    return ok


def replace_database(data_dir, url, echo, layout, *, files_dir=None, stamp="restore"):
    """A restore on PostgreSQL: the database's documents replaced by the TinyDB folder `data_dir`
    (a checked backup) in ONE transaction (a failure leaves the database as it was), counts checked
    inside it. The shared files folder gets the backup's attachments (added: a file is named by its
    submission's uuid, so none is overwritten by another) and its forms (the current ones moved to
    `before-restore-<stamp>/`). Returns True when every count matched (else nothing was changed)."""
    source = Store(data_dir, layout=layout, snapshot_every=0).open()
    try:
        source.snapshot()
    finally:
        source.close()
    target = PgStore(url, layout=layout, pool_size=2).open()
    try:
        with target._connection() as conn:
            with conn.transaction():
                conn.execute("TRUNCATE jiedui_core, jiedui_village, jiedui_keys, jiedui_partitions, "
                             "jiedui_summaries")
                conn.execute("DELETE FROM jiedui_meta WHERE key LIKE 'migrated:%%'")
                ok = _migrate(conn, data_dir, echo, None, layout)
                if not ok:
                    raise _CountsDiffer()
                # the data went back, and so does the seq (as on TinyDB): a phone whose cursor is
                # ahead of the server is told to start again (records/epochs.py)
                conn.execute("SELECT setval('jiedui_seq', GREATEST((SELECT COALESCE(max(last_seq), 0) "
                             "FROM jiedui_partitions), 1))")
    except _CountsDiffer:
        return False
    finally:
        target.close()
    if files_dir:
        aside = os.path.join(files_dir, f"before-restore-{stamp}")
        for folder in ("forms", "forms-published"):
            current = os.path.join(files_dir, folder)
            if os.path.isdir(current):
                os.makedirs(aside, exist_ok=True)
                shutil.move(current, os.path.join(aside, folder))
        for folder in ("attachments", "forms", "forms-published"):
            src = os.path.join(data_dir, folder)
            if os.path.isdir(src):
                shutil.copytree(src, os.path.join(files_dir, folder), dirs_exist_ok=True,
                                ignore=shutil.ignore_patterns("*.part*", ".tmp-*"))
    return True


class _CountsDiffer(Exception):
    """Rolls the restore's transaction back."""
