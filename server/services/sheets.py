"""What the exports hold, sheet by sheet, written row by row into a book (tabular.XlsxBook or
CsvBook): submissions of one form (a row each, one sheet per repeat keyed by the submission's uuid),
the household ledger (households, members, land plots with their four boundaries), and the
attachments of a form's submissions as a ZIP. Everything in the caller's scope; times in
JIEDUI_TIMEZONE; labels in the page's language."""

import zipfile

from server.core.clock import show
from server.core.i18n import category_label, tr
from server.records import attachments, households, submissions, users, villages
from server.services import present
from server.forms.labels import pv_stage_label, review_state, sex_label, state_label
from server.core import words

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


def _cells(fields, answers, own):
    """The values of `fields` in `answers`, each read by the submission's own version (`own`)."""
    out = []
    for f in fields:
        value = (answers or {}).get(f["name"])
        if f["type"] == "geopoint":
            point = value if isinstance(value, dict) else {}
            out.extend(present.number(point.get(part)) if isinstance(point.get(part), (int, float)) else None
                       for part, _zh, _en in GEO_PARTS)
        elif value is None or value == "":
            out.append(None)
        elif f["type"] in ("integer", "decimal") and isinstance(value, (int, float)) \
                and not isinstance(value, bool):
            out.append(present.number(value))
        else:
            out.append(present.text(own(f), value, sep=";"))
    return out


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


def submission_keys(user, filters, db=None):
    """Per village in scope, the uuids the filters keep, oldest day first: [(village_id, [uuid])]."""
    out = []
    for vid in villages.ids_in_scope(user, db, filters.village):
        keys = submissions.scan(vid, lambda d: (submissions.day_of(d), d.get("created_at") or "", d["uuid"]),
                                filters.keep, db)
        keys.sort()
        out.append((vid, [k[2] for k in keys]))
    return out


def write_submissions(book, user, filters, registry, db=None):
    """The submissions sheet and one sheet per repeat; returns the number of submissions written."""
    cols = FormColumns(registry, filters.form)
    labels, names = _headers(cols.top)
    main = book.sheet("submissions", [tr(zh, en) for _n, zh, en in FIXED] + labels,
                      [n for n, _zh, _en in FIXED] + names)
    repeat_sheets = {}
    for name, repeat in cols.repeats.items():
        r_labels, r_names = _headers(repeat["children"])
        repeat_sheets[name] = book.sheet(
            name, [tr("记录编号", "Record id"), tr("户编号", "Household id"), tr("序号", "No.")] + r_labels,
            ["submission_uuid", "household_id", "index"] + r_names)
    village_names, user_names = _names()
    count = 0
    for vid, uuids in submission_keys(user, filters, db):
        heads = {h["id"]: h.get("head_name", "") for h in households.in_village(vid, db)}
        for doc in submissions.each(vid, uuids, db):
            version = doc.get("form_version")
            review = doc.get("review") or {}
            answers = doc.get("answers") or {}
            main([doc["uuid"], doc["household_id"], heads.get(doc["household_id"], ""), vid,
                  village_names.get(vid, vid), doc.get("cadre_id"),
                  user_names.get(doc.get("cadre_id"), doc.get("cadre_id")),
                  submissions.day_of(doc), show(doc.get("created_at"), seconds=True),
                  show(doc.get("received_at"), seconds=True), version,
                  state_label(review_state(doc)), review.get("comment") or None,
                  user_names.get(review.get("by"), review.get("by")),
                  show(review.get("at"), seconds=True) if review.get("at") else None,
                  doc.get("supersedes")]
                 + _cells(cols.top, answers, lambda f: cols.field(version, f["name"], f)))
            for name, repeat in cols.repeats.items():
                if len(repeat["path"]) > 1:
                    for index, entry in _nested_entries(answers, repeat["path"]):
                        repeat_sheets[name]([doc["uuid"], doc["household_id"], index]
                                            + _cells(repeat["children"], entry, lambda f: f))
                    continue
                entries = answers.get(name)
                if not isinstance(entries, list):
                    continue
                own_repeat = cols.field(version, name, repeat["field"])
                own_children = {c["name"]: c for c in own_repeat.get("fields") or []}
                for i, entry in enumerate(entries, 1):
                    if isinstance(entry, dict):
                        repeat_sheets[name]([doc["uuid"], doc["household_id"], i]
                                            + _cells(repeat["children"], entry,
                                                     lambda f: own_children.get(f["name"], f)))
            count += 1
    return count


# ---- the household ledger ---------------------------------------------------------------------------

HOUSEHOLD_COLUMNS = (
    ("id", "户编号", "Household id"), ("village_id", "村编号", "Village id"), ("village", "村", "Village"),
    ("head_name", "户主", "Head of household"), ("category", "类别", "Category"),
    ("population", "家庭人口", "Population"), ("group", "组别", "Group"), ("address", "地址", "Address"),
    ("phone", "电话", "Phone"), ("cadres", "结对干部", "Paired cadres"),
    ("pv_stage", "光伏进度", "PV stage"), ("pv_capacity_kw", "光伏容量（千瓦）", "PV capacity (kW)"),
    ("last_visit_date", "最近走访", "Last visit"), ("version", "版本", "Version"),
    ("updated_at", "更新时间", "Updated at"),
)
MEMBER_COLUMNS = (
    ("household_id", "户编号", "Household id"), ("head_name", "户主", "Head of household"),
    ("index", "序号", "No."), ("name", "姓名", "Name"), ("relation", "与户主关系", "Relation"),
    ("sex", "性别", "Sex"), ("birth_year", "出生年份", "Year of birth"), ("health", "健康状况", "Health"),
    ("schooling", "文化程度", "Schooling"), ("work", "务工情况", "Work"),
)
PLOT_COLUMNS = (
    ("household_id", "户编号", "Household id"), ("head_name", "户主", "Head of household"),
    ("index", "序号", "No."), ("name", "地块名称", "Plot"), ("area_mu", "面积（亩）", "Area (mu)"),
    ("east", "东至", "East"), ("west", "西至", "West"), ("south", "南至", "South"),
    ("north", "北至", "North"), ("contract_signed", "承包合同", "Contract signed"),
)


def _sheet(book, name, columns):
    return book.sheet(name, [tr(zh, en) for _n, zh, en in columns], [n for n, _zh, _en in columns])


def write_households(book, user, village_id=None, db=None):
    """Households, members and land plots, a sheet each; returns the number of households."""
    main = _sheet(book, "households", HOUSEHOLD_COLUMNS)
    members = _sheet(book, "members", MEMBER_COLUMNS)
    plots = _sheet(book, "plots", PLOT_COLUMNS)
    village_names, user_names = _names()
    count = 0
    for vid in villages.ids_in_scope(user, db, village_id):
        for h in households.in_village(vid, db):
            pv = h.get("pv_status") or {}
            main([h["id"], vid, village_names.get(vid, vid), h.get("head_name"),
                  category_label(h.get("category")), h.get("population"), h.get("group"),
                  h.get("address"), h.get("phone"),
                  "、".join(user_names.get(c, c) for c in h.get("cadre_ids") or []),
                  pv_stage_label(pv.get("stage")) if pv else None,
                  present.number(pv.get("capacity_kw")) if pv.get("capacity_kw") is not None else None,
                  h.get("last_visit_date"), h.get("version"), show(h.get("updated_at"), seconds=True)])
            for i, m in enumerate(h.get("members") or [], 1):
                members([h["id"], h.get("head_name"), i, m.get("name"), m.get("relation"),
                         sex_label(m.get("sex")), m.get("birth_year"), m.get("health"),
                         m.get("schooling"), m.get("work")])
            for i, p in enumerate(h.get("plots") or [], 1):
                plots([h["id"], h.get("head_name"), i, p.get("name"),
                       present.number(p.get("area_mu")) if p.get("area_mu") is not None else None,
                       p.get("east"), p.get("west"), p.get("south"), p.get("north"),
                       tr(*words.signed(p.get("contract_signed")))])
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
