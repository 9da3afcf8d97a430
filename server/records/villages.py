"""Villages (owner): the registry of villages and who may see which; creating and renaming one."""

import re

from server.core.ids import VILLAGE_ID_RE
from server.core.problems import field_error
from server.core.text import NOT_ONE_LINE_RE
from server.store import CORE, get_store
from server.records import audit

TABLE = "villages"


def list_all(db=None):
    """Every village, by id. A village record is flat (texts only), so each is copied shallowly
    while the store is read: a county's 360 cost a fraction of JSON copies."""
    found = []
    (db or get_store()).search(CORE, TABLE, lambda v: found.append(dict(v)) and False)
    return sorted(found, key=lambda v: v["id"])


def get(village_id, db=None):
    if not isinstance(village_id, str) or not village_id:
        return None
    return (db or get_store()).get(CORE, TABLE, village_id)


def in_scope(user, db=None):
    """The villages `user` may see (every one for an admin), by id."""
    scope = user.village_scope()
    villages = list_all(db)
    if scope is not None:
        scope = set(scope)
        villages = [v for v in villages if v["id"] in scope]
    return villages


def get_in_scope(user, village_id, db=None):
    """The village if it exists and the user may see it; None alike for absent and out of scope."""
    if not isinstance(village_id, str) or not user.can_see_village(village_id):
        return None
    return get(village_id, db)


def ids_in_scope(user, db=None, village_id=None):
    """Ids of the villages in scope (or just `village_id`, when it is in scope)."""
    ids = [v["id"] for v in in_scope(user, db)]
    if village_id is not None:
        ids = [v for v in ids if v == village_id]
    return ids


def put(tx, village):
    """Add a village record as it is (demo data and tests; people go through `create`)."""
    tx.put(CORE, TABLE, village)


ID_RE = VILLAGE_ID_RE
TEXT_LIMITS = {"name": 50, "township": 50, "county": 50}
RESERVED_IDS = {CORE.lower()}  # a village's partition must never be the core one
# The 公示 period of the land ledger (issue 25): days a notice stays posted; the 公示表 reads it.
PUBLICITY_DAYS = 7
PUBLICITY_RANGE = (1, 60)


def _publicity_days(value, errors):
    """A whole number of days 1..60 (a form sends text); None and '' leave the default."""
    lo, hi = PUBLICITY_RANGE
    if isinstance(value, str):
        value = value.strip()
        value = int(value) if re.fullmatch(r"[0-9]{1,3}", value) else (None if value == "" else value)
    if value is None:
        return PUBLICITY_DAYS
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        errors.append(field_error("publicity_days", f"公示天数须为 {lo}–{hi} 的整数",
                                  f"The publicity period must be a whole number of days {lo}–{hi}"))
        return None
    return value


def _clean(fields, errors):
    """Name (required), township and county: trimmed text without control characters."""
    out = {}
    for key, limit in TEXT_LIMITS.items():
        value = fields.get(key, "")
        if value is None:
            value = ""
        if not isinstance(value, str) or NOT_ONE_LINE_RE.search(value):
            errors.append(field_error(key, "须为文字", "Must be text"))
            continue
        value = value.strip()
        if len(value) > limit:
            errors.append(field_error(key, f"最多 {limit} 字", f"At most {limit} characters"))
        elif key == "name" and not value:
            errors.append(field_error(key, "村名必填", "The village name is required"))
        else:
            out[key] = value
    return out


def create(village_id, *, name, township="", county="", actor, store=None):
    """A new village (audited): (village, errors); errors [{"field", "zh", "en"}] and nothing
    written when the id is malformed or taken, or a text is not acceptable."""
    store = store or get_store()
    errors = []
    if not isinstance(village_id, str) or not ID_RE.match(village_id):
        errors.append(field_error("id", "村编号须为 1–32 位字母或数字（如 430699101001）",
                                  "The village id must be 1–32 letters or digits (e.g. 430699101001)"))
    elif village_id.lower() in RESERVED_IDS:
        errors.append(field_error("id", f"“{village_id}”是系统保留的名称，请换一个编号",
                                  f"“{village_id}” is reserved; choose another id"))
    clean = _clean({"name": name, "township": township, "county": county}, errors)
    if errors:
        return None, errors
    doc = dict(clean, id=village_id)

    def write(tx):
        if tx.get(CORE, TABLE, village_id) is not None:
            return None
        stored = tx.put(CORE, TABLE, doc)
        audit.record(tx, actor, "village_create", village_id, dict(clean))
        return stored

    stored = store.write(write)
    if stored is None:
        return None, [field_error("id", f"村编号 {village_id} 已存在", f"Village {village_id} already exists")]
    return stored, []


def update(village_id, *, actor, store=None, **fields):
    """Change a village's name, township, county or publicity period (audited): (village or None,
    errors)."""
    store = store or get_store()
    errors = []
    unknown = set(fields) - set(TEXT_LIMITS) - {"publicity_days"}
    if unknown:
        errors.append(field_error(sorted(unknown)[0], "不能修改该项", "This cannot be changed"))
    current = get(village_id, store)
    if current is None:
        return None, []
    days = fields.pop("publicity_days", None)
    clean = _clean(dict({k: current.get(k, "") for k in TEXT_LIMITS}, **fields), errors)
    if days is not None or "publicity_days" in current:
        days = _publicity_days(days if days is not None else current.get("publicity_days"), errors)
        if days is not None:
            clean["publicity_days"] = days
    if errors:
        return None, errors

    def write(tx):
        old = tx.get(CORE, TABLE, village_id)
        if old is None:
            return None
        changed = {k: v for k, v in clean.items() if old.get(k, "") != v}
        if old.get("publicity_days", PUBLICITY_DAYS) == changed.get("publicity_days", PUBLICITY_DAYS) \
                and "publicity_days" not in old:
            changed.pop("publicity_days", None)  # the default, never written: nothing to record
        if not changed:
            return old
        stored = tx.put(CORE, TABLE, dict(old, **changed))
        audit.record(tx, actor, "village_update", village_id,
                     {"before": {k: old.get(k, "") for k in changed}, "after": changed})
        return stored

    return store.write(write), []
