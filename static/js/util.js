// Small DOM-free helpers shared by the phone app's modules (importable by `node --test`).

const hex = (bytes) => Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");

function randomBytes(n) {
  const bytes = new Uint8Array(n);
  const c = globalThis.crypto;
  if (c && typeof c.getRandomValues === "function") c.getRandomValues(bytes);
  else for (let i = 0; i < n; i++) bytes[i] = Math.floor(Math.random() * 256);
  return bytes;
}

/** A random (version 4) UUID: crypto.randomUUID where the browser has it (secure contexts only). */
export function uuid() {
  const c = globalThis.crypto;
  if (c && typeof c.randomUUID === "function") return c.randomUUID();
  const b = randomBytes(16);
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const h = hex(b);
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/** A short random id for file names, e.g. "k3f9q2ab" (lower-case letters and digits). */
export function shortId(length = 8) {
  const alphabet = "abcdefghijkmnpqrstuvwxyz23456789";
  return Array.from(randomBytes(length), (b) => alphabet[b % alphabet.length]).join("");
}

export const isoNow = (now = new Date()) => now.toISOString();

/** Whole days from an ISO date or time to now (local calendar days), or null when unknown. */
export function daysSince(iso, now = new Date()) {
  if (!iso || typeof iso !== "string") return null;
  const m = /^(\d{4})-(\d{2})-(\d{2})/.exec(iso);
  if (!m) return null;
  const then = iso.length > 10 ? new Date(iso) : new Date(Number(m[1]), Number(m[2]) - 1, Number(m[3]));
  if (Number.isNaN(then.getTime())) return null;
  const startOf = (d) => new Date(d.getFullYear(), d.getMonth(), d.getDate()).getTime();
  return Math.round((startOf(now) - startOf(then)) / 86400000);
}

export const isObject = (v) => v !== null && typeof v === "object" && !Array.isArray(v);

/** Field paths as the server may spell them ("members[0].name", "members/0/name") -> "members.0.name". */
export function normalizePath(field) {
  if (field === null || field === undefined) return "";
  return String(field).replace(/\[(\d+)\]/g, ".$1").replace(/\//g, ".").replace(/^\./, "");
}

/** The phone's calendar day as YYYY-MM-DD (conditions.js's todayISO is the same, for the evaluator). */
export function localDate(now = new Date()) {
  return `${String(now.getFullYear()).padStart(4, "0")}-${String(now.getMonth() + 1).padStart(2, "0")}-${String(now.getDate()).padStart(2, "0")}`;
}

/** The calendar day a stored time falls on where the phone is (the county's zone): "…T21:21:00Z"
 * is the next morning in Beijing, which slicing the text would miss. */
export function dayOf(iso) {
  const d = new Date(iso);
  return iso && !Number.isNaN(d.getTime()) ? localDate(d) : String(iso || "").slice(0, 10);
}

/** Deep copy of JSON-like data (drafts and answers). */
export const clone = (v) => (v === undefined ? undefined : JSON.parse(JSON.stringify(v)));

/**
 * Compares two texts by code point: ISO dates and times, ids. (localeCompare goes through the
 * locale's collation tables: slow on a cheap phone, and ISO strings need none of it.)
 */
export const compareText = (a, b) => {
  const x = String(a ?? "");
  const y = String(b ?? "");
  return x < y ? -1 : x > y ? 1 : 0;
};
