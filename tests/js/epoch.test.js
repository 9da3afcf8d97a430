// After a restore (a new data epoch on the server, or a pull answering "reset"), the phone pulls
// everything again and re-sends every visit and photo the server lacks (static/js/epoch.js).
import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";

import { MemoryDatabase } from "../../static/js/db.js";
import { SyncEngine } from "../../static/js/sync.js";
import { FakeServer, FakeTimers, VISIT_FORM } from "./fake-server.js";

const HOUSEHOLD = { id: "v1-0001", village_id: "v1", head_name: "李春生", version: 3 };
const T0 = new Date("2024-05-06T08:00:00Z");
const json = (status, body) => new Response(JSON.stringify(body), { status, headers: { "Content-Type": "application/json" } });

/** The fake server with epochs: backup() takes a picture, restore() puts it back with a new epoch. */
class RestoringServer extends FakeServer {
  constructor(options) {
    super(options);
    this.epoch = "e1";
  }

  backup() {
    this.picture = structuredClone({ seq: this.seq, households: [...this.households], submissions: [...this.submissions], files: [...this.files] });
  }

  restore(epoch) {
    const p = structuredClone(this.picture);
    this.seq = p.seq;
    this.households = new Map(p.households);
    this.submissions = new Map(p.submissions);
    this.files = new Map(p.files);
    this.epoch = epoch;
  }

  async handle(method, u, init) {
    const reset = (u.searchParams.get("epoch") && u.searchParams.get("epoch") !== this.epoch)
      || Number(u.searchParams.get("since") || 0) > this.seq;
    if (this.loggedIn && method === "GET" && u.searchParams.has("since") && reset) {
      const key = u.pathname.endsWith("/households") ? "households" : "submissions";
      return json(200, { [key]: [], next: 0, reset: true, epoch: this.epoch });
    }
    if (u.pathname === "/api/v1/submissions/known" && method === "POST") {
      const { uuids } = JSON.parse(init.body);
      const known = uuids.filter((id) => this.submissions.has(id)).map((id) => ({
        uuid: id, missing: this.submissions.get(id).attachments.filter((a) => !a.received).map((a) => a.name),
      }));
      return json(200, { known, epoch: this.epoch });
    }
    const res = await super.handle(method, u, init);
    if (u.pathname === "/api/v1/bootstrap") return json(200, { ...(await res.json()), epoch: this.epoch });
    return res;
  }
}

function setup() {
  const server = new RestoringServer({ households: [HOUSEHOLD] });
  const db = new MemoryDatabase();
  const timers = new FakeTimers();
  const engine = new SyncEngine({
    db, fetch: server.fetch, now: () => T0, random: () => 0.5, isOnline: () => true,
    setTimeout: timers.setTimeout, clearTimeout: timers.clearTimeout,
  });
  return { server, db, engine };
}

let counter = 0;
async function visit(ctx, photo = null) {
  counter += 1;
  const d = {
    id: `00000000-0000-4000-8000-${String(counter).padStart(12, "0")}`,
    form: "household_visit", form_version: 1, household_id: HOUSEHOLD.id,
    created_at: "2024-05-06T07:30:00.000Z",
    answers: { visit_date: "2024-05-06", present: "户主本人", risk: "no", ...(photo ? { photo_1: photo.name } : {}) },
  };
  if (photo) await ctx.db.put("photos", photo.name, photo.blob);
  await ctx.db.put("drafts", d.id, d);
  return ctx.engine.submitDraft(d, VISIT_FORM, HOUSEHOLD);
}

function photo(name, text) {
  return { name, blob: new Blob([text], { type: "image/jpeg" }), sha: createHash("sha256").update(text).digest("hex") };
}

test("a new epoch at bootstrap: the phone re-pulls and re-sends the visits and photos the server lost", async () => {
  const ctx = setup();
  const before = await visit(ctx);
  assert.equal((await ctx.engine.run()).ok, true);
  assert.equal(await ctx.db.get("meta", "epoch"), "e1");
  ctx.server.backup();

  const p = photo("photo_1-a.jpg", "jpeg bytes of a");
  const a = await visit(ctx, p);
  const b = await visit(ctx);
  assert.equal((await ctx.engine.run()).ok, true);
  assert.ok(await ctx.db.get("sent", a.uuid) && await ctx.db.get("sent", b.uuid));
  assert.equal((await ctx.db.get("sent", a.uuid)).attachments[0].sha256, p.sha, "a sent record keeps what declares its photo");

  ctx.server.restore("e2");
  ctx.server.putHousehold({ ...HOUSEHOLD, head_name: "李春生（改）", version: 4 }); // an edit after the restore
  ctx.server.log.length = 0;
  assert.equal((await ctx.engine.run()).ok, true);

  assert.ok(ctx.server.log.includes("POST /api/v1/submissions/known"));
  assert.deepEqual([...ctx.server.submissions.keys()].sort(), [before.uuid, a.uuid, b.uuid].sort());
  assert.equal(ctx.server.submissions.get(a.uuid).attachments[0].received, true);
  assert.deepEqual(ctx.server.files.get(`${a.uuid}/photo_1-a.jpg`), Buffer.from("jpeg bytes of a"));
  assert.equal(await ctx.db.get("meta", "epoch"), "e2");
  assert.equal((await ctx.db.get("households", HOUSEHOLD.id)).head_name, "李春生（改）");
  assert.deepEqual((await ctx.db.all("outbox")), []);
  assert.equal((await ctx.db.all("sent")).length, 3);
  assert.equal(ctx.engine.status.pending, 0);
});

test("a pull answering reset (the cursor is ahead, the epoch unchanged) re-pulls and re-sends too", async () => {
  const ctx = setup();
  await visit(ctx);
  await ctx.engine.run();
  ctx.server.backup();
  const lost = await visit(ctx);
  await ctx.engine.run();
  ctx.server.restore("e1"); // data back, same epoch: only the cursor tells
  assert.equal((await ctx.engine.run()).ok, true);
  assert.ok(ctx.server.submissions.has(lost.uuid), "the lost visit was sent again");
  assert.ok((await ctx.db.get("meta", "cursor")) <= ctx.server.seq);
  assert.equal(ctx.engine.status.pending, 0);
});

test("a visit the server holds without its photo gets the photo again, not a second visit", async () => {
  const ctx = setup();
  ctx.server.backup();
  const p = photo("photo_1-b.jpg", "jpeg bytes of b");
  const a = await visit(ctx, p);
  ctx.server.failPutAfter = 0; // the visit arrives, the photo does not
  await ctx.engine.run();
  ctx.server.failPutAfter = null;
  await ctx.engine.run();
  assert.equal(ctx.server.submissions.get(a.uuid).attachments[0].received, true);
  // a backup taken while the photo was missing
  const sub = ctx.server.submissions.get(a.uuid);
  ctx.server.picture.submissions.push([a.uuid, { ...structuredClone(sub), attachments: sub.attachments.map((x) => ({ ...x, received: false })) }]);
  ctx.server.restore("e2");
  const posts = () => ctx.server.log.filter((l) => l === "POST /api/v1/submissions").length;
  const before = posts();
  assert.equal((await ctx.engine.run()).ok, true);
  assert.equal(posts(), before, "nothing re-sent: the server has the visit");
  assert.equal(ctx.server.submissions.get(a.uuid).attachments[0].received, true);
  assert.equal(ctx.engine.status.pending, 0);
});
