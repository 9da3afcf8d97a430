"""What readers ask: copies of documents (peek: the stored one), searches, cursors and summaries."""

import json
import time


from server.store.common import CORE, PARTITION_RE, copy_doc


class Reads:
    """What readers ask: copies of documents (peek: the stored one), searches, cursors and summaries."""

    # ---- reads ---------------------------------------------------------------------------------

    def _read(self, partition, fn, default):
        """fn(partition) under the lock, the partition loaded first without holding it."""
        with self._lock:
            p = self._partitions.get(partition)
            if p is not None:  # the common case: loaded
                p.used = time.monotonic()
                return fn(p)
        while True:
            p = self._ensure(partition)
            if p is None:
                return default
            with self._lock:
                if self._partitions.get(partition) is p:
                    p.used = time.monotonic()
                    return fn(p)

    def _village_ids_locked(self):
        return sorted(n for n in self._entries if n != CORE and PARTITION_RE.match(n))

    def _family_locked(self, family):
        prefix = family + "."
        return sorted(n for n in self._entries if n.startswith(prefix) and self.layout.family_of(n))

    def _candidates_locked(self, table, key):
        """Partitions that may hold `key`: from the key index for tables whose keys are unique
        across partitions, else every village (slow: read each; only such tables are asked)."""
        if not self.layout.is_global(table):
            return self._village_ids_locked()
        return self._keys.candidates(key)

    def get(self, partition, table, key):
        doc = self._read(partition, lambda p: p.get(table, key), None)
        return copy_doc(doc) if doc is not None else None

    def peek(self, partition, table, key):
        """The stored document itself, not a copy: read it, never change it (cheaper than get)."""
        return self._read(partition, lambda p: p.get(table, key), None)

    def peek_many(self, partition, table, keys):
        """peek for each of `keys`, in their order (those not stored left out), under one lock:
        an export reads 100,000 documents, a lock and a lookup each was a tenth of its time."""
        return self._read(partition, lambda p: p.get_many(table, keys), [])

    def search(self, partition, table, cond=None, since=None):
        """Documents of a partition's table matching cond (a callable or a TinyDB query), and with
        seq > since when given (the pull-sync cursor: an index range on PostgreSQL)."""
        if since is not None:
            inner = cond
            cond = (lambda d: d.get("seq", 0) > since and (inner is None or inner(d)))
        docs = self._read(partition, lambda p: p.search(table, cond), [])
        return [copy_doc(d) for d in docs]

    def count(self, partition, table, cond=None):
        if cond is None:
            return self._read(partition, lambda p: len(p.tables.get(table, {})), 0)
        return self._read(partition, lambda p: len(p.search(table, cond)), 0)

    def village_ids(self):
        """Every village partition, loaded or not (none is loaded to answer)."""
        with self._lock:
            return self._village_ids_locked()

    def partitions(self, family):
        """Every partition of a record family of the layout (e.g. "audit": "audit.20260501", ...),
        oldest first."""
        with self._lock:
            return self._family_locked(family)

    def locate(self, table, key):
        """The partition holding `key` of a table whose keys are unique across partitions
        (the layout's global keys, e.g. submissions), or None; loads only the partition that holds it."""
        with self._lock:
            candidates = self._candidates_locked(table, key)
        for name in candidates:
            if self._read(name, lambda p: p.get(table, key) is not None, False):
                return name
        return None

    partition_of = locate  # the name stores.py's interface (and the PostgreSQL store) gives it

    def partitions_of(self, table, keys):
        """locate for many keys at once: {key: partition or None}."""
        return {k: self.locate(table, k) for k in keys}

    def partition_seq(self, partition):
        """The newest seq written to a partition (0 when it has none): a change cursor, so a
        cache of anything computed from one village stays right while this number stands.
        Answered from the catalogue: the partition is not loaded."""
        with self._lock:
            entry = self._entries.get(partition)
            return entry.last_seq if entry is not None else 0

    def summary(self, partition, name, compute):
        """A value computed from one partition, kept beside its cursor in the catalogue (and so
        across restarts) and recomputed only when the partition has changed since:
        `compute()` must read only that partition and return JSON. A cache, not a record: it is
        written with snapshots, not journaled; losing it costs one recompute."""
        with self._lock:
            entry = self._entries.get(partition)
            seq = entry.last_seq if entry is not None else 0
            hit = entry.summaries.get(name) if entry is not None else None
            if hit is not None and hit[0] == seq:
                return json.loads(hit[1])
        value = compute()
        encoded = json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
        with self._lock:
            entry = self._entries.get(partition)
            if entry is not None and not self.readonly:
                entry.summaries[name] = [seq, encoded]
                self._catalog_dirty = True
        return json.loads(encoded)

    @property
    def seq(self):
        """The newest seq readers can see: every write up to it is readable, as with
        partition_seq (a batch's seqs count only once the batch is applied)."""
        return self._seq
