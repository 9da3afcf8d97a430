// The phone's XPath evaluator (static/js/xpath.js) against the vectors the server's
// (server/forms/xpath.py) also passes: one parser, one meaning.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";

import { XPathError, computedValue, evaluate, parse, toBool, toString } from "../../static/js/xpath.js";
import { computeAll, evaluate as evaluateCondition } from "../../static/js/conditions.js";

const vectors = JSON.parse(readFileSync(new URL("../vectors/xpath.json", import.meta.url), "utf-8"));

function context(spec) {
  const labels = spec.labels;
  return {
    answers: spec.answers, scopes: spec.scopes || [], dot: spec.dot, today: spec.today, now: spec.now,
    layout: spec.layout, columns: spec.columns,
    labels: labels ? (field, value) => (labels[field] || {})[value] : undefined,
  };
}

const typeOf = (v) => (typeof v === "boolean" ? "boolean" : typeof v === "number" ? "number" : Array.isArray(v) ? "nodeset" : "string");

test("every shared vector evaluates to the same value and type", () => {
  for (const c of vectors.cases) {
    if (c.error !== undefined) continue;
    const value = evaluate(c.expr, context(vectors.contexts[c.context]));
    assert.equal(typeOf(value), c.type, `${c.expr} (${c.context}): type`);
    assert.equal(toString(value), c.string, `${c.expr} (${c.context}): value`);
    assert.equal(toBool(value), c.bool, `${c.expr} (${c.context}): boolean`);
  }
});

test("expressions outside the subset are refused with the same words", () => {
  for (const c of vectors.cases) {
    if (c.error === undefined) continue;
    assert.throws(() => parse(c.expr), (exc) => {
      assert.ok(exc instanceof XPathError, c.expr);
      if (!c.error.startsWith("regex()")) assert.equal(exc.en, c.error, c.expr);
      assert.ok(exc.zh, c.expr);
      return true;
    });
  }
});

test("uuid() gives a version-4 uuid and now() a dateTime", () => {
  assert.match(evaluate("uuid()"), /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  assert.match(evaluate("now()", { today: "2024-05-06" }), /^2024-05-06T/);
});

test("computed values are held as the question's type holds them, as on the server", () => {
  for (const c of vectors.computed) {
    const value = computedValue(c.kind, evaluate(c.expr, context(vectors.contexts[c.context])));
    assert.deepEqual(value, c.value, `${c.kind}: ${c.expr}`);
  }
});

test("conditions.js evaluates XPath relevance and computes XPath calculations (the phone's hook)", () => {
  const definition = {
    id: "x", version: 1, fields: [
      { name: "age", type: "integer" },
      { name: "adult", type: "calculate", compute: { xpath: "if(${age} >= 18, 'yes', 'no')" } },
      { name: "job", type: "text", relevant: { xpath: "${adult} = 'yes'" } },
      { name: "double", type: "integer", compute: { xpath: "${age} * 2" } },
      { name: "kids", type: "repeat", fields: [
        { name: "kage", type: "integer" },
        { name: "older", type: "calculate", compute: { xpath: "${kage} > ${age} div 2" } },
      ] },
    ],
  };
  const out = computeAll(definition, { age: 40, kids: [{ kage: 30 }, { kage: 3 }] }, { today: "2024-05-06" });
  assert.deepEqual(out, { age: 40, adult: "yes", double: 80, kids: [{ kage: 30, older: "true" }, { kage: 3, older: "false" }] });
  assert.equal(evaluateCondition({ xpath: "${adult} = 'yes'" }, out), true);
  assert.equal(evaluateCondition({ all: [{ xpath: ". > 3" }, { field: "age", op: "eq", value: 40 }] }, out, { self: 4 }), true);
  assert.throws(() => evaluateCondition({ xpath: "nope(1)" }, out), /unknown function nope/);
});
