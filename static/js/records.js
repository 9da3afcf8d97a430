// The phone's own records in IndexedDB, apart from the outbox's sending (sync.js): drafts kept
// (autosaved with a synchronous journal, recovered after a crash, deleted) and photos with their
// thumbnails (kept while anything may still need them). Making drafts is drafts.js.
// DOM-free apart from localStorage (the journal), so `node --test` drives it with MemoryDatabase.

import { clone, isObject, isoNow } from "./util.js";

export const THUMB_SUFFIX = "#thumb"; // photo names never contain "#", so a thumbnail cannot clash
export const thumbKey = (name) => `${name}${THUMB_SUFFIX}`;
/** Full photos of sent visits are kept this long (or until approved) so a returned visit keeps them. */
export const KEEP_PHOTOS_MS = 30 * 24 * 3600 * 1000;

/** Whether the draft was made on an older version of its form than the current one. */
export function isOutdated(draft, currentVersion) {
  return Number.isInteger(currentVersion) && Number.isInteger(draft.form_version) && draft.form_version < currentVersion;
}

// ---- autosave and its journal --------------------------------------------------------------------

// Drafts are written to IndexedDB after every change, one write at a time. Each change is first
// journaled synchronously in localStorage, so a change made just before the page dies (reload, the
// phone killing the browser) is not lost: recoverJournal() writes it to IndexedDB on the next start.
const JOURNAL = "jiedui.journal.";
// Off under an app PIN (lock.js): localStorage cannot hold a draft encrypted in the same instant,
// and a plain copy there is what a lost phone must not give away.
let journaling = true;

/** Turns the synchronous journal on or off (off once the phone keeps its data under a PIN). */
export function setJournaling(on) {
  journaling = !!on;
}

/** Drops every journaled draft (an erased phone keeps none). */
export function clearJournal() {
  for (const key of journaled()) {
    try { storage().removeItem(key); } catch (_) { /* nothing to drop */ }
  }
}

function storage() {
  try { return globalThis.localStorage || null; } catch (_) { return null; }
}

function journal(draft) {
  if (!journaling) return;
  try { storage().setItem(JOURNAL + draft.id, JSON.stringify(draft)); } catch (_) { /* storage full or blocked */ }
}

/** Forgets the journal of a draft once IndexedDB holds that revision (or the draft is gone). */
export function forgetJournal(id, upToRev = Infinity) {
  try {
    const raw = storage().getItem(JOURNAL + id);
    if (raw && (JSON.parse(raw).rev || 0) <= upToRev) storage().removeItem(JOURNAL + id);
  } catch (_) { /* nothing to forget */ }
}

function journaled() {
  try {
    const s = storage();
    const keys = [];
    for (let i = 0; s && i < s.length; i++) keys.push(s.key(i));
    return keys.filter((k) => k && k.startsWith(JOURNAL));
  } catch (_) {
    return [];
  }
}

/** Writes journaled changes that never reached IndexedDB (the newer revision wins). */
export async function recoverJournal(db) {
  for (const key of journaled()) {
    try {
      const saved = JSON.parse(storage().getItem(key));
      const id = saved && saved.id;
      if (id && !(await db.get("outbox", id)) && !(await db.get("sent", id))) {
        await db.update("drafts", id, (old) => (!old || (old.rev || 0) < (saved.rev || 0) ? saved : old));
      }
      storage().removeItem(key);
    } catch (err) {
      console.warn("draft journal not recovered yet", key, err);
    }
  }
}

/**
 * Saves a draft after each change: journal first (synchronous), then IndexedDB, one write at a
 * time; a failed write is kept in memory and in the journal and tried again every `retryMs`.
 */
export function makeSaver(db, draft, { onSaved = () => {}, onFailed = () => {}, retryMs = 2000 } = {}) {
  let dirty = false;
  let running = null;
  const loop = async () => {
    while (dirty) {
      dirty = false;
      const copy = clone(draft);
      try {
        await db.put("drafts", draft.id, copy);
        forgetJournal(draft.id, copy.rev);
        onSaved();
      } catch (err) {
        dirty = true; // db.js already reopened and retried; wait and try again
        onFailed(err);
        await new Promise((r) => setTimeout(r, retryMs));
      }
    }
    running = null;
  };
  return {
    save() {
      draft.rev = (draft.rev || 0) + 1;
      draft.updated_at = isoNow();
      journal(draft);
      dirty = true;
      if (!running) running = loop();
      return running;
    },
    flush() { return running || Promise.resolve(); },
  };
}

/** Deletes a draft and its journal. */
export async function deleteDraft(db, id) {
  await db.delete("drafts", id);
  forgetJournal(id);
}

// ---- photos ------------------------------------------------------------------------------------------

function namesIn(value, into) {
  if (typeof value === "string") into.add(value);
  else if (Array.isArray(value)) value.forEach((v) => namesIn(v, into));
  else if (isObject(value)) Object.values(value).forEach((v) => namesIn(v, into));
  return into;
}

const settled = (r) => r.superseded_by || (r.review && ["approved", "superseded"].includes(r.review.state));

/**
 * Deletes photos nothing needs any more. Drafts and the outbox keep theirs; a sent visit keeps its
 * full photos until approved or corrected, or KEEP_PHOTOS_MS after sending (a returned visit is
 * fixed with them), and its thumbnails as long as the phone keeps the visit (to show it).
 */
export async function collectPhotos(db, now = new Date()) {
  const [keys, drafts, outbox, sent] = await Promise.all([db.keys("photos"), db.all("drafts"), db.all("outbox"), db.all("sent")]);
  const full = new Set();
  const thumbs = new Set();
  for (const key of journaled()) {
    try { namesIn(JSON.parse(storage().getItem(key)).answers, full); } catch (_) { /* unreadable: ignored */ }
  }
  for (const d of drafts) namesIn(d.answers, full);
  for (const i of outbox) {
    namesIn(i.answers, full);
    (i.attachments || []).forEach((a) => full.add(a.name));
  }
  for (const s of sent) {
    const names = new Set((s.attachments || []).map((a) => a.name));
    names.forEach((n) => thumbs.add(n));
    const young = now - new Date(s.sent_at || 0) < KEEP_PHOTOS_MS;
    if (young && !settled(s)) names.forEach((n) => full.add(n));
  }
  full.forEach((n) => thumbs.add(n));
  const unused = keys.filter((k) => (k.endsWith(THUMB_SUFFIX) ? !thumbs.has(k.slice(0, -THUMB_SUFFIX.length)) : !full.has(k)));
  if (unused.length) await db.tx("photos", "readwrite", (o) => Promise.all(unused.map((k) => o.delete("photos", k))));
  return unused;
}

/**
 * Makes sure the photos a draft names are on the phone: missing ones are fetched from the server
 * with `fetchPhoto(name)` (returns a Blob or null). Returns the names still missing.
 */
export async function ensurePhotos(db, names, fetchPhoto) {
  const missing = [];
  for (const name of names) {
    if (await db.get("photos", name)) continue;
    let blob = null;
    try { blob = fetchPhoto ? await fetchPhoto(name) : null; } catch (_) { blob = null; }
    if (blob) await db.put("photos", name, blob);
    else missing.push(name);
  }
  return missing;
}
