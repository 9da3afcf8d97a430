"""ODK's XPath dialect (the subset XLSForm forms use), parsed once and evaluated on the server.

static/js/xpath.js is the same parser and evaluator in JavaScript for the phone; the shared
vectors in tests/vectors/xpath.json are run by both, so a change here needs the same change there.

Values are XPath's: strings, numbers (doubles), booleans, and node-sets (a Python list of values,
for a name inside a repeat seen from outside it). An answer becomes a value as ODK reads it: a
number stays a number, a select_multiple is its choice names joined by spaces, a geopoint is
"lat lon 0 accuracy", an unanswered question is "". Dates are ISO strings ("2024-05-06"); turned
into a number they are days since 1970-01-01 (a dateTime: fractional days, its offset applied),
so `. <= today()` and `today() - ${birth}` work as in ODK Collect.
"""

import datetime
import math
import re
import uuid as _uuid
from decimal import Decimal

MAX_LENGTH = 4000
MAX_DEPTH = 40


class XPathError(ValueError):
    """An expression that does not parse, or names a function outside the subset."""

    def __init__(self, en, zh=None, construct=None):
        super().__init__(en)
        self.en = en
        self.zh = zh or en
        self.construct = construct


# ---------------------------------------------------------------------------------------------
# Parsing

_TOKEN = re.compile(r"""
    (?P<space>\s+)
  | (?P<ref>\$\{(?P<refname>[^}]*)\})
  | (?P<number>\d+(?:\.\d*)?|\.\d+)
  | (?P<string>'[^']*'|"[^"]*")
  | (?P<op>!=|<=|>=|\.\.|//|[=<>+\-*(),/.|\[\]@])
  | (?P<name>[A-Za-z_][A-Za-z0-9_.\-]*(?::[A-Za-z_][A-Za-z0-9_.\-]*)?)
""", re.VERBOSE)

REF_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]{0,63}$")

# name -> (min args, max args or None). Deterministic unless listed in VOLATILE.
FUNCTIONS = {
    "true": (0, 0), "false": (0, 0), "not": (1, 1), "boolean": (1, 1), "string": (0, 1),
    "number": (0, 1), "int": (1, 1), "round": (1, 2), "floor": (1, 1), "ceiling": (1, 1),
    "abs": (1, 1), "pow": (2, 2), "selected": (2, 2), "count-selected": (1, 1),
    "selected-at": (2, 2), "jr:choice-name": (2, 2), "count": (1, 1), "sum": (1, 1),
    "max": (1, None), "min": (1, None), "string-length": (0, 1), "substr": (2, 3),
    "substring": (2, 3), "concat": (0, None), "contains": (2, 2), "starts-with": (2, 2),
    "ends-with": (2, 2), "regex": (2, 2), "if": (3, 3), "coalesce": (2, 2), "today": (0, 0),
    "now": (0, 0), "date": (1, 1), "decimal-date-time": (1, 1), "format-date": (2, 2),
    "format-date-time": (2, 2), "position": (0, 1), "indexed-repeat": (3, 7), "once": (1, 1),
    "uuid": (0, 1), "normalize-space": (0, 1), "boolean-from-string": (1, 1), "join": (2, None),
    "translate": (3, 3),
}
VOLATILE = {"today", "now", "uuid", "once"}


def _tokens(text):
    out, pos = [], 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m:
            raise XPathError(f"cannot read the expression at character {pos + 1}: {text[pos:pos + 10]!r}",
                             f"表达式第 {pos + 1} 个字符处无法解析：{text[pos:pos + 10]!r}",
                             text[pos:pos + 10])
        pos = m.end()
        kind = m.lastgroup
        if kind == "space":
            continue
        if kind in ("ref", "refname"):
            name = m.group("refname").strip()
            if not REF_NAME_RE.match(name):
                raise XPathError(f"${{{name}}} is not a question name", f"${{{name}}} 不是问题名称",
                                 "${" + name + "}")
            out.append(("ref", name))
        elif kind == "number":
            out.append(("num", float(m.group())))
        elif kind == "string":
            out.append(("str", m.group()[1:-1]))
        elif kind == "op":
            out.append(("op", m.group()))
        else:
            out.append(("name", m.group()))
    out.append(("end", None))
    return out


class _Parser:
    def __init__(self, text):
        self.text = text
        self.toks = _tokens(text)
        self.i = 0
        self.depth = 0

    def peek(self):
        return self.toks[self.i]

    def next(self):
        tok = self.toks[self.i]
        self.i += 1
        return tok

    def fail(self, what):
        kind, value = self.peek()
        shown = "the end" if kind == "end" else repr(value if kind != "num" else _num_str(value))
        raise XPathError(f"expected {what} but found {shown}", f"此处应为{_ZH_WHAT.get(what, what)}，却是 {shown}",
                         shown)

    def is_op(self, *ops):
        kind, value = self.peek()
        return kind == "op" and value in ops

    def is_word(self, *words):
        kind, value = self.peek()
        return kind == "name" and value in words

    def parse(self):
        node = self.expr()
        if self.peek()[0] != "end":
            self.fail("an operator or the end")
        return node

    def expr(self):
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise XPathError("the expression is nested too deeply", "表达式嵌套过深", "(")
        node = self.binary(0)
        self.depth -= 1
        return node

    _LEVELS = (("or",), ("and",), ("=", "!="), ("<", "<=", ">", ">="), ("+", "-"), ("*", "div", "mod"))

    def binary(self, level):
        if level == len(self._LEVELS):
            return self.unary()
        node = self.binary(level + 1)
        ops = self._LEVELS[level]
        while self.is_op(*ops) or self.is_word(*ops):
            op = self.next()[1]
            node = ("bin", op, node, self.binary(level + 1))
        return node

    def unary(self):
        if self.is_op("-"):
            self.next()
            self.depth += 1
            if self.depth > MAX_DEPTH:
                raise XPathError("the expression is nested too deeply", "表达式嵌套过深", "-")
            node = ("neg", self.unary())
            self.depth -= 1
            return node
        node = self.primary()
        if self.is_op("|", "[", "/", "//"):
            raise XPathError(f"paths, filters and unions ({self.peek()[1]}) are not supported: refer to "
                             f"questions as ${{name}}",
                             f"不支持路径、筛选和并集（{self.peek()[1]}）：请用 ${{名称}} 引用问题",
                             self.peek()[1])
        return node

    def primary(self):
        kind, value = self.peek()
        if kind == "num":
            self.next()
            return ("num", value)
        if kind == "str":
            self.next()
            return ("str", value)
        if kind == "ref":
            self.next()
            return ("ref", value)
        if kind == "op" and value == "(":
            self.next()
            node = self.expr()
            if not self.is_op(")"):
                self.fail("')'")
            self.next()
            return node
        if kind == "op" and value == ".":
            self.next()
            return ("dot",)
        if kind == "op" and value == "..":
            self.next()
            return ("dotdot",)
        if kind == "name":
            self.next()
            if self.is_op("("):
                return self.call(value)
            if value in ("and", "or", "div", "mod"):
                raise XPathError(f"'{value}' needs something before it", f"「{value}」前缺少运算对象", value)
            return ("col", value)
        if kind == "op" and value in ("/", "//", "@"):
            raise XPathError(f"paths ({value}...) are not supported: refer to questions as ${{name}}",
                             f"不支持路径（{value}…）：请用 ${{名称}} 引用问题", value)
        self.fail("a value")

    def call(self, name):
        self.next()  # (
        args = []
        if not self.is_op(")"):
            args.append(self.expr())
            while self.is_op(","):
                self.next()
                args.append(self.expr())
        if not self.is_op(")"):
            self.fail("')'")
        self.next()
        arity = FUNCTIONS.get(name)
        if arity is None:
            raise XPathError(f"unknown function {name}()", f"不支持的函数 {name}()", f"{name}()")
        low, high = arity
        if len(args) < low or (high is not None and len(args) > high):
            raise XPathError(f"{name}() takes {low if low == high else f'{low} or more' if high is None else f'{low} to {high}'} "
                             f"arguments (got {len(args)})",
                             f"{name}() 的参数个数不对（收到 {len(args)} 个）", f"{name}()")
        if name == "position" and args and args[0] != ("dotdot",):
            raise XPathError("position() takes only '..'", "position() 只接受 '..'", "position()")
        if name == "regex" and args[1][0] == "str":
            try:
                re.compile(args[1][1], re.ASCII)
            except re.error as exc:
                raise XPathError(f"regex() pattern does not compile: {exc}",
                                 f"regex() 的正则表达式有误：{exc}", "regex()") from None
        return ("call", name, tuple(args))


_ZH_WHAT = {"an operator or the end": "运算符或结尾", "')'": "「)」", "a value": "一个值"}

_cache = {}


def parse(text):
    """The syntax tree of an expression (tuples), cached. XPathError when it does not parse."""
    if not isinstance(text, str):
        raise XPathError("an expression must be text", "表达式必须是文字", None)
    hit = _cache.get(text)
    if hit is not None:
        return hit
    if len(text) > MAX_LENGTH:
        raise XPathError(f"the expression is longer than {MAX_LENGTH} characters",
                         f"表达式超过 {MAX_LENGTH} 个字符", None)
    if not text.strip():
        raise XPathError("the expression is empty", "表达式为空", None)
    tree = _Parser(text).parse()
    if _depth(tree) > MAX_TREE_DEPTH:  # evaluation recurses: 1+1+1+... or - - - -1 must stay shallow
        raise XPathError("the expression is nested too deeply", "表达式嵌套过深", None)
    if len(_cache) > 5000:
        _cache.clear()
    _cache[text] = tree
    return tree


MAX_TREE_DEPTH = 200


def _depth(tree):
    """The depth of a tree, without recursion (a long chain of operators makes a deep tree)."""
    deepest, stack = 0, [(tree, 1)]
    while stack:
        node, d = stack.pop()
        deepest = max(deepest, d)
        if d > MAX_TREE_DEPTH:
            break
        kind = node[0]
        children = node[2:4] if kind == "bin" else node[1:2] if kind == "neg" else \
            node[2] if kind == "call" else ()
        stack.extend((c, d + 1) for c in children)
    return deepest


def walk(tree):
    """Every node of a tree, depth first."""
    yield tree
    if tree[0] == "bin":
        yield from walk(tree[2])
        yield from walk(tree[3])
    elif tree[0] == "neg":
        yield from walk(tree[1])
    elif tree[0] == "call":
        for arg in tree[2]:
            yield from walk(arg)


def references(text):
    """(names, uses_dot, columns, functions) of an expression: the ${names}, whether it reads '.',
    the bare names (choice columns, only meaningful in a choice_filter) and the functions called."""
    tree = parse(text)
    names, dot, columns, functions = [], False, [], set()
    for node in walk(tree):
        if node[0] == "ref" and node[1] not in names:
            names.append(node[1])
        elif node[0] == "dot":
            dot = True
        elif node[0] == "col" and node[1] not in columns:
            columns.append(node[1])
        elif node[0] == "call":
            functions.add(node[1])
            if node[1] == "jr:choice-name" and node[2][1][0] == "str":
                m = re.fullmatch(r"\s*\$\{([A-Za-z_][A-Za-z0-9_-]*)\}\s*", node[2][1][1])
                if m and m.group(1) not in names:
                    names.append(m.group(1))
    return names, dot, columns, functions


def is_volatile(text):
    """True when the value may differ between evaluations (today(), now(), uuid(), once())."""
    return bool(references(text)[3] & VOLATILE)


# ---------------------------------------------------------------------------------------------
# Values


# XML whitespace and ASCII digits only, spelled out so Python and JavaScript agree exactly.
_NUMBER_RE = re.compile(r"^[ \t\n\r]*-?([0-9]+(\.[0-9]*)?|\.[0-9]+)[ \t\n\r]*$")
_DATE_RE = re.compile(r"^[ \t\n\r]*([0-9]{4})-([0-9]{2})-([0-9]{2})[ \t\n\r]*$")
_DATETIME_RE = re.compile(r"^[ \t\n\r]*([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2})"
                          r"(?::([0-9]{2})(\.[0-9]+)?)?(Z|[+-][0-9]{2}(?::?[0-9]{2})?)?[ \t\n\r]*$")
_SPACE_RE = re.compile(r"[ \t\n\r]+")
MIN_DAY, MAX_DAY = -719162, 2932896   # 0001-01-01 .. 9999-12-31


def _words(text):
    return [w for w in _SPACE_RE.split(text) if w]
_EPOCH = datetime.date(1970, 1, 1)


def _days(y, m, d):
    try:
        return (datetime.date(int(y), int(m), int(d)) - _EPOCH).days
    except ValueError:  # year 0, month 13, 30 February
        return None


def to_number(v):
    if isinstance(v, list):
        v = v[0] if v else ""
    if isinstance(v, bool):
        return 1.0 if v else 0.0
    if isinstance(v, (int, float)):
        return float(v)
    if _NUMBER_RE.match(v):
        return float(v)
    m = _DATE_RE.match(v)
    if m:
        days = _days(*m.groups())
        return math.nan if days is None else float(days)
    m = _DATETIME_RE.match(v)
    if m:
        y, mo, d, h, mi, s, frac, zone = m.groups()
        days = _days(y, mo, d)
        if days is None or int(h) > 23 or int(mi) > 59 or int(s or 0) > 59:
            return math.nan
        seconds = int(h) * 3600 + int(mi) * 60 + int(s or 0) + float(frac or 0)
        if zone and zone != "Z":
            sign = -1 if zone[0] == "-" else 1
            digits = zone[1:].replace(":", "")
            seconds -= sign * (int(digits[:2]) * 3600 + int(digits[2:4] or 0) * 60)
        return days + seconds / 86400
    return math.nan


def _num_str(x):
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "Infinity" if x > 0 else "-Infinity"
    if x == int(x) and abs(x) < 1e21:
        return str(int(x))
    text = repr(x)
    if "e" in text or "E" in text:
        text = format(Decimal(text), "f")
    return text


def to_string(v):
    if isinstance(v, list):
        v = v[0] if v else ""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return _num_str(float(v))
    return v


def to_bool(v):
    if isinstance(v, list):
        return len(v) > 0
    if isinstance(v, bool):
        return v
    if isinstance(v, (int, float)):
        return not (v == 0 or math.isnan(v))
    return v != ""


def answer_value(answer):
    """An answer (JSON) as the XPath value ODK would read for it."""
    if answer is None:
        return ""
    if isinstance(answer, bool):
        return "true" if answer else "false"
    if isinstance(answer, (int, float)):
        return float(answer)
    if isinstance(answer, str):
        return answer
    if isinstance(answer, list):
        if all(isinstance(a, str) for a in answer):
            return " ".join(answer)
        return [""] * len(answer)  # a repeat: one node per entry
    if isinstance(answer, dict):
        if "lat" in answer:
            parts = [answer.get("lat"), answer.get("lon"), 0, answer.get("accuracy", 0)]
            return " ".join(to_string(answer_value(p)) for p in parts)
        return ""
    return ""


# ---------------------------------------------------------------------------------------------
# Evaluation


class Scope(dict):
    """One repeat entry's answers (every child of the repeat, unanswered ones as None), with its
    place: the repeat's name, the entry's 1-based position and the scope around it."""

    __slots__ = ("repeat", "index", "parent")

    def __init__(self, values=(), repeat=None, index=None, parent=None):
        super().__init__(values)
        self.repeat, self.index, self.parent = repeat, index, parent


class Context:
    """What an expression can see. answers: top-level answers; entry: the current repeat entry
    (a Scope or a plain dict) or None; dot: the value of '.'; layout: {name: [repeat names from
    the outside in]} for names inside repeats (absent: a top-level name); labels: fn(field,
    choice name) -> label, for jr:choice-name(); columns: the choice row a choice_filter tests."""

    __slots__ = ("answers", "entry", "dot", "today", "now", "layout", "labels", "columns", "previous")

    def __init__(self, answers=None, entry=None, dot=None, today=None, now=None, layout=None,
                 labels=None, columns=None, previous=None):
        self.answers = answers if isinstance(answers, dict) else {}
        self.entry = entry
        self.dot = dot
        self.today = today or datetime.date.today().isoformat()
        self.now = now
        self.layout = layout or {}
        self.labels = labels
        self.columns = columns
        self.previous = previous


def _frames(ctx):
    """The scopes from the innermost entry outwards, then the top-level answers (repeat None)."""
    out = []
    entry = ctx.entry
    while entry is not None:
        out.append((getattr(entry, "repeat", None), entry))
        entry = getattr(entry, "parent", None)
    return out


def _lookup(ctx, name):
    path = ctx.layout.get(name)
    frames = _frames(ctx)
    if path is None:
        # Top-level, or (no layout given) the current entry first, as conditions do.
        for _repeat, entry in frames:
            if name in entry:
                return answer_value(entry[name])
        return answer_value(ctx.answers.get(name))
    outer = list(reversed(frames))  # outermost first
    base, depth = ctx.answers, 0
    while depth < len(path) and depth < len(outer) and outer[depth][0] == path[depth]:
        base = outer[depth][1]
        depth += 1
    if depth == len(path):  # on the name's own repeat path: one value
        return answer_value(base.get(name))
    values = [base]
    for repeat in path[depth:]:
        values = [e for v in values for e in (v.get(repeat) if isinstance(v.get(repeat), list) else [])
                  if isinstance(e, dict)]
    return [answer_value(v.get(name)) for v in values]


def _compare(op, a, b):
    if isinstance(a, list) or isinstance(b, list):  # node-sets: true if any pair compares true
        left = a if isinstance(a, list) else [a]
        right = b if isinstance(b, list) else [b]
        if isinstance(a, bool) or isinstance(b, bool):
            return _compare(op, to_bool(a), to_bool(b))
        return any(_compare(op, x, y) for x in left for y in right)
    if op in ("=", "!="):
        if isinstance(a, bool) or isinstance(b, bool):
            same = to_bool(a) == to_bool(b)
        elif isinstance(a, float) or isinstance(b, float):
            same = to_number(a) == to_number(b)
        else:
            same = a == b
        return same if op == "=" else not same
    x, y = to_number(a), to_number(b)
    return {"<": x < y, "<=": x <= y, ">": x > y, ">=": x >= y}[op]


def _arith(op, a, b):
    x, y = to_number(a), to_number(b)
    if op == "+":
        return x + y
    if op == "-":
        return x - y
    if op == "*":
        return x * y
    if op == "div":
        if y == 0:
            return math.nan if x == 0 or math.isnan(x) else math.copysign(math.inf, x) * math.copysign(1, y)
        return x / y
    if y == 0 or math.isinf(x) or math.isnan(x) or math.isnan(y):
        return math.nan
    if math.isinf(y):
        return x
    return math.fmod(x, y)


def _round(x, digits=0):
    if math.isnan(x) or math.isinf(x):
        return x
    digits = int(max(-15, min(15, digits))) if math.isfinite(digits) else 0
    factor = 10.0 ** digits
    r = math.floor(abs(x) * factor + 0.5) / factor
    return 0.0 if r == 0 else math.copysign(r, x)


def _date_of(v):
    """A value as a datetime.date (None when it is not one)."""
    if isinstance(v, list):
        v = v[0] if v else ""
    if isinstance(v, str):
        m = _DATE_RE.match(v) or _DATETIME_RE.match(v)
        if m:
            try:
                return datetime.date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
            except ValueError:
                return None
        if not _NUMBER_RE.match(v):
            return None
    n = to_number(v)
    if math.isnan(n) or math.isinf(n) or not MIN_DAY <= math.floor(n) <= MAX_DAY:
        return None
    return _EPOCH + datetime.timedelta(days=math.floor(n))


_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def _format_date(v, fmt):
    day = _date_of(v)
    if day is None:
        return ""
    text = v[0] if isinstance(v, list) and v else v
    h = mi = s = 0
    if isinstance(text, str):
        m = _DATETIME_RE.match(text)
        if m:
            h, mi, s = int(m.group(4)), int(m.group(5)), int(m.group(6) or 0)
    parts = {"Y": f"{day.year:04d}", "y": f"{day.year % 100:02d}", "m": f"{day.month:02d}",
             "n": str(day.month), "b": _MONTHS[day.month - 1], "d": f"{day.day:02d}", "e": str(day.day),
             "a": _DAYS[day.weekday()], "H": f"{h:02d}", "h": str(h), "M": f"{mi:02d}",
             "S": f"{s:02d}", "3": "000", "%": "%"}
    return re.sub(r"%(.)", lambda m: parts.get(m.group(1), m.group(0)), fmt, flags=re.S)


def _nodes(v):
    return v if isinstance(v, list) else [v]


def evaluate_tree(node, ctx):
    kind = node[0]
    if kind == "num" or kind == "str":
        return node[1]
    if kind == "ref":
        return _lookup(ctx, node[1])
    if kind == "dot":
        return answer_value(ctx.dot)
    if kind == "dotdot":
        return ""
    if kind == "col":
        cols = ctx.columns or {}
        return answer_value(cols.get(node[1]))
    if kind == "neg":
        return -to_number(evaluate_tree(node[1], ctx))
    if kind == "bin":
        op = node[1]
        if op == "or":
            return to_bool(evaluate_tree(node[2], ctx)) or to_bool(evaluate_tree(node[3], ctx))
        if op == "and":
            return to_bool(evaluate_tree(node[2], ctx)) and to_bool(evaluate_tree(node[3], ctx))
        a, b = evaluate_tree(node[2], ctx), evaluate_tree(node[3], ctx)
        if op in ("=", "!=", "<", "<=", ">", ">="):
            return _compare(op, a, b)
        return _arith(op, a, b)
    return _call(node[1], node[2], ctx)


def _call(name, args, ctx):
    ev = lambda i: evaluate_tree(args[i], ctx)  # noqa: E731
    s = lambda i: to_string(ev(i))  # noqa: E731
    n = lambda i: to_number(ev(i))  # noqa: E731
    if name == "true":
        return True
    if name == "false":
        return False
    if name == "not":
        return not to_bool(ev(0))
    if name == "boolean":
        return to_bool(ev(0))
    if name == "string":
        return s(0) if args else to_string(answer_value(ctx.dot))
    if name == "number":
        return n(0) if args else to_number(answer_value(ctx.dot))
    if name == "int":
        x = n(0)
        return x if math.isnan(x) or math.isinf(x) else float(math.trunc(x))
    if name == "round":
        return _round(n(0), n(1) if len(args) > 1 and not math.isnan(n(1)) else 0)
    if name == "floor":
        x = n(0)
        return x if math.isnan(x) or math.isinf(x) else float(math.floor(x))
    if name == "ceiling":
        x = n(0)
        return x if math.isnan(x) or math.isinf(x) else float(math.ceil(x))
    if name == "abs":
        return abs(n(0))
    if name == "pow":
        try:
            return math.pow(n(0), n(1))
        except OverflowError:
            return math.inf
        except ValueError:
            return math.nan
    if name == "selected":
        return " ".join(_words(s(1))) in _words(s(0))
    if name == "count-selected":
        return float(len(_words(s(0))))
    if name == "selected-at":
        items, i = _words(s(0)), n(1)
        return items[int(i)] if not math.isnan(i) and 0 <= i < len(items) and i == int(i) else ""
    if name == "jr:choice-name":
        value, ref = s(0), s(1)
        m = re.fullmatch(r"\s*\$\{([A-Za-z_][A-Za-z0-9_-]*)\}\s*", ref)
        if not m or ctx.labels is None:
            return ""
        return ctx.labels(m.group(1), value) or ""
    if name == "count":
        v = ev(0)
        return float(len(v)) if isinstance(v, list) else (0.0 if v == "" else 1.0)
    if name == "sum":
        total = 0.0
        for x in _nodes(ev(0)):
            total = total + to_number(x)
        return total
    if name in ("max", "min"):
        values = []
        for i in range(len(args)):
            values.extend(to_number(x) for x in _nodes(ev(i)))
        if not values or any(math.isnan(x) for x in values):
            return math.nan
        return max(values) if name == "max" else min(values)
    if name == "string-length":
        return float(len(s(0) if args else to_string(answer_value(ctx.dot))))
    if name in ("substr", "substring"):
        text = s(0)
        if name == "substring":  # XPath 1.0: 1-based, start and length
            start = _round(n(1))
            end = start + _round(n(2)) if len(args) > 2 else math.inf
            return "".join(c for i, c in enumerate(text, 1) if start <= i < end)
        start = n(1)
        end = n(2) if len(args) > 2 else len(text)
        if math.isnan(start) or math.isnan(end):
            return ""
        start, end = max(0, int(start)), min(len(text), int(end))
        return text[start:end] if start < end else ""
    if name == "concat":
        return "".join(to_string(x) for i in range(len(args)) for x in _nodes(ev(i)))
    if name == "join":
        sep = s(0)
        return sep.join(to_string(x) for i in range(1, len(args)) for x in _nodes(ev(i)))
    if name == "contains":
        return s(1) in s(0)
    if name == "starts-with":
        return s(0).startswith(s(1))
    if name == "ends-with":
        return s(0).endswith(s(1))
    if name == "regex":
        try:
            return re.search(s(1), s(0), re.ASCII) is not None
        except re.error:
            return False
    if name == "if":
        return ev(1) if to_bool(ev(0)) else ev(2)
    if name == "coalesce":
        first = s(0)
        return first if first != "" else s(1)
    if name == "today":
        return ctx.today
    if name == "now":
        return ctx.now or (ctx.today + "T00:00:00.000+08:00")
    if name == "date":
        v = ev(0)
        day = _date_of(v)
        return day.isoformat() if day is not None else ""
    if name == "decimal-date-time":
        return n(0)
    if name in ("format-date", "format-date-time"):
        return _format_date(ev(0), s(1))
    if name == "position":
        entry = ctx.entry
        index = getattr(entry, "index", None) if entry is not None else None
        return float(index) if index else math.nan
    if name == "indexed-repeat":
        return _indexed_repeat(args, ctx)
    if name == "once":
        prev = answer_value(ctx.dot) if ctx.previous is None else answer_value(ctx.previous)
        return prev if prev != "" else ev(0)
    if name == "uuid":
        return str(_uuid.uuid4())
    if name == "normalize-space":
        return " ".join(_words(s(0) if args else to_string(answer_value(ctx.dot))))
    if name == "boolean-from-string":
        return s(0) in ("true", "1")
    if name == "translate":
        text, src, dst = s(0), s(1), s(2)
        table = {}
        for i, c in enumerate(src):
            if c not in table:
                table[c] = dst[i] if i < len(dst) else None
        return "".join(table.get(c, c) or "" for c in text if table.get(c, c) is not None)
    raise XPathError(f"unknown function {name}()", f"不支持的函数 {name}()", f"{name}()")


def _indexed_repeat(args, ctx):
    """indexed-repeat(${child}, ${repeat}, n[, ${repeat2}, n2 ...]): the child of the n-th entry."""
    if args[0][0] != "ref" or any(args[i][0] != "ref" for i in range(1, len(args), 2)) or len(args) % 2 == 0:
        return ""
    values = ctx.answers
    for i in range(1, len(args), 2):
        entries = values.get(args[i][1]) if isinstance(values, dict) else None
        index = to_number(evaluate_tree(args[i + 1], ctx))
        if not isinstance(entries, list) or math.isnan(index) or not 1 <= index <= len(entries):
            return ""
        values = entries[int(index) - 1]
    return answer_value(values.get(args[0][1])) if isinstance(values, dict) else ""


def evaluate(text, ctx=None, **kwargs):
    """The XPath value of an expression (str, float, bool or a list for a node-set)."""
    return evaluate_tree(parse(text), ctx if ctx is not None else Context(**kwargs))


def evaluate_bool(text, ctx=None, **kwargs):
    return to_bool(evaluate(text, ctx, **kwargs))


def result_string(value):
    """What a calculation stores: its string value ("" for NaN, which ODK shows as empty)."""
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        return ""
    return to_string(value)


def computed_value(kind, value):
    """A computed XPath value as a question of `kind` stores it (None: empty, not a value)."""
    if kind in ("integer", "decimal", "range"):
        n = to_number(value)
        if math.isnan(n) or math.isinf(n) or abs(n) > 1e15:
            return None
        if kind == "integer":
            n = float(math.trunc(n))
        return int(n) if n == int(n) else n
    if kind == "date":
        day = _date_of(value)
        return day.isoformat() if day is not None else None
    if kind == "select_multiple":
        return _words(to_string(value)) or None
    text = result_string(value)
    return text if text != "" else None
