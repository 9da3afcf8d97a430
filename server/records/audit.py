"""Audit entries (owner): every change worth asking about later leaves one, never edited."""

import secrets

from ..clock import now_iso
from ..store import CORE, get_store

TABLE = "audit"


def record(tx, actor, action, target, details=None):
    """Add an entry inside the write that made the change, so both are durable together."""
    tx.put(CORE, TABLE, {"id": secrets.token_hex(8), "time": now_iso(), "user": actor,
                         "action": action, "target": target, "details": details or {}})


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

    return sorted(db.search(CORE, TABLE, keep), key=lambda e: (e.get("time", ""), e.get("seq", 0)),
                  reverse=True)


def actions(db=None):
    """Every action name recorded so far (for a filter's choices)."""
    return sorted({e.get("action", "") for e in (db or get_store()).search(CORE, TABLE)})


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
    submission, so nothing is copied here: page with `fetch`."""
    db = db or get_store()
    keep = _keeper(user, action, household, time_from, time_to)
    found = []

    def cond(e):
        if keep(e):
            found.append((e.get("time", ""), e.get("seq", 0), e["id"]))
        return False

    db.search(CORE, TABLE, cond)
    found.sort(reverse=True)
    return [entry_id for _t, _s, entry_id in found]


def fetch(ids, db=None):
    """The entries named, in that order, one copy at a time."""
    db = db or get_store()
    for entry_id in ids:
        e = db.get(CORE, TABLE, entry_id)
        if e is not None:
            yield e
