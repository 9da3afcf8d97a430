"""The household assistance profile (一户一档): plain data in, an A4 PDF out.

`build_profile_context` turns stored documents into a JSON-able dict (labels resolved, phones masked,
photos named by path, times in JIEDUI_TIMEZONE); `render_profile_pdf` turns that dict into PDF bytes
with WeasyPrint. The split lets the server build contexts next to the store and render them in
worker processes, and lets the cache key be a digest of the context itself. Nothing here imports
Flask or the store.

Forms are data here too: each submission is read with the definition of its own form version, and
what a form contributes to the profile is its `profile:` block (see server/effects.py) — the
section it prints in (visit timeline or PV), the date it prints under, the answers shown in order,
and the income sources. Photos and signatures are every photo/signature question of the form;
follow-ups and the answers that close them come from the form's `effects:` block.
"""

import base64
import functools
import hashlib
import io
import json
import logging
import os
import re

import jinja2
from markupsafe import Markup, escape

from server.core import clock, images
from server.forms import effects
from server.core.i18n import CATEGORY_LABELS, PV_STAGE_WORDS
from server.core.text import NOT_PRINTABLE_RE
from server.records import submissions as submission_records
from server.core import words

log = logging.getLogger(__name__)
# WeasyPrint logs every rendering step at INFO: seven lines per profile would drown the server log.
logging.getLogger("weasyprint.progress").setLevel(logging.WARNING)

HERE = os.path.dirname(os.path.abspath(__file__))
TEMPLATE_DIR = os.path.join(os.path.dirname(HERE), "templates", "print")
LANGS = ("zh", "en")
MAX_PHOTOS = 9          # most recent photos shown; older ones are counted, not printed
MAX_SIGNATURES = 2
MAX_INCOME_YEARS = 8    # the chart and table show the latest years
MAX_REPEAT_ROWS = 50    # entries of one repeat printed in a visit; the rest are counted
PHOTO_PX = 520          # longest side of a printed photo (about 150 dpi at 88 mm)
SIGNATURE_PX = 360
COLOURS = ("#1f4e79", "#e69f00", "#009e73", "#f0e442", "#cc79a7", "#56b4e9", "#d55e00", "#999999")
NOT_PRINTED_TYPES = ("photo", "signature", "note", "group")

CATEGORY = CATEGORY_LABELS
SEX = {"male": ("男", "Male"), "female": ("女", "Female")}
YES_NO = {"yes": ("是", "Yes"), "no": ("否", "No"), True: ("是", "Yes"), False: ("否", "No")}
# What a follow-up's state is called when the closing form's own labels are not at hand.
FOLLOWUP_STATES = {"open": ("未办结", "Open"), "done": ("已办结", "Done"),
                   "in_progress": ("办理中", "In progress"), "dropped": ("不再办理", "Dropped")}

# Every fixed text of the profile, (zh, en). Form fields and choices take their labels from the forms.
TEXTS = {
    "title": ("结对帮扶一户一档", "Household assistance profile"),
    "head": ("户主", "Head of household"),
    "household_id": ("户编号", "Household ID"),
    "village": words.pair("village"),
    "township": words.pair("township"),
    "county": words.pair("county"),
    "group": words.pair("group"),
    "address": words.pair("address"),
    "phone": words.pair("phone"),
    "category": ("户类别", "Category"),
    "population": ("家庭人口", "Household size"),
    "persons": ("人", "persons"),
    "record_version": ("档案版本", "Record version"),
    "updated_at": ("更新时间", "Updated"),
    "scan_hint": ("扫码查看电子档案", "Scan for the online record"),
    "basic": ("基本情况", "Basic facts"),
    "members": ("家庭成员", "Household members"),
    "name": words.pair("name"),
    "relation": ("与户主关系", "Relation"),
    "sex": ("性别", "Sex"),
    "birth_year": ("出生年份", "Born"),
    "age": ("岁", "y"),
    "health": ("健康状况", "Health"),
    "schooling": ("文化程度/在学", "Schooling"),
    "work": ("务工/就业", "Work"),
    "no_members": ("未登记家庭成员。", "No members recorded."),
    "plots": ("承包地块（四至）", "Land plots (four boundaries)"),
    "plot": ("地块", "Plot"),
    "area_mu": ("面积（亩）", "Area (mu)"),
    "east": ("东至", "East"),
    "west": ("西至", "West"),
    "south": ("南至", "South"),
    "north": ("北至", "North"),
    "contract": ("合同", "Contract"),
    "signed": ("已签", "Signed"),
    "unsigned": ("未签", "Not signed"),
    "total": ("合计", "Total"),
    "no_plots": ("未登记承包地。", "No land plots recorded."),
    "cadres": ("结对帮扶干部", "Paired cadres"),
    "unit": ("派出单位", "Sending unit"),
    "no_cadres": ("尚未结对。", "Not paired yet."),
    "income": ("家庭收入（元）", "Household income (yuan)"),
    "year": ("年份", "Year"),
    "per_capita": ("人均", "Per person"),
    "visit_of": ("依据走访", "From visit"),
    "income_note": ("每年取最近一次走访的收入数据。", "Each year uses its latest visit."),
    "income_more": ("共 {n} 年，显示最近 {m} 年。", " {n} years recorded; the latest {m} shown."),
    "no_income": ("走访中尚无收入数据。", "No income recorded in visits yet."),
    "visits": ("走访记录", "Visit timeline"),
    "visit_count": ("共 {n} 条记录", "{n} records"),
    "no_visits": ("尚无走访记录。", "No visits yet."),
    "due": ("（期限 {date}）", " (due {date})"),
    "closed_on": ("{date} 走访确认", "confirmed on the visit of {date}"),
    "more_entries": ("另有 {n} 项未列出。", "{n} more entries not listed."),
    "review": ("审核", "Review"),
    "review_received": ("已接收", "Received"),
    "review_has_issues": ("有问题", "Has issues"),
    "review_approved": words.pair("approved"),
    "pv": ("光伏帮扶", "Photovoltaic (PV) programme"),
    "pv_stage": ("进度", "Stage"),
    "pv_capacity_kw": ("装机容量", "Capacity"),
    "pv_expected_kwh_year": ("预计年发电量", "Expected generation"),
    "pv_funding_mode": ("出资方式", "Funding"),
    "pv_lecture_attended": ("参加宣讲", "Attended the lecture"),
    "pv_lecture_date": ("宣讲日期", "Lecture date"),
    "pv_updated": ("更新时间", "Updated"),
    "pv_latest": ("最近一次登记", "Latest enrollment"),
    "no_pv": ("未参加光伏项目。", "Not enrolled in a PV programme."),
    "photos": ("照片", "Photos"),
    "photos_more": ("共 {n} 张照片，此处显示最近 {m} 张。", "{n} photos in all; the latest {m} shown."),
    "photo_missing": ("照片缺失或无法读取", "Photo missing or unreadable"),
    "signatures": ("签名", "Signatures"),
    "signature_missing": ("签名缺失或无法读取", "Signature missing or unreadable"),
    "printed": ("打印：{who}　{when}", "Printed by {who}, {when}"),
    "page": ("第 {x} 页 / 共 {y} 页", "Page {x} of {y}"),
    "masked_note": ("电话号码已部分隐藏。", "Phone numbers are partly masked."),
    "kw": ("千瓦", "kW"),
    "kwh_year": ("千瓦时/年", "kWh/year"),
    "yuan": ("元", "yuan"),
    "colon": ("：", ": "),
    "list_sep": ("、", ", "),
    "pair_sep": ("，", "; "),
    "gap": ("\u3000\u3000", "\u2003\u2003"),
    "help": ("消费帮扶明细", "Consumption help"),
    "help_channel": ("（{channel}）", " ({channel})"),
    "help_item": ("帮扶内容", "Item"),
    "help_quantity": ("数量", "Quantity"),
    "help_price": ("单价（元）", "Price (yuan)"),
    "help_amount": ("金额（元）", "Amount (yuan)"),
    "date": ("日期", "Date"),
    "signoff_head": ("户主签字", "Head of household"),
    "signoff_cadre": ("帮扶干部签字", "Assisting cadre"),
    "signoff_committee": ("村委会（盖章）", "Village committee (seal)"),
    "signoff_date": ("日期：　　年　　月　　日", "Date: ____ / ____ / ______"),
    "cover_bookmark": ("封面与目录", "Cover and contents"),
    "cover_households": ("户数", "Households"),
    "cover_pages": ("页数", "Pages"),
    "cover_printed": ("打印日期", "Printed on"),
    "cover_by": ("打印人", "Printed by"),
    "cover_failed": ("未能打印", "Could not be printed"),
    "cover_group": ("{group}", "Group {group}"),
    "cover_mine": ("{name} 的结对户", "Households paired with {name}"),
    "index": ("目录", "Contents"),
    "index_page": ("页码", "Page"),
}
PV_KEYS = ("stage", "capacity_kw", "expected_kwh_year", "funding_mode", "lecture_attended",
           "lecture_date")


def _pick(pair, lang):
    return pair[1] if lang == "en" else pair[0]


def _text(obj, lang):
    """A {zh, en} label in `lang`, falling back to the other language, or the value as text."""
    if obj is None:
        return ""
    if isinstance(obj, dict):
        for key in (lang, "zh", "en"):
            if obj.get(key):
                return str(obj[key])
        return next((str(v) for v in obj.values() if v), "")
    return str(obj)


# ---- form definitions ----------------------------------------------------------------------------


class FormLabels:
    """Field and choice labels of one form definition; unknown names come back as given. Top-level
    questions (sections opened) by name, a repeat's own questions as 'repeat.child'."""

    def __init__(self, definition, lang):
        self.lang = lang
        self.definition = definition if isinstance(definition, dict) else {}
        self.fields = {}
        self.top = []     # top-level questions in form order
        self._index(self.definition.get("fields") or [])

    def _index(self, fields, prefix=""):
        if not isinstance(fields, list):
            return
        for f in fields:
            if not isinstance(f, dict) or not isinstance(f.get("name"), str):
                continue
            if f.get("type") == "group" and not prefix:  # a section: its questions are top-level
                self._index(f.get("fields") or [], prefix)
                continue
            self.fields.setdefault(prefix + f["name"], f)
            if not prefix:
                self.top.append(f)
            if f.get("type") == "repeat" and not prefix:
                self._index(f.get("fields") or [], f["name"] + ".")

    @property
    def title(self):
        return _text(self.definition.get("title"), self.lang) or _str(self.definition.get("id"))

    def field(self, name):
        return self.fields.get(name) or {}

    def field_type(self, name):
        return self.field(name).get("type")

    def children(self, name):
        f = self.field(name)
        return [c for c in f.get("fields") or [] if isinstance(c, dict) and isinstance(c.get("name"), str)]

    def label(self, name):
        f = self.field(name)
        if f.get("label"):
            return _text(f["label"], self.lang)
        return name.rsplit(".", 1)[-1]

    def _choices(self, name):
        out = {}
        for c in _list(self.field(name).get("choices")):
            if isinstance(c, dict):
                key = c.get("name")
                if key is not None:
                    out[str(key)] = c.get("label", key)
            elif isinstance(c, (str, int, float)):
                out[str(c)] = str(c)
        return out

    def has_choice(self, name, value):
        return value is not None and str(value) in self._choices(name)

    def choice(self, name, value):
        if value is None or value == "":
            return ""
        if isinstance(value, bool):
            return _pick(YES_NO[value], self.lang)
        found = self._choices(name).get(str(value))
        if found is not None:
            return _text(found, self.lang)
        if value in YES_NO:
            return _pick(YES_NO[value], self.lang)
        return _str(value)

    def choices(self, name, values):
        if values is None or values == "":
            return []
        if not isinstance(values, list):
            values = [values]
        return [self.choice(name, v) for v in values if v not in (None, "")]


class Forms:
    """Definitions by form id and version: the app's registry (`get(id, version)`), or for tests and
    the bench a dict {id: definition} or a list of definitions. A version the registry does not know
    falls back to the form's current one; an unknown form gives None."""

    def __init__(self, source):
        self._registry = source if hasattr(source, "get") and hasattr(source, "ids") else None
        self._by_id = {}
        if self._registry is None:
            if isinstance(source, dict) and "fields" in source and "id" in source:
                source = [source]
            items = source.values() if isinstance(source, dict) else (source or [])
            self._by_id = {d.get("id"): d for d in items if isinstance(d, dict)}
        self._labels = {}

    def get(self, form_id, version=None):
        if self._registry is not None:
            found = self._registry.get(form_id, version) if isinstance(version, int) else None
            return found or self._registry.get(form_id)
        return self._by_id.get(form_id)

    def current(self):
        """The current definition of every form, by id."""
        if self._registry is not None:
            return [self._registry.get(i) for i in self._registry.ids()]
        return list(self._by_id.values())

    def labels(self, form_id, version, lang):
        key = (form_id, version, lang)
        if key not in self._labels:
            self._labels[key] = FormLabels(self.get(form_id, version), lang)
        return self._labels[key]


# ---- small value helpers ---------------------------------------------------------------------------


def mask_phone(phone):
    """138****5678: the first three and last four digits stay; short numbers keep the last two."""
    if not phone:
        return ""
    digits = re.sub(r"\D", "", str(phone))
    if len(digits) >= 8:
        return digits[:3] + "*" * (len(digits) - 7) + digits[-4:]
    if len(digits) >= 3:
        return "*" * (len(digits) - 2) + digits[-2:]
    return "*" * len(digits)


def _number(value):
    """A finite float from an answer, or None for blanks and junk."""
    if value is None or isinstance(value, bool) or value == "":
        return None
    try:
        n = float(value)
    except (TypeError, ValueError):
        return None
    return n if n == n and abs(n) != float("inf") else None


def fmt_number(value, digits=0):
    n = _number(value)
    if n is None:
        return "" if value in (None, "") else _str(value)
    if digits == 0 and abs(n - round(n)) > 1e-9:
        return f"{n:,.2f}".rstrip("0").rstrip(".")
    return f"{n:,.{digits}f}"


def _str(value):
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, (list, dict)):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def _day(value):
    """The local calendar day (JIEDUI_TIMEZONE) of a stored date or time; anything else as given."""
    s = _str(value)
    return clock.local_date(s) or s


def _safe_attachment_path(attachments_dir, uuid, name):
    if not attachments_dir or not isinstance(uuid, str) or not isinstance(name, str):
        return None
    if not name or name in (".", "..") or "/" in name or "\\" in name or "\0" in name:
        return None
    if not uuid or uuid in (".", "..") or "/" in uuid or "\\" in uuid or "\0" in uuid:
        return None
    return os.path.join(attachments_dir, uuid, name)


def _list(value):
    return list(value) if isinstance(value, (list, tuple)) else []


def _answers(sub):
    a = sub.get("answers")
    return a if isinstance(a, dict) else {}


def _answered(value):
    return value not in (None, "", [], {})


def _user_name(user):
    if not user:
        return ""
    if isinstance(user, str):
        return user
    return _str(user.get("display_name") or user.get("name") or user.get("username")
                or user.get("id"))


def _without_unit(label):
    """'工资性收入（元）' -> '工资性收入': the section title already says yuan."""
    return re.sub(r"\s*[（(]\s*(元|yuan)\s*[)）]\s*$", "", label) or label


# ---- one submission, read with its own form version --------------------------------------------


class _Sub:
    """A stored submission with its definition, labels, profile block and the effects it declares."""

    def __init__(self, doc, forms, lang):
        self.doc = doc
        self.uuid = _str(doc.get("uuid"))
        self.answers = _answers(doc)
        self.definition = forms.get(doc.get("form"), doc.get("form_version")) or {}
        self.form = forms.labels(doc.get("form"), doc.get("form_version"), lang)
        if self.definition.get("profile") is not None:
            self.profile = effects.profile_of(self.definition)
        else:  # no profile block, or a form this server does not know: every answer, in order
            names = [f["name"] for f in self.form.top] or [k for k in self.answers if isinstance(k, str)]
            self.profile = {"section": "visits", "fields": names}
        self.effects = self.definition.get("effects") or {}
        date_field = self.profile.get("date")
        self.date = (_day(self.answers.get(date_field)) if date_field and self.answers.get(date_field)
                     else "") or _day(doc.get("created_at"))
        try:
            self.declared = effects.of(self.definition, self.answers) if self.definition else None
        except Exception:  # stored answers of an older shape: print them, skip what they declare
            log.info("effects of %s unreadable", self.uuid, exc_info=True)
            self.declared = None
        seq = doc.get("seq")
        self.sort_key = (self.date, _str(doc.get("created_at")), seq if isinstance(seq, int) else 0)

    @property
    def section(self):
        return self.profile.get("section", "visits")


def _followup_book(subs, lang):
    """Every promise made in these submissions by id ("<uuid>:<index>", as the household's
    open_followups name them) and the latest answer about each from a later visit."""
    promised, answered = {}, {}
    for s in subs:  # oldest first, so a later answer replaces an earlier one
        if not s.declared:
            continue
        for f in s.declared["followups"]:
            promised[f"{s.uuid}:{f['index']}"] = {"action": _str(f["action"]), "due_date": _str(f["due_date"]),
                                                  "date": s.date}
        spec = s.effects.get("followup_answers") or {}
        for a in s.declared["followup_answers"]:
            if not isinstance(a.get("id"), str):
                continue
            status = a.get("status")
            label = (s.form.choice(f"{spec.get('repeat')}.{spec.get('status')}", status)
                     if spec else "") or _pick(FOLLOWUP_STATES.get(status, (status, status)), lang)
            answered[a["id"]] = {"status": _str(status), "label": _str(label),
                                 "note": _str(a.get("note")), "date": s.date}
    return promised, answered


def _followup_state(fid, answered, open_ids, t, lang):
    a = answered.get(fid)
    if a and a["status"] in ("done", "dropped"):
        return {"state": a["status"], "state_label": a["label"], "note": a["note"],
                "closed": t["closed_on"].format(date=a["date"])}
    if a:
        return {"state": a["status"] or "open", "state_label": a["label"], "note": a["note"],
                "closed": t["closed_on"].format(date=a["date"])}
    status = open_ids.get(fid)
    key = status if status in FOLLOWUP_STATES else "open"
    return {"state": key, "state_label": _pick(FOLLOWUP_STATES[key], lang), "note": "", "closed": ""}


def _value_text(form, name, value, t):
    """One answer as printed text (labels for choices, numbers grouped)."""
    kind = form.field_type(name)
    if kind == "select_multiple":
        return t["list_sep"].join(form.choices(name, value))
    if kind == "select_one" or isinstance(value, bool):
        return form.choice(name, value)
    if kind in ("integer", "decimal"):
        return fmt_number(value)
    if kind == "geopoint" and isinstance(value, dict):
        lat, lon = _number(value.get("lat")), _number(value.get("lon"))
        return f"{lat:.5f}, {lon:.5f}" if lat is not None and lon is not None else _str(value)
    if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        # a repeat inside a repeat (XLSForm nests them), a line or a shape: each entry's answers
        return t["list_sep"].join(" ".join(_str(x) for x in v.values() if _answered(x)) for v in value)
    if isinstance(value, list):
        return t["list_sep"].join(_str(v) for v in value)
    return _str(value)


def _repeat_entries(form, name, entries, t):
    """A repeat's entries, each a list of (child label, value) pairs in the form's order; answers
    the definition no longer names are printed too, never dropped."""
    columns = [c["name"] for c in form.children(name) if c.get("type") not in NOT_PRINTED_TYPES]
    seen = set(columns)
    for e in entries:
        for k in e:
            if k not in seen:
                seen.add(k)
                columns.append(k)
    out = []
    for e in entries[:MAX_REPEAT_ROWS]:
        out.append([[form.label(f"{name}.{c}"), _value_text(form, f"{name}.{c}", e.get(c), t)]
                    for c in columns if _answered(e.get(c))])
    return out, (t["more_entries"].format(n=len(entries) - MAX_REPEAT_ROWS)
                 if len(entries) > MAX_REPEAT_ROWS else "")


SHORT_TEXT = 18  # characters: answers this short share a line with their neighbours


def _blocks(rows):
    """Consecutive short answers flow together on one line; the rest get a line of their own.
    (One paragraph per visit costs WeasyPrint far less than a box per answer.)"""
    blocks = []
    for row in rows:
        short = (row["entries"] is None and row["promises"] is None and not row["pre"]
                 and len(row["text"]) + len(row["label"]) <= SHORT_TEXT + 6)
        if short and blocks and blocks[-1]["flow"]:
            blocks[-1]["rows"].append(row)
        else:
            blocks.append({"flow": short, "rows": [row]})
    return blocks


def _shown_fields(s, book, t, lang):
    """The rows a submission prints: its profile block's fields in order, each with its label."""
    promised, answered, open_ids = book
    followups = s.effects.get("followups") or {}
    closing = s.effects.get("followup_answers") or {}
    rows = []
    for name in s.profile.get("fields") or []:
        value = s.answers.get(name)
        if not _answered(value):
            continue
        kind = s.form.field_type(name)
        if kind in NOT_PRINTED_TYPES:
            continue
        row = {"label": s.form.label(name), "text": "", "pre": kind == "textarea", "entries": None,
               "more": "", "promises": None}
        if kind == "repeat" and isinstance(value, list):
            entries = [e for e in value if isinstance(e, dict)]
            if name == followups.get("repeat") and s.declared and s.declared["followups"]:
                row["promises"] = []
                for f in s.declared["followups"]:
                    fid = f"{s.uuid}:{f['index']}"
                    row["promises"].append({"action": _str(f["action"]), "due_date": _str(f["due_date"]),
                                            **_followup_state(fid, answered, open_ids, t, lang)})
            elif name == closing.get("repeat") and s.declared and s.declared["followup_answers"]:
                row["promises"] = []
                for a in s.declared["followup_answers"]:
                    p = promised.get(a.get("id")) or {}
                    status = a.get("status")
                    label = s.form.choice(f"{name}.{closing.get('status')}", status) or \
                        _pick(FOLLOWUP_STATES.get(status, (status, status)), lang)
                    row["promises"].append({
                        "action": p.get("action") or _str(a.get("id")), "due_date": p.get("due_date", ""),
                        "state": _str(status), "state_label": _str(label), "note": _str(a.get("note")),
                        "closed": ""})
            else:
                row["entries"], row["more"] = _repeat_entries(s.form, name, entries, t)
        else:
            row["text"] = _value_text(s.form, name, value, t)
        rows.append(row)
    return rows


# ---- the context ---------------------------------------------------------------------------------


def build_profile_context(household, village, cadres, submissions, forms, printed_by, lang,
                          attachments_dir, *, mask=None, record_url="", printed_at=None,
                          today=None, max_pixels=images.MAX_PIXELS):
    """Everything the template shows, as plain JSON-able data, one section at a time.

    cadres: user documents of the paired cadres and of anyone who wrote a visit (names for the
    timeline); forms: the app's form registry (or, in tests, {id: definition}): each submission is
    read with its own form version; printed_by: a user document (or a name; then phones are
    masked); mask: force masking on or off (default: masked unless the printing user is an admin).
    printed_by/printed_at may be None for a print stamped later.
    """
    lang = lang if lang in LANGS else "zh"
    household = household or {}
    village = village or {}
    forms = forms if isinstance(forms, Forms) else Forms(forms)
    today = today or clock.today()
    if mask is None:
        mask = not (isinstance(printed_by, dict) and printed_by.get("role") == "admin")
    phone = (mask_phone if mask else _str)
    t = {k: _pick(v, lang) for k, v in TEXTS.items()}
    users = {u["id"]: u for u in _list(cadres) if isinstance(u, dict) and u.get("id")}
    hid = _str(household.get("id"))

    # A corrected submission is replaced by its correction: only the correction prints.
    docs = [s for s in _list(submissions) if isinstance(s, dict)
            and (not hid or s.get("household_id") in (None, hid)) and submission_records.is_current(s)]
    subs = sorted((_Sub(d, forms, lang) for d in docs), key=lambda s: s.sort_key)
    open_ids = {f.get("id"): f.get("status") for f in _list(household.get("open_followups"))
                if isinstance(f, dict)}
    promised, answered = _followup_book(subs, lang)
    book = (promised, answered, open_ids)
    visit_subs = [s for s in subs if s.section == "visits"]
    pv_subs = [s for s in subs if s.section == "pv"]
    visits = _visits_context(visit_subs, users, book, t, lang)
    help_rows, help_total = _help_context(visit_subs, t)
    plots, total_area = _plots_context(household, t)
    photos, photos_note, signatures = _images_context(subs, attachments_dir, t)

    printed_name = _user_name(printed_by)
    if printed_at is None and printed_name:
        printed_at = clock.show(clock.now_iso())

    return {
        "lang": lang,
        "html_lang": "en" if lang == "en" else "zh-CN",
        "t": t,
        "masked": bool(mask),
        "record_url": _str(record_url),
        "household": _household_context(household, phone, lang),
        "village": {"id": _str(village.get("id") or household.get("village_id")),
                    "name": _str(village.get("name")), "township": _str(village.get("township")),
                    "county": _str(village.get("county"))},
        "members": _members_context(household, today, lang),
        "plots": plots,
        "plots_total_area": fmt_number(total_area, 2) if plots else "",
        "cadres": _paired_context(household, users, phone),
        "income": _income_context(visit_subs, household.get("population"), t),
        "visits": visits,
        "visit_count_text": t["visit_count"].format(n=len(visits)),
        "help": help_rows,
        "help_total": help_total,
        "pv": _pv_context(household.get("pv_status"), pv_subs, forms, book, t, lang),
        "photos": photos,
        "photos_note": photos_note,
        "signatures": signatures,
        "image_max_pixels": int(max_pixels),
        "printed_by": printed_name,
        "printed_at": _str(printed_at) if printed_name else "",
        "latest_submission_seq": max((s["seq"] for s in docs if isinstance(s.get("seq"), int)),
                                     default=0),
    }


def _household_context(household, phone, lang):
    category = household.get("category")
    return {
        "id": _str(household.get("id")), "head_name": _str(household.get("head_name")),
        "phone": phone(household.get("phone")), "address": _str(household.get("address")),
        "group": _str(household.get("group")),
        "category": category if category in CATEGORY else _str(category),
        "category_label": _pick(CATEGORY[category], lang) if category in CATEGORY else _str(category),
        "population": _str(household.get("population")),
        "version": household.get("version") or 0,
        "updated_at": _day(household.get("updated_at")),
    }


def _members_context(household, today, lang):
    members = []
    for m in _list(household.get("members")):
        if not isinstance(m, dict):
            continue
        by = m.get("birth_year")
        age = today.year - by if isinstance(by, int) and 1850 < by <= today.year else None
        members.append({
            "name": _str(m.get("name")), "relation": _str(m.get("relation")),
            "sex": _pick(SEX[m["sex"]], lang) if m.get("sex") in SEX else _str(m.get("sex")),
            "birth_year": _str(by), "age": age, "health": _str(m.get("health")),
            "schooling": _str(m.get("schooling")), "work": _str(m.get("work"))})
    return members


def _plots_context(household, t):
    """The land plots with their four boundaries, and their total area."""
    plots, total_area = [], 0.0
    for p in _list(household.get("plots")):
        if not isinstance(p, dict):
            continue
        area = _number(p.get("area_mu"))
        total_area += area or 0
        signed = p.get("contract_signed")
        plots.append({
            "name": _str(p.get("name")), "area_mu": fmt_number(p.get("area_mu"), 2),
            "east": _str(p.get("east")), "west": _str(p.get("west")),
            "south": _str(p.get("south")), "north": _str(p.get("north")),
            "contract_signed": signed is True,
            "contract": t["signed"] if signed is True else t["unsigned"]})
    return plots, total_area


def _paired_context(household, users, phone):
    paired = []
    for cid in _list(household.get("cadre_ids")):
        u = users.get(cid)
        paired.append({"id": _str(cid), "name": _user_name(u) or _str(cid),
                       "unit": _str((u or {}).get("unit")),
                       "phone": phone((u or {}).get("phone"))})
    return paired


def _visits_context(visit_subs, users, book, t, lang):
    """The visit timeline: each visit's date, cadre, review state and its answers in blocks."""
    visits = []
    for s in visit_subs:
        review = s.doc.get("review") if isinstance(s.doc.get("review"), dict) else {}
        state = review.get("state")
        cadre = users.get(s.doc.get("cadre_id"))
        visits.append({
            "uuid": s.uuid, "date": s.date,
            "form_title": s.form.title,
            "cadre": _user_name(cadre) or _str(s.doc.get("cadre_id")),
            "review": t.get(f"review_{state}", _str(state)) if state else "",
            "blocks": _blocks(_shown_fields(s, book, t, lang)),
        })
    return visits


def _help_context(visit_subs, t):
    """Every entry of consumption help the visits record (the repeat a form's `help_value` effect
    names), with its quantity, price and amount, oldest first, and the total in yuan."""
    rows, total = [], 0.0
    for s in visit_subs:
        spec = s.effects.get("help_value")
        if not isinstance(spec, dict):
            continue
        name, qty, price = spec.get("repeat"), spec.get("quantity"), spec.get("price")
        others = [c["name"] for c in s.form.children(name)
                  if c.get("name") not in (qty, price) + effects.HELP_CHANNELS
                  and c.get("type") not in NOT_PRINTED_TYPES]
        channel = (effects.help_channel_child(s.form.children(name)) or {}).get("name")
        for e in _list(s.answers.get(name)):
            if not isinstance(e, dict):
                continue
            q, p = _number(e.get(qty)), _number(e.get(price))
            amount = round(q * p, 2) if q is not None and p is not None else None
            total += amount or 0
            item = " ".join(_value_text(s.form, f"{name}.{c}", e.get(c), t)
                            for c in others if _answered(e.get(c)))
            if channel and _answered(e.get(channel)):  # who bought, after what was bought
                item += t["help_channel"].format(
                    channel=_value_text(s.form, f"{name}.{channel}", e.get(channel), t))
            rows.append({"date": s.date,
                         "item": item,
                         "quantity": fmt_number(q), "price": fmt_number(p, 2),
                         "amount": fmt_number(amount, 2) if amount is not None else ""})
    return rows, (fmt_number(total, 2) if rows else "")


def _images_context(subs, attachments_dir, t):
    """Photos and signatures, newest first, within the page budget: (photos, note, signatures)."""
    photos, signatures = [], []
    for s in reversed(subs):
        _collect_images(s, attachments_dir, photos, signatures)
    photos_total = len(photos)
    photos = photos[:MAX_PHOTOS]
    note = (t["photos_more"].format(n=photos_total, m=len(photos)) if photos_total > len(photos) else "")
    return photos, note, signatures[:MAX_SIGNATURES]


def _income_context(visit_subs, population, t):
    """The latest submission of each year whose form declares income sources gives that year's
    income by source; columns are every source any of them declares, in the order declared."""
    by_year, sources, total_label = {}, {}, t["total"]
    for s in visit_subs:  # oldest first, so later visits replace earlier ones
        spec = s.profile.get("income")
        if not isinstance(spec, dict) or not re.match(r"^\d{4}", s.date):
            continue
        names = [n for n in _list(spec.get("sources")) if isinstance(n, str)]
        values = {n: _number(s.answers.get(n)) for n in names}
        total = _number(s.answers.get(spec.get("total"))) if spec.get("total") else None
        if all(v is None for v in values.values()) and total is None:
            continue
        if total is None:
            total = sum(v for v in values.values() if v is not None)
        for n in names:  # the newest labels win
            sources[n] = _without_unit(s.form.label(n))
        if spec.get("total"):
            total_label = _without_unit(s.form.label(spec["total"]))
        by_year[s.date[:4]] = {"date": s.date, "values": values, "total": total}
    keys = list(sources)
    all_years = sorted(by_year)
    years = all_years[-MAX_INCOME_YEARS:]
    pop = _number(population)
    rows = []
    for y in years:
        d = by_year[y]
        rows.append({
            "year": y, "date": d["date"],
            "values": {k: d["values"].get(k) for k in keys},
            "cells": [fmt_number(d["values"][k]) if d["values"].get(k) is not None else "–" for k in keys],
            "total": d["total"], "total_text": fmt_number(d["total"]),
            "per_capita": fmt_number(d["total"] / pop) if pop and pop > 0 else "",
        })
    return {"sources": [{"key": k, "label": sources[k], "colour": COLOURS[i % len(COLOURS)]}
                        for i, k in enumerate(keys)],
            "rows": rows, "total_label": total_label,
            "note": t["income_note"] + (t["income_more"].format(n=len(all_years), m=len(years))
                                        if len(all_years) > len(years) else "")}


def _pv_sources(pv_subs, forms, lang):
    """For each pv_status key, the (labels, question) of a form whose effects set it from an answer:
    the question's label and choices name the value. The household's own PV forms first (newest
    first), then the current PV-section forms."""
    found = {}
    candidates = [(s.effects, s.form) for s in reversed(pv_subs)]
    for d in forms.current():
        if isinstance(d, dict) and (d.get("profile") or {}).get("section") == "pv":
            candidates.append((d.get("effects") or {}, forms.labels(d.get("id"), d.get("version"), lang)))
    for form_effects, form in candidates:
        for case in _list((form_effects or {}).get("household")):
            sets = case.get("set") if isinstance(case, dict) else None
            status = sets.get("pv_status") if isinstance(sets, dict) else None
            if not isinstance(status, dict):
                continue
            for key, value in status.items():
                if isinstance(value, dict) and isinstance(value.get("field"), str):
                    found.setdefault(key, (form, value["field"]))
    return found


def _pv_context(status, pv_subs, forms, book, t, lang):
    status = status if isinstance(status, dict) else None
    latest = pv_subs[-1] if pv_subs else None
    if not status and not latest:
        return None
    status = status or {}
    sources = _pv_sources(pv_subs, forms, lang)
    rows = []
    for key in PV_KEYS:
        value = status.get(key)
        if not _answered(value):
            continue
        form, field = sources.get(key, (None, None))
        if key == "stage" and not (form and form.has_choice(field, value)) and value in PV_STAGE_WORDS:
            text = _pick(PV_STAGE_WORDS[value], lang)
        elif key == "capacity_kw" and _number(value) is not None:
            text = f"{fmt_number(value)} {t['kw']}"
        elif key == "expected_kwh_year" and _number(value) is not None:
            text = f"{fmt_number(value)} {t['kwh_year']}"
        elif form:
            text = _value_text(form, field, value, t)
        else:
            text = _day(value) if key.endswith("_date") else _str(value)
        rows.append({"label": t[f"pv_{key}"], "text": text})
    if status.get("updated_at"):
        rows.append({"label": t["pv_updated"], "text": _day(status["updated_at"])})
    details = _blocks(_shown_fields(latest, book, t, lang)) if latest else []
    return {"rows": rows, "details": details,
            "latest": f"{t['pv_latest']}（{latest.date}）" if latest and lang != "en"
            else (f"{t['pv_latest']} ({latest.date})" if latest else "")}


def _collect_images(s, attachments_dir, photos, signatures):
    """Every photo and signature question of the submission's form (repeats' ones too), in form
    order, each with its caption."""
    received = {}
    for att in _list(s.doc.get("attachments")):
        if isinstance(att, dict) and isinstance(att.get("name"), str):
            received[att["name"]] = att
    found = []
    for f in s.form.top:
        kind = f.get("type")
        if kind in ("photo", "signature"):
            found.append((kind, s.form.label(f["name"]), s.answers.get(f["name"])))
        elif kind == "repeat":
            for child in s.form.children(f["name"]):
                if child.get("type") not in ("photo", "signature"):
                    continue
                for i, entry in enumerate(_list(s.answers.get(f["name"]))):
                    if isinstance(entry, dict):
                        found.append((child["type"], f"{s.form.label(f['name'] + '.' + child['name'])} {i + 1}",
                                      entry.get(child["name"])))
    for kind, label, value in found:
        if not isinstance(value, str) or not value:
            continue
        att = received.get(value, {})
        path = _safe_attachment_path(attachments_dir, s.uuid, value)
        if att.get("received") is False:
            path = None
        entry = {"path": path, "sha256": _str(att.get("sha256")), "caption": f"{s.date} {label}".strip()}
        (signatures if kind == "signature" else photos).append(entry)


# ---- rendering -------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def _jinja():
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATE_DIR), autoescape=True,
                             trim_blocks=True, lstrip_blocks=True, undefined=jinja2.Undefined,
                             finalize=_printable)
    return env


_NOT_PRINTABLE = NOT_PRINTABLE_RE


def _printable(value):
    """Every value printed without the control characters a roster or an old phone may carry (and
    lone surrogates): one of them garbled the whole PDF's text layer (copy, search), and none is
    allowed in XML."""
    if isinstance(value, str) and _NOT_PRINTABLE.search(value):
        cleaned = _NOT_PRINTABLE.sub("", value)
        return Markup(cleaned) if isinstance(value, Markup) else cleaned
    return value


@functools.lru_cache(maxsize=1)
def template_hash():
    """Changes whenever the template, its CSS, this module or the print font changes: part of the
    cache key."""
    from server.printing import print_font
    h = hashlib.sha256(print_font.identity().encode())
    for path in (os.path.join(TEMPLATE_DIR, "profile.html"), os.path.join(TEMPLATE_DIR, "profile.css"),
                 os.path.join(TEMPLATE_DIR, "ua.css"), os.path.abspath(__file__)):
        with open(path, "rb") as f:
            h.update(f.read())
    return h.hexdigest()


def context_digest(context):
    """A digest of the context less the print stamp, plus the template hash: the cache identity."""
    stripped = {k: v for k, v in context.items() if k not in ("printed_by", "printed_at")}
    blob = json.dumps(stripped, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256((template_hash() + blob).encode()).hexdigest()


def _data_uri(mime, data):
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


def image_data_uri(path, max_px, signature=False, max_pixels=images.MAX_PIXELS):
    """A small JPEG (PNG for signatures) of an attachment, or None when missing, unreadable or past
    the pixel budget: the header is read first, a JPEG is decoded at a fraction of its size, and
    nothing is ever decoded whole past `max_pixels` (see server/images.py)."""
    if not path:
        return None
    try:
        from PIL import Image
        im = images.thumbnail(path, max_px, max_pixels)
        if im.mode == "RGBA":
            bg = Image.new("RGB", im.size, "white")
            bg.paste(im, mask=im.split()[-1])
            im = bg
        out = io.BytesIO()
        if signature:
            im.convert("L").save(out, "PNG")  # optimize=True costs 5 ms for a few hundred bytes
            return _data_uri("image/png", out.getvalue())
        im.save(out, "JPEG", quality=72)
        return _data_uri("image/jpeg", out.getvalue())
    except FileNotFoundError:
        return None
    except Exception as e:  # a corrupt or oversized photo must not spoil the profile
        log.info("photo %s not printable: %s", path, e)
        return None


def qr_data_uri(text):
    """A 1-bit PNG QR code, 8 pixels a module (readable as an image on its own, not only once
    printed), scaled unsmoothed (`image-rendering: pixelated`: a PDF image without /Interpolate).
    Fixed mask pattern: scoring all eight (qrcode's default) was four fifths of the cost, for a
    code any reader decodes either way."""
    if not text:
        return None
    import qrcode
    qr = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M, box_size=8, border=1,
                       mask_pattern=0)
    qr.add_data(text)
    qr.make(fit=True)
    out = io.BytesIO()
    qr.make_image().get_image().convert("1").save(out, "PNG")
    return _data_uri("image/png", out.getvalue())


def income_chart_svg(income, lang):
    """A stacked bar per year (one colour per source) with the total above: inline SVG markup."""
    rows = income.get("rows") or []
    if not rows:
        return Markup("")
    width, height = 640, 230
    left, right, top, bottom = 58, 10, 22, 26
    plot_w, plot_h = width - left - right, height - top - bottom
    totals = [max(sum(v for v in r["values"].values() if v and v > 0), r["total"] or 0) for r in rows]
    peak = max(totals) or 1
    step = _nice_step(peak / 4)
    top_value = step * max(1, -(-peak // step))
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 {width} {height}" '
             f'width="{width}" height="{height}" role="img">']
    font = 'font-family="Jiedui Print Sans, Noto Sans CJK SC, sans-serif"'  # as profile.css
    ticks = int(round(top_value / step))
    for i in range(ticks + 1):
        v = step * i
        y = top + plot_h - plot_h * v / top_value
        parts.append(f'<line x1="{left}" y1="{y:.1f}" x2="{width - right}" y2="{y:.1f}" '
                     f'stroke="#c8c8c8" stroke-width="{1 if i == 0 else 0.5}"/>')
        parts.append(f'<text x="{left - 6}" y="{y + 4:.1f}" font-size="11" text-anchor="end" '
                     f'fill="#333" {font}>{escape(fmt_number(v))}</text>')
    slot = plot_w / len(rows)
    bar_w = min(56, slot * 0.6)
    for i, r in enumerate(rows):
        x = left + slot * i + (slot - bar_w) / 2
        y = top + plot_h
        for source in income.get("sources") or []:
            key, colour = source["key"], source["colour"]
            v = r["values"].get(key)
            if not v or v <= 0:
                continue
            h = plot_h * v / top_value
            y -= h
            parts.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar_w:.1f}" height="{h:.1f}" '
                         f'fill="{colour}" stroke="#fff" stroke-width="0.6"/>')
        label_y = top + plot_h - plot_h * totals[i] / top_value - 5
        parts.append(f'<text x="{x + bar_w / 2:.1f}" y="{label_y:.1f}" font-size="11" '
                     f'text-anchor="middle" fill="#111" {font}>{escape(r["total_text"])}</text>')
        parts.append(f'<text x="{x + bar_w / 2:.1f}" y="{height - 8}" font-size="12" '
                     f'text-anchor="middle" fill="#111" {font}>{escape(r["year"])}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


def _nice_step(raw):
    if raw <= 0:
        return 1
    mag = 10 ** (len(str(int(raw))) - 1) if raw >= 1 else 1
    for m in (1, 2, 2.5, 5, 10):
        if raw <= m * mag:
            return m * mag
    return 10 * mag


def render_profile_html(context):
    """The profile as HTML for WeasyPrint: images made into small data URIs here, not earlier."""
    lang = context.get("lang", "zh")
    budget = context.get("image_max_pixels") or images.MAX_PIXELS
    photos = [dict(p, src=image_data_uri(p.get("path"), PHOTO_PX, max_pixels=budget))
              for p in context.get("photos", [])]
    signatures = [dict(s, src=image_data_uri(s.get("path"), SIGNATURE_PX, signature=True,
                                             max_pixels=budget))
                  for s in context.get("signatures", [])]
    printed = ""
    if context.get("printed_by"):
        printed = context["t"]["printed"].format(who=context["printed_by"],
                                                 when=context.get("printed_at", ""))
    return _jinja().get_template("profile.html").render(
        c=context, t=context["t"], photos=photos, signatures=signatures, printed=printed,
        qr=qr_data_uri(context.get("record_url")),
        chart=income_chart_svg(context.get("income") or {}, lang),
        page_content=_page_counter_css(context["t"]["page"]))


def _css_string(text):
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", " ") + '"'


def _page_counter_css(pattern):
    """'第 {x} 页 / 共 {y} 页' as a CSS content value with page counters (fixed texts only)."""
    parts = []
    for piece in re.split(r"(\{x\}|\{y\})", pattern):
        if piece == "{x}":
            parts.append("counter(page)")
        elif piece == "{y}":
            parts.append("counter(pages)")
        elif piece:
            parts.append(_css_string(piece))
    return Markup(" ".join(parts))


class _DataOnlyFetcher:
    """WeasyPrint may load data: URIs only: user text can never make it read files or the network."""

    def __new__(cls):
        from weasyprint.urls import URLFetcher
        return URLFetcher(allowed_protocols={"data"}, timeout=2)


def parse_profile_html(html):
    """(root element, parser name). Our templates are written as well-formed XML, which expat reads
    in about a millisecond where WeasyPrint's pure-Python HTML5 parser took 35 ms a profile. Text
    XML cannot hold (a control character a phone sent, say) falls back to the HTML5 parser, which is
    what WeasyPrint would have used: the same tree either way (tests/test_printing.py). The
    templates drop control characters (_printable), so that is a safety net, not a path in use."""
    from xml.etree import ElementTree
    try:
        return ElementTree.fromstring(html), "xml"
    except ElementTree.ParseError:
        import tinyhtml5
        return tinyhtml5.parse(html, namespace_html_elements=False), "html5"


@functools.lru_cache(maxsize=1)
def _html_class():
    """WeasyPrint's HTML with the profiles' own small user-agent stylesheet (ua.css), built from a
    string through parse_profile_html."""
    import cssselect2
    from weasyprint import CSS, HTML
    ua = CSS(filename=os.path.join(TEMPLATE_DIR, "ua.css"))

    class ProfileHTML(HTML):
        def __init__(self, string, base_url, url_fetcher):
            # what HTML.__init__ (WeasyPrint 70) does after parsing; no <base> in our templates
            root, _ = parse_profile_html(string)
            self.base_url = base_url
            self.url_fetcher = url_fetcher
            self.media_type = "print"
            self.wrapper_element = cssselect2.ElementWrapper.from_html_root(root, content_language=None)
            self.etree_element = self.wrapper_element.etree_element

        def _ua_stylesheets(self, forms=False):
            return [ua]
    return ProfileHTML


@functools.lru_cache(maxsize=1)
def _font_config():
    """One font configuration per process, knowing the print font when it was built."""
    from weasyprint.text.fonts import FontConfiguration
    from server.printing import print_font
    config = FontConfiguration()
    print_font.register(config)
    return config


@functools.lru_cache(maxsize=1)
def _profile_css():
    """profile.css parsed once per worker: parsing it took about 16 ms of every profile. Given as
    WeasyPrint's user sheet, below the page's own small <style> (the page-counter words)."""
    from weasyprint import CSS
    return CSS(filename=os.path.join(TEMPLATE_DIR, "profile.css"), font_config=_font_config())


def render_profile_document(context):
    """The laid-out profile (WeasyPrint's Document): its pages and boxes, before the PDF."""
    html = render_profile_html(context)
    doc = _html_class()(string=html, base_url=TEMPLATE_DIR + os.sep, url_fetcher=_DataOnlyFetcher())
    return doc.render(stylesheets=[_profile_css()], font_config=_font_config())


def render_profile_pdf(context):
    """PDF bytes of one profile (A4). Safe to call repeatedly in one long-lived process."""
    return render_profile_document(context).write_pdf()


def render_cover_pdf(context):
    """The cover and index of a batch (print/cover.html), in the profile's style: (pdf bytes,
    its number of pages)."""
    lang = context.get("lang") if context.get("lang") in LANGS else "zh"
    t = {k: _pick(v, lang) for k, v in TEXTS.items()}
    html = _jinja().get_template("cover.html").render(c=dict(context, html_lang="en" if lang == "en" else "zh-CN"),
                                                      t=t)
    doc = _html_class()(string=html, base_url=TEMPLATE_DIR + os.sep, url_fetcher=_DataOnlyFetcher())
    document = doc.render(stylesheets=[_profile_css()], font_config=_font_config())
    return document.write_pdf(), len(document.pages)


def render_stamp_pdf(text, lang="zh"):
    """One transparent A4 page holding only the 'printed by … on …' footer, placed exactly where the
    profile's own footer puts it; laid over every page of a cached profile."""
    html = _jinja().get_template("stamp.html").render(printed=text, html_lang="en" if lang == "en"
                                                      else "zh-CN")
    return _html_class()(string=html, base_url=TEMPLATE_DIR + os.sep,
                url_fetcher=_DataOnlyFetcher()).write_pdf(font_config=_font_config())
