"""Household and village pages, and the households API: thin views over the record owners."""

import re

from flask import Blueprint, abort, flash, jsonify, redirect, render_template, request, url_for
from flask_login import current_user, login_required

from server.web.auth import role_required
from server.core.i18n import CATEGORY_LABELS, tr
from server.web.parse import int_arg, json_body, parse_decimal, parse_int, text_arg
from server.core.problems import Problem, invalid
from server.records import epochs, households, submissions, users, villages
from server.core import words

bp = Blueprint("households", __name__)
PER_PAGE = 50


# ---- HTTP API --------------------------------------------------------------------------------


@bp.get("/api/v1/households")
@login_required
def api_households():
    since = int_arg("since", 0, 0, 2**62)
    limit = int_arg("limit", 500, 1, 2000)
    phone_epoch = request.args.get("epoch")
    epoch, reset = epochs.check_cursor(current_user, since, phone_epoch[:64] if phone_epoch else None)
    if reset:  # the data went back (a restore): the phone pulls everything again from 0
        return jsonify({"households": [], "next": 0, "reset": True, "epoch": epoch})
    page, nxt = households.changed_since(current_user, since, limit)
    return jsonify({"households": [households.public(d, current_user) for d in page], "next": nxt, "epoch": epoch})


@bp.get("/api/v1/households/<household_id>")
@login_required
def api_household(household_id):
    doc = households.get_for(current_user, household_id)
    if doc is None:
        raise Problem("household_not_found")
    return jsonify(households.public(doc, current_user))


@bp.put("/api/v1/households/<household_id>")
@login_required
def api_edit_household(household_id):
    shape = '{"changes": {...}, "base_version": n}'
    body = json_body(256 * 1024, shape=shape)
    if not isinstance(body.get("changes"), dict) or set(body) - {"changes", "base_version"}:
        raise Problem("bad_body", shape=shape)
    base = body.get("base_version")
    if base is not None and parse_int(base, 0, 2**53) is None:
        raise Problem("bad_body", shape=shape)
    doc, clash, errors = households.edit(current_user, household_id, body["changes"], base, "api")
    if errors:
        raise invalid(errors)
    if doc is None:
        raise Problem("household_not_found")
    return jsonify({"household": households.public(doc, current_user), "clash": clash})


# ---- pages -----------------------------------------------------------------------------------


@bp.get("/")
@login_required
def home():
    from server.web.auth import landing_url
    return redirect(landing_url(current_user))


@bp.get("/households")
@login_required
def index():
    scope = villages.in_scope(current_user)
    village_id = request.args.get("village") or None
    if village_id is not None and village_id not in {v["id"] for v in scope}:
        village_id = None
    category = request.args.get("category") or None
    if category not in CATEGORY_LABELS:
        category = None
    query = text_arg("q", 50)
    rows = households.search(current_user, village_id, query, category)
    page = int_arg("page", 1, 1, 10_000)
    total = len(rows)
    rows = rows[(page - 1) * PER_PAGE: page * PER_PAGE]
    names = {v["id"]: v["name"] for v in scope}
    return render_template("households/index.html", rows=rows, villages=scope, names=names,
                           village_id=village_id, category=category, q=query, page=page,
                           pages=max(1, (total + PER_PAGE - 1) // PER_PAGE), total=total,
                           categories=CATEGORY_LABELS)


@bp.get("/households/<household_id>")
@login_required
def detail(household_id):
    doc = households.get_for(current_user, household_id)
    if doc is None:
        abort(404)
    history = households.history_of(current_user, household_id)
    if not current_user.is_admin:
        history = [dict(e, before=households.mask_ids(e.get("before") or {}),
                        after=households.mask_ids(e.get("after") or {})) for e in history]
    return render_template("households/detail.html", h=households.public(doc, current_user),
                           village=villages.get(doc["village_id"]) or {},
                           cadres=households.cadres_of(doc),
                           submissions=submissions.for_household(current_user, household_id),
                           clashes=households.clashes_of(current_user, household_id),
                           village_cadres=users.cadres_of_village(doc["village_id"]),
                           history=history,
                           user_names=users.display_names())


@bp.route("/households/<household_id>/edit", methods=["GET", "POST"])
@login_required
def edit(household_id):
    doc = households.get_for(current_user, household_id)
    if doc is None:
        abort(404)
    errors = []
    if request.method == "POST":
        changes, errors = _changes_from_form(request.form)
        base = parse_int(request.form.get("base_version", ""), 0, 2**53)
        if not errors:
            saved, clash, errors = households.edit(current_user, household_id, changes, base)
            if saved is not None and not errors:
                flash(tr(*words.pair("saved")) + (tr(" 有人同时修改了这户，已记录冲突待审核。",
                                                      " Someone else edited this household meanwhile; "
                                                      "the clash is recorded for review.") if clash else ""))
                return redirect(url_for("households.detail", household_id=household_id))
        doc.update(changes)
    return render_template("households/edit.html", h=households.public(doc, current_user), errors=errors, categories=CATEGORY_LABELS,
                           ledger_states=households.LEDGER_STATES), \
        (400 if errors else 200)


def _error(field, zh, en):
    return {"field": field, "zh": zh, "en": en}


def _changes_from_form(form):
    """The edit page's fields as household changes (checked by the owner's schema afterwards)."""
    changes, errors = {}, []
    for f in ("head_name", "phone", "address", "group", "category"):
        if f in form:
            changes[f] = form.get(f, "")
    if "population" in form:
        value = parse_int(form["population"], 0, households.MAX_POPULATION)
        if value is None:
            errors.append(_error("population", f"家庭人口须为 0–{households.MAX_POPULATION} 的整数",
                                 f"Population must be a whole number 0–{households.MAX_POPULATION}"))
        else:
            changes["population"] = value
    members = []
    for i in range(households.MAX_MEMBERS):
        name = form.get(f"members.{i}.name")
        if name is None:
            break
        if not name.strip():
            continue
        by = form.get(f"members.{i}.birth_year", "").strip()
        birth_year = parse_int(by, 1850, 2200) if by else None
        if by and birth_year is None:
            errors.append(_error(f"members.{i}.birth_year", "出生年份须为四位数字",
                                 "Birth year must be four digits"))
        members.append({"name": name, "relation": form.get(f"members.{i}.relation", ""),
                        "sex": form.get(f"members.{i}.sex", ""), "birth_year": birth_year,
                        "health": form.get(f"members.{i}.health", ""),
                        "schooling": form.get(f"members.{i}.schooling", ""),
                        "work": form.get(f"members.{i}.work", ""),
                        **{f: form.get(f"members.{i}.{f}", "").strip()
                           for f in ("id_card", "born", "phone", "work_place") if f"members.{i}.{f}" in form}})
    if "members.0.name" in form:
        changes["members"] = members
    if "plots.present" in form or "plots.0.name" in form:
        changes["plots"], plot_errors = _plots_from_form(form)
        errors.extend(plot_errors)
    return changes, errors


PLOT_TEXT = ("name", "code", "east", "west", "south", "north", "contract_no", "state", "note")
PLOT_ROW_RE = re.compile(r"^plots\.([0-9]{1,4})\.name\Z")


def _plots_from_form(form):
    """The plots table: its rows in page order (rows removed in the page leave gaps in the
    numbering, so the indices are read, not counted); a row left wholly empty is no plot. Error
    fields name the row as the table shows it (its position) and the column."""
    indices = sorted({int(m.group(1)) for k in form if (m := PLOT_ROW_RE.match(k))})[:households.MAX_PLOTS + 1]
    plots, errors = [], []
    for i in indices:
        row = {f: form.get(f"plots.{i}.{f}", "") for f in (*PLOT_TEXT, "id", "area_mu", "contract_signed")}
        get = row.__getitem__
        area = get("area_mu").strip()
        if not area and not any(get(f).strip() for f in PLOT_TEXT if f != "state"):
            continue
        area_v = parse_decimal(area) if area else None
        if area and area_v is None:
            errors.append(_error(f"plots.{len(plots)}.area_mu", "面积须为数字（亩）", "Area must be a number (mu)"))
            area_v = area  # shown again as typed; nothing is saved while a row is wrong
        plot = {"name": get("name"), "area_mu": area_v,
                **{s: get(s) for s in ("east", "west", "south", "north")},
                "contract_signed": get("contract_signed") in ("on", "1", "true")}
        plot.update({f: get(f).strip() for f in ("id", "code", "contract_no", "state", "note") if get(f).strip()})
        plots.append(plot)
    return plots, errors


@bp.post("/households/<household_id>/pairing")
@role_required("admin")
def pairing(household_id):
    doc, errors = households.set_pairing(current_user, household_id, request.form.getlist("cadre_ids"))
    if errors:
        flash(tr(errors[0]["zh"], errors[0]["en"]), "error")
    elif doc is None:
        abort(404)
    else:
        flash(tr("结对已更新。", "Pairing updated."))
    return redirect(url_for("households.detail", household_id=household_id))


@bp.get("/villages", endpoint="villages")
@login_required
def village_list():
    rows = [dict(v, households=households.count_in_village(v["id"]),
                 submissions=submissions.count_in_village(v["id"]),
                 incomplete=submissions.count_in_village(
                     v["id"], cond=lambda d: not submissions.is_complete(d)))
            for v in villages.in_scope(current_user)]
    return render_template("villages.html", rows=rows)
