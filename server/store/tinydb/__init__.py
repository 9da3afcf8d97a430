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
- Keys unique across partitions (the layout's global keys: submission uuids) are found without
  loading every village: a
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
A partition is "core", a village id, or a family's day ("audit.20260501"). Which tables' keys are
unique server-wide and which families exist is the `layout` the store is opened with
(common.StoreLayout, declared by server/records/layout.py): the store names no record itself.

Split by concern: parts (a partition, the catalogue entry, the key index, a transaction), folder
(the lock, catalogue and journal files), loading (partitions on first use, the memory budget),
reads, writer (the writer thread, group commit, the journal), snapshots (and the backup export),
store (the Store made of them, opening and closing), and the functions below that open a folder.
"""

from server.store.common import (  # noqa: F401 (the names callers import from here)
    CORE, PARTITION_RE, PartitionUnavailable, SchemaTooNew, StoreLayout, StoreLocked,
    StoreUnavailable, UnstorableValue, encode)
from server.store.tinydb.parts import (  # noqa: F401
    CATALOG, HEADER_RE, JOURNAL_RE, KEYS_FILE, KEYS_NEW, MEMORY_PER_FILE_BYTE,
    Transaction, _Entry, _KeyIndex, _MemoryStorage, _Partition, _read_header, default_memory_mb, log)
from server.store.tinydb.store import (  # noqa: F401
    Store, open_app_folder, open_folder_for_command, open_readonly, write_catalog)
