"""Audit entries (owner): every change worth asking about later leaves one, never edited.

Entries live in one partition a day ("audit.YYYYMMDD", by the UTC day of their time), not in core:
the log grows with every visit (two million a year in a county), and core is read at every start.
Entries written before this layout stay in core's audit table and are read with the rest.
"""

import itertools
import os

from ..clock import now_iso
from ..store import CORE, get_store

TABLE = "audit"
FAMILY = "audit"


def partition_of(time):
    """The partition of an entry made at `time` (an ISO time in UTC, as now_iso gives)."""
    return f"{FAMILY}.{time[:4]}{time[5:7]}{time[8:10]}"


def partitions(db):
    """Every partition holding entries, newest day first (core: the entries from before)."""
    return sorted(db.partitions(FAMILY), reverse=True) + [CORE]


# Entry ids: random per process, then counted (a push writes one entry a visit; asking the OS for
# randomness each time cost more than the entry).
_ID_PREFIX = os.urandom(5).hex()
_id_count = itertools.count()  # next() on it is atomic under the GIL


def record(tx, actor, action, target, details=None):
    """Add an entry inside the write that made the change, so both are durable together."""
    at = now_iso()
    entry_id = f"{_ID_PREFIX}{next(_id_count):06x}"
    tx.put(partition_of(at), TABLE, {"id": entry_id, "time": at, "user": actor, "action": action,
                                     "target": target, "details": details or {}})


def entries(db=None, *, user=None, action=None, target=None, date_from=None, date_to=None,
            matches=None):
    """Entries newest first, filtered by user, action, target (exact) and ISO time bounds (dates
    compare by prefix). `matches(entry)` narrows further (e.g. a household named in details)."""
    db = db or get_store()

    def keep(e):
        if user and e.get("user") != user:
            return False
        if action and e.get("action") != action:
            return False
        if target and e.get("target") != target:
            return False
        if date_from and e.get("time", "") < date_from:
            return False
        if date_to and e.get("time", "")[:len(date_to)] > date_to:
            return False
        return matches is None or matches(e)

    found = []
    for partition in partitions(db):
        found.extend(db.search(partition, TABLE, keep))
    return sorted(found, key=lambda e: (e.get("time", ""), e.get("seq", 0)), reverse=True)


def actions(db=None):
    """Every action name recorded so far (for a filter's choices)."""
    db = db or get_store()
    seen = set()
    for partition in partitions(db):
        db.search(partition, TABLE, lambda e: seen.add(e.get("action", "")) and False)
    return sorted(seen)
