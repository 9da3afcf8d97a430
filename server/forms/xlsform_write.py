"""XLSForm out: any form version (the built-in YAML forms too) as an XLSForm workbook that pyxform,
ODK, Kobo and Excel read, and that Jiedui's reader turns back into the same definition.

Jiedui's JSON conditions and bounds are written twice: translated into XPath in the standard
columns (relevant, constraint, calculation), so every other tool sees the logic, and exactly in a
`jiedui` column (JSON), which the reader takes back only while the standard columns still say what
was written (an edit made in Excel wins). Form-level keys XLSForm has no place for (effects,
profile, settings, a title in two languages) go to the settings sheet's `jiedui` column.
"""

import io
import json

from server.forms import xpath

ZH, EN = "Chinese (zh)", "English (en)"
SURVEY_COLUMNS = ["type", "name", f"label::{ZH}", f"label::{EN}", f"hint::{ZH}", f"hint::{EN}", "required",
                  f"required_message::{ZH}", f"required_message::{EN}", "relevant", "constraint",
                  f"constraint_message::{ZH}", f"constraint_message::{EN}", "calculation", "default",
                  "read_only", "choice_filter", "appearance", "parameters", "repeat_count", "jiedui"]
TYPE_OUT = {"photo": "image", "datetime": "dateTime", "textarea": "text", "signature": "image"}
BOUNDED = ("integer", "decimal", "date", "text", "textarea")


# =============================================================================================
# JSON conditions and expressions in XPath


def _quote(text):
    if "'" not in text:
        return f"'{text}'"
    if '"' not in text:
        return f'"{text}"'
    return "concat(" + ", \"'\", ".join(f"'{part}'" for part in text.split("'")) + ")"


def _literal(value):
    if value is None:
        return "''"
    if isinstance(value, bool):
        return "true()" if value else "false()"
    if isinstance(value, (int, float)):
        return xpath.to_string(float(value))
    if isinstance(value, list):
        return _quote(" ".join(str(v) for v in value))
    return _quote(str(value))


def _ref(name):
    return "." if name == "." else f"${{{name}}}"


def _operand(value):
    if isinstance(value, dict):
        (key, arg), = value.items()
        if key == "field":
            return _ref(arg)
        if key == "today":
            return f"date(today() + {arg})" if arg else "today()"
        if key == "today_year":
            return f"(format-date(today(), '%Y') + {arg})"
    return _literal(value)


_OPS = {"eq": "=", "ne": "!=", "gt": ">", "ge": ">=", "lt": "<", "le": "<="}


def condition_xpath(cond, types=None):
    """A JSON condition (docs/forms.md) written as the XPath ODK reads the same way."""
    types = types or {}
    if "xpath" in cond:
        return cond["xpath"]
    if "field" in cond:
        left, op, value = _ref(cond["field"]), cond["op"], cond.get("value")
        kind = types.get(cond["field"])
        if op == "answered":
            test = f"count({left}) > 0" if kind == "repeat" else f"{left} != ''"
            return test if value is not False else f"not({test})"
        if op in _OPS:
            return f"{left} {_OPS[op]} {_operand(value)}"
        if op == "in":
            if not value:
                return "false()"
            return "(" + " or ".join(f"{left} = {_literal(v)}" for v in value) + ")"
        if op == "contains":
            if kind in ("text", "textarea"):
                return f"contains({left}, {_operand(value)})"
            return f"selected({left}, {_operand(value)})"
    (key, arg), = cond.items()
    if key == "not":
        return f"not({condition_xpath(arg, types)})"
    if not arg:
        return "true()" if key == "all" else "false()"
    joiner = " and " if key == "all" else " or "
    return joiner.join(f"({condition_xpath(c, types)})" for c in arg)


def compute_xpath(expr, settings=None):
    """A JSON compute expression as XPath (a setting becomes its number)."""
    if isinstance(expr, dict) and "xpath" in expr:
        return expr["xpath"]
    if isinstance(expr, (int, float)):
        return _literal(expr)
    if isinstance(expr, str):
        return _ref(expr)
    (key, arg), = expr.items()
    if key == "setting":
        return _literal((settings or {}).get(arg, 0))
    if key == "round":
        return f"round({compute_xpath(arg[0], settings)}, {arg[1]})"
    if key == "sum":
        return "(" + " + ".join(f"coalesce({compute_xpath(a, settings)}, 0)" for a in arg) + ")"
    return "(" + " * ".join(compute_xpath(a, settings) for a in arg) + ")"


def _bounds_xpath(field):
    kind, parts = field.get("type"), []
    if kind in ("text", "textarea"):
        if "min" in field:
            parts.append(f"string-length(.) >= {field['min']}")
        if "max" in field:
            parts.append(f"string-length(.) <= {field['max']}")
    elif kind in ("integer", "decimal", "date"):
        if "min" in field:
            parts.append(f". >= {_literal(field['min'])}")
        if "max" in field:
            parts.append(f". <= {_literal(field['max'])}")
    return parts


def standard_columns(field, raw=None, types=None, settings=None):
    """{"relevant", "constraint", "calculation"} as written for a field (raw: as a row holds them)."""
    if raw is not None:
        return {k: (raw.get(k) or "").strip() for k in ("relevant", "constraint", "calculation")}
    relevant = condition_xpath(field["relevant"], types) if "relevant" in field else ""
    parts = [] if field.get("type") == "range" else _bounds_xpath(field)
    if "constraint" in field:
        parts.append(condition_xpath(field["constraint"], types))
    constraint = parts[0] if len(parts) == 1 else " and ".join(f"({p})" for p in parts)
    calculation = compute_xpath(field["compute"], settings) if "compute" in field else ""
    return {"relevant": relevant, "constraint": constraint, "calculation": calculation}


# =============================================================================================
# The workbook


def _is_xpath(node):
    return isinstance(node, dict) and "xpath" in node


def _rows(definition):
    """(survey rows, choice rows) as lists of {column: value}."""
    types = {}

    def collect(fields):
        for f in fields:
            types[f["name"]] = f["type"]
            collect(f.get("fields") or [])
    collect(definition["fields"])
    settings = definition.get("settings") or {}
    survey, choices, lists = [], [], {}

    def texts(row, key, value):
        if value:
            row[f"{key}::{ZH}"], row[f"{key}::{EN}"] = value["zh"], value["en"]

    def emit(field):
        kind = field["type"]
        row = {"name": field["name"]}
        texts(row, "label", field.get("label"))
        texts(row, "hint", field.get("hint"))
        extra = {}
        columns = standard_columns(field, types=types, settings=settings)
        row.update({k: v for k, v in columns.items() if v})
        for key in ("relevant", "constraint", "compute"):
            if key in field and not _is_xpath(field[key]):
                extra[key] = field[key]
        if kind in BOUNDED:
            for key in ("min", "max"):
                if key in field:
                    extra[key] = field[key]
        for key in ("prefill", "min_count", "max_count", "choices_file"):
            if key in field:
                extra[key] = field[key]
        if kind in ("group", "repeat"):
            row["type"] = f"begin_{kind}"
            if kind == "repeat" and "count" in field:
                count = field["count"]
                row["repeat_count"] = count["xpath"] if _is_xpath(count) else count
            if field.get("appearance"):
                row["appearance"] = field["appearance"]
            if extra:
                row["jiedui"] = json.dumps(extra, ensure_ascii=False, sort_keys=True)
            survey.append(row)
            for child in field["fields"]:
                emit(child)
            survey.append({"type": f"end_{kind}", "name": field["name"]})
            return
        if kind in ("select_one", "select_multiple", "rank"):
            key = json.dumps(field["choices"], ensure_ascii=False, sort_keys=True)
            if key in lists:  # the same choices: the same list (a table-list group needs that)
                row["type"] = f"{kind} {lists[key]}"
            else:
                lists[key] = field["name"]
                row["type"] = f"{kind} {field['name']}"
            for choice in field["choices"] if lists[key] == field["name"] else ():
                crow = {"list_name": field["name"], "name": choice["name"],
                        f"label::{ZH}": choice["label"]["zh"], f"label::{EN}": choice["label"]["en"]}
                crow.update(choice.get("data") or {})
                choices.append(crow)
        else:
            row["type"] = TYPE_OUT.get(kind, kind)
        appearance = field.get("appearance", "")
        if kind == "textarea":
            appearance = ("multiline " + appearance).strip()
        if kind == "signature":
            appearance = ("signature " + appearance).strip()
        if appearance:
            row["appearance"] = appearance
        if field.get("required"):
            row["required"] = "yes"
            texts(row, "required_message", field.get("required_message"))
        if field.get("readonly"):
            row["read_only"] = "yes"
        if "constraint_message" in field and row.get("constraint"):
            texts(row, "constraint_message", field["constraint_message"])
        if "choice_filter" in field:
            row["choice_filter"] = field["choice_filter"]["xpath"]
        if "default" in field:
            row["default"] = field["default"]
        if kind == "range":
            row["parameters"] = " ".join(f"{k}={xpath.to_string(float(field[v]))}"
                                         for k, v in (("start", "min"), ("end", "max"), ("step", "step"))
                                         if v in field)
        elif field.get("parameters"):
            row["parameters"] = field["parameters"]
        if extra:
            row["jiedui"] = json.dumps(extra, ensure_ascii=False, sort_keys=True)
        survey.append(row)

    for field in definition["fields"]:
        emit(field)
    return survey, choices


def write_xlsform(definition):
    """The definition as XLSForm workbook bytes (survey, choices, settings)."""
    from openpyxl import Workbook
    survey, choices = _rows(definition)
    wb = Workbook()
    ws = wb.active
    ws.title = "survey"
    ws.append(SURVEY_COLUMNS)
    for row in survey:
        ws.append([_safe(row.get(c)) for c in SURVEY_COLUMNS])
    cs = wb.create_sheet("choices")
    data_columns = []
    for row in choices:
        for key in row:
            if key not in ("list_name", "name", f"label::{ZH}", f"label::{EN}") and key not in data_columns:
                data_columns.append(key)
    choice_columns = ["list_name", "name", f"label::{ZH}", f"label::{EN}"] + data_columns
    cs.append(choice_columns)
    for row in choices:
        cs.append([_safe(row.get(c)) for c in choice_columns])
    ss = wb.create_sheet("settings")
    extra = {key: definition[key] for key in ("effects", "profile", "settings") if key in definition}
    if definition["title"]["zh"] != definition["title"]["en"]:
        extra["title"] = definition["title"]
    header = ["form_title", "form_id", "version", "default_language"] + (["jiedui"] if extra else [])
    ss.append(header)
    values = [definition["title"]["zh"], definition["id"], str(definition["version"]), ZH]
    if extra:
        values.append(json.dumps(extra, ensure_ascii=False, sort_keys=True))
    ss.append([_safe(v) for v in values])
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def _safe(value):
    """Cells are text or numbers, never formulas: openpyxl writes a leading '=' as one."""
    if value is None:
        return None
    if isinstance(value, str) and value.startswith("="):
        return " " + value  # the reader strips the space; Excel never runs it
    return value
