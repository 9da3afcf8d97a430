"""Villages and households: the registry, scopes, pairing, edits merged per field, and their pages."""

import re
import secrets

from flask import Blueprint, abort, flash, jsonify, redirect, render_template, request, url_for
from flask_login import current_user, login_required

from .auth import audit, now_iso, role_required
from .errors import ApiError
from .i18n import CATEGORY_LABELS, tr
from .store import CORE, get_store

bp = Blueprint("households", __name__)

HOUSEHOLD_ID_RE = re.compile(r"^([A-Za-z0-9]{1,32})-(\d{4})$")
EDITABLE_FIELDS = ("head_name", "phone", "address", "group", "category", "population", "members",
                   "plots", "pv_status")
PHONE_RE = re.compile(r"^(1\d{10}|0\d{2,3}-?\d{7,8}|)$")


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


def search_households(user, village_id=None, query="", category=None, store=None):
    store = store or get_store()
    villages = [v["id"] for v in list_villages(user, store)]
    if village_id:
        villages = [v for v in villages if v == village_id]
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

    out = []
    for vid in villages:
        out.extend(store.search(vid, "households", matches))
    return sorted(out, key=lambda d: d["id"])


def households_changed_since(user, since, limit, store=None):
    """A page of households in scope changed after `since` (the seq cursor), oldest change first."""
    store = store or get_store()
    changed = []
    for village in list_villages(user, store):
        changed.extend(store.search(village["id"], "households", lambda d: d.get("seq", 0) > since))
    changed.sort(key=lambda d: d["seq"])
    page = changed[:limit]
    return page, (page[-1]["seq"] if page else since)


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
            if not isinstance(value, str) or not PHONE_RE.match(value.strip()):
                errors.append((field, "电话号码格式不正确", "Not a valid phone number"))
                continue
            value = value.strip()
        elif field == "category":
            if value not in CATEGORY_LABELS:
                errors.append((field, "类别无效", "Unknown category"))
                continue
        elif field == "population":
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 50:
                errors.append((field, "家庭人口须为 0–50 的整数", "Population must be an integer 0–50"))
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


# ---- HTTP API --------------------------------------------------------------------------------


def int_arg(name, default, lo, hi):
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(400, "bad_parameter", f"参数 {name} 须为整数。", f"Parameter {name} must be an integer.")
    if not lo <= value <= hi:
        raise ApiError(400, "bad_parameter", f"参数 {name} 超出范围 {lo}–{hi}。",
                       f"Parameter {name} is out of range {lo}–{hi}.")
    return value


@bp.get("/api/v1/households")
@login_required
def api_households():
    since = int_arg("since", 0, 0, 2**62)
    limit = int_arg("limit", 500, 1, 2000)
    page, nxt = households_changed_since(current_user, since, limit)
    return jsonify({"households": [public_household(d) for d in page], "next": nxt})


@bp.get("/api/v1/households/<household_id>")
@login_required
def api_household(household_id):
    doc = get_household_for_user(current_user, household_id)
    if doc is None:
        raise ApiError(404, "not_found", "找不到该农户。", "No such household.")
    return jsonify(public_household(doc))


@bp.put("/api/v1/households/<household_id>")
@login_required
def api_edit_household(household_id):
    body = request.get_json(silent=True)
    if not isinstance(body, dict) or not isinstance(body.get("changes"), dict):
        raise ApiError(400, "bad_body", "请求体须为 {\"changes\": {...}, \"base_version\": n}。",
                       "The body must be {\"changes\": {...}, \"base_version\": n}.")
    base = body.get("base_version")
    if base is not None and (isinstance(base, bool) or not isinstance(base, int)):
        raise ApiError(400, "bad_body", "base_version 须为整数。", "base_version must be an integer.")
    doc, clash, errors = edit_household(current_user, household_id, body["changes"], base, "api")
    if errors:
        raise ApiError(400, "invalid", "内容有误。", "Invalid changes.",
                       errors=[{"field": f, "message": tr(zh, en)} for f, zh, en in errors])
    if doc is None:
        raise ApiError(404, "not_found", "找不到该农户。", "No such household.")
    return jsonify({"household": public_household(doc), "clash": clash})


# ---- pages -----------------------------------------------------------------------------------


@bp.get("/")
@login_required
def home():
    return redirect(url_for("households.index"))


@bp.get("/households")
@login_required
def index():
    villages = list_villages(current_user)
    village_id = request.args.get("village") or None
    category = request.args.get("category") or None
    query = request.args.get("q", "")[:50]
    rows = search_households(current_user, village_id, query, category)
    page = max(1, min(_page_arg(), 10_000))
    per_page = 50
    total = len(rows)
    rows = rows[(page - 1) * per_page: page * per_page]
    names = {v["id"]: v["name"] for v in villages}
    return render_template("households/index.html", rows=rows, villages=villages, names=names,
                           village_id=village_id, category=category, q=query, page=page,
                           pages=max(1, (total + per_page - 1) // per_page), total=total,
                           categories=CATEGORY_LABELS)


def _page_arg():
    try:
        return int(request.args.get("page", 1))
    except ValueError:
        return 1


@bp.get("/households/<household_id>")
@login_required
def detail(household_id):
    doc = get_household_for_user(current_user, household_id)
    if doc is None:
        abort(404)
    from .submissions import submissions_for_household
    store = get_store()
    village = store.get(CORE, "villages", doc["village_id"]) or {}
    return render_template("households/detail.html", h=doc, village=village,
                           cadres=cadres_of(doc, store),
                           submissions=submissions_for_household(current_user, household_id),
                           clashes=list_clashes(current_user, household_id),
                           village_cadres=village_cadres(doc["village_id"], store))


@bp.route("/households/<household_id>/edit", methods=["GET", "POST"])
@login_required
def edit(household_id):
    doc = get_household_for_user(current_user, household_id)
    if doc is None:
        abort(404)
    errors = []
    if request.method == "POST":
        changes, errors = _changes_from_form(request.form)
        base = request.form.get("base_version", "")
        base = int(base) if base.isdigit() else None
        if not errors:
            saved, clash, errors = edit_household(current_user, household_id, changes, base)
            if saved is not None and not errors:
                flash(tr("已保存。", "Saved.") + (tr(" 有人同时修改了这户，已记录冲突待审核。",
                                                      " Someone else edited this household meanwhile; "
                                                      "the clash is recorded for review.") if clash else ""))
                return redirect(url_for("households.detail", household_id=household_id))
        doc.update({k: v for k, v in changes.items()})
    return render_template("households/edit.html", h=doc, errors=errors, categories=CATEGORY_LABELS), \
        (400 if errors else 200)


def _changes_from_form(form):
    changes, errors = {}, []
    for f in ("head_name", "phone", "address", "group", "category"):
        if f in form:
            changes[f] = form.get(f, "")
    if "population" in form:
        try:
            changes["population"] = int(form["population"])
        except ValueError:
            errors.append(("population", "家庭人口须为整数", "Population must be an integer"))
    members = []
    for i in range(100):
        name = form.get(f"members.{i}.name")
        if name is None:
            break
        if not name.strip():
            continue
        by = form.get(f"members.{i}.birth_year", "").strip()
        if by and not by.isdigit():
            errors.append((f"members.{i}.birth_year", "出生年份须为数字", "Birth year must be a number"))
            by = ""
        members.append({"name": name, "relation": form.get(f"members.{i}.relation", ""),
                        "sex": form.get(f"members.{i}.sex", ""),
                        "birth_year": int(by) if by else None,
                        "health": form.get(f"members.{i}.health", ""),
                        "schooling": form.get(f"members.{i}.schooling", ""),
                        "work": form.get(f"members.{i}.work", "")})
    if "members.0.name" in form:
        changes["members"] = members
    plots = []
    for i in range(100):
        name = form.get(f"plots.{i}.name")
        if name is None:
            break
        area = form.get(f"plots.{i}.area_mu", "").strip()
        if not name.strip() and not area:
            continue
        try:
            area_v = float(area) if area else None
        except ValueError:
            errors.append((f"plots.{i}.area_mu", "面积须为数字（亩）", "Area must be a number (mu)"))
            area_v = None
        plots.append({"name": name, "area_mu": area_v,
                      **{s: form.get(f"plots.{i}.{s}", "") for s in ("east", "west", "south", "north")},
                      "contract_signed": form.get(f"plots.{i}.contract_signed") == "on"})
    if "plots.0.name" in form:
        changes["plots"] = plots
    return changes, errors


@bp.post("/households/<household_id>/pairing")
@role_required("admin")
def pairing(household_id):
    doc, errors = set_pairing(current_user, household_id, request.form.getlist("cadre_ids"))
    if errors:
        flash(tr(errors[0][1], errors[0][2]), "error")
    elif doc is None:
        abort(404)
    else:
        flash(tr("结对已更新。", "Pairing updated."))
    return redirect(url_for("households.detail", household_id=household_id))


@bp.get("/villages")
@login_required
def villages():
    store = get_store()
    waiting = lambda d: not all(a.get("received") for a in d.get("attachments", []))  # noqa: E731
    rows = [dict(v, households=store.count(v["id"], "households"),
                 submissions=store.count(v["id"], "submissions"),
                 incomplete=store.count(v["id"], "submissions", waiting))
            for v in list_villages(current_user, store)]
    return render_template("villages.html", rows=rows)
