// The app PIN (issue 24: a lost phone gives nothing away), DOM-free. Where the county requires it,
// every record the app keeps in IndexedDB is encrypted (vault.js) and the app shows the
// database's contents only while unlocked:
// - SealedDatabase (sealed.js, with vault.js's cryptography): the Database interface over encrypted
//   records, loaded on demand when a PIN is set or given, so a phone without one starts without it.
// - PhoneLock: the state (plain: no PIN, the app exactly as without the lock; locked; unlocked),
//   the lock record in localStorage (the wrapped key and how many wrong PINs in a row), and `db`,
//   the one database every module uses: it passes through to IndexedDB when there is no PIN and
//   waits while locked (nothing is dropped, nothing read).
// Ten wrong PINs erase the pulled data (households, forms, sent records, drafts, thumbnails). The
// outbox (and the full photos it may need) stays, encrypted: those visits were never sent, and the
// cadre's work is not lost to someone else's guesses. The PIN may be tried again only after a
// fresh login with the password (the old login is ended at the erase), then the outbox is sent.

import { LOCK_RECORD, STORES, gatedDatabase } from "./db.js";
import { onDemand } from "./on-demand.js";

/** The encryption's modules (sealed.js, vault.js): only when a PIN is set, given or changed. */
const sealing = () => onDemand("sealed.js");

const RECORD = LOCK_RECORD;
const FAILURES = "jiedui.lock.failures";
export const WRONG_PINS = 10;
export const IDLE_MINUTES = 5;
/** What ten wrong PINs erase; the outbox (and full photos) stay, encrypted. */
export const PULLED = ["households", "drafts", "sent", "meta"];

const noStorage = { getItem: () => null, setItem: () => {}, removeItem: () => {} };

export class PhoneLock {
  /**
   * options: raw (Database or MemoryDatabase), storage (localStorage), db (the app's
   * gatedDatabase(raw), made before this module was loaded; a new one when not given).
   */
  constructor({ raw, storage, db }) {
    this.raw = raw;
    this.storage = storage || noStorage;
    this.sealed = null; // a SealedDatabase while unlocked
    this.waiters = [];
    this.listeners = new Set();
    this.db = db || gatedDatabase(raw);
    this.db.gate.target = () => this.target();
  }

  read(key) {
    try { return JSON.parse(this.storage.getItem(key) || "null"); } catch (_) { return null; }
  }

  write(key, value) {
    if (value === null) this.storage.removeItem(key);
    else this.storage.setItem(key, JSON.stringify(value));
  }

  /** The lock record {v, salt, iv, wrapped, iterations, idle_minutes, wrong_pins, needs_login, ...}, or null. */
  get record() { return this.read(RECORD); }

  /** Whether the app keeps its data under a PIN. */
  get enabled() { return !!this.record; }

  get state() { return !this.enabled ? "plain" : this.sealed ? "unlocked" : "locked"; }

  get failures() { return Number(this.read(FAILURES)) || 0; }

  get wrongPinsLeft() { return Math.max(0, ((this.record || {}).wrong_pins || WRONG_PINS) - this.failures); }

  get idleMinutes() { return (this.record || {}).idle_minutes || IDLE_MINUTES; }

  onChange(fn) { this.listeners.add(fn); return () => this.listeners.delete(fn); }

  emit() { for (const fn of this.listeners) { try { fn(this.state); } catch (err) { console.error(err); } } }

  /** The database to run an operation on: IndexedDB as it is without a PIN; waits while locked. */
  async target() {
    while (this.enabled && !this.sealed) await new Promise((resolve) => this.waiters.push(resolve));
    return this.sealed || this.raw;
  }

  release() {
    const waiting = this.waiters;
    this.waiters = [];
    for (const resolve of waiting) resolve();
  }

  /**
   * The county's settings from the bootstrap: {required, idle_minutes, wrong_pins}. Kept on the
   * lock record when there is one; true when a PIN must be set now.
   */
  applySettings(settings) {
    const s = settings || {};
    const record = this.record;
    if (record) {
      const next = { ...record, idle_minutes: Number(s.idle_minutes) > 0 ? Number(s.idle_minutes) : record.idle_minutes,
        wrong_pins: Number.isInteger(s.wrong_pins) && s.wrong_pins > 0 ? s.wrong_pins : record.wrong_pins };
      this.write(RECORD, next);
      return false;
    }
    this.pendingSettings = s;
    return !!s.required;
  }

  /** Sets the PIN: a new data key; what the phone holds is encrypted under it, from now on. */
  async setup(pin, { iterations } = {}) {
    const s = this.pendingSettings || {};
    const { SealedDatabase, createKey } = await sealing();
    const { key, record } = await createKey(pin, { iterations });
    this.write(RECORD, { ...record, idle_minutes: Number(s.idle_minutes) > 0 ? Number(s.idle_minutes) : IDLE_MINUTES,
      wrong_pins: Number.isInteger(s.wrong_pins) && s.wrong_pins > 0 ? s.wrong_pins : WRONG_PINS });
    this.write(FAILURES, 0);
    // From here operations wait until the records are encrypted (a crash midway is finished at
    // the next unlock: plain records found then are encrypted then).
    this.sealed = await SealedDatabase.load(this.raw, key);
    this.release();
    this.emit();
  }

  /**
   * Unlocks with the PIN; WrongPin when it is not (each try is counted before it is made, so
   * closing the app mid-try gives no free guesses). The last wrong one erases the pulled data
   * (resolves {erased: true} instead of throwing).
   */
  async unlock(pin) {
    const record = this.record;
    if (!record) return {};
    if (record.needs_login) throw new Error("login needed");
    const { SealedDatabase, WrongPin, unwrapKey } = await sealing(); // before the try is counted
    const failures = this.failures + 1;
    this.write(FAILURES, failures);
    let key;
    try {
      key = await unwrapKey(record, pin);
    } catch (err) {
      if (!(err instanceof WrongPin)) throw err;
      if (failures >= (record.wrong_pins || WRONG_PINS)) {
        await this.erasePulled();
        return { erased: true };
      }
      throw err;
    }
    this.write(FAILURES, 0);
    this.sealed = await SealedDatabase.load(this.raw, key);
    this.release();
    this.emit();
    return {};
  }

  /** A new PIN: the data key is wrapped again under it; no record is re-encrypted. WrongPin when
   * the current PIN is not it. */
  async changePin(oldPin, newPin) {
    const record = this.record;
    if (!record || !this.sealed) throw new Error("locked");
    const { changePin } = await sealing();
    this.write(RECORD, { ...record, ...(await changePin(record, oldPin, newPin)) });
  }

  /** Forgets the key and the decrypted records: the app shows nothing until the PIN again. */
  lock() {
    if (!this.enabled || !this.sealed) return;
    this.sealed = null;
    this.emit();
  }

  /** Ten wrong PINs: the pulled data goes; the unsent visits stay encrypted until a fresh login. */
  async erasePulled() {
    this.sealed = null;
    for (const name of PULLED) await this.raw.clear(name);
    const thumbs = (await this.raw.keys("photos")).filter((k) => String(k).includes("#"));
    if (thumbs.length) await this.raw.tx("photos", "readwrite", (o) => Promise.all(thumbs.map((k) => o.delete("photos", k))));
    this.write(RECORD, { ...this.record, needs_login: true, logged_out: false, erased_at: new Date().toISOString() });
    this.write(FAILURES, 0);
    this.emit();
  }

  /** The old login was ended (POST /logout) after an erase: the next login is a fresh one. */
  markLoggedOut() {
    const record = this.record;
    if (record && record.needs_login) this.write(RECORD, { ...record, logged_out: true });
  }

  /** A fresh login after the erase: the PIN may be tried again (ten more times). */
  loginConfirmed() {
    const record = this.record;
    if (record && record.needs_login && record.logged_out) {
      const { needs_login: _n, logged_out: _l, ...rest } = record;
      this.write(RECORD, rest);
      this.write(FAILURES, 0);
      this.emit();
      return true;
    }
    return false;
  }

  /** Everything on the phone goes (an erase asked by the server): records, the lock record. */
  async eraseAll() {
    this.sealed = null;
    for (const name of STORES) await this.raw.clear(name);
    this.write(RECORD, null);
    this.write(FAILURES, null);
    this.release(); // waiting operations run on the empty, plain database
    this.emit();
  }
}
