"""What the exports hold, sheet by sheet, written row by row into a book (tabular.XlsxBook or
CsvBook): submissions of one form (a row each, one sheet per repeat keyed by the submission's uuid),
the household ledger (households, members, land plots with their four boundaries), and the
attachments of a form's submissions as a ZIP. Everything in the caller's scope; times in
JIEDUI_TIMEZONE; labels in the page's language."""

import functools
import os
import zipfile
from datetime import date, datetime

from server.core import clock, idcard
from server.core.clock import show
from server.core.ledger_words import state_label as ledger_state_label
from server.core.i18n import category_label, tr
from server.records import attachments, audit, households, submissions, users, villages
from server.services import present
from server.forms.labels import pv_stage_label, review_state, sex_label, state_label
from server.core import words
from server.store import get_store
from server.services.tabular import RISKY_CHARS, Link, csv_cell, csv_cells

FIXED = (
    ("uuid", "记录编号", "Record id"),
    ("household_id", "户编号", "Household id"),
    ("head_name", "户主", "Head of household"),
    ("village_id", "村编号", "Village id"),
    ("village", "村", "Village"),
    ("cadre_id", "干部账号", "Cadre account"),
    ("cadre", "干部", "Cadre"),
    ("date", "日期", "Date"),
    ("created_at", "填写时间", "Filled in at"),
    ("received_at", "接收时间", "Received at"),
    ("form_version", "表单版本", "Form version"),
    ("review_state", "审核状态", "Review state"),
    ("review_comment", "审核意见", "Review comment"),
    ("reviewed_by", "审核人", "Reviewed by"),
    ("reviewed_at", "审核时间", "Reviewed at"),
    ("supersedes", "更正的记录", "Corrects"),
)
GEO_PARTS = (("lat", "纬度", "latitude"), ("lon", "经度", "longitude"),
             ("accuracy", "精度（米）", "accuracy (m)"))


class FormColumns:
    """The columns of one form across every version it has had (newest first decides labels and
    order; questions only older versions asked come after), and each version's own questions, by
    which an answer's choices are read."""

    def __init__(self, registry, form_id):
        self.versions = {v: registry.get(form_id, v) for v in sorted(registry.versions(form_id), reverse=True)}
        self.by_version = {v: {f["name"]: f for f in present.questions(d)} for v, d in self.versions.items()}
        self.top, self.repeats = [], {}
        seen = set()
        for definition in self.versions.values():
            for f in present.questions(definition):
                if f["name"] in seen:
                    if f["type"] == "repeat":
                        self._children(self.repeats[f["name"]], f, f["name"])
                    continue
                seen.add(f["name"])
                if f["type"] == "repeat":
                    self.repeats[f["name"]] = {"field": f, "children": [], "seen": set(), "path": [f["name"]]}
                    self._children(self.repeats[f["name"]], f, f["name"])
                else:
                    self.top.append(f)

    def _children(self, repeat, field, key):
        """A repeat's questions; a repeat inside it (XLSForm nests them) gets a sheet of its own,
        keyed "outer.inner", its rows numbered "1.2" (entry 2 of the outer entry 1)."""
        for c in field.get("fields") or []:
            if c.get("type") == "repeat":
                inner = f"{key}.{c['name']}"
                if inner not in self.repeats:
                    self.repeats[inner] = {"field": c, "children": [], "seen": set(),
                                           "path": repeat["path"] + [c["name"]]}
                self._children(self.repeats[inner], c, inner)
            elif c.get("type") not in present.NOT_ANSWERS and c["name"] not in repeat["seen"]:
                repeat["seen"].add(c["name"])
                repeat["children"].append(c)

    def field(self, version, name, fallback):
        return self.by_version.get(version, {}).get(name) or fallback


def _headers(fields):
    labels, names = [], []
    for f in fields:
        title = present.label(f.get("label")) or f["name"]
        if f["type"] == "geopoint":
            for part, zh, en in GEO_PARTS:
                labels.append(f"{title}（{tr(zh, en)}）")
                names.append(f"{f['name']}.{part}")
        else:
            labels.append(title)
            names.append(f["name"])
    return labels, names


@functools.lru_cache(maxsize=4096)
def _day(text):
    """'YYYY-MM-DD' as a date (an Excel date cell); anything else stays as it was."""
    try:
        return date.fromisoformat(text) if isinstance(text, str) and len(text) == 10 else text
    except ValueError:
        return text


def _local_time(iso, zone):
    """A stored ISO time as the county's wall-clock time (a naive datetime: Excel has no zones);
    None stays empty, an unreadable one stays as text."""
    if not iso:
        return None
    try:
        value = datetime.fromisoformat(iso) if isinstance(iso, str) else None
    except ValueError:
        value = None
    if value is None:
        return show(iso, seconds=True)
    if value.tzinfo is None:
        return value.replace(microsecond=0)
    return value.astimezone(zone).replace(tzinfo=None, microsecond=0)


def _local_text(iso, zone):
    """_local_time as the text a CSV holds (YYYY-MM-DD HH:MM:SS). The common case straight: the
    zone's wall clock from its date and time (no naive copy: replace is the costly step, and an
    aware isoformat asks the zone its offset again)."""
    if type(iso) is str and iso:
        try:
            value = datetime.fromisoformat(iso)
        except ValueError:
            value = None
        if value is not None:
            if value.tzinfo is not None:
                value = value.astimezone(zone)
            if value.year >= 1000:  # isoformat is strftime's text then
                return value.date().isoformat() + " " + value.time().isoformat()[:8]
    value = _local_time(iso, zone)
    if type(value) is datetime and value.year >= 1000:  # isoformat is strftime's text, faster
        return value.isoformat(" ")
    return value.strftime("%Y-%m-%d %H:%M:%S") if isinstance(value, datetime) else value


def _same(text):
    return text


def _remembered(convert, limit=4096):
    """convert(iso, zone) remembering what it made of each text (at most `limit` at a time), for
    one export (one zone): the visits a phone sent in one sync share their received_at, and a
    time is converted once rather than per row."""
    memo = {}

    def when(iso, zone):
        if type(iso) is not str:
            return convert(iso, zone)
        hit = memo.get(iso)
        if hit is None:
            if len(memo) >= limit:
                memo.clear()
            hit = memo[iso] = convert(iso, zone)
        return hit
    return when


def date_writers(book, cell=_same):
    """(day, time) converters for one export into `book`: Excel dates and times, or (a book that
    wants `dates_as_text`, the CSVs) the same as ISO text, made once rather than converted back.
    A time comes as `cell` makes it (a CSV's text: tabular.csv_cell)."""
    if getattr(book, "dates_as_text", False):
        convert = _local_text if cell is _same else (lambda iso, zone: cell(_local_text(iso, zone)))
        return _same, _remembered(convert)
    return _day, _remembered(_local_time)


class _Cells(dict):
    """key -> make(key), made when first asked (a dict lookup after that)."""

    def __init__(self, make):
        super().__init__()
        self._make = make

    def __missing__(self, key):
        value = self[key] = self._make(key)
        return value


def zip_name(doc, name):
    """Where an attachment lies in the attachments ZIP (DESIGN): <household>/<date>-<uuid>-<name>."""
    return f"{doc['household_id']}/{submissions.day_of(doc)}-{doc['uuid']}-{name}"


def shipped(doc, files_dir):
    """The attachments of `doc` the attachments ZIP holds: arrived, and their file is there."""
    return {a["name"] for a in doc.get("attachments") or []
            if a.get("received") and os.path.isfile(attachments.path(files_dir, doc["uuid"], a["name"]))}


TEXT_TYPES = ("text", "textarea", "string", "barcode")
SELECT_TYPES = ("select_one", "select_multiple")
NUMBER_TYPES = ("integer", "decimal")
NUMBERS = (int, float)


# What each column does with its answer, decided once per export (_plan) rather than per cell.
TEXT, NUMBER, SELECT, DAY, FILE, GEO, OTHER = range(7)


def _code(kind):
    if kind in TEXT_TYPES:
        return TEXT
    if kind in NUMBER_TYPES:
        return NUMBER
    if kind in SELECT_TYPES:
        return SELECT
    if kind == "date":
        return DAY
    if kind in present.FILE_TYPES:
        return FILE
    if kind == "geopoint":
        return GEO
    return OTHER


def _other(field, value):
    """An answer its column's type does not expect, as text (by the submission's own question)."""
    return present.text(field, value, sep=";")


def _remembering(cell):
    """remember(memo, field, value): a choice answer's labels (present.text) as `cell` makes them
    (a CSV's text, or as they are), kept in `memo` (one per column and form version: choices
    repeat row after row, and the language is the export's throughout). Only a text or a list
    of texts is kept: 0, 0.0 and False are equal keys but read differently."""
    def remember(memo, field, value):
        kind = type(value)
        if kind is str:
            key = value
        elif kind is list and all(type(v) is str for v in value):
            key = tuple(value)
        else:  # not plain choices: read each time
            return cell(present.text(field, value, sep=";"))
        hit = memo.get(key)
        if hit is None:
            hit = memo[key] = cell(present.text(field, value, sep=";"))
        return hit
    return remember


def _select_step(empty):
    """A choice answer's step, the same for both books: its label from the column's memo (a list
    of choices by their tuple), else `remember` makes and keeps it; `empty` for no answer."""
    return (f"if v is None or v == '': add({empty})",
            "elif type(v) is str: t = {m}.get(v); add(t if t is not None else remember({m}, {f}, v))",
            "elif type(v) is list:",
            "    try: t = {m}.get(tuple(v))",
            "    except TypeError: t = None  # not plain choices: remember reads them",
            "    add(t if t is not None else remember({m}, {f}, v))",
            "else: add(remember({m}, {f}, v))")


# How each kind of column turns its answer `v` into a cell (`add` appends one, `extend` three);
# {f} is the question as the submission's own form version asked it, {m} the column's memo of
# choice labels.
_STEPS = {
    TEXT: ("if type(v) is str and v: add(v)",
           "elif v is None or v == '': add(None)",
           "else: add(other({f}, v))"),
    NUMBER: ("if type(v) is int: add(v)",
             "elif v is None or v == '': add(None)",
             "elif type(v) is float: add(int(v) if v.is_integer() and abs(v) < 1e15 else v)",
             "else: add(other({f}, v))"),
    SELECT: _select_step("None"),
    DAY: ("if v is None or v == '': add(None)",
          "elif isinstance(v, str): add(day(v))",
          "else: add(other({f}, v))"),
    FILE: ("if v is None or v == '': add(None)",
           "elif link is not None and isinstance(v, str): add(link(v) or v)",
           "else: add(other({f}, v))"),
    GEO: ("if v is None or v == '': extend(NONE3)",
          "else: extend(point(v))"),
    OTHER: ("if v is None or v == '': add(None)",
            "else: add(other({f}, v))"),
}


# The same for a book that takes each cell as its text (CsvBook.cells_as_text): the step turns the
# answer straight into the text tabular.csv_cells would make of the value above (the commonest
# answers inline, the rest through `cell`), so no second pass over the row's cells is needed;
# the choice memo holds texts, and a date answer is its ISO text as it is.
_TEXT_STEPS = {
    TEXT: ("if type(v) is str and v: add(\"'\" + v if v[0] in risky else v)",
           "elif v is None or v == '': add('')",
           "else: add(cell(other({f}, v)))"),
    NUMBER: ("if type(v) is int: add(str(v))",
             "elif v is None or v == '': add('')",
             "elif type(v) is float: add(str(int(v)) if v.is_integer() and abs(v) < 1e15 else repr(v))",
             "else: add(cell(other({f}, v)))"),
    SELECT: _select_step("''"),
    DAY: ("if v is None or v == '': add('')",
          "elif type(v) is str: add(\"'\" + v if v[0] in risky else v)",
          "elif isinstance(v, str): add(cell(day(v)))",
          "else: add(cell(other({f}, v)))"),
    FILE: ("if v is None or v == '': add('')",
           "elif link is not None and isinstance(v, str): add(cell(link(v) or v))",
           "else: add(cell(other({f}, v)))"),
    GEO: ("if v is None or v == '': extend(EMPTY3)",
          "elif type(v) is dict:",
          "    for v in (v.get('lat'), v.get('lon'), v.get('accuracy')):",
          "        if type(v) is float: add(str(int(v)) if v.is_integer() and abs(v) < 1e15 else repr(v))",
          "        elif type(v) is int: add(str(v))",
          "        else: add(number_text(v))",
          "else: extend(point_texts(v))"),
    OTHER: ("if v is None or v == '': add('')",
            "else: add(cell(other({f}, v)))"),
}


# A help entry's amount (_amount: quantity x price, rounded to fen), the plain numbers straight.
_AMOUNT_STEPS = (
    "q, p = get(qn), get(pn)",
    "if (type(q) is int or type(q) is float) and (type(p) is int or type(p) is float):",
    "    a = round(q * p, 2)",
    "    add(int(a) if type(a) is float and a.is_integer() and abs(a) < 1e15 else a)",
    "else: add(amount(answers, spec))")
_AMOUNT_TEXT_STEPS = (
    "q, p = get(qn), get(pn)",
    "if (type(q) is int or type(q) is float) and (type(p) is int or type(p) is float):",
    "    a = round(q * p, 2)",
    "    add(str(a) if type(a) is int else str(int(a)) if a.is_integer() and abs(a) < 1e15 else repr(a))",
    "else: add(cell(amount(answers, spec)))")


def _plan(fields, own, as_text=False, *, rows=False, amount=None):
    """The columns of `fields` as one function (answers, link, day, out) -> out, for submissions
    of one form version (`own`: {name: that version's question}, by which an answer is read;
    a question it lacks is read as `fields` has it). Made once per export and version: each
    column's step chosen by its type here rather than per cell, written out one after another
    (no loop, no per-cell dispatch: the hot path of every export). With `as_text`, each cell is
    its CSV text (_TEXT_STEPS; `day` must leave a date's text as it is).

    With `rows`, a repeat's rows instead: (entries, first, link, day, append) appends a row per
    entry that is a dict: `first`, the entry's number, its cells, and (`amount`: the help spec)
    the entry's amount (_amount, the common numbers straight)."""
    if rows:
        lines = ["def cells(entries, first, link, day, append):",
                 "    for i, answers in enumerate(entries, 1):",
                 "        if not isinstance(answers, dict):", "            continue",
                 "        out = first + [number(i)]"]
        pad = "        "
    else:
        lines = ["def cells(answers, link, day, out):"]
        pad = "    "
    lines += [pad + "get = answers.get", pad + "add = out.append", pad + "extend = out.extend"]
    scope = {"other": _other, "point": _point, "NONE3": (None, None, None),
             "EMPTY3": ("", "", ""), "risky": RISKY_CHARS, "cell": csv_cell,
             "point_texts": _point_texts, "number_text": _number_text,
             "remember": _remembering(csv_cell if as_text else _same),
             "number": str if as_text else _same, "amount": _amount, "spec": amount,
             "qn": (amount or {}).get("quantity"), "pn": (amount or {}).get("price")}
    steps = _TEXT_STEPS if as_text else _STEPS
    for i, f in enumerate(fields):
        scope[f"f{i}"], scope[f"n{i}"], scope[f"m{i}"] = own.get(f["name"], f), f["name"], {}
        name = repr(f["name"]) if type(f["name"]) is str else f"n{i}"  # a literal when it can be
        lines.append(f"{pad}v = get({name})")
        lines += [pad + step.format(f=f"f{i}", m=f"m{i}") for step in steps[_code(f["type"])]]
    if rows:
        if amount is not None:
            lines += [pad + line for line in (_AMOUNT_TEXT_STEPS if as_text else _AMOUNT_STEPS)]
        lines.append(pad + "append(out)")
    else:
        lines.append("    return out")
    exec(compile("\n".join(lines), "<export columns>", "exec"), scope)  # noqa: S102 - our own text
    return scope["cells"]


def _point(point):
    """A geopoint's three cells (latitude, longitude, accuracy): numbers, or empty."""
    if not isinstance(point, dict):
        return (None, None, None)
    out = []
    for part, _zh, _en in GEO_PARTS:
        v = point.get(part)
        out.append(present.number(v) if type(v) in NUMBERS or (isinstance(v, (int, float))
                                                                and not isinstance(v, bool)) else None)
    return out


def _point_texts(point):
    """_point as a CSV's three texts (csv_cells of it)."""
    return csv_cells(_point(point))


def _number_text(v):
    """One part of a point as its CSV text, as _point reads it: a number as a number (not a
    plain int or float: the text plan has those itself), anything else empty."""
    return csv_cell(present.number(v)) if isinstance(v, (int, float)) and not isinstance(v, bool) else ""


def _nested_entries(answers, path):
    """[("1.2", entry)]: the entries of a repeat inside repeats, numbered by their place."""
    found = [("", answers)]
    for name in path:
        found = [(f"{index}.{i}" if index else str(i), entry)
                 for index, parent in found
                 for i, entry in enumerate(parent.get(name) if isinstance(parent.get(name), list) else [], 1)
                 if isinstance(entry, dict)]
    return found


def _names():
    return ({v["id"]: v["name"] for v in villages.list_all()},
            users.display_names())


def _own_only(user):
    """A cadre exports only what is theirs (their visits, their paired households): another
    cadre's income figures, risk notes, photos and signatures are not theirs to take away.
    Supervisors and admins export their whole scope. None: no narrowing."""
    return None if users.is_reviewer(user) else user.id


def submission_keys(user, filters, db=None):
    """Per village in scope, the uuids the filters keep, oldest day first: [(village_id, [uuid])]."""
    out = []
    own = _own_only(user)
    keep = filters.keep if own is None else (lambda d: d.get("cadre_id") == own and filters.keep(d))
    for vid in villages.ids_in_scope(user, db, filters.village):
        keys = submissions.scan(vid, lambda d: (submissions.day_of(d), d.get("created_at") or "", d["uuid"]),
                                keep, db)
        keys.sort()
        out.append((vid, [k[2] for k in keys]))
    return out


def help_spec(cols):
    """The form's consumption-help repeat ({"repeat", "quantity", "price"}), newest version first."""
    for definition in cols.versions.values():
        spec = ((definition or {}).get("effects") or {}).get("help_value")
        if isinstance(spec, dict) and spec.get("repeat"):
            return spec
    return None


def _amount(entry, spec):
    """Quantity x price of one help entry, in yuan (as effects.help_value adds them up)."""
    q, p = entry.get(spec["quantity"]), entry.get(spec["price"])
    if (type(q) in NUMBERS or isinstance(q, (int, float)) and not isinstance(q, bool)) \
            and (type(p) in NUMBERS or isinstance(p, (int, float)) and not isinstance(p, bool)):
        return present.number(round(q * p, 2))
    return None


AMOUNT = ("amount", "金额（元）", "Amount (yuan)")


def write_submissions(book, user, filters, registry, db=None, *, files_dir=None):
    """The submissions sheet and one sheet per repeat; returns the number of submissions written.
    Days are Excel dates and times the county's local time; the help repeat gets an amount column
    (quantity x price); with `files_dir` (an export bundled with its attachments) a photo or
    signature cell links to its file in the bundle, by the attachments ZIP's own names.

    A book that takes cells as text (the CSVs) gets each cell as its text, made in the same pass
    that reads the answer (_plan(as_text=True)); what repeats row after row (names, villages,
    states, times) is turned into its text once."""
    as_text = getattr(book, "cells_as_text", False)
    sheet = book.text_sheet if as_text else book.sheet
    one = csv_cell if as_text else _same  # a value as the book takes it
    cols = FormColumns(registry, filters.form)
    labels, names = _headers(cols.top)
    main = sheet("submissions", [tr(zh, en) for _n, zh, en in FIXED] + labels,
                 [n for n, _zh, _en in FIXED] + names)
    spec = help_spec(cols)
    repeats = []  # (name, path if nested, questions, append, is help): decided once, not per visit
    for name, repeat in cols.repeats.items():
        r_labels, r_names = _headers(repeat["children"])
        is_help = spec is not None and name == spec["repeat"]
        if is_help:
            r_labels, r_names = r_labels + [tr(AMOUNT[1], AMOUNT[2])], r_names + [AMOUNT[0]]
        append = sheet(
            name, [tr("记录编号", "Record id"), tr("户编号", "Household id"), tr("序号", "No.")] + r_labels,
            ["submission_uuid", "household_id", "index"] + r_names)
        repeats.append((name, repeat["path"] if len(repeat["path"]) > 1 else None,
                        repeat["children"], append, is_help))
    village_names, user_names = _names()
    zone = clock.zone()
    day, when = date_writers(book, one)
    names = _Cells(lambda key: one(user_names.get(key, key)))  # account -> its name's cell
    accounts, versions, empty = _Cells(one), _Cells(one), one(None)  # cells of what repeats

    def layout(version):
        """The plans for submissions of one form version: the submissions sheet's, and each
        repeat's with the sheet it goes to (those nested in repeats apart, their entries found
        by path)."""
        flat, nested = [], []
        for name, path, children, append, is_help in repeats:
            if path is not None:
                nested.append((path, _plan(children, {}, as_text), append))
                continue
            own_repeat = cols.field(version, name, cols.repeats[name]["field"])
            own = {c["name"]: c for c in own_repeat.get("fields") or []}
            flat.append((name, _plan(children, own, as_text, rows=True, amount=spec if is_help else None),
                         append))
        return _plan(cols.top, cols.by_version.get(version) or {}, as_text), flat, nested

    layouts = {}  # version -> layout(version), made when a submission of that version comes
    states = {}
    count = 0
    for vid, uuids in submission_keys(user, filters, db):
        heads = dict(households.scan(vid, lambda h: (h["id"], one(h.get("head_name", ""))), db=db))
        village, vid_cell, households_ = one(village_names.get(vid, vid)), one(vid), _Cells(one)
        for doc in submissions.each_stored(vid, uuids, db):
            version = doc.get("form_version")
            review = doc.get("review") or {}
            answers = doc.get("answers") or {}
            uuid, hid, cadre = doc["uuid"], doc["household_id"], doc.get("cadre_id")
            link = None
            if files_dir is not None:
                arrived = shipped(doc, files_dir)

                def link(value, doc=doc, arrived=arrived):
                    return Link(zip_name(doc, value), value) if value in arrived else None
            state = review_state(doc)
            if state not in states:
                states[state] = one(state_label(state))
            ids = [one(uuid), households_[hid]]  # which every repeat row starts with too
            comment, corrects = review.get("comment"), doc.get("supersedes")
            first = ids + [heads.get(hid, ""), vid_cell, village, accounts[cadre], names[cadre],
                           one(day(submissions.day_of(doc))), when(doc.get("created_at"), zone),
                           when(doc.get("received_at"), zone), versions[version], states[state],
                           one(comment) if comment else empty, names[review.get("by")],
                           when(review.get("at"), zone), empty if corrects is None else one(corrects)]
            plans = layouts.get(version)
            if plans is None:
                plans = layouts[version] = layout(version)
            top, flat, nested = plans
            main(top(answers, link, day, first))
            count += 1
            if not answers:
                continue
            for name, rows, append in flat:
                entries = answers.get(name)
                if isinstance(entries, list):
                    rows(entries, ids, link, day, append)
            for path, plan, append in nested:
                for index, entry in _nested_entries(answers, path):
                    append(plan(entry, link, day, ids + [one(index)]))
    return count


def about_rows(what, filters, user, count, *, form_title=None, bundled=False, submissions_=True):
    """The first sheet of an export: what it holds, under which filters, made when and by whom."""
    village_names, user_names = _names()
    rows = [[tr("导出内容", "Export"), what]]
    if form_title:
        rows.append([tr("表单", "Form"), form_title])
    for key, zh, en, value in (
            ("village", "村", "Village", village_names.get(filters.village, filters.village)
             if filters.village else tr("全部（权限内）", "All (in your scope)")),
            ("state", "审核状态", "Review state", None if not submissions_ else
             state_label(filters.state) if filters.state else tr("全部", "All")),
            ("cadre", "干部", "Cadre", user_names.get(filters.cadre, filters.cadre) if filters.cadre else None),
            ("from", "起始日期", "From", _day(filters.date_from) if filters.date_from else None),
            ("to", "截止日期", "To", _day(filters.date_to) if filters.date_to else None),
            ("household", "农户", "Household", filters.household)):
        if value is not None:
            rows.append([tr(zh, en), value, key])
    zone = clock.zone()
    rows += [[tr("导出时间", "Exported at"), _local_time(clock.now_iso(), zone)],
             [tr("时区", "Time zone"), str(zone.key)],
             [tr("导出人", "Exported by"), user_names.get(user.id, user.id)],
             [tr("记录数", "Records"), count]]
    rows.append([tr("日期和时间", "Dates and times"),
                 tr("均为上述时区的当地时间，以 Excel 日期格式保存。",
                    "Local time in the zone above, stored as Excel dates.")])
    if bundled:
        rows.append([tr("附件", "Attachments"),
                     tr("照片和签名单元格链接到本压缩包中的文件：<户编号>/<日期>-<记录编号>-<文件名>。",
                        "Photo and signature cells link to files in this ZIP: "
                        "<household>/<date>-<uuid>-<name>.")])
    return rows


# ---- the household ledger ---------------------------------------------------------------------------

HOUSEHOLD_COLUMNS = (
    ("id", "户编号", "Household id"), ("village_id", "村编号", "Village id"), ("village", "村", "Village"),
    ("head_name", "户主", "Head of household"), ("category", "类别", "Category"),
    ("population", "家庭人口", "Population"), ("group", "组别", "Group"), ("address", "地址", "Address"),
    ("phone", "电话", "Phone"), ("cadres", "结对干部", "Paired cadres"),
    ("pv_stage", "光伏进度", "PV stage"), ("pv_capacity_kw", "光伏容量（千瓦）", "PV capacity (kW)"),
    ("last_visit_date", "最近走访", "Last visit"),
    ("ledger_state", "台账状态", "Ledger state"), ("plot_codes", "地块编码", "Plot codes"),
    ("plots", "地块数", "Plots"), ("area_mu", "承包面积（亩）", "Contracted area (mu)"),
    ("contract_nos", "合同编号", "Contract numbers"), ("consultants", "四至见证人", "Consultants"),
    ("publicised_on", "公示日期", "Publicised on"), ("signed_on", "签字日期", "Signed on"),
    ("away_at", "外出地点", "Away at"), ("objection", "异议", "Objection"),
    ("confirmed_remote", "远程确认", "Confirmed from afar"),
    ("version", "版本", "Version"), ("updated_at", "更新时间", "Updated at"),
)
MEMBER_COLUMNS = (
    ("household_id", "户编号", "Household id"), ("head_name", "户主", "Head of household"),
    ("index", "序号", "No."), ("name", "姓名", "Name"), ("relation", "与户主关系", "Relation"),
    ("sex", "性别", "Sex"), ("birth_year", "出生年份", "Year of birth"), ("health", "健康状况", "Health"),
    ("schooling", "文化程度", "Schooling"), ("work", "务工情况", "Work"),
    ("id_card", "身份证号码", "ID number"), ("born", "出生年月", "Born"), ("phone", "联系电话", "Phone"),
    ("work_place", "外出务工地", "Working away at"),
)
PLOT_COLUMNS = (
    ("household_id", "户编号", "Household id"), ("head_name", "户主", "Head of household"),
    ("index", "序号", "No."), ("name", "地块名称", "Plot"), ("area_mu", "面积（亩）", "Area (mu)"),
    ("east", "东至", "East"), ("west", "西至", "West"), ("south", "南至", "South"),
    ("north", "北至", "North"), ("contract_signed", "承包合同", "Contract signed"),
    ("code", "地块编码", "Plot code"), ("contract_no", "合同编号", "Contract no."),
    ("state", "地块状态", "Plot state"), ("note", "备注", "Note"),
)


def _sheet(book, name, columns):
    return book.sheet(name, [tr(zh, en) for _n, zh, en in columns], [n for n, _zh, _en in columns])


def _ledger_cells(h):
    """The land-contract register's columns of one household."""
    lg = h.get("ledger") if isinstance(h.get("ledger"), dict) else {}
    plots = h.get("plots") or []
    area = sum(p.get("area_mu") or 0 for p in plots)
    remote = ""
    if lg.get("state") == "confirmed_remote" or lg.get("confirmed_by"):
        remote = f"{lg.get('confirmed_by', '')} {show(lg['confirmed_at']) if lg.get('confirmed_at') else ''}".strip()
    return [ledger_state_label(lg.get("state")), "、".join(p["code"] for p in plots if p.get("code")) or None,
            len(plots), present.number(round(area, 4)) if plots else None,
            "、".join(sorted({p["contract_no"] for p in plots if p.get("contract_no")})) or None,
            "、".join(lg.get("consultants") or []) or None, lg.get("publicised_on"), lg.get("signed_on"),
            lg.get("away_at"), lg.get("objection"), remote or None]


def write_households(book, user, village_id=None, db=None, *, full_ids=False):
    """Households, members and land plots, a sheet each; returns the number of households. ID
    numbers are masked unless `full_ids` (an admin's explicit, audited request)."""
    main = _sheet(book, "households", HOUSEHOLD_COLUMNS)
    members = _sheet(book, "members", MEMBER_COLUMNS)
    plots = _sheet(book, "plots", PLOT_COLUMNS)
    village_names, user_names = _names()
    zone = clock.zone()
    count = 0
    own = _own_only(user)
    for vid in villages.ids_in_scope(user, db, village_id):
        for h in households.in_village(vid, db):
            if own is not None and own not in (h.get("cadre_ids") or ()):
                continue
            pv = h.get("pv_status") or {}
            main([h["id"], vid, village_names.get(vid, vid), h.get("head_name"),
                  category_label(h.get("category")), h.get("population"), h.get("group"),
                  h.get("address"), h.get("phone"),
                  "、".join(user_names.get(c, c) for c in h.get("cadre_ids") or []),
                  pv_stage_label(pv.get("stage")) if pv else None,
                  present.number(pv.get("capacity_kw")) if pv.get("capacity_kw") is not None else None,
                  _day(h.get("last_visit_date"))] + _ledger_cells(h)
                 + [h.get("version"), _local_time(h.get("updated_at"), zone)])
            for i, m in enumerate(h.get("members") or [], 1):
                card = m.get("id_card") or None
                members([h["id"], h.get("head_name"), i, m.get("name"), m.get("relation"),
                         sex_label(m.get("sex")), m.get("birth_year"), m.get("health"),
                         m.get("schooling"), m.get("work"),
                         card if full_ids or not card else idcard.mask(card), m.get("born"),
                         m.get("phone"), m.get("work_place")])
            for i, p in enumerate(h.get("plots") or [], 1):
                plots([h["id"], h.get("head_name"), i, p.get("name"),
                       present.number(p.get("area_mu")) if p.get("area_mu") is not None else None,
                       p.get("east"), p.get("west"), p.get("south"), p.get("north"),
                       tr(*words.signed(p.get("contract_signed"))),
                       p.get("code"), p.get("contract_no"),
                       ledger_state_label(p.get("state")) if p.get("state") else None, p.get("note")])
            count += 1
    return count


# ---- attachments --------------------------------------------------------------------------------------


class _Sink:
    """A write-only file for zipfile that hands out what was written: the ZIP goes to the client as
    it is made, never through a temporary copy (eight exports at once wrote 920 MB to /tmp)."""

    def __init__(self):
        self._parts = []

    def write(self, data):
        self._parts.append(bytes(data))
        return len(data)

    def flush(self):
        pass

    def take(self):
        out, self._parts = b"".join(self._parts), []
        return out


CHUNK = 256 * 1024


def attachment_chunks(user, filters, files_dir, db=None):
    """Photos and signatures that have arrived, as <household>/<date>-<uuid>-<name> in a ZIP
    (stored, not deflated: JPEG and PNG are compressed already), yielded in pieces of about CHUNK
    bytes as each file is read: memory and disk stay flat however many photos there are."""
    sink = _Sink()
    with zipfile.ZipFile(sink, "w", zipfile.ZIP_STORED, allowZip64=True) as zf:
        for vid, uuids in submission_keys(user, filters, db):
            for doc in submissions.each(vid, uuids, db):
                for a in doc.get("attachments") or []:
                    path = attachments.path(files_dir, doc["uuid"], a["name"])
                    if not a.get("received"):
                        continue
                    try:
                        src = open(path, "rb")
                    except (FileNotFoundError, IsADirectoryError):
                        continue
                    with src:
                        info = zipfile.ZipInfo.from_file(
                            path, f"{doc['household_id']}/{submissions.day_of(doc)}-{doc['uuid']}-{a['name']}")
                        with zf.open(info, "w") as dest:
                            while block := src.read(CHUNK):
                                dest.write(block)
                                yield sink.take()
        yield sink.take()
    yield sink.take()  # the central directory, written at close


def write_attachments(fileobj, user, filters, files_dir, db=None):
    """The same ZIP into a file (the CLI and tests); returns the number of bytes written."""
    n = 0
    for part in attachment_chunks(user, filters, files_dir, db):
        fileobj.write(part)
        n += len(part)
    return n


def note_full_ids(actor, village, db=None):
    """An admin's export of whole ID numbers (households.xlsx?ids=full) is on record."""
    (db or get_store()).write(lambda tx: audit.record(tx, actor, "export_full_ids", village or "*",
                                                      {"export": "households.xlsx"}))


def add_attachments(zf, user, filters, files_dir, db=None):
    """The attachments ZIP's files, added to an open ZipFile (the bundle puts the workbook beside
    them, so its links resolve once unpacked). Returns the number of files."""
    count = 0
    for vid, uuids in submission_keys(user, filters, db):
        for doc in submissions.each(vid, uuids, db):
            for a in doc.get("attachments") or []:
                path = attachments.path(files_dir, doc["uuid"], a["name"])
                if not a.get("received") or not os.path.isfile(path):
                    continue
                zf.write(path, zip_name(doc, a["name"]))
                count += 1
    return count
