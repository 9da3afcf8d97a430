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


@pytest.mark.parametrize("case", VECTORS["computed"], ids=[f"{c['kind']}:{c['expr']}" for c in VECTORS["computed"]])
def test_computed_value_vector(case):
    value = xpath.evaluate(case["expr"], _context(VECTORS["contexts"][case["context"]]))
    assert xpath.computed_value(case["kind"], value) == case["value"]


def test_the_server_computes_what_the_phone_computes():
    """The same definition and answers as tests/js/xpath.test.js's computeAll case."""
    from server.forms import formdefs
    label = {"zh": "问", "en": "Q"}
    definition = formdefs.check_definition({
        "id": "x", "version": 1, "title": label, "subject": "household", "fields": [
            {"name": "age", "type": "integer", "label": label},
            {"name": "adult", "type": "calculate", "label": label,
             "compute": {"xpath": "if(${age} >= 18, 'yes', 'no')"}},
            {"name": "job", "type": "text", "label": label, "relevant": {"xpath": "${adult} = 'yes'"}},
            {"name": "double", "type": "integer", "label": label, "compute": {"xpath": "${age} * 2"}},
            {"name": "kids", "type": "repeat", "label": label, "fields": [
                {"name": "kage", "type": "integer", "label": label},
                {"name": "older", "type": "calculate", "label": label,
                 "compute": {"xpath": "${kage} > ${age} div 2"}}]}]}, "x")
    clean, errors = formdefs.validate_answers(definition, {"age": 40, "kids": [{"kage": 30}, {"kage": 3}]},
                                              today="2024-05-06")
    assert errors == []
    assert clean == {"age": 40, "adult": "yes", "double": 80,
                     "kids": [{"kage": 30, "older": "true"}, {"kage": 3, "older": "false"}]}
