"""The store: TinyDB documents in memory, made durable by a write-ahead journal.

Naive TinyDB rewrites its whole JSON file on every insert, so acknowledging a write would cost more as
the data grows. Here each partition ("core", and one per village) is a TinyDB over an in-memory
storage; every write is first appended to one journal and fsynced (one fsync for all writers waiting
in the queue), and partitions are snapshotted in the background to plain TinyDB JSON files (temp file,
fsync, rename). On start the snapshots are loaded and the journal replayed; a torn last line is
discarded. This module is the only one that touches TinyDB.

One thread applies writes (Datasette's shape): write functions are queued, run one after another, and
their callers are released together after the shared fsync.
"""

import fcntl
import json
import logging
import os
import queue
import re
import threading
import time
from contextlib import contextmanager

from tinydb import TinyDB
from tinydb.storages import Storage

log = logging.getLogger(__name__)

CORE = "core"
PARTITION_RE = re.compile(r"^[A-Za-z0-9]{1,32}$")
KEY_FIELDS = {"submissions": "uuid"}
JOURNAL_RE = re.compile(r"^journal\.(\d{8})\.log$")


def key_field(table):
    return KEY_FIELDS.get(table, "id")


class StoreLocked(RuntimeError):
    """Another live process owns the data folder."""


class UnstorableValue(ValueError):
    """A document JSON cannot carry (NaN, a lone surrogate...): its write fails, nothing applied."""


class _MemoryStorage(Storage):
    """TinyDB storage whose read returns the live dict: the store mutates it directly."""

    def __init__(self):
        self.memory = {}

    def read(self):
        return self.memory

    def write(self, data):  # never called by the store; kept for TinyDB's interface
        self.memory = data


class _Partition:
    """One TinyDB: its tables live in memory keyed by str(doc_id), exactly like TinyDB's JSON file."""

    def __init__(self, name, path):
        self.name = name
        self.path = path
        self.db = TinyDB(storage=_MemoryStorage)
        self.snapshot_seq = 0
        self.last_seq = 0  # the newest seq written to this partition: its change cursor
        self.dirty = False
        self.keys = {}  # table -> {key: str(doc_id)}
        self.next_id = {}  # table -> int

    @property
    def tables(self):
        return self.db.storage.memory

    def load_file(self):
        if not os.path.exists(self.path):
            return
        with open(self.path, encoding="utf-8") as f:
            data = json.load(f)
        meta = data.pop("_meta", {}).get("1", {})
        self.snapshot_seq = int(meta.get("seq", 0))
        self.last_seq = int(meta.get("last_seq", 0))
        self.tables.clear()
        self.tables.update(data)
        for table, docs in data.items():
            kf = key_field(table)
            self.keys[table] = {doc[kf]: doc_id for doc_id, doc in docs.items() if kf in doc}
            self.next_id[table] = max((int(i) for i in docs), default=0) + 1

    def picture(self):
        """Documents are replaced, never mutated in place, so shallow copies of the tables are a
        consistent picture (taken under the store lock); serialising it can happen outside."""
        return {t: dict(docs) for t, docs in self.tables.items()}

    def write_snapshot(self, path, tables, seq):
        """A plain TinyDB file, plus a _meta table saying which journal entries it already holds."""
        write_json_atomic(path, dict(tables, _meta={"1": {"seq": seq, "partition": self.name,
                                                          "last_seq": self.last_seq}}))

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
        self.db.table(table).clear_cache()
        self.dirty = True
        seq = doc.get("seq", 0)
        if isinstance(seq, int) and seq > self.last_seq:
            self.last_seq = seq

    def delete(self, table, key):
        doc_id = self.keys.get(table, {}).pop(key, None)
        if doc_id is not None:
            del self.tables[table][doc_id]
            self.db.table(table).clear_cache()
            self.dirty = True

    def search(self, table, cond):
        if table not in self.tables:
            return []
        t = self.db.table(table)
        if cond is None:
            return list(self.tables[table].values())
        if hasattr(cond, "is_cacheable"):
            return t.search(cond)
        return [doc for doc in self.tables[table].values() if cond(doc)]


def _copy(doc):
    """Readers get their own copy (a JSON round trip: documents are JSON, and it beats deepcopy)."""
    return json.loads(json.dumps(doc, ensure_ascii=False))


def _check_partition(name):
    if name != CORE and not (isinstance(name, str) and PARTITION_RE.match(name)):
        raise ValueError(f"bad partition name: {name!r}")
    return name


def _fsync_dir(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_json_atomic(path, data):
    """Temp file, fsync, rename: a reader or a crash sees the old file or the new one, never half."""
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(data, f, ensure_ascii=False, separators=(",", ":"))
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    _fsync_dir(os.path.dirname(path))


class Transaction:
    """What a write function sees: reads through its own pending writes; applied only if it returns."""

    def __init__(self, store):
        self._store = store
        self._pending = {}  # (partition, table, key) -> doc or None (deleted)
        self._encoded = {}  # (partition, table, key) -> the doc as UTF-8 JSON bytes
        self._del_seq = {}
        self._order = []

    def get(self, partition, table, key):
        k = (partition, table, key)
        if k in self._pending:
            return _copy(self._pending[k]) if self._pending[k] is not None else None
        return self._store._get_unlocked(partition, table, key)

    def search(self, partition, table, cond=None):
        base = self._store._search_unlocked(partition, table, cond)
        kf = key_field(table)
        mine = {k[2]: d for k, d in self._pending.items() if k[0] == partition and k[1] == table}
        if not mine:
            return base
        out = [d for d in base if d.get(kf) not in mine]
        for d in mine.values():
            if d is not None and (cond is None or cond(d)):
                out.append(_copy(d))
        return out

    def put(self, partition, table, doc):
        _check_partition(partition)
        kf = key_field(table)
        key = doc.get(kf)
        if not isinstance(key, str) or not key:
            raise ValueError(f"document for {table} needs a string {kf!r}")
        stamped = dict(doc, seq=self._store._seq + 1)
        # Encoded once, to bytes, here: a value JSON or UTF-8 cannot hold (NaN, a lone surrogate,
        # a cycle) fails this write function before anything is applied. The journal line carries
        # these bytes, and the stored copy is decoded from them, so memory is exactly what a replay
        # rebuilds and never aliases the caller's object.
        try:
            encoded = json.dumps(stamped, ensure_ascii=False, separators=(",", ":"),
                                 allow_nan=False).encode("utf-8")
        except (ValueError, TypeError, UnicodeEncodeError, RecursionError) as e:
            raise UnstorableValue(f"{table} {key!r}: {e.__class__.__name__}") from None
        self._store._seq += 1  # only the writer thread is here; a failed fn leaves a gap, harmless
        k = (partition, table, key)
        if k not in self._pending:
            self._order.append(k)
        self._pending[k] = json.loads(encoded)
        self._encoded[k] = encoded
        return json.loads(encoded)

    def delete(self, partition, table, key):
        _check_partition(partition)
        k = (partition, table, key)
        if k not in self._pending:
            self._order.append(k)
        self._pending[k] = None

    def village_ids(self):
        return self._store._village_ids_unlocked()


class Store:
    """TinyDB partitions in memory + journal. Open once per process (see the folder lock)."""

    def __init__(self, data_dir, *, snapshot_every=2.0, journal_snapshot_bytes=8 << 20,
                 readonly=False):
        self.data_dir = os.path.abspath(data_dir)
        self.villages_dir = os.path.join(self.data_dir, "villages")
        self.snapshot_every = snapshot_every
        self.journal_snapshot_bytes = journal_snapshot_bytes
        self.readonly = readonly
        self._lock = threading.RLock()
        self._partitions = {}
        self._seq = 0
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
        self.is_open = False
        self._fault_before_fsync = False  # tests: make the next journal append fail
        self.stats = {"batches": 0, "writes": 0, "snapshots": 0}

    # ---- opening and closing -------------------------------------------------------------------

    def open(self):
        os.makedirs(self.villages_dir, exist_ok=True)
        if not self.readonly:
            self._take_lock()
        try:
            self._load_all()
            if not self.readonly:
                self._start_journal(self._journal_no + 1)
                self._writer = threading.Thread(target=self._write_loop, name="store-writer",
                                                daemon=True)
                self._writer.start()
                if self.snapshot_every:
                    self._snapshotter = threading.Thread(target=self._snapshot_loop,
                                                         name="store-snapshot", daemon=True)
                    self._snapshotter.start()
        except Exception:
            self._release_lock()
            raise
        self.is_open = True
        return self

    def close(self):
        if not self.is_open:
            return
        self.is_open = False
        if not self.readonly:
            self._queue.put(None)
            self._writer.join()
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
        if name == CORE:
            return os.path.join(self.data_dir, "core.json")
        return os.path.join(self.villages_dir, f"{name}.json")

    def _journal_files(self):
        found = []
        for fn in os.listdir(self.data_dir):
            m = JOURNAL_RE.match(fn)
            if m:
                found.append((int(m.group(1)), os.path.join(self.data_dir, fn)))
        return sorted(found)

    def _load_partition(self, name):
        p = self._partitions.get(name)
        if p is None:
            p = _Partition(name, self._partition_path(name))
            p.load_file()
            self._partitions[name] = p
            self._seq = max(self._seq, p.max_seq())
        return p

    def _load_all(self):
        """Partitions are small enough to load at start; the journal needs them to replay anyway."""
        # Journals are listed before the partitions are read: if a snapshot removes a listed journal
        # meanwhile (possible only for a read-only opener), replay fails and the caller tries again.
        journals = self._journal_files()
        self._load_partition(CORE)
        for fn in os.listdir(self.villages_dir):
            if fn.endswith(".json") and PARTITION_RE.match(fn[:-5]):
                self._load_partition(fn[:-5])
        for no, path in journals:
            self._journal_no = max(self._journal_no, no)
            self._replay(path)

    def _replay(self, path):
        with open(path, "rb") as f:
            lines = f.read().split(b"\n")
        # The file ends with "\n" after every complete line, so the last element is b"" unless the
        # last write was torn.
        for i, raw in enumerate(lines):
            if not raw.strip():
                continue
            try:
                rec = json.loads(raw)
            except ValueError:
                if i == len(lines) - 1:
                    log.warning("journal %s: discarding a torn last line (%d bytes)", path, len(raw))
                    continue
                raise RuntimeError(f"journal {path} is corrupt at line {i + 1}")
            for op in rec["ops"]:
                part = self._load_partition(op["p"])
                seq = op.get("seq", rec["seq"])
                if seq <= part.snapshot_seq:
                    continue
                if op["op"] == "put":
                    part.put(op["t"], op["doc"])
                else:
                    part.delete(op["t"], op["k"])
                    part.last_seq = max(part.last_seq, seq)
            self._seq = max(self._seq, rec["seq"])

    def _start_journal(self, no):
        self._journal_no = no
        path = os.path.join(self.data_dir, f"journal.{no:08d}.log")
        self._journal = open(path, "ab")
        self._journal_bytes = 0
        _fsync_dir(self.data_dir)

    # ---- reads ---------------------------------------------------------------------------------

    def _get_unlocked(self, partition, table, key):
        if partition != CORE and partition not in self._partitions:
            return None
        doc = self._load_partition(partition).get(table, key)
        return _copy(doc) if doc is not None else None

    def _search_unlocked(self, partition, table, cond):
        if partition != CORE and partition not in self._partitions:
            return []
        return [_copy(d) for d in self._load_partition(partition).search(table, cond)]

    def _village_ids_unlocked(self):
        return sorted(n for n in self._partitions if n != CORE)

    def get(self, partition, table, key):
        with self._lock:
            return self._get_unlocked(partition, table, key)

    def search(self, partition, table, cond=None):
        with self._lock:
            return self._search_unlocked(partition, table, cond)

    def count(self, partition, table, cond=None):
        with self._lock:
            if partition != CORE and partition not in self._partitions:
                return 0
            p = self._load_partition(partition)
            if cond is None:
                return len(p.tables.get(table, {}))
            return len(p.search(table, cond))

    def village_ids(self):
        with self._lock:
            return self._village_ids_unlocked()

    def partition_seq(self, partition):
        """The newest seq written to a partition (0 when it has none): a change cursor, so a
        cache of anything computed from one village stays right while this number stands."""
        with self._lock:
            if partition != CORE and partition not in self._partitions:
                return 0
            p = self._load_partition(partition)
            if not p.last_seq:
                p.last_seq = p.max_seq()
            return p.last_seq

    @property
    def seq(self):
        return self._seq

    # ---- writes --------------------------------------------------------------------------------

    def write(self, fn):
        """Run fn(tx) on the writer thread; return its result once the journal is fsynced."""
        if self.readonly:
            raise RuntimeError("this store was opened read-only")
        if not self.is_open:
            raise RuntimeError("store is closed")
        done = threading.Event()
        box = {}
        self._queue.put((fn, done, box))
        done.wait()
        if "error" in box:
            raise box["error"]
        return box["result"]

    def _write_loop(self):
        while True:
            item = self._queue.get()
            if item is None:
                return
            batch = [item]
            stop = False
            while len(batch) < 256:
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    stop = True
                    break
                batch.append(nxt)
            try:
                self._run_batch(batch)
            except BaseException as e:  # the writer must outlive any write: fail the batch, go on
                log.exception("store writer: a batch failed")
                for _fn, done, box in batch:
                    if not done.is_set():
                        box.pop("result", None)
                        box.setdefault("error", e)
                        done.set()
            if stop:
                return

    def _journal_line(self, tx):
        """The journal line of one write function, as bytes (every document already encoded)."""
        ops = []
        for part_name, table, key in tx._order:
            k = (part_name, table, key)
            head = json.dumps({"p": part_name, "t": table}, ensure_ascii=False)[:-1].encode()
            if tx._pending[k] is None:
                self._seq += 1
                tx._del_seq[k] = self._seq
                ops.append(head + b',"op":"del","k":' + json.dumps(key).encode()
                           + b',"seq":' + str(self._seq).encode() + b"}")
            else:
                doc_seq = str(tx._pending[k]["seq"]).encode()
                ops.append(head + b',"op":"put","seq":' + doc_seq + b',"doc":' + tx._encoded[k] + b"}")
        return b'{"seq":' + str(self._seq).encode() + b',"ops":[' + b",".join(ops) + b"]}\n"

    def _apply(self, tx, undo):
        """Make one write function's documents readable, remembering how to take them back."""
        for part_name, table, key in tx._order:
            doc = tx._pending[(part_name, table, key)]
            part = self._load_partition(part_name)
            undo.append((part, table, key, part.get(table, key)))
            if doc is None:
                part.delete(table, key)
                part.last_seq = max(part.last_seq, tx._del_seq[(part_name, table, key)])
            else:
                part.put(table, doc)

    def _run_batch(self, batch):
        lines = []
        undo = []
        with self._lock:
            for fn, _done, box in batch:
                tx = Transaction(self)
                try:
                    box["result"] = fn(tx)
                    if not tx._order:
                        continue
                    line = self._journal_line(tx)
                except BaseException as e:  # the caller gets it; nothing of this fn is applied
                    box.pop("result", None)
                    box["error"] = e
                    continue
                # Applied only now, its line encoded; readers wait for the fsync below (they take
                # this lock), so nobody sees a write before it is durable.
                self._apply(tx, undo)
                lines.append(line)
            if lines:
                data = b"".join(lines)
                try:
                    if self._fault_before_fsync:
                        raise OSError("injected journal fault")
                    self._journal.write(data)
                    self._journal.flush()
                    os.fsync(self._journal.fileno())
                    self._journal_bytes += len(data)
                except OSError as e:  # not durable: nobody may be told it is, nor read it
                    log.exception("journal write failed")
                    for part, table, key, old in reversed(undo):
                        if old is None:
                            part.delete(table, key)
                        else:
                            part.put(table, old)
                    self._reopen_journal_after_failure()
                    for _fn, _done, box in batch:
                        box.pop("result", None)
                        box.setdefault("error", e)
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
        than the journal it saves."""
        while not self._stop.is_set():
            self._snapshot_wake.wait(self.snapshot_every)
            self._snapshot_wake.clear()
            if self._stop.is_set():
                return
            idle = time.monotonic() - self._last_write >= self.snapshot_every
            if not (self._journal_bytes >= self.journal_snapshot_bytes
                    or (self._journal_bytes and idle)):
                continue
            try:
                self.snapshot()
            except Exception:
                log.exception("snapshot failed; the journal still holds every write")

    def snapshot(self):
        """Write dirty partitions to their files, then drop journals they made redundant."""
        with self._snapshot_lock:
            with self._lock:
                dirty = [p for p in self._partitions.values() if p.dirty]
                if not dirty and self._journal_bytes == 0:
                    return 0
                pictures = []
                for p in dirty:
                    pictures.append((p, p.picture(), self._seq))
                    p.dirty = False
                old_journals = [path for no, path in self._journal_files()]
                self._journal.close()
                self._start_journal(self._journal_no + 1)
            try:
                for p, tables, seq in pictures:
                    p.write_snapshot(p.path, tables, seq)
                    p.snapshot_seq = seq
            except BaseException:
                for p, _tables, _seq in pictures:
                    p.dirty = True  # keep the journals: they are still the only durable copy
                raise
            for path in old_journals:
                os.remove(path)
            if old_journals:
                _fsync_dir(self.data_dir)
            self.stats["snapshots"] += 1
            return len(pictures)

    # ---- backup ----------------------------------------------------------------------------------

    def export_to(self, out_dir):
        """A clean data folder: every partition snapshotted, no journal needed."""
        os.makedirs(os.path.join(out_dir, "villages"), exist_ok=True)
        with self._lock:
            pictures = [(p, p.picture()) for p in self._partitions.values()]
            seq = self._seq
        for p, tables in pictures:
            p.write_snapshot(os.path.join(out_dir, os.path.relpath(p.path, self.data_dir)), tables, seq)


def open_readonly(data_dir):
    """Load the files as they are (snapshots + journal) without taking the lock: for backup/print."""
    for attempt in range(5):
        try:
            return Store(data_dir, readonly=True).open()
        except (FileNotFoundError, RuntimeError):
            # a snapshot removed a journal while we read it; the next try sees the new files
            if attempt == 4:
                raise
            time.sleep(0.05 * (attempt + 1))


@contextmanager
def open_for_command(app, page="/admin"):
    """For CLI commands that write: the app's data folder, locked, closed (snapshotted) afterwards.
    While a server owns the folder, the message names the admin `page` that does the same online."""
    import click
    store = Store(app.config["DATA_DIR"], snapshot_every=0)
    try:
        store.open()
    except StoreLocked as e:
        raise click.ClickException(
            f"{e}\n服务器运行时，请在管理页面 {page} 完成此操作。While the server runs, use the admin "
            f"page {page} instead.")
    try:
        yield store
    finally:
        store.close()


_open_lock = threading.Lock()


def init_app(app):
    """Like flaskr's db.init_app: the store opens lazily, once per process, and closes at exit."""
    app.extensions["jiedui_store"] = None

    def open_store():
        with _open_lock:
            store = app.extensions.get("jiedui_store")
            if store is None:
                store = Store(app.config["DATA_DIR"], snapshot_every=app.config["SNAPSHOT_EVERY"],
                              journal_snapshot_bytes=app.config["JOURNAL_SNAPSHOT_BYTES"]).open()
                app.extensions["jiedui_store"] = store
                import atexit
                atexit.register(store.close)
            return store

    app.extensions["jiedui_open_store"] = open_store


def get_store(app=None):
    from flask import current_app
    app = app or current_app
    return app.extensions.get("jiedui_store") or app.extensions["jiedui_open_store"]()


def close_app_store(app):
    store = app.extensions.get("jiedui_store")
    if store is not None:
        store.close()
        app.extensions["jiedui_store"] = None
