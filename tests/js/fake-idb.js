// A small stand-in for the browser's indexedDB, enough for static/js/db.js: connections,
// transactions that commit when no request is pending (or abort, dropping their writes), and the
// ways a browser under memory pressure breaks them: the connection closed (with or without a
// close event), a transaction aborted in the middle.

const later = (fn) => setTimeout(fn, 0);

function request() {
  return { result: undefined, error: null, onsuccess: null, onerror: null };
}

class FakeTransaction {
  constructor(conn, names, mode) {
    this.conn = conn;
    this.names = names;
    this.mode = mode;
    this.pending = 0;
    this.finished = false;
    this.error = null;
    this.staged = new Map(names.map((n) => [n, new Map(conn.factory.stores.get(n))]));
    this.oncomplete = null;
    this.onabort = null;
    this.onerror = null;
    conn.active.add(this);
    later(() => this.maybeCommit());
  }

  objectStore(name) {
    if (!this.names.includes(name)) throw new DOMException(`${name} not in scope`, "NotFoundError");
    const run = (fn) => {
      if (this.finished) throw new DOMException("transaction finished", "TransactionInactiveError");
      const req = request();
      this.pending += 1;
      later(() => {
        this.pending -= 1;
        if (this.finished) return;
        const factory = this.conn.factory;
        if (factory.abortAfterRequests !== null && --factory.abortAfterRequests < 0) {
          factory.abortAfterRequests = null;
          this.abort(new DOMException("browser closed the connection", "UnknownError"), req);
          if (factory.closeOnAbort) this.conn.forceClose(true);
          return;
        }
        try {
          req.result = fn(this.staged.get(name));
        } catch (err) {
          req.error = err;
          this.abort(err, req);
          return;
        }
        if (req.onsuccess) req.onsuccess();
        later(() => this.maybeCommit());
      });
      return req;
    };
    const writable = () => {
      if (this.mode !== "readwrite") throw new DOMException("read-only", "ReadOnlyError");
    };
    return {
      get: (key) => run((m) => structuredClone(m.get(key))),
      put: (value, key) => { writable(); return run((m) => { m.set(key, structuredClone(value)); return key; }); },
      delete: (key) => { writable(); return run((m) => { m.delete(key); }); },
      getAll: () => run((m) => [...m.keys()].sort().map((k) => structuredClone(m.get(k)))),
      getAllKeys: () => run((m) => [...m.keys()].sort()),
      clear: () => { writable(); return run((m) => { m.clear(); }); },
    };
  }

  maybeCommit() {
    if (this.finished || this.pending) return;
    this.finished = true;
    this.conn.active.delete(this);
    for (const [name, map] of this.staged) this.conn.factory.stores.set(name, map);
    this.conn.factory.commits += 1;
    if (this.oncomplete) this.oncomplete();
  }

  abort(error = null, failedRequest = null) {
    if (this.finished) throw new DOMException("already finished", "InvalidStateError");
    this.finished = true;
    this.conn.active.delete(this);
    this.error = error || new DOMException("aborted", "AbortError");
    if (failedRequest) {
      failedRequest.error = this.error;
      if (failedRequest.onerror) failedRequest.onerror({ preventDefault() {} });
    }
    later(() => { if (this.onabort) this.onabort(); });
  }
}

class FakeConnection {
  constructor(factory) {
    this.factory = factory;
    this.closed = false;
    this.active = new Set();
    this.onclose = null;
    this.onversionchange = null;
    this.objectStoreNames = { contains: (n) => factory.stores.has(n) };
  }

  createObjectStore(name) { this.factory.stores.set(name, new Map()); }

  transaction(names, mode = "readonly") {
    if (this.closed) throw new DOMException("The database connection is closing.", "InvalidStateError");
    return new FakeTransaction(this, Array.isArray(names) ? names : [names], mode);
  }

  close() { this.closed = true; }

  /** What a browser does under memory pressure: close, abort what runs, maybe tell us. */
  forceClose(withEvent) {
    this.closed = true;
    for (const tx of [...this.active]) tx.abort(new DOMException("connection closed", "UnknownError"));
    if (withEvent && this.onclose) later(() => this.onclose());
  }
}

export class FakeIndexedDB {
  constructor() {
    this.stores = new Map();
    this.connections = [];
    this.commits = 0;
    this.abortAfterRequests = null; // abort the transaction serving request number N+1 from now
    this.closeOnAbort = false;
    this.failOpens = 0; // the next N open() calls fail
  }

  open() {
    const req = request();
    later(() => {
      if (this.failOpens > 0) {
        this.failOpens -= 1;
        req.error = new DOMException("open failed", "UnknownError");
        if (req.onerror) req.onerror();
        return;
      }
      const conn = new FakeConnection(this);
      this.connections.push(conn);
      req.result = conn;
      if (!this.stores.size && req.onupgradeneeded) req.onupgradeneeded();
      if (req.onsuccess) req.onsuccess();
    });
    return req;
  }

  get current() { return this.connections[this.connections.length - 1]; }
}
