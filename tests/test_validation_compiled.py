"""Validation is compiled per form version (closures per field, one generated function for the
top-level questions); these tests hold the compiled paths to the same answers and errors as the
field-by-field checks, on thousands of generated answer sets, for every form version."""

import json
import random

import pytest

from server.forms import conditions, formdefs
from tests.helpers import ALL_TYPES, TODAY

VALUES = [None, True, False, 0, 1, -3, 5, 7.0, -0.0, 2.5, -1.5, 2.51, 100, 101, 20000, 1e15, -1e15,
          1e15 + 2, 2 ** 60, float("nan"), float("inf"), "", " ", "\u3000", "x", "yes", "no", "home",
          "none", "a", "b", "2024-06-01", "2024-06-16", "2013-01-01", "2024-02-30", "a.jpg",
          "../x", "\ud800", "a\x07", "中", "中" * 600, "x" * 11, [], ["a"], ["a", "a"], ["income_jobs"],
          {"lat": 27.1, "lon": 110.2}, {"lat": 91, "lon": 0}, {}]


def registry(tmp_path):
    return formdefs.FormRegistry.load(formdefs.Path(__file__).parent.parent / "forms",
                                      tmp_path / "archive", write_archive=False)


def answers_for(definition, rng):
    out = {}
    for f in formdefs.answer_fields(definition):
        if rng.random() < 0.2:
            continue
        if f["type"] == "repeat":
            out[f["name"]] = [{c["name"]: rng.choice(VALUES) for c in f["fields"] if rng.random() < 0.8}
                              for _ in range(rng.randrange(3))]
        elif f.get("choices") and rng.random() < 0.6:
            names = [c["name"] for c in f["choices"]]
            out[f["name"]] = (rng.choice(names) if f["type"] == "select_one"
                              else rng.sample(names, rng.randint(1, len(names))))
        else:
            out[f["name"]] = rng.choice(VALUES)
    if rng.random() < 0.05:
        out["not_a_question"] = 1
    return out


def field_by_field(definition, answers, today):
    """The validator with its generated top-level function replaced by the plain loop."""
    plan = formdefs._plan(definition)
    validator = formdefs._Validator(plan, today, dict(plan.settings))
    generated = plan.top

    def loop(v, raw, clean):
        for fp in plan.fields:
            fp.check(v, raw, clean, clean, None, fp.name, fp.where)
    plan.top = loop
    try:
        clean = validator.run(answers)
    finally:
        plan.top = generated
    return clean, validator.errors


def test_the_generated_function_decides_as_the_field_checks(tmp_path):
    reg = registry(tmp_path)
    definitions = [reg.get(i, v) for i in reg.ids() for v in reg.versions(i)] + [ALL_TYPES]
    rng = random.Random(14)
    for definition in definitions:
        for _ in range(400):
            answers = answers_for(definition, rng)
            plan = formdefs._plan(definition)
            validator = formdefs._Validator(plan, TODAY, dict(plan.settings))
            fast = (validator.run(answers), validator.errors)
            slow = field_by_field(definition, answers, TODAY)
            assert json.dumps(fast, sort_keys=True, default=repr) == \
                json.dumps(slow, sort_keys=True, default=repr), answers


def test_compiled_conditions_agree_with_the_vectors():
    vectors = json.loads((formdefs.Path(__file__).parent / "vectors" / "conditions.json")
                         .read_text(encoding="utf-8"))
    for case in vectors["conditions"]:
        if case["expect"] == "error":
            with pytest.raises(conditions.ConditionError):
                conditions.compile_condition(case["condition"])(
                    case["answers"], case.get("entry"), case.get("self", conditions.MISSING),
                    case.get("today", vectors["today"]))
            continue
        run = conditions.compiled(case["condition"])
        kwargs = (case["answers"], case.get("entry"), case.get("self", conditions.MISSING),
                  case.get("today", vectors["today"]))
        assert run(*kwargs) is case["expect"] and run(*kwargs) is case["expect"], case["name"]
