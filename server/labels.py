"""Words people read instead of codes: form titles, review states, PV stages, change sources.

PV stages come from the forms: the values a form's `effects.household` cases give
`pv_status.stage` — a choice question's choices (labelled by the form) or a literal word. The
cases are written most-advanced first (the first that holds wins), so read backwards they give
the programme's order: interested, then the choice stages in the form's order, declined last.
"""

from flask import current_app

from .i18n import CATEGORY_LABELS, label, tr

REVIEW_STATES = {
    "received": ("待审核", "Awaiting review"),
    "has_issues": ("已退回", "Returned"),
    "approved": ("已通过", "Approved"),
}
# Literal stages a form may set without a question to label them.
STAGE_WORDS = {
    "interested": ("有意向", "Interested"),
    "declined": ("已拒绝", "Declined"),
    "consented": ("已同意", "Consented"),
    "surveyed": ("已勘察", "Surveyed"),
    "lecture": ("已参加宣讲", "Lecture attended"),
}
SOURCES = {
    "web": ("网页修改", "Edited on the web"),
    "api": ("手机修改", "Edited on a phone"),
    "pairing": ("结对调整", "Pairing"),
    "roster": ("花名册导入", "Roster import"),
    "submission": ("走访记录", "A visit record"),
    "undo": ("撤销修改", "Undo"),
}
FIELD_TYPES = {
    "text": ("文字", "text"), "textarea": ("多行文字", "long text"), "integer": ("整数", "whole number"),
    "decimal": ("数字", "number"), "date": ("日期", "date"), "select_one": ("单选", "choose one"),
    "select_multiple": ("多选", "choose any"), "geopoint": ("定位", "location"), "photo": ("照片", "photo"),
    "signature": ("签名", "signature"), "note": ("说明", "note"), "repeat": ("可重复的一组", "repeated entries"),
}
SEXES = {"male": ("男", "Male"), "female": ("女", "Female")}
RELATIONS = ("户主", "配偶", "长子", "次子", "长女", "次女", "儿子", "女儿", "儿媳", "女婿", "孙子", "孙女",
             "父亲", "母亲", "兄弟", "姐妹", "其他")


def _registry():
    from . import formdefs
    try:
        return formdefs.registry(current_app)
    except (RuntimeError, KeyError):
        return None


def form_title(form_id, version=None):
    """A form's title in the page's language (the version's own title when it is known)."""
    registry = _registry()
    definition = (registry.get(form_id, version) or registry.get(form_id)) if registry else None
    return label(definition["title"]) if definition else tr("未知表单", "Unknown form")


def review_label(state):
    zh, en = REVIEW_STATES.get(state, ("未知状态", "Unknown state"))
    return tr(zh, en)


def source_label(source):
    """How a household change came about: 'roster', 'pairing', 'submission:<uuid>', ..."""
    head = (source or "").split(":", 1)[0]
    zh, en = SOURCES.get(head, ("其他", "Other"))
    return tr(zh, en)


HOUSEHOLD_FIELDS = {
    "head_name": ("户主姓名", "Head of household"), "phone": ("联系电话", "Phone"),
    "address": ("地址", "Address"), "group": ("组别", "Group"), "category": ("类别", "Category"),
    "population": ("家庭人口", "Population"), "members": ("家庭成员", "Members"),
    "plots": ("承包地块", "Land plots"), "pv_status": ("光伏", "PV"), "cadre_ids": ("结对干部", "Paired cadres"),
    "name": ("姓名", "Name"), "relation": ("关系", "Relation"), "sex": ("性别", "Sex"),
    "birth_year": ("出生年份", "Birth year"), "health": ("健康", "Health"),
    "schooling": ("文化/在校", "Schooling"), "work": ("就业", "Work"), "area_mu": ("面积（亩）", "Area (mu)"),
    "east": ("东至", "East"), "west": ("西至", "West"), "south": ("南至", "South"), "north": ("北至", "North"),
    "contract_signed": ("承包合同", "Contract"),
}


def household_field_label(path):
    """'members.2.birth_year' -> '家庭成员 3 出生年份': a household attribute as people name it."""
    if not isinstance(path, str) or not path:
        return ""
    words = []
    for part in path.split("."):
        if part.isdigit():
            words.append(str(int(part) + 1))
        else:
            zh, en = HOUSEHOLD_FIELDS.get(part, (part, part))
            words.append(tr(zh, en))
    return " ".join(words)


def field_type_label(kind):
    zh, en = FIELD_TYPES.get(kind, ("", ""))
    return tr(zh, en)


def sex_label(code):
    zh, en = SEXES.get(code, ("", ""))
    return tr(zh, en)


def _stage_cases(definition):
    """[(stage, {zh, en} or None)] a definition's household cases can set, in programme order."""
    from . import formdefs
    fields = {f["name"]: f for f in formdefs.answer_fields(definition)}
    found = []
    for case in reversed((definition.get("effects") or {}).get("household") or []):
        pv = (case.get("set") or {}).get("pv_status")
        stage = pv.get("stage") if isinstance(pv, dict) else None
        if isinstance(stage, str):
            found.append((stage, None))
        elif isinstance(stage, dict) and stage.get("field") in fields:
            for choice in fields[stage["field"]].get("choices") or []:
                found.append((choice["name"], choice["label"]))
    return found


_stages_cache = {}


def pv_stages(registry=None):
    """[(stage, {zh, en})] in programme order, from every version of every form (current first).
    Computed once per registry (a published form brings a new registry)."""
    registry = registry or _registry()
    if registry is None:
        return []
    hit = _stages_cache.get(id(registry))
    if hit is not None and hit[0] is registry:
        return hit[1]
    seen = {}
    for form_id in registry.ids():
        for version in reversed(registry.versions(form_id)):
            for stage, text in _stage_cases(registry.get(form_id, version)):
                if stage not in seen or (seen[stage] is None and text):
                    seen[stage] = text
    out = []
    for stage, text in seen.items():
        if text is None:
            zh, en = STAGE_WORDS.get(stage, (stage, stage))
            text = {"zh": zh, "en": en}
        out.append((stage, text))
    if len(_stages_cache) > 20:
        _stages_cache.clear()
    _stages_cache[id(registry)] = (registry, out)
    return out


def pv_stage_label(stage):
    for code, text in pv_stages():
        if code == stage:
            return label(text)
    zh, en = STAGE_WORDS.get(stage, (tr("其他", "Other"),) * 2)
    return tr(zh, en)


def category_word(code):
    zh, en = CATEGORY_LABELS.get(code, ("", ""))
    return tr(zh, en)


def yuan(value):
    """An amount of money as people write it: 12,345.50."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return ""
    return f"{value:,.2f}"


def init_app(app):
    app.add_template_filter(yuan)
    app.jinja_env.globals.update(form_title=form_title, review_label=review_label,
                                 source_label=source_label, pv_stage_label=pv_stage_label,
                                 sex_label=sex_label, field_type_label=field_type_label,
                                 household_field_label=household_field_label, relation_words=RELATIONS)
