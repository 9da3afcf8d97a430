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
            problems.append(f"{path}: an operand object has exactly one key: field, today or today_year")
            return
        (key, arg), = value.items()
        if key == "field":
            if not isinstance(arg, str) or not (arg == "." or NAME_RE.match(arg)):
                problems.append(f"{path}.field: {arg!r} is not a field name")
            else:
                names.append(arg)
        elif key in ("today", "today_year"):
            if not _is_offset(arg):
                problems.append(f"{path}.{key}: must be a whole number of days/years, not {arg!r}")
        else:
            problems.append(f"{path}: unknown operand {key!r} (expected field, today or today_year)")
    elif not _is_literal(value):
        problems.append(f"{path}: a value is null, a boolean, a number, a text or a list of those")


def _check(cond, path, problems, names, depth):
    if depth > MAX_DEPTH:
        problems.append(f"{path}: nested too deeply")
        return
    if not isinstance(cond, dict):
        problems.append(f"{path}: a condition is an object")
        return
    if "field" in cond:
        extra = set(cond) - {"field", "op", "value"}
        if extra:
            problems.append(f"{path}: unknown keys {sorted(extra)}")
        field = cond.get("field")
        if not isinstance(field, str) or not (field == "." or NAME_RE.match(field)):
            problems.append(f"{path}.field: {field!r} is not a field name")
        else:
            names.append(field)
        op = cond.get("op")
        if op not in OPS:
            problems.append(f"{path}.op: {op!r} is not one of {', '.join(OPS)}")
        elif op == "answered":
            if "value" in cond and not isinstance(cond["value"], bool):
                problems.append(f"{path}.value: answered takes true or false")
        elif "value" not in cond:
            problems.append(f"{path}: op {op} needs a value")
        else:
            _check_operand(cond["value"], f"{path}.value", problems, names)
        return
    if len(cond) != 1:
        problems.append(f"{path}: expected one of field, all, any, not (got {sorted(cond)})")
        return
    (key, arg), = cond.items()
    if key in ("all", "any"):
        if not isinstance(arg, list):
            problems.append(f"{path}.{key}: must be a list of conditions")
            return
        for i, sub in enumerate(arg):
            _check(sub, f"{path}.{key}.{i}", problems, names, depth + 1)
    elif key == "not":
        _check(arg, f"{path}.not", problems, names, depth + 1)
    else:
        problems.append(f"{path}: unknown key {key!r} (expected field, all, any or not)")


def check_condition(cond, path="condition"):
    """(problems, names): what is wrong with a condition, and the field names it refers to."""
    problems, names = [], []
    _check(cond, path, problems, names, 0)
    return problems, names


def _check_expr(expr, path, problems, names, settings, depth):
    if depth > MAX_DEPTH:
        problems.append(f"{path}: nested too deeply")
        return
    if is_number(expr):
        if isinstance(expr, float) and not math.isfinite(expr):
            problems.append(f"{path}: not a finite number")
        return
    if isinstance(expr, str):
        if NAME_RE.match(expr):
            names.append(expr)
        else:
            problems.append(f"{path}: {expr!r} is not a field name")
        return
    if not isinstance(expr, dict) or len(expr) != 1:
        problems.append(f"{path}: an expression is a number, a field name or one of sum, mul, round, setting")
        return
    (key, arg), = expr.items()
    if key in ("sum", "mul"):
        if not isinstance(arg, list) or not arg:
            problems.append(f"{path}.{key}: must be a non-empty list")
            return
        for i, sub in enumerate(arg):
            _check_expr(sub, f"{path}.{key}.{i}", problems, names, settings, depth + 1)
    elif key == "round":
        if (not isinstance(arg, list) or len(arg) != 2 or not is_number(arg[1])
                or not float(arg[1]).is_integer() or not 0 <= arg[1] <= MAX_ROUND_DIGITS):
            problems.append(f"{path}.round: must be [expression, digits 0..{MAX_ROUND_DIGITS}]")
            return
        _check_expr(arg[0], f"{path}.round.0", problems, names, settings, depth + 1)
    elif key == "setting":
        if not isinstance(arg, str) or not NAME_RE.match(arg):
            problems.append(f"{path}.setting: {arg!r} is not a setting name")
        elif settings is not None and arg not in settings:
            problems.append(f"{path}.setting: {arg!r} is not declared under the form's settings")
    else:
        problems.append(f"{path}: unknown operator {key!r} (expected sum, mul, round or setting)")


def check_expression(expr, path="compute", settings=None):
    """(problems, names) for a compute expression; settings, when given, are the declared ones."""
    problems, names = [], []
    _check_expr(expr, path, problems, names, settings, 0)
    return problems, names


# ---------------------------------------------------------------------------------------------
# Evaluation

_MISSING = object()


class _Scope:
    __slots__ = ("answers", "entry", "self_value", "today")

    def __init__(self, answers, entry, self_value, today):
        self.answers = answers if isinstance(answers, dict) else {}
        self.entry = entry if isinstance(entry, dict) else None
        self.self_value = self_value
        self.today = today

    def lookup(self, name):
        if name == ".":
            return None if self.self_value is _MISSING else self.self_value
        if self.entry is not None and name in self.entry:
            return self.entry[name]
        return self.answers.get(name)


def _operand(value, scope):
    if isinstance(value, dict):
        (key, arg), = value.items()
        if key == "field":
            return scope.lookup(arg)
        day = _today(scope.today)
        if key == "today":
            return (day + datetime.timedelta(days=int(arg))).isoformat()
        return day.year + int(arg)  # today_year
    return value


def _eval(cond, scope):
    if "field" in cond:
        left = scope.lookup(cond["field"])
        op = cond["op"]
        if op == "answered":
            return is_answered(left) == cond.get("value", True)
        right = _operand(cond["value"], scope)
        if op == "eq":
            return json_equal(left, right)
        if op == "ne":
            return not json_equal(left, right)
        if op == "in":
            return isinstance(right, list) and any(json_equal(left, r) for r in right)
        if op == "contains":
            if isinstance(left, list):
                return any(json_equal(item, right) for item in left)
            return isinstance(left, str) and isinstance(right, str) and right in left
        order = _order(left, right)
        if order is None:
            return False
        return {"gt": order > 0, "ge": order >= 0, "lt": order < 0, "le": order <= 0}[op]
    (key, arg), = cond.items()
    if key == "all":
        return all(_eval(sub, scope) for sub in arg)
    if key == "any":
        return any(_eval(sub, scope) for sub in arg)
    return not _eval(arg, scope)


def evaluate(cond, answers, *, entry=None, self_value=_MISSING, today=None):
    """True/False for a condition; None (no condition) is True. Raises ConditionError when the
    condition itself is malformed (never because of the answers)."""
    if cond is None:
        return True
    problems, _ = check_condition(cond)
    if problems:
        raise ConditionError("; ".join(problems))
    return _eval(cond, _Scope(answers, entry, self_value, today))


def _normal_number(value):
    """Floats that hold a whole number become ints, so Python and JS print the same JSON."""
    if isinstance(value, float) and value.is_integer() and abs(value) <= 2 ** 53:
        return int(value)
    return value


def _compute(expr, scope, settings):
    if is_number(expr):
        return expr
    if isinstance(expr, str):
        value = scope.lookup(expr)
        return value if is_number(value) else None
    (key, arg), = expr.items()
    if key == "setting":
        value = settings.get(arg) if isinstance(settings, dict) else None
        return value if is_number(value) else None
    if key == "round":
        value = _compute(arg[0], scope, settings)
        if value is None:
            return None
        factor = 10 ** int(arg[1])
        rounded = math.floor(abs(value) * factor + 0.5) / factor
        return 0 if rounded == 0 else math.copysign(rounded, value)
    values = [_compute(sub, scope, settings) for sub in arg]
    if key == "sum":
        present = [v for v in values if v is not None]
        if not present:
            return None
        total = 0
        for v in present:  # plain left-to-right adds, as JS does (Python 3.12's sum() compensates)
            total = total + v
        return total
    if any(v is None for v in values):  # mul
        return None
    product = 1
    for v in values:
        product = product * v
    return product


def compute(expr, answers, *, entry=None, settings=None):
    """The value of a compute expression, or None when an input it needs is not answered.
    sum skips unanswered terms (None only when all are); mul needs every factor."""
    problems, _ = check_expression(expr)
    if problems:
        raise ConditionError("; ".join(problems))
    value = _compute(expr, _Scope(answers, entry, _MISSING, None), settings or {})
    if value is not None and not math.isfinite(value):
        return None
    return _normal_number(value)
