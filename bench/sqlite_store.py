"""The store interface over SQLite (WAL, synchronous=FULL): the yardstick in store_bench, and proof
that the interface is narrow enough for a server database later (issue 15). Standard library only.

The interface, as server/store.py's Store offers it and the record owners use it:
  write(fn) -> fn(tx)'s result, once durable; tx: get, peek, search, put, delete, locate,
    village_ids, partitions
  get(p, t, key) (a copy), peek(p, t, key) (read only), search(p, t, cond=None), count(p, t, cond)
  village_ids(), partitions(family), locate(table, key), partition_seq(p), summary(p, name, compute)
  seq, snapshot(), export_to(dir), close()
Documents may come prepared by server.store.encode (an object with .doc): only .doc matters here.
Like the real stores it names no record: `layout` (server.store.StoreLayout, the records layer's
server/records/layout.py) says which tables' keys are unique server-wide, and their key field.
"""

import json
import sqlite3
import threading


def _doc(doc):
    return getattr(doc, "doc", doc)


class _Tx:
    def __init__(self, store, cur):
        self.store, self.cur = store, cur

    def get(self, partition, table, key):
        row = self.cur.execute("SELECT doc FROM docs WHERE p=? AND t=? AND k=?",
                               (partition, table, key)).fetchone()
        return json.loads(row[0]) if row else None

    peek = get

    def search(self, partition, table, cond=None):
        rows = self.cur.execute("SELECT doc FROM docs WHERE p=? AND t=?", (partition, table))
        docs = [json.loads(r[0]) for r in rows]
        return [d for d in docs if cond is None or cond(d)]

    def put(self, partition, table, doc):
        self.store.seq += 1
        doc = dict(_doc(doc), seq=self.store.seq)
        key = doc[self.store.layout.key_field(table)]
        self.cur.execute("INSERT OR REPLACE INTO docs (p, t, k, seq, doc) VALUES (?,?,?,?,?)",
                         (partition, table, key, doc["seq"], json.dumps(doc, ensure_ascii=False)))
        self._cursor(partition, doc["seq"])
        return doc

    def delete(self, partition, table, key):
        self.store.seq += 1
        self.cur.execute("DELETE FROM docs WHERE p=? AND t=? AND k=?", (partition, table, key))
        self._cursor(partition, self.store.seq)

    def _cursor(self, partition, seq):
        self.cur.execute("INSERT INTO cursors (p, seq) VALUES (?, ?) ON CONFLICT (p) DO UPDATE "
                         "SET seq = excluded.seq", (partition, seq))

    def village_ids(self):
        return [r[0] for r in self.cur.execute(
            "SELECT p FROM cursors WHERE p != 'core' AND p NOT LIKE '%.%' ORDER BY p")]

    def partitions(self, family):
        return [r[0] for r in self.cur.execute(
            "SELECT p FROM cursors WHERE p LIKE ? ORDER BY p", (family + ".%",))]

    def locate(self, table, key):
        if not self.store.layout.is_global(table):
            raise ValueError(f"{table} keys are not indexed across partitions")
        row = self.cur.execute("SELECT p FROM docs WHERE t=? AND k=?", (table, key)).fetchone()
        return row[0] if row else None


class SqliteStore:
    def __init__(self, path, layout):
        self.layout = layout
        self.db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        self.db.execute("CREATE TABLE IF NOT EXISTS docs (p TEXT, t TEXT, k TEXT, seq INTEGER, doc TEXT,"
                        " PRIMARY KEY (p, t, k))")
        self.db.execute("CREATE INDEX IF NOT EXISTS docs_by_key ON docs (t, k)")
        self.db.execute("CREATE TABLE IF NOT EXISTS cursors (p TEXT PRIMARY KEY, seq INTEGER)")
        self.db.execute("CREATE TABLE IF NOT EXISTS summaries (p TEXT, name TEXT, seq INTEGER, "
                        "value TEXT, PRIMARY KEY (p, name))")
        self.lock = threading.Lock()
        self.seq = self.db.execute("SELECT COALESCE(MAX(seq), 0) FROM cursors").fetchone()[0]

    def write(self, fn):
        with self.lock:
            cur = self.db.cursor()
            cur.execute("BEGIN IMMEDIATE")
            try:
                result = fn(_Tx(self, cur))
            except BaseException:
                cur.execute("ROLLBACK")
                raise
            cur.execute("COMMIT")
            return result

    def _read(self, method, *args):
        with self.lock:
            return getattr(_Tx(self, self.db.cursor()), method)(*args)

    def get(self, partition, table, key):
        return self._read("get", partition, table, key)

    peek = get

    def search(self, partition, table, cond=None):
        return self._read("search", partition, table, cond)

    def count(self, partition, table, cond=None):
        return len(self.search(partition, table, cond))

    def village_ids(self):
        return self._read("village_ids")

    def partitions(self, family):
        return self._read("partitions", family)

    def locate(self, table, key):
        return self._read("locate", table, key)

    def partition_seq(self, partition):
        with self.lock:
            row = self.db.execute("SELECT seq FROM cursors WHERE p=?", (partition,)).fetchone()
        return row[0] if row else 0

    def summary(self, partition, name, compute):
        seq = self.partition_seq(partition)
        with self.lock:
            row = self.db.execute("SELECT seq, value FROM summaries WHERE p=? AND name=?",
                                  (partition, name)).fetchone()
        if row and row[0] == seq:
            return json.loads(row[1])
        value = compute()
        with self.lock:
            self.db.execute("INSERT OR REPLACE INTO summaries VALUES (?,?,?,?)",
                            (partition, name, seq, json.dumps(value, ensure_ascii=False)))
        return value

    def snapshot(self):
        with self.lock:
            self.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def close(self):
        self.db.close()
