"""Form definitions as data: load and check the YAML files in forms/, archive every version, and
validate submitted answers against the version they were made with (see docs/forms.md).

The server re-validates every answer; the phone's validation is a convenience, never the guard.
"""

import datetime
import hashlib
import json
import math
import os
import re
from pathlib import Path

import yaml

from server.forms import effects as form_effects
from server.forms import conditions
from server.forms import xpath
from server.forms.wording import Said, prefixed, said, zh_of
from server.forms.conditions import (NAME_RE, ConditionError, check_condition, check_expression, is_answered, is_number)
from server.core.files import write_atomic
from server.core.text import CONTROL_RE

# The types XLSForm brings (docs/forms.md, "Writing a form in Excel"): their answers are checked
# here like the others; the phone renders what it knows (see docs for which).
XLS_TYPES = ("time", "datetime", "range", "audio", "video", "file", "barcode", "calculate",
             "acknowledge", "geotrace", "geoshape", "hidden", "start", "end", "today", "deviceid", "rank")
SELECT_TYPES = ("select_one", "select_multiple", "rank")
FIELD_TYPES = ("text", "textarea", "integer", "decimal", "date", "select_one", "select_multiple",
               "geopoint", "photo", "signature", "note", "repeat", "group") + XLS_TYPES
FORM_KEYS = {"id", "version", "title", "subject", "fields", "effects", "profile", "settings"}
FIELD_KEYS = {"name", "type", "label", "hint", "required", "choices", "min", "max", "relevant",
              "constraint", "constraint_message", "fields", "min_count", "max_count", "compute",
              "readonly", "prefill", "required_message", "default", "appearance", "parameters",
              "choice_filter", "step", "count", "choices_file"}
GROUP_KEYS = {"name", "type", "label", "hint", "relevant", "fields", "appearance"}
# Answer names: XLSForm's names are kept as they are (answers are keyed by them), so upper-case
# letters and a leading _ are allowed; dots and hyphens are not (they would break answer paths).
FIELD_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]{0,63}\Z")
ATTACHMENT_TYPES = ("photo", "signature", "audio", "video", "file")
# Types whose value an expression may compute (XPath `compute`).
XPATH_COMPUTED = ("integer", "decimal", "text", "textarea", "date", "time", "datetime", "select_one",
                  "select_multiple", "calculate", "hidden", "range", "barcode")
MAX_REPEAT_DEPTH = 3
PREFILLS = ("open_followups",)
SUBJECTS = ("household",)

ID_RE = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
# A choice name: up to 64 characters without spaces (a select_multiple's answer separates them by
# spaces in XLSForm) or control characters; exports keep leading = + - @ from running as formulas.
CHOICE_RE = re.compile(r"^[^\s\x00-\x1f\x7f]{1,64}\Z")
ISO_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
# The same rule as the attachment upload: starts with a letter or digit, no "..", no slashes.
ATTACHMENT_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}\Z")


def is_safe_attachment_name(name):
    """A plain file name: it becomes a path under the data folder, so no separators and no '..'."""
    return isinstance(name, str) and bool(ATTACHMENT_RE.match(name)) and ".." not in name
TEXT_MAX = {"text": 500, "textarea": 5000}
MAX_REPEAT_ENTRIES = 200
MAX_NUMBER = 1e15
MAX_ERRORS = 50


class FormDefinitionError(Exception):
    """A form file (or archived version) that cannot be used; str() names the file and field."""

    def __init__(self, file, field, message, problems=None):
        self.file, self.field, self.message = str(file), field, message
        # [(field, Said)] when the checker found several problems (the page lists them one by one)
        self.problems = problems
        where = f"{self.file}: field {field}: " if field else f"{self.file}: "
        super().__init__(where + message)


# =============================================================================================
# Checking a definition


def _bilingual_problem(value, required=True):
    if value is None and not required:
        return None
    if (not isinstance(value, dict) or set(value) != {"zh", "en"}
            or not all(isinstance(v, str) and v.strip() for v in value.values())):
        return said("必须写成 {zh: ..., en: ...}，中英文都要填写", "must be {zh: ..., en: ...} with both texts filled in")
    return None


def _is_iso_date(value):
    if not isinstance(value, str) or not ISO_DATE_RE.match(value):
        return False
    try:
        datetime.date.fromisoformat(value)
    except ValueError:
        return False
    return True


class _Checker:
    """Walks one definition, collecting (field, message) problems.

    Scope rules checked here (they keep phone and server in step): relevant and compute may only
    refer to fields before the field (inside a repeat: earlier fields of the entry, or top-level
    fields before the repeat); a constraint may refer to any top-level field, to the fields of its
    own repeat entry, and to "." (its own value)."""

    def __init__(self, settings, top_names, fields=None):
        self.problems = []
        self.settings = settings
        self.top_names = set(top_names)
        self.group_names = set()
        self.repeat_depth = 0
        # Every name of the form in document order (for XPath references, which may reach into
        # repeats: sum(${child})); a name used twice is ambiguous there.
        self.order, self.position, self.twice = {}, {}, set()
        for i, f in enumerate(_walk(fields)):
            name = f.get("name")
            if isinstance(name, str):
                if name in self.order:
                    self.twice.add(name)
                self.order[name] = i
                self.position[id(f)] = i

    def add(self, field, zh, en=None):
        """A problem: (field, Chinese, English), or (field, message) for a message that is already
        bilingual (from conditions.py)."""
        self.problems.append((field, zh if en is None else Said(zh, en)))

    def fields(self, fields, path, base, repeat_names=None, in_group=False):
        """Check a list of fields; base: the fields visible before the list starts (name -> field).
        Returns the answer fields checked, by name (a group's fields, not the group itself)."""
        if not isinstance(fields, list) or not fields:
            self.add(path or None, "fields 必须是非空列表", "fields must be a non-empty list")
            return {}
        seen = {}
        top_level = not path and repeat_names is None and not in_group
        kinds = {f.get("type") == "group" for f in fields if isinstance(f, dict)}
        if top_level and kinds == {True, False}:
            self.add(None, "表单有分节（type: group）时，顶层的每个问题都必须放在某一节里，手机才有对应的页面",
                     "when a form has sections (type: group), every top-level question must be "
                     "inside one, so the phone has a page for it")
        for i, field in enumerate(fields):
            if not isinstance(field, dict):
                self.add(f"{path}#{i + 1}" if path else f"#{i + 1}", "字段必须是映射（键: 值）", "a field must be a mapping")
                continue
            name = field.get("name")
            if not isinstance(name, str) or not FIELD_NAME_RE.match(name):
                where = f"{path}#{i + 1}" if path else f"#{i + 1}"
                self.add(where, "name 只能由字母、数字、_ 和 - 组成（以字母或 _ 开头）",
                         "name must be letters, digits, _ and - (starting with a letter or _)")
                continue
            where = f"{path}.{name}" if path else name
            if name in seen or name in self.group_names:
                self.add(where, "这个名称用了两次", "the name is used twice")
                continue
            if field.get("type") == "group":
                if not top_level:
                    self.add(where, "分节（type: group）只能放在表单的顶层",
                             "a section (type: group) may only stand at the top level of a form")
                    continue
                self.group_names.add(name)
                seen.update(self.group(field, where, {**base, **seen}))
                continue
            self.field(field, where, {**base, **seen}, repeat_names)
            seen[name] = field
        return seen

    def group(self, field, where, earlier):
        """A section: a page of top-level questions. Its relevance (ANDed into its questions') may
        refer only to questions before it, so the phone can decide it before showing the page."""
        unknown = set(field) - GROUP_KEYS
        if unknown:
            keys = ', '.join(sorted(map(str, unknown)))
            self.add(where, f"分节中有未知的键：{keys}", f"unknown keys for a section: {keys}")
        problem = _bilingual_problem(field.get("label"))
        if problem:
            self.add(where, prefixed("label ", "label ", problem))
        problem = _bilingual_problem(field.get("hint"), required=False)
        if problem:
            self.add(where, prefixed("hint ", "hint ", problem))
        if "relevant" in field:
            problems, names = check_condition(field["relevant"], "relevant")
            for p in problems:
                self.add(where, p)
            for ref in names:
                if ref == "." or ref not in earlier:
                    self.add(where, f"分节的 relevant 引用了 {ref!r}，它不是本节之前的问题",
                             f"a section's relevant refers to {ref!r}, which is not a question "
                             f"before the section")
        return self.fields(field.get("fields"), "", earlier, in_group=True)

    def field(self, field, where, earlier, repeat_names):
        unknown = set(field) - FIELD_KEYS
        if unknown:
            keys = ', '.join(sorted(map(str, unknown)))
            self.add(where, f"未知的键：{keys}", f"unknown keys: {keys}")
        kind = field.get("type")
        if kind not in FIELD_TYPES:
            self.add(where, f"type 必须是以下之一：{', '.join(FIELD_TYPES)}（现在是 {kind!r}）",
                     f"type must be one of {', '.join(FIELD_TYPES)} (got {kind!r})")
            return
        problem = _bilingual_problem(field.get("label"))
        if problem:
            self.add(where, prefixed("label ", "label ", problem))
        problem = _bilingual_problem(field.get("hint"), required=False)
        if problem:
            self.add(where, prefixed("hint ", "hint ", problem))
        for flag in ("required", "readonly"):
            if flag in field and not isinstance(field[flag], bool):
                self.add(where, f"{flag} 必须是 true 或 false", f"{flag} must be true or false")
        if kind == "note" and (field.get("required") or "constraint" in field or "compute" in field):
            self.add(where, "说明（note）不接受回答：不能有 required、constraint 或 compute",
                     "a note takes no answer: no required, constraint or compute")
        self.extras(field, kind, where)
        self.choices(field, kind, where)
        self.bounds(field, kind, where)
        self.conditions(field, where, earlier, repeat_names)
        self.repeat(field, kind, where, earlier, repeat_names)
        self.computed(field, kind, where, earlier)

    def extras(self, field, kind, where):
        """The keys XLSForm brings: kept as data (appearance, parameters, default) or checked."""
        problem = _bilingual_problem(field.get("required_message"), required=False)
        if problem:
            self.add(where, prefixed("required_message ", "required_message ", problem))
        for key in ("default", "appearance", "parameters", "choices_file"):
            if key in field and not isinstance(field[key], str):
                self.add(where, f"{key} 必须是文字", f"{key} must be text")
        if "choice_filter" in field:
            if kind not in SELECT_TYPES:
                self.add(where, "choice_filter 只用于 select_one 和 select_multiple",
                         "choice_filter is only for select_one and select_multiple")
            else:
                for ref in self.xpath_node(field["choice_filter"], "choice_filter", where, columns=True) or ():
                    if ref in self.order and not self.before(field, ref):
                        self.add(where, f"choice_filter 引用了 ${{{ref}}}，它不是本题之前的字段",
                                 f"choice_filter refers to ${{{ref}}}, which is not a field before this one")
        if "step" in field and (kind != "range" or not is_number(field["step"]) or field["step"] <= 0):
            self.add(where, "step 只用于 range，且必须是大于 0 的数", "step is only for range, and must be a number > 0")
        if "count" in field and kind != "repeat":
            self.add(where, "count 只用于 repeat", "count is only for repeat")

    def xpath_node(self, node, key, where, columns=False):
        """An {"xpath": ...} node: it parses, and its ${names} are questions of the form."""
        if not isinstance(node, dict) or set(node) != {"xpath"} or not isinstance(node["xpath"], str):
            self.add(where, f'{key} 必须写成 {{"xpath": "..."}}', f'{key} must be {{"xpath": "..."}}')
            return None
        try:
            names, _dot, cols, _functions = xpath.references(node["xpath"])
        except xpath.XPathError as exc:
            self.add(where, f"{key}：{exc.zh}", f"{key}: {exc.en}")
            return None
        if cols and not columns:
            self.add(where, f"{key}：{cols[0]!r} 不是引用：请写 ${{{cols[0]}}}",
                     f"{key}: {cols[0]!r} is not a reference: write ${{{cols[0]}}}")
        for ref in names:
            if ref not in self.order:
                self.add(where, f"{key} 引用了不存在的字段 ${{{ref}}}", f"{key} refers to unknown field ${{{ref}}}")
        return names

    def choices(self, field, kind, where):
        if kind not in SELECT_TYPES:
            if "choices" in field:
                self.add(where, "choices 只用于 select_one 和 select_multiple",
                         "choices are only for select_one and select_multiple")
            return
        choices = field.get("choices")
        if not isinstance(choices, list) or not choices:
            self.add(where, "choices 必须是非空列表", "choices must be a non-empty list")
            return
        names = set()
        for i, choice in enumerate(choices):
            if not isinstance(choice, dict) or not {"name", "label"} <= set(choice) \
                    or not set(choice) <= {"name", "label", "data"}:
                self.add(where, f"第 {i + 1} 个选项必须正好有 name 和 label（以及可选的 data）",
                         f"choice #{i + 1} must have exactly name and label (and data)")
                continue
            data = choice.get("data", {})
            if not isinstance(data, dict) or not all(isinstance(k, str) and isinstance(v, str)
                                                     for k, v in data.items()):
                self.add(where, f"第 {i + 1} 个选项：data 必须把列名对应到文字",
                         f"choice #{i + 1}: data must map column names to texts")
            name = choice["name"]
            if not isinstance(name, str) or not CHOICE_RE.match(name):
                hint = " (quote yes/no/on/off in YAML)" if isinstance(name, bool) else ""
                hint_zh = "（YAML 中 yes/no/on/off 要加引号）" if isinstance(name, bool) else ""
                self.add(where, f"第 {i + 1} 个选项：name {name!r} 必须是 1 到 64 个字符，不含空格{hint_zh}",
                         f"choice #{i + 1}: name {name!r} must be 1 to 64 characters without "
                         f"spaces{hint}")
                continue
            if name in names:
                self.add(where, f"选项 {name!r} 列了两次", f"choice {name!r} is listed twice")
            names.add(name)
            problem = _bilingual_problem(choice["label"])
            if problem:
                self.add(where, prefixed(f"选项 {name!r}：label ", f"choice {name!r}: label ", problem))

    def bounds(self, field, kind, where):
        present = [k for k in ("min", "max") if k in field]
        if not present:
            return
        if kind in ("integer", "decimal", "range"):
            ok = lambda v: is_number(v) and math.isfinite(v)  # noqa: E731
            expected, expected_zh = "a number", "数"
        elif kind == "date":
            ok = _is_iso_date
            expected, expected_zh = 'a quoted ISO date "YYYY-MM-DD"', '加引号的 ISO 日期 "YYYY-MM-DD"'
        elif kind in ("text", "textarea"):
            ok = lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 0  # noqa: E731
            expected = "a length in characters (whole number >= 0)"
            expected_zh = "字符数（大于等于 0 的整数）"
        else:
            self.add(where, f"{kind} 不使用 min/max", f"min/max are not used for {kind}")
            return
        for key in present:
            if not ok(field[key]):
                self.add(where, f"{key} 必须是{expected_zh}（现在是 {field[key]!r}）",
                         f"{key} must be {expected} (got {field[key]!r})")
                return
        if len(present) == 2 and field["min"] > field["max"]:
            self.add(where, "min 大于 max", "min is larger than max")

    def before(self, field, ref):
        """An XPath reference to a field earlier in the document (inside a repeat too)."""
        mine = self.position.get(id(field))
        return ref in self.order and ref not in self.twice and mine is not None and self.order[ref] < mine

    def conditions(self, field, where, earlier, repeat_names):
        for key in ("relevant", "constraint"):
            if key not in field:
                continue
            problems, names = check_condition(field[key], key)
            for p in problems:
                self.add(where, p)
            if problems:
                continue
            uses_xpath = _uses_xpath(field[key])
            reachable = self.top_names | set(repeat_names or ())
            for ref in names:
                if uses_xpath and ref != "." and ref in self.twice:
                    self.add(where, f"{key} 引用了 ${{{ref}}}，这个名称在表单中用了两次",
                             f"{key} refers to ${{{ref}}}, a name used twice in the form")
                elif key == "relevant" and ref == ".":
                    self.add(where, 'relevant 不能引用本题自己（"."）', 'relevant cannot refer to the field itself (".")')
                elif key == "relevant" and ref not in earlier and not (uses_xpath and self.before(field, ref)):
                    if uses_xpath and ref not in self.order:
                        self.add(where, f"relevant 引用了不存在的字段 ${{{ref}}}", f"relevant refers to unknown field ${{{ref}}}")
                    else:
                        self.add(where, f"relevant 引用了 {ref!r}，它不是本题之前的字段",
                                 f"relevant refers to {ref!r}, which is not a field before this one")
                elif key == "constraint" and ref != "." and ref not in reachable \
                        and not (uses_xpath and ref in self.order):
                    self.add(where, f"constraint 引用了不存在的字段 {ref!r}", f"constraint refers to unknown field {ref!r}")
        if "constraint_message" in field:
            if "constraint" not in field:
                self.add(where, "有 constraint_message 却没有 constraint", "constraint_message without a constraint")
            problem = _bilingual_problem(field["constraint_message"])
            if problem:
                self.add(where, prefixed("constraint_message ", "constraint_message ", problem))

    def repeat(self, field, kind, where, earlier, repeat_names):
        if "prefill" in field and (kind != "repeat" or field["prefill"] not in PREFILLS):
            self.add(where, f"prefill 只用于 repeat，且必须是以下之一：{', '.join(PREFILLS)}",
                     f"prefill is only for a repeat, and one of: {', '.join(PREFILLS)}")
        if kind != "repeat":
            for key in ("fields", "min_count", "max_count"):
                if key in field:
                    self.add(where, f"{key} 只用于 repeat", f"{key} is only for repeat")
            return
        if self.repeat_depth >= MAX_REPEAT_DEPTH:
            self.add(where, f"repeat 最多嵌套 {MAX_REPEAT_DEPTH} 层", f"repeats may be nested at most {MAX_REPEAT_DEPTH} deep")
            return
        count = field.get("count")
        if "count" in field and not (isinstance(count, int) and not isinstance(count, bool)
                                     and 0 <= count <= MAX_REPEAT_ENTRIES):
            names = self.xpath_node(count, "count", where)
            for ref in names or ():
                if not self.before(field, ref):
                    self.add(where, f"count 引用了 ${{{ref}}}，它不是本题之前的字段",
                             f"count refers to ${{{ref}}}, which is not a field before this one")
        for key in ("min_count", "max_count"):
            value = field.get(key)
            if key in field and (not isinstance(value, int) or isinstance(value, bool)
                                 or not 0 <= value <= MAX_REPEAT_ENTRIES):
                self.add(where, f"{key} 必须是 0 到 {MAX_REPEAT_ENTRIES} 的整数", f"{key} must be a whole number 0..{MAX_REPEAT_ENTRIES}")
                return
        if field.get("min_count", 0) > field.get("max_count", MAX_REPEAT_ENTRIES):
            self.add(where, "min_count 大于 max_count", "min_count is larger than max_count")
        children = field.get("fields")
        names = [c.get("name") for c in children if isinstance(c, dict)] if isinstance(children, list) else []
        self.repeat_depth += 1
        self.fields(children, where, earlier, repeat_names=list(repeat_names or ()) + names)
        self.repeat_depth -= 1

    def computed(self, field, kind, where, earlier):
        if "compute" not in field:
            return
        if isinstance(field["compute"], dict) and "xpath" in field["compute"]:
            if kind not in XPATH_COMPUTED:
                self.add(where, f"{kind} 字段不能用 compute", f"compute is not for {kind} fields")
                return
            for ref in self.xpath_node(field["compute"], "compute", where) or ():
                if ref in self.twice:
                    self.add(where, f"compute 引用了 ${{{ref}}}，这个名称在表单中用了两次",
                             f"compute refers to ${{{ref}}}, a name used twice in the form")
                elif ref in self.order and not self.before(field, ref):
                    itself = ref == field.get("name")
                    self.add(where, f"compute 引用了 ${{{ref}}}，它不是本题之前的字段"
                             + ("（计算不能用到自己）" if itself else ""),
                             f"compute refers to ${{{ref}}}, which is not a field before this one"
                             + (" (a calculation cannot use itself)" if itself else ""))
            return
        if kind not in ("integer", "decimal"):
            self.add(where, "compute 只用于 integer 和 decimal 字段", "compute is only for integer and decimal fields")
            return
        problems, names = check_expression(field["compute"], "compute", self.settings)
        for p in problems:
            self.add(where, p)
        for ref in names:
            target = earlier.get(ref)
            if target is None:
                self.add(where, f"compute 引用了 {ref!r}，它不是本题之前的字段",
                         f"compute refers to {ref!r}, which is not a field before this one")
            elif target.get("type") not in ("integer", "decimal"):
                self.add(where, f"compute 引用了 {ref!r}，它不是数字字段", f"compute refers to {ref!r}, which is not a number field")


def check_definition(data, source, expected_id=None):
    """The definition as a plain JSON-able dict, or FormDefinitionError naming source and field."""
    if not isinstance(data, dict):
        raise FormDefinitionError(source, None, said("文件内容必须是映射（id、version、title……）",
                                                     "the file must hold a mapping (id, version, title, ...)"))
    problems = definition_problems(data, expected_id)
    if problems:
        field, _ = problems[0]
        lines = [f"field {f}: {m}" if f else m for f, m in problems]
        zh_lines = [f"字段 {f}：{zh_of(m)}" if f else zh_of(m) for f, m in problems]
        message = (Said("；".join(zh_lines), "; ".join(lines)) if len(lines) > 1
                   else Said(zh_of(problems[0][1]), str(problems[0][1])))
        raise FormDefinitionError(source, field, message, problems=problems)
    # A JSON round trip: plain dicts, lists, str, int, float, bool only (what the phone receives).
    return json.loads(json.dumps(data, ensure_ascii=False))


def definition_problems(data, expected_id=None):
    """[(field or None, message)]: everything wrong with a definition (a mapping)."""
    problems = []
    unknown = set(data) - FORM_KEYS
    if unknown:
        keys = ', '.join(sorted(map(str, unknown)))
        problems.append((None, said(f"未知的顶层键：{keys}", f"unknown top-level keys: {keys}")))
    form_id = data.get("id")
    if not isinstance(form_id, str) or not ID_RE.match(form_id):
        problems.append(("id", said("id 只能由小写字母、数字和 _ 组成（以字母开头）",
                                    "id must be lower-case letters, digits and _ (starting with a letter)")))
    elif expected_id is not None and form_id != expected_id:
        problems.append(("id", said(f"id {form_id!r} 必须与文件名一致（{expected_id!r}）",
                                    f"id {form_id!r} must match the file name ({expected_id!r})")))
    version = data.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        problems.append(("version", said("version 必须是大于等于 1 的整数", "version must be a whole number >= 1")))
    problem = _bilingual_problem(data.get("title"))
    if problem:
        problems.append(("title", prefixed("title ", "title ", problem)))
    if data.get("subject") not in SUBJECTS:
        problems.append(("subject", said(f"subject 必须是以下之一：{', '.join(SUBJECTS)}",
                                         f"subject must be one of {', '.join(SUBJECTS)}")))
    settings = data.get("settings", {})
    if not isinstance(settings, dict) or not all(
            isinstance(k, str) and NAME_RE.match(k) and is_number(v) and math.isfinite(v)
            for k, v in settings.items()):
        problems.append(("settings", said("settings 必须把名称对应到数字", "settings must map names to numbers")))
        settings = {}
    fields = data.get("fields")
    top_names = [n.get("name") for n in _opened(fields)] if isinstance(fields, list) else []
    checker = _Checker(settings, [n for n in top_names if isinstance(n, str)], fields)
    top = checker.fields(fields, "", {})
    problems.extend(checker.problems)
    if not checker.problems:
        problems.extend(form_effects.check_effects(data.get("effects"), top))
        problems.extend(form_effects.check_profile(data.get("profile"), top))
    return problems


def _walk(fields):
    """Every field dict of a (raw, unchecked) field list in document order, groups and repeats
    opened (the group or repeat itself first)."""
    for f in fields if isinstance(fields, list) else ():
        if isinstance(f, dict):
            yield f
            yield from _walk(f.get("fields"))


def _uses_xpath(node, depth=0):
    if depth > 40:
        return False
    if isinstance(node, dict):
        return "xpath" in node or any(_uses_xpath(v, depth + 1) for v in node.values())
    if isinstance(node, list):
        return any(_uses_xpath(v, depth + 1) for v in node)
    return False


def _opened(fields):
    """Top-level questions with sections opened (raw, unchecked lists welcome)."""
    out = []
    for f in fields or []:
        if isinstance(f, dict) and f.get("type") == "group" and isinstance(f.get("fields"), list):
            out.extend(c for c in f["fields"] if isinstance(c, dict))
        elif isinstance(f, dict):
            out.append(f)
    return out


_flat_cache = {}


def answer_fields(definition):
    """The top-level questions of a checked definition in order, sections opened: what answers are
    keyed by. A question in a section is relevant only when its section is, so the section's
    relevance is folded into it. Cached per definition (definitions are shared, never changed)."""
    key = id(definition)
    hit = _flat_cache.get(key)
    if hit is not None and hit[0] is definition:
        return hit[1]
    out = []
    for f in definition.get("fields") or []:
        if f.get("type") != "group":
            out.append(f)
            continue
        for child in f["fields"]:
            if "relevant" in f:
                rel = ({"all": [f["relevant"], child["relevant"]]} if "relevant" in child
                       else f["relevant"])
                child = dict(child, relevant=rel)
            out.append(child)
    if len(_flat_cache) > 1000:
        _flat_cache.clear()
    _flat_cache[key] = (definition, out)
    return out


def definition_sha256(definition):
    """The hash of a definition's content (canonical JSON), so YAML comments and layout don't count."""
    text = json.dumps(definition, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


# =============================================================================================
# Reading YAML: no aliases, no lone surrogates

# libyaml's safe loader reads the form files ten times faster than the pure-Python one, which stays
# the fallback where PyYAML was built without it.
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

ALIAS_TEXT = ("表单文件中不允许使用 YAML 别名（&锚点 … *别名）：请把内容直接写出",
              "YAML aliases (&anchor … *alias) are not allowed in form files: write the content out")
SURROGATE_TEXT = ("文字中含有无效字符（孤立的 UTF-16 代理项 {code}），请删除",
                  "A text holds an invalid character (a lone UTF-16 surrogate {code}); remove it")
SURROGATE_RE = re.compile(r"[\ud800-\udfff]")


class YamlRefused(yaml.MarkedYAMLError):
    """A form file that is valid YAML but not allowed in a form: `zh` and `en` say why."""

    def __init__(self, zh, en, mark=None):
        super().__init__(problem=f"{zh} / {en}", problem_mark=mark)
        self.zh, self.en = zh, en


def _refuse_aliases_and_surrogates(data):
    """libyaml makes an alias the same object as its anchor, so a mapping or list met twice is an
    alias (574 bytes of nested aliases were a million conditions: 15-37 s of checking, 3.5 GB on
    the phone); found here before anything walks the expansion. A "\\ud800" escape gives a string
    no UTF-8 can hold (hashing or saving it answered 500)."""
    seen = set()
    stack = [data]
    while stack:
        value = stack.pop()
        if isinstance(value, str):
            m = SURROGATE_RE.search(value)
            if m:
                code = f"U+{ord(m.group()):04X}"
                raise YamlRefused(SURROGATE_TEXT[0].format(code=code), SURROGATE_TEXT[1].format(code=code))
        elif isinstance(value, (dict, list)):
            if id(value) in seen:
                raise YamlRefused(*ALIAS_TEXT)
            seen.add(id(value))
            stack.extend(value.items() if isinstance(value, dict) else value)
        elif isinstance(value, tuple):   # a mapping's (key, value)
            stack.extend(value)


def parse_yaml(text):
    """A form file's YAML as data: yaml.YAMLError (YamlRefused for aliases and surrogates) when it
    cannot be one. Every reader of form files goes through here."""
    data = yaml.load(text, Loader=_YAML_LOADER)
    _refuse_aliases_and_surrogates(data)
    return data


# (expected id, sha256 of the file's text) -> the checked definition as JSON (and the same for the
# archive's files): every app of a process (each test's, a dry-run publish) reads the same files,
# and parsing them was most of its start-up. Keyed by content, so a rewritten file is read afresh;
# only good files are kept.
_checked_texts = {}


def _checked_text(text, path, expected_id, parse_error):
    """check_definition of the YAML `text`, parsed once per process; a fresh copy each time, as
    check_definition gives. parse_error(exc) -> the FormDefinitionError for unparsable text."""
    key = (expected_id, hashlib.sha256(text.encode("utf-8")).hexdigest())
    hit = _checked_texts.get(key)
    if hit is not None:
        return json.loads(hit)
    try:
        data = parse_yaml(text)
    except yaml.YAMLError as exc:
        raise parse_error(exc) from None
    definition = check_definition(data, path, expected_id=expected_id)
    if len(_checked_texts) > 200:
        _checked_texts.clear()
    _checked_texts[key] = json.dumps(definition, ensure_ascii=False)
    return definition


def load_definition_file(path):
    """Parse and check one YAML file; FormDefinitionError names the file (and line or field)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise FormDefinitionError(path, None, said(f"无法读取文件：{exc}", f"cannot read the file: {exc}")) from None

    def not_yaml(exc):
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        where_zh = f"第 {mark.line + 1} 行第 {mark.column + 1} 列：" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        return FormDefinitionError(path, None, said(f"不是有效的 YAML：{where_zh}{problem}",
                                                    f"not valid YAML: {where}{problem}"))
    return _checked_text(text, path, path.stem, not_yaml)


# =============================================================================================
# The registry: current files plus every archived version


def _read_archive(archive_dir):
    """{(id, version): {"sha256", "definition", "source"}} from <archive>/<id>/<version>.json."""
    found = {}
    if not archive_dir.is_dir():
        return found
    for form_dir in sorted(archive_dir.iterdir()):
        if not form_dir.is_dir() or not ID_RE.match(form_dir.name):
            continue
        for path in sorted(form_dir.glob("*.json")):
            if not path.stem.isdigit():
                continue
            try:
                text = path.read_text(encoding="utf-8")
            except (OSError, ValueError) as exc:
                raise FormDefinitionError(path, None, said(f"存档的定义无法读取：{exc}",
                                                           f"archived definition unreadable: {exc}")) from None
            key = ("archive", form_dir.name, path.stem, hashlib.sha256(text.encode("utf-8")).hexdigest())
            hit = _checked_texts.get(key)
            if hit is None:
                hit = _check_archived(path, form_dir.name, text)
                if len(_checked_texts) > 200:
                    _checked_texts.clear()
                _checked_texts[key] = hit
            definition_json, sha, source = hit
            definition = json.loads(definition_json)
            found[(definition["id"], definition["version"])] = {
                "sha256": sha, "definition": definition, "source": source}
    return found


def _check_archived(path, form_id, text):
    """(the checked definition as JSON, its sha256, its source) of one archived version's file."""
    try:
        record = json.loads(text)
    except ValueError as exc:
        raise FormDefinitionError(path, None, said(f"存档的定义无法读取：{exc}",
                                                           f"archived definition unreadable: {exc}")) from None
    if not isinstance(record, dict) or not isinstance(record.get("definition"), dict):
        raise FormDefinitionError(path, None, said("存档的定义缺少 'definition'",
                                                    "archived definition has no 'definition'"))
    definition = check_definition(record["definition"], path, expected_id=form_id)
    if definition["version"] != int(path.stem):
        raise FormDefinitionError(path, "version", said("存档的版本与文件名不一致",
                                                        "archived version does not match the file name"))
    sha = definition_sha256(definition)
    if record.get("sha256") != sha:
        raise FormDefinitionError(path, None, said("存档的定义与其 sha256 不符",
                                                  "archived definition does not match its sha256"))
    return json.dumps(definition, ensure_ascii=False), sha, record.get("source")


class FormRegistry:
    """The form definitions the server knows: the current file of each form, and every version
    ever loaded (archived under the data folder), so old submissions validate against their own
    version. Read-only after load, so safe to share between threads."""

    def __init__(self, versions, current, settings):
        self._versions = versions     # (id, version) -> served definition (with settings applied)
        self._sha = {key: definition_sha256(d) for key, d in versions.items()}
        self._current = current       # id -> version
        self.settings = settings

    @classmethod
    def load(cls, forms_dir, archive_dir, settings=None, *, write_archive=True, published_dir=None):
        """Check every forms_dir/*.yaml (the current versions shipped with the code),
        forms_dir/history/*.yaml (older versions kept with the code, so a fresh server still accepts
        them) and published_dir/*.yaml (forms an admin published from the web, kept with the data
        and shared by every app server); where both hold a form, the higher version is current and
        the other is kept as history. New versions are archived; a changed file with an unchanged
        version is refused. Raises FormDefinitionError (naming file and field) and writes nothing
        then. write_archive=False reads only (a command beside a server, a dry run)."""
        forms_dir, archive_dir = Path(forms_dir), Path(archive_dir)
        if settings is not None and not isinstance(settings, dict):
            raise FormDefinitionError("settings", None, said("settings 必须是映射", "settings must be a mapping"))
        settings = dict(settings or {})
        if not forms_dir.is_dir():
            raise FormDefinitionError(forms_dir, None, said("表单文件夹不存在", "the forms folder does not exist"))
        paths = _yaml_files(forms_dir)
        if not paths:
            raise FormDefinitionError(forms_dir, None, said("没有找到表单定义（*.yaml）",
                                                               "no form definitions (*.yaml) found"))
        archive = _read_archive(archive_dir)
        candidates = {}  # form id -> [(path, definition, sha)], the code's file first
        for path in paths + (_yaml_files(Path(published_dir)) if published_dir else []):
            definition = load_definition_file(path)
            form_id = definition["id"]
            mine = candidates.setdefault(form_id, [])
            if any(p.parent == path.parent for p, _d, _s in mine):
                raise FormDefinitionError(path, "id", said(f"id {form_id!r} 已被 {mine[0][0].name} 使用",
                                                           f"id {form_id!r} is also used by {mine[0][0].name}"))
            mine.append((path, definition, definition_sha256(definition)))
        current, new, older = {}, [], []
        for form_id, found in candidates.items():
            found.sort(key=lambda c: c[1]["version"])
            if len(found) == 2 and found[0][1]["version"] == found[1][1]["version"] \
                    and found[0][2] != found[1][2]:
                same = found[1][1]['version']
                raise FormDefinitionError(found[1][0], "version", said(
                    f"第 {same} 版与 {found[0][0]} 不同；发布的表单需要自己的版本号",
                    f"version {same} differs from {found[0][0]}; "
                    f"a published form needs a version of its own"))
            path, definition, sha = found[-1]
            version = definition["version"]
            older.extend(found[:-1])
            known = archive.get((form_id, version))
            if known is not None and known["sha256"] != sha:
                latest = max(v for (i, v) in archive if i == form_id)
                raise FormDefinitionError(
                    path, "version", said(
                        f"内容改了，但 version 仍是 {version}；请改为 {latest + 1}"
                        f"（第 {version} 版已存档于 {archive_dir / form_id}）",
                        f"the content changed but version is still {version}; give it version {latest + 1} "
                        f"(version {version} is archived in {archive_dir / form_id})"))
            for (other_id, other_version), record in archive.items():
                if other_id == form_id and other_version > version and known is None:
                    raise FormDefinitionError(
                        path, "version", said(
                            f"第 {version} 版是新的，但第 {other_version} 版已存档；"
                            f"请改为 {max(v for (i, v) in archive if i == form_id) + 1}",
                            f"version {version} is new but version {other_version} is already archived; "
                            f"give it version {max(v for (i, v) in archive if i == form_id) + 1}"))
            if known is None:
                new.append((path, definition, sha))
            current[form_id] = version
        for path, definition, sha in older:  # a lower version beside the current one: history
            known = archive.get((definition["id"], definition["version"]))
            if known is not None and known["sha256"] != sha:
                raise FormDefinitionError(path, "version", said(
                    f"第 {definition['version']} 版已存档，但内容不同",
                    f"version {definition['version']} is archived with other content"))
            if known is None and all(d is not definition for _p, d, _s in new):
                new.append((path, definition, sha))
        new.extend(_history(forms_dir / "history", archive, current))
        if not write_archive:
            for path, definition, sha in new:
                archive[(definition["id"], definition["version"])] = {
                    "sha256": sha, "definition": definition, "source": path.name}
            new = []
        for path, definition, sha in new:
            record = {"id": definition["id"], "version": definition["version"], "sha256": sha,
                      "source": path.name, "definition": definition}
            target = archive_dir / definition["id"] / f"{definition['version']}.json"
            try:
                write_atomic(target, json.dumps(record, ensure_ascii=False, indent=1) + "\n")
            except OSError as exc:
                raise FormDefinitionError(target, None, said(f"无法存档定义：{exc}",
                                                             f"cannot archive the definition: {exc}")) from None
            archive[(definition["id"], definition["version"])] = {
                "sha256": sha, "definition": definition, "source": path.name}
        versions = {key: _with_settings(record["definition"], settings)
                    for key, record in archive.items()}
        return cls(versions, current, settings)

    def ids(self):
        return sorted(self._current)

    def current(self):
        """[{"id", "version", "sha256"}] of the current files, by id."""
        return [{"id": form_id, "version": version, "sha256": self._sha[(form_id, version)]}
                for form_id, version in sorted(self._current.items())]

    def versions(self, form_id):
        """Every known version of a form, oldest first."""
        return sorted(v for (i, v) in self._versions if i == form_id)

    def _key(self, form_id, version):
        if not isinstance(form_id, str):
            return None
        if version is None:
            version = self._current.get(form_id)
        if not isinstance(version, int) or isinstance(version, bool):
            return None
        key = (form_id, version)
        return key if key in self._versions else None

    def get(self, form_id, version=None):
        """The definition as served to phones, shared by every caller: read it, never change it
        (copying it for every item cost a third of a push). None for an unknown id or version.
        Without a version: the current file's version."""
        key = self._key(form_id, version)
        return self._versions[key] if key else None

    def sha256(self, form_id, version=None):
        """The hash of the served definition (for ETags and the bootstrap list); None if unknown."""
        key = self._key(form_id, version)
        return self._sha[key] if key else None


def _yaml_files(folder):
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir()
                  if p.is_file() and p.suffix in (".yaml", ".yml") and not p.name.startswith("."))


def _history(history_dir, archive, current):
    """Older versions kept in forms/history/ ([(path, definition, sha)] of those not archived yet).
    Each must be older than the current file of its form; an archived version must match."""
    out = []
    if not history_dir.is_dir():
        return out
    for path in sorted(history_dir.iterdir()):
        if not path.is_file() or path.suffix not in (".yaml", ".yml") or path.name.startswith("."):
            continue
        form_id = path.name.split(".")[0]
        def unreadable(exc):
            return FormDefinitionError(path, None, said(f"无法读取的 YAML：{exc}", f"not readable YAML: {exc}"))
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise unreadable(exc) from None
        definition = _checked_text(text, path, form_id, unreadable)
        version = definition["version"]
        if form_id not in current or version >= current[form_id]:
            raise FormDefinitionError(path, "version", said(
                "history/ 中的版本必须比该表单当前的文件旧",
                "a version in history/ must be older than the current file of its form"))
        sha = definition_sha256(definition)
        known = archive.get((form_id, version))
        if known is not None and known["sha256"] != sha:
            raise FormDefinitionError(path, "version", said(
                f"第 {version} 版已存档，但内容不同；历史版本不能修改",
                f"version {version} is archived with other content; history must not change"))
        if known is None:
            out.append((path, definition, sha))
    return out


def archive_dir(app):
    """Every version ever served, in the files folder (shared by every app server)."""
    return os.path.join(app.config["FILES_DIR"], "forms")


def published_dir(app):
    """Forms published from the web: with the data, not in the code's forms/ (a git pull never
    meets them), shared by every app server."""
    return os.path.join(app.config["FILES_DIR"], "forms-published")


def load_registry(app, *, write_archive=True, published=None):
    return FormRegistry.load(app.config["FORMS_DIR"], archive_dir(app), served_settings(app),
                             write_archive=write_archive,
                             published_dir=published_dir(app) if published is None else published)


def init_app(app):
    """Form definitions are checked at start-up: a broken file stops the app, naming file and field."""
    app.extensions["jiedui_forms"] = load_registry(app)


def served_settings(app):
    """The server's values for the settings forms declare (e.g. kWh per kW for the PV form)."""
    return {"pv_yield_kwh_per_kw": app.config["PV_YIELD_KWH_PER_KW"]}


def registry(app=None):
    """The app's form registry (shared, read-only)."""
    from flask import current_app
    return (app or current_app).extensions["jiedui_forms"]


def _with_settings(definition, settings):
    """The definition with the server's value for each setting it declares (e.g. the PV yield)."""
    if not definition.get("settings"):
        return definition
    served = dict(definition)
    served["settings"] = {name: (settings[name] if is_number(settings.get(name))
                                 and math.isfinite(settings[name]) else default)
                          for name, default in definition["settings"].items()}
    return served


# =============================================================================================
# Validating answers


def _today_iso(today, settings):
    """The day answers are checked against ("not later than today"): the deployment zone's."""
    if isinstance(today, datetime.datetime):
        return today.date().isoformat()
    if isinstance(today, datetime.date):
        return today.isoformat()
    if isinstance(today, str) and _is_iso_date(today):
        return today
    from server.core.clock import today_iso
    return today_iso()


def _show(value, limit=40):
    """A short, printable rendering of a submitted value for an error message."""
    try:
        text = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError, RecursionError):
        text = "?"
    text = CONTROL_RE.sub("?", text.encode("utf-8", "replace").decode("utf-8"))
    return text if len(text) <= limit else text[:limit] + "…"


def _safe_key(key):
    text = CONTROL_RE.sub("?", str(key).encode("utf-8", "replace").decode("utf-8"))
    return text[:100]


def _node(compile_fn, source):
    """The compiled node of a condition or expression; for a malformed one (only in an unchecked
    definition), a node raising ConditionError where the validator meets it, as it always did."""
    if source is None:
        return None
    try:
        return compile_fn(source)
    except ConditionError as exc:
        message = str(exc)

        def broken(*_args):
            raise ConditionError(message)
        return broken


_REQUIRED = ("required", "必须填写", "is required")


class _FieldPlan:
    """One question of a form version, compiled: `check` validates its answer with everything
    (choices, bounds, conditions, labels) worked out once per form version."""

    __slots__ = ("field", "name", "kind", "required", "relevant", "constraint", "compute", "where",
                 "label", "choices", "children", "child_names", "low", "high", "attachment", "check",
                 "required_text", "count", "offered")

    def __init__(self, field, top_level, env=None):
        self.field = field
        self.name, self.kind = field["name"], field["type"]
        self.required = bool(field.get("required"))
        compile_node = lambda c: conditions.compile_node(c, env)  # noqa: E731
        self.relevant = _node(compile_node, field.get("relevant"))
        self.constraint = _node(compile_node, field["constraint"]) if "constraint" in field else None
        self.compute = None
        if "compute" in field:
            self.compute = (_xpath_compute(field, env) if isinstance(field["compute"], dict)
                            and "xpath" in field["compute"]
                            else _node(conditions.compile_expression_node, field["compute"]))
        message = field.get("required_message")
        self.required_text = (("required", message["zh"], message["en"]) if isinstance(message, dict)
                              else _REQUIRED)
        count = field.get("count")
        self.count = (conditions.xpath_value_node(count["xpath"], env) if isinstance(count, dict)
                      else count)
        self.offered = _choice_filter(field, env) if "choice_filter" in field else None
        label = field["label"]
        self.label = (label["zh"], label["en"])
        self.where = (f"「{label['zh']}」", f"“{label['en']}”") if top_level else None
        self.choices = (frozenset(c["name"] for c in field["choices"])
                        if self.kind in SELECT_TYPES else None)
        self.attachment = self.kind in ATTACHMENT_TYPES
        if self.kind == "repeat":
            self.children = [_FieldPlan(c, False, env) for c in field["fields"]]
            self.child_names = frozenset(c.name for c in self.children)
            self.low = field.get("min_count", 0)
            self.high = field.get("max_count", MAX_REPEAT_ENTRIES)
        else:
            self.children = self.child_names = self.low = self.high = None
        self.check = self._compile()

    def _compile(self):
        """check(v, raw_answers, clean, out, scope, path, where): validate this field's answer in
        raw_answers and write its clean value into out (and scope, inside a repeat entry)."""
        fp, name, kind, required = self, self.name, self.kind, self.required
        relevant, constraint, compute = self.relevant, self.constraint, self.compute
        missing = conditions.MISSING

        if kind == "note":
            def check(v, raw_answers, clean, out, scope, path, where):
                if relevant is not None and not relevant(clean, scope, missing, v.today):
                    return
                if is_answered(raw_answers.get(name)):
                    v.error(path, where, "not_answerable", "是说明文字，不能作答", "is a note and takes no answer")
            return check

        if compute is None and kind != "repeat":  # the common case, with nothing in between
            checker = _VALUE_CHECKERS[kind](self) if kind in _VALUE_CHECKERS else _unknown_type
            offered = self.offered
            blank = conditions.BLANK_RE.match

            def check(v, raw_answers, clean, out, scope, path, where):
                if relevant is not None and not relevant(clean, scope, missing, v.today):
                    return  # not relevant: any answer is dropped (docs/forms.md says why)
                raw = raw_answers.get(name)
                if raw is None or (blank(raw) if isinstance(raw, str) else
                                   isinstance(raw, (list, dict)) and not raw):  # not is_answered
                    if required and not v.already_reported(path):
                        v.error(path, where, *fp.required_text)
                    return
                value = checker(v, raw, path, where)
                if value is not None and offered is not None:
                    value = offered(v, value, clean, scope, path, where)
                if value is None:
                    if required and not v.already_reported(path):
                        v.error(path, where, *fp.required_text)
                    return
                out[name] = value
                if scope is not None:
                    scope[name] = value
                if constraint is not None:
                    v.pending.append((fp, path, where, scope, out, value))
            return check

        if compute is not None and getattr(compute, "volatile", False):
            # today(), now(), uuid(), once(): the phone's value stands, checked as an answer.
            checker = _VALUE_CHECKERS.get(kind, _unknown_type)
            checker = checker(self) if kind in _VALUE_CHECKERS else checker

            def value_of(v, raw, clean, scope, path, where):
                return None if not is_answered(raw) else checker(v, raw, path, where)
        elif compute is not None:
            def value_of(v, raw, clean, scope, path, where):
                return compute(clean, scope, v.settings)
        else:
            def value_of(v, raw, clean, scope, path, where):
                return v.repeat(fp, raw, clean, path, where, scope) or None

        def check(v, raw_answers, clean, out, scope, path, where):
            if relevant is not None and not relevant(clean, scope, missing, v.today):
                return  # not relevant: any answer is dropped (docs/forms.md says why)
            value = value_of(v, raw_answers.get(name), clean, scope, path, where)
            if value is None:
                if required and not v.already_reported(path):
                    v.error(path, where, *fp.required_text)
                return
            out[name] = value
            if scope is not None:
                scope[name] = value
            if constraint is not None:
                v.pending.append((fp, path, where, scope, out, value))
        return check


# ---- the value checkers: checker(v, raw, path, where) -> clean value, or None after v.error ----


def _unknown_type(v, raw, path, where):
    return v.error(path, where, "type", "无法识别的类型", "has an unknown type")  # unreachable when checked


def _text_checker(fp):
    field, limit = fp.field, fp.field.get("max", TEXT_MAX[fp.kind])
    low = field.get("min", 0)

    def check(v, raw, path, where):
        if not isinstance(raw, str):
            return v.error(path, where, "type", "应为文字", "must be text")
        if not raw.isascii():
            try:
                raw.encode("utf-8")
            except UnicodeEncodeError:
                return v.error(path, where, "bad_text", "含有无效字符", "contains invalid characters")
        if CONTROL_RE.search(raw):
            return v.error(path, where, "bad_text", "含有控制字符", "contains control characters")
        if len(raw) > limit:
            return v.error(path, where, "max", f"最多 {limit} 个字（现有 {len(raw)} 个）",
                           f"has at most {limit} characters (got {len(raw)})")
        if len(raw) < low:
            return v.error(path, where, "min", f"至少 {field['min']} 个字",
                           f"needs at least {field['min']} characters")
        return raw
    return check


def _number_checker(fp):
    field, integer = fp.field, fp.kind == "integer"
    has_min, has_max = "min" in field, "max" in field
    low, high = field.get("min"), field.get("max")

    def check(v, raw, path, where):
        if not is_number(raw) or not math.isfinite(raw) or abs(raw) > MAX_NUMBER:
            return v.error(path, where, "type", "应为数字", "must be a number")
        if integer:
            if isinstance(raw, float) and not raw.is_integer():
                return v.error(path, where, "type", "应为整数", "must be a whole number")
            raw = int(raw)
        if has_min and raw < low:
            return v.error(path, where, "min", f"不能小于 {low}", f"must be at least {low}")
        if has_max and raw > high:
            return v.error(path, where, "max", f"不能大于 {high}", f"must be at most {high}")
        return raw
    return check


def _date_checker(fp):
    field = fp.field
    has_min, has_max = "min" in field, "max" in field
    low, high = field.get("min"), field.get("max")

    def check(v, raw, path, where):
        if not _is_iso_date(raw):
            return v.error(path, where, "type", f"应为日期 YYYY-MM-DD（收到 {_show(raw)}）",
                           f"must be a date YYYY-MM-DD (got {_show(raw)})")
        if has_min and raw < low:
            return v.error(path, where, "min", f"不能早于 {low}", f"must not be before {low}")
        if has_max and raw > high:
            return v.error(path, where, "max", f"不能晚于 {high}", f"must not be after {high}")
        return raw
    return check


def _select_one_checker(fp):
    choices = fp.choices

    def check(v, raw, path, where):
        if not isinstance(raw, str) or raw not in choices:
            return v.error(path, where, "choice", f"不是可选项：{_show(raw)}",
                           f"is not one of the choices: {_show(raw)}")
        return raw
    return check


def _select_multiple_checker(fp):
    choices = fp.choices

    def check(v, raw, path, where):
        if not isinstance(raw, list):
            return v.error(path, where, "type", "应为选项列表", "must be a list of choices")
        for item in raw:
            if not isinstance(item, str) or item not in choices:
                return v.error(path, where, "choice", f"不是可选项：{_show(item)}",
                               f"is not one of the choices: {_show(item)}")
        if len(set(raw)) != len(raw):
            return v.error(path, where, "duplicate", "有重复的选项", "lists a choice twice")
        return list(raw)
    return check


def _geopoint_checker(fp):
    message = ("应为位置 {lat, lon, accuracy}", "must be a location {lat, lon, accuracy}")

    def check(v, raw, path, where):
        if not isinstance(raw, dict) or not {"lat", "lon"} <= set(raw) \
                or not set(raw) <= {"lat", "lon", "accuracy"}:
            return v.error(path, where, "type", *message)
        lat, lon, accuracy = raw["lat"], raw["lon"], raw.get("accuracy")
        if not (is_number(lat) and is_number(lon) and math.isfinite(lat) and math.isfinite(lon)):
            return v.error(path, where, "type", *message)
        if not (-90 <= lat <= 90 and -180 <= lon <= 180):
            return v.error(path, where, "range", "经纬度超出范围", "latitude or longitude out of range")
        if accuracy is not None and not (is_number(accuracy) and math.isfinite(accuracy)
                                         and 0 <= accuracy <= 1e7):
            return v.error(path, where, "type", "定位精度应为非负数（米）",
                           "accuracy must be a non-negative number (metres)")
        clean = {"lat": lat, "lon": lon}
        if accuracy is not None:
            clean["accuracy"] = accuracy
        return clean
    return check


def _attachment_checker(fp):
    def check(v, raw, path, where):
        if not is_safe_attachment_name(raw):
            return v.error(path, where, "bad_name", f"不是有效的附件文件名：{_show(raw)}",
                           f"is not a valid attachment file name: {_show(raw)}")
        return raw
    return check


_TIME_RE = re.compile(r"^([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9](\.[0-9]{1,3})?)?(Z|[+-][0-9]{2}:?[0-9]{2})?\Z")
_DATETIME_RE = re.compile(r"^([0-9]{4}-[0-9]{2}-[0-9]{2})T([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9](\.[0-9]{1,9})?)?"
                          r"(Z|[+-][0-9]{2}:?[0-9]{2})?\Z")
PLAIN_TEXT_MAX = 5000
MAX_TRACE_POINTS = 10000


def _time_checker(fp):
    def check(v, raw, path, where):
        if not isinstance(raw, str) or not _TIME_RE.match(raw):
            return v.error(path, where, "type", f"应为时间 HH:MM（收到 {_show(raw)}）",
                           f"must be a time HH:MM (got {_show(raw)})")
        return raw
    return check


def _datetime_checker(fp):
    def check(v, raw, path, where):
        m = _DATETIME_RE.match(raw) if isinstance(raw, str) else None
        if not m or not _is_iso_date(m.group(1)):
            return v.error(path, where, "type", f"应为日期时间 YYYY-MM-DDTHH:MM（收到 {_show(raw)}）",
                           f"must be a date and time YYYY-MM-DDTHH:MM (got {_show(raw)})")
        return raw
    return check


def _plain_text_checker(fp):
    """Text the phone fills in or computes (barcode, hidden, calculate, device id)."""
    def check(v, raw, path, where):
        if isinstance(raw, bool) or not isinstance(raw, (str, int, float)):
            return v.error(path, where, "type", "应为文字", "must be text")
        if not isinstance(raw, str):
            raw = xpath.result_string(float(raw))
        if CONTROL_RE.search(raw) or _SURROGATE.search(raw):
            return v.error(path, where, "bad_text", "含有控制字符", "contains control characters")
        if len(raw) > PLAIN_TEXT_MAX:
            return v.error(path, where, "max", f"最多 {PLAIN_TEXT_MAX} 个字", f"has at most {PLAIN_TEXT_MAX} characters")
        return raw
    return check


def _acknowledge_checker(fp):
    def check(v, raw, path, where):
        if raw != "OK":
            return v.error(path, where, "type", "确认的答案应为 \"OK\"", 'an acknowledgement is "OK"')
        return raw
    return check


def _trace_checker(fp):
    point = _geopoint_checker(fp)
    least = 3 if fp.kind == "geoshape" else 2

    def check(v, raw, path, where):
        if not isinstance(raw, list) or not least <= len(raw) <= MAX_TRACE_POINTS:
            return v.error(path, where, "type", f"应为至少 {least} 个位置的列表",
                           f"must be a list of at least {least} locations")
        out = []
        for i, p in enumerate(raw):
            clean = point(v, p, f"{path}.{i}", where)
            if clean is None:
                return None
            out.append(clean)
        return out
    return check


_VALUE_CHECKERS = {"text": _text_checker, "textarea": _text_checker, "integer": _number_checker,
                   "decimal": _number_checker, "date": _date_checker,
                   "select_one": _select_one_checker, "select_multiple": _select_multiple_checker,
                   "geopoint": _geopoint_checker, "photo": _attachment_checker,
                   "signature": _attachment_checker, "audio": _attachment_checker,
                   "video": _attachment_checker, "file": _attachment_checker, "time": _time_checker,
                   "datetime": _datetime_checker, "start": _datetime_checker, "end": _datetime_checker,
                   "today": _date_checker, "range": _number_checker, "barcode": _plain_text_checker,
                   "hidden": _plain_text_checker, "calculate": _plain_text_checker,
                   "deviceid": _plain_text_checker, "acknowledge": _acknowledge_checker,
                   "geotrace": _trace_checker, "geoshape": _trace_checker, "rank": _select_multiple_checker}


def _xpath_compute(field, env):
    """compute: {"xpath": ...}: the value recomputed from the answers, as the field's type holds it
    (None when it comes out empty). Marked volatile when the phone's value must stand instead."""
    text = field["compute"]["xpath"]
    node = conditions.xpath_value_node(text, env)
    kind = field["type"]

    def run(a, e, settings):
        return xpath.computed_value(kind, node(a, e, conditions.MISSING, None))
    run.volatile = xpath.is_volatile(text)
    return run


def _choice_filter(field, env):
    """offered(v, value, clean, scope, path, where): the value when each choice in it passes the
    field's choice_filter (bare names are the choice's columns: name, label, data), else an error."""
    tree = xpath.parse(field["choice_filter"]["xpath"])
    rows = {c["name"]: {**(c.get("data") or {}), "name": c["name"], "label": c["label"]["zh"]}
            for c in field["choices"]}

    def offered(v, value, clean, scope, path, where):
        for item in value if isinstance(value, list) else [value]:
            ctx = xpath.Context(clean, scope, None, v.today, None, env.layout, env.labels, rows.get(item))
            if not xpath.to_bool(xpath.evaluate_tree(tree, ctx)):
                return v.error(path, where, "choice", f"「{item}」不在此处可选的选项中",
                               f"{item!r} is not among the choices offered here")
        return value
    return offered


def _form_env(definition):
    """Where each name inside a repeat lives, and choice labels, for a form's XPath nodes."""
    layout, choices = {}, {}

    def walk(fields, repeats):
        for f in fields or []:
            if f.get("type") == "group":
                walk(f.get("fields"), repeats)
                continue
            if repeats:
                layout[f["name"]] = list(repeats)
            if f.get("choices"):
                choices[f["name"]] = {c["name"]: c["label"]["zh"] for c in f["choices"]}
            if f.get("type") == "repeat":
                walk(f.get("fields"), repeats + [f["name"]])
    walk(definition.get("fields"), [])
    return conditions.FormEnv(layout, lambda field, value: choices.get(field, {}).get(value))


class _FormPlan:
    """A form version compiled for validation: built once per definition (definitions are shared
    and never changed) and reused for every item."""

    def __init__(self, definition):
        env = _form_env(definition)
        self.fields = [_FieldPlan(f, True, env) for f in answer_fields(definition)]
        self.known = frozenset(f.name for f in self.fields)
        self.settings = dict(definition.get("settings") or {})
        # Questions whose answers may name attachments, in form order (a repeat with such children).
        self.attachment_fields = [f for f in self.fields if _holds_attachments(f)]
        self.has_attachments = bool(self.attachment_fields)
        self.top = _top_level_function(self.fields)


_SURROGATE = re.compile("[\ud800-\udfff]")


def _holds_attachments(fp):
    return fp.attachment or bool(fp.children and any(_holds_attachments(c) for c in fp.children))


def _fast_test(fp, i):
    """A Python expression true exactly when `raw` is an answer the field's checker accepts as
    it is (the common case), or None when the field has no such shortcut."""
    field, kind = fp.field, fp.kind
    if fp.compute is not None:
        return None
    if "choice_filter" in field:
        return None
    if kind == "select_one":
        return f"raw.__class__ is str and raw in CH{i}"
    if kind == "select_multiple":
        return (f"raw.__class__ is list and raw and all(x.__class__ is str and x in CH{i} for x in raw) "
                f"and len(set(raw)) == len(raw)")
    if kind in TEXT_MAX:
        low, high = field.get("min", 0), field.get("max", TEXT_MAX[kind])
        return (f"raw.__class__ is str and {int(low)} <= len(raw) <= {int(high)} and not BLANK(raw) "
                f"and (raw.isascii() or not SURROGATE(raw)) and not CONTROL(raw)")
    if kind in ("integer", "decimal"):
        types = "raw.__class__ is int" if kind == "integer" else \
            "(raw.__class__ is int or raw.__class__ is float)"
        test = f"{types} and -{MAX_NUMBER!r} <= raw <= {MAX_NUMBER!r}"
        if "min" in field:
            test += f" and raw >= LO{i}"
        if "max" in field:
            test += f" and raw <= HI{i}"
        return test
    return None


def _top_level_function(fields):
    """One function validating every top-level question in form order, generated from the form:
    an answer the field accepts as it is goes straight into `clean` (one line of code, no call);
    anything else (missing, wrong, a repeat, a computed or a date field) goes through the field's
    compiled check, which decides and words the error exactly as always. Generated once per form
    version; its answers and errors are the same as the checks' (tests compare them)."""
    env = {"MISSING": conditions.MISSING, "BLANK": conditions.BLANK_RE.match,
           "SURROGATE": _SURROGATE.search, "CONTROL": CONTROL_RE.search}
    lines = ["def top(v, answers, clean):", "    today = v.today", "    pending = v.pending"]
    for i, fp in enumerate(fields):
        env.update({f"F{i}": fp, f"C{i}": fp.check, f"R{i}": fp.relevant, f"N{i}": fp.name,
                    f"W{i}": fp.where, f"CH{i}": fp.choices, f"LO{i}": fp.field.get("min"),
                    f"HI{i}": fp.field.get("max")})
        call = f"C{i}(v, answers, clean, clean, None, N{i}, W{i})"
        test = _fast_test(fp, i) if fp.kind != "repeat" else None
        if test is None:
            lines.append(f"    {call}")
            continue
        indent = "    "
        if fp.relevant is not None:
            lines.append(f"    if R{i}(clean, None, MISSING, today):")
            indent = "        "
        value = "list(raw)" if fp.kind == "select_multiple" else "raw"
        lines += [f"{indent}raw = answers.get(N{i})",
                  f"{indent}if {test}:",
                  f"{indent}    value = clean[N{i}] = {value}"]
        if fp.constraint is not None:
            lines.append(f"{indent}    pending.append((F{i}, N{i}, W{i}, None, clean, value))")
        lines += [f"{indent}else:", f"{indent}    {call}"]
    namespace = dict(env)
    exec(compile("\n".join(lines) + "\n", "<form validation>", "exec"), namespace)
    return namespace["top"]


_plan_cache = {}


def _plan(definition):
    key = id(definition)
    hit = _plan_cache.get(key)
    if hit is not None and hit[0] is definition:
        return hit[1]
    plan = _FormPlan(definition)
    if len(_plan_cache) > 1000:
        _plan_cache.clear()
    _plan_cache[key] = (definition, plan)
    return plan


class _Validator:
    def __init__(self, plan, today, settings):
        self.plan = plan
        self.today = today
        self.settings = settings
        self.errors = []
        self.total = 0
        self.pending = []   # constraints, checked once every answer is known

    def error(self, path, where, code, zh, en):
        """Report one problem (returns None, so checkers can `return v.error(...)`). `where` is
        (zh, en), or (entry where, child label) inside a repeat, joined only when shown."""
        self.total += 1
        if len(self.errors) < MAX_ERRORS:  # a reply never grows with what was sent
            if len(where) == 3:
                _, entry_where, label = where
                where = (f"{entry_where[0]}「{label[0]}」", f"{entry_where[1]} “{label[1]}”")
            self.errors.append({"field": path, "code": code,
                                "zh": f"{where[0]}：{zh}", "en": f"{where[1]}: {en}"})

    def run(self, answers):
        plan = self.plan
        if not isinstance(answers, dict):
            self.errors.append({"field": "", "code": "not_object",
                                "zh": "答案须为对象（以问题名称为键）。",
                                "en": "The answers must be an object keyed by field name."})
            answers = {}
        known = plan.known
        for key in answers:
            if key not in known:
                name = _safe_key(key)
                self.error(name, (f"「{name}」", f"“{name}”"), "unknown_field",
                           "不是本表的问题", "is not a question of this form")
        clean = {}
        plan.top(self, answers, clean)  # each field's check, in form order
        failed = []
        for fp, path, where, scope, out, value in self.pending:
            if not fp.constraint(clean, scope, value, self.today):
                message = fp.field.get("constraint_message") or {"zh": "不符合要求", "en": "is not valid"}
                self.error(path, where, "constraint", message["zh"], message["en"])
                failed.append((out, fp.name))
        for out, name in failed:  # after the loop, so every constraint saw the same answers
            out.pop(name, None)
        return clean

    def already_reported(self, path):
        dotted = path + "."
        return any(e["field"] == path or e["field"].startswith(dotted) for e in self.errors)

    def repeat(self, fp, raw, clean, path, where, scope=None):
        if len(where) == 3:  # a repeat inside a repeat entry
            _, entry_where, label = where
            where = (f"{entry_where[0]}「{label[0]}」", f"{entry_where[1]} “{label[1]}”")
        if raw is None or raw == [] or raw == "":
            entries_raw = []
        elif not isinstance(raw, list):
            self.error(path, where, "type", "应为条目列表", "must be a list of entries")
            return None
        else:
            entries_raw = raw
        low, high = fp.low, fp.high
        if fp.count is not None:  # repeat_count: exactly that many entries
            count = fp.count if isinstance(fp.count, int) else \
                xpath.to_number(fp.count(clean, scope, conditions.MISSING, self.today))
            if math.isfinite(count) and 0 <= count <= MAX_REPEAT_ENTRIES:
                low = high = int(count)
        if len(entries_raw) > high:
            self.error(path, where, "too_many", f"最多 {high} 项（收到 {len(entries_raw)} 项）",
                       f"has at most {high} entries (got {len(entries_raw)})")
            return None
        if len(entries_raw) < low:
            self.error(path, where, "too_few", f"至少需要 {low} 项", f"needs at least {low} entries")
        children, child_names = fp.children, fp.child_names
        entries = []
        for i, raw_entry in enumerate(entries_raw):
            entry_path = f"{path}.{i}"
            entry_where = (f"{where[0]}第 {i + 1} 项", f"{where[1]} #{i + 1}")
            if not isinstance(raw_entry, dict):
                self.error(entry_path, entry_where, "type", "应为对象", "must be an object")
                continue
            for key in raw_entry:
                if key not in child_names:
                    name = _safe_key(key)
                    self.error(f"{entry_path}.{name}",
                               (f"{entry_where[0]}「{name}」", f"{entry_where[1]} “{name}”"),
                               "unknown_field", "不是本表的问题", "is not a question of this form")
            entry_clean = {}
            entry_scope = xpath.Scope(dict.fromkeys(child_names), fp.name, i + 1, scope)
            for child in children:
                child.check(self, raw_entry, clean, entry_clean, entry_scope,
                            f"{entry_path}.{child.name}", ("child", entry_where, child.label))
            entries.append(entry_clean)
        return entries


def validate_answers(definition, answers, *, today=None, settings=None):
    """(clean_answers, errors) for answers to a checked definition. Never raises on any JSON
    answers. Unknown fields are errors; answers to questions that are not relevant are dropped;
    computed fields are recomputed and overwrite what the phone sent. errors are
    [{"field": "members.0.name", "code", "zh", "en"}]; today defaults to the date in
    Asia/Shanghai (settings["timezone"] overrides)."""
    try:
        plan = _plan(definition)
    except (KeyError, TypeError, AttributeError, ValueError, RecursionError) as exc:
        return {}, [{"field": "", "code": "definition",
                     "zh": f"表单定义有误：{exc}", "en": f"The form definition is broken: {exc}"}]
    merged = dict(plan.settings)
    for key, value in (settings or {}).items():
        if is_number(value) and math.isfinite(value):
            merged[key] = value
    validator = _Validator(plan, _today_iso(today, settings), merged)
    try:
        clean = validator.run(answers)
    except (ConditionError, RecursionError) as exc:  # a broken definition, not the phone's fault
        return {}, [{"field": "", "code": "definition",
                     "zh": f"表单定义有误：{exc}", "en": f"The form definition is broken: {exc}"}]
    errors = validator.errors
    if validator.total > len(errors):
        more = validator.total - len(errors)
        errors = errors + [{"field": "", "code": "more", "zh": f"另有 {more} 处错误未列出",
                            "en": f"{more} more errors not listed"}]
    return clean, errors


# =============================================================================================
# What answers mean for the rest of the system


def attachment_names(definition, answers):
    """The photo and signature file names the answers refer to, in form order, once each."""
    names = []
    if not isinstance(answers, dict):
        return names

    def add(value):
        if is_safe_attachment_name(value) and value not in names:
            names.append(value)

    def walk(plans, values):
        for fp in plans:
            value = values.get(fp.name)
            if fp.attachment:
                add(value)
            elif fp.children and isinstance(value, list):
                for entry in value:
                    if isinstance(entry, dict):
                        walk(fp.children, entry)

    walk(_plan(definition).attachment_fields, answers)
    return names