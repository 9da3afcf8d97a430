// The app PIN's encrypted database (lock.js keeps the state, vault.js the cryptography), loaded
// only when a PIN is set or given: a phone without one never downloads or parses it, and the home
// screen's modules stay as few as before the PIN existed.
// SealedDatabase: the Database interface over encrypted records. Decrypting is asynchronous and an
// IndexedDB transaction cannot wait for it, so the records are decrypted once at unlock into a
// MemoryDatabase (the same transactions, run one at a time); each transaction's writes are
// encrypted and written to IndexedDB in one transaction before it resolves, and a failed write
// rolls the memory back: what resolved is on the phone, encrypted.

import { STORES, MemoryDatabase } from "./db.js";
import { isSealed, open, seal } from "./vault.js";

export { WrongPin, changePin, createKey, unwrapKey } from "./vault.js";

export class SealedDatabase {
  constructor(raw, key) {
    this.raw = raw;
    this.key = key;
    this.mirror = new MemoryDatabase();
    this.volatile = raw.volatile;
  }

  /** Decrypts every record into memory; plain records (kept before the PIN) are encrypted now. */
  static async load(raw, key) {
    const sealed = new SealedDatabase(raw, key);
    const plain = [];
    for (const name of STORES) {
      const [keys, values] = await raw.tx(name, "readonly", (o) => Promise.all([o.keys(name), o.all(name)]));
      const map = sealed.mirror.data.get(name);
      for (let i = 0; i < keys.length; i++) {
        if (!isSealed(values[i])) plain.push([name, keys[i]]);
        map.set(keys[i], await open(key, values[i]));
      }
    }
    // Each store's plain records in one transaction (a village's households at set-up).
    for (const name of STORES) {
      const mine = plain.filter(([n]) => n === name);
      const values = [];
      for (const [, k] of mine) values.push([k, await seal(key, sealed.mirror.data.get(name).get(k))]);
      if (values.length) await raw.tx(name, "readwrite", (o) => Promise.all(values.map(([k, v]) => o.put(name, k, v))));
    }
    return sealed;
  }

  probe() { return this.raw.probe(); }

  tx(stores, mode, fn) {
    return this.mirror.tx(stores, mode, async (ops) => {
      const writes = [];
      const recorded = {
        ...ops,
        put: (name, key, value) => { writes.push(["put", name, key, value]); return ops.put(name, key, value); },
        delete: (name, key) => { writes.push(["delete", name, key]); return ops.delete(name, key); },
        clear: (name) => { writes.push(["clear", name]); return ops.clear(name); },
      };
      const result = await fn(recorded);
      if (writes.length) {
        const sealed = [];
        for (const [op, name, key, value] of writes) sealed.push([op, name, key, op === "put" ? await seal(this.key, value) : undefined]);
        const names = [...new Set(sealed.map((w) => w[1]))];
        await this.raw.tx(names, "readwrite", async (o) => {
          for (const [op, name, key, value] of sealed) {
            if (op === "put") await o.put(name, key, value);
            else if (op === "delete") await o.delete(name, key);
            else await o.clear(name);
          }
        });
      }
      return result;
    });
  }
}
for (const name of ["get", "put", "delete", "all", "keys", "clear", "update"]) {
  SealedDatabase.prototype[name] = MemoryDatabase.prototype[name];
}
