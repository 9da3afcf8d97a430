"""A form version as an XForm 1.0 document, for ODK Collect and Enketo (OpenRosa).

Data first, as pyxform does: `xform_tree(definition)` builds a plain tree of
{"tag", "attrs", "children", "text"} dicts from the one parsed definition, and `to_xml` writes it
out byte for byte the same every time (the formList hash is the md5 of these bytes).

Where things go in the instance (and so in a submission):
- `/data/household_id`: the household, picked from the CSV media file households.csv
  (`instance('households')`, one row per household of the user's villages);
- each section (`type: group`) is an element `/data/<section>` holding its questions; answers are
  flattened again when a submission is read (services/openrosa.py);
- a repeat is `/data/[<section>/]<repeat>`, one element per entry (the first marked jr:template);
- `/data/meta/instanceID` (`uuid:...`), `timeStart` and `timeEnd`.

Conditions (JSON today) become XPath in one place, `condition_xpath`; a string passes through
unchanged, so definitions that carry ODK XPath expressions can be served as they are.
"""

import hashlib
import re
from decimal import Decimal
from xml.sax.saxutils import escape, quoteattr

from server.forms import formdefs

ROOT = "data"
HOUSEHOLD_FIELD = "household_id"
HOUSEHOLDS_MEDIA = "households.csv"
HOUSEHOLDS_INSTANCE = "households"
LANGUAGES = (("zh", "中文 (zh)"), ("en", "English (en)"))  # the first is the default

NAMESPACES = (
    ("xmlns", "http://www.w3.org/2002/xforms"),
    ("xmlns:h", "http://www.w3.org/1999/xhtml"),
    ("xmlns:ev", "http://www.w3.org/2001/xml-events"),
    ("xmlns:xsd", "http://www.w3.org/2001/XMLSchema"),
    ("xmlns:jr", "http://openrosa.org/javarosa"),
    ("xmlns:orx", "http://openrosa.org/xforms"),
    ("xmlns:odk", "http://www.opendatakit.org/xforms"),
)

BIND_TYPES = {"text": "string", "textarea": "string", "integer": "int", "decimal": "decimal",
              "date": "date", "select_one": "string", "select_multiple": "string",
              "geopoint": "geopoint", "photo": "binary", "signature": "binary", "note": "string"}

TEXTS = {
    "household": {"zh": "农户", "en": "Household"},
    "household_hint": {"zh": "从你负责的村的农户中选择", "en": "Choose from the households of your villages"},
    "prefill_note": {"zh": "以前答应的事请在结对网页应用中逐项答复（ODK Collect 不能预填）。",
                     "en": "Answer earlier promises in the Jiedui web app (ODK Collect cannot prefill them)."},
}


class XFormError(Exception):
    """A definition (or an expression in it) that cannot be written as an XForm."""


# ---- the tree -----------------------------------------------------------------------------------


def node(tag, attrs=None, children=None, text=None):
    """One element of the tree: plain data, written out by to_xml."""
    return {"tag": tag, "attrs": dict(attrs or {}), "children": list(children or []), "text": text}


def to_xml(tree):
    """The tree as UTF-8 bytes: two-space indents, attributes in the order given."""
    out = ['<?xml version="1.0" encoding="UTF-8"?>\n']

    def write(n, depth):
        pad = "  " * depth
        attrs = "".join(f" {k}={quoteattr(str(v))}" for k, v in n["attrs"].items())
        if n["children"]:
            out.append(f"{pad}<{n['tag']}{attrs}>\n")
            for child in n["children"]:
                write(child, depth + 1)
            out.append(f"{pad}</{n['tag']}>\n")
        elif n["text"] is not None and n["text"] != "":
            out.append(f"{pad}<{n['tag']}{attrs}>{escape(str(n['text']))}</{n['tag']}>\n")
        else:
            out.append(f"{pad}<{n['tag']}{attrs}/>\n")

    write(tree, 0)
    return "".join(out).encode("utf-8")


# ---- expressions --------------------------------------------------------------------------------


def literal(value):
    """A JSON scalar as an XPath literal."""
    if value is None:
        return "''"
    if isinstance(value, bool):
        return "true()" if value else "false()"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        text = format(Decimal(repr(value)), "f")  # XPath 1.0 has no exponent notation
        return text.rstrip("0").rstrip(".") if "." in text else text
    if isinstance(value, str):
        if "'" not in value:
            return f"'{value}'"
        if '"' not in value:
            return f'"{value}"'
        parts = value.split("'")
        return "concat(" + ", \"'\", ".join(f"'{p}'" for p in parts) + ")"
    raise XFormError(f"no XPath literal for {value!r}")


class Scope:
    """Where names lead from one place of the form: a field of the current repeat entry by a
    relative path (../name), any top-level question by its absolute path, "." to the field itself."""

    def __init__(self, top, entry=None, own_type=None):
        self.top = top              # name -> (absolute path, type)
        self.entry = entry or {}    # name -> type, the fields of the current repeat entry
        self.own_type = own_type

    def resolve(self, name):
        if name == ".":
            return ".", self.own_type
        if name in self.entry:
            return f"../{name}", self.entry[name]
        if name in self.top:
            return self.top[name]
        raise XFormError(f"unknown field {name!r}")

    def at(self, own_type):
        return Scope(self.top, self.entry, own_type)


def _today_days(offset):
    days = "decimal-date-time(today())"
    return f"({days} + {int(offset)})" if offset else days


def _operand(value, scope):
    """(xpath, type) of a condition's right-hand side; type None for literals."""
    if isinstance(value, dict):
        (key, arg), = value.items()
        if key == "field":
            return scope.resolve(arg)
        if key == "today":
            return _today_days(arg), "days"
        if key == "today_year":
            year = "number(format-date(today(), '%Y'))"
            return (f"({year} + {int(arg)})" if arg else year), None
        raise XFormError(f"unknown operand {key!r}")
    return None, None


def _days(xpath, kind):
    """A date as a number of days, so dates order (XPath 1.0 orders numbers only)."""
    if kind == "days":
        return xpath
    return f"decimal-date-time({xpath})"


def _comparison(cond, scope):
    left, left_type = scope.resolve(cond["field"])
    op = cond["op"]
    if op == "answered":
        want = cond.get("value", True)
        if left_type == "repeat":
            test = f"count({left}) > 0"
            return test if want else f"not({test})"
        return f"{left} != ''" if want else f"{left} = ''"
    value = cond.get("value")
    right, right_type = _operand(value, scope)
    if right is None:  # a literal
        if op in ("eq", "ne"):
            if isinstance(value, list):
                if left_type == "select_multiple" and value and all(isinstance(v, str) for v in value):
                    test = f"{left} = {literal(' '.join(value))}"
                else:
                    test = "false()"
            elif isinstance(value, bool):
                test = "false()"  # no answer is ever a boolean
            else:
                test = f"{left} = {literal(value)}"
            return test if op == "eq" else f"not({test})"
        if op == "in":
            options = value if isinstance(value, list) else []
            if not options:
                return "false()"
            return "(" + " or ".join(f"{left} = {literal(v)}" for v in options) + ")"
        if op == "contains":
            if left_type == "select_multiple":
                return f"selected({left}, {literal(value)})"
            return f"contains({left}, {literal(value)})" if isinstance(value, str) else "false()"
        symbol = {"gt": ">", "ge": ">=", "lt": "<", "le": "<="}[op]
        if left_type == "date" and isinstance(value, str):
            return f"({left} != '' and {_days(left, 'date')} {symbol} {_days(literal(value), 'date')})"
        return f"({left} != '' and {left} {symbol} {literal(value)})"
    # the right side depends on the answers (another field, today)
    if op in ("eq", "ne"):
        if right_type == "days" or (left_type == "date" and right_type == "date"):
            test = (f"({left} != '' and {_days(left, 'date')} = {_days(right, right_type)})"
                    if right_type == "days" else f"{left} = {right}")
        else:
            test = f"{left} = {right}"
        return test if op == "eq" else f"not({test})"
    if op in ("in", "contains"):
        if op == "contains" and left_type == "select_multiple":
            return f"selected({left}, {right})"
        return f"contains({left}, {right})" if op == "contains" else f"{left} = {right}"
    symbol = {"gt": ">", "ge": ">=", "lt": "<", "le": "<="}[op]
    guard = f"{left} != ''" + (f" and {right} != ''" if right_type not in ("days", None) else "")
    if left_type == "date" or right_type in ("days", "date"):
        return f"({guard} and {_days(left, left_type if left_type == 'days' else 'date')} {symbol} " \
               f"{_days(right, right_type if right_type == 'days' else 'date')})"
    return f"({guard} and {left} {symbol} {right})"


_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def xpath_text(text, scope):
    """An expression already in ODK's XPath dialect, its ${name} references made paths as pyxform
    makes them (a sibling in the same repeat entry relative, anything else absolute)."""
    return _REFERENCE.sub(lambda m: scope.resolve(m.group(1))[0], text)


def condition_xpath(cond, scope):
    """A definition's condition as an XPath expression. A string is taken as XPath already (the
    ODK dialect definitions may carry) and passes through, only its ${name} references resolved;
    None is true()."""
    if cond is None:
        return "true()"
    if isinstance(cond, str):
        return xpath_text(cond, scope)
    if isinstance(cond, dict) and set(cond) == {"xpath"}:  # an XLSForm expression (server/forms/xpath.py)
        return xpath_text(cond["xpath"], scope)
    if "field" in cond:
        return _comparison(cond, scope)
    (key, arg), = cond.items()
    if key == "not":
        return f"not({condition_xpath(arg, scope)})"
    if not arg:
        return "true()" if key == "all" else "false()"
    joiner = " and " if key == "all" else " or "
    parts = [condition_xpath(sub, scope) for sub in arg]
    return parts[0] if len(parts) == 1 else "(" + joiner.join(parts) + ")"


def expression_xpath(expr, scope, settings):
    """A compute expression as XPath (a string passes through). Unanswered stays empty as on the
    server: sum skips unanswered terms (empty when all are), mul needs every factor."""
    if isinstance(expr, str) and not _is_name(expr):
        return xpath_text(expr, scope)
    if isinstance(expr, dict) and set(expr) == {"xpath"}:
        return xpath_text(expr["xpath"], scope)
    if isinstance(expr, (int, float)) and not isinstance(expr, bool):
        return literal(expr)
    if isinstance(expr, str):
        return scope.resolve(expr)[0]
    (key, arg), = expr.items()
    if key == "setting":
        return literal((settings or {}).get(arg))
    if key == "round":
        inner = expression_xpath(arg[0], scope, settings)
        return f"if(string({inner}) = '', '', round({inner}, {int(arg[1])}))"
    terms = [expression_xpath(sub, scope, settings) for sub in arg]
    if key == "sum":
        empty = " and ".join(f"string({t}) = ''" for t in terms)
        total = " + ".join(f"coalesce({t}, 0)" for t in terms)
        return f"if({empty}, '', {total})"
    empty = " or ".join(f"string({t}) = ''" for t in terms)
    return f"if({empty}, '', {' * '.join(terms)})"


def _is_name(text):
    return bool(formdefs.ID_RE.match(text))


# ---- the form -----------------------------------------------------------------------------------


class _Builder:
    def __init__(self, definition):
        self.d = definition
        self.settings = definition.get("settings") or {}
        self.binds = []
        self.itext = {code: [] for code, _ in LANGUAGES}
        self.top = {HOUSEHOLD_FIELD: (f"/{ROOT}/{HOUSEHOLD_FIELD}", "select_one")}
        for section, field in _walk_top(definition):
            base = f"/{ROOT}/{section['name']}" if section else f"/{ROOT}"
            self.top[field["name"]] = (f"{base}/{field['name']}", field["type"])

    # texts

    def text(self, ident, texts):
        for code, _ in LANGUAGES:
            self.itext[code].append(node("text", {"id": ident}, [node("value", text=texts[code])]))
        return node("label" if ident.endswith(":label") else "hint",
                    {"ref": f"jr:itext('{ident}')"})

    def labels(self, path, field):
        out = [self.text(f"{path}:label", field["label"])]
        if field.get("hint"):
            out.append(self.text(f"{path}:hint", field["hint"]))
        return out

    def message(self, ident, texts):
        for code, _ in LANGUAGES:
            self.itext[code].append(node("text", {"id": ident}, [node("value", text=texts[code])]))
        return f"jr:itext('{ident}')"

    # binds and controls

    def bind(self, path, **attrs):
        self.binds.append(node("bind", {"nodeset": path, **{k.replace("__", ":"): v
                                                           for k, v in attrs.items()}}))

    def field(self, path, field, scope):
        """(instance element, body control) for one question."""
        kind = field["type"]
        if kind == "repeat":
            return self.repeat(path, field, scope)
        own = scope.at(kind)
        attrs = {"type": BIND_TYPES.get(kind, "string")}
        if "relevant" in field:
            attrs["relevant"] = condition_xpath(field["relevant"], own)
        if field.get("required"):
            attrs["required"] = "true()"
        constraint, message = self.constraint(path, field, own)
        if constraint:
            attrs["constraint"] = constraint
            if message:
                attrs["jr__constraintMsg"] = message
        if "compute" in field:
            attrs["calculate"] = expression_xpath(field["compute"], scope, self.settings)
        if field.get("readonly") or "compute" in field or kind == "note":
            attrs["readonly"] = "true()"
        self.bind(path, **attrs)
        return node(field["name"]), self.control(path, field)

    def constraint(self, path, field, scope):
        """The field's constraint and bounds as one XPath, and its message."""
        kind, parts = field["type"], []
        low, high = field.get("min"), field.get("max")
        if kind in ("integer", "decimal"):
            parts += [f". >= {literal(low)}"] if low is not None else []
            parts += [f". <= {literal(high)}"] if high is not None else []
        elif kind == "date":
            parts += [f"decimal-date-time(.) >= decimal-date-time({literal(low)})"] if low else []
            parts += [f"decimal-date-time(.) <= decimal-date-time({literal(high)})"] if high else []
        elif kind in ("text", "textarea"):
            limit = high if high is not None else formdefs.TEXT_MAX[kind]
            parts.append(f"string-length(.) <= {int(limit)}")
            if low:
                parts.append(f"string-length(.) >= {int(low)}")
        own = "constraint" in field
        if own:
            parts.append(condition_xpath(field["constraint"], scope))
        if not parts:
            return None, None
        expr = parts[0] if len(parts) == 1 else " and ".join(f"({p})" for p in parts)
        if own and field.get("constraint_message"):
            texts = field["constraint_message"]
        else:
            texts = _bounds_message(kind, low, high)
        return expr, self.message(f"{path}:constraintMsg", texts)

    def control(self, path, field):
        kind = field["type"]
        labels = self.labels(path, field)
        if kind in ("select_one", "select_multiple"):
            items = [node("item", children=[self.text(f"{path}/{c['name']}:label", c["label"]),
                                            node("value", text=c["name"])])
                     for c in field["choices"]]
            return node("select1" if kind == "select_one" else "select", {"ref": path}, labels + items)
        if kind == "photo":
            return node("upload", {"ref": path, "mediatype": "image/*"}, labels)
        if kind == "signature":
            return node("upload", {"ref": path, "mediatype": "image/*", "appearance": "signature"}, labels)
        attrs = {"ref": path}
        if kind == "textarea":
            attrs["appearance"] = "multiline"
        return node("input", attrs, labels)

    def repeat(self, path, field, scope):
        entry_types = {c["name"]: c["type"] for c in field["fields"]}
        inner = Scope(scope.top, entry_types)
        attrs = {}
        if "relevant" in field:
            attrs["relevant"] = condition_xpath(field["relevant"], scope.at("repeat"))
        if field.get("prefill"):
            # Collect cannot prefill an entry per open follow-up: the web app answers these.
            attrs["relevant"] = "false()"
        if attrs:
            self.bind(path, **attrs)
        template, controls = [], []
        for child in field["fields"]:
            element, control = self.field(f"{path}/{child['name']}", child, inner)
            template.append(element)
            controls.append(control)
        instance = node(field["name"], {"jr:template": ""}, template)
        body = node("group", {"ref": path}, self.labels(path, field) + [
            node("repeat", {"nodeset": path}, controls)])
        return instance, body

    def questions(self, base, fields, scope):
        elements, controls = [], []
        for field in fields:
            element, control = self.field(f"{base}/{field['name']}", field, scope)
            elements.append(element)
            controls.append(control)
        return elements, controls

    def build(self):
        d = self.d
        scope = Scope(self.top)
        household = f"/{ROOT}/{HOUSEHOLD_FIELD}"
        self.bind(household, type="string", required="true()")
        elements = [node(HOUSEHOLD_FIELD)]
        body = [node("select1", {"ref": household, "appearance": "autocomplete"}, [
            self.text(f"{household}:label", TEXTS["household"]),
            self.text(f"{household}:hint", TEXTS["household_hint"]),
            node("itemset", {"nodeset": f"instance('{HOUSEHOLDS_INSTANCE}')/root/item"},
                 [node("value", {"ref": "name"}), node("label", {"ref": "label"})])])]
        for field in d["fields"]:
            if field["type"] == "group":
                path = f"/{ROOT}/{field['name']}"
                if "relevant" in field:
                    self.bind(path, relevant=condition_xpath(field["relevant"], scope.at("group")))
                children, controls = self.questions(path, field["fields"], scope)
                elements.append(node(field["name"], children=children))
                body.append(node("group", {"ref": path}, self.labels(path, field) + controls))
            else:
                element, control = self.field(f"/{ROOT}/{field['name']}", field, scope)
                elements.append(element)
                body.append(control)
        if any(f.get("prefill") for _s, f in _walk_top(d)):
            note = f"/{ROOT}/prefill_note"
            # a note of the form, not an answer: it is dropped when a submission is read
            elements.append(node("prefill_note"))
            self.bind(note, type="string", readonly="true()")
            body.append(node("input", {"ref": note}, [self.text(f"{note}:label", TEXTS["prefill_note"])]))
        meta = f"/{ROOT}/meta"
        elements.append(node("meta", children=[node("instanceID"), node("timeStart"), node("timeEnd")]))
        self.bind(f"{meta}/instanceID", type="string", readonly="true()",
                  calculate="concat('uuid:', uuid())")
        self.bind(f"{meta}/timeStart", type="dateTime", jr__preload="timestamp", jr__preloadParams="start")
        self.bind(f"{meta}/timeEnd", type="dateTime", jr__preload="timestamp", jr__preloadParams="end")
        translations = [node("translation", {"lang": name, **({"default": "true()"} if i == 0 else {})},
                             self.itext[code])
                        for i, (code, name) in enumerate(LANGUAGES)]
        model = node("model", {"odk:xforms-version": "1.0.0"}, [
            node("itext", children=translations),
            node("instance", children=[node(ROOT, {"id": d["id"], "version": str(d["version"])}, elements)]),
            node("instance", {"id": HOUSEHOLDS_INSTANCE, "src": f"jr://file-csv/{HOUSEHOLDS_MEDIA}"}),
            *self.binds])
        head = node("h:head", children=[node("h:title", text=d["title"]["zh"]), model])
        return node("h:html", dict(NAMESPACES), [head, node("h:body", children=body)])


def _walk_top(definition):
    """(section or None, question) for every top-level question, sections opened."""
    for field in definition["fields"]:
        if field["type"] == "group":
            for child in field["fields"]:
                yield field, child
        else:
            yield None, field


def _bounds_message(kind, low, high):
    if kind in ("text", "textarea"):
        limit = high if high is not None else formdefs.TEXT_MAX[kind]
        return {"zh": f"最多 {limit} 字", "en": f"At most {limit} characters"}
    if low is not None and high is not None:
        return {"zh": f"须在 {low} 至 {high} 之间", "en": f"Must be between {low} and {high}"}
    if low is not None:
        return {"zh": f"不能小于 {low}", "en": f"Must be at least {low}"}
    return {"zh": f"不能大于 {high}", "en": f"Must be at most {high}"}


def xform_tree(definition):
    """The XForm of a form version as plain data (see the module docstring)."""
    return _Builder(definition).build()


_cache = {}


def xform_bytes(definition):
    """The XForm's bytes, built once per served definition (definitions never change)."""
    hit = _cache.get(id(definition))
    if hit is not None and hit[0] is definition:
        return hit[1]
    try:
        data = to_xml(xform_tree(definition))
    except (KeyError, TypeError, ValueError, AttributeError) as e:  # a definition of a newer shape
        raise XFormError(f"{definition.get('id')} {definition.get('version')}: {e!r}") from e
    if len(_cache) > 200:
        _cache.clear()
    _cache[id(definition)] = (definition, data)
    return data


def md5_hash(data):
    """The OpenRosa form of a hash: "md5:<hex>"."""
    return "md5:" + hashlib.md5(data).hexdigest()
