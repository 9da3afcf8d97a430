// Client-side checks and cleaning of answers (static/js/answers.js), the pure-JS SHA-256 fallback,
// uuids, and the in-memory database's all-or-nothing transactions.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";

import {
  attachmentNames, cleanAnswers, fieldAt, normalizePath, parseNumber, pick, validateAnswers,
} from "../../static/js/answers.js";
import { MemoryDatabase } from "../../static/js/db.js";
import { sha256Hex, sha256HexSync } from "../../static/js/sha256.js";
import { daysSince, shortId, uuid } from "../../static/js/util.js";

const FORM = {
  id: "t", version: 1, settings: { rate: 10 },
  fields: [
    { name: "visit_date", type: "date", required: true, min: "2014-01-01",
      constraint: { field: ".", op: "le", value: { today: 0 } }, constraint_message: { zh: "不能晚于今天", en: "Not in the future" } },
    { name: "intro", type: "note", label: { zh: "说明", en: "About" } },
    { name: "count", type: "integer", min: 0, max: 10 },
    { name: "price", type: "decimal", min: 0 },
    { name: "total", type: "decimal", readonly: true, compute: { mul: ["price", { setting: "rate" }] } },
    { name: "risk", type: "select_one", required: true, choices: [{ name: "yes" }, { name: "no" }] },
    { name: "risk_reason", type: "textarea", required: true, relevant: { field: "risk", op: "eq", value: "yes" }, max: 5 },
    { name: "topics", type: "select_multiple", choices: [{ name: "a" }, { name: "b" }] },
    { name: "members", type: "repeat", min_count: 1, max_count: 2, fields: [
      { name: "name", type: "text", required: true },
      { name: "birth_year", type: "integer", min: 1900 },
      { name: "school", type: "text", required: true, relevant: { field: "birth_year", op: "ge", value: 2005 } },
    ] },
    { name: "photo_1", type: "photo" },
    { name: "signature", type: "signature" },
  ],
};
const TODAY = "2024-05-06";
const keys = (errors) => errors.map((e) => `${e.field}:${e.key}`);

test("required, type, range, length and choice checks follow relevance", () => {
  const errors = validateAnswers(FORM, {
    count: 11, price: -1, risk: "yes", risk_reason: "太长了的原因", topics: ["a", "zzz"],
    members: [{ birth_year: 2010 }],
  }, { today: TODAY });
  assert.deepEqual(keys(errors), [
    "visit_date:err_required", "count:err_max", "price:err_min", "risk_reason:err_max_length",
    "topics:err_choice", "members.0.name:err_required", "members.0.school:err_required",
  ]);
});

test("a non-relevant field is neither checked nor sent", () => {
  const answers = { visit_date: "2024-05-01", risk: "no", risk_reason: "", members: [{ name: "甲", birth_year: 1960, school: "x" }] };
  assert.deepEqual(validateAnswers(FORM, answers, { today: TODAY }), []);
  const clean = cleanAnswers(FORM, { ...answers, risk_reason: "old text" });
  assert.equal("risk_reason" in clean, false);
  assert.deepEqual(clean.members, [{ name: "甲", birth_year: 1960 }], "school is not relevant for 1960");
});

test("constraints use the form's own message; computed fields are filled in", () => {
  const errors = validateAnswers(FORM, { visit_date: "2024-05-07", risk: "no", members: [{ name: "甲" }] }, { today: TODAY });
  assert.deepEqual(keys(errors), ["visit_date:err_constraint"]);
  assert.deepEqual(errors[0].custom, { zh: "不能晚于今天", en: "Not in the future" });
  assert.equal(cleanAnswers(FORM, { price: 2.5 }).total, 25);
  assert.equal(cleanAnswers(FORM, { price: 2.5 }, { settings: { rate: 2 } }).total, 5);
});

test("repeat counts are checked", () => {
  const base = { visit_date: "2024-05-01", risk: "no" };
  assert.deepEqual(keys(validateAnswers(FORM, base, { today: TODAY })), ["members:err_min_count"]);
  const three = [{ name: "a" }, { name: "b" }, { name: "c" }];
  assert.deepEqual(keys(validateAnswers(FORM, { ...base, members: three }, { today: TODAY })), ["members:err_max_count"]);
});

test("numbers typed on a Chinese keyboard are understood; nonsense is kept for the error", () => {
  assert.equal(parseNumber("１２３", "integer"), 123);
  assert.equal(parseNumber("1,200.5", "decimal"), 1200.5);
  assert.equal(parseNumber("３．５", "decimal"), 3.5);
  assert.equal(parseNumber("", "decimal"), null);
  assert.equal(parseNumber("1.5", "integer"), undefined);
  assert.equal(parseNumber("abc", "decimal"), undefined);
  const errors = validateAnswers(FORM, { count: "abc" }, { today: TODAY });
  assert.ok(keys(errors).includes("count:err_integer"));
});

test("attachments named by answers, including inside repeats; paths as the server spells them", () => {
  assert.deepEqual(attachmentNames(FORM, { photo_1: "photo_1-ab.jpg", signature: "signature-cd.png" }),
    ["photo_1-ab.jpg", "signature-cd.png"]);
  const nested = { id: "n", fields: [{ name: "items", type: "repeat", fields: [{ name: "pic", type: "photo" }] }] };
  assert.deepEqual(attachmentNames(nested, { items: [{ pic: "a.jpg" }, {}, { pic: "b.jpg" }] }), ["a.jpg", "b.jpg"]);
  assert.equal(normalizePath("members[0].name"), "members.0.name");
  assert.equal(normalizePath("members/1/name"), "members.1.name");
  assert.equal(fieldAt(FORM, "members.3.birth_year").type, "integer");
  assert.equal(fieldAt(FORM, "nope"), null);
  assert.equal(pick({ zh: "中", en: "En" }, "en"), "En");
  assert.equal(pick({ zh: "中" }, "en"), "中");
});

test("the pure-JS SHA-256 matches node's, at block boundaries too", async () => {
  for (const n of [0, 1, 55, 56, 63, 64, 65, 119, 120, 1000, 70000]) {
    const bytes = new Uint8Array(randomBytes(n));
    const expected = createHash("sha256").update(bytes).digest("hex");
    assert.equal(sha256HexSync(bytes), expected, `length ${n}`);
    assert.equal(await sha256Hex(new Blob([bytes])), expected);
  }
});

test("uuids are version 4 and unique; short ids are file-name safe", () => {
  const seen = new Set(Array.from({ length: 200 }, () => uuid()));
  assert.equal(seen.size, 200);
  for (const u of seen) assert.match(u, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  const saved = globalThis.crypto.randomUUID;
  try {
    Object.defineProperty(globalThis.crypto, "randomUUID", { value: undefined, configurable: true });
    assert.match(uuid(), /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/, "the fallback");
  } finally {
    Object.defineProperty(globalThis.crypto, "randomUUID", { value: saved, configurable: true });
  }
  assert.match(shortId(), /^[a-z2-9]{8}$/);
  assert.equal(daysSince("2024-05-01", new Date(2024, 4, 31, 9)), 30);
  assert.equal(daysSince(null), null);
});

test("a transaction that throws changes nothing (all or nothing)", async () => {
  const db = new MemoryDatabase();
  await db.put("drafts", "a", { n: 1 });
  await assert.rejects(db.tx(["drafts", "outbox"], "readwrite", async (o) => {
    await o.put("outbox", "a", { n: 1 });
    await o.delete("drafts", "a");
    throw new Error("boom");
  }), /boom/);
  assert.deepEqual(await db.get("drafts", "a"), { n: 1 });
  assert.equal(await db.get("outbox", "a"), undefined);
  assert.deepEqual(await db.update("drafts", "a", (v) => ({ n: v.n + 1 })), { n: 2 });
  assert.deepEqual(await db.all("drafts"), [{ n: 2 }]);
  await assert.rejects(db.tx("drafts", "readonly", (o) => o.put("drafts", "b", 1)), /read-only/);
});
