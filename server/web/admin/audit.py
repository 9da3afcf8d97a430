"""The audit log for admins: filter by user, action, household and date, newest first, paged,
read-only, and the same selection as CSV or XLSX."""

import csv
import io
import json
import tempfile
from datetime import datetime, time, timedelta, timezone

from flask import render_template, send_file

from server.web.auth import role_required
from server.core.clock import parse_date, show, today_iso, zone
from server.web.parse import choice_arg, date_arg, int_arg, text_arg
from server.core.problems import Problem
from server.records import audit, users
from server.forms.labels import action_label, details_text
from server.services.tabular import XlsxBook, is_risky
from server.web.admin import bp

PER_PAGE = 50
COLUMNS = (("time", "时间", "Time"), ("user", "账号", "Account"), ("user_name", "姓名", "Name"),
           ("action", "操作代码", "Action code"), ("action_label", "操作", "Action"),
           ("target", "对象", "Target"), ("details", "详情", "Details"))


def _instant(day):
    """Local midnight starting `day` ('YYYY-MM-DD'), as a stored (UTC) time."""
    start = datetime.combine(parse_date(day), time(0), tzinfo=zone())
    return start.astimezone(timezone.utc).isoformat(timespec="seconds")


def _selection():
    date_from, date_to = date_arg("from"), date_arg("to")
    if date_from and date_to and date_from > date_to:
        raise Problem("bad_parameter", name="from", reason_zh="开始日期晚于结束日期",
                      reason_en="the start date is after the end date")
    actions = audit.actions()
    wanted = {"user": text_arg("user", 32) or None,
              "action": choice_arg("action", actions) if actions else None,
              "household": text_arg("household", 40) or None,
              "from": date_from, "to": date_to}
    ids = audit.select(user=wanted["user"], action=wanted["action"], household=wanted["household"],
                       time_from=_instant(date_from) if date_from else None,
                       time_to=_instant((parse_date(date_to) + timedelta(days=1)).isoformat())
                       if date_to else None)
    return wanted, ids, actions


def _details_json(details):
    """The exports keep the details as JSON: a machine reads them back."""
    return json.dumps(details or {}, ensure_ascii=False, sort_keys=True)[:2000]


@bp.get("/audit")
@role_required("admin")
def audit_log():
    wanted, ids, actions = _selection()
    pages = max(1, (len(ids) + PER_PAGE - 1) // PER_PAGE)
    page = min(int_arg("page", 1, 1, 1_000_000), pages)
    entries = list(audit.fetch(ids[(page - 1) * PER_PAGE: page * PER_PAGE]))
    names = users.display_names()
    args = {k: v for k, v in wanted.items() if v}
    return render_template("admin/audit.html", entries=entries, total=len(ids), page=page, pages=pages,
                           wanted=wanted, args=args, actions=actions, users=users.list_all(),
                           names=names, details_text=details_text)


def _rows(ids):
    names = users.display_names()
    for e in audit.fetch(ids):
        yield [show(e.get("time"), seconds=True), e.get("user"), names.get(e.get("user"), e.get("user")),
               e.get("action"), action_label(e.get("action")), e.get("target"),
               _details_json(e.get("details"))]


@bp.get("/audit.csv")
@role_required("admin")
def audit_csv():
    _wanted, ids, _actions = _selection()
    out = tempfile.TemporaryFile()
    text = io.TextIOWrapper(out, encoding="utf-8-sig", newline="")
    writer = csv.writer(text)
    from server.core.i18n import tr
    writer.writerow([tr(zh, en) for _n, zh, en in COLUMNS])
    writer.writerow([n for n, _zh, _en in COLUMNS])
    for row in _rows(ids):
        writer.writerow(["'" + v if is_risky(v) else v for v in row])
    text.flush()
    text.detach()
    out.seek(0)
    return send_file(out, mimetype="text/csv", as_attachment=True,
                     download_name=f"audit-{today_iso()}.csv", max_age=0)


@bp.get("/audit.xlsx")
@role_required("admin")
def audit_xlsx():
    _wanted, ids, _actions = _selection()
    from server.core.i18n import tr
    book = XlsxBook()
    append = book.sheet("audit", [tr(zh, en) for _n, zh, en in COLUMNS], [n for n, _zh, _en in COLUMNS])
    for row in _rows(ids):
        append(row)
    out = tempfile.TemporaryFile()
    book.save(out)
    out.seek(0)
    return send_file(out, as_attachment=True, download_name=f"audit-{today_iso()}.xlsx", max_age=0,
                     mimetype="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
