"""The pieces the TinyDB store is built from: a partition in memory and its catalogue entry, the
key index, a write function's transaction, and the folder's file names."""

import array
import bisect
import hashlib
import json
import logging
import os
import re
import resource
import time

from tinydb import TinyDB
from tinydb.storages import Storage

from server.store.common import (
    ABSENT, ENCODER, Encoded, PendingWrites, UnstorableValue, copy_doc, encode_body, with_seq, write_json_atomic, patch_step, patched)


log = logging.getLogger(__name__)

JOURNAL_RE = re.compile(r"^journal\.(\d{8})\.log$")
CATALOG = "catalog.json"
KEYS_FILE = "keys.idx"  # the key index's sorted array
KEYS_NEW = "keys.new"  # its partition names and recent additions
CATALOG_FORMAT = 1
# A snapshot file starts with its _meta table, so its cursors can be read without parsing it all.
HEADER_RE = re.compile(rb'^\{"_meta":\{"1":\{"seq":(\d+),"partition":"([A-Za-z0-9.]*)","last_seq":(\d+)')
# Memory a partition holds per byte of its JSON file (dicts and strings cost more than their text):
# 3.9 measured with tracemalloc on the county bench's villages (bench/county_bench.py prints the
# process's RSS, which runs above the budget by what the allocator keeps after a village goes).
MEMORY_PER_FILE_BYTE = 4.0


def default_memory_mb():
    """A quarter of the machine's memory (MemTotal), or 1 GB when it cannot be read."""
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return max(64, int(line.split()[1]) // 1024 // 4)
    except (OSError, ValueError, IndexError):
        pass
    return 1024


class _MemoryStorage(Storage):
    """TinyDB storage whose read returns the live dict: the store mutates it directly."""

    def __init__(self):
        self.memory = {}

    def read(self):
        return self.memory

    def write(self, data):  # never called by the store; kept for TinyDB's interface
        self.memory = data


def _cursor(value, what):
    """A seq read from a file: a whole number >= 0, or ValueError (a hand repair may write null)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{what} is {value!r}, not a sequence number")
    return value


class _Partition:
    """One TinyDB: its tables live in memory keyed by str(doc_id), exactly like TinyDB's JSON file.
    `key_field(table)` (the store's layout) names the field each table's documents are keyed by."""

    def __init__(self, name, path, key_field):
        self.name = name
        self.path = path
        self.key_field = key_field
        self.db = TinyDB(storage=_MemoryStorage)
        self.tables = self.db.storage.memory  # the live dict TinyDB reads (never replaced)
        self.snapshot_seq = 0
        self.last_seq = 0  # the newest seq written to this partition: its change cursor
        self.dirty = False
        self.writing = False  # its snapshot is being written: not evictable until it is on disk
        self.used = time.monotonic()
        self.size = 0  # estimated bytes in memory
        self.keys = {}  # table -> {key: str(doc_id)}
        self.next_id = {}  # table -> int
        self.queried = set()  # tables TinyDB has cached query results for

    def load_bytes(self, raw):
        """Fill from a snapshot file's bytes; ValueError when they are not a TinyDB file."""
        data = json.loads(raw)
        if not isinstance(data, dict) or not all(isinstance(t, dict) for t in data.values()):
            raise ValueError("not a TinyDB file (tables of documents)")
        meta = data.pop("_meta", {}).get("1", {})
        if not isinstance(meta, dict):
            raise ValueError("_meta is not a table of cursors")
        self.snapshot_seq = _cursor(meta.get("seq", 0), "_meta seq")
        self.last_seq = _cursor(meta.get("last_seq", 0), "_meta last_seq")
        self.tables.clear()
        self.tables.update(data)
        for table, docs in data.items():
            if not all(isinstance(d, dict) for d in docs.values()):
                raise ValueError(f"table {table} holds something that is not a document")
            for doc_id, d in docs.items():   # readers compare seqs: one `null` would answer 500s
                if "seq" in d:
                    _cursor(d["seq"], f"{table}/{doc_id} seq")
            kf = self.key_field(table)
            self.keys[table] = {doc[kf]: doc_id for doc_id, doc in docs.items() if kf in doc}
            self.next_id[table] = max((int(i) for i in docs if i.isdigit()), default=0) + 1
        if not self.last_seq:
            self.last_seq = self.max_seq()
        self.size = int(len(raw) * MEMORY_PER_FILE_BYTE)

    def picture(self):
        """Documents are replaced, never mutated in place, so shallow copies of the tables are a
        consistent picture (taken under the store lock); serialising it can happen outside."""
        return {t: dict(docs) for t, docs in self.tables.items()}

    def write_snapshot(self, path, tables, seq):
        """A plain TinyDB file, its _meta table first (the cursors, readable from the header)."""
        os.makedirs(os.path.dirname(path), exist_ok=True)
        return write_json_atomic(path, {"_meta": {"1": {"seq": seq, "partition": self.name,
                                                        "last_seq": self.last_seq}}, **tables})

    def max_seq(self):
        best = max(self.snapshot_seq, self.last_seq)
        for docs in self.tables.values():
            for doc in docs.values():
                s = doc.get("seq", 0)
                if isinstance(s, int) and s > best:
                    best = s
        return best

    def get(self, table, key):
        keys = self.keys.get(table)  # no empty dict made per read: exports read 100,000 in a row
        doc_id = keys.get(key) if keys is not None else None
        if doc_id is None:
            return None
        return self.tables[table][doc_id]

    def get_many(self, table, keys):
        """get for each of `keys`, in their order, those not stored left out."""
        ids = self.keys.get(table)
        if ids is None:
            return []
        docs, find = self.tables[table], ids.get
        return [docs[doc_id] for doc_id in map(find, keys) if doc_id is not None]

    def put(self, table, doc):
        kf = self.key_field(table)
        keys = self.keys.setdefault(table, {})
        docs = self.tables.setdefault(table, {})
        doc_id = keys.get(doc[kf])
        if doc_id is None:
            n = self.next_id.get(table, 1)
            self.next_id[table] = n + 1
            doc_id = str(n)
            keys[doc[kf]] = doc_id
        docs[doc_id] = doc
        if table in self.queried:
            self.db.table(table).clear_cache()
        self.dirty = True
        seq = doc.get("seq", 0)
        if isinstance(seq, int) and seq > self.last_seq:
            self.last_seq = seq

    def delete(self, table, key):
        doc_id = self.keys.get(table, {}).pop(key, None)
        if doc_id is not None:
            del self.tables[table][doc_id]
            if table in self.queried:
                self.db.table(table).clear_cache()
            self.dirty = True

    def search(self, table, cond):
        if table not in self.tables:
            return []
        t = self.db.table(table)
        if cond is None:
            return list(self.tables[table].values())
        if hasattr(cond, "is_cacheable"):
            self.queried.add(table)
            return t.search(cond)
        return [doc for doc in self.tables[table].values() if cond(doc)]


class _Entry:
    """What the store knows of a partition without loading it (kept in the catalogue)."""

    __slots__ = ("name", "snapshot_seq", "last_seq", "size", "header", "summaries", "generation",
                 "broken", "fd")

    def __init__(self, name):
        self.name = name
        self.snapshot_seq = 0
        self.last_seq = 0
        self.size = None  # the file's size when last written or scanned (None: no file yet)
        self.header = None  # the file's header cursors [seq, last_seq] (None: unknown)
        self.summaries = {}  # name -> [seq, value]
        self.generation = 0  # bumped at every load and eviction: a load racing one is discarded
        self.broken = None  # (file size, mtime) of a file that failed to load, and why
        self.fd = None  # read-only stores: the file as it was when the store opened

    def to_json(self):
        return {"snapshot_seq": self.snapshot_seq, "last_seq": self.last_seq, "size": self.size,
                "header": self.header, "summaries": self.summaries}


class _KeyIndex:
    """Keys unique across partitions -> the partitions that may hold them, in 8 bytes a key: a
    48-bit hash and a 16-bit partition number packed in one sorted array, plus a dict of recent
    additions merged in now and then. A hit is a candidate (confirm it in the partition); a key that
    was ever stored is never missed. Deleted keys stay as stale candidates until a rebuild."""

    MERGE_AT = 50000

    def __init__(self):
        self.names = []  # partition number -> name
        self.numbers = {}
        self.base = array.array("Q")  # sorted (hash << 16 | number)
        self.recent = {}  # hash -> [numbers]
        self.changed = False
        self.base_changed = False

    @staticmethod
    def hash(key):
        data = key.encode("utf-8", "surrogatepass") if isinstance(key, str) else repr(key).encode()
        return int.from_bytes(hashlib.blake2b(data, digest_size=6).digest(), "big")

    def number(self, name):
        n = self.numbers.get(name)
        if n is None:
            n = self.numbers[name] = len(self.names)
            self.names.append(name)
        return n

    def _numbers(self, h):
        found = list(self.recent.get(h, ()))
        base, lo = self.base, h << 16
        i = bisect.bisect_left(base, lo)
        while i < len(base) and base[i] >> 16 == h:
            found.append(base[i] & 0xFFFF)
            i += 1
        return found

    def add(self, key, partition):
        h, n = self.hash(key), self.number(partition)
        if n not in self._numbers(h):
            self.recent.setdefault(h, []).append(n)
            self.changed = True

    def candidates(self, key):
        return [self.names[n] for n in self._numbers(self.hash(key))]

    def __len__(self):
        return len(self.base) + sum(len(v) for v in self.recent.values())

    def merge(self):
        """Fold the recent additions into the sorted array, all at once (a backup's index)."""
        self.install_base(*self.merged_base(self.recent_items()))

    def recent_items(self):
        """The recent additions as (hash, number) pairs (under the store lock: a moment)."""
        return [(h, n) for h, ns in self.recent.items() for n in ns if n < 0x10000]

    def merged_base(self, items):
        """A new sorted array with `items` folded in (outside the lock: the sort takes a while)."""
        return array.array("Q", sorted(self.base.tolist() + [h << 16 | n for h, n in items])), items

    def install_base(self, base, items):
        """Swap the merged array in; what was added meanwhile stays recent (under the lock)."""
        self.base = base
        for h, n in items:
            ns = self.recent.get(h)
            if ns is not None and n in ns:
                ns.remove(n)
                if not ns:
                    del self.recent[h]
        self.base_changed = self.changed = True

    @staticmethod
    def _pack(head, values):
        if array.array("Q", [1]).tobytes()[0] != 1:  # a big-endian machine: stored little-endian
            values = array.array("Q", values)
            values.byteswap()
        return b"JIEDUI-KEYS\n" + json.dumps(head).encode() + b"\n" + values.tobytes()

    @staticmethod
    def _unpack(data, part):
        magic, head, rest = data.split(b"\n", 2)
        meta = json.loads(head)
        if magic != b"JIEDUI-KEYS" or meta.get("format") != 2 or meta.get("part") != part:
            raise ValueError("not a key index")
        if len(rest) != 8 * meta["count"]:
            raise ValueError("key index truncated")
        values = array.array("Q")
        values.frombytes(rest)
        if array.array("Q", [1]).tobytes()[0] != 1:
            values.byteswap()
        return meta, values

    def base_bytes(self):
        """keys.idx: the sorted array (rewritten only after a merge, so rarely)."""
        return self._pack({"format": 2, "part": "base", "count": len(self.base)}, self.base)

    def recent_bytes(self):
        """keys.new: the partition names and the recent additions (small: rewritten each time)."""
        narrow = array.array("Q", [h << 16 | n for h, n in self.recent_items()])
        wide = [[h, n] for h, ns in self.recent.items() for n in ns if n >= 0x10000]
        return self._pack({"format": 2, "part": "recent", "names": self.names, "count": len(narrow),
                           "wide": wide}, narrow)

    @classmethod
    def load(cls, base_data, recent_data):
        index = cls()
        _meta, index.base = cls._unpack(base_data, "base")
        meta, narrow = cls._unpack(recent_data, "recent")
        for name in meta["names"]:
            index.number(name)
        for v in narrow:
            index.recent.setdefault(v >> 16, []).append(v & 0xFFFF)
        for h, n in meta["wide"]:
            index.recent.setdefault(h, []).append(n)
        if index.base and (index.base[-1] & 0xFFFF) >= len(index.names):
            raise ValueError("key index names a partition it does not list")
        return index


def _read_header(path):
    """[seq, last_seq] from a snapshot file's first bytes, or None (an older file: _meta last)."""
    try:
        with open(path, "rb") as f:
            m = HEADER_RE.match(f.read(200))
    except OSError:
        return None
    return [int(m.group(1)), int(m.group(3))] if m else None


class Transaction(PendingWrites):
    """What a write function sees: reads through its own pending writes, then those of the write
    functions before it in the same batch (not yet applied: they are applied, all together, only
    once the batch's journal lines are fsynced), then the store; applied only if it returns."""

    def __init__(self, store, overlay):
        self._store = store
        self._overlay = overlay  # (partition, table, key) -> (doc, bytes) or None: earlier in the batch
        self._pending = {}  # (partition, table, key) -> (doc as it will be stored, its bytes) or None
        self._del_seq = {}
        self._order = []

    def _hit(self, k):
        hit = self._pending.get(k, ABSENT)
        return self._overlay.get(k, ABSENT) if hit is ABSENT else hit

    def get(self, partition, table, key):
        hit = self._hit((partition, table, key))
        if hit is not ABSENT:
            return _copy_hit(hit) if hit is not None else None
        doc = self._store.peek(partition, table, key)
        return copy_doc(doc) if doc is not None else None

    def peek(self, partition, table, key):
        """The document itself, not a copy: read it, never change it (cheaper than get)."""
        hit = self._hit((partition, table, key))
        if hit is not ABSENT:
            return hit[0] if hit is not None else None
        return self._store.peek(partition, table, key)

    def search(self, partition, table, cond=None, since=None):
        base = self._store.search(partition, table, cond, since)
        mine = {k[2]: d for k, d in self._overlay.items() if k[0] == partition and k[1] == table}
        mine.update({k[2]: d for k, d in self._pending.items() if k[0] == partition and k[1] == table})
        if not mine:
            return base
        kf = self._store.layout.key_field(table)
        out = [d for d in base if d.get(kf) not in mine]
        for hit in mine.values():
            if hit is not None and (cond is None or cond(hit[0])) \
                    and (since is None or hit[0].get("seq", 0) > since):
                out.append(_copy_hit(hit))
        return out

    def put(self, partition, table, doc):
        """Store a document (a dict, or one prepared with `encode`); returns it with its seq.
        A value JSON or UTF-8 cannot hold (NaN, a lone surrogate, a cycle) fails this write function
        before anything is applied. The journal line carries the encoded bytes, and the stored copy
        is decoded from them, so memory is exactly what a replay rebuilds and never aliases the
        caller's object."""
        self._store.layout.check_partition(partition)
        kf = self._store.layout.key_field(table)
        original = doc.doc if isinstance(doc, Encoded) else doc
        key = original.get(kf)
        if not isinstance(key, str) or not key:
            raise ValueError(f"document for {table} needs a string {kf!r}")
        if isinstance(doc, Encoded):
            body, stored = doc.body, doc.take()
        else:
            try:
                body = encode_body(doc)
            except UnstorableValue as e:
                raise UnstorableValue(f"{table} {key!r}: {e}") from None
            stored = json.loads(body)
        seq = self._store._batch_seq + 1
        self._store._batch_seq = seq  # only the batch's writer is here; a failed fn leaves a gap
        stored["seq"] = seq
        self._stage((partition, table, key), (stored, with_seq(body, seq)))
        return dict(original, seq=seq)

    def patch(self, partition, table, key, *, set=None, items=None):
        """Change a stored document in part (see common.patch_step): the journal carries only the
        change, so bookkeeping on a document that has grown long (a household's open promises)
        costs what changed, not the document. Returns the document as it will be stored (read
        it, never change it), or None when there is none."""
        self._store.layout.check_partition(partition)
        current = self.peek(partition, table, key)
        if current is None:
            return None
        try:
            raw = ENCODER.encode(patch_step(set, items)).encode("utf-8")
        except (ValueError, TypeError, UnicodeEncodeError, RecursionError) as e:
            raise UnstorableValue(f"{table} {key!r}: {e.__class__.__name__}") from None
        stored = patched(current, [json.loads(raw)])  # decoded: never the caller's objects
        seq = self._store._batch_seq + 1
        self._store._batch_seq = seq
        stored["seq"] = seq
        k = (partition, table, key)
        mine = self._pending.get(k, ABSENT)
        if mine is ABSENT or (mine is not None and mine[1] is None):
            steps = (mine[2] if mine is not ABSENT else []) + [raw]
            self._stage(k, (stored, None, steps))
        else:  # put or deleted earlier in this function: the whole document, as put does
            self._stage(k, (stored, with_seq(encode_body(stored), seq)))
        return dict(stored)

    def village_ids(self):
        with self._store._lock:
            return self._store._village_ids_locked()

    def partitions(self, family):
        with self._store._lock:
            return self._store._family_locked(family)

    def partition_of(self, table, key):
        return self.locate(table, key)

    def partitions_of(self, table, keys):
        return {k: self.locate(table, k) for k in keys}

    def locate(self, table, key):
        """The partition holding `key` of a table whose keys are unique across partitions."""
        for layer in (self._pending, self._overlay):
            for (p, t, k), hit in layer.items():
                if t == table and k == key and hit is not None:
                    return p
        with self._store._lock:
            candidates = self._store._candidates_locked(table, key)
        for p in candidates:
            if self._hit((p, table, key)) is not ABSENT:
                continue  # deleted in this batch
            if self._store.peek(p, table, key) is not None:
                return p
        return None


def _copy_hit(hit):
    """A caller's own copy of a document staged in a batch: decoded from its bytes (a put) or
    copied (a patch, whose bytes are only the change)."""
    return json.loads(hit[1]) if hit[1] is not None else copy_doc(hit[0])


class _Retry(Exception):
    pass


def _raise_fd_limit(needed):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        target = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        if target < needed:
            raise RuntimeError(f"reading the data folder needs {needed} open files; the limit is {hard}")
