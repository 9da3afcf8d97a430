// Attachments of items the server has stored: each photo sent once (PUT with its checksum),
// each success recorded at once so an interrupted sync resumes where it stopped; a photo the
// server refuses for good is marked failed, so its visit can still leave the outbox.

import { API, HttpError, serverMessage } from "./transport.js";
import { sha256Hex } from "./outbox.js";

export class Uploads {
  /** options: db, transport, outbox (its items' states, and moving them to sent). */
  constructor({ db, transport, outbox }) {
    this.db = db;
    this.transport = transport;
    this.outbox = outbox;
  }

  /** Uploads every attachment not yet on the server; each success is recorded at once (resumable). */
  async uploadAll() {
    const items = (await this.db.all("outbox")).filter((i) => i.state === "uploading" && this.outbox.mine(i));
    for (const item of items) {
      for (const att of item.attachments || []) {
        if (att.uploaded || att.failed) continue;
        const outcome = await this.uploadOne(item, att);
        await this.outbox.setState(item.uuid, (cur) => ({
          attachments: cur.attachments.map((a) => (a.name === att.name ? { ...a, ...outcome } : a)),
        }));
      }
      const fresh = await this.db.get("outbox", item.uuid);
      if (fresh && !fresh.attachments.some((a) => !a.uploaded && !a.failed)) await this.outbox.moveToSent(fresh);
    }
  }

  async uploadOne(item, att) {
    const blob = await this.db.get("photos", att.name);
    if (!blob) return { failed: { zh: "手机上找不到这张照片", en: "The photo is missing on this phone" } };
    const path = `${API}/submissions/${encodeURIComponent(item.uuid)}/attachments/${encodeURIComponent(att.name)}`;
    try {
      await this.transport.send("PUT", path, { body: blob, headers: { "X-Content-SHA256": att.sha256, "Content-Type": att.type } });
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
}
