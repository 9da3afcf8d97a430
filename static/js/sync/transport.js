// Talking to the server: fetch with the session's cookie, the CSRF token state-changing requests
// carry (fetched again once when it expired), an expired login told apart (LoginRequired), errors
// as classes the engine and the cadre's status line understand, and how long to wait before
// retrying. Knows nothing of the outbox or the database.

export const API = "/api/v1";

export class NetworkError extends Error {
  constructor(message) { super(message); this.name = "NetworkError"; }
}
export class LoginRequired extends Error {
  constructor() { super("login required"); this.name = "LoginRequired"; }
}
export class HttpError extends Error {
  constructor(status, body) {
    super((body && (body.message_en || body.message)) || `HTTP ${status}`);
    this.name = "HttpError";
    this.status = status;
    this.body = body || {};
  }
}

/**
 * Milliseconds to wait before retry number `attempt` (1, 2, ...): exponential, capped, with "equal
 * jitter" (between half and all of the step), so many phones coming back online do not retry in step.
 */
export function backoffDelay(attempt, { base = 5000, cap = 10 * 60 * 1000, random = Math.random } = {}) {
  const step = Math.min(cap, base * 2 ** Math.max(0, Math.min(attempt - 1, 30)));
  return Math.round(step / 2 + random() * (step / 2));
}

/** A message {zh, en} from an error body the server sent (or a fallback pair). */
export function serverMessage(body, fallback) {
  if (body && (body.message_zh || body.message_en)) {
    return { zh: body.message_zh || body.message_en, en: body.message_en || body.message_zh };
  }
  if (body && body.message) return { zh: body.message, en: body.message };
  return fallback;
}

/** A short {zh, en} description of why a sync failed, for the status line. */
export function describeError(err) {
  if (err instanceof NetworkError) return { zh: "网络不通，稍后自动重试", en: "No connection; will retry" };
  if (err instanceof HttpError) {
    return serverMessage(err.body, { zh: `服务器错误（${err.status}），稍后自动重试`, en: `Server error (${err.status}); will retry` });
  }
  return { zh: `同步出错：${err && err.message}`, en: `Sync error: ${err && err.message}` };
}

export class Transport {
  /** options: fetch, origin (prefixed to every path; "" in the app). */
  constructor({ fetch, origin = "" }) {
    this.fetch = fetch;
    this.origin = origin;
    this.csrf = null;
  }

  async request(method, path, { json, body, headers = {} } = {}) {
    const init = { method, headers: { Accept: "application/json", ...headers }, credentials: "same-origin", cache: "no-store" };
    if (json !== undefined) {
      init.body = JSON.stringify(json);
      init.headers["Content-Type"] = "application/json";
    } else if (body !== undefined) {
      init.body = body;
    }
    if (method !== "GET" && this.csrf) init.headers["X-CSRFToken"] = this.csrf;
    let res;
    try {
      res = await this.fetch(this.origin + path, init);
    } catch (err) {
      throw new NetworkError(String(err && err.message ? err.message : err));
    }
    if (res.status === 401) throw new LoginRequired();
    if (res.redirected && /\/login(\?|$)/.test(res.url || "")) throw new LoginRequired();
    let data = null;
    if (contentType(res).includes("json")) {
      try { data = await res.json(); } catch (_) { data = null; }
    }
    if (!res.ok) throw new HttpError(res.status, data);
    return data;
  }

  /** A state-changing request; an expired CSRF token is fetched again and the request retried once. */
  async send(method, path, options) {
    if (!this.csrf) await this.fetchCsrf();
    try {
      return await this.request(method, path, options);
    } catch (err) {
      if (!(err instanceof HttpError && err.status === 400 && err.body.error === "csrf")) throw err;
      await this.fetchCsrf();
      return this.request(method, path, options);
    }
  }

  async fetchCsrf() {
    const data = await this.request("GET", `${API}/csrf`);
    this.csrf = data && data.csrf_token;
  }

  /** The login is gone: the token went with it. */
  loggedOut() {
    this.csrf = null;
  }

  /** An image the server holds (a Blob), or null on any failure: pictures are never worth an error. */
  async image(path) {
    try {
      const res = await this.fetch(this.origin + path, { credentials: "same-origin", cache: "no-store" });
      return res.ok && /^image\//.test(contentType(res)) ? await res.blob() : null;
    } catch (_) {
      return null;
    }
  }
}

const contentType = (res) => (res.headers && res.headers.get && res.headers.get("Content-Type")) || "";
