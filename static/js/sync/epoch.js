// After a restore the server holds an older picture of the data and says so with a new data epoch
// (DESIGN "Restore and first run"): bootstrap carries "epoch", and a pull whose cursor is ahead of
// the server answers "reset": true. The phone then pulls everything again (its cursors go back to
// 0) and re-sends every visit and photo the server lacks from what it still holds: it asks
// POST /submissions/known which of its sent visits the server has, puts the others back in the
// outbox (answers, photos and all) and marks the photos the server is missing to upload again.
// DOM-free, like the other parts: `parts` are the engine's {db, transport, now, session, outbox}.

import { isoNow } from "../util.js";
import { sha256Hex } from "./outbox.js";
import { API } from "./transport.js";

const KNOWN_CHUNK = 500; // uuids per question (the server takes up to 1000)
const typeOf = (name, blob) => (blob && blob.type) || (/\.png$/i.test(name) ? "image/png" : "image/jpeg");

/** Which of `uuids` the server holds: Map uuid -> the names of its photos it has not received. */
async function askKnown(transport, uuids) {
  const known = new Map();
  for (let i = 0; i < uuids.length; i += KNOWN_CHUNK) {
    const data = await transport.send("POST", `${API}/submissions/known`, { json: { uuids: uuids.slice(i, i + KNOWN_CHUNK) } });
    for (const k of (data && data.known) || []) known.set(k.uuid, k.missing || []);
  }
  return known;
}

/** An attachment as the wire declares it, from what the record kept or from the photo itself. */
async function declare(db, att) {
  if (att.sha256 && att.size && att.type) return { name: att.name, sha256: att.sha256, size: att.size, type: att.type };
  const blob = await db.get("photos", att.name);
  if (!blob) return null; // gone from the phone: the server will say the answer names a missing photo
  return { name: att.name, sha256: await sha256Hex(blob), size: blob.size, type: typeOf(att.name, blob) };
}

/** A sent record back in the outbox, to be sent again as it was (same uuid, answers, photos). */
async function requeued(db, record, now, missing = null) {
  const attachments = [];
  for (const att of record.attachments || []) {
    const d = await declare(db, att);
    if (!d) continue;
    const upload = missing === null || missing.includes(att.name);
    attachments.push({ ...d, uploaded: !upload, failed: null });
  }
  const item = {
    uuid: record.uuid, form: record.form, form_version: record.form_version,
    household_id: record.household_id, created_at: record.created_at, answers: record.answers,
    attachments, supersedes: record.supersedes || null, followups: record.followups || null,
    state: missing === null ? "waiting" : "uploading", errors: [], attempts: 0,
    user_id: record.user_id || null,
    // before anything queued since, in the order they were first sent (an original before its correction)
    queued_at: record.sent_at || record.created_at || isoNow(now),
    sent_at: record.sent_at || null, resent_at: isoNow(now),
  };
  if (Number.isInteger(record.base_version)) item.base_version = record.base_version;
  return item;
}

/**
 * The server went back in time: cursors to 0, and everything this phone sent that the server
 * lacks back in the outbox (photos the server lacks marked to upload again). The new epoch is
 * kept only once all that is done, so an interrupted resync runs again at the next contact.
 */
export async function resync({ db, transport, now, outbox }, epoch) {
  const at = now();
  await db.tx("meta", "readwrite", async (o) => {
    await o.delete("meta", "cursor");
    await o.delete("meta", "submissionsCursor");
  });
  const sent = (await db.all("sent")).filter((s) => outbox.mine(s));
  const uploading = (await db.all("outbox")).filter((i) => i.state === "uploading" && outbox.mine(i));
  const known = await askKnown(transport, [...sent.map((s) => s.uuid), ...uploading.map((i) => i.uuid)]);
  for (const record of sent) {
    const missing = known.get(record.uuid);
    if (missing && !missing.length) continue; // the server has it whole
    const hasPhotos = missing && (await Promise.all(missing.map((n) => db.get("photos", n)))).some(Boolean);
    if (missing && !hasPhotos) continue; // held, but the phone has none of the photos it lacks
    const item = await requeued(db, record, at, missing || null);
    await db.tx(["outbox", "sent"], "readwrite", async (o) => {
      await o.put("outbox", item.uuid, item);
      await o.delete("sent", record.uuid);
    });
  }
  for (const item of uploading) {
    const missing = known.get(item.uuid);
    await outbox.setState(item.uuid, (cur) => ({
      state: missing ? "uploading" : "waiting",
      attachments: (cur.attachments || []).map((a) => ({ ...a, uploaded: missing ? !missing.includes(a.name) : false, failed: null })),
    }));
  }
  if (typeof epoch === "string" && epoch) await db.put("meta", "epoch", epoch);
  await outbox.changed();
}
