"""Confirmation links (owner): one household's one-time link, for a person working far away to
confirm their plots or object, without an account.

The token (128 bits and more, from `secrets`) is given out once and stored only as its SHA-256, in
the household's village partition beside the household, so a stolen data folder holds no usable
link. A link is used once, expires (default 14 days) and can be revoked; its use changes the
household's ledger through households.apply_changes (history, version) in the same write as the
link's own state and the audit entry with time and address: all there or none of it.
"""

import hashlib
import secrets
from datetime import timedelta

from server.core.clock import now, now_iso, parse_datetime
from server.records import audit, households
from server.store import get_store

TABLE = "ledger_links"
DEFAULT_DAYS = 14
TOKEN_BYTES = 24          # 192 bits
CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"


def digest(token):
    return hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()


def create(actor, household_id, *, days=DEFAULT_DAYS, store=None):
    """A new link for the household: (token, link document). The token is never stored."""
    store = store or get_store()
    token = secrets.token_urlsafe(TOKEN_BYTES)
    code = "".join(secrets.choice(CODE_ALPHABET) for _ in range(8))
    made = now()
    doc = {"id": digest(token), "household_id": household_id, "code": code, "by": actor,
           "created_at": made.isoformat(timespec="seconds"),
           "expires_at": (made + timedelta(days=days)).isoformat(timespec="seconds"),
           "used_at": None, "used_from": None, "decision": None, "revoked_at": None, "opened": []}
    vid = households.village_of(household_id)

    def write(tx):
        tx.put(vid, TABLE, doc)
        audit.record(tx, actor, "ledger_link_create", household_id,
                     {"code": code, "expires_at": doc["expires_at"]})
        return doc
    return token, store.write(write)


def find(household_id, token, db=None):
    """The link `token` names for this household, or None (unknown, or another household's)."""
    vid = households.village_of(household_id)
    if vid is None or not isinstance(token, str) or not 20 <= len(token) <= 100:
        return None
    doc = (db or get_store()).get(vid, TABLE, digest(token))
    if doc is None or doc.get("household_id") != household_id:
        return None
    return doc


def state(doc):
    """'open', 'used', 'revoked' or 'expired'."""
    if doc.get("revoked_at"):
        return "revoked"
    if doc.get("used_at"):
        return "used"
    expires = parse_datetime(doc.get("expires_at") or "")
    if expires is None or now() >= expires:
        return "expired"
    return "open"


def note_opened(household_id, token, address, store=None):
    """Every opening is audited with its time and address."""
    store = store or get_store()
    key = digest(token)

    def write(tx):
        audit.record(tx, "remote", "ledger_link_open", household_id, {"link": key[:12], "address": address})
    store.write(write)


def use(household_id, token, *, decision, name, objection, signature, address, store=None):
    """Confirm or object through the link, once: the link closed, the household's ledger changed
    (confirmed_remote, or objected with the text), audited with time and address, in one write.
    Returns (household, None) or (None, 'not_found' | 'gone')."""
    store = store or get_store()
    key = digest(token)
    vid = households.village_of(household_id)

    def write(tx):
        doc = tx.get(vid, TABLE, key) if vid else None
        if doc is None or doc.get("household_id") != household_id:
            return None, "not_found"
        if state(doc) != "open":
            return None, "gone"
        at = now_iso()
        current = households.get(household_id, tx)
        if current is None:
            return None, "not_found"
        ledger = dict(current.get("ledger") or {"state": "not_started", "consultants": []})
        ledger.update(state="confirmed_remote" if decision == "confirm" else "objected",
                      confirmed_by=name, confirmed_at=at)
        if decision == "object":
            ledger["objection"] = objection
        if signature:
            ledger["signature"] = signature
        clean, errors = households.clean_changes({"ledger": ledger})
        if errors:
            return None, "not_found"
        changed, _clash = households.apply_changes(tx, f"link:{doc['code']}", household_id, clean,
                                                   source="ledger_link", write_audit=False)
        doc.update(used_at=at, used_from=address, decision=decision)
        tx.put(vid, TABLE, doc)
        audit.record(tx, f"link:{doc['code']}", "ledger_link_use", household_id,
                     {"decision": decision, "name": name, "address": address, "link": key[:12],
                      "signature": signature or None}, at=at)
        return changed, None
    return store.write(write)


def revoke(actor, household_id, token=None, store=None):
    """Revoke one link (by its token) or every open link of the household; returns how many."""
    store = store or get_store()
    vid = households.village_of(household_id)

    def write(tx):
        if token is not None:
            doc = find(household_id, token, tx)
            docs = [doc] if doc else []
        else:
            docs = tx.search(vid, TABLE, lambda d: d.get("household_id") == household_id)
        count = 0
        for doc in docs:
            if state(doc) == "open":
                doc["revoked_at"] = now_iso()
                tx.put(vid, TABLE, doc)
                count += 1
        if count:
            audit.record(tx, actor, "ledger_link_revoke", household_id, {"count": count})
        return count
    return store.write(write) if vid else 0


def of_household(household_id, db=None):
    vid = households.village_of(household_id)
    if vid is None:
        return []
    return sorted((db or get_store()).search(vid, TABLE, lambda d: d.get("household_id") == household_id),
                  key=lambda d: d["created_at"], reverse=True)
