// The app PIN's cryptography (WebCrypto only; DOM-free, so `node --test` drives it): a random
// AES-GCM 256 data key encrypts every record, each with its own random 96-bit IV; the data key is
// kept wrapped (AES-GCM) under a key derived from the PIN (PBKDF2, SHA-256, 200,000 iterations,
// a random salt), so changing the PIN rewraps one key instead of re-encrypting everything. The
// unwrapped data key is not extractable and lives in memory only while the app is unlocked.
// Honest limit: a 6-digit PIN is a million guesses; the ten-tries erase guards the app, not a copy
// of the phone's storage taken away and attacked offline.

const subtle = () => globalThis.crypto.subtle;
export const ITERATIONS = 200000;
export const PIN_RE = /^[0-9]{6}$/;
const SEALED = "jiedui-sealed"; // the marker of an encrypted record
const enc = new TextEncoder();
const dec = new TextDecoder();

const random = (n) => globalThis.crypto.getRandomValues(new Uint8Array(n));
const b64 = (bytes) => {
  let s = "";
  for (const b of new Uint8Array(bytes)) s += String.fromCharCode(b);
  return btoa(s);
};
const unb64 = (text) => Uint8Array.from(atob(text), (c) => c.charCodeAt(0));

export class WrongPin extends Error {
  constructor() { super("wrong PIN"); this.name = "WrongPin"; }
}

async function pinKey(pin, salt, iterations) {
  const base = await subtle().importKey("raw", enc.encode(pin), "PBKDF2", false, ["deriveKey"]);
  return subtle().deriveKey({ name: "PBKDF2", salt, iterations, hash: "SHA-256" }, base,
    { name: "AES-GCM", length: 256 }, false, ["wrapKey", "unwrapKey"]);
}

async function wrap(dataKey, pin, iterations) {
  const salt = random(16);
  const iv = random(12);
  const wrapped = await subtle().wrapKey("raw", dataKey, await pinKey(pin, salt, iterations), { name: "AES-GCM", iv });
  return { v: 1, iterations, salt: b64(salt), iv: b64(iv), wrapped: b64(wrapped) };
}

/** A new data key and its record (plain JSON, to be stored as it is): {key, record}. */
export async function createKey(pin, { iterations = ITERATIONS } = {}) {
  if (!PIN_RE.test(pin)) throw new TypeError("the PIN is six digits");
  const extractable = await subtle().generateKey({ name: "AES-GCM", length: 256 }, true, ["encrypt", "decrypt"]);
  const record = await wrap(extractable, pin, iterations);
  return { key: await unwrapKey(record, pin), record };
}

/** The data key from its record and the PIN (not extractable); WrongPin when the PIN is not it. */
export async function unwrapKey(record, pin) {
  try {
    const kek = await pinKey(String(pin), unb64(record.salt), record.iterations);
    return await subtle().unwrapKey("raw", unb64(record.wrapped), kek, { name: "AES-GCM", iv: unb64(record.iv) },
      { name: "AES-GCM", length: 256 }, false, ["encrypt", "decrypt"]);
  } catch (err) {
    if (err && err.name === "OperationError") throw new WrongPin();
    throw err;
  }
}

/** The same data key under a new PIN: a new record; nothing else is re-encrypted. */
export async function changePin(record, oldPin, newPin) {
  if (!PIN_RE.test(newPin)) throw new TypeError("the PIN is six digits");
  const kek = await pinKey(String(oldPin), unb64(record.salt), record.iterations);
  let raw;
  try {
    // Unwrapped as extractable for this one rewrap only; the app's copy stays non-extractable.
    raw = await subtle().unwrapKey("raw", unb64(record.wrapped), kek, { name: "AES-GCM", iv: unb64(record.iv) },
      { name: "AES-GCM", length: 256 }, true, ["encrypt", "decrypt"]);
  } catch (err) {
    if (err && err.name === "OperationError") throw new WrongPin();
    throw err;
  }
  return wrap(raw, newPin, record.iterations);
}

// ---- records -----------------------------------------------------------------------------------------

// A record is JSON with its binary parts (photos are Blobs) moved out beside it: a 4-byte length,
// the JSON, then the bytes of each part in order.
async function pack(value) {
  const parts = [];
  const walk = async (v) => {
    if (v && typeof v === "object") {
      if (typeof Blob !== "undefined" && v instanceof Blob) {
        parts.push(new Uint8Array(await v.arrayBuffer()));
        return { [SEALED]: "blob", i: parts.length - 1, type: v.type };
      }
      if (v instanceof ArrayBuffer || ArrayBuffer.isView(v)) {
        parts.push(new Uint8Array(v instanceof ArrayBuffer ? v : v.buffer.slice(v.byteOffset, v.byteOffset + v.byteLength)));
        return { [SEALED]: "bytes", i: parts.length - 1 };
      }
      if (Array.isArray(v)) {
        const out = [];
        for (const x of v) out.push(await walk(x));
        return out;
      }
      const out = {};
      for (const [k, x] of Object.entries(v)) out[k] = await walk(x);
      return out;
    }
    return v;
  };
  const tree = await walk(value);
  const shape = enc.encode(JSON.stringify({ value: tree, sizes: parts.map((p) => p.length) }));
  const total = 4 + shape.length + parts.reduce((n, p) => n + p.length, 0);
  const out = new Uint8Array(total);
  new DataView(out.buffer).setUint32(0, shape.length);
  out.set(shape, 4);
  let at = 4 + shape.length;
  for (const p of parts) { out.set(p, at); at += p.length; }
  return out;
}

function unpack(bytes) {
  const length = new DataView(bytes.buffer, bytes.byteOffset).getUint32(0);
  const { value, sizes } = JSON.parse(dec.decode(bytes.subarray(4, 4 + length)));
  const parts = [];
  let at = 4 + length;
  for (const n of sizes) { parts.push(bytes.slice(at, at + n)); at += n; }
  const walk = (v) => {
    if (Array.isArray(v)) return v.map(walk);
    if (v && typeof v === "object") {
      if (v[SEALED] === "blob") return new Blob([parts[v.i]], { type: v.type });
      if (v[SEALED] === "bytes") return parts[v.i].buffer;
      return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, walk(x)]));
    }
    return v;
  };
  return walk(value);
}

/** Whether a stored value is an encrypted record (anything else is plain, from before the PIN). */
export const isSealed = (stored) => !!(stored && typeof stored === "object" && stored[SEALED] === 1);

/** An encrypted record of `value` (undefined stays undefined): {jiedui-sealed: 1, iv, data}. */
export async function seal(key, value) {
  if (value === undefined) return undefined;
  const iv = random(12);
  const data = await subtle().encrypt({ name: "AES-GCM", iv }, key, await pack(value));
  return { [SEALED]: 1, iv, data };
}

/** The value of an encrypted record; a plain one is returned as it is. */
export async function open(key, stored) {
  if (!isSealed(stored)) return stored;
  const plain = await subtle().decrypt({ name: "AES-GCM", iv: stored.iv }, key, stored.data);
  return unpack(new Uint8Array(plain));
}
