// The phone's XPath evaluator (static/js/xpath.js) against the vectors the server's
// (server/forms/xpath.py) also passes: one parser, one meaning.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";

import { XPathError, evaluate, parse, toBool, toString } from "../../static/js/xpath.js";

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
