"""Figures a report can quote (views): the date range the dashboard and /api/v1/stats read
(?range=this_month|last_month|this_year, or ?from=&to=), and the question picker,
GET /api/v1/stats/question?form=ID&field=NAME[&village=ID][&from=&to=] (supervisors and admins, in
their scope). The figures come from services/figures.py."""

from datetime import date

from flask import Blueprint, jsonify, request
from flask_login import current_user

from server.core import clock
from server.core.ids import is_village_id
from server.core.problems import Problem
from server.forms import formdefs
from server.records import users, villages
from server.services import figures
from server.web.auth import role_required
from server.web.parse import choice_arg, date_arg, text_arg

bp = Blueprint("figures", __name__)


def _bad(name, zh, en):
    return Problem("bad_parameter", name=name, reason_zh=zh, reason_en=en)


def range_arg(args=None, today=None):
    """(first, last, preset) ISO days from the query: a preset, or from/to (one alone: from runs to
    today, to starts on its month's first day), default this month. End before start, or more than
    ten years: a 400 naming `to`."""
    args = request.args if args is None else args
    today = today or clock.today()
    preset = choice_arg("range", figures.PRESETS, None, args)
    raw_from, raw_to = date_arg("from", None, args), date_arg("to", None, args)
    if raw_from or raw_to:
        last = date.fromisoformat(raw_to) if raw_to else today
        first = date.fromisoformat(raw_from) if raw_from else last.replace(day=1)
        preset = None
    else:
        preset = preset or "this_month"
        first, last = figures.preset_range(preset, today)
    why = figures.range_problem(first, last)
    if why:
        raise _bad("to", *why)
    return first.isoformat(), last.isoformat(), preset


def village_arg(scope, args=None):
    """The ?village= village (in scope) or None for all; a malformed id is a 400, an unknown or
    out-of-scope one a 404 (alike, so scope does not leak)."""
    args = request.args if args is None else args
    raw = args.get("village", "")
    if raw == "":
        return None
    if not is_village_id(raw):
        raise _bad("village", "须为村编号（字母和数字）", "must be a village id (letters and digits)")
    for v in scope:
        if v["id"] == raw:
            return v
    raise Problem("village_not_found")


def question_arg(registry, args=None):
    """(form id, field) of ?form=&field=: a 400 saying why a question cannot be counted."""
    args = request.args if args is None else args
    form_id = text_arg("form", 64, args)
    if not form_id:
        raise _bad("form", "请选择表单", "choose a form")
    if registry.get(form_id) is None:
        raise _bad("form", "没有这个表单", "no such form")
    name = text_arg("field", 64, args)
    if not name:
        raise _bad("field", "请选择要统计的问题", "choose a question to count")
    field, why = figures.find_question(registry, form_id, name)
    if field is None:
        raise _bad("field", *why)
    return form_id, field


def question_body(user, args=None):
    """The question figures for the query (shared by the JSON and the dashboard page)."""
    args = request.args if args is None else args
    registry = formdefs.registry()
    form_id, field = question_arg(registry, args)
    scope = villages.in_scope(user)
    village = village_arg(scope, args)
    ranged = any(args.get(k) for k in ("from", "to", "range"))
    first, last, preset = range_arg(args) if ranged else (None, None, None)
    chosen = [village] if village else scope
    body = figures.question_figures([v["id"] for v in chosen], form_id, field, first, last,
                                    villages_by_id={v["id"]: v for v in chosen},
                                    cadre_names=users.display_names())
    body["village"] = village["id"] if village else None
    body["range"] = preset
    body["as_of"] = clock.now().astimezone(clock.zone()).isoformat(timespec="seconds")
    return body


@bp.get("/api/v1/stats/question")
@role_required(*users.REVIEWERS)
def api_question():
    return jsonify(question_body(current_user))


# ---- the lists behind the figures (read by dashboard.list_page and /api/v1/stats/list) --------------


def list_params(args=None):
    """The extra filters of this module's list kinds: product, unit, month, channel, form, field,
    value (each short text; form and field checked as the picker checks them)."""
    args = request.args if args is None else args
    out = {k: text_arg(k, 64, args) or None for k in ("product", "unit", "channel", "value")}
    month = text_arg("month", 7, args) or None
    if month is not None and not (len(month) == 7 and month[4] == "-" and month.replace("-", "").isdigit()):
        raise _bad("month", "须为月份 YYYY-MM", "must be a month YYYY-MM")
    out["month"] = month
    out["form"] = out["field"] = None
    if args.get("kind") == "answers":
        out["form"], field = question_arg(formdefs.registry(), args)
        out["field"] = field["name"]
    return out
