"""Household and village pages, and the households API: thin views over the domain modules."""

from flask import Blueprint, abort, flash, jsonify, redirect, render_template, request, url_for
from flask_login import current_user, login_required

from .auth import role_required
from .errors import ApiError, int_arg
from .households import (cadres_of, edit_household, get_household_for_user, households_changed_since,
                         list_clashes, list_villages, public_household, search_households,
                         set_pairing, village_cadres)
from .i18n import CATEGORY_LABELS, tr
from .store import CORE, get_store
from .submissions import is_complete, submissions_for_household

bp = Blueprint("households", __name__)


# ---- HTTP API --------------------------------------------------------------------------------


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
    waiting = lambda d: not is_complete(d)  # noqa: E731
    rows = [dict(v, households=store.count(v["id"], "households"),
                 submissions=store.count(v["id"], "submissions"),
                 incomplete=store.count(v["id"], "submissions", waiting))
            for v in list_villages(current_user, store)]
    return render_template("villages.html", rows=rows)
