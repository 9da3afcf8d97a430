// Forms in sections (static/js/sections.js): answers stay flat, a section's relevance governs its
// questions, next/previous skip sections that do not apply, and errors are traced to their section.
import { test } from "node:test";
import assert from "node:assert/strict";

import { attachmentNames, cleanAnswers, fieldAt, moveAnswers, relevance, validateAnswers } from "../../static/js/answers.js";
import { computeAll } from "../../static/js/conditions.js";
import { flatFields, formShape } from "../../static/js/form-shape.js";
import { SectionNav, sectionOfPath } from "../../static/js/sections.js";
import { VISIT_V1, VISIT_V2 } from "./fixture-forms.js";

const TODAY = "2024-05-06";
const NAMES = ["who", "family", "income", "promises_section", "end"];

test("groups dissolve into flat questions that remember their section", () => {
  const shape = formShape(VISIT_V2);
  assert.deepEqual(shape.sections.map((s) => s.name), NAMES);
  assert.deepEqual(flatFields(VISIT_V2).map((f) => f.name), [
    "visit_date", "visit_type", "present", "family_changes", "members", "income_wages", "income_total",
    "promises", "followups", "risk", "photo_1"]);
  assert.equal(sectionOfPath(VISIT_V2, "members.2.name"), "family");
  assert.equal(sectionOfPath(VISIT_V2, "income_wages"), "income");
  assert.equal(fieldAt(VISIT_V2, "members.0.name").label.zh, "姓名");
  assert.deepEqual(formShape(VISIT_V1).sections, [], "a form without groups is one page");
  assert.deepEqual(flatFields(VISIT_V1), VISIT_V1.fields);
});

test("a question inside a section is relevant only when its section is", () => {
  const phone = { visit_date: "2024-05-01", visit_type: "phone", present: "户主", income_wages: 100, family_changes: "no" };
  const { shown, sections } = relevance(VISIT_V2, phone, { today: TODAY });
  assert.equal(sections.get("income"), false);
  assert.equal(sections.get("who"), true);
  assert.equal(shown.get("income_wages"), false);
  assert.equal(cleanAnswers(VISIT_V2, phone, { today: TODAY }).income_wages, undefined, "not sent");
  assert.equal(computeAll(VISIT_V2, phone).income_total, undefined, "not computed");
  const home = { ...phone, visit_type: "home" };
  assert.equal(relevance(VISIT_V2, home, { today: TODAY }).sections.get("income"), true);
  assert.equal(computeAll(VISIT_V2, home).income_total, 100);
  assert.deepEqual(validateAnswers(VISIT_V2, { ...home, income_wages: undefined }, { today: TODAY }).map((e) => e.field),
    ["income_wages", "risk"], "required inside a relevant section");
  assert.deepEqual(validateAnswers(VISIT_V2, { ...phone, income_wages: undefined }, { today: TODAY }).map((e) => e.field),
    ["risk"], "not required inside a section that does not apply");
  assert.deepEqual(attachmentNames(VISIT_V2, { photo_1: "p.jpg" }), ["p.jpg"]);
});

test("next and previous walk the sections that apply, and the progress counts only those", () => {
  const nav = new SectionNav(VISIT_V2);
  const skipIncome = (name) => name !== "income";
  assert.equal(nav.current, "who");
  assert.ok(nav.isFirst(skipIncome));
  assert.deepEqual(nav.progress(skipIncome), { position: 1, total: 4 });
  assert.equal(nav.prev(skipIncome), null, "nothing before the first");
  assert.equal(nav.current, "who");
  assert.equal(nav.next(skipIncome), "family");
  assert.equal(nav.next(skipIncome), "promises_section", "the income section does not apply: skipped");
  assert.deepEqual(nav.progress(skipIncome), { position: 3, total: 4 });
  assert.equal(nav.next(skipIncome), "end");
  assert.ok(nav.isLast(skipIncome));
  assert.equal(nav.next(skipIncome), null, "nothing after the last");
  assert.equal(nav.prev(skipIncome), "promises_section");
  assert.equal(nav.prev(), "income", "with every section applying, none is skipped");
  assert.equal(nav.go("nope"), null);
  assert.equal(nav.go("who"), "who");
  assert.equal(new SectionNav(VISIT_V2, "end").current, "end", "a draft reopens on its section");
  assert.equal(new SectionNav(VISIT_V2, "gone").current, "who");
  assert.equal(new SectionNav(VISIT_V1).enabled, false);
});

test("each error belongs to a section, so the summary can open it", () => {
  const errors = validateAnswers(VISIT_V2, { visit_type: "home", family_changes: "yes", members: [{}] }, { today: TODAY });
  assert.deepEqual(errors.map((e) => [e.field, sectionOfPath(VISIT_V2, e.field)]), [
    ["visit_date", "who"], ["present", "who"], ["members.0.name", "family"], ["income_wages", "income"], ["risk", "end"]]);
});

test("answers move to a new version where their question still exists; the rest is listed", () => {
  const answers = {
    visit_date: "2024-05-01", present: "户主", visit_type: "group", income_wages: 300, income_total: 300,
    followups: [{ action: "办慢病卡", due_date: "2024-05-20", done: "no" }], risk: "no", photo_1: "p.jpg",
  };
  const { answers: moved, dropped } = moveAnswers(VISIT_V1, VISIT_V2, answers);
  assert.deepEqual(moved, {
    visit_date: "2024-05-01", present: "户主", income_wages: 300,
    followups: [{ action: "办慢病卡", due_date: "2024-05-20" }], risk: "no", photo_1: "p.jpg",
  });
  assert.deepEqual(dropped.map((d) => d.path), ["visit_type", "followups.done"],
    "a choice the new version lacks, and a repeat question it lacks (once, not per entry)");
  assert.equal(dropped[0].label.zh, "走访方式");
});
