"""Writes: one batch at a time on the writer thread, its journal lines appended and fsynced once for
every writer waiting (group commit), then applied to memory."""

import json
import os
import queue
import threading
import time


from server.store.tinydb.parts import MEMORY_PER_FILE_BYTE, Transaction, log


class JournalWriter:
    """Writes: one batch at a time on the writer thread, its journal lines appended and fsynced once for
    every writer waiting (group commit), then applied to memory."""

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
                if self.layout.is_global(table):
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
