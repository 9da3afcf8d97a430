"""One strict reader for what clients send: JSON bodies, integers and dates in query strings and
form posts. Everything a client can get wrong ends here as a catalogued 400/413, never a 500 and
never a value the store can't hold (NaN, a lone surrogate, a thousand levels of nesting).
"""

import json
import math
import re

from flask import current_app, request

from server.core.clock import parse_date
from server.core.numbers import parse_decimal, parse_index, parse_int  # noqa: F401 (views import them here)
from server.core.problems import Problem

MAX_DEPTH = 32
SURROGATE_RE = re.compile("[\ud800-\udfff]")
SURROGATE_ESCAPE_RE = re.compile(r"\\u[dD][89a-fA-F]")


def _no_constant(name):
    raise ValueError(f"{name} is not allowed")


def _finite_float(text):
    value = float(text)
    if not math.isfinite(value):
        raise ValueError("a number too large")
    return value


def loads_strict(raw, max_depth=MAX_DEPTH):
    """Bytes or text -> JSON value; ValueError with a short reason for anything not plain JSON."""
    if isinstance(raw, (bytes, bytearray)):
        try:
            raw = bytes(raw).decode("utf-8")
        except UnicodeDecodeError:
            raise ValueError("not UTF-8") from None
    try:
        value = json.loads(raw, parse_constant=_no_constant, parse_float=_finite_float)
    except RecursionError:
        raise ValueError("nested too deeply") from None
    except ValueError as e:
        raise ValueError(str(e).split(":")[0][:80]) from None
    # Text decoded from UTF-8 holds no surrogate: only a \uD800-\uDFFF escape can make one.
    check_value(value, max_depth, strings=SURROGATE_ESCAPE_RE.search(raw) is not None)
    return value


def _bad_text(item):
    return isinstance(item, str) and not item.isascii() and SURROGATE_RE.search(item) is not None


def check_value(value, max_depth=MAX_DEPTH, strings=True):
    """Walk a decoded value: depth bounded, strings free of lone surrogates, numbers finite.
    `strings=False` skips the text check (for JSON text with no surrogate escape in it)."""
    if not isinstance(value, (list, dict)):
        if strings and _bad_text(value):
            raise ValueError("a text holds an invalid character (lone surrogate)")
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError("NaN or Infinity is not allowed")
        return
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > max_depth:
            raise ValueError(f"nested deeper than {max_depth} levels")
        if isinstance(item, dict):
            if strings and any(_bad_text(k) for k in item):
                raise ValueError("a text holds an invalid character (lone surrogate)")
            item = item.values()
        for v in item:
            if isinstance(v, (list, dict)):
                stack.append((v, depth + 1))
            elif isinstance(v, float):
                if not math.isfinite(v):
                    raise ValueError("NaN or Infinity is not allowed")
            elif strings and _bad_text(v):
                raise ValueError("a text holds an invalid character (lone surrogate)")


def json_body(max_bytes=None, *, shape="a JSON object"):
    """The request's JSON object, read strictly and within `max_bytes` (default MAX_JSON_BYTES)."""
    limit = max_bytes or current_app.config["MAX_JSON_BYTES"]
    if request.content_length is not None and request.content_length > limit:
        raise Problem("too_large", limit=_size(limit))
    if request.mimetype != "application/json":
        raise Problem("bad_body", shape=shape)
    raw = request.stream.read(limit + 1) if request.content_length is None else request.get_data(cache=True)
    if len(raw) > limit:
        raise Problem("too_large", limit=_size(limit))
    try:
        body = loads_strict(raw)
    except ValueError as e:
        raise Problem("bad_body", shape=shape, extra={"reason": str(e)}) from None
    if not isinstance(body, dict):
        raise Problem("bad_body", shape=shape)
    return body


def _size(n):
    return f"{n // (1024 * 1024)} MB" if n >= 1024 * 1024 else f"{n // 1024} KB"


def int_arg(name, default, lo, hi, source=None):
    """A bounded integer from the query string (or `source`, e.g. request.form), or a 400 naming it."""
    raw = (source if source is not None else request.args).get(name)
    if raw is None or raw == "":
        return default
    value = parse_int(raw, lo, hi)
    if value is None:
        raise Problem("bad_parameter", name=name, reason_zh=f"须为 {lo}–{hi} 的整数",
                      reason_en=f"must be a whole number {lo}–{hi}")
    return value


def date_arg(name, default=None, source=None):
    """A 'YYYY-MM-DD' date from the query string (or `source`), as text, or a 400 naming it."""
    raw = (source if source is not None else request.args).get(name)
    if raw is None or raw == "":
        return default
    if parse_date(raw) is None:
        raise Problem("bad_parameter", name=name, reason_zh="须为日期 YYYY-MM-DD",
                      reason_en="must be a date YYYY-MM-DD")
    return raw


def choice_arg(name, allowed, default=None, source=None):
    raw = (source if source is not None else request.args).get(name)
    if raw is None or raw == "":
        return default
    if raw not in allowed:
        shown = ", ".join(sorted(allowed))[:200]
        raise Problem("bad_parameter", name=name, reason_zh=f"须为 {shown} 之一",
                      reason_en=f"must be one of {shown}")
    return raw


def text_arg(name, max_len=100, source=None):
    """A short free text from the query string: trimmed, bounded, control characters refused."""
    raw = (source if source is not None else request.args).get(name, "")
    if len(raw) > max_len or any(ord(c) < 32 for c in raw):
        raise Problem("bad_parameter", name=name, reason_zh=f"须为 {max_len} 字以内的文字",
                      reason_en=f"must be text of at most {max_len} characters")
    return raw.strip()
