// Household edits made offline on the phone (static/js/sync/edits.js, the plots table of issue 25):
// queued with the local copy changed at once, kept until the server answers 200, a second edit on
// top of an unsent one, a clash said in words, a refusal kept with its reasons, given up cleanly.
import { test } from "node:test";
import assert from "node:assert/strict";

import { MemoryDatabase } from "../../static/js/db.js";
import { SyncEngine } from "../../static/js/sync.js";
import { editKey, noticeKey } from "../../static/js/sync/edits.js";
import { FakeServer, FakeTimers } from "./fake-server.js";

const T0 = new Date("2024-05-06T08:00:00Z");
const PLOT = { id: "P1", name: "大田", area_mu: 1.5, east: "水渠", west: "村道", south: "李家", north: "山林", contract_signed: true };
const HOUSEHOLD = { id: "v1-0001", village_id: "v1", head_name: "李春生", version: 3, plots: [PLOT] };

async function setup() {
  const server = new FakeServer({ households: [HOUSEHOLD] });
  const db = new MemoryDatabase();
  const timers = new FakeTimers();
  let online = true;
  const engine = new SyncEngine({
    db, fetch: server.fetch, now: () => T0, random: () => 0.5, isOnline: () => online,
    setTimeout: timers.setTimeout, clearTimeout: timers.clearTimeout,
  });
  await engine.load();
  assert.equal((await engine.run()).ok, true);
  return { server, db, engine, offline: (v) => { online = !v; server.offline = v; } };
}

test("an edit made offline changes the local copy, waits, and is sent once online", async () => {
  const { server, db, engine, offline } = await setup();
  offline(true);
  const hh = await db.get("households", "v1-0001");
  const plots = [{ ...PLOT, area_mu: 2.25 }, { name: "坡地", area_mu: 0.8, east: "王家", contract_signed: false, local: "x" }];
  await engine.queueEdit(hh, { plots });
  assert.equal(engine.status.pending, 1);
  assert.equal((await db.get("households", "v1-0001")).plots[0].area_mu, 2.25);
  assert.equal((await engine.run()).ok, false);
  const item = await db.get("outbox", editKey("v1-0001"));
  assert.equal(item.state, "waiting");
  assert.equal(item.base_version, 3);
  offline(false);
  assert.equal((await engine.run()).ok, true);
  assert.equal(await db.get("outbox", editKey("v1-0001")), undefined);
  assert.equal(engine.status.pending, 0);
  assert.deepEqual(server.edits.map((e) => e.base_version), [3]);
  assert.equal(server.edits[0].changes.plots[1].local, undefined); // only the server's plot fields go
  const stored = server.households.get("v1-0001");
  assert.equal(stored.version, 4);
  assert.deepEqual(stored.plots.map((p) => p.area_mu), [2.25, 0.8]);
  assert.equal((await db.get("households", "v1-0001")).version, 4);
  assert.equal(await db.get("meta", noticeKey("v1-0001")), undefined);
});

test("a second edit before sending replaces the first and keeps its base; a stale base is a clash said in words", async () => {
  const { server, db, engine, offline } = await setup();
  offline(true);
  const hh = await db.get("households", "v1-0001");
  await engine.queueEdit(hh, { plots: [{ ...PLOT, area_mu: 2 }] });
  await engine.queueEdit(await db.get("households", "v1-0001"), { plots: [{ ...PLOT, area_mu: 3 }] });
  assert.equal((await db.all("outbox")).length, 1);
  // meanwhile someone else edits on the server
  server.households.get("v1-0001").version = 5;
  offline(false);
  assert.equal((await engine.run()).ok, true);
  assert.equal(server.edits.length, 1);
  assert.equal(server.edits[0].base_version, 3);
  assert.equal(server.edits[0].changes.plots[0].area_mu, 3);
  const notice = await db.get("meta", noticeKey("v1-0001"));
  assert.equal(notice.kind, "hard");
  assert.deepEqual(notice.fields, ["plots"]);
});

test("a refused edit is kept with its reasons by row and column; given up, the local copy is as before", async () => {
  const { server, db, engine } = await setup();
  server.refusedCodes = ["TAKEN"];
  const hh = await db.get("households", "v1-0001");
  await engine.queueEdit(hh, { plots: [PLOT, { name: "水田", code: "TAKEN", area_mu: 1 }] });
  assert.equal((await engine.run()).ok, true);
  const item = await db.get("outbox", editKey("v1-0001"));
  assert.equal(item.state, "refused");
  assert.equal(item.errors[0].field, "plots.1.code");
  assert.equal(item.errors[0].message.zh, "地块编码已属于本村另一户");
  assert.equal(engine.status.refused, 1);
  await engine.discard(item.uuid);
  assert.equal(await db.get("outbox", item.uuid), undefined);
  assert.deepEqual((await db.get("households", "v1-0001")).plots, [PLOT]);
});

test("a network failure mid-send keeps the edit waiting; it is sent on the next sync", async () => {
  const { server, db, engine } = await setup();
  const hh = await db.get("households", "v1-0001");
  await engine.queueEdit(hh, { plots: [] });
  server.failNext = ["network"];
  assert.equal((await engine.run()).ok, false);
  assert.equal((await db.get("outbox", editKey("v1-0001"))).state, "waiting");
  assert.equal((await engine.run()).ok, true);
  assert.deepEqual(server.households.get("v1-0001").plots, []);
  assert.equal((await db.all("outbox")).length, 0);
});
