"""The shared condition vectors (tests/vectors/conditions.json), run by the Python evaluator.

tests/js/conditions.test.js runs the same file through static/js/conditions.js, so the phone
and the server cannot drift apart.
"""

import json
import pathlib

import pytest

from server.forms import conditions, formdefs
from server.forms.conditions import ConditionError

VECTORS = json.loads((pathlib.Path(__file__).parent / "vectors" / "conditions.json")
                     .read_text(encoding="utf-8"))
TODAY = VECTORS["today"]


def same_number(actual, expected):
    if expected is None or actual is None:
        return actual is None and expected is None
    return conditions.is_number(actual) and actual == expected


@pytest.mark.parametrize("case", VECTORS["conditions"], ids=lambda c: c["name"])
def test_condition_vector(case):
    kwargs = {"entry": case.get("entry"), "today": case.get("today", TODAY)}
    if "self" in case:
        kwargs["self_value"] = case["self"]
    if case["expect"] == "error":
        with pytest.raises(ConditionError):
            conditions.evaluate(case["condition"], case["answers"], **kwargs)
    else:
        result = conditions.evaluate(case["condition"], case["answers"], **kwargs)
        assert result is case["expect"]


@pytest.mark.parametrize("case", VECTORS["computes"], ids=lambda c: c["name"])
def test_compute_vector(case):
    kwargs = {"entry": case.get("entry"), "settings": case.get("settings")}
    if case["expect"] == "error":
        with pytest.raises(ConditionError):
            conditions.compute(case["expr"], case["answers"], **kwargs)
    else:
        result = conditions.compute(case["expr"], case["answers"], **kwargs)
        assert same_number(result, case["expect"]), result


def _labelled(fields):
    """The vector's fields with the labels a checked definition carries (error texts use them)."""
    out = []
    for f in fields:
        f = dict(f, label={"zh": f["name"], "en": f["name"]})
        if "fields" in f:
            f["fields"] = _labelled(f["fields"])
        out.append(f)
    return out


def _computed(fields, values):
    """The computed fields' values (top level and inside repeat entries) of a set of answers."""
    out = {}
    for f in fields:
        if "compute" in f:
            out[f["name"]] = values.get(f["name"])
        elif f.get("type") == "repeat" and isinstance(values.get(f["name"]), list):
            out[f["name"]] = [_computed(f["fields"], e) for e in values[f["name"]]
                              if isinstance(e, dict)]  # the server drops a malformed entry
    return out


@pytest.mark.parametrize("case", VECTORS["compute_all"], ids=lambda c: c["name"])
def test_compute_all_vector_through_the_servers_own_validation(case):
    """The phone's computeAll and the server's validation pass compute the same values: the
    server's pass is the one that stores them, so it is the one these vectors test."""
    definition = dict(case["definition"], fields=_labelled(case["definition"]["fields"]))
    answers = case["answers"]
    before = json.dumps(answers)
    clean, _errors = formdefs.validate_answers(definition, answers, settings=case.get("settings"),
                                               today=TODAY)
    fields = definition["fields"]
    assert _computed(fields, clean) == _computed(fields, case["expect"])
    assert json.dumps(answers) == before  # the input is left alone


def test_vectors_cover_every_op_and_enough_cases():
    ops = {c["condition"].get("op") for c in VECTORS["conditions"] if isinstance(c["condition"], dict)}
    assert set(conditions.OPS) <= ops
    assert len(VECTORS["conditions"]) + len(VECTORS["computes"]) >= 60


def test_check_condition_lists_referenced_names():
    problems, names = conditions.check_condition(
        {"all": [{"field": "a", "op": "eq", "value": {"field": "b"}},
                 {"not": {"field": ".", "op": "answered"}}]})
    assert problems == []
    assert names == ["a", "b", "."]


def test_today_defaults_to_a_date_and_rejects_garbage():
    assert conditions.evaluate({"field": ".", "op": "le", "value": {"today": 0}}, {},
                               self_value="2000-01-01") is True
    with pytest.raises(ConditionError):
        conditions.evaluate({"field": ".", "op": "le", "value": {"today": 0}}, {},
                            self_value="2000-01-01", today="2024-02-30")
