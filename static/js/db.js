// A tiny promise wrapper over IndexedDB, in the shape of idb-keyval, with several stores.
// Browsers close IndexedDB connections under memory pressure (iOS Safari does; Enketo lost drafts
// to it): an operation that meets a closed or closing connection reopens it and runs again (a few
// times, with pauses), so a write is never silently dropped. A rejected promise means the write
// did not happen and the caller still holds the data.
// Where IndexedDB is missing or unusable (some private modes), the app runs on memory, and says
// so: `volatile` names why, and the app shows it on screen, since nothing typed would survive.

export const STORES = ["households", "drafts", "outbox", "sent", "photos", "meta"];
const DB_VERSION = 1;
const RETRYABLE = new Set(["InvalidStateError", "UnknownError", "AbortError", "TransactionInactiveError"]);
const RETRY_DELAYS_MS = [0, 50, 200, 800, 2000];

const promisify = (request) => new Promise((resolve, reject) => {
  request.onsuccess = () => resolve(request.result);
  request.onerror = () => reject(request.error);
});

const pause = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Operations on the stores of one transaction; each returns a promise. */
function idbOps(tx) {
  const store = (name) => tx.objectStore(name);
  return {
    get: (name, key) => promisify(store(name).get(key)),
    put: (name, key, value) => promisify(store(name).put(value, key)),
    delete: (name, key) => promisify(store(name).delete(key)),
    all: (name) => promisify(store(name).getAll()),
    keys: (name) => promisify(store(name).getAllKeys()),
    clear: (name) => promisify(store(name).clear()),
  };
}

class AppError extends Error {}

/** IndexedDB-backed database; `tx` is the one primitive, the rest are one-operation shortcuts. */
export class Database {
  constructor(name = "jiedui", factory = globalThis.indexedDB) {
    this.name = name;
    this.factory = factory;
    this.connection = null; // a promise of an IDBDatabase
    this.reopened = 0; // how many times a lost connection was replaced (for tests and diagnostics)
    this.memory = null; // a MemoryDatabase once IndexedDB proved unusable (see probe)
    this.volatile = null; // why nothing is kept on the phone (null: IndexedDB works)
  }

  /**
   * Checks once that IndexedDB can be written. If it cannot (private mode, storage blocked or
   * broken), the database runs on memory from then on and `volatile` says why; resolves to
   * whether writes are kept on the phone.
   */
  async probe() {
    if (this.memory) return false;
    try {
      await this.tx("meta", "readwrite", (o) => o.put("meta", "probe", Date.now()));
      return true;
    } catch (err) {
      this.memory = new MemoryDatabase();
      this.volatile = (err && err.name) || "error";
      return false;
    }
  }

  connect() {
    if (this.connection) return this.connection;
    const attempt = new Promise((resolve, reject) => {
      const request = this.factory.open(this.name, DB_VERSION);
      request.onupgradeneeded = () => {
        const db = request.result;
        for (const name of STORES) if (!db.objectStoreNames.contains(name)) db.createObjectStore(name);
      };
      request.onsuccess = () => {
        const db = request.result;
        const forget = () => { if (this.connection === attempt) this.connection = null; };
        db.onclose = forget; // closed by the browser, not by us
        db.onversionchange = () => { db.close(); forget(); };
        resolve(db);
      };
      request.onerror = () => reject(request.error);
      request.onblocked = () => reject(new DOMException("database upgrade blocked", "InvalidStateError"));
    });
    this.connection = attempt;
    attempt.catch(() => { if (this.connection === attempt) this.connection = null; });
    return attempt;
  }

  /**
   * Runs fn(ops) in one transaction over `stores` and resolves with fn's result once the
   * transaction has committed. fn may be run again when the connection was lost, so it must only
   * work through ops (no other awaits inside). An error thrown by fn aborts and is not retried.
   */
  async tx(stores, mode, fn) {
    if (this.memory) return this.memory.tx(stores, mode, fn);
    const names = Array.isArray(stores) ? stores : [stores];
    let lastError;
    for (const delay of RETRY_DELAYS_MS) {
      if (delay) await pause(delay);
      try {
        return await this.runOnce(names, mode, fn);
      } catch (err) {
        if (err instanceof AppError) throw err.cause;
        if (!err || !RETRYABLE.has(err.name)) throw err;
        lastError = err;
        this.connection = null; // reopen: the old connection is closing or closed
        this.reopened += 1;
      }
    }
    throw lastError;
  }

  async runOnce(names, mode, fn) {
    const db = await this.connect();
    const tx = db.transaction(names, mode); // throws InvalidStateError when the connection closes
    const done = new Promise((resolve, reject) => {
      tx.oncomplete = () => resolve();
      tx.onabort = () => reject(tx.error || new DOMException("transaction aborted", "AbortError"));
      tx.onerror = (event) => event.preventDefault(); // handled by onabort
    });
    let result;
    try {
      result = await fn(idbOps(tx));
    } catch (err) {
      try { tx.abort(); } catch (_) { /* already finished */ }
      await done.catch(() => {});
      if (err && RETRYABLE.has(err.name)) throw err; // the connection went away mid-transaction
      const wrapped = new AppError(String(err && err.message));
      wrapped.cause = err;
      throw wrapped;
    }
    await done;
    return result;
  }

  get(store, key) { return this.tx(store, "readonly", (o) => o.get(store, key)); }
  put(store, key, value) { return this.tx(store, "readwrite", (o) => o.put(store, key, value)); }
  delete(store, key) { return this.tx(store, "readwrite", (o) => o.delete(store, key)); }
  all(store) { return this.tx(store, "readonly", (o) => o.all(store)); }
  keys(store) { return this.tx(store, "readonly", (o) => o.keys(store)); }
  clear(store) { return this.tx(store, "readwrite", (o) => o.clear(store)); }

  /** Read, change and write one record atomically; fn(old) returns the new value (undefined: delete). */
  update(store, key, fn) {
    return this.tx(store, "readwrite", async (o) => {
      const value = fn(await o.get(store, key));
      if (value === undefined) await o.delete(store, key);
      else await o.put(store, key, value);
      return value;
    });
  }

  /**
   * Test hook: close the connection behind the wrapper's back, as a browser under pressure does.
   * Our own close() fires no close event, so the wrapper still holds the dead connection: the next
   * operation meets InvalidStateError and must reopen (the harder case; a real close also fires
   * onclose, which only makes the wrapper forget the connection sooner).
   */
  async simulateBrowserClose() {
    if (!this.connection) return;
    const db = await this.connection;
    db.close();
  }
}

const copy = (v) => (v === undefined ? undefined : structuredClone(v));

/** The same interface kept in memory: for node tests and for browsers without IndexedDB. */
export class MemoryDatabase {
  constructor() {
    this.volatile = null; // set by getDatabase when the app has to run on it
    this.data = new Map(STORES.map((s) => [s, new Map()]));
    this.queue = Promise.resolve();
  }

  /** Writes are kept only while the page lives: "kept on the phone" is false for the app's one. */
  async probe() { return !this.volatile; }

  tx(stores, mode, fn) {
    const names = Array.isArray(stores) ? stores : [stores];
    const run = async () => {
      const before = new Map(names.map((n) => [n, new Map(this.data.get(n))]));
      const map = (name) => {
        if (!names.includes(name)) throw new DOMException(`store ${name} not in transaction`, "NotFoundError");
        return this.data.get(name);
      };
      const writable = (name) => {
        if (mode !== "readwrite") throw new DOMException("read-only transaction", "ReadOnlyError");
        return map(name);
      };
      const ops = {
        get: async (name, key) => copy(map(name).get(key)),
        put: async (name, key, value) => { writable(name).set(key, copy(value)); return key; },
        delete: async (name, key) => { writable(name).delete(key); },
        all: async (name) => [...map(name).keys()].sort().map((k) => copy(map(name).get(k))),
        keys: async (name) => [...map(name).keys()].sort(),
        clear: async (name) => { writable(name).clear(); },
      };
      try {
        return await fn(ops);
      } catch (err) {
        for (const [n, m] of before) this.data.set(n, m);
        throw err;
      }
    };
    const result = this.queue.then(run, run);
    this.queue = result.catch(() => {});
    return result;
  }
}
for (const name of ["get", "put", "delete", "all", "keys", "clear", "update"]) {
  MemoryDatabase.prototype[name] = Database.prototype[name];
}

let shared = null;

/**
 * The app's database: IndexedDB when the browser has it; otherwise memory, marked `volatile` so
 * the app warns that nothing survives closing the page.
 */
export function getDatabase() {
  if (!shared) {
    if (globalThis.indexedDB) {
      shared = new Database();
    } else {
      shared = new MemoryDatabase();
      shared.volatile = "no_indexeddb";
    }
  }
  return shared;
}

/** Where the app PIN's lock record is kept (localStorage), read here to know whether lock.js is needed. */
export const LOCK_RECORD = "jiedui.lock";

/**
 * The one database every module uses: `raw` as it is, until the app PIN's lock (lock.js) takes
 * the gate and decides what answers (the encrypted records while unlocked; operations wait while
 * locked). Here rather than in lock.js, so a phone without a PIN starts without the lock's code.
 * gate.target() is the database an operation runs on; the lock replaces it.
 */
export function gatedDatabase(raw) {
  const gate = { target: () => Promise.resolve(raw) };
  const db = {
    gate,
    get volatile() { return raw.volatile; },
    get memory() { return raw.memory; },
    probe: () => raw.probe(),
  };
  for (const name of ["tx", "get", "put", "delete", "all", "keys", "clear", "update"]) {
    db[name] = (...args) => gate.target().then((target) => target[name](...args));
  }
  return db;
}
