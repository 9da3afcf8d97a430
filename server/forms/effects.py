"""What a form's answers mean beyond the form: the `effects` and `profile` blocks of a form file,
checked when the definition loads and read when a submission arrives or a profile prints. A new
form that declares them needs no Python or JS change (see docs/forms.md).

    effects:
      visit_date: visit_date                      # a date field: dates a visit (household last_visit_date)
      members: members                            # a repeat of member fields: replaces the member list
      followups: {repeat: followups, action: action, due: due_date}     # promises made
      followup_answers: {repeat: promises, id: followup_id, status: status, note: note}
      help_value: {repeat: help_given, quantity: quantity, price: price}  # yuan of consumption help
      household:                                  # attribute changes; the first case whose `if` holds
        - if: {field: consent, op: eq, value: "yes"}
          set: {pv_status: {stage: {field: grid_stage}, capacity_kw: {field: capacity_kw}}}
    profile:
      section: visits | pv                        # where its submissions print
      date: visit_date                            # the date they print under (default: created_at)
      fields: [visit_type, present, topics]       # the answers shown, in this order
      income: {sources: [income_wages, ...], total: income_total}

Nothing here knows Flask or the store.
"""

from server.forms.wording import said
from server.forms.conditions import ConditionError, check_condition, compiled, is_number

MEMBER_FIELDS = ("name", "relation", "sex", "birth_year", "health", "schooling", "work")
SETTABLE = ("head_name", "phone", "address", "group", "category", "population", "pv_status", "ledger")
MERGED = ("pv_status", "ledger")  # dict attributes a case merges into rather than replaces
FOLLOWUP_STATES = ("done", "in_progress", "dropped")
PROFILE_SECTIONS = ("visits", "pv")
EFFECT_KEYS = ("visit_date", "members", "followups", "followup_answers", "help_value", "household")
# The child of the help_value repeat that names who bought (figures count help by it; the profile
# prints it beside the product). household_visit has `channel` from version 3.
HELP_CHANNELS = ("channel", "buyer_channel")


def help_channel_child(children):
    """The buyer-channel question among a help repeat's `children` (HELP_CHANNELS, in that order
    of preference), or None: the one rule the figures and the profile read the channel by."""
    by_name = {c.get("name"): c for c in children or [] if isinstance(c, dict)}
    return next((by_name[n] for n in HELP_CHANNELS if n in by_name), None)


def _field(top, name, types, where, problems):
    field = top.get(name) if isinstance(name, str) else None
    if field is None:
        problems.append((where, said(f"{name!r} 不是本表单的问题",
                                      f"names {name!r}, which is not a question of this form")))
        return None
    if field.get("type") not in types:
        problems.append((where, said(f"{name!r} 必须是 {' 或 '.join(types)} 类型的问题",
                                      f"{name!r} must be a {' or '.join(types)} question")))
        return None
    return field


def _child(repeat, name, types, where, problems, required=True):
    if name is None and not required:
        return None
    children = {c["name"]: c for c in repeat.get("fields") or [] if isinstance(c, dict) and "name" in c}
    child = children.get(name) if isinstance(name, str) else None
    if child is None:
        problems.append((where, said(f"{name!r} 不是重复组 {repeat['name']!r} 中的问题",
                                      f"names {name!r}, which is not a question of the repeat {repeat['name']!r}")))
        return None
    if child.get("type") not in types:
        problems.append((where, said(f"{repeat['name']}.{name} 必须是 {' 或 '.join(types)} 类型的问题",
                                      f"{repeat['name']}.{name} must be a {' or '.join(types)} question")))
        return None
    return child


def _mapping(value, keys, where, problems, required):
    if not isinstance(value, dict) or set(value) - set(keys) or not set(required) <= set(value):
        optional = ', '.join(k for k in keys if k not in required)
        problems.append((where, said(f"必须是含有 {', '.join(required)} 的映射"
                                     + (f"（可选：{optional}）" if optional else ""),
                                     f"must be a mapping with {', '.join(required)}"
                                     + (f" (and optionally {optional})" if optional else ""))))
        return None
    return value


def check_effects(effects, top):
    """Problems [(where, message)] with an `effects` block; `top` maps every answer field
    (sections opened) by name."""
    problems = []
    if effects is None:
        return problems
    if not isinstance(effects, dict) or set(effects) - set(EFFECT_KEYS):
        return [("effects", said(f"effects 只能包含 {', '.join(EFFECT_KEYS)}",
                                 f"effects may hold only {', '.join(EFFECT_KEYS)}"))]
    if "visit_date" in effects:
        _field(top, effects["visit_date"], ("date",), "effects.visit_date", problems)
    if "members" in effects:
        repeat = _field(top, effects["members"], ("repeat",), "effects.members", problems)
        if repeat:
            names = {c.get("name") for c in repeat.get("fields") or []}
            extra = sorted(n for n in names if n not in MEMBER_FIELDS)
            if "name" not in names or extra:
                problems.append(("effects.members", said(
                    f"这个重复组的问题必须是家庭成员字段（{', '.join(MEMBER_FIELDS)}），且含有 name",
                    "the repeat's questions must be household member "
                    f"fields ({', '.join(MEMBER_FIELDS)}), with name")))
    if "followups" in effects:
        spec = _mapping(effects["followups"], ("repeat", "action", "due"), "effects.followups",
                        problems, ("repeat", "action", "due"))
        repeat = spec and _field(top, spec["repeat"], ("repeat",), "effects.followups.repeat", problems)
        if repeat:
            _child(repeat, spec["action"], ("text", "textarea"), "effects.followups.action", problems)
            _child(repeat, spec["due"], ("date",), "effects.followups.due", problems)
    if "followup_answers" in effects:
        where = "effects.followup_answers"
        spec = _mapping(effects["followup_answers"], ("repeat", "id", "status", "note"), where,
                        problems, ("repeat", "id", "status"))
        repeat = spec and _field(top, spec["repeat"], ("repeat",), where + ".repeat", problems)
        if repeat:
            if repeat.get("prefill") != "open_followups":
                problems.append((where, said(f"重复组 {repeat['name']!r} 需要 prefill: open_followups",
                                              f"the repeat {repeat['name']!r} needs prefill: open_followups")))
            _child(repeat, spec["id"], ("text",), where + ".id", problems)
            status = _child(repeat, spec["status"], ("select_one",), where + ".status", problems)
            if status and not {c.get("name") for c in status.get("choices") or []} <= set(FOLLOWUP_STATES):
                problems.append((where + ".status", said(f"选项必须在 {', '.join(FOLLOWUP_STATES)} 之中",
                                                          f"choices must be among {', '.join(FOLLOWUP_STATES)}")))
            _child(repeat, spec.get("note"), ("text", "textarea"), where + ".note", problems, required=False)
    if "help_value" in effects:
        where = "effects.help_value"
        spec = _mapping(effects["help_value"], ("repeat", "quantity", "price"), where, problems,
                        ("repeat", "quantity", "price"))
        repeat = spec and _field(top, spec["repeat"], ("repeat",), where + ".repeat", problems)
        if repeat:
            _child(repeat, spec["quantity"], ("integer", "decimal"), where + ".quantity", problems)
            _child(repeat, spec["price"], ("integer", "decimal"), where + ".price", problems)
    if "household" in effects:
        _check_cases(effects["household"], top, problems)
    return problems


def _check_cases(cases, top, problems):
    where = "effects.household"
    if not isinstance(cases, list) or not cases:
        problems.append((where, said("必须是 {if: 条件, set: {...}} 情形的列表",
                                      "must be a list of {if: CONDITION, set: {...}} cases")))
        return
    for i, case in enumerate(cases):
        at = f"{where}#{i + 1}"
        if not isinstance(case, dict) or set(case) - {"if", "set"} or "set" not in case:
            problems.append((at, said("每个情形写成 {if: 条件, set: {属性: 值}}（if 可省略）",
                                       "a case is {if: CONDITION, set: {ATTRIBUTE: VALUE}} (if is optional)")))
            continue
        if "if" in case:
            found, names = check_condition(case["if"], at + ".if")
            problems.extend((at, p) for p in found)
            problems.extend((at, said(f"if 引用了 {n!r}，它不是本表单的问题",
                                      f"if refers to {n!r}, which is not a question of this form"))
                            for n in names if n not in top)
        sets = case["set"]
        if not isinstance(sets, dict) or not sets or set(sets) - set(SETTABLE):
            problems.append((at, said(f"set 只能修改 {', '.join(SETTABLE)}",
                                       f"set may change only {', '.join(SETTABLE)}")))
            continue
        for attribute, value in sets.items():
            values = value.values() if attribute in MERGED and isinstance(value, dict) else [value]
            if attribute in MERGED and not isinstance(value, dict):
                problems.append((at, said(f"set.{attribute} 必须是其各键的映射",
                                           f"set.{attribute} must be a mapping of its keys")))
            for v in values:
                if isinstance(v, dict):
                    if set(v) != {"field"} or v["field"] not in top:
                        problems.append((at, said(f"set.{attribute}：值只能是常量或指向本表单问题的 {{field: 名称}}",
                                                  f"set.{attribute}: a value is a literal or {{field: NAME}} "
                                                  f"naming a question of this form")))
                elif isinstance(v, list):
                    problems.append((at, said(f"set.{attribute}：值只能是常量或 {{field: 名称}}",
                                               f"set.{attribute}: a value is a literal or {{field: NAME}}")))


def check_profile(profile, top):
    problems = []
    if profile is None:
        return problems
    keys = ("section", "date", "fields", "income")
    if not isinstance(profile, dict) or set(profile) - set(keys):
        return [("profile", said(f"profile 只能包含 {', '.join(keys)}",
                                  f"profile may hold only {', '.join(keys)}"))]
    if profile.get("section", "visits") not in PROFILE_SECTIONS:
        problems.append(("profile.section", said(f"必须是以下之一：{', '.join(PROFILE_SECTIONS)}",
                                                  f"must be one of {', '.join(PROFILE_SECTIONS)}")))
    if "date" in profile:
        _field(top, profile["date"], ("date",), "profile.date", problems)
    shown = profile.get("fields", [])
    if not isinstance(shown, list):
        problems.append(("profile.fields", said("必须是问题名称的列表", "must be a list of question names")))
    else:
        for name in shown:
            if name not in top:
                problems.append(("profile.fields", said(f"{name!r} 不是本表单的问题",
                                                         f"{name!r} is not a question of this form")))
    if "income" in profile:
        income = _mapping(profile["income"], ("sources", "total"), "profile.income", problems, ("sources",))
        if income:
            if not isinstance(income["sources"], list) or not income["sources"]:
                problems.append(("profile.income.sources", said("必须是数字问题的列表",
                                                                 "must be a list of number questions")))
            else:
                for name in income["sources"]:
                    _field(top, name, ("integer", "decimal"), "profile.income.sources", problems)
            if "total" in income:
                _field(top, income["total"], ("integer", "decimal"), "profile.income.total", problems)
    return problems


# ---- applying them ------------------------------------------------------------------------------


def _value(spec, answers):
    if isinstance(spec, dict):
        return answers.get(spec["field"])
    return spec


def _number(value):
    return value if is_number(value) else None


def of(definition, answers, *, at=None, today=None):
    """What validated answers do, per the definition's `effects`:
    {"changes": {attribute: value}, "visit_date", "followups": [{"index", "action", "due_date"}],
     "followup_answers": [{"index", "id", "status", "note"}], "help_value": yuan or None}.
    `at` (the phone's created_at) stamps a pv_status change."""
    effects = definition.get("effects") or {}
    out = {"changes": {}, "visit_date": None, "followups": [], "followup_answers": [],
           "help_value": None}
    if not isinstance(answers, dict):
        return out
    name = effects.get("visit_date")
    if name and isinstance(answers.get(name), str):
        out["visit_date"] = answers[name]
    name = effects.get("members")
    if name and isinstance(answers.get(name), list) and answers[name]:
        members = []
        for entry in answers[name]:
            if isinstance(entry, dict):
                members.append({k: entry.get(k) if k == "birth_year" else (entry.get(k) or "")
                                for k in MEMBER_FIELDS})
        out["changes"]["members"] = members
        out["changes"]["population"] = len(members)
    spec = effects.get("followups")
    if spec:
        for i, entry in enumerate(answers.get(spec["repeat"]) or []):
            if isinstance(entry, dict) and entry.get(spec["action"]) and entry.get(spec["due"]):
                out["followups"].append({"index": i, "action": entry[spec["action"]],
                                         "due_date": entry[spec["due"]]})
    spec = effects.get("followup_answers")
    if spec:
        for i, entry in enumerate(answers.get(spec["repeat"]) or []):
            if isinstance(entry, dict):
                out["followup_answers"].append({
                    "index": i, "field": f"{spec['repeat']}.{i}.{spec['id']}",
                    "id": entry.get(spec["id"]), "status": entry.get(spec["status"]),
                    "note": (entry.get(spec["note"]) or "") if spec.get("note") else ""})
    spec = effects.get("help_value")
    if spec:
        total = 0.0
        for entry in answers.get(spec["repeat"]) or []:
            if isinstance(entry, dict):
                q, p = _number(entry.get(spec["quantity"])), _number(entry.get(spec["price"]))
                if q is not None and p is not None:
                    total += q * p
        out["help_value"] = round(total, 2)
    for case in effects.get("household") or []:
        try:
            holds = "if" not in case or compiled(case["if"])(answers, today=today)
        except ConditionError:
            holds = False
        if not holds:
            continue
        for attribute, value in case["set"].items():
            if attribute in MERGED:
                merged = {k: _value(v, answers) for k, v in value.items()}
                if attribute == "pv_status" and at:
                    merged.setdefault("updated_at", at)
                out["changes"][attribute] = merged
            else:
                out["changes"][attribute] = _value(value, answers)
        break
    return out


def profile_of(definition):
    """The definition's profile block with its defaults filled in."""
    profile = dict(definition.get("profile") or {})
    profile.setdefault("section", "visits")
    profile.setdefault("fields", [])
    return profile
