// An in-memory stand-in for the /api/v1 sync contract (DESIGN.md "Sync protocol"), for driving
// static/js/sync.js under `node --test`: an injected fetch, with switches to fail the way real
// networks and servers fail (no connection, 5xx, answer lost after storing, expired login/CSRF).

import { createHash } from "node:crypto";

const json = (status, body) => new Response(JSON.stringify(body), {
  status, headers: { "Content-Type": "application/json" },
});

export const VISIT_FORM = {
  id: "household_visit",
  version: 1,
  title: { zh: "入户走访记录", en: "Household visit" },
  effects: { members: "members" },
  fields: [
    { name: "visit_date", type: "date", label: { zh: "走访日期", en: "Visit date" }, required: true },
    { name: "present", type: "text", label: { zh: "在场人员", en: "Present" }, required: true, max: 200 },
    { name: "risk", type: "select_one", label: { zh: "风险", en: "Risk" }, required: true,
      choices: [{ name: "yes", label: { zh: "是", en: "Yes" } }, { name: "no", label: { zh: "否", en: "No" } }] },
    { name: "risk_reason", type: "textarea", label: { zh: "原因", en: "Reason" }, required: true,
      relevant: { field: "risk", op: "eq", value: "yes" } },
    { name: "photo_1", type: "photo", label: { zh: "照片 1", en: "Photo 1" } },
    { name: "photo_2", type: "photo", label: { zh: "照片 2", en: "Photo 2" } },
  ],
};

export class FakeServer {
  constructor({ households = [], user = { id: "cadre1", display_name: "王芳" } } = {}) {
    this.user = user;
    this.loggedIn = true;
    this.csrf = "token-1";
    this.seq = 0;
    this.households = new Map();
    for (const h of households) this.putHousehold(h);
    this.submissions = new Map();
    this.files = new Map();
    this.log = [];
    this.offline = false; // every request fails as if there were no network
    this.failNext = []; // e.g. ["network", "500", "after_store", "csrf"] applied to the next POST/PUT
    this.failPutAfter = null; // number of successful attachment PUTs before the network drops
    this.maxBatch = Infinity; // 413 above this many items
    this.forms = [VISIT_FORM];
  }

  /** A supervisor's decision, as POST /submissions/<uuid>/review records it. */
  review(subUuid, { state, comment = "", fields = {} }) {
    const sub = this.submissions.get(subUuid);
    this.seq += 1;
    const decision = { state, comment, fields, by: "super", at: "2024-05-07T09:00:00+08:00" };
    sub.review = { ...decision, history: [...(sub.review.history || []), decision] };
    sub.seq = this.seq;
    return sub.review;
  }

  putHousehold(h) {
    this.seq += 1;
    this.households.set(h.id, { version: 1, cadre_ids: [this.user.id], ...h, seq: this.seq });
  }

  fingerprint(item) {
    const canonical = (v) => (v && typeof v === "object" && !Array.isArray(v)
      ? Object.fromEntries(Object.keys(v).sort().map((k) => [k, canonical(v[k])]))
      : Array.isArray(v) ? v.map(canonical) : v);
    return JSON.stringify(canonical(item));
  }

  validate(item) {
    const errors = [];
    const a = item.answers || {};
    if (!this.households.has(item.household_id)) errors.push({ field: "household_id", message: "No such household", message_zh: "找不到该农户", message_en: "No such household" });
    if (!a.visit_date) errors.push({ field: "visit_date", message_zh: "必填", message_en: "Required" });
    if (a.present === "bad") errors.push({ field: "present", message_zh: "在场人员有误", message_en: "Present is wrong" });
    return errors;
  }

  fetch = async (url, init = {}) => {
    const method = init.method || "GET";
    const u = new URL(url, "http://phone.test");
    this.log.push(`${method} ${u.pathname}${u.search}`);
    if (this.offline) throw new TypeError("Failed to fetch");
    if (method !== "GET" && this.failNext.length) {
      const fault = this.failNext.shift();
      if (fault === "network") throw new TypeError("Failed to fetch");
      if (fault === "500") return json(503, { error: "test_fault", message: "fault" });
      if (fault === "csrf") this.csrf = `${this.csrf}x`;
      if (fault === "after_store") {
        await this.handle(method, u, init);
        throw new TypeError("connection reset");
      }
    }
    return this.handle(method, u, init);
  };

  async handle(method, u, init) {
    const path = u.pathname;
    if (path === "/api/v1/csrf") return json(200, { csrf_token: this.csrf });
    if (!this.loggedIn) return json(401, { error: "login_required", message: "Please log in first." });
    if (this.passwordChangeRequired) return json(403, { error: "password_change_required", message: "Set your own new password first." });
    if (method !== "GET" && init.headers["X-CSRFToken"] !== this.csrf) {
      return json(400, { error: "csrf", message: "token" });
    }
    if (path === "/api/v1/bootstrap") {
      return json(200, {
        user: this.user, villages: [{ id: "v1", name: "石桥村" }], csrf_token: this.csrf,
        forms: this.forms.map((f) => ({ id: f.id, version: f.version, sha256: `sha-${f.id}-${f.version}` })),
        settings: { pv_yield_kwh_per_kw: 1100 },
      });
    }
    let m = /^\/api\/v1\/forms\/([^/]+)$/.exec(path);
    if (m) {
      const f = this.forms.find((x) => x.id === m[1]);
      return f ? json(200, f) : json(404, { error: "unknown_form" });
    }
    if (path === "/api/v1/households") {
      const since = Number(u.searchParams.get("since") || 0);
      const limit = Number(u.searchParams.get("limit") || 500);
      const page = [...this.households.values()].filter((h) => h.seq > since).sort((a, b) => a.seq - b.seq).slice(0, limit);
      return json(200, { households: page, next: page.length ? page[page.length - 1].seq : since });
    }
    if (path === "/api/v1/submissions" && method === "POST") {
      const body = JSON.parse(init.body);
      if (body.submissions.length > this.maxBatch) return json(413, { error: "too_many_items", message: "too many" });
      const results = body.submissions.map((item) => {
        const have = this.submissions.get(item.uuid);
        if (have) {
          return have.fingerprint === this.fingerprint(item)
            ? { uuid: item.uuid, status: "duplicate", errors: [] }
            : { uuid: item.uuid, status: "rejected", errors: [{ field: "uuid", message: "uuid already used with other content" }] };
        }
        const errors = this.validate(item);
        if (errors.length) return { uuid: item.uuid, status: "rejected", errors };
        this.seq += 1;
        this.submissions.set(item.uuid, {
          ...item, fingerprint: this.fingerprint(item), cadre_id: this.user.id, seq: this.seq,
          received_at: "2024-05-06T08:00:00+08:00",
          attachments: (item.attachments || []).map((a) => ({ ...a, received: false })),
          review: { state: "received", comment: "", fields: {}, by: null, at: null, history: [] },
        });
        const old = item.supersedes && this.submissions.get(item.supersedes);
        if (old) {
          this.seq += 1;
          Object.assign(old, { superseded_by: item.uuid, seq: this.seq });
        }
        return { uuid: item.uuid, status: "created", errors: [] };
      });
      return json(200, { results });
    }
    m = /^\/api\/v1\/households\/([^/]+)$/.exec(path);
    if (m && method === "PUT") {
      // the households owner as far as the phone sees it: merge on a stale base, a clash said; a
      // plot code listed in refusedCodes is another household's (400 naming the row and column)
      const h = this.households.get(decodeURIComponent(m[1]));
      if (!h) return json(404, { error: "household_not_found", message: "no such household" });
      const body = JSON.parse(init.body);
      const plots = body.changes.plots || [];
      const bad = plots.findIndex((p) => (this.refusedCodes || []).includes(p.code));
      if (bad >= 0) return json(400, { error: "invalid", errors: [{ field: `plots.${bad}.code`, zh: "地块编码已属于本村另一户", en: "Plot code taken" }] });
      const stale = Number.isInteger(body.base_version) && body.base_version < h.version;
      this.seq += 1;
      Object.assign(h, body.changes, { version: h.version + 1, seq: this.seq });
      this.edits = [...(this.edits || []), body];
      return json(200, { household: structuredClone(h), clash: stale ? { kind: "hard", fields: Object.keys(body.changes) } : null });
    }
    m = /^\/api\/v1\/submissions\/([^/]+)\/attachments\/([^/]+)$/.exec(path);
    if (m && method === "PUT") {
      if (this.failPutAfter !== null) {
        if (this.failPutAfter <= 0) throw new TypeError("network dropped");
        this.failPutAfter -= 1;
      }
      const sub = this.submissions.get(m[1]);
      const att = sub && sub.attachments.find((a) => a.name === decodeURIComponent(m[2]));
      if (!att) return json(404, { error: "not_declared", message: "no such attachment" });
      const bytes = Buffer.from(await new Response(init.body).arrayBuffer());
      const sum = createHash("sha256").update(bytes).digest("hex");
      if (sum !== init.headers["X-Content-SHA256"]) return json(400, { error: "checksum_mismatch", message: "checksum" });
      if (sum !== att.sha256) return json(409, { error: "not_as_declared", message_zh: "附件与声明不一致", message_en: "Not as declared" });
      this.files.set(`${m[1]}/${att.name}`, bytes);
      const already = att.received;
      att.received = true;
      this.seq += 1;
      sub.seq = this.seq;
      return json(200, { status: already ? "duplicate" : "stored", name: att.name });
    }
    if (m && method === "GET") {
      const bytes = this.files.get(`${m[1]}/${decodeURIComponent(m[2])}`);
      return bytes ? new Response(bytes, { status: 200, headers: { "Content-Type": "image/jpeg" } }) : json(404, { error: "not_found" });
    }
    if (path === "/api/v1/submissions" && method === "GET" && u.searchParams.has("since")) {
      const since = Number(u.searchParams.get("since"));
      const limit = Number(u.searchParams.get("limit") || 200);
      const page = [...this.submissions.values()].filter((s) => s.seq > since && s.cadre_id === this.user.id)
        .sort((a, b) => a.seq - b.seq).slice(0, limit).map(({ fingerprint, ...s }) => structuredClone(s));
      return json(200, { submissions: page, next: page.length ? page[page.length - 1].seq : since });
    }
    if (path === "/api/v1/submissions" && method === "GET") {
      const hid = u.searchParams.get("household_id");
      if (!this.households.has(hid)) return json(404, { error: "not_found" });
      const list = [...this.submissions.values()].filter((s) => s.household_id === hid)
        .map(({ fingerprint, ...s }) => s);
      return json(200, { submissions: list });
    }
    return json(404, { error: "not_found", message: `no route ${method} ${path}` });
  }
}

/** Timers that only fire when the test says so. */
export class FakeTimers {
  constructor() { this.pending = new Map(); this.next = 1; }
  setTimeout = (fn, ms) => { const id = this.next++; this.pending.set(id, { fn, ms }); return id; };
  clearTimeout = (id) => { this.pending.delete(id); };
  get delays() { return [...this.pending.values()].map((t) => t.ms); }
}
