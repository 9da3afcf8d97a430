// Household edits made offline (the plots, issue 25): an outbox item of their own kind, one per
// household, sent as PUT /api/v1/households/<id> and kept until the server answers 200. A clash
// the server recorded becomes a notice; a 4xx keeps the item, refused, with the server's words.

import { isoNow } from "../util.js";
import { API, HttpError, serverMessage } from "./transport.js";

export const EDIT_KIND = "household_edit";
export const editKey = (id) => `edit:${id}`;
export const noticeKey = (id) => `edit-notice:${id}`;
export const isEdit = (item) => !!item && item.kind === EDIT_KIND;
// What the server takes of a plot (server/records/households.py PLOT_FIELDS): nothing local.
export const PLOT_FIELDS = ["name", "area_mu", "east", "west", "south", "north", "contract_signed",
  "id", "code", "contract_no", "state", "note"];

/** Queues `changes` and puts them on the local copy (one transaction); a second edit keeps the first's base. */
export async function queueEdit(db, household, changes, { userId = null, now = new Date() } = {}) {
  const id = household.id;
  const wire = { ...changes };
  if (wire.plots) wire.plots = wire.plots.map((p) => Object.fromEntries(PLOT_FIELDS.filter((f) => p[f] !== undefined).map((f) => [f, p[f]])));
  return db.tx(["outbox", "households"], "readwrite", async (o) => {
    const old = await o.get("outbox", editKey(id));
    const local = (await o.get("households", id)) || household;
    const at = isoNow(now);
    const item = {
      uuid: editKey(id), kind: EDIT_KIND, household_id: id, user_id: userId, state: "waiting", errors: [],
      base_version: old ? old.base_version : local.version,
      changes: { ...(old && old.changes), ...wire },
      before: old ? old.before : Object.fromEntries(Object.keys(wire).map((k) => [k, local[k] === undefined ? null : local[k]])),
      rev: ((old && old.rev) || 0) + 1, attempts: (old && old.attempts) || 0,
      queued_at: old ? old.queued_at : at, edited_at: at,
    };
    await o.put("outbox", item.uuid, item);
    await o.put("households", id, { ...local, ...wire });
    return item;
  });
}

/** The household as the phone shows it: its copy with an unsent edit over it. */
export const withPendingEdit = (hh, item) => (hh && isEdit(item) && item.state !== "refused" ? { ...hh, ...item.changes } : hh);

/** The server's errors; the field ("plots.1.code") names the row and column. */
function errorsOf(body) {
  const fallback = serverMessage(body, { zh: "服务器拒绝了这次修改", en: "The server refused this edit" });
  return ((body && body.errors) || [body]).slice(0, 50).map((e) => ({
    field: (e && e.field) || "", message: e && e.zh ? { zh: e.zh, en: e.en || e.zh } : serverMessage(e, fallback),
  }));
}

/** Sends the edits waiting; a network or server failure is thrown (the sync retries). */
export async function pushEdits(outbox) {
  const { db, transport } = outbox;
  const items = (await db.all("outbox")).filter((i) => isEdit(i) && ["waiting", "sending"].includes(i.state) && outbox.mine(i))
    .sort((a, b) => (a.queued_at < b.queued_at ? -1 : 1));
  for (const item of items) {
    await outbox.setState(item.uuid, (i) => ({ state: "sending", attempts: (i.attempts || 0) + 1 }));
    await outbox.changed();
    let data;
    try {
      const json = { changes: item.changes };
      if (Number.isInteger(item.base_version)) json.base_version = item.base_version;
      data = await transport.send("PUT", `${API}/households/${encodeURIComponent(item.household_id)}`, { json });
    } catch (err) {
      const refused = err instanceof HttpError && err.status >= 400 && err.status < 500 && ![403, 408, 429].includes(err.status);
      await outbox.setState(item.uuid, refused ? { state: "refused", errors: errorsOf(err.body) } : { state: "waiting" });
      if (refused) continue;
      throw err;
    }
    await settle(db, item, data || {}, outbox.now());
  }
  await outbox.changed();
}

/** The server took the edit: the item goes (unless edited again meanwhile), its answer is kept. */
async function settle(db, sent, { household, clash }, now) {
  await db.tx(["outbox", "households", "meta"], "readwrite", async (o) => {
    const current = await o.get("outbox", sent.uuid);
    const again = current && current.rev !== sent.rev;
    // edited again meanwhile: that goes next, on top of this version
    if (again) await o.put("outbox", sent.uuid, { ...current, state: "waiting", base_version: household ? household.version : current.base_version });
    else if (current) await o.delete("outbox", sent.uuid);
    if (household) await o.put("households", household.id, again ? { ...household, ...current.changes } : household);
    if (clash) await o.put("meta", noticeKey(sent.household_id), { kind: clash.kind, fields: clash.fields || [], at: isoNow(now) });
  });
}

/** Gives a refused edit up: the copy gets back what it held, unless the server sent a newer one. */
export async function discardEdit(db, itemUuid) {
  await db.tx(["outbox", "households"], "readwrite", async (o) => {
    const item = await o.get("outbox", itemUuid);
    if (!isEdit(item)) return;
    await o.delete("outbox", itemUuid);
    const local = await o.get("households", item.household_id);
    if (local && local.version === item.base_version) await o.put("households", local.id, { ...local, ...item.before });
  });
}
