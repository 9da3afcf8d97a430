"""Submissions (domain): idempotent ingest by uuid, lookups within a scope, completeness."""

import os
import threading
import uuid as uuidlib

from .auth import audit, now_iso
from .households import get_household_for_user, merge_household_edit, page_by_seq, search_in_scope
from .store import get_store


def find_submission(tx_or_store, sub_uuid):
    """uuids are unique server-wide; a submission lives in its village's partition."""
    for vid in tx_or_store.village_ids():
        doc = tx_or_store.get(vid, "submissions", sub_uuid)
        if doc is not None:
            return doc
    return None


def ingest(user, prepared, reused_error):
    """One write for the whole batch: duplicates and uuid clashes decided on the writer thread, so
    concurrent repeats of a batch can never store twice, and every answer is durable when sent."""
    actor = user.id  # read here: the write runs on the store's thread, outside this request

    def write(tx):
        results = []
        for p in prepared:
            existing = find_submission(tx, p["uuid"])
            if existing is not None:
                if existing.get("fingerprint") == p["fingerprint"]:
                    results.append({"uuid": p["uuid"], "status": "duplicate", "errors": []})
                else:
                    results.append({"uuid": p["uuid"], "status": "rejected", "errors": [reused_error]})
                continue
            updates = p.pop("household_updates") or {}
            base = p.pop("base_version")
            doc = dict(p, received_at=now_iso(), base_version=base,
                       review={"state": "received", "comments": []})
            tx.put(p["village_id"], "submissions", doc)
            clash = None
            visit_date = p["answers"].get("visit_date") if p["form"] == "household_visit" else None
            if updates:
                _household, clash = merge_household_edit(tx, actor, p["household_id"], updates, base,
                                                         f"submission:{p['uuid']}")
            if isinstance(visit_date, str):
                note_last_visit(tx, p["village_id"], p["household_id"], visit_date)
            audit(tx, actor, "submission", p["uuid"],
                  {"form": p["form"], "household_id": p["household_id"],
                   "clash": clash["kind"] if clash else None})
            results.append({"uuid": p["uuid"], "status": "created", "errors": [],
                            "incomplete": bool(doc["attachments"])})
        return results

    return get_store().write(write)


def note_last_visit(tx, village_id, household_id, visit_date):
    """Phones mark households not visited for 30 days; the date travels with the household.
    Bookkeeping, not an edit: the version (the base of merges) stays as it is."""
    household = tx.get(village_id, "households", household_id)
    if household is not None and visit_date > (household.get("last_visit_date") or ""):
        household["last_visit_date"] = visit_date
        tx.put(village_id, "households", household)


def submissions_for_household(user, household_id):
    household = get_household_for_user(user, household_id)
    if household is None:
        return []
    docs = get_store().search(household["village_id"], "submissions",
                              lambda d: d.get("household_id") == household_id)
    return sorted((public_submission(d) for d in docs), key=lambda d: d.get("created_at", ""),
                  reverse=True)


def is_complete(doc):
    """Every declared photo and signature has arrived."""
    return all(a.get("received") for a in doc.get("attachments", []))


def public_submission(doc):
    return {k: v for k, v in doc.items() if k != "fingerprint"} | {
        "complete": is_complete(doc)}


def own_submissions_since(user, since, limit):
    """The caller's own submissions changed after `since`: how a phone learns review outcomes."""
    changed = search_in_scope(user, "submissions",
                              lambda d: d.get("seq", 0) > since and d.get("cadre_id") == user.id)
    page, nxt = page_by_seq(changed, since, limit)
    return [public_submission(d) for d in page], nxt


def incomplete_submissions(user):
    """Submissions still waiting for declared attachments: kept, and listed so nobody forgets them."""
    waiting = search_in_scope(user, "submissions", lambda d: not is_complete(d))
    return sorted((public_submission(d) for d in waiting), key=lambda d: d.get("received_at", ""),
                  reverse=True)


def get_submission_for_user(user, sub_uuid):
    if not isinstance(sub_uuid, str):
        return None
    try:
        sub_uuid = str(uuidlib.UUID(sub_uuid))
    except ValueError:
        return None
    doc = find_submission(get_store(), sub_uuid)
    if doc is None or not user.can_see_village(doc["village_id"]):
        return None
    return doc


def attachment_path(data_dir, sub_uuid, name):
    return os.path.join(data_dir, "attachments", sub_uuid, name)


def store_attachment(data_dir, doc, name, data):
    """The file first (fsynced, renamed into place), then the record that it arrived: a crash in
    between leaves a file the phone will simply upload again. Returns whether all have arrived."""
    path = attachment_path(data_dir, doc["uuid"], name)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = f"{path}.part{threading.get_ident()}"
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)

    def mark(tx):
        fresh = tx.get(doc["village_id"], "submissions", doc["uuid"])
        for a in fresh["attachments"]:
            if a["name"] == name:
                a["received"] = True
        tx.put(doc["village_id"], "submissions", fresh)
        return is_complete(fresh)

    return get_store().write(mark)
