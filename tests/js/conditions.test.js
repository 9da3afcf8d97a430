// The shared condition vectors (tests/vectors/conditions.json), run by static/js/conditions.js.
// tests/test_conditions.py runs the same file through server/conditions.py.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import {
  OPS, ConditionError, evaluate, compute, computeAll, checkCondition, todayISO,
} from "../../static/js/conditions.js";

const vectorsPath = fileURLToPath(new URL("../vectors/conditions.json", import.meta.url));
const VECTORS = JSON.parse(readFileSync(vectorsPath, "utf8"));
const TODAY = VECTORS.today;

for (const c of VECTORS.conditions) {
  test(`condition: ${c.name}`, () => {
    const options = { entry: c.entry, today: c.today ?? TODAY };
    if ("self" in c) options.self = c.self;
    if (c.expect === "error") {
      assert.throws(() => evaluate(c.condition, c.answers, options), ConditionError);
    } else {
      assert.equal(evaluate(c.condition, c.answers, options), c.expect);
    }
  });
}

for (const c of VECTORS.computes) {
  test(`compute: ${c.name}`, () => {
    const options = { entry: c.entry, settings: c.settings };
    if (c.expect === "error") {
      assert.throws(() => compute(c.expr, c.answers, options), ConditionError);
    } else {
      const result = compute(c.expr, c.answers, options);
      assert.ok(result === c.expect, `${result} !== ${c.expect}`); // === so that -0 equals 0
    }
  });
}

for (const c of VECTORS.compute_all) {
  test(`computeAll: ${c.name}`, () => {
    const before = JSON.stringify(c.answers);
    const result = computeAll(c.definition, c.answers, { settings: c.settings, today: TODAY });
    assert.deepEqual(result, c.expect);
    assert.equal(JSON.stringify(c.answers), before);
  });
}

test("vectors cover every op and are enough", () => {
  const ops = new Set(VECTORS.conditions.map((c) => c.condition && c.condition.op));
  for (const op of OPS) assert.ok(ops.has(op), op);
  assert.ok(VECTORS.conditions.length + VECTORS.computes.length >= 60);
});

test("checkCondition lists referenced names", () => {
  const { problems, names } = checkCondition({
    all: [{ field: "a", op: "eq", value: { field: "b" } }, { not: { field: ".", op: "answered" } }],
  });
  assert.deepEqual(problems, []);
  assert.deepEqual(names, ["a", "b", "."]);
});

test("todayISO is the local calendar day", () => {
  assert.equal(todayISO(new Date(2024, 0, 5, 23, 59)), "2024-01-05");
  assert.throws(() => evaluate({ field: ".", op: "le", value: { today: 0 } }, {},
    { self: "2000-01-01", today: "2024-02-30" }), ConditionError);
});

test("the condition language stands alone: it imports only form-shape.js and xpath.js, which import nothing", () => {
  const imports = (file) => [...readFileSync(fileURLToPath(new URL(`../../static/js/${file}`, import.meta.url)), "utf8")
    .matchAll(/^(?:import|export)\s[^;]*?from\s+"([^"]+)";|\bimport\(\s*"([^"]+)"/gm)].map((m) => m[1] || m[2]);
  assert.deepEqual(imports("conditions.js"), ["./form-shape.js", "./xpath.js"]);
  assert.deepEqual(imports("form-shape.js"), []);
  assert.deepEqual(imports("xpath.js"), []);
});
