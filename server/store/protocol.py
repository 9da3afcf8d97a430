"""The one interface both stores keep (TinyDB in tinydb.py, PostgreSQL in postgres.py), written down
as a Protocol so it is checked, not only described. tests/test_store_contract.py runs every method
against both stores; record owners use nothing else.

A partition is "core" (users, villages, pairing), a village id (its households, submissions,
history, clashes), or a record family's day ("audit.20260501"). Documents are JSON objects keyed by
"id", or by the key field of a table whose keys are unique server-wide ("uuid" for submissions);
every stored document carries the server-wide `seq` of its last write.

The store names no record. Which tables have server-wide keys (and their key field) and which
record families are partitioned by day is the layout a store is opened with: a `StoreLayout`
(common.py), an immutable value both stores take as their required `layout=` argument
(`Store(data_dir, layout=...)`, `PgStore(url, layout=...)`), and with it `locate`, the key index
(keys.idx, jiedui_keys), `partitions(family)`, the family folders of snapshots and backups, migrate
and restore. The domain's layout is declared by the records layer, the owners of those tables
(server/records/layout.py: {"submissions": "uuid"}, ("audit",)); the app factory hands it to the
store seam (store.init_app) and commands, services, tests and benches that open a store pass it.

What only one store does, and why the interface leaves it out:
- TinyDB: one process owns a data folder (an OS lock; a second server exits with a message, and
  writing commands refuse while a server runs); a memory budget drops clean idle villages and
  loads them again on use (`memory_estimate`); `snapshot()` writes dirty partitions to plain
  TinyDB files and trims the journal.
- PostgreSQL: no folder lock, so several app servers share one database and one files folder
  (JIEDUI_FILES_DIR) and writing commands work beside them; `snapshot()` has nothing to do (the
  database is durable at commit); a busy or lost database answers StoreUnavailable (503).
"""

from typing import Any, Callable, Optional, Protocol, runtime_checkable

from server.store.common import StoreLayout

Doc = dict
Cond = Optional[Callable[[dict], bool]]


@runtime_checkable
class Transaction(Protocol):
    """What a write function sees: reads through its own writes, then the store; applied whole,
    and durable before `write` returns, or not at all (anything it raises discards it)."""

    def get(self, partition: str, table: str, key: str) -> Optional[Doc]: ...
    def peek(self, partition: str, table: str, key: str) -> Optional[Doc]:
        """The document as stored, not a copy: read it, never change it."""
    def search(self, partition: str, table: str, cond: Cond = None, since: Optional[int] = None) -> list: ...
    def put(self, partition: str, table: str, doc: Any) -> Doc:
        """Store a dict (or one prepared with `encode`); returns it with its new seq."""
    def patch(self, partition: str, table: str, key: str, *, set: Optional[dict] = None,
              items: Optional[dict] = None) -> Optional[Doc]:
        """Change a stored document in part (common.patch_step): fields `set`, and in its lists of
        {"id", ...} items, `items` appended, put (replacing the one with that id) or dropped.
        Returns the document as stored (read it, never change it), None when there is none.
        TinyDB's journal carries only the change, so bookkeeping on a long document (a
        household's open promises) costs what changed; PostgreSQL writes the row whole."""
    def delete(self, partition: str, table: str, key: str) -> None: ...
    def village_ids(self) -> list: ...
    def partitions(self, family: str) -> list: ...
    def locate(self, table: str, key: str) -> Optional[str]: ...
    def partition_of(self, table: str, key: str) -> Optional[str]: ...
    def partitions_of(self, table: str, keys: list) -> dict: ...


@runtime_checkable
class Store(Protocol):
    """Reads answer copies (`peek`: the stored document, read only); `write(fn)` runs fn(tx) as
    one transaction and returns its result once durable."""

    def open(self) -> "Store": ...
    def close(self) -> None: ...
    def get(self, partition: str, table: str, key: str) -> Optional[Doc]: ...
    def peek(self, partition: str, table: str, key: str) -> Optional[Doc]: ...
    def peek_many(self, partition: str, table: str, keys: list) -> list:
        """peek for each key, in their order, those not stored left out: one lock or one query for
        a batch (exports read every visit)."""
    def search(self, partition: str, table: str, cond: Cond = None, since: Optional[int] = None) -> list: ...
    def count(self, partition: str, table: str, cond: Cond = None) -> int: ...
    def village_ids(self) -> list:
        """Every village partition, in order."""
    def partitions(self, family: str) -> list:
        """Every partition of a record family of the layout ("audit" -> "audit.20260501", ...),
        oldest first."""
    def locate(self, table: str, key: str) -> Optional[str]:
        """The partition holding a key of a table whose keys are unique server-wide (one of the
        layout's global keys: submissions)."""
    def partition_of(self, table: str, key: str) -> Optional[str]: ...
    def partitions_of(self, table: str, keys: list) -> dict: ...
    def partition_seq(self, partition: str) -> int:
        """The newest seq written to a partition: a change cursor for caches of one village."""
    def summary(self, partition: str, name: str, compute: Callable[[], Any]) -> Any:
        """compute() (reading that partition only), kept beside the partition's cursor and
        recomputed only when the partition changed since."""
    @property
    def layout(self) -> StoreLayout:
        """Where this store keeps what the records layer named: global keys, record families."""
    @property
    def seq(self) -> int:
        """The newest seq readers can see."""
    def write(self, fn: Callable[[Transaction], Any]) -> Any: ...
    def snapshot(self) -> int: ...
    def export_to(self, out_dir: str) -> int:
        """A plain TinyDB data folder of everything, from one consistent picture: the backup."""
