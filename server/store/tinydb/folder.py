"""The data folder on disk: its lock, its catalogue, its journal files, and opening it read-only
beside a running server."""

import fcntl
import json
import os
import time


from server.core.files import fsync_dir
from server.store.common import CORE, PARTITION_RE, StoreLocked
from server.store.tinydb.parts import CATALOG, CATALOG_FORMAT, JOURNAL_RE, KEYS_FILE, KEYS_NEW, _Entry, _KeyIndex, _Partition, _Retry, _raise_fd_limit, _read_header, log


def lock_data_folder(data_dir):
    """The data folder's lock, the one a running server holds: its open descriptor, or StoreLocked
    naming the folder when another process has it."""
    fd = os.open(os.path.join(data_dir, "lock"), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise StoreLocked(
            f"另一个进程正在使用数据目录 {data_dir}（通常是正在运行的服务器）。"
            f" Another process (usually the running server) owns the data folder {data_dir}.") from None
    return fd


class FolderFiles:
    """The data folder on disk: its lock, its catalogue, its journal files, and opening it read-only
    beside a running server."""

    def _take_lock(self):
        fd = lock_data_folder(self.data_dir)
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._lock_fd = fd

    def _release_lock(self):
        if self._lock_fd is not None:
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
            os.close(self._lock_fd)
            self._lock_fd = None

    def _partition_path(self, name):
        return self.layout.partition_file(self.data_dir, name)

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
        for family in self.layout.families:
            folder = os.path.join(self.data_dir, family)
            if os.path.isdir(folder):
                for fn in os.listdir(folder):
                    name = f"{family}.{fn[:-5]}"
                    if fn.endswith(".json") and self.layout.family_of(name):
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
            p = _Partition(name, path, self.layout.key_field)
            p.load_bytes(raw)
        except Exception as e:  # anything at all: that village is unavailable, the server starts
            log.error("store: %s cannot be read (%s); it will answer 'unavailable' until repaired",
                      path, e)
            entry.broken = (self._file_signature(entry, path), f"{e.__class__.__name__}: {e}"[:200])
            return
        self.stats["scans"] += 1
        entry.snapshot_seq, entry.last_seq = p.snapshot_seq, p.last_seq
        entry.size, entry.header = len(raw), _read_header(path)
        for table in self.layout.global_keys:
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
                    self.layout.check_partition(op["p"])
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
                if op["op"] == "put" and self.layout.is_global(op["t"]):
                    self._keys.add(op["doc"].get(self.layout.key_field(op["t"])), name)
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
