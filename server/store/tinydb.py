"""The store: TinyDB documents in memory, made durable by a write-ahead journal.

Naive TinyDB rewrites its whole JSON file on every insert, so acknowledging a write would cost more as
the data grows. Here each partition ("core", and one per village) is a TinyDB over an in-memory
storage; every write is first appended to one journal and fsynced (one fsync for all writers waiting
in the queue), and partitions are snapshotted in the background to plain TinyDB JSON files (temp file,
fsync, rename). This module is the only one that touches TinyDB.

One thread applies writes (Datasette's shape): write functions are queued, run one after another, and
their callers are released together after the shared fsync.

What start-up and memory cost does not grow with the county:
- A small catalogue (`catalog.json`, rewritten with every snapshot) knows each partition without
  loading it: its snapshot and change cursors (`partition_seq`), its file's size and header, and
  the summaries callers keep beside it (`summary`). Villages load on first use.
- The journal is replayed on start into per-partition lists; a partition applies its list when it
  loads (the snapshotter loads the ones a journal names, so the journal can go).
- Keys unique across partitions (submission uuids) are found without loading every village: a
  compact index (`keys.idx`: 48-bit hash + partition number, 8 bytes a key; a hit is only a
  candidate, confirmed in the partition, so a collision costs a look, never a wrong answer).
- Under a memory budget, clean, idle villages are dropped and reloaded on demand; a dirty one (or
  one whose snapshot is still being written) never is.

The interface the record owners use (bench/sqlite_store.py implements it over SQLite, as a
PostgreSQL store will): `write(fn)` runs fn(tx) and returns its result once durable, with tx.get,
peek, search, put, patch (the journal line carries only the change), delete, locate, village_ids, partitions; reads `get` (a copy), `peek` (the stored
document: read only), `search(partition, table, cond)`, `count`, `village_ids()`,
`partitions(family)`, `locate(table, key)` (uuid -> village), `partition_seq(partition)`,
`summary(partition, name, compute)`; and `seq`, `snapshot()`, `export_to(dir)`, `close()`.
A partition is "core", a village id, or a family's day ("audit.20260501").
"""

import array
import bisect
import fcntl
import gc
import hashlib
import json
import logging
import os
import queue
import re
import resource
import threading
import time
from contextlib import contextmanager

from tinydb import TinyDB
from tinydb.storages import Storage

from server.core.files import fsync_dir, write_atomic
from server.store.common import (  # noqa: F401 (re-exported)
    CORE, PARTITION_RE, FAMILIES, FAMILY_RE, KEY_FIELDS, key_field, RETRY_AFTER_SECONDS, StoreUnavailable, SchemaTooNew, StoreLocked, UnstorableValue, PartitionUnavailable, Encoded, encode, copy_doc, partition_file, check_partition, write_json_atomic, PendingWrites, ENCODER,
    encode_body, with_seq, ABSENT, patch_step, patched)

log = logging.getLogger(__name__)

GLOBAL_TABLES = ("submissions",)  # keys unique across partitions: `locate` finds them
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
    """One TinyDB: its tables live in memory keyed by str(doc_id), exactly like TinyDB's JSON file."""

    def __init__(self, name, path):
        self.name = name
        self.path = path
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
            kf = key_field(table)
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
        doc_id = self.keys.get(table, {}).get(key)
        if doc_id is None:
            return None
        return self.tables[table][doc_id]

    def put(self, table, doc):
        kf = key_field(table)
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
        kf = key_field(table)
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
        check_partition(partition)
        kf = key_field(table)
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
        check_partition(partition)
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


class Store:
    """TinyDB partitions in memory + journal. Open once per process (see the folder lock)."""

    def __init__(self, data_dir, *, snapshot_every=2.0, journal_snapshot_bytes=8 << 20,
                 readonly=False, memory_mb=None, idle_seconds=0.5):
        self.data_dir = os.path.abspath(data_dir)
        self.villages_dir = os.path.join(self.data_dir, "villages")
        self.snapshot_every = snapshot_every
        self.journal_snapshot_bytes = journal_snapshot_bytes
        self.readonly = readonly
        self.memory_budget = int((memory_mb or default_memory_mb()) * 1024 * 1024)
        self.idle_seconds = idle_seconds
        self._lock = threading.RLock()  # memory: partitions, catalogue, key index (held briefly)
        self._write_lock = threading.Lock()  # one batch at a time: its functions, journal, fsync
        self._line_heads = {}  # (partition, table) -> the start of a journal op, encoded once
        self._partitions = {}  # loaded partitions
        self._entries = {}  # every partition known
        self._replay = {}  # partition -> journal ops not applied yet (it has not loaded since start)
        self._keys = _KeyIndex()
        self._loading = {}  # partition -> Event, while a reader loads it outside the lock
        self._memory = 0
        self._warned_budget = set()
        self._catalog_dirty = False
        self._seq = 0        # the newest seq readers can see: every write up to it is applied
        self._batch_seq = 0  # the newest seq handed out by the running batch (ahead of _seq)
        self._queue = queue.Queue()
        self._writer = None
        self._snapshotter = None
        self._stop = threading.Event()
        self._journal = None
        self._journal_no = 0
        self._journal_bytes = 0
        self._lock_fd = None
        self._snapshot_lock = threading.Lock()
        self._snapshot_wake = threading.Event()
        self._last_write = 0.0
        self._gc_pending = False
        self._writes_at_settle = 0
        self._last_full_gc = time.monotonic()
        self.is_open = False
        self.stats = {"batches": 0, "writes": 0, "snapshots": 0, "loads": 0, "evictions": 0,
                      "scans": 0}

    # ---- opening and closing -------------------------------------------------------------------

    def open(self):
        os.makedirs(self.villages_dir, exist_ok=True)
        if not self.readonly:
            self._take_lock()
        try:
            if self.readonly:
                self._open_readonly()
            else:
                self._open_catalog(self._journal_files())
                self._ensure(CORE, install_empty=True)
                self._start_journal(self._journal_no + 1)
                self._settle_gc()
                self._writer = threading.Thread(target=self._write_loop, name="store-writer",
                                                daemon=True)
                self._writer.start()
                if self.snapshot_every:
                    self._snapshotter = threading.Thread(target=self._snapshot_loop,
                                                         name="store-snapshot", daemon=True)
                    self._snapshotter.start()
        except Exception:
            self._release_lock()
            self._close_fds()
            raise
        self.is_open = True
        return self

    def close(self):
        if not self.is_open:
            return
        self.is_open = False
        if self.readonly:
            self._close_fds()
            return
        self._queue.put(None)
        self._writer.join()
        self._fail_queued(RuntimeError("store is closed"))  # queued behind the stop mark
        self._stop.set()
        self._snapshot_wake.set()
        if self._snapshotter:
            self._snapshotter.join()
        self.snapshot()
        self._journal.close()
        self._release_lock()

    def __enter__(self):
        return self.open()

    def __exit__(self, *exc):
        self.close()

    def _take_lock(self):
        path = os.path.join(self.data_dir, "lock")
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise StoreLocked(
                f"另一个进程正在使用数据目录 {self.data_dir}（通常是正在运行的服务器）。"
                f" Another process (usually the running server) owns the data folder {self.data_dir}.")
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._lock_fd = fd

    def _release_lock(self):
        if self._lock_fd is not None:
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
            os.close(self._lock_fd)
            self._lock_fd = None

    def _partition_path(self, name):
        return partition_file(self.data_dir, name)

    def _journal_files(self):
        found = []
        for fn in os.listdir(self.data_dir):
            m = JOURNAL_RE.match(fn)
            if m:
                found.append((int(m.group(1)), os.path.join(self.data_dir, fn)))
        return sorted(found)

    def _partition_files(self):
        """{name: path} of the snapshot files on disk."""
        files = {}
        if os.path.exists(self._partition_path(CORE)):
            files[CORE] = self._partition_path(CORE)
        if os.path.isdir(self.villages_dir):
            for fn in os.listdir(self.villages_dir):
                if fn.endswith(".json") and PARTITION_RE.match(fn[:-5]) and fn[:-5] != CORE:
                    files[fn[:-5]] = os.path.join(self.villages_dir, fn)
        for family in FAMILIES:
            folder = os.path.join(self.data_dir, family)
            if os.path.isdir(folder):
                for fn in os.listdir(folder):
                    name = f"{family}.{fn[:-5]}"
                    if fn.endswith(".json") and FAMILY_RE.match(name):
                        files[name] = os.path.join(folder, fn)
        return files

    def _open_catalog(self, journals):
        """Know every partition without loading it: the catalogue, checked against the files (a file
        it does not describe is scanned once), then the journals, replayed into per-partition lists."""
        catalog, keys = self._read_catalog()
        files = self._partition_files()
        rescan = []
        for name, path in files.items():
            entry = catalog.get(name)
            size = os.path.getsize(path)
            header = _read_header(path)
            if entry is None or entry.size != size or header is None or entry.header != header:
                rescan.append(name)
                entry = _Entry(name)
            self._entries[name] = entry
        for name, entry in catalog.items():
            if name not in files:
                # Known from a journal only (the replay below fills it), or its file has gone
                # missing: then it answers "unavailable", never silently empty.
                self._entries[name] = entry
        self._keys = keys if keys is not None else _KeyIndex()
        if keys is None:
            rescan = sorted(files)
            if rescan:
                log.warning("store: building the key index from %d partition files (first start "
                            "after an upgrade or a restore)", len(rescan))
        for name in rescan:
            self._scan(name)
        if rescan and not self.readonly:
            self._catalog_dirty = True
        if len(self._keys.recent) >= _KeyIndex.MERGE_AT:  # a rebuild: sorted once, here
            self._keys.merge()
        self._seq = max([self._catalog_seq] + [e.last_seq for e in self._entries.values()])
        for no, path in journals:
            self._journal_no = max(self._journal_no, no)
            self._read_journal(path)

    def _read_catalog(self):
        """(entries by name, key index) from catalog.json and keys.idx; ({}, None) when either is
        missing or unreadable (everything is then rebuilt from the files)."""
        self._catalog_seq = 0
        try:
            with open(os.path.join(self.data_dir, CATALOG), "rb") as f:
                data = json.load(f)
            with open(os.path.join(self.data_dir, KEYS_FILE), "rb") as f, \
                    open(os.path.join(self.data_dir, KEYS_NEW), "rb") as g:
                keys = _KeyIndex.load(f.read(), g.read())
            if data.get("format") != CATALOG_FORMAT:
                raise ValueError("unknown catalogue format")
            entries = {}
            for name, raw in data["partitions"].items():
                e = _Entry(name)
                e.snapshot_seq, e.last_seq = int(raw["snapshot_seq"]), int(raw["last_seq"])
                e.size, e.header = raw.get("size"), raw.get("header")
                e.summaries = raw.get("summaries") or {}
                entries[name] = e
            self._catalog_seq = int(data.get("seq", 0))
            return entries, keys
        except FileNotFoundError:
            return {}, None
        except (OSError, ValueError, KeyError, TypeError) as e:
            log.warning("store: the catalogue cannot be used (%s); rebuilding it from the files", e)
            return {}, None

    def _scan(self, name):
        """Read one partition file to learn its cursors and global keys, then let it go."""
        entry = self._entries.setdefault(name, _Entry(name))
        path = self._partition_path(name)
        try:
            raw = self._file_bytes(entry, path)
            p = _Partition(name, path)
            p.load_bytes(raw)
        except Exception as e:  # anything at all: that village is unavailable, the server starts
            log.error("store: %s cannot be read (%s); it will answer 'unavailable' until repaired",
                      path, e)
            entry.broken = (self._file_signature(entry, path), f"{e.__class__.__name__}: {e}"[:200])
            return
        self.stats["scans"] += 1
        entry.snapshot_seq, entry.last_seq = p.snapshot_seq, p.last_seq
        entry.size, entry.header = len(raw), _read_header(path)
        for table in GLOBAL_TABLES:
            for key in p.keys.get(table, {}):
                self._keys.add(key, name)

    def _read_journal(self, path):
        with open(path, "rb") as f:
            lines = f.read().split(b"\n")
        # The file ends with "\n" after every complete line, so the last element is b"" unless the
        # last write was torn.
        for i, raw in enumerate(lines):
            if not raw.strip():
                continue
            try:
                rec = json.loads(raw)
                ops = rec["ops"]
                for op in ops:
                    check_partition(op["p"])
            except (ValueError, KeyError, TypeError):
                if i == len(lines) - 1:
                    log.warning("journal %s: discarding a torn last line (%d bytes)", path, len(raw))
                    continue
                raise RuntimeError(f"journal {path} is corrupt at line {i + 1}")
            for op in ops:
                name = op["p"]
                seq = op.get("seq", rec["seq"])
                entry = self._entries.get(name)
                if entry is None:
                    entry = self._entries[name] = _Entry(name)
                if seq <= entry.snapshot_seq:
                    continue
                self._replay.setdefault(name, []).append(op)
                entry.last_seq = max(entry.last_seq, seq)
                if op["op"] == "put" and op["t"] in GLOBAL_TABLES:
                    self._keys.add(op["doc"].get(key_field(op["t"])), name)
            self._seq = max(self._seq, rec["seq"])

    def _start_journal(self, no):
        self._journal_no = no
        path = os.path.join(self.data_dir, f"journal.{no:08d}.log")
        self._journal = open(path, "ab")
        self._journal_bytes = 0
        fsync_dir(self.data_dir)

    # ---- read-only opening (backup, printing beside a running server) ---------------------------

    def _open_readonly(self):
        """One consistent picture while a server may be snapshotting: read the journals, then hold
        every partition file open; if a snapshot started meanwhile (a newer journal), start over.
        A held file is the version the journals read complete, whatever is renamed over it later."""
        for attempt in range(20):
            self._entries, self._replay, self._seq, self._journal_no = {}, {}, 0, 0
            journals = self._journal_files()
            try:
                _raise_fd_limit(len(self._partition_files()) + 64)
                self._open_catalog(journals)
                for name, entry in self._entries.items():
                    if entry.size is not None or os.path.exists(self._partition_path(name)):
                        try:
                            entry.fd = os.open(self._partition_path(name), os.O_RDONLY)
                        except FileNotFoundError:
                            raise _Retry() from None
                if [no for no, _ in self._journal_files()][-1:] != [no for no, _ in journals][-1:]:
                    raise _Retry()
            except (_Retry, FileNotFoundError):
                self._close_fds()
                time.sleep(0.02 * (attempt + 1))
                continue
            self._ensure(CORE, install_empty=True)
            return
        raise RuntimeError("the data folder kept changing while it was being read; try again")

    def _close_fds(self):
        for entry in self._entries.values():
            if entry.fd is not None:
                os.close(entry.fd)
                entry.fd = None

    @staticmethod
    def _file_bytes(entry, path):
        if entry.fd is None:
            with open(path, "rb") as f:
                return f.read()
        chunks, offset = [], 0
        while True:
            chunk = os.pread(entry.fd, 1 << 20, offset)
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)
            offset += len(chunk)

    @staticmethod
    def _file_signature(entry, path):
        try:
            st = os.fstat(entry.fd) if entry.fd is not None else os.stat(path)
            return (st.st_size, st.st_mtime_ns)
        except OSError:
            return None

    # ---- loading and dropping partitions --------------------------------------------------------

    def _read_partition(self, name, entry):
        """A partition from its file (no lock held): PartitionUnavailable when the file is bad."""
        path = self._partition_path(name)
        p = _Partition(name, path)
        if entry.fd is None and not os.path.exists(path):
            if entry.size is not None:  # the catalogue says it had a file
                raise PartitionUnavailable(name, f"{os.path.relpath(path, self.data_dir)} is missing")
            return p
        try:
            p.load_bytes(self._file_bytes(entry, path))
        except Exception as e:  # whatever a damaged or hand-repaired file raises: unavailable
            raise PartitionUnavailable(name, f"{os.path.relpath(path, self.data_dir)}: "
                                             f"{e.__class__.__name__}: {e}"[:300]) from None
        return p

    def _check_broken(self, name, entry):
        """A partition whose file failed to load stays unavailable until the file changes."""
        if entry.broken is None:
            return
        signature, reason = entry.broken
        if self._file_signature(entry, self._partition_path(name)) == signature:
            raise PartitionUnavailable(name, reason)
        entry.broken = None  # repaired: try again

    def _ensure(self, name, install_empty=False):
        """The loaded partition (loading it outside the lock if needed), None if unknown."""
        while True:
            with self._lock:
                p, entry = self._loaded_or_entry(name, install_empty)
                if entry is None:
                    return p
                generation = entry.generation
                waiter = self._loading.get(name)
                mine = waiter is None
                if mine:
                    waiter = self._loading[name] = threading.Event()
            if not mine:
                waiter.wait()
                continue
            fresh, error = None, None
            try:
                fresh = self._read_partition(name, entry)
            except PartitionUnavailable as e:
                error = e
            finally:
                # Whatever happened, the readers waiting for this load are let go: a load that
                # raised without this left every later reader of the village waiting for ever.
                if fresh is None and error is None:
                    error = PartitionUnavailable(name, "load failed")
                with self._lock:
                    self._loading.pop(name, None)
                    waiter.set()
                    if error is not None:
                        self._mark_broken(name, entry, error)
            if error is not None:
                raise error
            with self._lock:
                if name in self._partitions or entry.generation != generation:
                    continue  # the writer loaded it meanwhile, or it changed: use theirs
                try:
                    self._install(name, fresh)
                except Exception as e:  # a journal op the file's documents cannot take: the ops
                    error = PartitionUnavailable(name, f"{e.__class__.__name__}: {e}"[:300])
                    self._mark_broken(name, entry, error)   # stay queued for after the repair
                    raise error from None
            self._settle_gc()
            return fresh

    def _settle_gc(self):
        """Loaded documents live long: move them out of the cyclic garbage collector's reach
        (gc.freeze), so a full collection never walks a county's worth of them (seconds, with
        the GIL held) at some unlucky request. JSON documents hold no cycles: reference counting
        still frees a replaced or evicted one. Young garbage is collected first; the rest is
        collected when the server idles (see _snapshot_loop)."""
        if self._gc_pending:
            self._gc_pending = False
            gc.collect(1)
            gc.freeze()

    def _mark_broken(self, name, entry, error):
        log.error("store: partition %s cannot be read (%s); it answers 'unavailable' and its file is "
                  "left as it is for repair", name, error.reason)
        entry.broken = (self._file_signature(entry, self._partition_path(name)), error.reason)

    def _loaded_or_entry(self, name, create):
        """Holding the lock: (the loaded partition, None), or (None, the entry to load it from;
        made if `create`), or (None, None) for a partition that does not exist. A partition marked
        unreadable raises PartitionUnavailable."""
        p = self._partitions.get(name)
        if p is not None:
            p.used = time.monotonic()
            return p, None
        entry = self._entries.get(name)
        if entry is None:
            if not create:
                return None, None
            entry = self._entries[name] = _Entry(name)
        self._check_broken(name, entry)
        return None, entry

    def _load_locked(self, name, create=False):
        """The loaded partition, loaded here if needed (the writer thread, holding the lock)."""
        p, entry = self._loaded_or_entry(name, create)
        if entry is None:
            return p
        try:
            fresh = self._read_partition(name, entry)
        except PartitionUnavailable as e:
            self._mark_broken(name, entry, e)
            raise
        self._install(name, fresh)
        return fresh

    def _install(self, name, p):
        """Make a freshly read partition the live one: its journal ops applied (lock held)."""
        entry = self._entries[name]
        ops = self._replay.get(name, ())  # dropped only once applied: a failure keeps them
        for op in ops:
            seq = op.get("seq", 0)
            if seq <= p.snapshot_seq:
                continue
            if op["op"] == "put":
                p.put(op["t"], dict(op["doc"]) if self.readonly else op["doc"])
            elif op["op"] == "patch":
                current = p.get(op["t"], op["k"])
                if current is None:  # never written so (a patch follows its document's put)
                    log.warning("journal: patch of %s %s %r, which is absent; skipped", name, op["t"], op["k"])
                    continue
                steps = json.loads(json.dumps(op["steps"])) if self.readonly else op["steps"]
                p.put(op["t"], dict(patched(current, steps), seq=seq))
            else:
                p.delete(op["t"], op["k"])
                p.last_seq = max(p.last_seq, seq)
            p.size += int(1500 * MEMORY_PER_FILE_BYTE)  # a typical document; exact on reload
        if self.readonly:
            p.dirty = False  # nothing to snapshot: the journals stay the durable copy
        else:
            self._replay.pop(name, None)
        p.last_seq = max(p.last_seq, entry.last_seq)
        entry.last_seq = p.last_seq
        entry.snapshot_seq = max(entry.snapshot_seq, p.snapshot_seq)
        entry.generation += 1
        p.used = time.monotonic()
        self._partitions[name] = p
        self._memory += p.size
        self._gc_pending = True
        self.stats["loads"] += 1
        if name != CORE and p.size > self.memory_budget and name not in self._warned_budget:
            self._warned_budget.add(name)
            log.warning("store: partition %s needs about %d MB, more than the memory budget of %d MB "
                        "(JIEDUI_MEMORY_MB); it is loaded anyway", name, p.size >> 20,
                        self.memory_budget >> 20)
        self._evict(keep=name)

    def _evict(self, keep=None, idle=None):
        """Drop clean, idle partitions, least recently used first, until memory is under budget
        (lock held). Never a dirty one, nor one whose snapshot is still being written."""
        if self._memory <= self.memory_budget:
            return 0
        now = time.monotonic()
        idle = self.idle_seconds if idle is None else idle
        candidates = sorted((p.used, name) for name, p in self._partitions.items()
                            if name not in (CORE, keep) and not p.dirty and not p.writing
                            and now - p.used >= idle)
        dropped = []
        for _used, name in candidates:
            if self._memory <= self.memory_budget:
                break
            p = self._partitions.pop(name)
            self._memory -= p.size
            self._entries[name].generation += 1
            self.stats["evictions"] += 1
            dropped.append(name)
        if dropped:
            log.info("store: memory budget: dropped %d idle partition(s) from memory (%s%s); about "
                     "%d MB loaded, budget %d MB", len(dropped), ", ".join(dropped[:5]),
                     ", ..." if len(dropped) > 5 else "", self._memory >> 20, self.memory_budget >> 20)
        return len(dropped)

    def memory_estimate(self):
        """(estimated bytes held by loaded partitions, the budget, loaded partition count)."""
        with self._lock:
            return self._memory, self.memory_budget, len(self._partitions)

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
        return sorted(n for n in self._entries if n.startswith(family + ".") and FAMILY_RE.match(n))

    def _candidates_locked(self, table, key):
        """Partitions that may hold `key`: from the key index for tables whose keys are unique
        across partitions, else every village (slow: read each; only such tables are asked)."""
        if table not in GLOBAL_TABLES:
            return self._village_ids_locked()
        return self._keys.candidates(key)

    def get(self, partition, table, key):
        doc = self._read(partition, lambda p: p.get(table, key), None)
        return copy_doc(doc) if doc is not None else None

    def peek(self, partition, table, key):
        """The stored document itself, not a copy: read it, never change it (cheaper than get)."""
        return self._read(partition, lambda p: p.get(table, key), None)

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
        """Every partition of a record family (e.g. "audit": "audit.20260501", ...), oldest first."""
        with self._lock:
            return self._family_locked(family)

    def locate(self, table, key):
        """The partition holding `key` of a table whose keys are unique across partitions
        (submissions), or None; loads only the partition that holds it."""
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

    # ---- writes --------------------------------------------------------------------------------

    def write(self, fn):
        """Run fn(tx) as part of the next batch; return its result once the journal is fsynced.
        When no batch is running, the caller's thread runs one itself (with whatever else is
        queued), saving two thread switches; otherwise the writer thread takes it with the next
        batch, so concurrent writers still share one fsync."""
        if self.readonly:
            raise RuntimeError("this store was opened read-only")
        if not self.is_open:
            raise RuntimeError("store is closed")
        done = threading.Event()
        box = {}
        item = (fn, done, box)
        if self._write_lock.acquire(blocking=False):
            try:
                batch, stop = self._drain([item])
                self._run_batch_safely(batch)
            finally:
                self._write_lock.release()
            if stop:
                self._queue.put(None)
        else:
            self._queue.put(item)
        done.wait()
        if "error" in box:
            raise box["error"]
        return box["result"]

    def _fail_queued(self, error):
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return
            if item is not None:
                _fn, done, box = item
                box["error"] = error
                done.set()

    def _drain(self, batch):
        """Add what is queued (up to 256 in all); (batch, whether the stop mark was taken)."""
        while len(batch) < 256:
            try:
                nxt = self._queue.get_nowait()
            except queue.Empty:
                break
            if nxt is None:
                return batch, True
            batch.append(nxt)
        return batch, False

    def _write_loop(self):
        while True:
            item = self._queue.get()
            if item is None:
                return
            with self._write_lock:
                batch, stop = self._drain([item])
                self._run_batch_safely(batch)
            if stop:
                return

    def _run_batch_safely(self, batch):
        try:
            self._run_batch(batch)
        except BaseException as e:  # the writer must outlive any write: fail the batch, go on
            log.exception("store writer: a batch failed")
            for _fn, done, box in batch:
                if not done.is_set():
                    box.pop("result", None)
                    box.setdefault("error", e)
                    done.set()

    def _journal_line(self, tx):
        """The journal line of one write function, as bytes (every document already encoded)."""
        ops = []
        heads = self._line_heads
        for part_name, table, key in tx._order:
            k = (part_name, table, key)
            head = heads.get((part_name, table))
            if head is None:
                head = json.dumps({"p": part_name, "t": table}, ensure_ascii=False)[:-1].encode()
                heads[(part_name, table)] = head
            hit = tx._pending[k]
            if hit is None:
                self._batch_seq += 1
                tx._del_seq[k] = self._batch_seq
                ops.append(head + b',"op":"del","k":' + json.dumps(key).encode()
                           + b',"seq":' + str(self._batch_seq).encode() + b"}")
            elif hit[1] is None:  # a patch: only the change
                ops.append(head + b',"op":"patch","k":' + json.dumps(key).encode() + b',"seq":'
                           + str(hit[0]["seq"]).encode() + b',"steps":[' + b",".join(hit[2]) + b"]}")
            else:
                ops.append(head + b',"op":"put","seq":' + str(hit[0]["seq"]).encode() + b',"doc":'
                           + hit[1] + b"}")
        return b'{"seq":' + str(self._batch_seq).encode() + b',"ops":[' + b",".join(ops) + b"]}\n"

    def _apply(self, tx):
        """Make one write function's documents readable (lock held; its line is durable)."""
        for part_name, table, key in tx._order:
            hit = tx._pending[(part_name, table, key)]
            part = self._load_locked(part_name, create=True)
            entry = self._entries[part_name]
            if hit is None:
                part.delete(table, key)
                seq = tx._del_seq[(part_name, table, key)]
                part.last_seq = max(part.last_seq, seq)
            else:
                doc, raw = hit[0], hit[1]
                part.put(table, doc)
                seq = doc["seq"]
                grown = int((len(raw) if raw is not None else sum(map(len, hit[2])))
                            * MEMORY_PER_FILE_BYTE)
                part.size += grown
                self._memory += grown
                if table in GLOBAL_TABLES:
                    self._keys.add(key, part_name)
            entry.last_seq = max(entry.last_seq, seq)

    def _run_batch(self, batch):
        """Run a batch (the write lock held): each function in turn, seeing the ones before it;
        their lines appended and fsynced once; only then applied to memory, under the memory lock
        for a moment. Readers never wait for the fsync, and never see a write before it is
        durable."""
        overlay, done_txs, lines = {}, [], []
        self._batch_seq = max(self._batch_seq, self._seq)  # never a seq handed out before
        for fn, _done, box in batch:
            tx = Transaction(self, overlay)
            try:
                box["result"] = fn(tx)
                if not tx._order:
                    continue
                for part_name in {k[0] for k in tx._order}:
                    self._ensure(part_name)  # loaded now, outside the lock; a bad file fails this fn
                line = self._journal_line(tx)
            except BaseException as e:  # the caller gets it; nothing of this fn is applied
                box.pop("result", None)
                box["error"] = e
                continue
            overlay.update((k, tx._pending[k]) for k in tx._order)
            done_txs.append(tx)
            lines.append(line)
        if lines:
            data = b"".join(lines)
            try:
                if self._journal.closed:  # a new journal could not be started after a failure
                    self._start_journal(self._journal_no + 1)
                self._journal.write(data)
                self._journal.flush()
                os.fsync(self._journal.fileno())
                self._journal_bytes += len(data)
            except (OSError, ValueError) as e:  # not durable: nobody may be told it is, nor read it
                # A full disk (ENOSPC) keeps its errno: the caller answers 503 storage_full.
                log.error("journal write failed: %s", e)
                done_txs = []
                self._reopen_journal_after_failure()
                for _fn, _done, box in batch:
                    box.pop("result", None)
                    box.setdefault("error", e)
        with self._lock:
            try:
                for tx in done_txs:
                    self._apply(tx)
            finally:
                # Only now may a reader see the new seq: one who saw it before the documents were
                # applied would take an unchanged partition for caught up and never look again.
                # Seqs of a failed batch stay used (a gap), never handed out twice.
                self._seq = self._batch_seq
        self._last_write = time.monotonic()
        self.stats["batches"] += 1
        self.stats["writes"] += len(batch)
        for _fn, done, _box in batch:
            done.set()
        if self._journal_bytes > self.journal_snapshot_bytes:
            self._snapshot_wake.set()

    def _reopen_journal_after_failure(self):
        """A failed append may have left part of a line: start a new journal file, so the next
        line never follows a torn one (replay discards only a torn *last* line)."""
        try:
            self._journal.close()
        except OSError:
            pass
        try:
            self._start_journal(self._journal_no + 1)
        except OSError:
            log.exception("cannot start a new journal; writes will keep failing")

    # ---- snapshots -----------------------------------------------------------------------------

    def _snapshot_loop(self):
        """Snapshot when the journal has grown past its budget (bounding replay time), or when
        writes pause; not on a fixed beat, since rewriting a busy village often would cost more
        than the journal it saves. Idle villages past the memory budget are dropped on each beat."""
        while not self._stop.is_set():
            self._snapshot_wake.wait(self.snapshot_every)
            self._snapshot_wake.clear()
            if self._stop.is_set():
                return
            idle = time.monotonic() - self._last_write >= self.snapshot_every
            with self._lock:
                loadable = any(self._entries[n].broken is None for n in self._replay)
            if (self._journal_bytes >= self.journal_snapshot_bytes
                    or ((self._journal_bytes or self._catalog_dirty or loadable) and idle)):
                try:
                    self.snapshot()
                except Exception:
                    log.exception("snapshot failed; the journal still holds every write")
            with self._lock:
                self._evict()
            if self.stats["writes"] != self._writes_at_settle:  # written documents live long too
                self._writes_at_settle = self.stats["writes"]
                self._gc_pending = True
            self._settle_gc()
            now = time.monotonic()
            if now - self._last_write > 300 and now - self._last_full_gc > 3600:
                self._last_full_gc = now  # quiet for a while: look at everything once an hour
                gc.unfreeze()
                gc.collect()
                gc.freeze()

    def snapshot(self):
        """Write dirty partitions to their files, then the catalogue and key index, then drop the
        journals they made redundant. A partition a journal names but nobody has loaded since the
        start is loaded now, so its entries reach its file; one whose file cannot be read keeps its
        entries, copied into the new journal."""
        if self.readonly:
            raise RuntimeError("this store was opened read-only")
        with self._snapshot_lock:
            for name in list(self._replay):
                try:
                    self._ensure(name)
                except PartitionUnavailable:
                    pass  # carried forward below
            with self._write_lock, self._lock:  # no batch in flight: memory holds every seq
                dirty = [p for p in self._partitions.values() if p.dirty]
                if not dirty and self._journal_bytes == 0 and not self._catalog_dirty:
                    return 0
                seq = self._seq
                pictures = []
                for p in dirty:
                    pictures.append((p, p.picture()))
                    p.dirty = False
                    p.writing = True
                old_journals = [path for no, path in self._journal_files()]
                self._journal.close()
                self._start_journal(self._journal_no + 1)
                self._carry_forward()
                missing = not os.path.exists(os.path.join(self.data_dir, KEYS_NEW))
                base = self._keys.base_bytes() if self._keys.base_changed or missing else None
                recent = self._keys.recent_bytes() if self._keys.changed or missing else None
                self._keys.changed = self._keys.base_changed = False
                self._catalog_dirty = False
                merge = self._keys.recent_items() if len(self._keys.recent) >= _KeyIndex.MERGE_AT else None
            try:
                written = []
                for p, tables in pictures:
                    size = p.write_snapshot(p.path, tables, seq)
                    written.append((p, size))
                with self._lock:
                    for p, size in written:
                        p.snapshot_seq = seq
                        entry = self._entries[p.name]
                        entry.snapshot_seq, entry.size = seq, size
                        entry.header = [seq, p.last_seq]
                    catalog = self._catalog_bytes(seq)
                if base is not None:
                    write_atomic(os.path.join(self.data_dir, KEYS_FILE), base)
                if recent is not None:
                    write_atomic(os.path.join(self.data_dir, KEYS_NEW), recent)
                write_atomic(os.path.join(self.data_dir, CATALOG), catalog)
            except BaseException:
                with self._lock:
                    for p, _tables in pictures:
                        p.dirty = True  # keep the journals: they are still the only durable copy
                    self._keys.changed = self._catalog_dirty = True
                raise
            finally:
                for p, _tables in pictures:
                    p.writing = False
            for path in old_journals:
                os.remove(path)
            if old_journals:
                fsync_dir(self.data_dir)
            if merge:  # sorted outside the lock; written with the next snapshot
                merged = self._keys.merged_base(merge)
                with self._lock:
                    self._keys.install_base(*merged)
            self.stats["snapshots"] += 1
            return len(pictures)

    def _carry_forward(self):
        """Journal entries of partitions that could not load are written again into the new
        journal (fsynced), so dropping the old journals never drops them (lock held)."""
        lines = []
        for name, ops in self._replay.items():
            if ops:
                top = max(op.get("seq", 0) for op in ops)
                lines.append(json.dumps({"seq": top, "ops": ops}, ensure_ascii=False,
                                        separators=(",", ":")).encode("utf-8") + b"\n")
        if lines:  # not counted in _journal_bytes: they alone never call for another snapshot
            self._journal.write(b"".join(lines))
            self._journal.flush()
            os.fsync(self._journal.fileno())

    def _catalog_bytes(self, seq):
        return json.dumps({"format": CATALOG_FORMAT, "seq": seq,
                           "partitions": {n: e.to_json() for n, e in self._entries.items()}},
                          ensure_ascii=False, separators=(",", ":")).encode("utf-8")

    # ---- backup ----------------------------------------------------------------------------------

    def export_to(self, out_dir):
        """A clean data folder: every partition snapshotted, no journal needed, with its catalogue
        and key index, so a server started on it loads nothing it does not need. Partitions are
        written one at a time (memory stays within the budget). A live store exports through a
        read-only view of its own folder: one consistent picture without stopping writes."""
        if not self.readonly:
            view = open_readonly(self.data_dir, memory_mb=self.memory_budget >> 20)
            try:
                return view.export_to(out_dir)
            finally:
                view.close()
        for folder in ("villages",) + FAMILIES:  # the same folders whatever the data
            os.makedirs(os.path.join(out_dir, folder), exist_ok=True)
        with self._lock:
            names = [CORE] + self._village_ids_locked()
            for family in FAMILIES:
                names += self._family_locked(family)
            seq = self._seq
        out, keys = {}, _KeyIndex()
        for name in names:
            try:
                p = self._ensure(name, install_empty=(name == CORE))
            except PartitionUnavailable as e:
                raise RuntimeError(f"cannot back up: {e}") from None
            with self._lock:
                tables = p.picture()
                if name != CORE:
                    p.used = 0.0  # written out: the first to go when memory is short
            for table in GLOBAL_TABLES:  # the index again from what is written: no stale keys
                for key in p.keys.get(table, {}):
                    keys.add(key, name)
            target = os.path.join(out_dir, os.path.relpath(p.path, self.data_dir))
            size = p.write_snapshot(target, tables, seq)
            entry = _Entry(name)
            entry.snapshot_seq, entry.last_seq, entry.size = seq, p.last_seq, size
            entry.header = [seq, p.last_seq]
            entry.summaries = dict(self._entries[name].summaries)
            out[name] = entry
            with self._lock:
                self._evict(idle=0)
        keys.merge()
        write_atomic(os.path.join(out_dir, KEYS_FILE), keys.base_bytes())
        write_atomic(os.path.join(out_dir, KEYS_NEW), keys.recent_bytes())
        catalog = json.dumps({"format": CATALOG_FORMAT, "seq": seq,
                              "partitions": {n: e.to_json() for n, e in out.items()}},
                             ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        write_atomic(os.path.join(out_dir, CATALOG), catalog)
        return seq


class _Retry(Exception):
    pass


def write_catalog(data_dir):
    """catalog.json and the key index for a folder of snapshot files written by another store (a
    backup from PostgreSQL), so a TinyDB server started on it reads no file to open: each file is
    read once here."""
    store = Store(data_dir, readonly=True)
    store._catalog_seq = 0
    for name in sorted(store._partition_files()):
        store._scan(name)
    broken = [n for n, e in store._entries.items() if e.broken]
    if broken:
        raise RuntimeError(f"cannot index {', '.join(broken)}: unreadable")
    store._keys.merge()
    seq = max([e.last_seq for e in store._entries.values()] + [0])
    write_atomic(os.path.join(data_dir, KEYS_FILE), store._keys.base_bytes())
    write_atomic(os.path.join(data_dir, KEYS_NEW), store._keys.recent_bytes())
    write_atomic(os.path.join(data_dir, CATALOG), store._catalog_bytes(seq))


def _raise_fd_limit(needed):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        target = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        if target < needed:
            raise RuntimeError(f"reading the data folder needs {needed} open files; the limit is {hard}")


def open_readonly(data_dir, memory_mb=None):
    """Load the files as they are (snapshots + journal) without taking the lock: for backup/print."""
    return Store(data_dir, readonly=True, memory_mb=memory_mb, idle_seconds=0).open()


@contextmanager
def open_folder_for_command(app, page="/admin"):
    """For CLI commands that write on the TinyDB store: the app's data folder, locked, closed
    (snapshotted) afterwards. While a server owns the folder, the message names the admin `page`
    that does the same online. (stores.open_for_command chooses between this and PostgreSQL.)"""
    import click
    from server.store.restore import apply_pending
    store = Store(app.config["DATA_DIR"], snapshot_every=0, memory_mb=app.config.get("MEMORY_MB"))
    try:
        apply_pending(app.config["DATA_DIR"], app.config.get("FILES_DIR"))
        store.open()
    except StoreLocked as e:
        raise click.ClickException(
            f"{e}\n服务器运行时，请在管理页面 {page} 完成此操作。While the server runs, use the admin "
            f"page {page} instead.")
    try:
        yield store
    finally:
        store.close()


def open_app_folder(config):
    """The app server's TinyDB store in the data folder (stores.init_app opens it once a process);
    a restore staged from the web is swapped in first."""
    from server.store.restore import apply_pending
    apply_pending(config["DATA_DIR"], config.get("FILES_DIR"))
    return Store(config["DATA_DIR"], snapshot_every=config["SNAPSHOT_EVERY"],
                 journal_snapshot_bytes=config["JOURNAL_SNAPSHOT_BYTES"],
                 memory_mb=config.get("MEMORY_MB")).open()
