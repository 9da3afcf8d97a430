"""Villages and households (domain): the registry, scopes, pairing, edits merged per field."""

import re
import secrets

from .auth import audit, now_iso
from .i18n import CATEGORY_LABELS
from .store import CORE, get_store

HOUSEHOLD_ID_RE = re.compile(r"^([A-Za-z0-9]{1,32})-(\d{4})$")
EDITABLE_FIELDS = ("head_name", "phone", "address", "group", "category", "population", "members",
                   "plots", "pv_status")
MOBILE_RE = re.compile(r"^1[3-9]\d{9}$")
LANDLINE_RE = re.compile(r"^0\d{2,3}-?\d{7,8}$")
MAX_POPULATION = 50


def is_phone(text):
    """A mainland mobile or a landline with area code; the roster import uses the same rule."""
    return bool(MOBILE_RE.match(text) or LANDLINE_RE.match(text))


def village_of(household_id):
    m = HOUSEHOLD_ID_RE.match(household_id) if isinstance(household_id, str) else None
    return m.group(1) if m else None


# ---- reading within a scope ------------------------------------------------------------------


def list_villages(user, store=None):
    store = store or get_store()
    scope = user.village_scope()
    villages = store.search(CORE, "villages")
    if scope is not None:
        villages = [v for v in villages if v["id"] in scope]
    return sorted(villages, key=lambda v: v["id"])


def get_village(user, village_id, store=None):
    store = store or get_store()
    if not isinstance(village_id, str) or not user.can_see_village(village_id):
        return None
    return store.get(CORE, "villages", village_id)


def get_household_for_user(user, household_id, store=None):
    """The household if it exists and the user may see it; None alike for absent and out of scope."""
    vid = village_of(household_id)
    if vid is None or not user.can_see_village(vid):
        return None
    return (store or get_store()).get(vid, "households", household_id)


def search_in_scope(user, table, cond=None, store=None, village_id=None):
    """Documents of `table` matching `cond` in every village the user may see (or just one)."""
    store = store or get_store()
    out = []
    for village in list_villages(user, store):
        if village_id is None or village["id"] == village_id:
            out.extend(store.search(village["id"], table, cond))
    return out


def page_by_seq(docs, since, limit):
    """The pull-sync page: oldest change first, and the cursor to ask from next time."""
    page = sorted(docs, key=lambda d: d["seq"])[:limit]
    return page, (page[-1]["seq"] if page else since)


def search_households(user, village_id=None, query="", category=None, store=None):
    query = (query or "").strip()

    def matches(doc):
        if category and doc.get("category") != category:
            return False
        if not query:
            return True
        hay = " ".join([doc.get("head_name", ""), doc.get("id", ""), doc.get("address", ""),
                        doc.get("group", ""), doc.get("phone", "")]
                       + [m.get("name", "") for m in doc.get("members", [])])
        return query in hay

    return sorted(search_in_scope(user, "households", matches, store, village_id or None),
                  key=lambda d: d["id"])


def households_changed_since(user, since, limit, store=None):
    """A page of households in scope changed after `since` (the seq cursor), oldest change first."""
    changed = search_in_scope(user, "households", lambda d: d.get("seq", 0) > since, store)
    return page_by_seq(changed, since, limit)


def cadres_of(household, store=None):
    store = store or get_store()
    out = []
    for cid in household.get("cadre_ids", []):
        u = store.get(CORE, "users", cid)
        if u:
            out.append({k: u.get(k) for k in ("id", "display_name", "unit", "phone", "role")})
    return out


def village_cadres(village_id, store=None):
    store = store or get_store()
    return [u for u in store.search(CORE, "users")
            if u.get("role") == "cadre" and village_id in (u.get("villages") or [])]


def public_household(doc):
    """What the API shows: the stored document less bookkeeping a phone has no use for."""
    return {k: v for k, v in doc.items() if k not in ("field_versions",)}


# ---- changing --------------------------------------------------------------------------------


def clean_changes(changes):
    """Check edited attributes; returns (clean, errors) with errors as [(field, zh, en)]."""
    clean, errors = {}, []
    for field, value in changes.items():
        if field not in EDITABLE_FIELDS:
            errors.append((field, "不能修改该字段", "This field cannot be changed"))
            continue
        if field in ("head_name", "address", "group"):
            if not isinstance(value, str) or len(value) > 200 or (field == "head_name" and not value.strip()):
                errors.append((field, "须为 200 字以内的文本（户主姓名必填）",
                               "Must be text of at most 200 characters (head name required)"))
                continue
            value = value.strip()
        elif field == "phone":
            if not isinstance(value, str) or (value.strip() and not is_phone(value.strip())):
                errors.append((field, "电话号码格式不正确", "Not a valid phone number"))
                continue
            value = value.strip()
        elif field == "category":
            if value not in CATEGORY_LABELS:
                errors.append((field, "类别无效", "Unknown category"))
                continue
        elif field == "population":
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_POPULATION:
                errors.append((field, f"家庭人口须为 0–{MAX_POPULATION} 的整数",
                               f"Population must be an integer 0–{MAX_POPULATION}"))
                continue
        elif field == "members":
            value, err = _clean_rows(value, MEMBER_FIELDS)
            if err:
                errors.append((field,) + err)
                continue
        elif field == "plots":
            value, err = _clean_rows(value, PLOT_FIELDS)
            if err:
                errors.append((field,) + err)
                continue
        elif field == "pv_status":
            if value is not None and not isinstance(value, dict):
                errors.append((field, "光伏状态格式不正确", "Bad PV status"))
                continue
        clean[field] = value
    return clean, errors


MEMBER_FIELDS = {"name": str, "relation": str, "sex": str, "birth_year": int, "health": str,
                 "schooling": str, "work": str}
PLOT_FIELDS = {"name": str, "area_mu": float, "east": str, "west": str, "south": str, "north": str,
               "contract_signed": bool}


def _clean_rows(rows, fields):
    if not isinstance(rows, list) or len(rows) > 100:
        return None, ("须为列表（最多 100 行）", "Must be a list (at most 100 rows)")
    out = []
    for i, row in enumerate(rows):
        if not isinstance(row, dict):
            return None, (f"第 {i + 1} 行格式不正确", f"Row {i + 1} is malformed")
        clean = {}
        for name, kind in fields.items():
            v = row.get(name)
            if v is None or v == "":
                clean[name] = None if kind is not str else ""
                continue
            if kind is str and isinstance(v, str) and len(v) <= 200:
                clean[name] = v.strip()
            elif kind is int and isinstance(v, int) and not isinstance(v, bool):
                clean[name] = v
            elif kind is float and isinstance(v, (int, float)) and not isinstance(v, bool) and 0 <= v < 100000:
                clean[name] = float(v)
            elif kind is bool and isinstance(v, bool):
                clean[name] = v
            else:
                return None, (f"第 {i + 1} 行的 {name} 不正确", f"Row {i + 1}: bad {name}")
        if fields is MEMBER_FIELDS and not clean["name"]:
            return None, (f"第 {i + 1} 行缺少姓名", f"Row {i + 1}: name is required")
        out.append(clean)
    return out, None


def merge_household_edit(tx, actor, household_id, changes, base_version, source):
    """Apply an edit made from `base_version`. A stale base is merged per field, as ODK Entities do:
    fields nobody else touched apply cleanly (a "soft" clash is noted); a field someone else changed
    since the base is a "hard" clash: the later edit wins, the other value is kept for review.
    Returns (household, clash or None); household None when it does not exist."""
    vid = village_of(household_id)
    doc = tx.get(vid, "households", household_id) if vid else None
    if doc is None:
        return None, None
    version = doc.get("version", 1)
    field_versions = doc.setdefault("field_versions", {})
    changed = {f: v for f, v in changes.items() if doc.get(f) != v}
    if not changed:
        return doc, None
    clash = None
    if base_version is not None and base_version < version:
        others = sorted(f for f, fv in field_versions.items() if fv > base_version)
        hard = sorted(f for f in changed if field_versions.get(f, 0) > base_version)
        clash = {"id": secrets.token_hex(8), "household_id": household_id,
                 "kind": "hard" if hard else "soft", "fields": hard or sorted(changed),
                 "other_fields": others, "base_version": base_version, "server_version": version,
                 "incoming": {f: changed[f] for f in changed},
                 "overwritten": {f: doc.get(f) for f in hard},
                 "source": source, "by": actor, "at": now_iso(), "resolved": False}
    for f, v in changed.items():
        doc[f] = v
        field_versions[f] = version + 1
    doc["version"] = version + 1
    doc["updated_at"] = now_iso()
    stored = tx.put(vid, "households", doc)
    if clash:
        tx.put(vid, "clashes", clash)
    audit(tx, actor, "household_edit", household_id,
          {"fields": sorted(changed), "source": source, "clash": clash["kind"] if clash else None})
    return stored, clash


def edit_household(user, household_id, changes, base_version, source="web", store=None):
    store = store or get_store()
    if get_household_for_user(user, household_id, store) is None:
        return None, None, []
    clean, errors = clean_changes(changes)
    if errors:
        return None, None, errors
    actor = user.id  # read here: the write runs on the store's thread, outside this request
    doc, clash = store.write(
        lambda tx: merge_household_edit(tx, actor, household_id, clean, base_version, source))
    return doc, clash, []


def set_pairing(user, household_id, cadre_ids, store=None):
    """Pair a household with cadres of its village (an admin's job)."""
    store = store or get_store()
    vid = village_of(household_id)
    allowed = {u["id"] for u in village_cadres(vid, store)} if vid else set()
    bad = [c for c in cadre_ids if c not in allowed]
    if bad:
        return None, [("cadre_ids", f"不是本村的驻村干部：{', '.join(bad)}",
                       f"Not a cadre of this village: {', '.join(bad)}")]

    actor = user.id

    def write(tx):
        doc = tx.get(vid, "households", household_id)
        if doc is None:
            return None
        doc["cadre_ids"] = list(dict.fromkeys(cadre_ids))
        doc["version"] = doc.get("version", 1) + 1
        doc.setdefault("field_versions", {})["cadre_ids"] = doc["version"]
        doc["updated_at"] = now_iso()
        audit(tx, actor, "pairing", household_id, {"cadre_ids": doc["cadre_ids"]})
        return tx.put(vid, "households", doc)

    return store.write(write), []


def list_clashes(user, household_id, store=None):
    vid = village_of(household_id)
    if vid is None or not user.can_see_village(vid):
        return []
    return sorted((store or get_store()).search(vid, "clashes",
                                                lambda c: c.get("household_id") == household_id),
                  key=lambda c: c["at"], reverse=True)
