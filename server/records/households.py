"""Households (owner): the registry of a village's households, what a household document may hold,
and every change to one: the only place its `version` is bumped, its history written and a clash
recorded. Edits from the web, the API, visits (form effects), roster import and pairing all come
through `apply_changes`.
"""

import math
import re
import secrets

from server.core import idcard, phones
from server.core.ids import HOUSEHOLD_ID_RE
from server.core.text import NOT_TEXT_RE
from server.core.clock import now_iso, parse_date, parse_datetime
from server.store import get_store
from server.records import audit, scan_partition, users, villages

TABLE = "households"
CLASHES = "clashes"
HISTORY = "history"

IDENT_RE = re.compile(r"^[A-Za-z0-9_]{1,32}\Z")
MAX_POPULATION = 50
MAX_MEMBERS = 50
MAX_PLOTS = 100
MAX_AREA_MU = 100000
MAX_OPEN_FOLLOWUPS = 200

CATEGORIES = ("tuopin", "jiance", "dibao", "ordinary")
SEXES = ("male", "female")
# Attributes a person or a form may change (cadre_ids only through pairing).
EDITABLE_FIELDS = ("head_name", "phone", "address", "group", "category", "population", "members",
                   "plots", "pv_status", "ledger")
MEMBER_FIELDS = ("name", "relation", "sex", "birth_year", "health", "schooling", "work",
                 "id_card", "born", "phone", "work_place")
PLOT_FIELDS = ("name", "area_mu", "east", "west", "south", "north", "contract_signed",
               "id", "code", "contract_no", "state", "note")
# The land ledger (DESIGN, turn 3): a household's state, and each plot's.
LEDGER_STATES = ("not_started", "surveyed", "boundaries_confirmed", "publicised", "objected", "signed",
                 "away", "confirmed_remote")
LEDGER_FIELDS = ("state", "consultants", "publicised_on", "signed_on", "away_at", "objection",
                 "resolution", "boundaries_confirmed_on", "confirmed_by", "confirmed_at", "signature")
MAX_PLOT_AREA_MU = 10000
MAX_BOUNDARY = 100
PLOT_ID_RE = re.compile(r"^[A-Za-z0-9_\-]{1,40}\Z")
# pv_status: what a PV form (or an admin) may record, with types and bounds.
PV_FIELDS = {"stage": "ident", "capacity_kw": (0, 1000), "expected_kwh_year": (0, 10_000_000),
             "funding_mode": "ident", "lecture_attended": "ident", "lecture_date": "date",
             "updated_at": "time"}
FOLLOWUP_STATES = ("done", "in_progress", "dropped")
FOLLOWUP_CLOSED = ("done", "dropped")
BOOKKEEPING = ("last_visit_date", "open_followups", "visits")


def village_of(household_id):
    m = HOUSEHOLD_ID_RE.match(household_id) if isinstance(household_id, str) else None
    return m.group(1) if m else None


def make_id(village_id, number):
    return f"{village_id}-{number:04d}"


def number_of(household_id):
    m = HOUSEHOLD_ID_RE.match(household_id or "")
    return int(m.group(2)) if m else 0


# ---- the document's schema ---------------------------------------------------------------------


def _text(value, limit, required=False):
    """Clean text or raise ValueError with (zh, en)."""
    if value is None:
        value = ""
    if not isinstance(value, str) or NOT_TEXT_RE.search(value):
        raise ValueError(("须为文字", "Must be text"))
    value = value.strip()
    if len(value) > limit:
        raise ValueError((f"最多 {limit} 字", f"At most {limit} characters"))
    if required and not value:
        raise ValueError(("必须填写", "Required"))
    return value


def _number(value, lo, hi, integer=False):
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or not lo <= value <= hi or (integer and not float(value).is_integer()):
        raise ValueError((f"须为 {lo}–{hi} 的{'整数' if integer else '数字'}",
                          f"Must be a {'whole ' if integer else ''}number {lo}–{hi}"))
    return int(value) if integer else value


def _rows(rows, limit, clean_row):
    if not isinstance(rows, list) or len(rows) > limit:
        raise ValueError((f"须为列表（最多 {limit} 行）", f"Must be a list (at most {limit} rows)"))
    out = []
    for i, row in enumerate(rows):
        if not isinstance(row, dict) or set(row) - set(MEMBER_FIELDS + PLOT_FIELDS):
            raise ValueError((f"第 {i + 1} 行格式不正确", f"Row {i + 1} is malformed"))
        try:
            out.append(clean_row(row))
        except ValueError as e:
            zh, en = e.args[0]
            raise ValueError((f"第 {i + 1} 行：{zh}", f"Row {i + 1}: {en}")) from None
    return out


def _id_card(value):
    """'' or a valid GB 11643 number; a masked one (what non-admins are shown) is refused here:
    edit() puts the stored number back before cleaning when the person left it unchanged."""
    if value in (None, ""):
        return ""
    if idcard.is_masked(value):
        raise ValueError(("身份证号码已隐藏，无法保存；请填写完整号码或保持原样",
                          "The ID number is masked; type it in full or leave it unchanged"))
    text = idcard.normalise(value)
    why = idcard.problem(text)
    if why:
        raise ValueError(why)
    return text


def _member(row):
    sex = row.get("sex") or ""
    if sex not in SEXES + ("",):
        raise ValueError(("性别须为男或女", "Sex must be male or female"))
    out = {"name": _text(row.get("name"), 50, required=True), "relation": _text(row.get("relation"), 30),
           "sex": sex, "birth_year": _number(row.get("birth_year"), 1850, 2200, integer=True),
           "health": _text(row.get("health"), 100), "schooling": _text(row.get("schooling"), 100),
           "work": _text(row.get("work"), 100)}
    # Ledger fields only when present: a household without them keeps its documents as they were.
    if row.get("id_card"):
        out["id_card"] = _id_card(row.get("id_card"))
    if row.get("born"):
        born = _text(row.get("born"), 10)
        if not re.match(r"^\d{4}(-\d{2}(-\d{2})?)?\Z", born):
            raise ValueError(("出生年月须为 YYYY-MM", "Born must be YYYY-MM"))
        out["born"] = born
    if row.get("phone"):
        out["phone"] = _phone(row.get("phone"))
    if row.get("work_place"):
        out["work_place"] = _text(row.get("work_place"), 100)
    return out


def _boundary(value):
    """A boundary (四至) is one short line of text: no control characters, at most 100."""
    return _text(value, MAX_BOUNDARY)


class RowErrors(ValueError):
    """Every bad cell of a table of rows (plots), each as {"field": "plots.<i>.<column>", "zh",
    "en"}: a page names the row and the column of each, all at once."""

    def __init__(self, errors):
        super().__init__(errors[0]["zh"], errors[0]["en"])
        self.errors = errors


def _column(column, check, *args):
    """check(*args), its ValueError tagged with the column it is about."""
    try:
        return check(*args)
    except ValueError as e:
        raise ValueError(e.args[0], column) from None


def _plot(row):
    """One plot, cleaned; a ValueError names ((zh, en), column)."""
    signed = row.get("contract_signed")
    if signed not in (True, False, None):
        raise ValueError(("合同签订须为是或否", "Contract signed must be true or false"), "contract_signed")
    area = row.get("area_mu")
    if area is not None and area != "" and (isinstance(area, bool) or not isinstance(area, (int, float))
                                            or not math.isfinite(area) or area <= 0
                                            or area > MAX_PLOT_AREA_MU):
        raise ValueError((f"面积须大于 0 且不超过 {MAX_PLOT_AREA_MU} 亩",
                          f"The area must be more than 0 and at most {MAX_PLOT_AREA_MU} mu"), "area_mu")
    out = {"name": _column("name", _text, row.get("name"), 50),
           "area_mu": float(area) if area not in (None, "") else None,
           **{side: _column(side, _boundary, row.get(side)) for side in ("east", "west", "south", "north")},
           "contract_signed": bool(signed)}
    for key in ("id", "code"):
        if row.get(key):
            value = _column(key, _text, row.get(key), 40)
            if not PLOT_ID_RE.match(value):
                raise ValueError(("地块编码只能含字母、数字、- 和 _（最多 40 位）",
                                  "A plot code may hold letters, digits, - and _ (at most 40)"), key)
            out[key] = value
    if row.get("contract_no"):
        out["contract_no"] = _column("contract_no", _text, row.get("contract_no"), 50)
    if row.get("note"):
        out["note"] = _column("note", _text, row.get("note"), 200)
    if row.get("state"):
        if row["state"] not in LEDGER_STATES:
            raise ValueError(("地块状态不正确", "Unknown plot state"), "state")
        out["state"] = row["state"]
    return out


def _plots(rows):
    """The plots table, every bad row and column at once (RowErrors), then unique ids and codes."""
    if not isinstance(rows, list) or len(rows) > MAX_PLOTS:
        raise ValueError((f"须为列表（最多 {MAX_PLOTS} 行）", f"Must be a list (at most {MAX_PLOTS} rows)"))
    out, errors = [], []
    for i, row in enumerate(rows):
        if not isinstance(row, dict) or set(row) - set(PLOT_FIELDS):
            errors.append({"field": f"plots.{i}", "zh": f"第 {i + 1} 行格式不正确", "en": f"Row {i + 1} is malformed"})
            continue
        try:
            out.append(_plot(row))
        except ValueError as e:
            (zh, en), column = e.args[0], (e.args[1] if len(e.args) > 1 else None)
            errors.append({"field": f"plots.{i}.{column}" if column else f"plots.{i}", "zh": zh, "en": en})
    for key, zh, en in (("id", "地块编号", "plot id"), ("code", "地块编码", "plot code")):
        seen = set()
        for i, p in enumerate(out if not errors else []):
            if p.get(key) and p[key] in seen:
                errors.append({"field": f"plots.{i}.{key}", "zh": f"{zh} {p[key]} 重复",
                               "en": f"The {en} {p[key]} appears twice"})
            seen.add(p.get(key))
    if errors:
        raise RowErrors(errors[:50])
    return out


def plot_code_clashes(db, household_id, plots):
    """A plot code is the village's: errors for each of `plots` whose code another household of
    the village holds already (run inside the write, so two saves cannot both take one code)."""
    vid = village_of(household_id)
    wanted = {p["code"]: i for i, p in enumerate(plots) if p.get("code")}
    if not vid or not wanted:
        return []
    owners = {}
    for hid, codes in scan(vid, lambda d: (d["id"], [p.get("code") for p in d.get("plots") or []]),
                           lambda d: d.get("id") != household_id, db=db):
        for code in codes:
            if code in wanted:
                owners.setdefault(code, hid)
    return [{"field": f"plots.{wanted[code]}.code", "zh": f"地块编码 {code} 已属于本村另一户 {hid}",
             "en": f"Plot code {code} already belongs to another household of the village, {hid}"}
            for code, hid in sorted(owners.items(), key=lambda x: wanted[x[0]])]


def settle_plots(plots, existing):
    """Every plot keeps a stable id: the one it was given, else its 地块编码, else that of the
    stored plot of the same name (a table edited on a page sends no ids), else a new one."""
    by_code = {p.get("code"): p.get("id") for p in existing or [] if p.get("code") and p.get("id")}
    by_name = {}
    for p in existing or []:
        if p.get("id") and p.get("name"):
            by_name.setdefault(p["name"], p["id"])
    taken = set()
    out = []
    for i, p in enumerate(plots):
        p = dict(p)
        if not p.get("id"):
            found = by_code.get(p.get("code")) if p.get("code") else None
            found = found or p.get("code") or by_name.get(p.get("name"))
            if not found and not p.get("name") and i < len(existing or []):
                found = (existing[i] or {}).get("id")
            if not found or found in taken:
                found = "P" + secrets.token_hex(6)
            p["id"] = found
        taken.add(p["id"])
        out.append(p)
    return out


def restore_masked(changes, doc):
    """A non-admin sees ID numbers masked; a member sent back with the same mask keeps the stored
    number (matched by mask, then name), so editing a household never needs the full number."""
    members = changes.get("members") if isinstance(changes, dict) else None
    if not isinstance(members, list):
        return changes
    stored = [m for m in doc.get("members") or [] if m.get("id_card")]
    out = []
    for m in members:
        if isinstance(m, dict) and idcard.is_masked(m.get("id_card")):
            same = [s for s in stored if idcard.mask(s["id_card"]) == m["id_card"]]
            pick = next((s for s in same if s.get("name") == m.get("name")), same[0] if same else None)
            if pick is not None:
                m = dict(m, id_card=pick["id_card"])
        out.append(m)
    return dict(changes, members=out)


LEDGER_MEMBER_FIELDS = ("id_card", "born", "phone", "work_place")


def keep_member_extras(changes, doc):
    """A members list from a form or an older phone knows nothing of the ledger's member fields (ID
    number, birth month, phone, working away): a member sent without one of them keeps the stored
    member's (matched by name), so a visit's family update never erases an imported ID number. A
    field sent, even empty, is the sender's word."""
    members = changes.get("members") if isinstance(changes, dict) else None
    if not isinstance(members, list) or not doc:
        return changes
    stored = {}
    for m in doc.get("members") or []:
        if isinstance(m, dict) and m.get("name"):
            stored.setdefault(m["name"], m)
    out = []
    for m in members:
        if isinstance(m, dict) and m.get("name") in stored:
            had = stored[m["name"]]
            m = dict(m, **{f: had[f] for f in LEDGER_MEMBER_FIELDS if f not in m and had.get(f)})
        out.append(m)
    return dict(changes, members=out)


def mask_ids(doc):
    """The household as a non-admin sees it: every member's ID number masked."""
    if not any(m.get("id_card") for m in doc.get("members") or []):
        return doc
    return dict(doc, members=[dict(m, id_card=idcard.mask(m["id_card"])) if m.get("id_card") else m
                              for m in doc["members"]])


def _names(value):
    if value is None or value == "":
        return []
    if isinstance(value, str):  # as a phone's text question gives them: "刘长老、陈长老"
        value = [n for n in re.split(r"[、,，;；\s]+", value) if n]
    if not isinstance(value, list) or len(value) > 10:
        raise ValueError(("见证人须为姓名列表（最多 10 人）", "Consultants must be a list of names (at most 10)"))
    return [_text(v, 30, required=True) for v in value]


def _ledger(value):
    """The household's ledger record (DESIGN, turn 3): a state and what goes with it."""
    if value is None:
        return None
    if not isinstance(value, dict) or set(value) - set(LEDGER_FIELDS):
        raise ValueError(("台账只能含 " + "、".join(LEDGER_FIELDS), "The ledger may hold only "
                          + ", ".join(LEDGER_FIELDS)))
    state = value.get("state") or "not_started"
    if state not in LEDGER_STATES:
        raise ValueError(("台账状态须为 " + "、".join(LEDGER_STATES), "The ledger state must be one of "
                          + ", ".join(LEDGER_STATES)))
    out = {"state": state, "consultants": _names(value.get("consultants"))}
    for key in ("publicised_on", "signed_on", "boundaries_confirmed_on"):
        if value.get(key) not in (None, ""):
            if not isinstance(value[key], str) or parse_date(value[key]) is None:
                raise ValueError((f"{key} 须为日期", f"{key} must be a date"))
            out[key] = value[key]
    if value.get("confirmed_at") not in (None, ""):
        if not isinstance(value["confirmed_at"], str) or parse_datetime(value["confirmed_at"]) is None:
            raise ValueError(("confirmed_at 须为时间", "confirmed_at must be a time"))
        out["confirmed_at"] = value["confirmed_at"]
    for key, limit in (("away_at", 100), ("objection", 500), ("resolution", 500), ("confirmed_by", 50),
                       ("signature", 80)):
        text = _text(value.get(key), limit)
        if text:
            out[key] = text
    return out


def _pv_status(value):
    if value is None:
        return None
    if not isinstance(value, dict) or set(value) - set(PV_FIELDS):
        raise ValueError(("光伏状态只能含 " + "、".join(PV_FIELDS), "PV status may hold only "
                          + ", ".join(PV_FIELDS)))
    out = {}
    for key, kind in PV_FIELDS.items():
        v = value.get(key)
        if v is None:
            out[key] = None
        elif kind == "ident":
            if not isinstance(v, str) or not IDENT_RE.match(v):
                raise ValueError((f"{key} 须为选项代码", f"{key} must be a choice code"))
            out[key] = v
        elif kind == "bool":
            if not isinstance(v, bool):
                raise ValueError((f"{key} 须为是或否", f"{key} must be true or false"))
            out[key] = v
        elif kind == "date":
            if parse_date(v) is None:
                raise ValueError((f"{key} 须为日期", f"{key} must be a date"))
            out[key] = v
        elif kind == "time":
            if parse_datetime(v) is None and parse_date(v) is None:
                raise ValueError((f"{key} 须为时间", f"{key} must be a time"))
            out[key] = v
        else:
            out[key] = _number(v, *kind)
    return {k: v for k, v in out.items() if v is not None or k in ("capacity_kw", "expected_kwh_year",
                                                                  "funding_mode")}


def _category(value):
    if value not in CATEGORIES:
        raise ValueError(("类别须为 脱贫户、监测户、低保户 或 一般户", "Unknown category"))
    return value


def _phone(value):
    value = phones.normalise(_text(value, 30))
    if value is None:
        raise ValueError(("电话号码格式不正确（11 位手机号或带区号的固定电话）",
                          "Not a valid phone number (11-digit mobile or landline with area code)"))
    return value


CLEANERS = {
    "head_name": lambda v: _text(v, 50, required=True),
    "phone": _phone,
    "address": lambda v: _text(v, 200),
    "group": lambda v: _text(v, 50),
    "category": _category,
    "population": lambda v: _number(v, 0, MAX_POPULATION, integer=True) or 0,
    "members": lambda v: _rows(v, MAX_MEMBERS, _member),
    "plots": _plots,
    "pv_status": _pv_status,
    "ledger": _ledger,
}


def clean_changes(changes, allowed=EDITABLE_FIELDS):
    """Check attribute changes against the schema; returns (clean, errors) with errors as
    [{"field", "zh", "en"}]."""
    clean, errors = {}, []
    if not isinstance(changes, dict):
        return {}, [{"field": None, "zh": "修改内容须为对象", "en": "Changes must be an object"}]
    for field, value in changes.items():
        if field not in allowed:
            errors.append({"field": str(field)[:64], "zh": "不能修改该字段", "en": "This field cannot be changed"})
            continue
        try:
            clean[field] = CLEANERS[field](value)
        except RowErrors as e:
            errors.extend(e.errors)
        except ValueError as e:
            zh, en = e.args[0]
            errors.append({"field": field, "zh": zh, "en": en})
        if len(errors) >= 50:
            break
    return clean, errors


def new_household(village_id, household_id, **attributes):
    """The one builder of a household document: defaults, then the given attributes (cleaned)."""
    doc = {"id": household_id, "village_id": village_id, "head_name": "", "phone": "", "address": "",
           "group": "", "category": "ordinary", "population": 1, "members": [], "plots": [],
           "cadre_ids": [], "pv_status": None, "version": 1, "field_versions": {},
           "updated_at": attributes.pop("updated_at", None) or now_iso(),
           "last_visit_date": None, "open_followups": []}
    cadre_ids = attributes.pop("cadre_ids", None)
    clean, errors = clean_changes(attributes)
    if errors:
        raise ValueError(f"bad household attributes: {errors}")
    doc.update(clean)
    if cadre_ids is not None:
        doc["cadre_ids"] = list(dict.fromkeys(cadre_ids))
    return doc


# ---- reading -----------------------------------------------------------------------------------


def get(household_id, db=None):
    vid = village_of(household_id)
    return (db or get_store()).get(vid, TABLE, household_id) if vid else None


def get_for(user, household_id, db=None):
    """The household if it exists and the user may see it; None alike for absent and out of scope."""
    vid = village_of(household_id)
    if vid is None or not user.can_see_village(vid):
        return None
    return (db or get_store()).get(vid, TABLE, household_id)


def stub_for(user, household_id, db=None):
    """{"id", "village_id"} of a household the user may see, else None: the scope check of a
    push, which needs no copy of the household."""
    vid = village_of(household_id)
    if vid is None or not user.can_see_village(vid):
        return None
    if (db or get_store()).peek(vid, TABLE, household_id) is None:
        return None
    return {"id": household_id, "village_id": vid}


def in_village(village_id, db=None, cond=None):
    return sorted((db or get_store()).search(village_id, TABLE, cond), key=lambda d: d["id"])


def count_in_village(village_id, db=None):
    return (db or get_store()).count(village_id, TABLE)


def search(user, village_id=None, query="", category=None, db=None, cond=None):
    """Households in scope (or one village of it), matching a text and a category."""
    db = db or get_store()
    query = (query or "").strip()

    def matches(doc):
        if category and doc.get("category") != category:
            return False
        if cond is not None and not cond(doc):
            return False
        if not query:
            return True
        hay = " ".join([doc.get("head_name", ""), doc.get("id", ""), doc.get("address", ""),
                        doc.get("group", ""), doc.get("phone", "")]
                       + [m.get("name", "") for m in doc.get("members", [])])
        return query in hay

    out = []
    for vid in villages.ids_in_scope(user, db, village_id or None):
        out.extend(db.search(vid, TABLE, matches))
    return sorted(out, key=lambda d: d["id"])


def page_by_seq(docs, since, limit):
    """The pull-sync page: oldest change first, and the cursor to ask from next time."""
    page = sorted(docs, key=lambda d: d["seq"])[:limit]
    return page, (page[-1]["seq"] if page else since)


def changed_since(user, since, limit, db=None):
    """A page of households in scope changed after `since` (the seq cursor), oldest change first."""
    db = db or get_store()
    changed = []
    for vid in villages.ids_in_scope(user, db):
        changed.extend(db.search(vid, TABLE, since=since))
    return page_by_seq(changed, since, limit)


def public(doc, user=None):
    """What the API shows: the stored document less bookkeeping a phone has no use for, and ID
    numbers masked unless `user` is an admin."""
    out = {k: v for k, v in doc.items() if k not in ("field_versions", "ledger_import")}
    if not getattr(user, "is_admin", False):
        out = mask_ids(out)
    return out


def cadres_of(household, db=None):
    out = []
    for cid in household.get("cadre_ids", []):
        u = users.get(cid, db)
        if u:
            out.append({k: u.get(k) for k in ("id", "display_name", "unit", "phone", "role")})
    return out


def clashes_of(user, household_id, db=None):
    vid = village_of(household_id)
    if vid is None or not user.can_see_village(vid):
        return []
    return sorted((db or get_store()).search(vid, CLASHES, lambda c: c.get("household_id") == household_id),
                  key=lambda c: c["at"], reverse=True)


def history_of(user, household_id, db=None):
    """Every change of the household, newest first: fields with before and after, who, from what."""
    vid = village_of(household_id)
    if vid is None or not user.can_see_village(vid):
        return []
    return sorted((db or get_store()).search(vid, HISTORY, lambda c: c.get("household_id") == household_id),
                  key=lambda c: (c.get("version", 0), c.get("at", "")), reverse=True)


def scan_history(village_id, project, keep=None, db=None):
    """[project(entry)] for a village's household history entries that keep(entry) accepts, read
    as stored (see scan_partition): the dashboard's PV stage changes walk them."""
    return scan_partition(db or get_store(), village_id, HISTORY, project, keep)


def history_entry(village_id, entry_id, db=None):
    return (db or get_store()).get(village_id, HISTORY, entry_id)


def as_of(doc, history, version):
    """The household as it was at `version`, rebuilt from the current document and its history
    (each entry's `before`, newest first); None when the history does not reach back that far."""
    if not isinstance(version, int) or version > doc.get("version", 1):
        return None
    past = dict(doc)
    steps = sorted((e for e in history if e.get("version", 0) > version),
                   key=lambda e: e["version"], reverse=True)
    if [e["version"] for e in steps] != list(range(doc.get("version", 1), version, -1)):
        return None
    for entry in steps:
        past.update(entry.get("before") or {})
    past["version"] = version
    return past


# ---- changing ----------------------------------------------------------------------------------


def apply_changes(tx, actor, household_id, changes, *, base_version=None, source, submission=None,
                  write_audit=True):
    """Apply clean attribute changes made from `base_version`: the one version bump.

    A stale base is merged per field, as ODK Entities do: fields nobody else touched apply cleanly
    (a "soft" clash is noted); a field someone else changed since the base is a "hard" clash: the
    later edit wins, the other value is kept for review. Each change leaves a history entry (before
    and after, who, which submission) and an audit entry.
    Returns (household, clash or None): the household as stored (read it, never change it), None
    when it does not exist."""
    vid = village_of(household_id)
    doc = tx.peek(vid, TABLE, household_id) if vid else None  # read only: the change is a patch
    if doc is None:
        return None, None
    version = doc.get("version", 1)
    field_versions = dict(doc.get("field_versions") or {})
    changed = {f: v for f, v in changes.items() if doc.get(f) != v}
    if not changed:
        return doc, None
    at = now_iso()
    clash = None
    if base_version is not None and base_version < version:
        others = sorted(f for f, fv in field_versions.items() if fv > base_version)
        hard = sorted(f for f in changed if field_versions.get(f, 0) > base_version)
        clash = {"id": secrets.token_hex(8), "household_id": household_id,
                 "kind": "hard" if hard else "soft", "fields": hard or sorted(changed),
                 "other_fields": others, "base_version": base_version, "server_version": version,
                 "incoming": {f: changed[f] for f in changed},
                 "overwritten": {f: doc.get(f) for f in hard},
                 "source": source, "by": actor, "at": at, "resolved": False}
    before = {f: doc.get(f) for f in changed}
    for f in changed:
        field_versions[f] = version + 1
    # Only what changed goes to the journal: an edit costs the same however long the household's
    # bookkeeping (its open promises) has grown.
    stored = tx.patch(vid, TABLE, household_id, set=dict(changed, field_versions=field_versions,
                                                          version=version + 1, updated_at=at))
    tx.put(vid, HISTORY, {"id": secrets.token_hex(8), "household_id": household_id,
                          "version": version + 1, "fields": sorted(changed),
                          "before": before, "after": dict(changed), "by": actor, "source": source,
                          "submission": submission, "at": at,
                          "clash": clash["kind"] if clash else None})
    if clash:
        tx.put(vid, CLASHES, clash)
    if write_audit:
        audit.record(tx, actor, "household_edit", household_id,
                     {"fields": sorted(changed), "source": source, "submission": submission,
                      "clash": clash["kind"] if clash else None})
    return stored, clash


def create(tx, actor, doc, *, write_audit=True):
    """Store a new household built by new_household (roster import, demo, tests)."""
    stored = tx.put(doc["village_id"], TABLE, doc)
    if write_audit:
        audit.record(tx, actor, "household_create", doc["id"], {"village_id": doc["village_id"]})
    return stored


def edit(user, household_id, changes, base_version, source="web", store=None):
    """A person's edit (web page or API): (household, clash, errors)."""
    store = store or get_store()
    # in scope and there; the stored document itself, read only (the helpers below copy what they change)
    current = store.peek(village_of(household_id), TABLE, household_id) \
        if stub_for(user, household_id, store) is not None else None
    if current is None:
        return None, None, []
    clean, errors = clean_changes(keep_member_extras(restore_masked(changes, current), current))
    if errors:
        return None, None, errors
    if "plots" in clean:
        clean["plots"] = settle_plots(clean["plots"], current.get("plots"))
    actor = user.id  # read here: the write runs on the store's thread, outside this request

    def write(tx):
        taken = plot_code_clashes(tx, household_id, clean["plots"]) if "plots" in clean else []
        if taken:
            return None, None, taken
        return (*apply_changes(tx, actor, household_id, clean, base_version=base_version, source=source), [])

    return store.write(write)


def undo(user, household_id, entry_id, store=None):
    """Put back what one history entry changed, as a new version (audited); (household, error)."""
    store = store or get_store()
    vid = village_of(household_id)
    if get_for(user, household_id, store) is None:
        return None, "household_not_found"
    entry = history_entry(vid, entry_id, store) if isinstance(entry_id, str) else None
    if entry is None or entry.get("household_id") != household_id:
        return None, "not_found"
    actor = user.id
    doc, _clash = store.write(lambda tx: apply_changes(
        tx, actor, household_id, dict(entry["before"]), base_version=entry["version"],
        source=f"undo:{entry_id}"))
    return doc, None


def set_pairing(user, household_id, cadre_ids, store=None):
    """Pair a household with cadres of its village (an admin's job): (household, errors)."""
    store = store or get_store()
    vid = village_of(household_id)
    allowed = {u["id"] for u in users.cadres_of_village(vid, store)} if vid else set()
    bad = [c for c in cadre_ids if c not in allowed]
    if bad:
        return None, [{"field": "cadre_ids", "zh": f"不是本村的驻村干部：{', '.join(map(str, bad))[:200]}",
                       "en": f"Not a cadre of this village: {', '.join(map(str, bad))[:200]}"}]
    actor = user.id
    doc, _ = store.write(lambda tx: apply_changes(
        tx, actor, household_id, {"cadre_ids": list(dict.fromkeys(cadre_ids))}, source="pairing"))
    return doc, []


# ---- what visits leave on a household (bookkeeping: no version bump) ----------------------------


def note_visit(tx, household_id, *, visit_date=None, opened=(), closed=(), submission=None):
    """What a received visit leaves on its household without being an edit (the version, the base
    of merges, stays): the last visit date (forward only), follow-ups promised, and follow-ups
    closed ({"id", "status", "note"}). Stored as a patch of what changed (tx.patch), so a visit
    costs the same however many promises its household already holds. Returns the stored
    household (read it, never change it) or None."""
    vid = village_of(household_id)
    current = tx.peek(vid, TABLE, household_id) if vid else None
    if current is None:
        return None
    if not opened and not closed and not (visit_date and visit_date > (current.get("last_visit_date") or "")):
        return current  # nothing to note (most visits of a busy day); read it, don't change it
    sets = {}
    if visit_date and visit_date > (current.get("last_visit_date") or ""):
        sets["last_visit_date"] = visit_date
    listed = current.get("open_followups") or []
    count = len(listed)
    held = None  # id -> follow-up, looked up only when a visit names earlier ones

    def lookup():
        nonlocal held
        if held is None:
            held = {f["id"]: f for f in listed}
        return held

    # A promise made by this very submission has an id no household holds yet (the uuid was
    # never stored: ingest decided that), so it is appended without looking the list through.
    fresh = f"{submission}:" if submission else None
    append, put = {}, {}  # id -> the item as it will stand (in the order they are added)
    for item in opened:
        new = fresh is not None and item["id"].startswith(fresh)
        if count < MAX_OPEN_FOLLOWUPS and item["id"] not in append and item["id"] not in put \
                and (new or item["id"] not in lookup()):
            (append if new else put)[item["id"]] = item
            count += 1
    drop = []
    for c in closed:
        f = append.get(c["id"]) or put.get(c["id"]) or lookup().get(c["id"])
        if f is None:
            continue
        f = dict(f, status=c["status"], note=c.get("note") or "", updated_by=submission)
        where = append if c["id"] in append else put
        if f["status"] in FOLLOWUP_CLOSED:
            where.pop(c["id"], None)
            if c["id"] in lookup():
                drop.append(c["id"])
        else:
            where[c["id"]] = f
    if not sets and not append and not put and not drop:
        return current
    change = {k: v for k, v in (("append", list(append.values())), ("put", list(put.values())),
                                ("drop", drop)) if v}
    items = {"open_followups": change} if change else None
    return tx.patch(vid, TABLE, household_id, set=sets or None, items=items)


def open_followup_ids(household_id, db=None):
    """The ids of the follow-ups a household has open now."""
    vid = village_of(household_id)
    doc = (db or get_store()).peek(vid, TABLE, household_id) if vid else None
    return {f["id"] for f in (doc or {}).get("open_followups") or []}


def record_followup_clash(tx, actor, household_id, answers, closing, *, submission):
    """A visit answered promises that were closed elsewhere meanwhile (two devices of one cadre,
    offline): the promise stays as the first answer closed it, the visit and its answer are
    stored, and the difference is a clash for review like any other. `answers`: [{"id", "status",
    "note", "action", ...}]; `closing`: {id: the answer that closed it}."""
    vid = village_of(household_id)
    doc = tx.peek(vid, TABLE, household_id) if vid else None
    if doc is None:
        return None
    ids = [a["id"] for a in answers]
    clash = {"id": secrets.token_hex(8), "household_id": household_id, "kind": "followup",
             "fields": ["open_followups"], "other_fields": [], "followups": ids,
             "base_version": None, "server_version": doc.get("version", 1),
             "incoming": {a["id"]: {"action": a.get("action"), "status": a["status"],
                                    "note": a.get("note") or ""} for a in answers},
             "overwritten": {}, "closed_by": {i: closing[i] for i in ids if i in closing},
             "source": f"submission:{submission}", "submission": submission, "by": actor,
             "at": now_iso(), "resolved": False}
    tx.put(vid, CLASHES, clash)
    return clash
def note_ledger_import(tx, household_id, snapshot):
    """What the last ledger import said of each field (bookkeeping, no version bump): the base of
    the next import's three-way comparison, so an edit made in Jiedui since is never overwritten."""
    vid = village_of(household_id)
    doc = tx.get(vid, TABLE, household_id) if vid else None
    if doc is None or doc.get("ledger_import") == snapshot:
        return doc
    doc["ledger_import"] = snapshot
    return tx.put(vid, TABLE, doc)


def set_last_visit_date(tx, household_id, visit_date):
    """Bookkeeping after a correction moved a visit's date (note_visit only moves it forward)."""
    vid = village_of(household_id)
    doc = tx.get(vid, TABLE, household_id) if vid else None
    if doc is None or doc.get("last_visit_date") == visit_date:
        return doc
    doc["last_visit_date"] = visit_date
    return tx.put(vid, TABLE, doc)


def forget_followups_of(tx, household_id, submission_uuid):
    """A corrected submission's promises are replaced by the correction's: drop the old ones."""
    vid = village_of(household_id)
    doc = tx.get(vid, TABLE, household_id) if vid else None
    if doc is None:
        return None
    kept = [f for f in doc.get("open_followups") or [] if f.get("submission") != submission_uuid]
    if len(kept) != len(doc.get("open_followups") or []):
        doc["open_followups"] = kept
        return tx.put(vid, TABLE, doc)
    return doc


# ---- pairing in bulk ---------------------------------------------------------------------------

MAX_BULK = 5000


def _cadre_villages(db, cadre_id):
    """The villages a cadre account works in, or None when it is not an active cadre."""
    u = users.get(cadre_id, db) if isinstance(cadre_id, str) else None
    if u is None or u.get("role") != "cadre" or not u.get("active", True):
        return None
    return set(u.get("villages") or [])


def pair_many(actor, household_ids, cadre_id, *, replace=False, store=None):
    """Pair many households with one cadre (added beside their cadres, or instead of them with
    replace=True), in one write: each change through apply_changes (version, history, audit), plus
    one audit entry for the whole action. (summary, errors); nothing written when any is wrong."""
    store = store or get_store()
    ids = list(dict.fromkeys(h for h in household_ids if isinstance(h, str)))
    if not ids:
        return None, [{"field": "household_ids", "zh": "请至少选择一户", "en": "Choose at least one household"}]
    if len(ids) > MAX_BULK:
        return None, [{"field": "household_ids", "zh": f"一次最多 {MAX_BULK} 户",
                       "en": f"At most {MAX_BULK} households at once"}]

    def write(tx):
        works_in = _cadre_villages(tx, cadre_id)
        if works_in is None:
            return None, [{"field": "cadre", "zh": "请选择一名在岗的驻村干部", "en": "Choose an active cadre"}]
        errors, docs = [], []
        for hid in ids:
            doc = get(hid, tx)
            if doc is None:
                errors.append({"field": "household_ids", "zh": f"没有农户 {hid}", "en": f"No household {hid}"})
            elif doc["village_id"] not in works_in:
                errors.append({"field": "household_ids", "zh": f"{hid}：该干部不在这个村驻村",
                               "en": f"{hid}: the cadre does not work in this village"})
            else:
                docs.append(doc)
        if errors:
            return None, errors[:50]
        changed = 0
        for doc in docs:
            new = [cadre_id] if replace else list(dict.fromkeys((doc.get("cadre_ids") or []) + [cadre_id]))
            stored, _ = apply_changes(tx, actor, doc["id"], {"cadre_ids": new}, source="pairing")
            changed += stored.get("version") != doc.get("version")
        summary = {"cadre": cadre_id, "replace": replace, "selected": len(docs), "changed": changed}
        audit.record(tx, actor, "pairing_bulk", cadre_id, dict(summary, households=[d["id"] for d in docs]))
        return summary, []

    return store.write(write)


def move_pairing(actor, from_cadre, to_cadre, *, village_id=None, store=None):
    """A cadre rotates out: every household paired with `from_cadre` (in one village, or in all)
    is paired with `to_cadre` instead, in one write and audited. (summary, errors)."""
    store = store or get_store()
    if not isinstance(from_cadre, str) or not from_cadre or from_cadre == to_cadre:
        return None, [{"field": "to_cadre", "zh": "请选择另一名干部接替", "en": "Choose another cadre to take over"}]

    def write(tx):
        works_in = _cadre_villages(tx, to_cadre)
        if works_in is None:
            return None, [{"field": "to_cadre", "zh": "接替的须为在岗的驻村干部",
                           "en": "The new cadre must be an active cadre"}]
        village_ids = [village_id] if village_id else [v["id"] for v in villages.list_all(tx)]
        found = []
        for vid in village_ids:
            found.extend(in_village(vid, tx, lambda d: from_cadre in (d.get("cadre_ids") or [])))
        missing = sorted({d["village_id"] for d in found} - works_in)
        if missing:
            names = "、".join(missing)
            return None, [{"field": "to_cadre", "zh": f"接替的干部不在这些村驻村：{names}（请先在用户管理中添加）",
                           "en": f"The new cadre does not work in: {', '.join(missing)} (add the villages "
                                 f"to their account first)"}]
        for doc in found:
            new = list(dict.fromkeys(to_cadre if c == from_cadre else c for c in doc["cadre_ids"]))
            apply_changes(tx, actor, doc["id"], {"cadre_ids": new}, source="pairing")
        summary = {"from": from_cadre, "to": to_cadre, "village": village_id, "moved": len(found)}
        audit.record(tx, actor, "pairing_move", from_cadre, dict(summary, households=[d["id"] for d in found]))
        return summary, []

    return store.write(write)


def scan(village_id, project, keep=None, db=None):
    """[project(doc)] for the village's households that keep(doc) accepts, without copying them
    (see scan_partition): folding a village into counts then costs no copies."""
    return scan_partition(db or get_store(), village_id, TABLE, project, keep)
