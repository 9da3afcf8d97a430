"""What both stores share: partition names, key fields, the errors they raise, how a document is
encoded for the journal and the database, and the pending writes of a transaction. Neither store
reaches into the other; both import from here."""

import json
import os
import re

from server.core.files import write_atomic
from server.core.ids import VILLAGE_ID_RE

CORE = "core"
PARTITION_RE = VILLAGE_ID_RE  # a village (villages/<id>.json)
# Partitions of other record families, e.g. "audit.20260501" (audit/20260501.json): one a day, so
# the log grows in small files that load and go like villages instead of in core.
FAMILIES = ("audit",)
FAMILY_RE = re.compile(r"^(audit)\.([0-9]{8})$")
KEY_FIELDS = {"submissions": "uuid"}


def key_field(table):
    return KEY_FIELDS.get(table, "id")


RETRY_AFTER_SECONDS = 5


class StoreUnavailable(RuntimeError):
    """The database cannot be reached, or every connection is busy: answer 503, retry later."""


class SchemaTooNew(RuntimeError):
    """The database was set up by a newer version of this server: refuse to start on it."""


class StoreLocked(RuntimeError):
    """Another live process owns the data folder."""


class UnstorableValue(ValueError):
    """A document JSON cannot carry (NaN, a lone surrogate...): its write fails, nothing applied."""


class PartitionUnavailable(RuntimeError):
    """A partition's file cannot be read: that partition answers this error, the file is left as it
    is for repair, every other partition keeps working."""

    def __init__(self, partition, reason):
        self.partition, self.reason = partition, reason
        super().__init__(f"partition {partition} cannot be read: {reason}")


ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def encode_body(doc):
    """A document as UTF-8 JSON bytes without its seq (stamped at write time), or UnstorableValue."""
    if "seq" in doc:
        doc = {k: v for k, v in doc.items() if k != "seq"}
    try:
        return ENCODER.encode(doc).encode("utf-8")
    except (ValueError, TypeError, UnicodeEncodeError, RecursionError) as e:
        raise UnstorableValue(f"{e.__class__.__name__}") from None


def with_seq(body, seq):
    """The stored bytes: the body with `"seq": N` as its last member (what json.loads rebuilds)."""
    if body == b"{}":
        return b'{"seq":' + str(seq).encode() + b"}"
    return body[:-1] + b',"seq":' + str(seq).encode() + b"}"


class Encoded:
    """A document encoded (and decoded again, for memory) before its write, so the writer thread
    only stamps the seq: `tx.put(partition, table, store.encode(doc))`. Raises UnstorableValue
    for a value JSON or UTF-8 cannot hold.

    `handed_over=True`: the caller gives the store this very dict, built from JSON values for
    this write and never touched again, so memory keeps it (plus its seq) instead of decoding the
    bytes again; equal to what a replay decodes, since it holds JSON values only."""

    __slots__ = ("doc", "body", "_decoded")

    def __init__(self, doc, handed_over=False):
        self.doc = doc
        self.body = encode_body(doc)
        if handed_over and "seq" not in doc:
            self._decoded = dict(doc)
        else:
            self._decoded = json.loads(self.body)

    def take(self):
        """The decoded document, handed to the store once (later calls decode afresh)."""
        decoded, self._decoded = self._decoded, None
        return decoded if decoded is not None else json.loads(self.body)


def encode(doc, handed_over=False):
    return Encoded(doc, handed_over)


def patch_step(set=None, items=None):
    """One change in part of a stored document, as the journal carries it: `set` {field: value},
    `items` {field: {"append": [item], "put": [item], "drop": [id]}} for a list of {"id", ...}
    objects: appended items are new (the caller knows no item has their id); an item put replaces
    the one with its id where it stands, else is appended; dropped ids leave."""
    step = {}
    if set:
        step["set"] = set
    if items:
        step["items"] = items
    return step


def patched(doc, steps):
    """The document `steps` make of `doc`: a new dict and new lists where they change; `doc`, its
    lists and the steps' values are shared, never changed (stored documents are read only).
    Appending costs the same however long the list is; put and drop look the list through."""
    new = dict(doc)
    for step in steps:
        new.update(step.get("set") or {})
        for field, change in (step.get("items") or {}).items():
            items = list(new.get(field) or [])
            items.extend(change.get("append") or ())
            if change.get("put"):
                where = {item.get("id"): i for i, item in enumerate(items) if isinstance(item, dict)}
                for item in change["put"]:
                    i = where.get(item["id"])
                    if i is None:
                        where[item["id"]] = len(items)
                        items.append(item)
                    else:
                        items[i] = item
            drop = set(change.get("drop") or ())
            if drop:
                items = [item for item in items if not (isinstance(item, dict) and item.get("id") in drop)]
            new[field] = items
    return new


def copy_doc(doc):
    """Readers get their own copy (a JSON round trip: documents are JSON, and it beats deepcopy)."""
    return json.loads(ENCODER.encode(doc))


def partition_file(data_dir, name):
    """Where a partition's snapshot lives in a data folder: core.json, villages/<id>.json, or
    <family>/<day>.json (audit/20260501.json)."""
    if name == CORE:
        return os.path.join(data_dir, "core.json")
    m = FAMILY_RE.match(name)
    if m:
        return os.path.join(data_dir, m.group(1), f"{m.group(2)}.json")
    return os.path.join(data_dir, "villages", f"{name}.json")


def check_partition(name):
    if name != CORE and not (isinstance(name, str) and (PARTITION_RE.match(name)
                                                         or FAMILY_RE.match(name))):
        raise ValueError(f"bad partition name: {name!r}")
    return name


def write_json_atomic(path, data):
    """Temp file, fsync, rename: a reader or a crash sees the old file or the new one, never half.
    Returns the number of bytes written."""
    raw = json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    write_atomic(path, raw)
    return len(raw)


ABSENT = object()


class PendingWrites:
    """What both stores' write transactions share: the writes a function has made, in order, held
    until it returns (`_pending` maps (partition, table, key) to the document, or None for a
    delete; `_order` is the order of first writes)."""

    def _stage(self, k, value):
        if k not in self._pending:
            self._order.append(k)
        self._pending[k] = value

    def delete(self, partition, table, key):
        check_partition(partition)
        self._stage((partition, table, key), None)
