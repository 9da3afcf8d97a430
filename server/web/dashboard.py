"""The township dashboard (views): GET /dashboard, /dashboard/list and their JSON twins
/api/v1/stats and /api/v1/stats/list. Supervisors and admins, in their scope; a cadre gets 403
(their own work is on the phone's home screen). The numbers come from stats.py."""

import re
from urllib.parse import urlencode

from flask import Blueprint, current_app, g, jsonify, render_template, request, url_for
from flask_login import current_user

from server.core import charts, clock
from server.core.ledger_words import FIGURE_LABELS
from server.forms import formdefs, labels
from server.services import figures, stats
from server.web import figures as figure_args
from server.web.auth import role_required
from server.core.i18n import label, tr
from server.web.parse import choice_arg, date_arg, int_arg
from server.core.problems import Problem
from server.core.text import NOT_ONE_LINE_RE
from server.records import users, villages
from server.core import words

bp = Blueprint("dashboard", __name__)
IDENT_RE = re.compile(r"^[A-Za-z0-9_]{1,32}\Z")
SAFE_QUERY_RE = re.compile(r"^[A-Za-z0-9_.-]*\Z")  # ids, usernames, stages, dates: nothing to quote
USERNAME_RE = users.USERNAME_RE
PER_PAGE = 100
MAX_VILLAGE_BARS = 40

KIND_WORDS = {
    "households": words.pair("households"),
    "paired": ("已结对农户", "Paired households"),
    "unpaired": ("未结对农户", "Unpaired households"),
    "never_visited": ("从未走访的农户", "Households never visited"),
    "not_visited_30d": ("30 天内未走访的农户", "Households not visited in 30 days"),
    "visits": ("走访记录", "Visits"),
    "visits_this_month": ("本月走访", "Visits this month"),
    "overdue_followups": ("逾期未办的跟进事项", "Overdue follow-ups"),
    "returned": ("退回待改的记录", "Returned visits"),
    "pv": ("光伏登记农户", "Households in the PV programme"),
    "help_value": ("消费帮扶记录", "Consumption help"),
    "ledger_households": ("土地台账农户", "Households in the land ledger"),
    "ledger_plots": ("承包地块", "Contracted plots"),
    "ledger_boundaries_confirmed": ("四至已确认的农户", "Households with boundaries confirmed"),
    "ledger_publicised": ("公示中的农户", "Households publicised"),
    "ledger_objections_open": ("有异议未结的农户", "Households with open objections"),
    "ledger_signed": ("已签字的农户", "Households signed"),
    "ledger_away": ("外出未签的农户", "Households away"),
    "ledger_confirmed_remote": ("远程确认的农户", "Households confirmed from afar"),
    "ledger_not_started": ("台账未开始的农户", "Households not started"),
    "help_entries": ("消费帮扶明细", "Consumption help, entry by entry"),
    "stage_changes": ("光伏进度变化", "PV stage changes"),
    "pv_capacity": ("光伏装机（千瓦）", "PV capacity (kW)"),
    "answers": ("问题的回答", "Answers to a question"),
}


def _presets():
    """The range presets with their words, for the range picker."""
    return [("this_month", tr("本月", "This month")), ("last_month", tr("上月", "Last month")),
            ("this_year", tr("今年", "This year"))]
TILES = ("households", "paired", "never_visited", "not_visited_30d", "visits_this_month",
         "overdue_followups", "returned", "help_value")


# ---- reading the query ------------------------------------------------------------------------------


def _bad(name, zh, en):
    return Problem("bad_parameter", name=name, reason_zh=zh, reason_en=en)


def _cadre_arg():
    raw = request.args.get("cadre", "")
    if raw == "":
        return None
    if not USERNAME_RE.match(raw):
        raise _bad("cadre", "须为干部的用户名", "must be a cadre's username")
    if users.get(raw) is None:
        raise Problem("user_not_found")
    return raw


def _stage_arg():
    raw = request.args.get("stage", "")
    if raw == "":
        return None
    if not IDENT_RE.match(raw):
        raise _bad("stage", "须为光伏进度代码", "must be a PV stage code")
    return raw


def _list_query():
    scope = villages.in_scope(current_user)
    village = figure_args.village_arg(scope)
    kind = choice_arg("kind", stats.KINDS + figures.KINDS)
    if kind is None:
        raise _bad("kind", "须指明列表种类", "must name the list")
    date_from, date_to = date_arg("from"), date_arg("to")
    if date_from and date_to and date_from > date_to:
        raise _bad("from", "开始日期晚于结束日期", "is after to")
    group = request.args.get("group")  # "~": the households without a group
    if group is not None and (len(group) > 30 or NOT_ONE_LINE_RE.search(group)):
        raise _bad("group", "组别不正确", "not a group")
    group = "" if group == "~" else group
    return {"scope": scope, "village": village, "kind": kind, "cadre": _cadre_arg(),
            "stage": _stage_arg(), "from": date_from, "to": date_to, "group": group,
            **figure_args.list_params()}


# ---- computing --------------------------------------------------------------------------------------


def list_url(kind, **params):
    """The drill-down link of a number (built by hand: a county page holds thousands of them, and
    url_for costs more than the page's figures)."""
    base = g.get("dashboard_list_base")
    if base is None:
        base = g.dashboard_list_base = url_for("dashboard.list_page")
    parts = [f"kind={kind}"]
    for k, v in params.items():
        if v:
            parts.append(f"{k}={v}" if SAFE_QUERY_RE.match(v) else urlencode({k: v}))
    return f"{base}?{'&'.join(parts)}"


# ---- JSON -------------------------------------------------------------------------------------------


@bp.get("/api/v1/stats")
@role_required(*users.REVIEWERS)
def api_stats():
    village = figure_args.village_arg(villages.in_scope(current_user))
    first, last, preset = figure_args.range_arg()
    body = stats.compute_stats(current_user, stats.cache_of(current_app), village)
    body["range"] = dict(figures.compute_range(current_user, stats.cache_of(current_app),
                                               figures.cache_of(current_app), first, last, village),
                         preset=preset)
    return jsonify(body)


@bp.get("/api/v1/stats/list")
@role_required(*users.REVIEWERS)
def api_list():
    q = _list_query()
    limit = int_arg("limit", 500, 1, 5000)
    offset = int_arg("offset", 0, 0, 10**7)
    items = _items(q)
    page = items[offset:offset + limit]
    return jsonify({"kind": q["kind"], "village": q["village"]["id"] if q["village"] else None,
                    "cadre": q["cadre"], "stage": q["stage"], "from": q["from"], "to": q["to"],
                    **{k: q[k] for k in FIGURE_PARAMS if q.get(k)},
                    "today": clock.today_iso(), "count": len(items), "items": page,
                    "unavailable": q["unavailable"],
                    "next_offset": offset + limit if offset + limit < len(items) else None})


FIGURE_PARAMS = ("product", "unit", "month", "channel", "form", "field", "value")


def _items(q):
    """The list's items; across villages, one whose file cannot be read is left out and named in
    q["unavailable"] (asked for alone, it answers 503 naming it)."""
    ids = [q["village"]["id"]] if q["village"] else [v["id"] for v in q["scope"]]
    broken = None if q["village"] else []
    if q["kind"] in figures.KINDS:
        items = figures.list_items(ids, q["kind"], cadre_id=q["cadre"], stage=q["stage"],
                                   date_from=q["from"], date_to=q["to"], unavailable=broken,
                                   **{k: q.get(k) for k in FIGURE_PARAMS})
    else:
        items = stats.list_items(ids, q["kind"], clock.today(), cadre_id=q["cadre"], stage=q["stage"],
                                 date_from=q["from"], date_to=q["to"], unavailable=broken,
                                 group=q["group"] if q["kind"].startswith("ledger_") else None)
    names = {v["id"]: v.get("name") or v["id"] for v in q["scope"]}
    q["unavailable"] = [{"id": vid, "name": names.get(vid, vid)} for vid in broken or []]
    return items


# ---- pages ------------------------------------------------------------------------------------------


@bp.get("/dashboard")
@role_required(*users.REVIEWERS)
def index():
    scope = villages.in_scope(current_user)
    village = figure_args.village_arg(scope)
    body = stats.compute_stats(current_user, stats.cache_of(current_app), village)
    vid = village["id"] if village else None
    stage_text = dict(labels.pv_stages())
    week_points = [(f"{int(w['start'][5:7])}/{int(w['start'][8:])}", w["visits"],
                    list_url("visits", village=vid, **{"from": w["start"], "to": w["end"]}),
                    tr(f"{w['start']} 起一周", f"week of {w['start']}")) for w in body["weeks"]]
    week_chart = charts.columns(
        week_points, tr("近 12 周每周走访次数", "Visits per week, last 12 weeks"),
        tr("每根柱为一周（周一开始）的走访次数，点击查看该周的走访记录。",
           "Each bar is one week (from Monday); follow it to that week's visits."))
    stage_words = [(s, label(stage_text[s]) if s in stage_text else labels.pv_stage_label(s))
                   for s in body["totals"]["pv"]]
    pv_rows = [(word, body["totals"]["pv"][s], list_url("pv", village=vid, stage=s)) for s, word in stage_words]
    pv_chart = charts.bars(pv_rows, tr("光伏进度（户）", "PV programme by stage (households)"),
                           tr("按进度统计的光伏登记农户数，点击查看名单。",
                              "Households at each PV stage; follow a bar to the list."))
    rows = body["villages"]
    note = None
    if len(rows) > MAX_VILLAGE_BARS:
        rows = sorted(rows, key=lambda r: (r["visits_this_month"], r["id"]))[:MAX_VILLAGE_BARS]
        note = tr(f"本月走访最少的 {MAX_VILLAGE_BARS} 个村", f"The {MAX_VILLAGE_BARS} villages with "
                                                           f"the fewest visits this month")
    village_chart = charts.bars(
        [(r["name"], r["visits_this_month"], list_url("visits_this_month", village=r["id"]))
         for r in rows],
        tr("各村本月走访次数", "Visits this month, per village"),
        tr("每行一个村，数字为本月走访次数，点击查看记录。",
           "One row per village: visits this month; follow a bar to the visits."))
    first, last, preset = figure_args.range_arg()
    span = figures.compute_range(current_user, stats.cache_of(current_app), figures.cache_of(current_app),
                                 first, last, village)
    question, question_error = None, None
    picked = request.args.get("question", "")
    if picked:
        form_id, _sep, field = picked.partition(":")
        try:
            question = figure_args.question_body(current_user, dict(
                request.args.items(), village=vid or "", form=form_id, field=field))
        except Problem as e:  # a bad pick is said on the page, the rest of it stays
            question_error = e
    return render_template("dashboard/index.html", s=body, village=village, scope=scope,
                           span=span, preset=preset, question=question, question_error=question_error,
                           questions=figures.countable_questions(formdefs.registry()),
                           stage_text=stage_text, presets=_presets(), picked=picked,
                           range_url=lambda kind, **p: list_url(kind, **{"village": vid, "from": first,
                                                                         "to": last, **p}),
                           week_chart=week_chart, pv_chart=pv_chart, village_chart=village_chart,
                           village_note=note, tiles=TILES, kind_words=KIND_WORDS, list_url=list_url,
                           stage_words=stage_words, ledger_figures=LEDGER_COLUMNS)


# The ledger table's columns: figure, words, and the list it links to (area: the plots' list).
LEDGER_COLUMNS = [(f, FIGURE_LABELS[f], "ledger_plots" if f == "area_mu" else f"ledger_{f}")
                  for f in stats.LEDGER_FIGURES]


@bp.get("/dashboard/list")
@role_required(*users.REVIEWERS)
def list_page():
    q = _list_query()
    items = _items(q)
    page = int_arg("page", 1, 1, 100_000)
    pages = max(1, (len(items) + PER_PAGE - 1) // PER_PAGE)
    cadre = users.get(q["cadre"]) if q["cadre"] else None
    names = {v["id"]: v["name"] for v in q["scope"]}
    title = tr(*KIND_WORDS[q["kind"]])
    if q.get("product"):
        title += " · " + q["product"]
    if q["kind"] == "help_entries" and q.get("channel"):
        title += " · " + figures.channel_words(formdefs.registry()).get(q["channel"], q["channel"])
    if q["kind"] == "pv" and q["stage"]:
        title += " · " + labels.pv_stage_label(q["stage"])
    params = {"kind": q["kind"], "village": q["village"]["id"] if q["village"] else None,
              "cadre": q["cadre"], "stage": q["stage"], "from": q["from"], "to": q["to"],
              "group": ("~" if q["group"] == "" else q["group"]), **{k: q.get(k) for k in FIGURE_PARAMS}}
    return render_template("dashboard/list.html", q=q, items=items[(page - 1) * PER_PAGE:page * PER_PAGE],
                           count=len(items), page=page, pages=pages, title=title, cadre=cadre,
                           names=names, params={k: v for k, v in params.items() if v},
                           today=clock.today_iso(), user_names=stats.cadres_for([])[1],
                           figure_kinds=figures.KINDS)
