"""The condition language shared by the phone and the server (see docs/forms.md).

static/js/conditions.js is the same evaluator in JavaScript; tests/vectors/conditions.json is run
by both, so a change here needs the same change there (and a vector that shows it).

A condition is JSON:
    {"field": NAME, "op": "eq|ne|gt|ge|lt|le|in|contains|answered", "value": OPERAND}
    {"all": [COND, ...]}   {"any": [COND, ...]}   {"not": COND}
NAME is a field name, or "." for the value of the field the condition belongs to. Inside a repeat
a name resolves first in the current repeat entry, then in the top-level answers. OPERAND is a
JSON literal (null, boolean, number, string, or a list of those), {"field": NAME},
{"today": DAYS} (ISO date of today plus DAYS) or {"today_year": YEARS} (this year plus YEARS).

A compute expression (for read-only computed fields) is a number, a field NAME, {"sum": [E, ...]},
{"mul": [E, ...]}, {"round": [E, DIGITS]} or {"setting": NAME}.
"""

import datetime
import math
import re

from server.forms import xpath
from server.forms.wording import said

OPS = ("eq", "ne", "gt", "ge", "lt", "le", "in", "contains", "answered")
NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
ISO_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
MAX_DEPTH = 32
MAX_TODAY_OFFSET = 36500
MAX_ROUND_DIGITS = 6
# The characters that make a text "blank"; spelled out so Python and JS agree exactly.
BLANK_RE = re.compile(r"^[ \t\n\r\f\v\u00a0\u3000]*$")


class ConditionError(ValueError):
    """A condition or compute expression that is not well formed."""


# ---------------------------------------------------------------------------------------------
# Values


def is_number(value):
    """A JSON number; booleans are not numbers here (Python says True == 1, JSON does not)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def is_answered(value):
    """Whether a value counts as an answer: not null, not a blank text, not an empty list/object."""
    if value is None:
        return False
    if isinstance(value, str):
        return not BLANK_RE.match(value)
    if isinstance(value, (list, dict)):
        return len(value) > 0
    return True


def json_equal(a, b):
    """Equality of JSON values without Python's coercions (True != 1, "1" != 1; 1 == 1.0)."""
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if is_number(a) and is_number(b):
        return a == b
    if isinstance(a, str) and isinstance(b, str):
        return a == b
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(json_equal(x, y) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(json_equal(a[k], b[k]) for k in a)
    return False


def _order(a, b):
    """-1/0/1 for two numbers or two strings (strings in UTF-16 code-unit order, as JS does);
    None when they cannot be ordered."""
    if is_number(a) and is_number(b):
        return (a > b) - (a < b)
    if isinstance(a, str) and isinstance(b, str):
        ka = a.encode("utf-16-be", "surrogatepass")
        kb = b.encode("utf-16-be", "surrogatepass")
        return (ka > kb) - (ka < kb)
    return None


def _today(today):
    """today as a date: a date, an ISO string, or None for the server's local date."""
    if today is None:
        return datetime.date.today()
    if isinstance(today, datetime.datetime):
        return today.date()
    if isinstance(today, datetime.date):
        return today
    if isinstance(today, str) and ISO_DATE_RE.match(today):
        try:
            return datetime.date.fromisoformat(today)
        except ValueError:
            pass
    raise ConditionError(f"today must be an ISO date, not {today!r}")


# ---------------------------------------------------------------------------------------------
# Structure checks (shared by the evaluator and the form loader)


def _is_literal(value, depth=0):
    if depth > MAX_DEPTH:
        return False
    if value is None or isinstance(value, (bool, str)) or is_number(value):
        return not (isinstance(value, float) and not math.isfinite(value))
    if isinstance(value, list):
        return all(_is_literal(v, depth + 1) for v in value)
    return False


def _is_offset(value):
    return is_number(value) and float(value).is_integer() and abs(value) <= MAX_TODAY_OFFSET


def _check_operand(value, path, problems, names):
    if isinstance(value, dict):
        if len(value) != 1:
            problems.append(said(f"{path}：操作数对象只能有一个键：field、today 或 today_year",
                                  f"{path}: an operand object has exactly one key: field, today or today_year"))
            return
        (key, arg), = value.items()
        if key == "field":
            if not isinstance(arg, str) or not (arg == "." or NAME_RE.match(arg)):
                problems.append(said(f"{path}.field：{arg!r} 不是字段名",
                                      f"{path}.field: {arg!r} is not a field name"))
            else:
                names.append(arg)
        elif key in ("today", "today_year"):
            if not _is_offset(arg):
                problems.append(said(f"{path}.{key}：必须是整数天数或年数，而不是 {arg!r}",
                                      f"{path}.{key}: must be a whole number of days/years, not {arg!r}"))
        else:
            problems.append(said(f"{path}：未知的操作数 {key!r}（应为 field、today 或 today_year）",
                                  f"{path}: unknown operand {key!r} (expected field, today or today_year)"))
    elif not _is_literal(value):
        problems.append(said(f"{path}：值只能是 null、布尔值、数字、文字或它们的列表",
                              f"{path}: a value is null, a boolean, a number, a text or a list of those"))


def _check(cond, path, problems, names, depth):
    if depth > MAX_DEPTH:
        problems.append(said(f"{path}：嵌套太深", f"{path}: nested too deeply"))
        return
    if not isinstance(cond, dict):
        problems.append(said(f"{path}：条件必须是对象（映射）", f"{path}: a condition is an object"))
        return
    if "xpath" in cond:
        _check_xpath(cond, path, problems, names)
        return
    if "field" in cond:
        extra = set(cond) - {"field", "op", "value"}
        if extra:
            problems.append(said(f"{path}：未知的键 {sorted(extra)}", f"{path}: unknown keys {sorted(extra)}"))
        field = cond.get("field")
        if not isinstance(field, str) or not (field == "." or NAME_RE.match(field)):
            problems.append(said(f"{path}.field：{field!r} 不是字段名",
                                  f"{path}.field: {field!r} is not a field name"))
        else:
            names.append(field)
        op = cond.get("op")
        if op not in OPS:
            problems.append(said(f"{path}.op：{op!r} 不是以下之一：{', '.join(OPS)}",
                                  f"{path}.op: {op!r} is not one of {', '.join(OPS)}"))
        elif op == "answered":
            if "value" in cond and not isinstance(cond["value"], bool):
                problems.append(said(f"{path}.value：answered 只接受 true 或 false",
                                      f"{path}.value: answered takes true or false"))
        elif "value" not in cond:
            problems.append(said(f"{path}：op {op} 需要一个 value", f"{path}: op {op} needs a value"))
        else:
            _check_operand(cond["value"], f"{path}.value", problems, names)
        return
    if len(cond) != 1:
        problems.append(said(f"{path}：应为 field、all、any、not 之一（现在是 {sorted(cond)}）",
                              f"{path}: expected one of field, all, any, not (got {sorted(cond)})"))
        return
    (key, arg), = cond.items()
    if key in ("all", "any"):
        if not isinstance(arg, list):
            problems.append(said(f"{path}.{key}：必须是条件的列表", f"{path}.{key}: must be a list of conditions"))
            return
        for i, sub in enumerate(arg):
            _check(sub, f"{path}.{key}.{i}", problems, names, depth + 1)
    elif key == "not":
        _check(arg, f"{path}.not", problems, names, depth + 1)
    else:
        problems.append(said(f"{path}：未知的键 {key!r}（应为 field、all、any 或 not）",
                              f"{path}: unknown key {key!r} (expected field, all, any or not)"))


def _check_xpath(node, path, problems, names, columns=None):
    """{"xpath": "..."}: an expression in ODK's XPath dialect (server/forms/xpath.py). Its ${names}
    count as references ('.' too); bare names are choice columns, only for a choice_filter."""
    if set(node) != {"xpath"} or not isinstance(node["xpath"], str):
        problems.append(said(f"{path}：XPath 节点必须正好是 {{\"xpath\": \"...\"}}",
                              f"{path}: an XPath node is exactly {{\"xpath\": \"...\"}}"))
        return
    try:
        refs, dot, cols, _functions = xpath.references(node["xpath"])
    except xpath.XPathError as exc:
        problems.append(said(f"{path}：{exc.zh}", f"{path}: {exc.en}"))
        return
    names.extend(refs)
    if dot:
        names.append(".")
    if columns is None and cols:
        problems.append(said(f"{path}：{cols[0]!r} 不是引用：请写 ${{{cols[0]}}}",
                              f"{path}: {cols[0]!r} is not a reference: write ${{{cols[0]}}}"))
    elif columns is not None:
        columns.extend(cols)


def check_condition(cond, path="condition"):
    """(problems, names): what is wrong with a condition, and the field names it refers to."""
    problems, names = [], []
    _check(cond, path, problems, names, 0)
    return problems, names


def _check_expr(expr, path, problems, names, settings, depth):
    if depth > MAX_DEPTH:
        problems.append(said(f"{path}：嵌套太深", f"{path}: nested too deeply"))
        return
    if is_number(expr):
        if isinstance(expr, float) and not math.isfinite(expr):
            problems.append(said(f"{path}：不是有限的数", f"{path}: not a finite number"))
        return
    if isinstance(expr, dict) and "xpath" in expr:
        _check_xpath(expr, path, problems, names)
        return
    if isinstance(expr, str):
        if NAME_RE.match(expr):
            names.append(expr)
        else:
            problems.append(said(f"{path}：{expr!r} 不是字段名", f"{path}: {expr!r} is not a field name"))
        return
    if not isinstance(expr, dict) or len(expr) != 1:
        problems.append(said(f"{path}：表达式只能是数字、字段名，或 sum、mul、round、setting 之一",
                              f"{path}: an expression is a number, a field name or one of sum, mul, round, setting"))
        return
    (key, arg), = expr.items()
    if key in ("sum", "mul"):
        if not isinstance(arg, list) or not arg:
            problems.append(said(f"{path}.{key}：必须是非空列表", f"{path}.{key}: must be a non-empty list"))
            return
        for i, sub in enumerate(arg):
            _check_expr(sub, f"{path}.{key}.{i}", problems, names, settings, depth + 1)
    elif key == "round":
        if (not isinstance(arg, list) or len(arg) != 2 or not is_number(arg[1])
                or not float(arg[1]).is_integer() or not 0 <= arg[1] <= MAX_ROUND_DIGITS):
            problems.append(said(f"{path}.round：必须是 [表达式, 小数位数 0..{MAX_ROUND_DIGITS}]",
                                  f"{path}.round: must be [expression, digits 0..{MAX_ROUND_DIGITS}]"))
            return
        _check_expr(arg[0], f"{path}.round.0", problems, names, settings, depth + 1)
    elif key == "setting":
        if not isinstance(arg, str) or not NAME_RE.match(arg):
            problems.append(said(f"{path}.setting：{arg!r} 不是设置名",
                                  f"{path}.setting: {arg!r} is not a setting name"))
        elif settings is not None and arg not in settings:
            problems.append(said(f"{path}.setting：{arg!r} 没有在表单的 settings 中声明",
                                  f"{path}.setting: {arg!r} is not declared under the form's settings"))
    else:
        problems.append(said(f"{path}：未知的运算 {key!r}（应为 sum、mul、round 或 setting）",
                              f"{path}: unknown operator {key!r} (expected sum, mul, round or setting)"))


def check_expression(expr, path="compute", settings=None):
    """(problems, names) for a compute expression; settings, when given, are the declared ones."""
    problems, names = [], []
    _check_expr(expr, path, problems, names, settings, 0)
    return problems, names


# ---------------------------------------------------------------------------------------------
# Evaluation

_MISSING = object()
MISSING = _MISSING  # "the field's own value is unanswered", for callers of compiled nodes

# Conditions and expressions are compiled once into closures: the validator runs them for every
# question of every item, so the structure check and the dict walking happen once per form
# version, not once per answer. A compiled node is fn(answers, entry, self_value, today) with
# answers a dict and entry a dict or None. evaluate() and compute() compile too, so the shared
# vectors exercise exactly the code the validator runs.


def _getter(name):
    if name == ".":
        return lambda a, e, s, t: None if s is _MISSING else s

    def lookup(a, e, s, t):
        if e is not None and name in e:
            return e[name]
        return a.get(name)
    return lookup


_day_cache = {}


def _day(today):
    """_today, remembered for the ISO strings the validator passes again and again."""
    if isinstance(today, str):
        day = _day_cache.get(today)
        if day is None:
            day = _today(today)
            if len(_day_cache) > 64:
                _day_cache.clear()
            _day_cache[today] = day
        return day
    return _today(today)


def _operand(value):
    """(constant, None) for a literal operand, (None, node) for one that depends on the answers."""
    if isinstance(value, dict):
        (key, arg), = value.items()
        if key == "field":
            return None, _getter(arg)
        offset = int(arg)
        if key == "today":
            delta = datetime.timedelta(days=offset)
            return None, lambda a, e, s, t: (_day(t) + delta).isoformat()
        return None, lambda a, e, s, t: _day(t).year + offset  # today_year
    return value, None


_ORDERED = {"gt": lambda o: o > 0, "ge": lambda o: o >= 0, "lt": lambda o: o < 0, "le": lambda o: o <= 0}


def _compare(op, left_of, constant, right_of):
    """The node of one comparison; `right_of` is None when the right side is a constant."""
    if op == "eq" or op == "ne":
        want = op == "eq"
        if right_of is None:
            if isinstance(constant, str):  # the common case: a choice name
                return lambda a, e, s, t: (isinstance(left := left_of(a, e, s, t), str)
                                           and left == constant) is want
            return lambda a, e, s, t: json_equal(left_of(a, e, s, t), constant) is want
        return lambda a, e, s, t: json_equal(left_of(a, e, s, t), right_of(a, e, s, t)) is want
    if op == "in":
        def is_in(a, e, s, t):
            right = constant if right_of is None else right_of(a, e, s, t)
            if not isinstance(right, list):
                return False
            left = left_of(a, e, s, t)
            return any(json_equal(left, r) for r in right)
        return is_in
    if op == "contains":
        def contains(a, e, s, t):
            left = left_of(a, e, s, t)
            right = constant if right_of is None else right_of(a, e, s, t)
            if isinstance(left, list):
                return any(json_equal(item, right) for item in left)
            return isinstance(left, str) and isinstance(right, str) and right in left
        return contains
    holds = _ORDERED[op]

    def ordered(a, e, s, t):
        order = _order(left_of(a, e, s, t), constant if right_of is None else right_of(a, e, s, t))
        return False if order is None else holds(order)
    return ordered


class FormEnv:
    """What XPath nodes of one form need beyond the answers: where each name inside a repeat lives
    ({name: [repeat, ...]}) and the labels of choices (for jr:choice-name)."""

    __slots__ = ("layout", "labels")

    def __init__(self, layout=None, labels=None):
        self.layout, self.labels = layout or {}, labels


_NO_ENV = FormEnv()


def _iso_day(t):
    return t if isinstance(t, str) and ISO_DATE_RE.match(t) else _day(t).isoformat()


def _compile_xpath(text, env):
    tree = xpath.parse(text)
    layout, labels = env.layout, env.labels

    def run(a, e, s, t):
        ctx = xpath.Context(a, e, None if s is _MISSING else s, _iso_day(t), None, layout, labels)
        return xpath.to_bool(xpath.evaluate_tree(tree, ctx))
    return run


def xpath_value_node(text, env=None):
    """node(answers, entry, self_value, today) -> the raw XPath value of an expression."""
    tree = xpath.parse(text)
    env = env or _NO_ENV
    layout, labels = env.layout, env.labels

    def run(a, e, s, t, previous=None):
        ctx = xpath.Context(a, e, None if s is _MISSING else s, _iso_day(t), None, layout, labels,
                            None, previous)
        return xpath.evaluate_tree(tree, ctx)
    return run


def _compile(cond, env=_NO_ENV):
    if "xpath" in cond:
        return _compile_xpath(cond["xpath"], env)
    if "field" in cond:
        left_of = _getter(cond["field"])
        op = cond["op"]
        if op == "answered":
            want = cond.get("value", True)
            return lambda a, e, s, t: is_answered(left_of(a, e, s, t)) == want
        constant, right_of = _operand(cond["value"])
        return _compare(op, left_of, constant, right_of)
    (key, arg), = cond.items()
    if key == "not":
        inner = _compile(arg, env)
        return lambda a, e, s, t: not inner(a, e, s, t)
    subs = tuple(_compile(sub, env) for sub in arg)
    if key == "all":
        def every(a, e, s, t):
            for sub in subs:
                if not sub(a, e, s, t):
                    return False
            return True
        return every

    def some(a, e, s, t):
        for sub in subs:
            if sub(a, e, s, t):
                return True
        return False
    return some


def compile_node(cond, env=None):
    """The compiled node of a condition (None: always true): fn(answers, entry, self_value, today)
    with answers a dict and entry a dict or None. ConditionError for a malformed condition.
    env: the form's FormEnv, for XPath nodes."""
    if cond is None:
        return lambda a, e, s, t: True
    problems, _ = check_condition(cond)
    if problems:
        raise ConditionError("; ".join(problems))
    return _compile(cond, env or _NO_ENV)


def compile_condition(cond):
    """fn(answers, entry=None, self_value=<unanswered>, today=None) -> bool for a condition (None:
    always true). Raises ConditionError for a malformed condition, as evaluate does."""
    node = compile_node(cond)

    def run(answers, entry=None, self_value=_MISSING, today=None):
        return node(answers if isinstance(answers, dict) else {},
                    entry if isinstance(entry, dict) else None, self_value, today)
    return run


def evaluate(cond, answers, *, entry=None, self_value=_MISSING, today=None):
    """True/False for a condition; None (no condition) is True. Raises ConditionError when the
    condition itself is malformed (never because of the answers)."""
    return compile_condition(cond)(answers, entry, self_value, today)


_compiled_cache = {}


def compiled(cond):
    """compile_condition for conditions that live in a loaded form definition: cached by identity
    (definitions are shared and never changed; the cache keeps each one alive, so ids stay unique)."""
    hit = _compiled_cache.get(id(cond))
    if hit is not None and hit[0] is cond:
        return hit[1]
    fn = compile_condition(cond)
    if len(_compiled_cache) > 5000:
        _compiled_cache.clear()
    _compiled_cache[id(cond)] = (cond, fn)
    return fn


def _normal_number(value):
    """Floats that hold a whole number become ints, so Python and JS print the same JSON."""
    if isinstance(value, float) and value.is_integer() and abs(value) <= 2 ** 53:
        return int(value)
    return value


def _compile_expr(expr):
    """node(answers, entry, settings) -> number or None."""
    if is_number(expr):
        return lambda a, e, settings: expr
    if isinstance(expr, dict) and "xpath" in expr:  # as a number (formdefs holds other types apart)
        node = xpath_value_node(expr["xpath"])

        def number(a, e, settings):
            value = xpath.to_number(node(a, e, _MISSING, None))
            return value if math.isfinite(value) else None
        return number
    if isinstance(expr, str):
        get = _getter(expr)

        def field(a, e, settings):
            value = get(a, e, _MISSING, None)
            return value if is_number(value) else None
        return field
    (key, arg), = expr.items()
    if key == "setting":
        def setting(a, e, settings):
            value = settings.get(arg) if isinstance(settings, dict) else None
            return value if is_number(value) else None
        return setting
    if key == "round":
        inner, factor = _compile_expr(arg[0]), 10 ** int(arg[1])

        def rounded(a, e, settings):
            value = inner(a, e, settings)
            if value is None:
                return None
            r = math.floor(abs(value) * factor + 0.5) / factor
            return 0 if r == 0 else math.copysign(r, value)
        return rounded
    subs = tuple(_compile_expr(sub) for sub in arg)
    if key == "sum":
        def total(a, e, settings):
            present = [v for v in (sub(a, e, settings) for sub in subs) if v is not None]
            if not present:
                return None
            out = 0
            for v in present:  # plain left-to-right adds, as JS does (Python 3.12's sum() compensates)
                out = out + v
            return out
        return total

    def product(a, e, settings):
        values = [sub(a, e, settings) for sub in subs]
        if any(v is None for v in values):  # mul needs every factor
            return None
        out = 1
        for v in values:
            out = out * v
        return out
    return product


def compile_expression_node(expr):
    """node(answers, entry, settings) -> the value of a compute expression (finite, whole floats
    as ints) or None; answers a dict, entry a dict or None, settings a dict. ConditionError for
    a malformed expression."""
    problems, _ = check_expression(expr)
    if problems:
        raise ConditionError("; ".join(problems))
    node = _compile_expr(expr)

    def run(a, e, settings):
        value = node(a, e, settings)
        if value is not None and not math.isfinite(value):
            return None
        return _normal_number(value)
    return run


def compile_expression(expr):
    """fn(answers, entry=None, settings=None) -> the value of a compute expression, or None when an
    input it needs is not answered. Raises ConditionError for a malformed expression."""
    node = compile_expression_node(expr)

    def run(answers, entry=None, settings=None):
        return node(answers if isinstance(answers, dict) else {},
                    entry if isinstance(entry, dict) else None, settings or {})
    return run


def compute(expr, answers, *, entry=None, settings=None):
    """The value of a compute expression, or None when an input it needs is not answered.
    sum skips unanswered terms (None only when all are); mul needs every factor."""
    return compile_expression(expr)(answers, entry, settings)
