"""Audit entries (owner): every change worth asking about later leaves one, never edited.

Entries live in one partition a day ("audit.YYYYMMDD", by the UTC day of their time), not in core:
the log grows with every visit (two million a year in a county), and core is read at every start.
Entries written before this layout stay in core's audit table and are read with the rest. A query
with dates reads only the days it covers.
"""

import itertools
import os
from datetime import date, timedelta

from server.core.clock import now_iso
from server.store import CORE, get_store

TABLE = "audit"
FAMILY = "audit"


def partition_of(time):
    """The partition of an entry made at `time` (an ISO time in UTC, as now_iso gives)."""
    return f"{FAMILY}.{time[:4]}{time[5:7]}{time[8:10]}"


def _day(text, shift):
    """'YYYYMMDD' of an ISO time's date moved by `shift` days (a day of slack for offsets)."""
    try:
        return (date.fromisoformat(text[:10]) + timedelta(days=shift)).strftime("%Y%m%d")
    except (TypeError, ValueError):
        return None


def partitions(db, time_from=None, time_to=None):
    """The partitions that may hold entries between the two times, newest day first (core, with
    the entries from before, last)."""
    low = _day(time_from, -1) if time_from else None
    high = _day(time_to, 1) if time_to else None
    days = [p for p in db.partitions(FAMILY)
            if (low is None or p[len(FAMILY) + 1:] >= low) and (high is None or p[len(FAMILY) + 1:] <= high)]
    return sorted(days, reverse=True) + [CORE]


# Entry ids: random per process, then counted (a push writes one entry a visit; asking the OS for
# randomness each time cost more than the entry).
_ID_PREFIX = os.urandom(5).hex()
_id_count = itertools.count()  # next() on it is atomic under the GIL


def record(tx, actor, action, target, details=None, *, at=None):
    """Add an entry inside the write that made the change, so both are durable together. `at`:
    the change's own time when the caller has it (a push stamps all its items with one)."""
    at = at or now_iso()
    entry_id = f"{_ID_PREFIX}{next(_id_count):06x}"
    entry = {"id": entry_id, "time": at, "user": actor, "action": action, "target": target,
             "details": details or {}}
    tx.put(partition_of(at), TABLE, entry)


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
    for partition in partitions(db, date_from, date_to):
        found.extend(db.search(partition, TABLE, keep))
    return sorted(found, key=lambda e: (e.get("time", ""), e.get("seq", 0)), reverse=True)


def actions(db=None):
    """Every action name recorded so far (for a filter's choices). Each day's names are kept
    beside its cursor (store.summary), so only a day written since is read again."""
    db = db or get_store()
    seen = set()
    for partition in partitions(db):
        def names(partition=partition):
            found = set()
            db.search(partition, TABLE, lambda e: found.add(e.get("action", "")) and False)
            return sorted(found)
        seen.update(db.summary(partition, "audit_actions", names))
    return sorted(seen)


def _keeper(user=None, action=None, household=None, time_from=None, time_to=None):
    def keep(e):
        if user and e.get("user") != user:
            return False
        if action and e.get("action") != action:
            return False
        if household and e.get("target") != household \
                and (e.get("details") or {}).get("household_id") != household:
            return False
        t = e.get("time", "")
        if (time_from and t < time_from) or (time_to and t >= time_to):
            return False
        return True
    return keep


def select(db=None, *, user=None, action=None, household=None, time_from=None, time_to=None):
    """Ids of the entries matching (a household: the target or the household the entry names;
    times: ISO instants, from inclusive, to exclusive), newest first. The log grows with every
    submission, so nothing is copied here: page with `fetch`. Only the days between the times
    are read."""
    db = db or get_store()
    keep = _keeper(user, action, household, time_from, time_to)
    found = []
    for partition in partitions(db, time_from, time_to):
        def cond(e, partition=partition):
            if keep(e):
                found.append((e.get("time", ""), e.get("seq", 0), f"{partition}/{e['id']}"))
            return False
        db.search(partition, TABLE, cond)
    found.sort(reverse=True)
    return [entry_id for _t, _s, entry_id in found]


def fetch(ids, db=None):
    """The entries named (ids as `select` gives them), in that order, one copy at a time."""
    db = db or get_store()
    for entry_id in ids:
        partition, _, key = entry_id.rpartition("/")
        e = db.get(partition or CORE, TABLE, key)
        if e is not None:
            yield e
