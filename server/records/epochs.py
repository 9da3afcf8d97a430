"""Data epochs (owner): which picture of the data the server holds. A restore puts the data back as
it was at the backup, so a phone's cursors and its sent visits may be ahead of the server; the new
epoch (a random id in core) tells every phone to pull everything again and to re-send what the
server lacks. Also who has come back since: per user, the epoch seen at their last contact.
"""

import secrets

from server.core.clock import now_iso
from server.store import CORE, get_store

TABLE = "epoch"  # one document: {"id": "current", "epoch", "started_at", "reason", "backup"}
SEEN = "epoch_seen"  # per user: {"id": user id, "epoch", "at"}
CURRENT = "current"
FIRST = "1"  # the epoch of data never restored


def new_epoch_doc(reason, backup=None):
    return {"id": CURRENT, "epoch": secrets.token_hex(8), "started_at": now_iso(), "reason": reason,
            "backup": backup}


def start_new(tx, reason, backup=None):
    """Begin a new epoch inside a write (a restore): every phone re-pulls and re-sends."""
    doc = new_epoch_doc(reason, backup)
    tx.put(CORE, TABLE, doc)
    return doc


def info(db=None):
    """The current epoch's document. Data never restored is in the first epoch, which is not
    stored (so no start-up or request writes it, and servers sharing a database agree on it)."""
    doc = (db or get_store()).get(CORE, TABLE, CURRENT)
    return doc or {"id": CURRENT, "epoch": FIRST, "started_at": None, "reason": "first", "backup": None}


def current(db=None):
    """The current epoch id: read each time (a restore on PostgreSQL changes it under servers that
    keep running; on TinyDB it is a copy of one small document)."""
    return info(db)["epoch"]


def note_seen(user_id, epoch, db=None):
    """Record that `user_id`'s phone works in `epoch` now (written only when it changes)."""
    db = db or get_store()
    seen = db.get(CORE, SEEN, user_id)
    if seen is not None and seen.get("epoch") == epoch:
        return
    at = now_iso()
    db.write(lambda tx: tx.put(CORE, SEEN, {"id": user_id, "epoch": epoch, "at": at}))


def seen_by_user(db=None):
    """{user id: {"epoch", "at"}} for every user whose phone has made contact."""
    found = {}
    (db or get_store()).search(CORE, SEEN, lambda d: found.__setitem__(d["id"], dict(d)) and False)
    return found


def check_cursor(user, since, phone_epoch=None, db=None):
    """(epoch, reset) for a pull from `since`: reset when the phone names another epoch, or its
    cursor is ahead of everything this server has written (the data went back in time)."""
    db = db or get_store()
    epoch = current(db)
    reset = (phone_epoch is not None and phone_epoch != epoch) or since > db.seq
    if not reset and phone_epoch == epoch:
        note_seen(user.id, epoch, db)
    return epoch, reset


def who_came_back(db=None):
    """The current epoch and, for every active cadre and supervisor, whether their phone has made
    contact in it (after a restore: who has pulled again and re-sent what the server lacked)."""
    from server.records import users
    db = db or get_store()
    doc = info(db)
    seen = seen_by_user(db)
    people = []
    for u in users.list_all(db):
        if u.get("role") not in ("cadre", "supervisor") or not users.is_active(u):
            continue
        s = seen.get(u["id"]) or {}
        people.append({"id": u["id"], "display_name": u.get("display_name") or u["id"],
                       "role": u["role"], "back": s.get("epoch") == doc["epoch"],
                       "seen_at": s.get("at")})
    return {"epoch": doc["epoch"], "started_at": doc.get("started_at"), "reason": doc.get("reason"),
            "backup": doc.get("backup"), "users": people}
