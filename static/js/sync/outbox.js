// The outbox: finished drafts queued with their attachments described, sent in batches, and the
// server's answer per item applied. An item leaves the outbox only when the server answered
// "created" or "duplicate" AND every attachment it declares has been uploaded (or refused for good,
// uploads.js); "rejected" keeps it, with the server's errors, for the cadre to fix and send again.
// A sent item's photos stay on the phone (records.js decides how long), so a visit the supervisor
// returns can be fixed with them.

import { onDemand } from "../on-demand.js";
import { compareText, isoNow, normalizePath, uuid as newUuid } from "../util.js";
import { API, HttpError, describeError, serverMessage } from "./transport.js";
import { discardEdit, isEdit, pushEdits, queueEdit } from "./edits.js";

/** Outbox states: waiting (to send), sending (a request is out), uploading (stored, photos to go), refused. */
export const PENDING_STATES = new Set(["waiting", "sending", "uploading"]);

// What only submitting a form and sending photos need is loaded then, not before the first screen.
const answersModule = () => onDemand("answers.js");
export const sha256Hex = async (blob) => (await onDemand("sha256.js")).sha256Hex(blob);

function normalizeErrors(errors) {
  return (Array.isArray(errors) ? errors : []).map((e) => ({
    field: e && e.field ? normalizePath(e.field) : "",
    message: serverMessage(e, { zh: "内容有误", en: "Invalid" }),
  }));
}

/** The visit itself, as the contract names it: what the wire item and the sent record share. */
function visitFields({ uuid, form, form_version, household_id, created_at, answers }) {
  return { uuid, form, form_version, household_id, created_at, answers };
}

/** What goes over the wire for an outbox item: exactly the contract's fields, nothing local. */
export function wireItem(item) {
  const out = {
    ...visitFields(item),
    attachments: (item.attachments || []).map(({ name, sha256, size, type }) => ({ name, sha256, size, type })),
  };
  if (Number.isInteger(item.base_version)) out.base_version = item.base_version;
  if (item.supersedes) out.supersedes = item.supersedes;
  return out;
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

/** The sent-items record kept after an item leaves the outbox (to show its review state). */
function sentRecord(item, now) {
  return {
    ...visitFields(item),
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

export class Outbox {
  /**
   * options: db, transport, now() -> Date, batchSize (items per POST), session ({user}: whose
   * items these are), changed() (the counts may have changed: the status shows them).
   */
  constructor({ db, transport, now, batchSize, session, changed }) {
    this.db = db;
    this.transport = transport;
    this.now = now;
    this.batchSize = batchSize;
    this.session = session;
    this.changed = changed;
  }

  /** An item of the cadre signed in (items of another cadre on this phone wait for them). */
  mine(item) {
    const user = this.session.user;
    return !item.user_id || !user || item.user_id === user.id;
  }

  /** {pending, refused}: what the status line counts. */
  async counts() {
    const mine = (await this.db.all("outbox")).filter((i) => this.mine(i));
    return {
      pending: mine.filter((i) => PENDING_STATES.has(i.state)).length,
      refused: mine.filter((i) => i.state === "refused").length,
    };
  }

  /** Moves a finished draft to the outbox in one transaction (the draft is gone only if queued). */
  async submitDraft(draft, definition, household) {
    const settings = (await this.db.get("meta", "settings")) || {};
    const user = this.session.user;
    const item = await makeOutboxItem(this.db, draft, definition, {
      household, userId: user ? user.id : null, settings, now: this.now(),
    });
    await this.db.tx(["drafts", "outbox"], "readwrite", async (o) => {
      await o.put("outbox", item.uuid, item);
      await o.delete("drafts", draft.id);
    });
    await this.changed();
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
    await this.changed();
    return draft;
  }

  /** Queues a household edit made on the phone (sync/edits.js): one item per household. */
  async queueEdit(household, changes) {
    const user = this.session.user;
    const item = await queueEdit(this.db, household, changes, { userId: user ? user.id : null, now: this.now() });
    await this.changed();
    return item;
  }

  /** Drops a refused item the cadre gave up on, with its photos. */
  async discard(itemUuid) {
    if (isEdit(await this.db.get("outbox", itemUuid))) {
      await discardEdit(this.db, itemUuid);
      await this.changed();
      return;
    }
    await this.db.tx(["outbox", "photos"], "readwrite", async (o) => {
      const item = await o.get("outbox", itemUuid);
      if (!item) return;
      if (item.state !== "refused") throw new Error("only a refused item can be discarded");
      await o.delete("outbox", itemUuid);
      await Promise.all((item.attachments || []).map((a) => o.delete("photos", a.name)));
    });
    await this.changed();
  }

  async setState(itemUuid, changes) {
    return this.db.update("outbox", itemUuid, (item) => (item ? { ...item, ...(typeof changes === "function" ? changes(item) : changes) } : undefined));
  }

  /**
   * Sends what waits, oldest first, in batches (halved while the server finds one too large);
   * then the household edits (sync/edits.js), each its own PUT.
   */
  async push() {
    await this.pushSubmissions();
    await pushEdits(this);
  }

  async pushSubmissions() {
    const all = await this.db.all("outbox");
    let items = all.filter((i) => !isEdit(i) && (i.state === "waiting" || i.state === "sending") && this.mine(i))
      .sort((a, b) => compareText(a.queued_at, b.queued_at));
    let size = this.batchSize;
    while (items.length) {
      const batch = items.slice(0, size);
      for (const item of batch) await this.setState(item.uuid, (i) => ({ state: "sending", attempts: (i.attempts || 0) + 1 }));
      await this.changed();
      let data;
      try {
        data = await this.transport.send("POST", `${API}/submissions`, { json: { submissions: batch.map(wireItem) } });
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
    const user = this.session.user;
    const record = sentRecord({ ...item, user_id: item.user_id || (user && user.id) || null }, this.now());
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
}
