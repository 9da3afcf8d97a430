// This phone's device token (issue 24): registered once logged in and kept in localStorage (plain:
// it must be readable while the app is locked, and it only lets the phone ask one question). A
// deactivated user has no session, so the phone asks "must I erase myself?" with the token alone
// (GET /api/v1/device/<token>/status). When the answer is yes it makes a last push of its unsent
// visits and photos through the token (the server takes it only while that erase is pending),
// then erases everything and tells the server, which writes "phone erased" in the audit log.

import { Outbox } from "./outbox.js";
import { API, Transport } from "./transport.js";
import { Uploads } from "./uploads.js";

const TOKEN = "jiedui.device";

/** The phone API as a device token reaches it: submissions and photos under /device/<token>/, no CSRF. */
class DeviceTransport extends Transport {
  constructor({ fetch, origin, token }) {
    super({ fetch, origin });
    this.prefix = `${API}/device/${encodeURIComponent(token)}`;
  }

  request(method, path, options) {
    return super.request(method, path.startsWith(`${API}/submissions`) ? this.prefix + path.slice(API.length) : path, options);
  }

  send(method, path, options) { return this.request(method, path, options); }
}

export class Device {
  /** options: transport (the logged-in one), storage (localStorage), fetch, origin. */
  constructor({ transport, storage, fetch, origin = "" }) {
    this.transport = transport;
    this.storage = storage || { getItem: () => null, setItem: () => {}, removeItem: () => {} };
    this.fetch = fetch;
    this.origin = origin;
  }

  /** {token, user}: the token and the account it was given to (one cadre's phone at a time). */
  get stored() {
    try { return JSON.parse(this.storage.getItem(TOKEN) || "null"); } catch (_) { return null; }
  }

  get token() { return (this.stored || {}).token || null; }

  /** A token for this phone and the cadre logged in (asked for again when another cadre logs in). */
  async register(user) {
    const stored = this.stored;
    if (!user || (stored && stored.user === user.id)) return this.token;
    const data = await this.transport.send("POST", `${API}/device`, { json: {} });
    if (data && data.token) this.storage.setItem(TOKEN, JSON.stringify({ token: data.token, user: user.id }));
    return this.token;
  }

  /** Whether the server asks this phone to erase itself (false on any doubt: no token, offline). */
  async eraseRequested() {
    const token = this.token;
    if (!token) return false;
    try {
      const res = await this.fetch(`${this.origin}${API}/device/${encodeURIComponent(token)}/status`,
        { credentials: "omit", cache: "no-store", headers: { Accept: "application/json" } });
      return res.ok && (await res.json()).erase === true;
    } catch (_) {
      return false;
    }
  }

  /**
   * The last push: every unsent visit and photo, as a logged-in sync would send them; only the
   * token's own cadre's (the server takes them as that cadre's).
   */
  async sendLast({ db, now }) {
    const session = { user: { id: (this.stored || {}).user } };
    const transport = new DeviceTransport({ fetch: this.fetch, origin: this.origin, token: this.token });
    const outbox = new Outbox({ db, transport, now, session, batchSize: 20, changed: () => {} });
    await outbox.push();
    await new Uploads({ db, transport, outbox }).uploadAll();
  }

  /** Tells the server the phone is erased (the audit entry) and forgets the token. */
  async confirmErased(token) {
    try {
      await this.fetch(`${this.origin}${API}/device/${encodeURIComponent(token)}/erased`,
        { method: "POST", credentials: "omit", cache: "no-store", headers: { Accept: "application/json" } });
    } catch (_) { /* erased all the same; the audit entry waits for nobody */ }
    this.storage.removeItem(TOKEN);
  }
}
