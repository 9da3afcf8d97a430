"""The TinyDB store itself: its state and its life (open, close); each concern it is made of is a
module of its own."""

import os
import queue
import threading
import time
from contextlib import contextmanager


from server.core.files import write_atomic
from server.store.common import CORE, StoreLayout, StoreLocked
from server.store.tinydb.parts import CATALOG, KEYS_FILE, KEYS_NEW, _KeyIndex, default_memory_mb
from server.store.tinydb.folder import FolderFiles
from server.store.tinydb.loading import PartitionLoading
from server.store.tinydb.reads import Reads
from server.store.tinydb.snapshots import Snapshots
from server.store.tinydb.writer import JournalWriter


class Store(FolderFiles, PartitionLoading, Reads, JournalWriter, Snapshots):
    """TinyDB partitions in memory + journal. Open once per process (see the folder lock).
    `layout` (common.StoreLayout, declared by the records layer) says which tables' keys are
    unique server-wide and which record families are partitioned by day: the store names none."""

    def __init__(self, data_dir, *, layout, snapshot_every=2.0, journal_snapshot_bytes=8 << 20,
                 readonly=False, memory_mb=None, idle_seconds=0.5):
        if not isinstance(layout, StoreLayout):
            raise TypeError(f"layout must be a StoreLayout, not {layout!r}")
        self.layout = layout
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


def write_catalog(data_dir, layout):
    """catalog.json and the key index for a folder of snapshot files written by another store (a
    backup from PostgreSQL), so a TinyDB server started on it reads no file to open: each file is
    read once here."""
    store = Store(data_dir, layout=layout, readonly=True)
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


def open_readonly(data_dir, layout, memory_mb=None):
    """Load the files as they are (snapshots + journal) without taking the lock: for backup/print."""
    return Store(data_dir, layout=layout, readonly=True, memory_mb=memory_mb, idle_seconds=0).open()


@contextmanager
def open_folder_for_command(app, layout, page="/admin"):
    """For CLI commands that write on the TinyDB store: the app's data folder, locked, closed
    (snapshotted) afterwards. While a server owns the folder, the message names the admin `page`
    that does the same online. (stores.open_for_command chooses between this and PostgreSQL.)"""
    import click
    from server.store.restore import apply_pending
    store = Store(app.config["DATA_DIR"], layout=layout, snapshot_every=0,
                  memory_mb=app.config.get("MEMORY_MB"))
    try:
        apply_pending(app.config["DATA_DIR"], app.config.get("FILES_DIR"), layout)
        store.open()
    except StoreLocked as e:
        raise click.ClickException(
            f"{e}\n服务器运行时，请在管理页面 {page} 完成此操作。While the server runs, use the admin "
            f"page {page} instead.")
    try:
        yield store
    finally:
        store.close()


def open_app_folder(config, layout):
    """The app server's TinyDB store in the data folder (stores.init_app opens it once a process);
    a restore staged from the web is swapped in first."""
    from server.store.restore import apply_pending
    apply_pending(config["DATA_DIR"], config.get("FILES_DIR"), layout)
    return Store(config["DATA_DIR"], layout=layout, snapshot_every=config["SNAPSHOT_EVERY"],
                 journal_snapshot_bytes=config["JOURNAL_SNAPSHOT_BYTES"],
                 memory_mb=config.get("MEMORY_MB")).open()
