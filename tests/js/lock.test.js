// The app PIN (static/js/vault.js, static/js/lock.js) with node's WebCrypto: records are stored
// encrypted (no household name in the stored bytes), each with its own IV; a wrong PIN is told
// apart; changing the PIN rewraps the key only; ten wrong PINs erase the pulled data but keep the
// unsent outbox encrypted until a fresh login; without a PIN the database is passed through.
import { test } from "node:test";
import assert from "node:assert/strict";

import { Database, LOCK_RECORD, gatedDatabase } from "../../static/js/db.js";
import { PhoneLock } from "../../static/js/lock.js";
import { SealedDatabase } from "../../static/js/sealed.js";
import { ITERATIONS, WrongPin, changePin, createKey, isSealed, open, seal, unwrapKey } from "../../static/js/vault.js";
import { FakeIndexedDB } from "./fake-idb.js";

const FAST = { iterations: 1000 }; // the real count is checked once below

class Storage {
  constructor() { this.map = new Map(); }
  getItem(k) { return this.map.has(k) ? this.map.get(k) : null; }
  setItem(k, v) { this.map.set(k, String(v)); }
  removeItem(k) { this.map.delete(k); }
}

const bytesOf = (stored) => Buffer.from(new Uint8Array(stored.data)).toString("utf8");

test("a record is sealed with AES-GCM under a key the PIN unwraps; a wrong PIN is WrongPin", async () => {
  const { key, record } = await createKey("123456");
  assert.equal(record.iterations, ITERATIONS);
  assert.equal(ITERATIONS, 200000);
  const value = { id: "v1-0001", head_name: "张三丰", photo: new Blob([new Uint8Array([1, 2, 3])], { type: "image/jpeg" }) };
  const a = await seal(key, value);
  const b = await seal(key, value);
  assert.ok(isSealed(a));
  assert.equal(a.iv.length, 12);
  assert.notDeepEqual(Buffer.from(a.iv), Buffer.from(b.iv)); // a random IV per record
  assert.ok(!bytesOf(a).includes("张三丰") && !bytesOf(a).includes("v1-0001"));
  const again = await unwrapKey(record, "123456");
  const back = await open(again, a);
  assert.equal(back.head_name, "张三丰");
  assert.deepEqual([...new Uint8Array(await back.photo.arrayBuffer())], [1, 2, 3]);
  assert.equal(back.photo.type, "image/jpeg");
  await assert.rejects(unwrapKey(record, "654321"), WrongPin);
  await assert.rejects(createKey("12345"), TypeError);
});

test("changing the PIN rewraps the same key: old records still open", async () => {
  const { key, record } = await createKey("111111", FAST);
  const stored = await seal(key, { n: 1 });
  const next = await changePin(record, "111111", "222222");
  await assert.rejects(unwrapKey(next, "111111"), WrongPin);
  assert.deepEqual(await open(await unwrapKey(next, "222222"), stored), { n: 1 });
  await assert.rejects(changePin(record, "000000", "333333"), WrongPin);
});

function phone() {
  const idb = new FakeIndexedDB();
  const raw = new Database("test", idb);
  const storage = new Storage();
  return { raw, storage, lock: new PhoneLock({ raw, storage }) };
}

test("without a PIN the database is IndexedDB as it is", async () => {
  const { raw, lock } = phone();
  assert.equal(lock.state, "plain");
  await lock.db.put("households", "v1-0001", { head_name: "张三丰" });
  assert.deepEqual(await raw.get("households", "v1-0001"), { head_name: "张三丰" });
  assert.equal(lock.applySettings({ required: false }), false);
});

test("the app's database is made before the lock is loaded; the lock, loaded later, takes its gate", async () => {
  // app.js: a phone without a PIN never loads lock.js, yet `db` is handed to every module at start.
  const raw = new Database("test", new FakeIndexedDB());
  const storage = new Storage();
  const db = gatedDatabase(raw);
  await db.put("households", "v1-0001", { head_name: "张三丰" });
  assert.deepEqual(await raw.get("households", "v1-0001"), { head_name: "张三丰" });
  const lock = new PhoneLock({ raw, storage, db });
  assert.equal(lock.db, db);
  lock.applySettings({ required: true });
  await lock.setup("246810", FAST);
  assert.ok(storage.getItem(LOCK_RECORD), "the record app.js looks for at start");
  assert.ok(isSealed(await raw.get("households", "v1-0001")));
  lock.lock();
  let answered = null;
  const read = db.get("households", "v1-0001").then((v) => { answered = v; });
  await new Promise((r) => setTimeout(r, 10));
  assert.equal(answered, null); // the same `db` waits for the PIN
  await lock.unlock("246810");
  await read;
  assert.deepEqual(answered, { head_name: "张三丰" });
});

test("setting a PIN encrypts what the phone holds; locked, reads wait; unlocked, they answer", async () => {
  const { raw, lock } = phone();
  await lock.db.put("households", "v1-0001", { head_name: "张三丰" });
  assert.equal(lock.applySettings({ required: true, idle_minutes: 2, wrong_pins: 10 }), true);
  await lock.setup("246810", FAST);
  assert.equal(lock.state, "unlocked");
  assert.equal(lock.idleMinutes, 2);
  const stored = await raw.get("households", "v1-0001");
  assert.ok(isSealed(stored) && !bytesOf(stored).includes("张三丰"));
  await lock.db.tx(["outbox", "meta"], "readwrite", async (o) => {
    await o.put("outbox", "u1", { uuid: "u1", answers: { notes: "欠债三万" } });
    await o.put("meta", "user", { id: "cadre1" });
  });
  assert.ok(!bytesOf(await raw.get("outbox", "u1")).includes("欠债三万"));
  assert.deepEqual(await lock.db.get("outbox", "u1"), { uuid: "u1", answers: { notes: "欠债三万" } });
  lock.lock();
  assert.equal(lock.state, "locked");
  let answered = null;
  const read = lock.db.get("households", "v1-0001").then((v) => { answered = v; });
  await new Promise((r) => setTimeout(r, 10));
  assert.equal(answered, null); // waits for the PIN
  await assert.rejects(lock.unlock("000000"), WrongPin);
  assert.equal(lock.wrongPinsLeft, 9);
  await lock.unlock("246810");
  await read;
  assert.deepEqual(answered, { head_name: "张三丰" });
  assert.equal(lock.wrongPinsLeft, 10);
});

test("a write that fails in IndexedDB is not kept in memory either", async () => {
  const { raw } = phone();
  const { key } = await createKey("135790", FAST);
  const sealed = await SealedDatabase.load(raw, key);
  raw.tx = async () => { throw new DOMException("quota", "QuotaExceededError"); };
  await assert.rejects(sealed.put("drafts", "d1", { rev: 1 }));
  assert.equal(await sealed.get("drafts", "d1"), undefined);
});

test("ten wrong PINs erase the pulled data; the outbox stays encrypted until a fresh login", async () => {
  const { raw, lock } = phone();
  lock.applySettings({ required: true, wrong_pins: 10 });
  await lock.setup("112233", FAST);
  await lock.db.put("households", "v1-0001", { head_name: "张三丰" });
  await lock.db.put("drafts", "d1", { rev: 1 });
  await lock.db.put("sent", "s1", { uuid: "s1" });
  await lock.db.put("outbox", "u1", { uuid: "u1", attachments: [{ name: "p.jpg" }] });
  await lock.db.put("photos", "p.jpg", new Blob([new Uint8Array([9])]));
  await lock.db.put("photos", "r.jpg#thumb", new Blob([new Uint8Array([8])]));
  lock.lock();
  for (let i = 0; i < 9; i++) await assert.rejects(lock.unlock("999999"), WrongPin);
  assert.deepEqual(await lock.unlock("999999"), { erased: true });
  for (const store of ["households", "drafts", "sent", "meta"]) assert.deepEqual(await raw.keys(store), [], store);
  assert.deepEqual(await raw.keys("outbox"), ["u1"]);
  assert.deepEqual(await raw.keys("photos"), ["p.jpg"]);
  await assert.rejects(lock.unlock("112233"), /login needed/); // not even the right PIN, before a fresh login
  assert.equal(lock.loginConfirmed(), false); // the old login must have been ended first
  lock.markLoggedOut();
  assert.equal(lock.loginConfirmed(), true);
  await lock.unlock("112233");
  assert.deepEqual(await lock.db.get("outbox", "u1"), { uuid: "u1", attachments: [{ name: "p.jpg" }] });
});

test("erasing everything leaves an empty, plain phone", async () => {
  const { raw, lock, storage } = phone();
  lock.applySettings({ required: true });
  await lock.setup("121212", FAST);
  await lock.db.put("outbox", "u1", { uuid: "u1" });
  await lock.eraseAll();
  assert.equal(lock.state, "plain");
  assert.deepEqual(await raw.keys("outbox"), []);
  assert.equal(storage.map.size, 0);
});

test("changing the PIN while unlocked: the old one no longer opens, records are not rewritten", async () => {
  const { raw, lock } = phone();
  lock.applySettings({ required: true });
  await lock.setup("101010", FAST);
  await lock.db.put("households", "v1-0001", { head_name: "张三丰" });
  const before = await raw.get("households", "v1-0001");
  await assert.rejects(lock.changePin("999999", "202020"), WrongPin);
  await lock.changePin("101010", "202020");
  assert.deepEqual(await raw.get("households", "v1-0001"), before);
  lock.lock();
  await assert.rejects(lock.unlock("101010"), WrongPin);
  await lock.unlock("202020");
  assert.deepEqual(await lock.db.get("households", "v1-0001"), { head_name: "张三丰" });
});

test("the device token is kept per cadre; the last push goes under it, only that cadre's items, no CSRF", async () => {
  const { Device } = await import("../../static/js/sync/device.js");
  const { MemoryDatabase } = await import("../../static/js/db.js");
  const { Transport } = await import("../../static/js/sync/transport.js");
  const calls = [];
  const reply = (body) => new Response(JSON.stringify(body), { status: 200, headers: { "Content-Type": "application/json" } });
  const fetch = async (url, init = {}) => {
    calls.push([init.method || "GET", url, (init.headers || {})["X-CSRFToken"] || null]);
    if (url.endsWith("/api/v1/csrf")) return reply({ csrf_token: "c1" });
    if (url.endsWith("/api/v1/device")) return reply({ token: `tok-${calls.length}` });
    if (url.endsWith("/status")) return reply({ erase: true });
    if (url.includes("/submissions")) {
      const items = JSON.parse(init.body).submissions;
      return reply({ results: items.map((i) => ({ uuid: i.uuid, status: "created" })) });
    }
    return reply({ ok: true });
  };
  const storage = new Storage();
  const device = new Device({ transport: new Transport({ fetch }), storage, fetch });
  const first = await device.register({ id: "cadre1" });
  assert.equal(await device.register({ id: "cadre1" }), first); // asked once
  assert.notEqual(await device.register({ id: "cadre2" }), first); // another cadre: another token
  await device.register({ id: "cadre1" });
  assert.equal(await device.eraseRequested(), true);
  const db = new MemoryDatabase();
  const item = (uuid, user) => ({ uuid, user_id: user, state: "waiting", queued_at: uuid, form: "f", form_version: 1,
    household_id: "v1-0001", created_at: "2026-05-01T10:00:00+08:00", answers: {}, attachments: [] });
  await db.put("outbox", "u1", item("u1", "cadre1"));
  await db.put("outbox", "u2", item("u2", "cadre2"));
  calls.length = 0;
  await device.sendLast({ db, now: () => new Date("2026-05-02T00:00:00Z") });
  assert.deepEqual(calls, [["POST", `/api/v1/device/${device.token}/submissions`, null]]);
  assert.deepEqual(await db.keys("outbox"), ["u2"]); // the other cadre's visit is not sent as this one's
  assert.deepEqual((await db.all("sent")).map((s) => s.uuid), ["u1"]);
  const token = device.token;
  await device.confirmErased(token);
  assert.equal(device.token, null);
  assert.deepEqual(calls.at(-1), ["POST", `/api/v1/device/${token}/erased`, null]);
});
