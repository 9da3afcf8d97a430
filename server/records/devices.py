"""Device tokens (owner): the keys ODK Collect or Enketo use instead of a password, like ODK Central's
app users. A token is 256 random bits handed out once inside the device's OpenRosa base URL
(`…/openrosa/key/<token>`); only its sha256 is kept, on the user's record under "devices", with the
user's session generation at the time. So a token ends with the user's other logins: a password
change, a deactivation, a change of villages or role bumps the generation (records/users.py) and
every token made before stops working. Nothing here knows HTTP.
"""

import hashlib
import secrets

from server.core.clock import now_iso
from server.core.problems import field_error
from server.records import audit, users
from server.store import CORE, get_store

TABLE = users.TABLE
MAX_DEVICES = 20
LABEL_MAX = 40
TOKEN_BYTES = 32


def _digest(token):
    return hashlib.sha256(token.encode()).hexdigest()


def _gen(doc):
    return int(doc.get("session_gen") or 0)


def _live(doc):
    """{digest: entry} of the tokens that still work (made under the current generation)."""
    gen = _gen(doc)
    return {d: e for d, e in (doc.get("devices") or {}).items() if e.get("gen") == gen}


def device_id(digest):
    """A short public name of a token (its hash's first 12 hex digits), for lists and revoking."""
    return digest[:12]


def listed(doc):
    """[{"id", "label", "at"}] of an account's working tokens, newest first (never the token)."""
    if not users.is_active(doc):
        return []
    rows = [{"id": device_id(d), "label": e.get("label") or "", "at": e.get("at")}
            for d, e in _live(doc).items()]
    return sorted(rows, key=lambda r: r["at"] or "", reverse=True)


def _clean_label(label):
    text = (label or "").strip() if isinstance(label, str) else None
    if text is None or len(text) > LABEL_MAX or any(ord(c) < 32 for c in text):
        return None
    return text


def create(user_id, label="", *, actor="system", db=None):
    """A new token for an active account: (token, errors). The token is shown once; only its
    hash is stored. Tokens of an older generation are dropped; at most MAX_DEVICES stay."""
    clean = _clean_label(label)
    if clean is None:
        return None, [field_error("label", f"设备名称最多 {LABEL_MAX} 字，不含控制字符",
                                  f"Device name: at most {LABEL_MAX} characters, no control characters")]
    token = secrets.token_urlsafe(TOKEN_BYTES)
    digest = _digest(token)

    def write(tx):
        doc = tx.get(CORE, TABLE, user_id) if isinstance(user_id, str) and user_id else None
        if doc is None:
            return [field_error("username", "找不到该用户", "No such user")]
        if not users.is_active(doc):
            return [field_error("active", "账号已停用，不能添加设备", "The account is deactivated; no device can be added")]
        live = _live(doc)
        if len(live) >= MAX_DEVICES:
            return [field_error("label", f"每个账号最多 {MAX_DEVICES} 台设备，请先撤销不用的",
                                f"At most {MAX_DEVICES} devices per account; revoke one first")]
        live[digest] = {"label": clean, "at": now_iso(), "gen": _gen(doc)}
        doc["devices"] = live
        tx.put(CORE, TABLE, doc)
        audit.record(tx, actor, "device_create", user_id, {"device": device_id(digest), "label": clean})
        return []

    errors = (db or get_store()).write(write)
    return (None, errors) if errors else (token, [])


def revoke(user_id, device, *, actor="system", db=None):
    """Ends one token (named by device_id): errors, empty when done."""
    def write(tx):
        doc = tx.get(CORE, TABLE, user_id) if isinstance(user_id, str) and user_id else None
        if doc is None:
            return [field_error("username", "找不到该用户", "No such user")]
        devices = doc.get("devices") or {}
        found = [d for d in devices if device_id(d) == device]
        if not found:
            return [field_error("device", "找不到该设备", "No such device")]
        for d in found:
            del devices[d]
        doc["devices"] = devices
        tx.put(CORE, TABLE, doc)
        audit.record(tx, actor, "device_revoke", user_id, {"device": device})
        return []

    return (db or get_store()).write(write)


# Which account holds a token's hash, for one store at one core cursor: every OpenRosa request
# names its token, and looking it up through every account each time cost a request as much as the
# county has accounts. Rebuilt only when core changed (a token made or revoked, a login, an edit);
# a hit is confirmed on the account itself, so a stale map can never let an ended token in.
_owners = (None, None, {})  # (store, core seq, {digest: user id})


def _owner_of(store, digest):
    global _owners
    seq = store.partition_seq(CORE)
    cached_store, cached_seq, owners = _owners
    if cached_store is not store or cached_seq != seq:
        owners = {}

        def visit(u):
            for d in u.get("devices") or {}:
                owners.setdefault(d, u["id"])
            return False
        store.search(CORE, TABLE, visit)
        _owners = (store, seq, owners)
    return owners.get(digest)


def resolve(token, db=None):
    """The active account a token belongs to, or None (unknown, revoked, ended with the user's
    logins, or the account deactivated). The account's document as stored: read it only."""
    if not isinstance(token, str) or not 20 <= len(token) <= 100 or not token.isascii():
        return None
    digest = _digest(token)
    store = db or get_store()
    owner = _owner_of(store, digest)
    if owner is None:
        return None
    doc = store.peek(CORE, TABLE, owner)
    if not users.is_active(doc) or digest not in _live(doc):
        return None
    return doc
