// Sync with the server: the outbox (push, attachment upload), households (pull by seq cursor),
// form definitions, and the cadre's own submissions with their review decisions (pull by seq
// cursor). DOM-free: the database, fetch, clock and timers are injected, so `node --test` drives it
// with MemoryDatabase and a fake server.
//
// An outbox item leaves the outbox only when the server answered "created" or "duplicate" AND every
// attachment it declares has been uploaded (or refused for good); "rejected" keeps it, with the
// server's errors, for the cadre to fix and send again. A sent item's photos stay on the phone
// (records.js decides how long), so a visit the supervisor returns can be fixed with them.

import { thumbKey } from "./records.js";
import { compareText, isoNow, normalizePath, uuid as newUuid } from "./util.js";

// What only submitting a form and sending photos need is loaded then, not before the first screen
// (each with what it imports, side by side: no chain of round trips).
const answersModule = () => Promise.all([import("./answers.js"), import("./conditions.js"), import("./sections.js")]).then(([m]) => m);
const sha256Hex = async (blob) => (await import("./sha256.js")).sha256Hex(blob);
// What only a restore on the server needs (re-pull, re-send), loaded then.
const epochModule = () => import("./epoch.js");

export const API = "/api/v1";
/** Outbox states: waiting (to send), sending (a request is out), uploading (stored, photos to go), refused. */
export const PENDING_STATES = new Set(["waiting", "sending", "uploading"]);
const PERIODIC_MS = 15 * 60 * 1000;
const KEEP_SENT_MS = 180 * 24 * 3600 * 1000; // sent visits are shown this long (the server keeps them)
const SUBMISSIONS_PAGE = 200;
const THUMBS_PER_SYNC = 20;
// Records written per IndexedDB transaction while pulling: each write copies its records on the
// main thread, so small batches keep a cheap phone responsive while a village downloads.
const WRITE_BATCH = 10;

/** [0, n), [n, 2n) ... of a list. */
const batches = (list, n = WRITE_BATCH) => Array.from({ length: Math.ceil(list.length / n) }, (_, i) => list.slice(i * n, (i + 1) * n));

export class NetworkError extends Error {
  constructor(message) { super(message); this.name = "NetworkError"; }
}
export class LoginRequired extends Error {
  constructor() { super("login required"); this.name = "LoginRequired"; }
}
export class HttpError extends Error {
  constructor(status, body) {
    super((body && (body.message_en || body.message)) || `HTTP ${status}`);
    this.name = "HttpError";
    this.status = status;
    this.body = body || {};
  }
}

/**
 * Milliseconds to wait before retry number `attempt` (1, 2, ...): exponential, capped, with "equal
 * jitter" (between half and all of the step), so many phones coming back online do not retry in step.
 */
export function backoffDelay(attempt, { base = 5000, cap = 10 * 60 * 1000, random = Math.random } = {}) {
  const step = Math.min(cap, base * 2 ** Math.max(0, Math.min(attempt - 1, 30)));
  return Math.round(step / 2 + random() * (step / 2));
}

/** A message {zh, en} from an error body the server sent (or a fallback pair). */
export function serverMessage(body, fallback) {
  if (body && (body.message_zh || body.message_en)) {
    return { zh: body.message_zh || body.message_en, en: body.message_en || body.message_zh };
  }
  if (body && body.message) return { zh: body.message, en: body.message };
  return fallback;
}

function normalizeErrors(errors) {
  return (Array.isArray(errors) ? errors : []).map((e) => ({
    field: e && e.field ? normalizePath(e.field) : "",
    message: serverMessage(e, { zh: "内容有误", en: "Invalid" }),
  }));
}

/** What goes over the wire for an outbox item: exactly the contract's fields, nothing local. */
export function wireItem(item) {
  const out = {
    uuid: item.uuid,
    form: item.form,
    form_version: item.form_version,
    household_id: item.household_id,
    created_at: item.created_at,
    answers: item.answers,
    attachments: (item.attachments || []).map(({ name, sha256, size, type }) => ({ name, sha256, size, type })),
  };
  if (Number.isInteger(item.base_version)) out.base_version = item.base_version;
  if (item.supersedes) out.supersedes = item.supersedes;
  return out;
}

/** A review decision as the phone keeps it: {state, comment, fields, by, at, history}. */
export function normalizeReview(review) {
  if (!review || typeof review !== "object") return { state: "received", comment: "", fields: {}, by: null, at: null, history: [] };
  const comments = Array.isArray(review.comments) ? review.comments : [];
  const last = comments[comments.length - 1];
  return {
    state: review.state || "received",
    comment: typeof review.comment === "string" ? review.comment : (last && (last.text || last.comment)) || "",
    fields: review.fields && typeof review.fields === "object" && !Array.isArray(review.fields) ? review.fields : {},
    by: review.by || (last && last.by) || null,
    at: review.at || (last && last.at) || null,
    history: Array.isArray(review.history) ? review.history : [],
  };
}

const typeOf = (name, blob) => (blob && blob.type) || (/\.png$/i.test(name) ? "image/png" : "image/jpeg");

async function describeAttachments(db, definition, answers) {
  const { attachmentNames } = await answersModule();
  const out = [];
  for (const name of attachmentNames(definition, answers)) {
    const blob = await db.get("photos", name);
    if (!blob) throw new Error(`photo ${name} is missing on this phone`);
    out.push({ name, sha256: await sha256Hex(blob), size: blob.size, type: typeOf(name, blob), uploaded: false });
  }
  return out;
}

/**
 * The outbox item for a finished draft: cleaned answers, attachments with checksums, and the
 * household version the phone had when the form updates household attributes (base_version).
 */
export async function makeOutboxItem(db, draft, definition, { household = null, userId = null, settings, now = new Date() } = {}) {
  const { cleanAnswers } = await answersModule();
  const answers = cleanAnswers(definition, draft.answers || {}, { settings });
  const item = {
    uuid: draft.id,
    form: definition.id,
    form_version: definition.version,
    household_id: draft.household_id,
    created_at: draft.created_at || isoNow(now),
    answers,
    attachments: await describeAttachments(db, definition, answers),
    supersedes: draft.supersedes || null,
    followups: draft.followups || null, // the promises answered, to show them (not sent)
    state: "waiting",
    errors: [],
    attempts: 0,
    user_id: userId,
    queued_at: isoNow(now),
  };
  // A form whose declared effects change the household's members or attributes carries the
  // household version it was based on, so the server can merge it with other edits.
  const base = Number.isInteger(draft.base_version) ? draft.base_version : household && household.version;
  const effects = definition.effects || {};
  if ((effects.members || effects.household) && Number.isInteger(base)) item.base_version = base;
  return item;
}

/** The sent-items record kept after an item leaves the outbox (to show its review state). */
function sentRecord(item, now) {
  return {
    uuid: item.uuid,
    form: item.form,
    form_version: item.form_version,
    household_id: item.household_id,
    created_at: item.created_at,
    answers: item.answers,
    // with what declares them again: after a restore the phone re-sends what the server lacks (epoch.js)
    attachments: (item.attachments || []).map(({ name, sha256, size, type, uploaded, failed }) => ({ name, sha256, size, type, uploaded: !!uploaded, failed: failed || null })),
    base_version: Number.isInteger(item.base_version) ? item.base_version : null,
    user_id: item.user_id,
    sent_at: item.sent_at || isoNow(now),
    supersedes: item.supersedes || null,
    superseded_by: null,
    followups: item.followups || null,
    review: normalizeReview(null),
    checked_at: null,
  };
}

/** A sent record from one of the cadre's submissions as the server holds it (merged into ours). */
function sentFromServer(mine, sub, now) {
  const received = new Map((sub.attachments || []).map((a) => [a.name, !!a.received]));
  const base = mine || {
    uuid: sub.uuid, form: sub.form, form_version: sub.form_version, household_id: sub.household_id,
    created_at: sub.created_at, answers: sub.answers || {}, user_id: sub.cadre_id || null,
    sent_at: sub.received_at || sub.created_at || isoNow(now), supersedes: sub.supersedes || null,
    attachments: (sub.attachments || []).map((a) => ({ name: a.name, uploaded: !!a.received, failed: null })),
    pulled: true,
  };
  return {
    ...base,
    review: normalizeReview(sub.review),
    superseded_by: sub.superseded_by || base.superseded_by || null,
    attachments: base.attachments.map((a) => ({ ...a, received: received.get(a.name) || false })),
    checked_at: isoNow(now),
  };
}

export class SyncEngine {
  /**
   * options: db (Database or MemoryDatabase), fetch, now() -> Date, random, isOnline() -> bool,
   * setTimeout/clearTimeout, batchSize (items per POST), pageSize (households per GET), origin.
   */
  constructor(options) {
    this.db = options.db;
    this.fetch = options.fetch || ((...args) => globalThis.fetch(...args));
    this.now = options.now || (() => new Date());
    this.random = options.random || Math.random;
    this.isOnline = options.isOnline || (() => !(globalThis.navigator && globalThis.navigator.onLine === false));
    this.setTimer = options.setTimeout || ((fn, ms) => setTimeout(fn, ms));
    this.clearTimer = options.clearTimeout || ((t) => clearTimeout(t));
    this.batchSize = options.batchSize || 20;
    this.pageSize = options.pageSize || 500;
    this.origin = options.origin || "";
    this.csrf = null;
    this.user = null;
    this.catalogCache = null; // the stored definitions, read once (forgotten when they change)
    this.failures = 0;
    this.timer = null;
    this.current = null;
    this.again = false;
    this.listeners = new Set();
    this.status = {
      pending: 0, refused: 0, lastSync: null, running: false, phase: null,
      needsLogin: false, offline: false, error: null, nextRetryAt: null,
      dataVersion: 0, // +1 whenever a pull stored something: screens redraw only then
    };
  }

  subscribe(fn) {
    this.listeners.add(fn);
    fn(this.status);
    return () => this.listeners.delete(fn);
  }

  emit(changes = {}) {
    Object.assign(this.status, changes);
    for (const fn of this.listeners) {
      try { fn(this.status); } catch (err) { console.error(err); }
    }
  }

  /** Loads what the status shows (counts, last sync, user) from the database. */
  async load() {
    const [lastSync, user] = await Promise.all([this.db.get("meta", "lastSync"), this.db.get("meta", "user")]);
    this.user = user || null;
    await this.refreshCounts({ lastSync: lastSync || null });
  }

  belongsToUser(item) {
    return !item.user_id || !this.user || item.user_id === this.user.id;
  }

  async refreshCounts(extra = {}) {
    const items = await this.db.all("outbox");
    const mine = items.filter((i) => this.belongsToUser(i));
    this.emit({
      pending: mine.filter((i) => PENDING_STATES.has(i.state)).length,
      refused: mine.filter((i) => i.state === "refused").length,
      ...extra,
    });
  }

  // ---- HTTP -------------------------------------------------------------------------------------

  async request(method, path, { json, body, headers = {} } = {}) {
    const init = { method, headers: { Accept: "application/json", ...headers }, credentials: "same-origin", cache: "no-store" };
    if (json !== undefined) {
      init.body = JSON.stringify(json);
      init.headers["Content-Type"] = "application/json";
    } else if (body !== undefined) {
      init.body = body;
    }
    if (method !== "GET" && this.csrf) init.headers["X-CSRFToken"] = this.csrf;
    let res;
    try {
      res = await this.fetch(this.origin + path, init);
    } catch (err) {
      throw new NetworkError(String(err && err.message ? err.message : err));
    }
    if (res.status === 401) throw new LoginRequired();
    if (res.redirected && /\/login(\?|$)/.test(res.url || "")) throw new LoginRequired();
    let data = null;
    const type = (res.headers && res.headers.get && res.headers.get("Content-Type")) || "";
    if (type.includes("json")) {
      try { data = await res.json(); } catch (_) { data = null; }
    }
    if (!res.ok) throw new HttpError(res.status, data);
    return data;
  }

  /** A state-changing request; an expired CSRF token is fetched again and the request retried once. */
  async send(method, path, options) {
    if (!this.csrf) await this.fetchCsrf();
    try {
      return await this.request(method, path, options);
    } catch (err) {
      if (!(err instanceof HttpError && err.status === 400 && err.body.error === "csrf")) throw err;
      await this.fetchCsrf();
      return this.request(method, path, options);
    }
  }

  async fetchCsrf() {
    const data = await this.request("GET", `${API}/csrf`);
    this.csrf = data && data.csrf_token;
  }

  // ---- running ----------------------------------------------------------------------------------

  /** Runs a sync now (or right after the one already running); resolves with {ok, error?}. */
  run(reason = "manual") {
    if (this.timer) { this.clearTimer(this.timer); this.timer = null; }
    if (this.current) {
      this.again = true;
      return this.current;
    }
    this.current = (async () => {
      let result;
      do {
        this.again = false;
        result = await this.runOnce(reason);
      } while (this.again && result.ok);
      return result;
    })().finally(() => { this.current = null; });
    return this.current;
  }

  async runOnce(reason) {
    if (!this.isOnline()) {
      this.emit({ offline: true });
      await this.refreshCounts();
      return { ok: false, offline: true };
    }
    this.emit({ running: true, offline: false, phase: "connecting", nextRetryAt: null });
    try {
      const forms = await this.bootstrap();
      this.emit({ phase: "sending" });
      await this.push();
      await this.uploadAll();
      this.emit({ phase: "receiving" });
      // What is received is independent: fetched side by side (on 3G each round trip is a
      // noticeable wait, and a first sync would otherwise chain half a dozen of them).
      const pullStarted = isoNow(this.now());
      await Promise.all([
        this.downloadForms(forms),
        // Everything sent before this pull started is reflected in the households (visits.js).
        this.pullHouseholds().then(() => this.db.put("meta", "pulledAt", pullStarted)),
        this.pullSubmissions(),
      ]);
      await this.fetchReturnedThumbnails();
      const lastSync = isoNow(this.now());
      await this.db.put("meta", "lastSync", lastSync);
      this.failures = 0;
      this.emit({ lastSync, error: null, needsLogin: false });
      await this.refreshCounts();
      this.schedule(this.status.pending > 0 ? backoffDelay(3, { random: this.random }) : PERIODIC_MS);
      return { ok: true, reason };
    } catch (err) {
      if (err instanceof LoginRequired) {
        this.csrf = null;
        this.emit({ needsLogin: true, error: { zh: "请先登录，登录后自动继续同步", en: "Please log in; sync resumes after login" } });
        return { ok: false, error: err };
      }
      this.failures += 1;
      const delay = backoffDelay(this.failures, { random: this.random });
      this.schedule(delay);
      this.emit({ error: describeError(err), offline: err instanceof NetworkError && !this.isOnline() });
      return { ok: false, error: err, retryIn: delay };
    } finally {
      this.emit({ running: false, phase: null });
      await this.refreshCounts().catch(() => {});
    }
  }

  schedule(ms) {
    if (this.timer) this.clearTimer(this.timer);
    this.timer = this.setTimer(() => { this.timer = null; this.run("timer"); }, ms);
    this.emit({ nextRetryAt: new Date(this.now().getTime() + ms).toISOString() });
  }

  stop() {
    if (this.timer) { this.clearTimer(this.timer); this.timer = null; }
  }

  // ---- bootstrap and forms ----------------------------------------------------------------------

  async bootstrap() {
    const data = await this.request("GET", `${API}/bootstrap`);
    this.csrf = data.csrf_token || this.csrf;
    const previous = await this.db.get("meta", "user");
    const user = data.user || {};
    await this.db.tx(["meta", "households"], "readwrite", async (o) => {
      if (previous && previous.id !== user.id) {
        // Another cadre on this phone: their households are not in this one's scope.
        await o.clear("households");
        await o.delete("meta", "cursor");
        await o.delete("meta", "submissionsCursor");
        await o.delete("meta", "pulledAt");
      }
      await o.put("meta", "user", user);
      await o.put("meta", "villages", data.villages || []);
      await o.put("meta", "forms", data.forms || []);
      await o.put("meta", "settings", data.settings || {});
    });
    this.user = user;
    this.catalogCache = null; // the current versions may have changed
    // A new data epoch (a restore on the server): pull everything again, re-send what it lacks.
    if (typeof data.epoch === "string" && data.epoch) {
      const mine = await this.db.get("meta", "epoch");
      if (!mine) await this.db.put("meta", "epoch", data.epoch);
      else if (mine !== data.epoch) await this.resync(data.epoch);
    }
    return data.forms || [];
  }

  /** Downloads the definitions the phone does not hold yet (each version once). */
  async downloadForms(forms) {
    for (const f of forms) {
      const key = `form:${f.id}:${f.version}`;
      const have = await this.db.get("meta", key);
      if (have && have.sha256 === f.sha256) continue;
      const definition = await this.request("GET", `${API}/forms/${encodeURIComponent(f.id)}?version=${f.version}`);
      await this.db.put("meta", key, { id: f.id, version: f.version, sha256: f.sha256, definition });
      this.status.dataVersion += 1;
      this.catalogCache = null;
    }
  }

  /** The form definition (the current version unless one is named), or null when not downloaded. */
  async formDefinition(id, version = null) {
    let v = version;
    if (v === null) {
      const forms = (await this.db.get("meta", "forms")) || [];
      const current = forms.find((f) => f.id === id);
      if (!current) return null;
      v = current.version;
    }
    const stored = await this.db.get("meta", `form:${id}:${v}`);
    return stored ? stored.definition : null;
  }

  /**
   * An older version of a form this phone never downloaded (a draft or a returned visit made on
   * it), fetched and kept; null when offline or unknown to the server.
   */
  async fetchDefinition(id, version) {
    try {
      const definition = await this.request("GET", `${API}/forms/${encodeURIComponent(id)}?version=${version}`);
      if (!definition || definition.version !== version) return null;
      await this.db.put("meta", `form:${id}:${version}`, { id, version, sha256: null, definition });
      this.catalogCache = null;
      return definition;
    } catch (err) {
      if (err instanceof LoginRequired) throw err;
      return null;
    }
  }

  /**
   * Every stored definition, for synchronous look-ups: {get(id, version), current(id), forms}.
   * Read from the database once and kept (every screen asks; definitions are the largest thing
   * in the meta store), until a sync or a fetch stores new ones.
   */
  catalog() {
    if (!this.catalogCache) this.catalogCache = this.readCatalog().catch((err) => { this.catalogCache = null; throw err; });
    return this.catalogCache;
  }

  async readCatalog() {
    const [forms, meta] = await Promise.all([this.db.get("meta", "forms"), this.db.all("meta")]);
    const byKey = new Map();
    for (const v of meta) {
      if (v && v.definition && v.id && Number.isInteger(v.version)) byKey.set(`${v.id}:${v.version}`, v.definition);
    }
    const currentVersion = new Map((forms || []).map((f) => [f.id, f.version]));
    return {
      forms: forms || [],
      get: (id, version) => byKey.get(`${id}:${version}`) || null,
      current: (id) => byKey.get(`${id}:${currentVersion.get(id)}`) || null,
      currentVersion: (id) => currentVersion.get(id) ?? null,
    };
  }

  /** A photo of one of the cadre's submissions from the server (a Blob; `thumb`: a small copy), or null. */
  async fetchPhoto(submissionUuid, name, { thumb = false } = {}) {
    if (!this.isOnline()) return null;
    try {
      const res = await this.fetch(`${this.origin}${API}/submissions/${encodeURIComponent(submissionUuid)}/attachments/${encodeURIComponent(name)}${thumb ? "?thumb=1" : ""}`,
        { credentials: "same-origin", cache: "no-store" });
      const type = (res.headers && res.headers.get && res.headers.get("Content-Type")) || "";
      return res.ok && /^image\//.test(type) ? await res.blob() : null;
    } catch (_) {
      return null;
    }
  }

  // ---- outbox -----------------------------------------------------------------------------------

  /** Moves a finished draft to the outbox in one transaction (the draft is gone only if queued). */
  async submitDraft(draft, definition, household) {
    const settings = (await this.db.get("meta", "settings")) || {};
    const item = await makeOutboxItem(this.db, draft, definition, {
      household, userId: this.user ? this.user.id : null, settings, now: this.now(),
    });
    await this.db.tx(["drafts", "outbox"], "readwrite", async (o) => {
      await o.put("outbox", item.uuid, item);
      await o.delete("drafts", draft.id);
    });
    await this.refreshCounts();
    return item;
  }

  /**
   * Turns a refused item back into a draft (one transaction) so the cadre can fix and submit it
   * again; the server's errors travel with it. A refusal stores nothing on the server, so the
   * uuid is kept, unless the refusal was that the uuid is taken ("used with other content").
   */
  async reopen(itemUuid, now = this.now()) {
    const draft = await this.db.tx(["outbox", "drafts"], "readwrite", async (o) => {
      const item = await o.get("outbox", itemUuid);
      if (!item || item.state !== "refused") return null;
      const uuidTaken = (item.errors || []).some((e) => e.field === "uuid");
      const d = {
        id: uuidTaken ? newUuid() : item.uuid,
        form: item.form,
        form_version: item.form_version,
        household_id: item.household_id,
        base_version: item.base_version,
        created_at: item.created_at,
        updated_at: isoNow(now),
        answers: item.answers,
        supersedes: item.supersedes || null,
        followups: item.followups || null,
        server_errors: (item.errors || []).filter((e) => e.field !== "uuid"),
      };
      await o.delete("outbox", itemUuid);
      await o.put("drafts", d.id, d);
      return d;
    });
    await this.refreshCounts();
    return draft;
  }

  /** Drops a refused item the cadre gave up on, with its photos. */
  async discard(itemUuid) {
    await this.db.tx(["outbox", "photos"], "readwrite", async (o) => {
      const item = await o.get("outbox", itemUuid);
      if (!item) return;
      if (item.state !== "refused") throw new Error("only a refused item can be discarded");
      await o.delete("outbox", itemUuid);
      await Promise.all((item.attachments || []).map((a) => o.delete("photos", a.name)));
    });
    await this.refreshCounts();
  }

  async setState(itemUuid, changes) {
    return this.db.update("outbox", itemUuid, (item) => (item ? { ...item, ...(typeof changes === "function" ? changes(item) : changes) } : undefined));
  }

  async push() {
    const all = await this.db.all("outbox");
    let items = all.filter((i) => (i.state === "waiting" || i.state === "sending") && this.belongsToUser(i))
      .sort((a, b) => compareText(a.queued_at, b.queued_at));
    let size = this.batchSize;
    while (items.length) {
      const batch = items.slice(0, size);
      for (const item of batch) await this.setState(item.uuid, (i) => ({ state: "sending", attempts: (i.attempts || 0) + 1 }));
      await this.refreshCounts();
      let data;
      try {
        data = await this.send("POST", `${API}/submissions`, { json: { submissions: batch.map(wireItem) } });
      } catch (err) {
        if (err instanceof HttpError && err.status === 413) {
          if (batch.length > 1) {
            for (const item of batch) await this.setState(item.uuid, { state: "waiting" });
            size = Math.max(1, Math.floor(batch.length / 2));
            continue;
          }
          await this.setState(batch[0].uuid, {
            state: "refused",
            errors: [{ field: "", message: serverMessage(err.body, { zh: "内容太大，无法上传", en: "Too large to send" }) }],
          });
          items = items.slice(1);
          continue;
        }
        for (const item of batch) await this.setState(item.uuid, { state: "waiting", last_error: describeError(err) });
        throw err;
      }
      await this.applyResults(batch, (data && data.results) || []);
      items = items.slice(batch.length);
    }
  }

  async applyResults(batch, results) {
    for (let i = 0; i < batch.length; i++) {
      const item = batch[i];
      const r = results[i];
      if (!r || (r.uuid && r.uuid.toLowerCase() !== item.uuid.toLowerCase())) {
        await this.setState(item.uuid, { state: "waiting" });
        continue;
      }
      if (r.status === "created" || r.status === "duplicate") {
        const sentAt = isoNow(this.now());
        const stored = await this.setState(item.uuid, { state: "uploading", errors: [], last_error: null, sent_at: sentAt });
        if (stored && !(stored.attachments || []).some((a) => !a.uploaded && !a.failed)) await this.moveToSent(stored);
      } else {
        await this.setState(item.uuid, { state: "refused", errors: normalizeErrors(r.errors), refused_at: isoNow(this.now()) });
      }
    }
  }

  /** The item is on the server: it becomes a sent record (its photos stay, see records.js). */
  async moveToSent(item) {
    const record = sentRecord({ ...item, user_id: item.user_id || (this.user && this.user.id) || null }, this.now());
    await this.db.tx(["outbox", "sent"], "readwrite", async (o) => {
      await o.delete("outbox", item.uuid);
      await o.put("sent", item.uuid, record);
      if (record.supersedes) {
        // The visit it corrects is now superseded on the server; say so before the next pull does.
        const old = await o.get("sent", record.supersedes);
        if (old) await o.put("sent", old.uuid, { ...old, superseded_by: record.uuid });
      }
    });
  }

  /** Uploads every attachment not yet on the server; each success is recorded at once (resumable). */
  async uploadAll() {
    const items = (await this.db.all("outbox")).filter((i) => i.state === "uploading" && this.belongsToUser(i));
    for (const item of items) {
      for (const att of item.attachments || []) {
        if (att.uploaded || att.failed) continue;
        const outcome = await this.uploadOne(item, att);
        await this.setState(item.uuid, (cur) => ({
          attachments: cur.attachments.map((a) => (a.name === att.name ? { ...a, ...outcome } : a)),
        }));
      }
      const fresh = await this.db.get("outbox", item.uuid);
      if (fresh && !fresh.attachments.some((a) => !a.uploaded && !a.failed)) await this.moveToSent(fresh);
    }
  }

  async uploadOne(item, att) {
    const blob = await this.db.get("photos", att.name);
    if (!blob) return { failed: { zh: "手机上找不到这张照片", en: "The photo is missing on this phone" } };
    const path = `${API}/submissions/${encodeURIComponent(item.uuid)}/attachments/${encodeURIComponent(att.name)}`;
    try {
      await this.send("PUT", path, { body: blob, headers: { "X-Content-SHA256": att.sha256, "Content-Type": att.type } });
      return { uploaded: true, failed: null };
    } catch (err) {
      if (!(err instanceof HttpError)) throw err;
      if (err.status === 400 && err.body.error === "checksum_mismatch") {
        // Bytes damaged on the way: retry later, unless the phone's own copy no longer matches.
        if ((await sha256Hex(blob)) === att.sha256) throw err;
      } else if (![404, 409, 413, 415].includes(err.status)) {
        throw err;
      }
      return { failed: serverMessage(err.body, { zh: "照片上传被拒绝", en: "The photo was refused" }) };
    }
  }

  // ---- households and reviews ------------------------------------------------------------------

  async pullHouseholds() {
    let since = (await this.db.get("meta", "cursor")) || 0;
    for (let page = 0; page < 100000; page++) {
      const data = await this.request("GET", `${API}/households?since=${since}&limit=${this.pageSize}${await this.epochParam()}`);
      if (data && data.reset && since > 0) { // the server went back (a restore): again from 0
        since = await this.resetPull(data.epoch);
        continue;
      }
      const list = (data && data.households) || [];
      if (!list.length) break;
      this.status.dataVersion += 1;
      const last = list.length < this.pageSize; // a short page is the end: no round trip to learn it
      const next = Number.isInteger(data.next) ? data.next : Math.max(since, ...list.map((h) => h.seq || 0));
      // The cursor moves with the last batch: a pull cut short fetches the page again (puts repeat harmlessly).
      const parts = batches(list);
      for (const [i, part] of parts.entries()) {
        await this.db.tx(["households", "meta"], "readwrite", async (o) => {
          await Promise.all(part.map((h) => o.put("households", h.id, h)));
          if (i === parts.length - 1) await o.put("meta", "cursor", next);
        });
      }
      if (last || next <= since) break;
      since = next;
    }
  }

  async epochParam() {
    const epoch = await this.db.get("meta", "epoch");
    return epoch ? `&epoch=${encodeURIComponent(epoch)}` : "";
  }

  /** The server's data went back (a restore): epoch.js resyncs (once, however many ask at once). */
  async resync(epoch) {
    if (!this.resyncing) {
      this.resyncing = epochModule().then((m) => m.resync(this, epoch)).finally(() => { this.resyncing = null; });
    }
    await this.resyncing;
  }

  /** A pull answered "reset": resync, pull from 0, and sync once more to send what it re-queued. */
  async resetPull(epoch) {
    await this.resync(epoch);
    this.again = true;
    return 0;
  }

  /**
   * The cadre's own submissions changed since the last pull (GET /submissions?since=SEQ): review
   * decisions and photos received for sent records, and visits the phone does not hold (sent
   * from another phone, or before a reinstall) added, so a returned visit is listed and can be
   * fixed offline. Sent records older than KEEP_SENT_MS are forgotten, unless still to be fixed.
   */
  async pullSubmissions() {
    if (!this.user) return;
    const now = this.now();
    let since = (await this.db.get("meta", "submissionsCursor")) || 0;
    for (let page = 0; page < 100000; page++) {
      const data = await this.request("GET", `${API}/submissions?since=${since}&limit=${SUBMISSIONS_PAGE}${await this.epochParam()}`);
      if (data && data.reset && since > 0) {
        since = await this.resetPull(data.epoch);
        continue;
      }
      const list = (data && data.submissions) || [];
      if (!list.length) break;
      this.status.dataVersion += 1;
      const last = list.length < SUBMISSIONS_PAGE;
      const next = Number.isInteger(data.next) ? data.next : Math.max(since, ...list.map((s) => s.seq || 0));
      const parts = batches(list.filter((sub) => sub && sub.uuid));
      if (!parts.length) await this.db.put("meta", "submissionsCursor", next);
      for (const [i, part] of parts.entries()) {
        await this.db.tx(["sent", "meta"], "readwrite", async (o) => {
          for (const sub of part) {
            const record = sentFromServer(await o.get("sent", sub.uuid), sub, now);
            if (!expired(record, now)) await o.put("sent", sub.uuid, record);
          }
          if (i === parts.length - 1) await o.put("meta", "submissionsCursor", next);
        });
      }
      if (last || next <= since) break;
      since = next;
    }
    const old = (await this.db.all("sent")).filter((s) => expired(s, now));
    if (old.length) await this.db.tx("sent", "readwrite", (o) => Promise.all(old.map((s) => o.delete("sent", s.uuid))));
  }

  /**
   * Thumbnails of returned visits whose photos this phone never had (sent from another phone, or
   * before a reset), so the returned list shows them offline. A few per sync; failures wait.
   */
  async fetchReturnedThumbnails() {
    const returned = (await this.db.all("sent")).filter((s) => s.review && s.review.state === "has_issues" && !s.superseded_by);
    let budget = THUMBS_PER_SYNC;
    for (const record of returned) {
      for (const att of record.attachments || []) {
        if (budget <= 0 || !att.received) continue;
        if ((await this.db.get("photos", thumbKey(att.name))) || (await this.db.get("photos", att.name))) continue;
        budget -= 1;
        const blob = await this.fetchPhoto(record.uuid, att.name, { thumb: true });
        if (blob) await this.db.put("photos", thumbKey(att.name), blob);
      }
    }
  }
}

function expired(record, now) {
  const toFix = record.review && record.review.state === "has_issues" && !record.superseded_by;
  return !toFix && now - new Date(record.sent_at || 0) > KEEP_SENT_MS;
}

/** A short {zh, en} description of why a sync failed, for the status line. */
export function describeError(err) {
  if (err instanceof NetworkError) return { zh: "网络不通，稍后自动重试", en: "No connection; will retry" };
  if (err instanceof HttpError) {
    return serverMessage(err.body, { zh: `服务器错误（${err.status}），稍后自动重试`, en: `Server error (${err.status}); will retry` });
  }
  return { zh: `同步出错：${err && err.message}`, en: `Sync error: ${err && err.message}` };
}
