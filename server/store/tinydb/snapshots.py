"""Snapshots of dirty partitions in the background (temp file, fsync, rename), the catalogue,
and the export a backup writes."""

import gc
import json
import os
import time


from server.core.files import fsync_dir, write_atomic
from server.store.common import CORE, PartitionUnavailable
from server.store.tinydb.parts import CATALOG, CATALOG_FORMAT, KEYS_FILE, KEYS_NEW, _Entry, _KeyIndex, log


class Snapshots:
    """Snapshots of dirty partitions in the background (temp file, fsync, rename), the catalogue,
    and the export a backup writes."""

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
            from server.store.tinydb.store import open_readonly  # the store module builds on this one
            view = open_readonly(self.data_dir, self.layout, memory_mb=self.memory_budget >> 20)
            try:
                return view.export_to(out_dir)
            finally:
                view.close()
        for folder in self.layout.folders():  # the same folders whatever the data
            os.makedirs(os.path.join(out_dir, folder), exist_ok=True)
        with self._lock:
            names = [CORE] + self._village_ids_locked()
            for family in self.layout.families:
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
            for table in self.layout.global_keys:  # the index again from what is written: no stale keys
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
