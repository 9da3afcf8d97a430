// static/js/db.js over a fake indexedDB: a browser closing the connection under memory pressure
// (with or without telling us, between or in the middle of transactions) never loses a write;
// the wrapper reopens and runs the transaction again. And the autosave keeps trying until the
// draft is stored.
import { test } from "node:test";
import assert from "node:assert/strict";

import { Database, MemoryDatabase, getDatabase } from "../../static/js/db.js";
import { makeSaver } from "../../static/js/records.js";
import { FakeIndexedDB } from "./fake-idb.js";

function open() {
  const idb = new FakeIndexedDB();
  return { idb, db: new Database("test", idb) };
}

test("a connection closed without a close event is reopened and the write lands", async () => {
  const { idb, db } = open();
  await db.put("drafts", "d1", { rev: 1 });
  await db.simulateBrowserClose(); // the wrapper still holds the dead connection
  await db.put("drafts", "d1", { rev: 2 });
  assert.equal(db.reopened, 1);
  assert.equal(idb.connections.length, 2);
  assert.deepEqual(await db.get("drafts", "d1"), { rev: 2 });
});

test("a connection the browser closes (close event) is simply opened again", async () => {
  const { idb, db } = open();
  await db.put("drafts", "d1", { rev: 1 });
  idb.current.forceClose(true);
  await new Promise((r) => setTimeout(r, 5));
  await db.put("drafts", "d1", { rev: 2 });
  assert.deepEqual(await db.get("drafts", "d1"), { rev: 2 });
  assert.equal(idb.connections.length, 2);
});

test("a transaction aborted in the middle is run again as a whole, once committed", async () => {
  const { idb, db } = open();
  await db.put("outbox", "a", { state: "waiting" });
  idb.abortAfterRequests = 1; // the second request of the next transaction dies with the connection
  idb.closeOnAbort = true;
  let runs = 0;
  await db.tx(["outbox", "drafts"], "readwrite", async (o) => {
    runs += 1;
    await o.put("drafts", "d2", { answers: { x: 1 } });
    await o.delete("outbox", "a");
  });
  assert.equal(runs, 2);
  assert.ok(db.reopened >= 1);
  assert.deepEqual(await db.get("drafts", "d2"), { answers: { x: 1 } });
  assert.equal(await db.get("outbox", "a"), undefined);
});

test("an open that fails for a moment is retried", async () => {
  const { idb, db } = open();
  idb.failOpens = 2;
  await db.put("meta", "k", 1);
  assert.equal(await db.get("meta", "k"), 1);
});

test("an error of the caller's own aborts the transaction, is not retried, and writes nothing", async () => {
  const { db } = open();
  let runs = 0;
  await assert.rejects(db.tx("drafts", "readwrite", async (o) => {
    runs += 1;
    await o.put("drafts", "half", 1);
    throw new TypeError("bug in the caller");
  }), TypeError);
  assert.equal(runs, 1);
  assert.equal(await db.get("drafts", "half"), undefined);
});

test("a database that cannot be written is announced, not silently replaced", async () => {
  const idb = new FakeIndexedDB();
  idb.failOpens = 100;
  const db = new Database("broken", idb);
  assert.equal(await db.probe(), false);
  assert.equal(db.volatile, "UnknownError");
  await db.put("drafts", "d", 1); // the session goes on in memory ...
  assert.equal(await db.get("drafts", "d"), 1);
  const working = new Database("fine", new FakeIndexedDB());
  assert.equal(await working.probe(), true);
  assert.equal(working.volatile, null);
});

test("without indexedDB the app's database is memory marked volatile", async () => {
  assert.equal(globalThis.indexedDB, undefined);
  const db = getDatabase();
  assert.ok(db instanceof MemoryDatabase);
  assert.equal(db.volatile, "no_indexeddb");
  assert.equal(await db.probe(), false);
});

test("autosave keeps a change whose write failed and stores it on the next try", async () => {
  const store = new Map();
  globalThis.localStorage = {
    getItem: (k) => (store.has(k) ? store.get(k) : null), setItem: (k, v) => store.set(k, String(v)),
    removeItem: (k) => store.delete(k), key: (i) => [...store.keys()][i], get length() { return store.size; },
  };
  try {
    const mem = new MemoryDatabase();
    let failures = 1;
    const flaky = {
      put: (s, k, v) => (failures-- > 0 ? Promise.reject(new DOMException("closing", "InvalidStateError")) : mem.put(s, k, v)),
    };
    const draft = { id: "d1", answers: { a: 1 } };
    const seen = [];
    const saver = makeSaver(flaky, draft, { onSaved: () => seen.push("saved"), onFailed: () => seen.push("failed"), retryMs: 1 });
    saver.save();
    assert.ok(store.has("jiedui.journal.d1"), "journaled at once, before IndexedDB answers");
    await saver.flush();
    assert.deepEqual(seen, ["failed", "saved"]);
    assert.deepEqual((await mem.get("drafts", "d1")).answers, { a: 1 });
    assert.equal(store.has("jiedui.journal.d1"), false, "the journal is dropped once stored");
  } finally {
    delete globalThis.localStorage;
  }
});
