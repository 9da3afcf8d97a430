// Promises carried forward (static/js/visits.js, static/js/records.js): a new visit holds one entry
// per open promise of the household; this phone's unsent answers close or update promises on
// Today before the server knows; the one "last visit" rule uses the form's declared visit date.
import { test } from "node:test";
import assert from "node:assert/strict";

import { validateAnswers } from "../../static/js/answers.js";
import { correctionDraft, moveDraft, newDraft, prefill } from "../../static/js/drafts.js";
import { isOutdated } from "../../static/js/records.js";
import {
  addDays, agenda, isReflected, lastVisitDate, openPromises, promisesToCarry, returnedRecords, visitDateOf,
} from "../../static/js/visits.js";
import { VISIT_V1, VISIT_V2 } from "./fixture-forms.js";

const TODAY = "2024-05-06";
const catalog = {
  get: (id, v) => ({ 1: VISIT_V1, 2: VISIT_V2 }[v] || null),
  current: () => VISIT_V2,
};
const open = (id, due, extra = {}) => ({
  id, action: `事项${id}`, due_date: due, submission: id.split(":")[0], visit_date: "2024-04-01",
  cadre_id: "cadre1", status: "open", note: "", ...extra,
});
const HH = {
  id: "v1-0001", village_id: "v1", head_name: "张青山", version: 4, cadre_ids: ["cadre1"],
  last_visit_date: "2024-04-01",
  open_followups: [open("s1:0", "2024-05-05"), open("s1:1", "2024-05-09", { status: "in_progress", note: "已联系" }), open("s1:2", "2024-06-30")],
};
const visit = (uuid, answers, extra = {}) => ({
  uuid, form: "household_visit", form_version: 2, household_id: HH.id, user_id: "cadre1",
  created_at: `${answers.visit_date || "2024-05-06"}T08:00:00Z`, answers, ...extra,
});

test("a new visit carries one entry per open promise, and they pass the phone's checks once answered", () => {
  const draft = newDraft(VISIT_V2, HH, { promises: promisesToCarry(HH, [], catalog) });
  assert.deepEqual(draft.answers.promises, [{ followup_id: "s1:0" }, { followup_id: "s1:1" }, { followup_id: "s1:2" }]);
  assert.deepEqual(draft.followups.map((p) => [p.id, p.action, p.due_date]),
    [["s1:0", "事项s1:0", "2024-05-05"], ["s1:1", "事项s1:1", "2024-05-09"], ["s1:2", "事项s1:2", "2024-06-30"]]);
  assert.equal(draft.base_version, 4);
  const unanswered = validateAnswers(VISIT_V2, draft.answers, { today: TODAY }).filter((e) => e.field.startsWith("promises"));
  assert.deepEqual(unanswered.map((e) => e.field), ["promises.0.status", "promises.1.status", "promises.2.status"]);
  draft.answers.promises.forEach((e) => { e.status = "in_progress"; });
  assert.deepEqual(validateAnswers(VISIT_V2, draft.answers, { today: TODAY }).filter((e) => e.field.startsWith("promises")), []);
  assert.deepEqual(newDraft(VISIT_V1, HH, { promises: HH.open_followups }).answers, {}, "a form without the repeat gets none");
});

test("entries already answered are not replaced by a second prefill", () => {
  const draft = { answers: { promises: [{ followup_id: "s1:0", status: "done" }] } };
  prefill(VISIT_V2, draft, [open("s9:0", "2024-05-10")]);
  assert.deepEqual(draft.answers.promises, [{ followup_id: "s1:0", status: "done" }]);
  assert.deepEqual(draft.followups.map((p) => p.id), ["s9:0"]);
});

test("an unsent visit closes promises on the phone before the server knows, and adds its own", () => {
  const next = visit("s2", {
    visit_date: "2024-05-06",
    promises: [{ followup_id: "s1:0", status: "done" }, { followup_id: "s1:1", status: "in_progress", note: "下周办好" },
      { followup_id: "s1:2", status: "dropped" }],
    followups: [{ action: "送化肥", due_date: "2024-05-08" }],
  });
  const promises = openPromises(HH, [next], catalog, null);
  assert.deepEqual(promises.map((p) => [p.id, p.status, p.note]), [["s2:0", "open", ""], ["s1:1", "in_progress", "下周办好"]]);
  assert.deepEqual(promisesToCarry(HH, [next], catalog, null).map((p) => p.id), ["s2:0", "s1:1"],
    "a promise made in a visit still in the outbox is carried: the outbox sends that visit first");
  // Once the households pulled after sending reflect the visit, the server's list is the truth.
  const sent = { ...next, sent_at: "2024-05-06T09:00:00Z" };
  assert.equal(isReflected(sent, "2024-05-06T09:00:01Z"), true);
  assert.equal(isReflected(sent, "2024-05-06T08:59:00Z"), false);
  assert.equal(openPromises(HH, [sent], catalog, "2024-05-06T09:00:01Z").length, 3);
});

test("the last visit is the server's date or a later own visit, dated by the form's declared field", () => {
  assert.equal(lastVisitDate(HH, [], catalog), "2024-04-01");
  const renamed = { get: () => ({ ...VISIT_V2, effects: { visit_date: "visited_on" } }), current: () => null };
  const own = visit("s3", { visited_on: "2024-05-02", visit_date: "2024-05-03" });
  assert.equal(visitDateOf(own, renamed), "2024-05-02", "the declared field, not a hard-coded name");
  assert.equal(lastVisitDate(HH, [own], renamed), "2024-05-02");
  assert.equal(lastVisitDate(HH, [visit("s4", { visit_date: "2024-03-01" })], catalog), "2024-04-01", "an older own visit changes nothing");
  const v1 = { ...visit("s5", { visit_date: "2024-05-04" }), form_version: 1 };
  assert.equal(lastVisitDate(HH, [v1], catalog), "2024-05-04", "a version without effects uses the current version's");
  assert.equal(lastVisitDate({ ...HH, last_visit_date: null }, [], catalog), null);
});

test("Today lists overdue and this week's promises, returned visits and households not visited for 30 days", () => {
  const stale = { ...HH, id: "v1-0002", last_visit_date: "2024-03-01", open_followups: [] };
  const never = { ...HH, id: "v1-0003", last_visit_date: null, open_followups: [] };
  const fresh = { ...HH, id: "v1-0004", last_visit_date: null, open_followups: [] };
  const others = { ...HH, id: "v2-0001", cadre_ids: ["cadre2"], last_visit_date: null, open_followups: [open("o1:0", "2024-05-01", { cadre_id: "cadre2" })] };
  const waiting = { ...visit("s6", { visit_date: "2024-05-06" }), household_id: "v1-0004" };
  const returned = { ...visit("s7", { visit_date: "2024-04-20" }), sent_at: "2024-04-20T10:00:00Z", review: { state: "has_issues", comment: "补照片" } };
  const day = agenda({ households: [HH, stale, never, fresh, others], userId: "cadre1", outbox: [waiting], sent: [returned], catalog, pulledAt: "2024-05-06T00:00:00Z", today: TODAY });
  assert.deepEqual(day.overdue.map((p) => [p.id, p.household.id, p.days]), [["s1:0", "v1-0001", 1]]);
  assert.deepEqual(day.dueSoon.map((p) => [p.id, p.days]), [["s1:1", 3]]);
  assert.deepEqual(day.returned.map((r) => r.uuid), ["s7"]);
  assert.deepEqual(day.notVisited.map((n) => [n.household.id, n.days]), [["v1-0003", null], ["v1-0002", 66]],
    "never visited first; own visits count (v1-0001's returned one of 04-20, v1-0004's waiting one); other cadres' households are not listed");
  assert.equal(addDays(TODAY, 6), "2024-05-12");
});

test("a returned visit leaves the list once a correction is sent or waiting", () => {
  const returned = { ...visit("r1", {}), review: { state: "has_issues" }, sent_at: "2024-05-01T00:00:00Z" };
  assert.deepEqual(returnedRecords([returned], []).map((r) => r.uuid), ["r1"]);
  assert.deepEqual(returnedRecords([returned], [{ uuid: "c1", supersedes: "r1" }]), []);
  assert.deepEqual(returnedRecords([{ ...returned, superseded_by: "c1" }], []), []);
  assert.deepEqual(returnedRecords([{ ...returned, review: { state: "approved" } }], []), []);
});

test("a correction draft holds the returned answers, the comments, and names what it replaces", () => {
  const returned = { ...visit("r2", { visit_date: "2024-05-01", photo_1: "p.jpg" }), review: { state: "has_issues", comment: "补", fields: { present: "写全名" } } };
  const draft = correctionDraft(returned, HH);
  assert.notEqual(draft.id, "r2");
  assert.equal(draft.supersedes, "r2");
  assert.deepEqual(draft.answers, returned.answers);
  assert.notEqual(draft.answers, returned.answers, "a copy");
  assert.deepEqual(draft.review.fields, { present: "写全名" });
  assert.equal(draft.base_version, 4);
});

test("a draft on an older version is flagged, and moving it carries answers and the promises", () => {
  const old = { id: "d1", form: "household_visit", form_version: 1, household_id: HH.id, answers: { visit_date: "2024-05-01", visit_type: "group", risk: "no" } };
  assert.ok(isOutdated(old, 2));
  assert.ok(!isOutdated({ ...old, form_version: 2 }, 2));
  const moved = moveDraft(old, VISIT_V1, VISIT_V2, { promises: promisesToCarry(HH, [], catalog) });
  assert.equal(moved.id, "d1");
  assert.equal(moved.form_version, 2);
  assert.deepEqual(moved.answers, { visit_date: "2024-05-01", risk: "no", promises: [{ followup_id: "s1:0" }, { followup_id: "s1:1" }, { followup_id: "s1:2" }] });
  assert.deepEqual(moved.moved.dropped.map((d) => d.path), ["visit_type"]);
  assert.deepEqual([moved.moved.from, moved.moved.to], [1, 2]);
});
