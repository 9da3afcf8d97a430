// Form definitions on the phone: the versions the server names downloaded once each (kept in
// the meta store as form:<id>:<version>), an older version fetched when a draft or a returned
// visit needs it, and a catalog read once for the screens' synchronous look-ups.

import { API, LoginRequired } from "./transport.js";

export class Forms {
  /** options: db, transport, stored() (called when something new is kept: screens redraw). */
  constructor({ db, transport, stored }) {
    this.db = db;
    this.transport = transport;
    this.stored = stored;
    this.catalogCache = null; // the stored definitions, read once (forgotten when they change)
  }

  /** Forgets the catalog read: the current versions or the stored definitions changed. */
  forget() {
    this.catalogCache = null;
  }

  /** Downloads the definitions the phone does not hold yet (each version once). */
  async download(forms) {
    for (const f of forms) {
      const key = `form:${f.id}:${f.version}`;
      const have = await this.db.get("meta", key);
      if (have && have.sha256 === f.sha256) continue;
      const definition = await this.transport.request("GET", `${API}/forms/${encodeURIComponent(f.id)}?version=${f.version}`);
      await this.db.put("meta", key, { id: f.id, version: f.version, sha256: f.sha256, definition });
      this.stored();
      this.forget();
    }
  }

  /** The form definition (the current version unless one is named), or null when not downloaded. */
  async definition(id, version = null) {
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
      const definition = await this.transport.request("GET", `${API}/forms/${encodeURIComponent(id)}?version=${version}`);
      if (!definition || definition.version !== version) return null;
      await this.db.put("meta", `form:${id}:${version}`, { id, version, sha256: null, definition });
      this.forget();
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
}
