"""The store interface over SQLite (WAL, synchronous=FULL): the yardstick in store_bench, and proof
that the interface is narrow enough for a server database later. Standard library only."""

import json
import sqlite3
import threading

KEY_FIELDS = {"submissions": "uuid"}


class _Tx:
    def __init__(self, store, cur):
        self.store, self.cur = store, cur

    def get(self, partition, table, key):
        row = self.cur.execute("SELECT doc FROM docs WHERE p=? AND t=? AND k=?",
                               (partition, table, key)).fetchone()
        return json.loads(row[0]) if row else None

    def search(self, partition, table, cond=None):
        rows = self.cur.execute("SELECT doc FROM docs WHERE p=? AND t=?", (partition, table))
        docs = [json.loads(r[0]) for r in rows]
        return [d for d in docs if cond is None or cond(d)]

    def put(self, partition, table, doc):
        self.store.seq += 1
        doc = dict(doc, seq=self.store.seq)
        key = doc[KEY_FIELDS.get(table, "id")]
        self.cur.execute("INSERT OR REPLACE INTO docs (p, t, k, seq, doc) VALUES (?,?,?,?,?)",
                         (partition, table, key, doc["seq"], json.dumps(doc, ensure_ascii=False)))
        return doc

    def delete(self, partition, table, key):
        self.cur.execute("DELETE FROM docs WHERE p=? AND t=? AND k=?", (partition, table, key))

    def village_ids(self):
        return [r[0] for r in self.cur.execute("SELECT DISTINCT p FROM docs WHERE p != 'core'")]


class SqliteStore:
    def __init__(self, path):
        self.db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        self.db.execute("CREATE TABLE IF NOT EXISTS docs (p TEXT, t TEXT, k TEXT, seq INTEGER, doc TEXT,"
                        " PRIMARY KEY (p, t, k))")
        self.lock = threading.Lock()
        self.seq = self.db.execute("SELECT COALESCE(MAX(seq), 0) FROM docs").fetchone()[0]

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

    def get(self, partition, table, key):
        with self.lock:
            return _Tx(self, self.db.cursor()).get(partition, table, key)

    def search(self, partition, table, cond=None):
        with self.lock:
            return _Tx(self, self.db.cursor()).search(partition, table, cond)

    def close(self):
        self.db.close()
