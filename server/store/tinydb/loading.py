"""Partitions loaded on first use and dropped again under the memory budget."""

import gc
import json
import os
import threading
import time


from server.store.common import (
    CORE, PartitionUnavailable, patched)
from server.store.tinydb.parts import MEMORY_PER_FILE_BYTE, _Entry, _Partition, log


class PartitionLoading:
    """Partitions loaded on first use and dropped again under the memory budget."""

    # ---- loading and dropping partitions --------------------------------------------------------

    def _read_partition(self, name, entry):
        """A partition from its file (no lock held): PartitionUnavailable when the file is bad."""
        path = self._partition_path(name)
        p = _Partition(name, path, self.layout.key_field)
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
