"""The server's XPath evaluator (server/forms/xpath.py) against the shared vectors that the phone's
(static/js/xpath.js) also passes (tests/js/xpath.test.js)."""

import json
import re
from pathlib import Path

import pytest

from server.forms import xpath

VECTORS = json.loads((Path(__file__).parent / "vectors" / "xpath.json").read_text(encoding="utf-8"))


def _context(spec):
    entry = None
    for scope in spec.get("scopes") or []:
        entry = xpath.Scope(scope["values"], scope["repeat"], scope["index"], entry)
    labels = spec.get("labels")
    return xpath.Context(answers=spec.get("answers"), entry=entry, dot=spec.get("dot"),
                         today=spec.get("today"), now=spec.get("now"), layout=spec.get("layout"),
                         columns=spec.get("columns"),
                         labels=(lambda f, v: labels.get(f, {}).get(v)) if labels else None)


def _type(value):
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, float):
        return "number"
    return "nodeset" if isinstance(value, list) else "string"


VALUES = [c for c in VECTORS["cases"] if "error" not in c]
ERRORS = [c for c in VECTORS["cases"] if "error" in c]


@pytest.mark.parametrize("case", VALUES, ids=[f"{c['expr']}@{c['context']}" for c in VALUES])
def test_vector(case):
    value = xpath.evaluate(case["expr"], _context(VECTORS["contexts"][case["context"]]))
    assert (_type(value), xpath.to_string(value), xpath.to_bool(value)) == \
        (case["type"], case["string"], case["bool"])


@pytest.mark.parametrize("case", ERRORS, ids=[c["expr"] or "empty" for c in ERRORS])
def test_refused(case):
    with pytest.raises(xpath.XPathError) as info:
        xpath.parse(case["expr"])
    assert info.value.en == case["error"] and info.value.zh


def test_references_and_volatility():
    names, dot, columns, functions = xpath.references(
        "if(selected(${a}, 'x'), . + ${b}, jr:choice-name(${a}, '${c}')) and state = 'x'")
    assert names == ["a", "b", "c"] and dot and columns == ["state"]
    assert {"if", "selected", "jr:choice-name"} <= functions
    assert xpath.is_volatile("once(today())") and not xpath.is_volatile("${a} + 1")
    assert re.fullmatch(r"[0-9a-f-]{36}", xpath.evaluate("uuid()"))
