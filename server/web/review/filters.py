"""The filters of the queue, its API and the exports, read from a query string: every bad value
a catalogued 400 (or 404 for a village out of scope) naming the parameter, never a 500."""

from flask import request
from flask_login import current_user

from server.forms import formdefs
from server.web.parse import choice_arg, date_arg, text_arg
from server.core.problems import Problem
from server.records import reviews, villages

PARAMS = ("village", "state", "form", "cadre", "from", "to", "household")


def parse(args=None, *, default_state=None, form_required=False):
    """reviews.Filters from `args` (default: the query string). `state=all` means any state."""
    args = request.args if args is None else args
    village = text_arg("village", 32, args) or None
    if village is not None and villages.get_in_scope(current_user, village) is None:
        raise Problem("village_not_found")
    form = text_arg("form", 64, args) or None
    if form is None and form_required:
        raise Problem("bad_parameter", name="form", reason_zh="请选择表单", reason_en="choose a form")
    if form is not None and formdefs.registry().get(form) is None:
        raise Problem("bad_parameter", name="form", reason_zh="没有这个表单", reason_en="no such form")
    state = args.get("state")
    if state == "all":
        state = None
    else:
        state = choice_arg("state", reviews.STATES, default_state, args)
    date_from, date_to = date_arg("from", None, args), date_arg("to", None, args)
    if date_from and date_to and date_from > date_to:
        raise Problem("bad_parameter", name="from", reason_zh="开始日期晚于结束日期",
                      reason_en="the start date is after the end date")
    return reviews.Filters(village=village, state=state, form=form,
                           cadre=text_arg("cadre", 32, args) or None, date_from=date_from,
                           date_to=date_to, household=text_arg("household", 40, args) or None)


def as_args(filters, *, state_all=False):
    """The query-string form of `filters` (links keep them)."""
    out = {"village": filters.village, "form": filters.form, "cadre": filters.cadre,
           "from": filters.date_from, "to": filters.date_to, "household": filters.household,
           "state": filters.state or ("all" if state_all else None)}
    return {k: v for k, v in out.items() if v}
