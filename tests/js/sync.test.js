// The phone's outbox and pull sync (static/js/sync.js) against an in-memory server that keeps the
// /api/v1 contract: items leave the outbox only when stored, nothing is lost to failures or logouts.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";

import { MemoryDatabase } from "../../static/js/db.js";
import { collectPhotos, thumbKey } from "../../static/js/records.js";
import { SyncEngine, backoffDelay, wireItem } from "../../static/js/sync.js";
import { FakeServer, FakeTimers, VISIT_FORM } from "./fake-server.js";

const HOUSEHOLD = { id: "v1-0001", village_id: "v1", head_name: "李春生", version: 3 };
const T0 = new Date("2024-05-06T08:00:00Z");

function setup(options = {}) {
  const server = new FakeServer({ households: options.households || [HOUSEHOLD] });
  const db = new MemoryDatabase();
  const timers = new FakeTimers();
  const engine = new SyncEngine({
    db, fetch: server.fetch, now: () => T0, random: () => 0.5, isOnline: () => true,
    setTimeout: timers.setTimeout, clearTimeout: timers.clearTimeout,
    batchSize: options.batchSize, pageSize: options.pageSize,
  });
  return { server, db, timers, engine };
}

let counter = 0;
function draft(answers = {}, extra = {}) {
  counter += 1;
  return {
    id: `00000000-0000-4000-8000-${String(counter).padStart(12, "0")}`,
    form: "household_visit", form_version: 1, household_id: HOUSEHOLD.id,
    created_at: "2024-05-06T07:30:00.000Z",
    answers: { visit_date: "2024-05-06", present: "户主本人", risk: "no", ...answers },
    ...extra,
  };
}

async function queue(ctx, d = draft(), definition = VISIT_FORM) {
  await ctx.db.put("drafts", d.id, d);
  return ctx.engine.submitDraft(d, definition, HOUSEHOLD);
}

test("backoff grows exponentially with jitter and is capped", () => {
  const lo = (n) => backoffDelay(n, { random: () => 0 });
  const hi = (n) => backoffDelay(n, { random: () => 1 });
  assert.equal(hi(1), 5000);
  assert.equal(lo(1), 2500);
  assert.equal(hi(2), 10000);
  assert.equal(hi(3), 20000);
  assert.equal(hi(50), 600000);
  assert.equal(lo(50), 300000);
  for (let n = 1; n < 12; n++) assert.ok(backoffDelay(n) >= lo(n) && backoffDelay(n) <= hi(n));
});

test("a submitted draft leaves the drafts, waits in the outbox, and leaves it once created", async () => {
  const ctx = setup();
  const d = draft({ risk_reason: "not relevant, dropped" });
  const item = await queue(ctx, d);
  assert.equal(await ctx.db.get("drafts", d.id), undefined);
  assert.equal(item.state, "waiting");
  assert.equal(item.base_version, 3, "the visit form updates the household: base_version travels");
  assert.equal(item.answers.risk_reason, undefined, "answers of non-relevant fields are not sent");
  assert.equal(ctx.engine.status.pending, 1);

  const result = await ctx.engine.run();
  assert.equal(result.ok, true);
  assert.equal(await ctx.db.get("outbox", d.id), undefined);
  const sent = await ctx.db.get("sent", d.id);
  assert.equal(sent.review.state, "received");
  assert.equal(ctx.server.submissions.size, 1);
  assert.equal(ctx.engine.status.pending, 0);
  assert.equal(ctx.engine.status.lastSync, T0.toISOString());
  assert.equal(await ctx.db.get("meta", "lastSync"), T0.toISOString());
});

test("wire items carry the contract's fields only", async () => {
  const ctx = setup();
  const item = await queue(ctx);
  const wire = wireItem({ ...item, state: "refused", errors: [1], user_id: "x" });
  assert.deepEqual(Object.keys(wire).sort(),
    ["answers", "attachments", "base_version", "created_at", "form", "form_version", "household_id", "uuid"]);
  const noBase = wireItem({ ...item, base_version: undefined });
  assert.equal("base_version" in noBase, false);
});

test("a refused item stays with the server's errors, and is resent with the same uuid once fixed", async () => {
  const ctx = setup();
  const d = draft({ present: "bad" });
  await queue(ctx, d);
  await ctx.engine.run();
  const refused = await ctx.db.get("outbox", d.id);
  assert.equal(refused.state, "refused");
  assert.deepEqual(refused.errors, [{ field: "present", message: { zh: "在场人员有误", en: "Present is wrong" } }]);
  assert.equal(ctx.engine.status.pending, 0);
  assert.equal(ctx.engine.status.refused, 1);

  await ctx.engine.run(); // a refused item is not sent again by itself
  assert.equal(ctx.server.log.filter((l) => l.startsWith("POST")).length, 1);

  const reopened = await ctx.engine.reopen(d.id);
  assert.equal(reopened.id, d.id, "nothing was stored under this uuid: it is kept");
  assert.deepEqual(reopened.server_errors, refused.errors, "the errors travel with the draft");
  assert.equal(await ctx.db.get("outbox", d.id), undefined);
  reopened.answers.present = "户主本人";
  await ctx.engine.submitDraft(reopened, VISIT_FORM, HOUSEHOLD);
  assert.equal((await ctx.db.get("outbox", d.id)).state, "waiting");
  assert.equal(await ctx.db.get("drafts", d.id), undefined);
  await ctx.engine.run();
  assert.equal(await ctx.db.get("outbox", d.id), undefined);
  assert.equal(ctx.server.submissions.get(d.id).answers.present, "户主本人");
});

test("a uuid the server already holds with other content is reopened under a new uuid", async () => {
  const ctx = setup();
  const d = draft();
  await queue(ctx, d);
  await ctx.engine.run();
  await ctx.db.put("drafts", d.id, { ...d, answers: { ...d.answers, present: "别的内容" } });
  await ctx.engine.submitDraft(await ctx.db.get("drafts", d.id), VISIT_FORM, HOUSEHOLD);
  await ctx.engine.run();
  assert.equal((await ctx.db.get("outbox", d.id)).state, "refused");
  const reopened = await ctx.engine.reopen(d.id);
  assert.notEqual(reopened.id, d.id);
  assert.deepEqual(reopened.server_errors, []);
  await ctx.engine.submitDraft(reopened, VISIT_FORM, HOUSEHOLD);
  await ctx.engine.run();
  assert.equal(ctx.server.submissions.size, 2);
  assert.equal(ctx.engine.status.pending + ctx.engine.status.refused, 0);
});

test("one refused item does not block the good ones in the same batch", async () => {
  const ctx = setup();
  const bad = draft({ present: "bad" });
  const good = draft();
  await queue(ctx, bad);
  await queue(ctx, good);
  await ctx.engine.run();
  assert.equal((await ctx.db.get("outbox", bad.id)).state, "refused");
  assert.equal(await ctx.db.get("outbox", good.id), undefined);
  assert.ok(ctx.server.submissions.has(good.id));
});

test("no network: the item stays waiting and a retry is scheduled with backoff", async () => {
  const ctx = setup();
  const d = draft();
  await queue(ctx, d);
  ctx.server.offline = true;
  const r1 = await ctx.engine.run();
  assert.equal(r1.ok, false);
  assert.equal((await ctx.db.get("outbox", d.id)).state, "waiting");
  assert.equal(ctx.engine.status.pending, 1);
  assert.deepEqual(ctx.timers.delays, [backoffDelay(1, { random: () => 0.5 })]);
  assert.deepEqual(ctx.engine.status.error, { zh: "网络不通，稍后自动重试", en: "No connection; will retry" });

  await ctx.engine.run();
  assert.deepEqual(ctx.timers.delays, [backoffDelay(2, { random: () => 0.5 })], "the second failure waits longer");

  ctx.server.offline = false;
  const r3 = await ctx.engine.run();
  assert.equal(r3.ok, true);
  assert.equal(ctx.engine.status.pending, 0);
  assert.equal(ctx.engine.status.error, null);
  assert.equal(ctx.engine.failures, 0);
});

test("a server failure (503) keeps the item; the next run sends it", async () => {
  const ctx = setup();
  const d = draft();
  await queue(ctx, d);
  ctx.server.failNext = ["500"];
  assert.equal((await ctx.engine.run()).ok, false);
  assert.equal((await ctx.db.get("outbox", d.id)).state, "waiting");
  assert.equal((await ctx.engine.run()).ok, true);
  assert.equal(ctx.server.submissions.size, 1);
});

test("an answer lost after the server stored it: the resend is a duplicate and nothing is stored twice", async () => {
  const ctx = setup();
  const d = draft();
  await queue(ctx, d);
  ctx.server.failNext = ["after_store"];
  assert.equal((await ctx.engine.run()).ok, false);
  assert.ok(await ctx.db.get("outbox", d.id), "still in the outbox: the phone does not know it was stored");
  assert.equal(ctx.server.submissions.size, 1);
  assert.equal((await ctx.engine.run()).ok, true);
  assert.equal(await ctx.db.get("outbox", d.id), undefined);
  assert.equal(ctx.server.submissions.size, 1);
});

test("logged out (401): everything is kept, the status asks for a login, and sync resumes after it", async () => {
  const ctx = setup();
  const d = draft();
  await queue(ctx, d);
  ctx.server.loggedIn = false;
  const r = await ctx.engine.run();
  assert.equal(r.ok, false);
  assert.equal(ctx.engine.status.needsLogin, true);
  assert.deepEqual(ctx.timers.delays, [], "no retry loop against a login wall");
  assert.equal((await ctx.db.get("outbox", d.id)).state, "waiting");
  ctx.server.loggedIn = true;
  assert.equal((await ctx.engine.run()).ok, true);
  assert.equal(ctx.engine.status.needsLogin, false);
  assert.equal(ctx.server.submissions.size, 1);
});

test("a one-time password (403 password_change_required): everything is kept and the status says to set a new password", async () => {
  const ctx = setup();
  const d = draft();
  await queue(ctx, d);
  ctx.server.passwordChangeRequired = true;
  const r = await ctx.engine.run();
  assert.equal(r.ok, false);
  assert.match(ctx.engine.status.error.zh, /设置自己的新密码/);
  assert.match(ctx.engine.status.error.en, /new password/);
  assert.equal((await ctx.db.get("outbox", d.id)).state, "waiting");
  ctx.server.passwordChangeRequired = false;
  assert.equal((await ctx.engine.run()).ok, true);
  assert.equal(ctx.server.submissions.size, 1);
});

test("an expired CSRF token is fetched again and the push retried", async () => {
  const ctx = setup();
  await queue(ctx);
  ctx.server.failNext = ["csrf"];
  assert.equal((await ctx.engine.run()).ok, true);
  assert.equal(ctx.server.submissions.size, 1);
  assert.ok(ctx.server.log.includes("GET /api/v1/csrf"));
});

test("photos upload with their checksums, resume after an interruption, and stay until approved", async () => {
  const ctx = setup();
  const p1 = new Blob([Buffer.from("\xff\xd8\xff first photo", "latin1")], { type: "image/jpeg" });
  const p2 = new Blob([Buffer.from("\xff\xd8\xff second photo", "latin1")], { type: "image/jpeg" });
  await ctx.db.put("photos", "photo_1-aaaa.jpg", p1);
  await ctx.db.put("photos", "photo_2-bbbb.jpg", p2);
  const d = draft({ photo_1: "photo_1-aaaa.jpg", photo_2: "photo_2-bbbb.jpg" });
  const item = await queue(ctx, d);
  const sum = (b) => createHash("sha256").update(b).digest("hex");
  assert.deepEqual(item.attachments.map((a) => [a.name, a.sha256, a.size, a.type]), [
    ["photo_1-aaaa.jpg", sum(Buffer.from(await p1.arrayBuffer())), p1.size, "image/jpeg"],
    ["photo_2-bbbb.jpg", sum(Buffer.from(await p2.arrayBuffer())), p2.size, "image/jpeg"],
  ]);

  ctx.server.failPutAfter = 1; // the network drops after the first photo
  assert.equal((await ctx.engine.run()).ok, false);
  const half = await ctx.db.get("outbox", d.id);
  assert.equal(half.state, "uploading", "stored on the server, photos still to go");
  assert.deepEqual(half.attachments.map((a) => a.uploaded), [true, false]);
  assert.equal(ctx.engine.status.pending, 1);

  ctx.server.failPutAfter = null;
  const putsBefore = ctx.server.log.filter((l) => l.startsWith("PUT")).length;
  assert.equal((await ctx.engine.run()).ok, true);
  const puts = ctx.server.log.filter((l) => l.startsWith("PUT")).slice(putsBefore);
  assert.deepEqual(puts, [`PUT /api/v1/submissions/${d.id}/attachments/photo_2-bbbb.jpg`], "only the missing photo");
  assert.equal(await ctx.db.get("outbox", d.id), undefined);
  assert.equal(ctx.server.files.size, 2);
  assert.equal(ctx.engine.status.pending, 0);
  assert.deepEqual((await ctx.db.get("sent", d.id)).attachments.map((a) => a.received), [true, true]);

  // Kept while the supervisor may still return the visit; freed once it is approved.
  await ctx.db.put("photos", thumbKey("photo_1-aaaa.jpg"), p1);
  assert.deepEqual(await collectPhotos(ctx.db, T0), []);
  assert.ok(await ctx.db.get("photos", "photo_1-aaaa.jpg"));
  ctx.server.review(d.id, { state: "approved" });
  await ctx.engine.run();
  assert.deepEqual((await collectPhotos(ctx.db, T0)).sort(), ["photo_1-aaaa.jpg", "photo_2-bbbb.jpg"]);
  assert.ok(await ctx.db.get("photos", thumbKey("photo_1-aaaa.jpg")), "the thumbnail stays with the sent visit");
});

test("a missing photo blocks the submission on the phone (nothing half-declared is queued)", async () => {
  const ctx = setup();
  const d = draft({ photo_1: "photo_1-gone.jpg" });
  await ctx.db.put("drafts", d.id, d);
  await assert.rejects(ctx.engine.submitDraft(d, VISIT_FORM, HOUSEHOLD), /missing/);
  assert.ok(await ctx.db.get("drafts", d.id), "the draft is kept");
  assert.equal((await ctx.db.all("outbox")).length, 0);
});

test("a batch too large (413) is split until it fits", async () => {
  const ctx = setup({ batchSize: 8 });
  for (let i = 0; i < 5; i++) await queue(ctx);
  ctx.server.maxBatch = 2;
  assert.equal((await ctx.engine.run()).ok, true);
  assert.equal(ctx.server.submissions.size, 5);
  assert.equal((await ctx.db.all("outbox")).length, 0);
});

test("households are pulled page by page from the stored cursor", async () => {
  const households = Array.from({ length: 5 }, (_, i) => ({ id: `v1-000${i + 1}`, village_id: "v1", head_name: `户主${i}` }));
  const ctx = setup({ households, pageSize: 2 });
  await ctx.engine.run();
  assert.equal((await ctx.db.all("households")).length, 5);
  assert.equal(await ctx.db.get("meta", "cursor"), 5);
  const pulls = ctx.server.log.filter((l) => l.startsWith("GET /api/v1/households"));
  assert.deepEqual(pulls, [
    "GET /api/v1/households?since=0&limit=2", "GET /api/v1/households?since=2&limit=2",
    "GET /api/v1/households?since=4&limit=2",
  ], "a short page is the last: no request to learn that the next is empty");
  ctx.server.putHousehold({ ...households[2], head_name: "改名了", version: 2 });
  await ctx.engine.run();
  assert.equal((await ctx.db.get("households", "v1-0003")).head_name, "改名了");
  assert.equal(await ctx.db.get("meta", "cursor"), 6);
});

test("form definitions are downloaded once per version and available offline", async () => {
  const ctx = setup();
  await ctx.engine.run();
  await ctx.engine.run();
  assert.equal(ctx.server.log.filter((l) => l.startsWith("GET /api/v1/forms/")).length, 1);
  assert.deepEqual(await ctx.engine.formDefinition("household_visit"), VISIT_FORM);
  assert.equal(await ctx.engine.formDefinition("nope"), null);
});

test("review decisions are pulled by cursor; a returned visit the phone never held is added", async () => {
  const ctx = setup();
  const d = draft({ visit_date: "2024-05-01" });
  await queue(ctx, d);
  await ctx.engine.run();
  ctx.server.review(d.id, { state: "has_issues", comment: "照片不清楚", fields: { present: "写全名" } });
  // A visit sent from another phone, returned too.
  ctx.server.submissions.set("other-phone-visit", {
    uuid: "other-phone-visit", form: "household_visit", form_version: 1, household_id: HOUSEHOLD.id,
    created_at: "2024-04-01T08:00:00Z", received_at: "2024-04-01T09:00:00+08:00", cadre_id: "cadre1",
    answers: { visit_date: "2024-04-01", present: "户主", risk: "no" }, attachments: [], seq: ++ctx.server.seq,
    review: { state: "has_issues", comment: "补充收入", fields: {}, by: "super", at: "2024-04-02", history: [] },
  });
  const pullsBefore = ctx.server.log.length;
  await ctx.engine.run();
  const pulls = ctx.server.log.slice(pullsBefore).filter((l) => l.startsWith("GET /api/v1/submissions"));
  assert.deepEqual(pulls, ["GET /api/v1/submissions?since=2&limit=200"]);
  assert.ok(!ctx.server.log.some((l) => l.includes("household_id=")), "no request per household");
  const sent = await ctx.db.get("sent", d.id);
  assert.equal(sent.review.state, "has_issues");
  assert.equal(sent.review.comment, "照片不清楚");
  assert.deepEqual(sent.review.fields, { present: "写全名" });
  const other = await ctx.db.get("sent", "other-phone-visit");
  assert.equal(other.review.state, "has_issues");
  assert.equal(other.answers.present, "户主");
  assert.equal(await ctx.db.get("meta", "submissionsCursor"), 4);
});

test("a correction is sent with supersedes and the returned visit becomes superseded", async () => {
  const ctx = setup();
  const d = draft();
  await queue(ctx, d);
  await ctx.engine.run();
  ctx.server.review(d.id, { state: "has_issues", comment: "在场人员写全名" });
  await ctx.engine.run();
  const fix = draft({ present: "户主张三" }, { supersedes: d.id });
  const item = await queue(ctx, fix);
  assert.equal(wireItem(item).supersedes, d.id);
  await ctx.engine.run();
  assert.equal(ctx.server.submissions.get(fix.id).supersedes, d.id);
  assert.equal(ctx.server.submissions.get(d.id).superseded_by, fix.id);
  assert.equal((await ctx.db.get("sent", d.id)).superseded_by, fix.id);
  assert.equal((await ctx.db.get("sent", fix.id)).supersedes, d.id);
});

test("another cadre logging in on the phone replaces the households, not the outbox", async () => {
  const ctx = setup();
  await ctx.engine.run();
  assert.equal((await ctx.db.all("households")).length, 1);
  const d = draft();
  await queue(ctx, d);
  ctx.server.failNext = ["network"];
  await ctx.engine.run();
  ctx.server.user = { id: "cadre2", display_name: "赵强" };
  ctx.server.households.clear();
  await ctx.engine.run();
  assert.equal((await ctx.db.all("households")).length, 0);
  const kept = await ctx.db.get("outbox", d.id);
  assert.equal(kept.user_id, "cadre1", "the first cadre's item is kept for them");
  assert.equal(kept.state, "waiting");
  assert.equal(ctx.engine.status.pending, 0, "not counted for the other cadre");
});

test("runs asked for while one is running are folded into one follow-up run", async () => {
  const ctx = setup();
  await queue(ctx);
  const a = ctx.engine.run();
  const b = ctx.engine.run();
  assert.equal(a, b);
  await a;
  assert.equal(ctx.server.log.filter((l) => l === "GET /api/v1/bootstrap").length, 2);
});

test("offline by the browser's account: no request, the status says offline", async () => {
  const ctx = setup();
  ctx.engine.isOnline = () => false;
  await queue(ctx);
  const r = await ctx.engine.run();
  assert.equal(r.offline, true);
  assert.equal(ctx.server.log.length, 0);
  assert.equal(ctx.engine.status.offline, true);
  assert.equal(ctx.engine.status.pending, 1);
});

test("a visit returned from another phone brings its photo thumbnails, for the returned list offline", async () => {
  const ctx = setup();
  const bytes = Buffer.from("\xff\xd8\xff elsewhere", "latin1");
  ctx.server.submissions.set("elsewhere", {
    uuid: "elsewhere", form: "household_visit", form_version: 1, household_id: HOUSEHOLD.id, cadre_id: "cadre1",
    created_at: "2024-04-01T08:00:00Z", received_at: "2024-04-01T09:00:00+08:00", seq: ++ctx.server.seq,
    answers: { visit_date: "2024-04-01", present: "户主", risk: "no", photo_1: "photo_1-far.jpg" },
    attachments: [{ name: "photo_1-far.jpg", sha256: "x", size: bytes.length, type: "image/jpeg", received: true }],
    review: { state: "has_issues", comment: "补拍", fields: {}, by: "super", at: "2024-04-02", history: [] },
  });
  ctx.server.files.set("elsewhere/photo_1-far.jpg", bytes);
  await ctx.engine.run();
  const thumb = await ctx.db.get("photos", thumbKey("photo_1-far.jpg"));
  assert.ok(thumb, "a thumbnail fetched from the server");
  assert.deepEqual(Buffer.from(await thumb.arrayBuffer()), bytes);
  assert.equal(await ctx.db.get("photos", "photo_1-far.jpg"), undefined, "the full photo only when fixing");
  const gets = ctx.server.log.filter((l) => l.includes("/attachments/"));
  await ctx.engine.run();
  assert.equal(ctx.server.log.filter((l) => l.includes("/attachments/")).length, gets.length, "fetched once");
});
