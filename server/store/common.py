"""What both stores share: partition names, the layout they are opened with (StoreLayout), the
errors they raise, how a document is encoded for the journal and the database, and the pending
writes of a transaction. Neither store reaches into the other; both import from here."""

import json
import os
import re
from types import MappingProxyType

from server.core.files import write_atomic
from server.core.ids import VILLAGE_ID_RE

CORE = "core"
PARTITION_RE = VILLAGE_ID_RE  # a village (villages/<id>.json)
FAMILY_NAME_RE = re.compile(r"^[a-z][a-z0-9_]*\Z")
# What a data folder holds besides the families' folders: no family may take one of these names.
RESERVED_NAMES = frozenset({CORE, "villages", "catalog", "keys", "journal", "lock", "backups",
                            "attachments", "forms", "forms-published", "restore-pending"})


class StoreLayout:
    """Where a domain's records live beyond "core" and the villages, told to a store when it is
    opened (the store names no record of its own). Immutable.

    `global_keys` {table: key field}: tables whose keys are unique server-wide, so `locate` finds
    the village holding one without reading every village (TinyDB's keys.idx, PostgreSQL's
    jiedui_keys); e.g. {"submissions": "uuid"}. Every other table keys its documents by "id".
    `families`: record families partitioned by day, e.g. ("audit",): partition "audit.20260501"
    in the file audit/20260501.json, so a log grows in small files that load and go like villages.

    The domain's own layout is declared by the records layer (server/records/layout.py) and passed
    in by whoever opens a store (the app factory, commands, services, tests, benches)."""

    __slots__ = ("global_keys", "families", "_family_re")

    def __init__(self, global_keys=None, families=()):
        keys = dict(global_keys or {})
        for table, field in keys.items():
            if not (isinstance(table, str) and table and isinstance(field, str) and field):
                raise ValueError(f"bad global key: {table!r} -> {field!r}")
        families = tuple(families)
        for family in families:
            if not (isinstance(family, str) and FAMILY_NAME_RE.match(family)) or family in RESERVED_NAMES:
                raise ValueError(f"bad record family name: {family!r}")
        if len(set(families)) != len(families):
            raise ValueError(f"a record family is named twice: {families!r}")
        alternatives = "|".join(map(re.escape, families)) or "(?!)"
        object.__setattr__(self, "global_keys", MappingProxyType(keys))
        object.__setattr__(self, "families", families)
        object.__setattr__(self, "_family_re", re.compile(rf"^({alternatives})\.([0-9]{{8}})\Z"))

    def __setattr__(self, name, value):
        raise AttributeError("a StoreLayout cannot change")

    def __eq__(self, other):
        return (isinstance(other, StoreLayout) and dict(self.global_keys) == dict(other.global_keys)
                and self.families == other.families)

    def __hash__(self):
        return hash((tuple(sorted(self.global_keys.items())), self.families))

    def __repr__(self):
        return f"StoreLayout(global_keys={dict(self.global_keys)!r}, families={self.families!r})"

    def key_field(self, table):
        """The field a table's documents are keyed by."""
        return self.global_keys.get(table, "id")

    def is_global(self, table):
        return table in self.global_keys

    def family_of(self, name):
        """(family, day) of a family's partition name ("audit.20260501"), else None."""
        m = self._family_re.match(name) if isinstance(name, str) else None
        return (m.group(1), m.group(2)) if m else None

    def check_partition(self, name):
        """`name` when it is a partition of this layout ("core", a village id, a family's day);
        ValueError otherwise."""
        if name != CORE and not (isinstance(name, str) and (PARTITION_RE.match(name)
                                                             or self.family_of(name))):
            raise ValueError(f"bad partition name: {name!r}")
        return name

    def partition_file(self, data_dir, name):
        """Where a partition's snapshot lives in a data folder: core.json, villages/<id>.json, or
        <family>/<day>.json (e.g. audit/20260501.json)."""
        if name == CORE:
            return os.path.join(data_dir, "core.json")
        family = self.family_of(name)
        if family:
            return os.path.join(data_dir, family[0], f"{family[1]}.json")
        return os.path.join(data_dir, "villages", f"{name}.json")

    def folders(self):
        """The folders of a data folder that hold partition files: villages/ and one a family."""
        return ("villages",) + self.families


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
        self._store.layout.check_partition(partition)
        self._stage((partition, table, key), None)
