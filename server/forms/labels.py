"""Words people read instead of codes, in Chinese and English, in one place: PV stages from the
forms, question types, money, field paths, review states, household attributes and where a change
came from, audit actions and details, and values as a ledger shows them.

PV stages come from the forms: the values a form's `effects.household` cases give
`pv_status.stage` — a choice question's choices (labelled by the form) or a literal word. The
cases are written most-advanced first (the first that holds wins), so read backwards they give
the programme's order: interested, then the choice stages in the form's order, declined last.
"""

from flask import current_app

from server.core.clock import show
from server.core.i18n import PV_STAGE_WORDS, category_label, label, role_label, tr
from server.core import words

FIELD_TYPES = {
    "text": ("文字", "text"), "textarea": ("多行文字", "long text"), "integer": ("整数", "whole number"),
    "decimal": ("数字", "number"), "date": ("日期", "date"), "select_one": ("单选", "choose one"),
    "select_multiple": ("多选", "choose any"), "geopoint": ("定位", "location"), "photo": ("照片", "photo"),
    "signature": ("签名", "signature"), "note": ("说明", "note"), "repeat": ("可重复的一组", "repeated entries"),
    "time": ("时间", "time"), "datetime": ("日期时间", "date and time"), "range": ("滑块数字", "range"),
    "audio": ("录音", "audio"), "video": ("视频", "video"), "file": ("文件", "file"),
    "barcode": ("条码", "barcode"), "calculate": ("计算值", "calculated"), "acknowledge": ("确认", "acknowledge"),
    "geotrace": ("路线", "line"), "geoshape": ("地块轮廓", "shape"), "hidden": ("隐藏值", "hidden"),
    "start": ("开始时间", "start time"), "end": ("结束时间", "end time"), "today": ("当天日期", "today"),
    "deviceid": ("设备号", "device id"),
}
RELATIONS = ("户主", "配偶", "长子", "次子", "长女", "次女", "儿子", "女儿", "儿媳", "女婿", "孙子", "孙女",
             "父亲", "母亲", "兄弟", "姐妹", "其他")


def _registry():
    from server.forms import formdefs
    try:
        return formdefs.registry(current_app)
    except (RuntimeError, KeyError):
        return None


def _stage_cases(definition):
    """[(stage, {zh, en} or None)] a definition's household cases can set, in programme order."""
    from server.forms import formdefs
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
            zh, en = PV_STAGE_WORDS.get(stage, (stage, stage))
            text = {"zh": zh, "en": en}
        out.append((stage, text))
    if len(_stages_cache) > 20:
        _stages_cache.clear()
    _stages_cache[id(registry)] = (registry, out)
    return out


def pv_stage_label(stage):
    """The PV form's own words for a stage ("" for none)."""
    if not stage:
        return ""
    for code, text in pv_stages():
        if code == stage:
            return label(text)
    zh, en = PV_STAGE_WORDS.get(stage, (tr("其他", "Other"),) * 2)
    return tr(zh, en)


def field_type_label(kind):
    zh, en = FIELD_TYPES.get(kind, ("", ""))
    return tr(zh, en)


PATH_WORDS = {
    "name": ("姓名", "name"), "relation": ("关系", "relation"), "sex": ("性别", "sex"),
    "birth_year": ("出生年份", "birth year"), "health": ("健康", "health"),
    "schooling": ("文化/在校", "schooling"), "work": ("就业", "work"), "area_mu": ("面积（亩）", "area (mu)"),
    "east": ("东至", "east"), "west": ("西至", "west"), "south": ("南至", "south"), "north": ("北至", "north"),
    "contract_signed": ("承包合同", "contract"), "code": ("地块编码", "plot code"),
    "contract_no": ("合同编号", "contract no."), "state": ("状态", "state"), "note": ("备注", "note"),
}


def field_path_label(path):
    """'members.2.birth_year' -> '家庭成员 3 出生年份': where an error is, as people name it."""
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


STATES = {
    "received": ("待审核", "Received"),
    "has_issues": ("需修改", "Returned for changes"),
    "approved": words.pair("approved"),
    "superseded": ("已更正", "Corrected"),
}

HOUSEHOLD_FIELDS = {
    "head_name": ("户主姓名", "Head of household"),
    "phone": words.pair("phone"),
    "address": words.pair("address"),
    "group": words.pair("group"),
    "category": ("类别", "Category"),
    "population": ("家庭人口", "Population"),
    "members": ("家庭成员", "Members"),
    "plots": ("承包地块", "Land plots"),
    "pv_status": ("光伏", "Rooftop PV"),
    "cadre_ids": ("结对干部", "Paired cadres"),
}

ACTIONS = {
    "submission": ("提交记录", "Submission received"),
    "review": ("审核", "Review decision"),
    "household_edit": ("修改农户", "Household changed"),
    "household_create": ("新建农户", "Household created"),
    "import_roster": ("导入花名册", "Roster imported"),
    "import_ledger": ("导入土地台账", "Land ledger imported"),
    "ledger_link_create": ("生成远程确认链接", "Confirmation link made"),
    "ledger_link_open": ("打开远程确认链接", "Confirmation link opened"),
    "ledger_link_use": ("远程确认/异议", "Confirmed or objected from afar"),
    "ledger_link_revoke": ("撤销远程确认链接", "Confirmation link revoked"),
    "export_full_ids": ("导出完整身份证号", "Export with full ID numbers"),
    "user_create": ("新建用户", "User created"),
    "user_update": ("修改用户", "User changed"),
    "load_demo": ("导入演示数据", "Demo data loaded"),
    "user_villages": ("调整负责的村", "User's villages changed"),
    "user_password": ("重置密码", "Password reset"),
    "user_password_own": ("本人修改密码", "Own password changed"),
    "user_import": ("批量导入用户", "Users imported"),
    "forbidden": ("越权操作被拒绝", "Refused: not allowed"),
    "user_deactivate": ("停用用户", "User deactivated"),
    "user_activate": ("启用用户", "User activated"),
    "device_create": ("添加 ODK 设备", "ODK device added"),
    "device_revoke": ("撤销 ODK 设备", "ODK device revoked"),
    "phone_erased": ("手机已清除", "Phone erased"),
    "village_create": ("新建村", "Village created"),
    "village_update": ("修改村", "Village changed"),
    "pairing_bulk": ("批量结对", "Households paired"),
    "pairing_move": ("转移结对", "Pairing moved"),
    "form_publish": ("发布表单", "Form published"),
    "backup": ("备份", "Backup"),
    "restore": ("从备份恢复", "Restored from a backup"),
    "restore_staged": ("准备从备份恢复（下次启动生效）", "Restore staged (applies at the next start)"),
}

SEXES = {"male": ("男", "male"), "female": ("女", "female")}
FOLLOWUP_STATES = {"done": ("已办结", "done"), "in_progress": ("办理中", "in progress"),
                   "dropped": ("不再办理", "dropped")}


def followup_status(code):
    """A follow-up's state as people say it (a clash between two answers shows both)."""
    return _pick(FOLLOWUP_STATES, code)


def _pick(table, code):
    pair = table.get(code)
    return tr(*pair) if pair else ("" if code is None else str(code))


def state_label(code):
    return _pick(STATES, code or "received")


def review_state(doc):
    """The state a person should read for a submission: a corrected one is 已更正."""
    if doc.get("superseded_by"):
        return "superseded"
    return (doc.get("review") or {}).get("state") or "received"


def household_field_label(name):
    return _pick(HOUSEHOLD_FIELDS, name)


def action_label(code):
    return _pick(ACTIONS, code)


def sex_label(code):
    return _pick(SEXES, code) if code else ""


def source_label(source):
    """Where a household change came from, in words (the submission or entry named elsewhere)."""
    kind, _, _rest = (source or "").partition(":")
    return {
        "submission": tr("走访/登记记录", "a visit or enrollment"),
        "undo": tr("撤销一次修改", "undoing a change"),
        "web": tr("网页修改", "an edit on the web"),
        "api": tr("手机修改", "an edit from the phone"),
        "pairing": tr("调整结对", "pairing"),
        "roster": tr("导入花名册", "roster import"),
    }.get(kind, source or "")


def household_value(field, value, names=None):
    """A household attribute's value as one line a person reads (history, clashes)."""
    if value is None or value == "" or value == []:
        return tr("（空）", "(empty)")
    if field == "category":
        return category_label(value)
    if field == "members" and isinstance(value, list):
        shown = "、".join(str(m.get("name", "")) for m in value[:8] if isinstance(m, dict))
        more = "…" if len(value) > 8 else ""
        return tr(f"{len(value)} 人：{shown}{more}", f"{len(value)}: {shown}{more}")
    if field == "plots" and isinstance(value, list):
        area = sum(p.get("area_mu") or 0 for p in value if isinstance(p, dict))
        shown = "、".join(str(p.get("name", "")) for p in value[:6] if isinstance(p, dict))
        return tr(f"{len(value)} 块，共 {area:g} 亩（{shown}）", f"{len(value)} plots, {area:g} mu ({shown})")
    if field == "pv_status" and isinstance(value, dict):
        parts = [pv_stage_label(value.get("stage"))]
        if value.get("capacity_kw"):
            parts.append(f"{value['capacity_kw']:g} kW")
        return " · ".join(parts)
    if field == "cadre_ids" and isinstance(value, list):
        return "、".join((names or {}).get(c, c) for c in value)
    if isinstance(value, bool):
        return tr(*words.yes_no(value))
    return str(value)


ROW_FIELDS = {
    "relation": ("与户主关系", "relation"), "sex": ("性别", "sex"), "birth_year": ("出生年份", "born"),
    "health": ("健康状况", "health"), "schooling": ("文化程度", "schooling"), "work": ("务工情况", "work"),
    "area_mu": ("面积（亩）", "area (mu)"), "east": ("东至", "east"), "west": ("西至", "west"),
    "south": ("南至", "south"), "north": ("北至", "north"), "contract_signed": ("承包合同", "contract"),
}


def _row_value(key, value):
    if key == "sex":
        return sex_label(value) or tr("（空）", "(empty)")
    if key == "contract_signed":
        return tr(*words.signed(value))
    return tr("（空）", "(empty)") if value in (None, "") else str(value)


def household_change(field, before, after, names=None):
    """What one change did to an attribute, as lines: for members and plots, who or which plot
    came, went or changed in what; for the rest, before -> after."""
    if field in ("members", "plots") and isinstance(before or [], list) and isinstance(after or [], list):
        old = {str(r.get("name")): r for r in before or [] if isinstance(r, dict)}
        new = {str(r.get("name")): r for r in after or [] if isinstance(r, dict)}
        lines = []
        for name, row in new.items():
            if name not in old:
                lines.append(tr(f"新增：{name}", f"added: {name}"))
                continue
            for key, pair in ROW_FIELDS.items():
                if key in row and row.get(key) != old[name].get(key):
                    lines.append(f"{name}：{tr(*pair)} {_row_value(key, old[name].get(key))} → "
                                 f"{_row_value(key, row.get(key))}")
        lines += [tr(f"减少：{name}", f"removed: {name}") for name in old if name not in new]
        if lines:
            return lines
    return [f"{household_value(field, before, names)} → {household_value(field, after, names)}"]


def form_title(form_id, version=None):
    """A form's title in the page's language (by the submission's version when given)."""
    from server.forms import formdefs
    registry = formdefs.registry()
    definition = registry.get(form_id, version) or registry.get(form_id)
    return label(definition.get("title")) if definition else str(form_id or "")


# Keys of audit entries' details, as the audit page shows them (the exports keep the raw JSON).
DETAIL_KEYS = {
    "attempted": ("试图进行", "Attempted"), "reason": ("原因", "Reason"), "import": ("批量导入", "Imported"),
    "one_time": ("一次性密码", "One-time password"), "row_numbers": ("所在行", "Rows"),
    "role": ("角色", "Role"), "villages": ("村", "Villages"), "village_id": ("村", "Village"),
    "households": words.pair("households"), "submissions": ("记录", "Submissions"),
    "reviews": ("审核", "Reviews"), "users": ("用户", "Users"), "rows": ("行数", "Rows"),
    "seq": ("序号", "Sequence"), "state": ("状态", "State"), "fields": ("字段", "Fields"),
    "version": ("版本", "Version"), "comment": ("意见", "Comment"), "created": ("新建", "Created"),
    "updated": ("更新", "Updated"), "paired": ("已结对", "Paired"), "moved": ("已转移", "Moved"),
    "display_name": words.pair("name"), "name": ("名称", "Name"), "township": words.pair("township"),
    "county": words.pair("county"), "to": ("转给", "To"), "form_version": ("表单版本", "Form version"),
    "supersedes": ("更正的记录", "Corrects"), "household_id": ("农户", "Household"),
    "form": ("表单", "Form"), "from_state": ("原状态", "Previous state"), "clash": ("冲突", "Clash"),
    "category": ("类别", "Category"),
    "source": ("来源", "Source"), "submission": ("依据记录", "From submission"),
    "previous": ("原版本", "Previous version"), "sha256": ("文件校验", "File checksum"),
    "base_version": ("依据版本", "Based on version"), "unchanged": ("未变", "Unchanged"),
    "errors": ("错误", "Errors"), "cadre_id": ("驻村干部", "Cadre"), "from": ("原干部", "From"),
    "epoch": ("数据纪元", "Data epoch"), "via": ("方式", "Via"),
}
CLASHES = {"soft": ("不同字段同时修改（已合并）", "different fields edited at once (merged)"),
           "hard": ("同一字段同时修改", "the same field edited at once"),
           "followup": ("已在别处办结的跟进事项又被回答", "a follow-up closed elsewhere answered again")}
DETAIL_VALUES = {"role": role_label, "state": state_label, "from_state": state_label,
                 "form": form_title, "clash": lambda code: _pick(CLASHES, code),
                 "category": category_label, "source": source_label,
                 "attempted": lambda code: action_label(code) if code in ACTIONS else code,
                 "fields": lambda name: _pick(HOUSEHOLD_FIELDS, name) if name in HOUSEHOLD_FIELDS else name,
                 "sha256": lambda digest: digest[:12] + "…" if len(digest) > 12 else digest}
# Keys whose value is an internal reference a person cannot act on: left out of the page.
HIDDEN_DETAIL_KEYS = ()


def details_text(details, limit=2000):
    """An audit entry's details in words: "角色：驻村干部；村：430699101001", keys and known codes
    labelled, lists joined, nested objects inline; cut at `limit` characters."""
    def value(key, v):
        if key in DETAIL_VALUES and isinstance(v, str):
            return DETAIL_VALUES[key](v)
        if isinstance(v, bool):
            return tr(*words.yes_no(v))
        if isinstance(v, list):
            return tr("、", ", ").join(value(key, x) for x in v) if v else tr("（无）", "(none)")
        if isinstance(v, dict):
            return "（" + pairs(v) + "）" if v else tr("（无）", "(none)")
        return "" if v is None else str(v)

    def pairs(d):
        """Each known key in words; an empty value (no clash, nothing superseded) says nothing, so
        it is left out rather than shown as "key:"."""
        shown = [(k, value(k, v)) for k, v in sorted(d.items())
                 if v not in (None, "", [], {}) and k not in HIDDEN_DETAIL_KEYS]
        return tr("；", "; ").join(f"{_pick(DETAIL_KEYS, k) if k in DETAIL_KEYS else k}{tr('：', ': ')}{text}"
                                  for k, text in shown if text != "")

    if not isinstance(details, dict):
        return value("", details)[:limit]
    text = pairs(details)
    return text if len(text) <= limit else text[:limit - 1] + "…"


def init_app(app):
    app.add_template_filter(yuan)
    app.jinja_env.globals.update(
        field_type_label=field_type_label, field_path_label=field_path_label, relation_words=RELATIONS,
        form_title=form_title, household_change=household_change, state_label=state_label,
        review_state=review_state, household_field_label=household_field_label,
        household_value=household_value, source_label=source_label, action_label=action_label,
        pv_stage_label=pv_stage_label, sex_label=sex_label, show_time=show, form_label=label,
        followup_status=followup_status)
