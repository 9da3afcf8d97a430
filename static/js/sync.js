// Sync with the server: the engine that runs the parts in order and keeps the status the app
// shows. The parts live in sync/: transport (fetch, CSRF, login, errors, backoff), outbox (queue,
// send, results), uploads (attachments), pull (bootstrap, households, the cadre's submissions,
// returned photos) and forms (definitions). What the first screen needs (the outbox's counts, the
// forms) comes with the app; pull and uploads, needed once a sync runs, are asked for while the
// first screen is drawn (on plain HTTP/1.1 each module at start costs part of a round trip).
// DOM-free: the database, fetch, clock and timers are injected, so `node --test` drives it with
// MemoryDatabase and a fake server.

import { onDemand } from "./on-demand.js";
import { isoNow } from "./util.js";
import { Forms } from "./sync/forms.js";
import { Outbox } from "./sync/outbox.js";
import { LoginRequired, NetworkError, Transport, backoffDelay, describeError } from "./sync/transport.js";

export { PENDING_STATES, wireItem } from "./sync/outbox.js";
export { backoffDelay } from "./sync/transport.js";

const PERIODIC_MS = 15 * 60 * 1000;

export class SyncEngine {
  /**
   * options: db (Database or MemoryDatabase), fetch, now() -> Date, random, isOnline() -> bool,
   * setTimeout/clearTimeout, batchSize (items per POST), pageSize (households per GET), origin,
   * gate(settings) (awaited after each bootstrap, before anything else is stored: the app PIN is
   * set there), loggedOut() (called when the server answers 401: a deactivated phone checks
   * whether it must erase itself).
   */
  constructor(options) {
    this.db = options.db;
    this.now = options.now || (() => new Date());
    this.random = options.random || Math.random;
    this.isOnline = options.isOnline || (() => !(globalThis.navigator && globalThis.navigator.onLine === false));
    this.setTimer = options.setTimeout || ((fn, ms) => setTimeout(fn, ms));
    this.clearTimer = options.clearTimeout || ((t) => clearTimeout(t));
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
    this.session = { user: null }; // the cadre signed in (from the database, then each bootstrap)
    this.transport = new Transport({ fetch: options.fetch || ((...args) => globalThis.fetch(...args)), origin: options.origin || "" });
    this.parts = { db: this.db, transport: this.transport, now: () => this.now(), session: this.session };
    this.stored = () => { this.status.dataVersion += 1; };
    this.pageSize = options.pageSize || 500;
    this.outbox = new Outbox({ ...this.parts, batchSize: options.batchSize || 20, changed: () => this.refreshCounts() });
    this.forms = new Forms({ ...this.parts, stored: this.stored });
    this.receiving = null; // a promise of {pull, uploads}, made when first needed
    this.gate = options.gate || null;
    this.loggedOut = options.loggedOut || null;
  }

  /** The parts only a sync (or a photo from the server) needs: loaded once, asked for again after a failure. */
  network() {
    if (!this.receiving) {
      this.receiving = Promise.all([onDemand("sync/pull.js"), onDemand("sync/uploads.js")]).then(([{ Pull }, { Uploads }]) => ({
        pull: new Pull({ ...this.parts, pageSize: this.pageSize, isOnline: () => this.isOnline(), stored: this.stored,
          reset: (epoch) => this.resync(epoch).then(() => { this.again = true; }) }),
        uploads: new Uploads({ ...this.parts, outbox: this.outbox }),
      })).catch((err) => {
        this.receiving = null;
        throw new NetworkError(String(err && err.message ? err.message : err)); // a module that did not arrive
      });
    }
    return this.receiving;
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
    this.session.user = user || null;
    this.network().catch(() => {}); // fetched while the first screen is drawn; a sync asks again
    await this.refreshCounts({ lastSync: lastSync || null });
  }

  async refreshCounts(extra = {}) {
    this.emit({ ...(await this.outbox.counts()), ...extra });
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
      const { pull, uploads } = await this.network();
      const forms = await pull.bootstrap();
      if (this.gate) await this.gate(this.session.settings || {});
      this.forms.forget(); // the current versions may have changed
      await this.noticeEpoch(pull.epoch);
      this.emit({ phase: "sending" });
      await this.outbox.push();
      await uploads.uploadAll();
      this.emit({ phase: "receiving" });
      // What is received is independent: fetched side by side (on 3G each round trip is a
      // noticeable wait, and a first sync would otherwise chain half a dozen of them).
      const pullStarted = isoNow(this.now());
      await Promise.all([
        this.forms.download(forms),
        // Everything sent before this pull started is reflected in the households (visits.js).
        pull.households().then(() => this.db.put("meta", "pulledAt", pullStarted)),
        pull.submissions(),
      ]);
      await pull.returnedThumbnails();
      const lastSync = isoNow(this.now());
      await this.db.put("meta", "lastSync", lastSync);
      this.failures = 0;
      this.emit({ lastSync, error: null, needsLogin: false });
      await this.refreshCounts();
      this.schedule(this.status.pending > 0 ? backoffDelay(3, { random: this.random }) : PERIODIC_MS);
      return { ok: true, reason };
    } catch (err) {
      if (err instanceof LoginRequired) {
        this.transport.loggedOut();
        if (this.loggedOut) Promise.resolve().then(this.loggedOut).catch((e) => console.warn(e));
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

  /**
   * The data epoch the server named at bootstrap: the first one is kept; another one means its
   * data went back (a restore): pull everything again and re-send what it lacks.
   */
  async noticeEpoch(epoch) {
    if (typeof epoch !== "string" || !epoch) return;
    const mine = await this.db.get("meta", "epoch");
    if (!mine) await this.db.put("meta", "epoch", epoch);
    else if (mine !== epoch) await this.resync(epoch);
  }

  /** sync/epoch.js resyncs after a restore: once, however many parts ask at the same time. */
  resync(epoch) {
    if (!this.resyncing) {
      this.resyncing = onDemand("sync/epoch.js")
        .then(({ resync }) => resync({ ...this.parts, outbox: this.outbox }, epoch))
        .finally(() => { this.resyncing = null; });
    }
    return this.resyncing;
  }

  schedule(ms) {
    if (this.timer) this.clearTimer(this.timer);
    this.timer = this.setTimer(() => { this.timer = null; this.run("timer"); }, ms);
    this.emit({ nextRetryAt: new Date(this.now().getTime() + ms).toISOString() });
  }

  stop() {
    if (this.timer) { this.clearTimer(this.timer); this.timer = null; }
  }

  // ---- what the screens ask of the parts ----------------------------------------------------------

  /** A GET (or, with send(), a state-changing request) to the server, as the sync makes them. */
  request(method, path, options) { return this.transport.request(method, path, options); }

  send(method, path, options) { return this.transport.send(method, path, options); }

  submitDraft(draft, definition, household) { return this.outbox.submitDraft(draft, definition, household); }

  reopen(itemUuid, now) { return this.outbox.reopen(itemUuid, now); }

  discard(itemUuid) { return this.outbox.discard(itemUuid); }

  queueEdit(household, changes) { return this.outbox.queueEdit(household, changes); }

  formDefinition(id, version = null) { return this.forms.definition(id, version); }

  fetchDefinition(id, version) { return this.forms.fetchDefinition(id, version); }

  catalog() { return this.forms.catalog(); }

  async fetchPhoto(submissionUuid, name, options) {
    if (!this.isOnline()) return null;
    try {
      return (await this.network()).pull.photo(submissionUuid, name, options);
    } catch (_) {
      return null; // pull.js not on the phone (offline before the app was kept): no photo, as offline
    }
  }
}
