"""The household assistance profile (一户一档): plain data in, an A4 PDF out.

`build_profile_context` turns stored documents into a JSON-able dict (labels resolved, phones masked,
photos named by path); `render_profile_pdf` turns that dict into PDF bytes with WeasyPrint. The split
lets the server build contexts next to the store and render them in worker processes, and lets the
cache key be a digest of the context itself. Nothing here imports Flask or the store.
"""

import base64
import datetime as dt
import functools
import hashlib
import io
import json
import logging
import os
import re

import jinja2
from markupsafe import Markup, escape

from ..i18n import CATEGORY_LABELS

log = logging.getLogger(__name__)
# WeasyPrint logs every rendering step at INFO: seven lines per profile would drown the server log.
logging.getLogger("weasyprint.progress").setLevel(logging.WARNING)

HERE = os.path.dirname(os.path.abspath(__file__))
TEMPLATE_DIR = os.path.join(os.path.dirname(HERE), "templates", "print")
LANGS = ("zh", "en")
MAX_PHOTOS = 9          # most recent photos shown; older ones are counted, not printed
MAX_SIGNATURES = 2
MAX_INCOME_YEARS = 8    # the chart and table show the latest years
PHOTO_PX = 520          # longest side of a printed photo (about 150 dpi at 88 mm)
SIGNATURE_PX = 360
PHOTO_FIELDS = ("photo_1", "photo_2", "photo_3", "roof_photo_1", "roof_photo_2")
SIGNATURE_FIELDS = ("signature",)
INCOME_FIELDS = ("income_wages", "income_farming", "income_livestock", "income_pv",
                 "income_transfers")
INCOME_COLOURS = ("#1f4e79", "#e69f00", "#009e73", "#f0e442", "#cc79a7")

CATEGORY = CATEGORY_LABELS
SEX = {"male": ("男", "Male"), "female": ("女", "Female")}
YES_NO = {"yes": ("是", "Yes"), "no": ("否", "No"), True: ("是", "Yes"), False: ("否", "No")}

# Every fixed text of the profile, (zh, en). Form fields and choices take their labels from the forms.
TEXTS = {
    "title": ("结对帮扶一户一档", "Household assistance profile"),
    "head": ("户主", "Head of household"),
    "household_id": ("户编号", "Household ID"),
    "village": ("村", "Village"),
    "township": ("乡镇", "Township"),
    "county": ("县", "County"),
    "group": ("组别", "Group"),
    "address": ("地址", "Address"),
    "phone": ("电话", "Phone"),
    "category": ("户类别", "Category"),
    "population": ("家庭人口", "Household size"),
    "persons": ("人", "persons"),
    "record_version": ("档案版本", "Record version"),
    "updated_at": ("更新时间", "Updated"),
    "scan_hint": ("扫码查看电子档案", "Scan for the online record"),
    "basic": ("基本情况", "Basic facts"),
    "members": ("家庭成员", "Household members"),
    "name": ("姓名", "Name"),
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
    "visit_count": ("共 {n} 次走访", "{n} visits"),
    "no_visits": ("尚无走访记录。", "No visits yet."),
    "visit_type": ("走访方式", "Visit type"),
    "cadre": ("走访干部", "Cadre"),
    "present": ("在场人员", "Present"),
    "topics": ("走访内容", "Topics"),
    "family_changes": ("家庭变化", "Family changes"),
    "needs": ("困难与需求", "Needs"),
    "help_given": ("帮扶措施", "Help given"),
    "followups": ("后续事项", "Follow-ups"),
    "due": ("期限", "due"),
    "done": ("已完成", "done"),
    "open": ("未完成", "open"),
    "risk": ("返贫风险", "Risk"),
    "notes": ("备注", "Notes"),
    "review": ("审核", "Review"),
    "review_received": ("已接收", "Received"),
    "review_has_issues": ("有问题", "Has issues"),
    "review_approved": ("已通过", "Approved"),
    "pv": ("光伏帮扶", "Photovoltaic (PV) programme"),
    "pv_stage": ("进度", "Stage"),
    "pv_capacity": ("装机容量", "Capacity"),
    "pv_expected": ("预计年发电量", "Expected generation"),
    "pv_funding": ("出资方式", "Funding"),
    "pv_updated": ("更新时间", "Updated"),
    "pv_enrollment": ("登记信息", "Enrollment"),
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
    "form_pv": ("光伏登记", "PV enrollment"),
    "colon": ("：", ": "),
}

# Standard labels for the fixed form fields, used only when the form definition has none.
FIELD_FALLBACK = {
    "income_wages": ("工资性收入", "Wages"),
    "income_farming": ("种植收入", "Farming"),
    "income_livestock": ("养殖收入", "Livestock"),
    "income_pv": ("光伏收益", "PV"),
    "income_transfers": ("转移性收入", "Transfers"),
    "income_total": ("总收入", "Total"),
    "photo_1": ("照片1", "Photo 1"), "photo_2": ("照片2", "Photo 2"), "photo_3": ("照片3", "Photo 3"),
    "roof_photo_1": ("屋顶照片1", "Roof photo 1"), "roof_photo_2": ("屋顶照片2", "Roof photo 2"),
    "signature": ("签名", "Signature"),
    "interested": ("有意愿", "Interested"), "consent": ("同意", "Consent"),
    "roof_type": ("屋顶类型", "Roof type"), "roof_area_m2": ("屋顶面积（㎡）", "Roof area (m²)"),
    "orientation": ("朝向", "Orientation"), "shading": ("遮挡", "Shading"),
    "structure_ok": ("结构安全", "Structure sound"),
    "lecture_attended": ("参加讲座", "Attended lecture"), "lecture_date": ("讲座日期", "Lecture date"),
    "grid_stage": ("并网进度", "Grid stage"),
}
PV_DETAIL_FIELDS = ("interested", "consent", "roof_type", "roof_area_m2", "orientation", "shading",
                    "structure_ok", "lecture_attended", "lecture_date")


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
    """Field and choice labels of one form definition; unknown names come back as given."""

    def __init__(self, definition, lang):
        self.lang = lang
        self.definition = definition if isinstance(definition, dict) else {}
        self.fields = {}
        self._index(self.definition.get("fields") or [])

    def _index(self, fields, prefix=""):
        if not isinstance(fields, list):
            return
        for f in fields:
            if not isinstance(f, dict) or not isinstance(f.get("name"), str):
                continue
            if f.get("type") == "group":  # a section: its questions are top-level answers
                self._index(f.get("fields") or [], prefix)
                continue
            self.fields.setdefault(f["name"], f)
            self.fields[prefix + f["name"]] = f
            if f.get("type") == "repeat":
                self._index(f.get("fields") or [], prefix + f["name"] + ".")

    def field(self, name):
        return self.fields.get(name) or {}

    def field_type(self, name):
        return self.field(name).get("type")

    def label(self, name):
        f = self.field(name)
        if f.get("label"):
            return _text(f["label"], self.lang)
        if name in FIELD_FALLBACK:
            return _pick(FIELD_FALLBACK[name], self.lang)
        return name

    def _choices(self, name):
        choices = self.field(name).get("choices")
        if isinstance(choices, str):  # a named list kept at form level
            lists = self.definition.get("choices") or self.definition.get("choice_lists") or {}
            choices = lists.get(choices) if isinstance(lists, dict) else None
        if isinstance(choices, dict):
            return {str(k): v for k, v in choices.items()}
        out = {}
        for c in _list(choices):
            if isinstance(c, dict):
                key = c.get("name", c.get("value", c.get("id")))
                if key is not None:
                    out[str(key)] = c.get("label", key)
            elif isinstance(c, (str, int, float)):
                out[str(c)] = str(c)
        return out

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
        return str(value)

    def choices(self, name, values):
        if values is None or values == "":
            return []
        if not isinstance(values, list):
            values = [values]
        return [self.choice(name, v) for v in values if v not in (None, "")]


def load_forms(forms_dir):
    """{form id: definition} from the YAML files of a folder; unreadable files are skipped."""
    import yaml
    out = {}
    if not forms_dir or not os.path.isdir(forms_dir):
        return out
    for fn in sorted(os.listdir(forms_dir)):
        if not fn.endswith((".yaml", ".yml")):
            continue
        try:
            with open(os.path.join(forms_dir, fn), encoding="utf-8") as f:
                doc = yaml.safe_load(f)
        except (OSError, ValueError, yaml.YAMLError) as e:
            log.warning("form %s unreadable: %s", fn, e)
            continue
        if isinstance(doc, dict) and isinstance(doc.get("id"), str):
            out[doc["id"]] = doc
    return out


def _forms_by_id(forms):
    if isinstance(forms, dict):
        if "fields" in forms and "id" in forms:
            return {forms["id"]: forms}
        return forms
    return {f.get("id"): f for f in forms or [] if isinstance(f, dict)}


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
        return "" if value in (None, "") else str(value)
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


def _date(value):
    """The date part of an ISO date or datetime text; anything else as given."""
    s = _str(value)
    return s[:10] if re.match(r"^\d{4}-\d{2}-\d{2}", s) else s


def _safe_attachment_path(attachments_dir, uuid, name):
    if not attachments_dir or not isinstance(uuid, str) or not isinstance(name, str):
        return None
    if not name or name in (".", "..") or "/" in name or "\\" in name or "\0" in name:
        return None
    if not uuid or uuid in (".", "..") or "/" in uuid or "\\" in uuid or "\0" in uuid:
        return None
    return os.path.join(attachments_dir, uuid, name)


# ---- the context ---------------------------------------------------------------------------------


def _list(value):
    return list(value) if isinstance(value, (list, tuple)) else []


def _answers(sub):
    a = sub.get("answers")
    return a if isinstance(a, dict) else {}


def _visit_sort_key(sub):
    answers = _answers(sub)
    seq = sub.get("seq")
    return (_date(answers.get("visit_date")) or _date(sub.get("created_at")),
            _str(sub.get("created_at")), seq if isinstance(seq, int) else 0)


def _user_name(user):
    if not user:
        return ""
    if isinstance(user, str):
        return user
    return _str(user.get("display_name") or user.get("name") or user.get("username")
                or user.get("id"))


def _followup_done(item):
    """True/False when the follow-up records whether it was done, None when it does not say."""
    for key in ("done", "completed", "status"):
        v = item.get(key)
        if isinstance(v, bool):
            return v
        if isinstance(v, str) and v:
            return v.lower() in ("yes", "done", "true", "1", "completed")
    return None


def build_profile_context(household, village, cadres, submissions, forms, printed_by, lang,
                          attachments_dir, *, mask=None, record_url="", printed_at=None,
                          today=None):
    """Everything the template shows, as plain JSON-able data.

    cadres: user documents of the paired cadres and of anyone who wrote a visit (names for the
    timeline); forms: {id: definition} or a list of definitions; printed_by: a user document (or a
    name; then phones are masked); mask: force masking on or off (default: masked unless the
    printing user is an admin). printed_by/printed_at may be None for a print stamped later.
    """
    lang = lang if lang in LANGS else "zh"
    household = household or {}
    village = village or {}
    forms = _forms_by_id(forms)
    visit_form = FormLabels(forms.get("household_visit"), lang)
    pv_form = FormLabels(forms.get("pv_enrollment"), lang)
    today = today or dt.date.today()
    if mask is None:
        mask = not (isinstance(printed_by, dict) and printed_by.get("role") == "admin")
    phone = (mask_phone if mask else _str)

    t = {k: _pick(v, lang) for k, v in TEXTS.items()}
    users = {}
    for u in _list(cadres):
        if isinstance(u, dict) and u.get("id"):
            users[u["id"]] = u

    hid = _str(household.get("id"))
    category = household.get("category")
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

    paired = []
    for cid in _list(household.get("cadre_ids")):
        u = users.get(cid)
        paired.append({"id": _str(cid), "name": _user_name(u) or _str(cid),
                       "unit": _str((u or {}).get("unit")),
                       "phone": phone((u or {}).get("phone"))})

    subs = [s for s in _list(submissions) if isinstance(s, dict)
            and (not hid or s.get("household_id") in (None, hid))]
    visit_subs = sorted((s for s in subs if s.get("form") == "household_visit"), key=_visit_sort_key)
    pv_subs = sorted((s for s in subs if s.get("form") == "pv_enrollment"), key=_visit_sort_key)

    visits = [_visit_context(s, visit_form, users, t, lang) for s in visit_subs]
    income = _income_context(visit_subs, visit_form, household.get("population"), t)
    pv = _pv_context(household.get("pv_status"), pv_subs[-1] if pv_subs else None, pv_form, t)

    photos, signatures = [], []
    for s in reversed(visit_subs + pv_subs):  # newest first
        form = pv_form if s.get("form") == "pv_enrollment" else visit_form
        _collect_images(s, form, attachments_dir, photos, signatures, lang)
    photos_total = len(photos)
    photos = photos[:MAX_PHOTOS]
    signatures = signatures[:MAX_SIGNATURES]

    printed_name = _user_name(printed_by)
    if printed_at is None and printed_name:
        printed_at = dt.datetime.now().strftime("%Y-%m-%d %H:%M")

    return {
        "lang": lang,
        "html_lang": "en" if lang == "en" else "zh-CN",
        "t": t,
        "masked": bool(mask),
        "record_url": _str(record_url),
        "household": {
            "id": hid, "head_name": _str(household.get("head_name")),
            "phone": phone(household.get("phone")), "address": _str(household.get("address")),
            "group": _str(household.get("group")),
            "category": category if category in CATEGORY else _str(category),
            "category_label": _pick(CATEGORY[category], lang) if category in CATEGORY
            else _str(category),
            "population": _str(household.get("population")),
            "version": household.get("version") or 0,
            "updated_at": _date(household.get("updated_at")),
        },
        "village": {"id": _str(village.get("id") or household.get("village_id")),
                    "name": _str(village.get("name")), "township": _str(village.get("township")),
                    "county": _str(village.get("county"))},
        "members": members,
        "plots": plots,
        "plots_total_area": fmt_number(total_area, 2) if plots else "",
        "cadres": paired,
        "income": income,
        "visits": visits,
        "visit_count_text": t["visit_count"].format(n=len(visits)),
        "pv": pv,
        "photos": photos,
        "photos_note": (t["photos_more"].format(n=photos_total, m=len(photos))
                        if photos_total > len(photos) else ""),
        "signatures": signatures,
        "printed_by": printed_name,
        "printed_at": _str(printed_at) if printed_name else "",
        "latest_submission_seq": max((s["seq"] for s in subs if isinstance(s.get("seq"), int)),
                                     default=0),
    }


def _visit_context(sub, form, users, t, lang):
    a = _answers(sub)
    help_items = []
    for h in _list(a.get("help_given")):
        if not isinstance(h, dict):
            continue
        qty, price = _number(h.get("quantity")), _number(h.get("price"))
        unit = _str(h.get("unit"))
        parts = [_str(h.get("product"))]
        if h.get("quantity") not in (None, ""):
            parts.append(f"{fmt_number(h.get('quantity'))}{' ' if lang == 'en' else ''}{unit}".strip())
        line = " ".join(p for p in parts if p)
        if price is not None:
            line += f" × {fmt_number(price)} {t['yuan']}"
            if qty is not None:
                line += f" = {fmt_number(qty * price)} {t['yuan']}"
        help_items.append(line)
    followups = []
    for f in _list(a.get("followups")):
        if not isinstance(f, dict):
            continue
        done = _followup_done(f)
        followups.append({"action": _str(f.get("action")), "due_date": _date(f.get("due_date")),
                          "done": done,
                          "status": "" if done is None else t["done"] if done else t["open"]})
    cadre = users.get(sub.get("cadre_id"))
    review = (sub.get("review") or {}).get("state") if isinstance(sub.get("review"), dict) else None
    needs = form.choices("needs", a.get("needs"))
    risk = a.get("risk")
    changes = [c for c in (a.get("family_changes") or []) if c != "none"] \
        if isinstance(a.get("family_changes"), list) else a.get("family_changes")
    return {
        "uuid": _str(sub.get("uuid")),
        "date": _date(a.get("visit_date")) or _date(sub.get("created_at")),
        "type": form.choice("visit_type", a.get("visit_type")),
        "cadre": _user_name(cadre) or _str(sub.get("cadre_id")),
        "present": _str(a.get("present")),
        "topics": form.choices("topics", a.get("topics")),
        "family_changes": form.choices("family_changes", changes),
        "needs": needs,
        "needs_detail": _str(a.get("needs_detail")),
        "help": help_items,
        "followups": followups,
        "risk": form.choice("risk", risk) if risk not in (None, "") else "",
        "risk_yes": risk == "yes",
        "risk_reason": _str(a.get("risk_reason")) if risk == "yes" else "",
        "notes": _str(a.get("notes")),
        "review": t.get(f"review_{review}", _str(review)) if review else "",
    }


def _income_context(visit_subs, form, population, t):
    """The latest visit of each year gives that year's income by source."""
    by_year = {}
    for s in visit_subs:  # sorted oldest first, so later visits replace earlier ones
        a = _answers(s)
        date = _date(a.get("visit_date")) or _date(s.get("created_at"))
        if not re.match(r"^\d{4}", date):
            continue
        values = {k: _number(a.get(k)) for k in INCOME_FIELDS}
        total = _number(a.get("income_total"))
        if all(v is None for v in values.values()) and total is None:
            continue
        if total is None:
            total = sum(v for v in values.values() if v is not None)
        by_year[date[:4]] = {"date": date, "values": values, "total": total}
    all_years = sorted(by_year)
    years = all_years[-MAX_INCOME_YEARS:]
    pop = _number(population)
    sources = [{"key": k, "label": _without_unit(form.label(k)), "colour": c}
               for k, c in zip(INCOME_FIELDS, INCOME_COLOURS)]
    rows = []
    for y in years:
        d = by_year[y]
        rows.append({
            "year": y, "date": d["date"],
            "values": {k: d["values"][k] for k in INCOME_FIELDS},
            "cells": [fmt_number(d["values"][k]) if d["values"][k] is not None else "–"
                      for k in INCOME_FIELDS],
            "total": d["total"], "total_text": fmt_number(d["total"]),
            "per_capita": fmt_number(d["total"] / pop) if pop and pop > 0 else "",
        })
    return {"sources": sources, "rows": rows, "total_label": _without_unit(form.label("income_total")),
            "note": t["income_note"] + (t["income_more"].format(n=len(all_years), m=len(years))
                                        if len(all_years) > len(years) else "")}


def _without_unit(label):
    """'工资性收入（元）' -> '工资性收入': the section title already says yuan."""
    return re.sub(r"\s*[（(]\s*(元|yuan)\s*[)）]\s*$", "", label) or label


def _pv_context(status, latest, form, t):
    status = status if isinstance(status, dict) else None
    answers = _answers(latest or {})
    if not status and not answers:
        return None
    stage = (status or {}).get("stage") or answers.get("grid_stage")
    capacity = (status or {}).get("capacity_kw", answers.get("capacity_kw"))
    expected = (status or {}).get("expected_kwh_year", answers.get("expected_kwh_year"))
    funding = (status or {}).get("funding_mode") or answers.get("funding_mode")
    details = []
    for name in PV_DETAIL_FIELDS:
        v = answers.get(name)
        if v in (None, "", []):
            continue
        if isinstance(v, list):
            shown = "、".join(form.choices(name, v))
        elif isinstance(v, (str, bool)):
            shown = form.choice(name, v)  # the raw text when the field has no such choice
        else:
            shown = _str(v)
        details.append({"label": form.label(name), "value": shown})
    return {
        "stage": form.choice("grid_stage", stage),
        "capacity": f"{fmt_number(capacity)} {t['kw']}" if _number(capacity) is not None else "",
        "expected": f"{fmt_number(expected)} {t['kwh_year']}" if _number(expected) is not None else "",
        "funding": form.choice("funding_mode", funding),
        "updated_at": _date((status or {}).get("updated_at")) or _date((latest or {}).get("created_at")),
        "details": details,
    }


def _collect_images(sub, form, attachments_dir, photos, signatures, lang):
    a = _answers(sub)
    received = {}
    for att in _list(sub.get("attachments")):
        if isinstance(att, dict) and isinstance(att.get("name"), str):
            received[att["name"]] = att
    names = [n for n, f in form.fields.items() if "." not in n and f.get("type") in
             ("photo", "signature")]
    names += [n for n in PHOTO_FIELDS + SIGNATURE_FIELDS if n not in names]
    date = _date(a.get("visit_date")) or _date(sub.get("created_at"))
    for name in names:
        value = a.get(name)
        if not isinstance(value, str) or not value:
            continue
        is_signature = form.field_type(name) == "signature" or name in SIGNATURE_FIELDS
        att = received.get(value, {})
        path = _safe_attachment_path(attachments_dir, sub.get("uuid"), value)
        if att.get("received") is False:
            path = None
        entry = {"path": path, "sha256": _str(att.get("sha256")),
                 "caption": f"{date} {form.label(name)}".strip()}
        (signatures if is_signature else photos).append(entry)


# ---- rendering -------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def _jinja():
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATE_DIR), autoescape=True,
                             trim_blocks=True, lstrip_blocks=True, undefined=jinja2.Undefined)
    return env


@functools.lru_cache(maxsize=1)
def template_hash():
    """Changes whenever the template, its CSS or this module changes: part of the cache key."""
    h = hashlib.sha256()
    for path in (os.path.join(TEMPLATE_DIR, "profile.html"), os.path.join(TEMPLATE_DIR, "profile.css"),
                 os.path.abspath(__file__)):
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


def image_data_uri(path, max_px, signature=False):
    """A small JPEG (PNG for signatures) of an attachment, or None if missing or unreadable."""
    if not path:
        return None
    try:
        from PIL import Image, ImageOps
        with Image.open(path) as im:
            im.draft("RGB", (max_px, max_px))  # JPEGs decode at a reduced scale (>= max_px): fast
            im = ImageOps.exif_transpose(im)
            im.thumbnail((max_px, max_px))
            if im.mode in ("RGBA", "LA", "P"):
                im = im.convert("RGBA")
                bg = Image.new("RGB", im.size, "white")
                bg.paste(im, mask=im.split()[-1])
                im = bg
            elif im.mode != "RGB":
                im = im.convert("RGB")
            out = io.BytesIO()
            if signature:
                im.convert("L").save(out, "PNG", optimize=True)
                return _data_uri("image/png", out.getvalue())
            im.save(out, "JPEG", quality=72)
            return _data_uri("image/jpeg", out.getvalue())
    except Exception as e:  # a corrupt photo must not spoil the profile
        log.info("photo %s not printable: %s", path, e)
        return None


def qr_data_uri(text):
    """A 1-bit PNG QR code: crisp when printed and far cheaper for WeasyPrint than an SVG path."""
    if not text:
        return None
    import qrcode
    qr = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M, box_size=8, border=1)
    qr.add_data(text)
    qr.make(fit=True)
    out = io.BytesIO()
    qr.make_image().get_image().convert("1").save(out, "PNG", optimize=True)
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
    font = 'font-family="Noto Sans CJK SC, sans-serif"'
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
        for key, colour in zip(INCOME_FIELDS, INCOME_COLOURS):
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
    photos = [dict(p, src=image_data_uri(p.get("path"), PHOTO_PX)) for p in context.get("photos", [])]
    signatures = [dict(s, src=image_data_uri(s.get("path"), SIGNATURE_PX, signature=True))
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


@functools.lru_cache(maxsize=1)
def _font_config():
    from weasyprint.text.fonts import FontConfiguration
    return FontConfiguration()


def render_profile_pdf(context):
    """PDF bytes of one profile (A4). Safe to call repeatedly in one long-lived process."""
    from weasyprint import HTML
    html = render_profile_html(context)
    doc = HTML(string=html, base_url=TEMPLATE_DIR + os.sep, url_fetcher=_DataOnlyFetcher())
    return doc.write_pdf(font_config=_font_config())


def render_stamp_pdf(text, lang="zh"):
    """One transparent A4 page holding only the 'printed by … on …' footer, placed exactly where the
    profile's own footer puts it; laid over every page of a cached profile."""
    from weasyprint import HTML
    html = _jinja().get_template("stamp.html").render(printed=text, html_lang="en" if lang == "en"
                                                      else "zh-CN")
    return HTML(string=html, base_url=TEMPLATE_DIR + os.sep,
                url_fetcher=_DataOnlyFetcher()).write_pdf(font_config=_font_config())
