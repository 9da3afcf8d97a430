"""Words people read instead of codes, beside review/labels.py (review states, household fields,
change sources, form titles): PV stages from the forms, question types, money, field paths.

PV stages come from the forms: the values a form's `effects.household` cases give
`pv_status.stage` — a choice question's choices (labelled by the form) or a literal word. The
cases are written most-advanced first (the first that holds wins), so read backwards they give
the programme's order: interested, then the choice stages in the form's order, declined last.
"""

from flask import current_app

from .i18n import label, tr

# Literal stages a form may set without a question to label them.
STAGE_WORDS = {
    "interested": ("有意向", "Interested"),
    "declined": ("无意向", "Declined"),
    "consented": ("已同意", "Consented"),
    "surveyed": ("已勘察", "Surveyed"),
    "lecture": ("已参加宣讲", "Lecture attended"),
}
FIELD_TYPES = {
    "text": ("文字", "text"), "textarea": ("多行文字", "long text"), "integer": ("整数", "whole number"),
    "decimal": ("数字", "number"), "date": ("日期", "date"), "select_one": ("单选", "choose one"),
    "select_multiple": ("多选", "choose any"), "geopoint": ("定位", "location"), "photo": ("照片", "photo"),
    "signature": ("签名", "signature"), "note": ("说明", "note"), "repeat": ("可重复的一组", "repeated entries"),
}
RELATIONS = ("户主", "配偶", "长子", "次子", "长女", "次女", "儿子", "女儿", "儿媳", "女婿", "孙子", "孙女",
             "父亲", "母亲", "兄弟", "姐妹", "其他")


def _registry():
    from . import formdefs
    try:
        return formdefs.registry(current_app)
    except (RuntimeError, KeyError):
        return None


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


def field_type_label(kind):
    zh, en = FIELD_TYPES.get(kind, ("", ""))
    return tr(zh, en)


PATH_WORDS = {
    "name": ("姓名", "name"), "relation": ("关系", "relation"), "sex": ("性别", "sex"),
    "birth_year": ("出生年份", "birth year"), "health": ("健康", "health"),
    "schooling": ("文化/在校", "schooling"), "work": ("就业", "work"), "area_mu": ("面积（亩）", "area (mu)"),
    "east": ("东至", "east"), "west": ("西至", "west"), "south": ("南至", "south"), "north": ("北至", "north"),
    "contract_signed": ("承包合同", "contract"),
}


def field_path_label(path):
    """'members.2.birth_year' -> '家庭成员 3 出生年份': where an error is, as people name it."""
    from .review.labels import household_field_label
    if not isinstance(path, str) or not path:
        return ""
    words = []
    for i, part in enumerate(path.split(".")):
        if part.isdigit():
            words.append(str(int(part) + 1))
        elif i == 0:
            words.append(household_field_label(part))
        else:
            words.append(tr(*PATH_WORDS[part]) if part in PATH_WORDS else part)
    return " ".join(words)


def yuan(value):
    """An amount of money as people write it: 12,345.50."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return ""
    return f"{value:,.2f}"


def init_app(app):
    app.add_template_filter(yuan)
    app.jinja_env.globals.update(field_type_label=field_type_label, field_path_label=field_path_label,
                                 relation_words=RELATIONS)
