// What the phone receives: who the cadre is and what the server offers (bootstrap), the village's
// households and the cadre's own submissions with their review decisions (each pulled by a seq
// cursor, page after page), and thumbnails of returned visits whose photos the phone never had.

import { thumbKey } from "../records.js";
import { isoNow } from "../util.js";
import { normalizeReview } from "./outbox.js";
import { API } from "./transport.js";

const KEEP_SENT_MS = 180 * 24 * 3600 * 1000; // sent visits are shown this long (the server keeps them)
const SUBMISSIONS_PAGE = 200;
const THUMBS_PER_SYNC = 20;
// Records written per IndexedDB transaction while pulling: each write copies its records on the
// main thread, so small batches keep a cheap phone responsive while a village downloads.
const WRITE_BATCH = 10;

/** [0, n), [n, 2n) ... of a list. */
const batches = (list, n = WRITE_BATCH) => Array.from({ length: Math.ceil(list.length / n) }, (_, i) => list.slice(i * n, (i + 1) * n));

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

function expired(record, now) {
  const toFix = record.review && record.review.state === "has_issues" && !record.superseded_by;
  return !toFix && now - new Date(record.sent_at || 0) > KEEP_SENT_MS;
}

export class Pull {
  /**
   * options: db, transport, now() -> Date, isOnline() -> bool, pageSize (households per GET),
   * session ({user}: set by bootstrap), stored() (called when a page was kept: screens redraw).
   */
  constructor({ db, transport, now, isOnline, pageSize, session, stored, reset = async () => {} }) {
    this.db = db;
    this.transport = transport;
    this.now = now;
    this.isOnline = isOnline;
    this.pageSize = pageSize;
    this.session = session;
    this.stored = stored;
    this.reset = reset; // a pull answered "reset": the server's data went back (sync/epoch.js)
    this.epoch = null; // the data epoch the last bootstrap named
  }

  /** Who is signed in, their villages, the current forms and settings; returns the forms list. */
  async bootstrap() {
    const data = await this.transport.request("GET", `${API}/bootstrap`);
    this.transport.csrf = data.csrf_token || this.transport.csrf;
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
    this.session.user = user;
    this.epoch = data.epoch || null;
    return data.forms || [];
  }

  /** The phone's data epoch for a pull, so the server can tell it to start again. */
  async epochParam() {
    const epoch = await this.db.get("meta", "epoch");
    return epoch ? `&epoch=${encodeURIComponent(epoch)}` : "";
  }

  async households() {
    let since = (await this.db.get("meta", "cursor")) || 0;
    for (let page = 0; page < 100000; page++) {
      const data = await this.transport.request("GET", `${API}/households?since=${since}&limit=${this.pageSize}${await this.epochParam()}`);
      if (data && data.reset && since > 0) { // the server's data went back: again from 0
        await this.reset(data.epoch);
        since = 0;
        continue;
      }
      const list = (data && data.households) || [];
      if (!list.length) break;
      this.stored();
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

  /**
   * The cadre's own submissions changed since the last pull (GET /submissions?since=SEQ): review
   * decisions and photos received for sent records, and visits the phone does not hold (sent
   * from another phone, or before a reinstall) added, so a returned visit is listed and can be
   * fixed offline. Sent records older than KEEP_SENT_MS are forgotten, unless still to be fixed.
   */
  async submissions() {
    if (!this.session.user) return;
    const now = this.now();
    let since = (await this.db.get("meta", "submissionsCursor")) || 0;
    for (let page = 0; page < 100000; page++) {
      const data = await this.transport.request("GET", `${API}/submissions?since=${since}&limit=${SUBMISSIONS_PAGE}${await this.epochParam()}`);
      if (data && data.reset && since > 0) {
        await this.reset(data.epoch);
        since = 0;
        continue;
      }
      const list = (data && data.submissions) || [];
      if (!list.length) break;
      this.stored();
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

  /** A photo of one of the cadre's submissions from the server (a Blob; `thumb`: a small copy), or null. */
  async photo(submissionUuid, name, { thumb = false } = {}) {
    if (!this.isOnline()) return null;
    return this.transport.image(`${API}/submissions/${encodeURIComponent(submissionUuid)}/attachments/${encodeURIComponent(name)}${thumb ? "?thumb=1" : ""}`);
  }

  /**
   * Thumbnails of returned visits whose photos this phone never had (sent from another phone, or
   * before a reset), so the returned list shows them offline. A few per sync; failures wait.
   */
  async returnedThumbnails() {
    const returned = (await this.db.all("sent")).filter((s) => s.review && s.review.state === "has_issues" && !s.superseded_by);
    let budget = THUMBS_PER_SYNC;
    for (const record of returned) {
      for (const att of record.attachments || []) {
        if (budget <= 0 || !att.received) continue;
        if ((await this.db.get("photos", thumbKey(att.name))) || (await this.db.get("photos", att.name))) continue;
        budget -= 1;
        const blob = await this.photo(record.uuid, att.name, { thumb: true });
        if (blob) await this.db.put("photos", thumbKey(att.name), blob);
      }
    }
  }
}
