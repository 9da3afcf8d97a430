// Keeping the phone's data: ask the browser to keep this site's storage (persistent storage is not
// evicted when the phone runs low on space) and read how much space is used. DOM-free.

const manager = () => (globalThis.navigator && globalThis.navigator.storage) || null;

/** Asks for persistent storage; resolves true/false, or null where the browser has no such thing. */
export async function askToPersist() {
  const m = manager();
  if (!m || typeof m.persist !== "function") return null;
  try {
    if (typeof m.persisted === "function" && await m.persisted()) return true;
    return await m.persist();
  } catch (_) {
    return false;
  }
}

/** Whether storage is persistent (true/false), or null when the browser cannot tell. */
export async function isPersisted() {
  const m = manager();
  if (!m || typeof m.persisted !== "function") return null;
  try { return await m.persisted(); } catch (_) { return null; }
}

/** {usage, quota} in bytes, or null when the browser does not say. */
export async function estimate() {
  const m = manager();
  if (!m || typeof m.estimate !== "function") return null;
  try {
    const { usage, quota } = await m.estimate();
    return Number.isFinite(usage) ? { usage, quota: Number.isFinite(quota) ? quota : null } : null;
  } catch (_) {
    return null;
  }
}

/** "1.2 MB" */
export function formatBytes(n) {
  if (!Number.isFinite(n)) return "?";
  const units = ["B", "KB", "MB", "GB", "TB"];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) { v /= 1024; i += 1; }
  return `${v >= 10 || i === 0 ? Math.round(v) : v.toFixed(1)} ${units[i]}`;
}
