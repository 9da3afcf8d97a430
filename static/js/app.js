// The phone app's frame: hash routes, the always-visible sync status, tabs and banners, start-up,
// and the service worker's "new version" prompt. Screens live in their own modules; the ones the
// home screen does not need are loaded when first opened (the service worker has them offline).
//
// Routes: #/today (home; #/ goes there)  #/households  #/households/<id>
//         #/households/<id>/forms/<form> (a NEW form; test hook)  #/drafts  #/drafts/<id>
//         #/outbox  #/outbox/<uuid>  #/returned  #/returned/<uuid>/fix  #/settings

import { LOCK_RECORD, gatedDatabase, getDatabase } from "./db.js";
import { clear, h } from "./dom.js";
import { lang, loadLanguage, onLangChange, pick, setLang, t } from "./i18n.js";
import { onDemand } from "./on-demand.js";
import { clearJournal, collectPhotos, recoverJournal, setJournaling } from "./records.js";
import { askToPersist, isPersisted } from "./storage.js";
import { SyncEngine } from "./sync.js";
import { cadreDay, showToday, todayCount } from "./today.js";
import { fmtTime, page, setMain, toast } from "./ui.js";

const LOGIN_URL = "/login?next=%2Fapp%2F";
const TABS = ["today", "households", "drafts", "outbox", "settings"];

const localStore = (() => { try { return globalThis.localStorage || null; } catch (_) { return null; } })();
// The app PIN (lock.js): without one, `db` is IndexedDB as it always was; with one, what it holds
// is encrypted and it answers only while unlocked. lock.js (and the encryption it loads) is asked
// for only when this phone keeps a PIN or the county requires one: a phone without a PIN starts
// with none of it. Kept, the lock holds every operation from the start until it is loaded.
const raw = getDatabase();
const db = gatedDatabase(raw);
let lock = null; // the PhoneLock, once loaded
let lockLoading = null;
const lockKept = () => { try { return !!(localStore && localStore.getItem(LOCK_RECORD)); } catch (_) { return false; } };
function phoneLock() {
  if (!lockLoading) {
    lockLoading = onDemand("lock.js").then(({ PhoneLock }) => {
      lock = new PhoneLock({ raw, storage: localStore, db });
      return lock;
    }).catch((err) => {
      lockLoading = null; // asked again next time
      throw err;
    });
  }
  return lockLoading;
}
if (lockKept()) db.gate.target = () => phoneLock().then((l) => l.target());
const engine = new SyncEngine({ db, gate: lockGate, loggedOut: () => checkErase() });
const statusEl = document.getElementById("sync-status");
const bannersEl = document.getElementById("banners");
const syncButton = document.querySelector("header [data-action=sync]"); // disabled in the shell until start()

let halted = false; // the phone was erased: nothing more is shown
let current = { name: "none" }; // the screen shown: {name, tab, leave(), isForm, refresh(), relang()}
let navToken = 0;
const ui = { waitingWorker: null, updateAccepted: false, persisted: null, today: null, syncAsked: false };

/** What screens get: the database, the sync engine, and whether they are still the one shown. */
const ctx = {
  db,
  engine,
  get lock() { return lock; },
  get screen() { return current; },
  get persisted() { return ui.persisted; },
  token: () => navToken,
  live: (token) => token === navToken,
  setTodayCount(count) {
    ui.today = count;
    renderTabs(engine.status);
  },
};

// ---- status bar, banners, tabs ---------------------------------------------------------------------

function renderChrome() {
  document.title = t("app_title");
  document.querySelector(".brand").textContent = t("brand");
  document.querySelector("nav.tabs").setAttribute("aria-label", t("main_menu"));
  renderStatus(engine.status);
}

async function renderTabs(status) {
  const drafts = (await db.keys("drafts")).length;
  const counts = {
    today: ui.today && ui.today.n ? { n: ui.today.n, alert: ui.today.urgent } : null,
    drafts: drafts ? { n: drafts } : null,
    outbox: status.pending + status.refused ? { n: status.pending + status.refused, alert: status.refused > 0 } : null,
  };
  for (const name of TABS) {
    const tab = document.querySelector(`[data-tab=${name}]`);
    const count = counts[name];
    // Settings is a gear (its name for screen readers), so five tabs fit 360 px in English too.
    const label = name === "settings"
      ? [h("span", { class: "tab-icon", "aria-hidden": "true" }, "⚙"), h("span", { class: "visually-hidden" }, t("tab_settings"))]
      : h("span", {}, t(`tab_${name}`));
    tab.replaceChildren(...[label].flat(),
      count ? h("span", { class: `count${count.alert ? " alert" : ""}` }, String(count.n)) : "");
    tab.classList.toggle("active", current.tab === name);
    if (current.tab === name) tab.setAttribute("aria-current", "page");
    else tab.removeAttribute("aria-current");
  }
}

function renderStatus(s) {
  statusEl.dataset.pending = String(s.pending);
  statusEl.dataset.lastSync = s.lastSync || "";
  statusEl.dataset.refused = String(s.refused);
  statusEl.dataset.state = s.running ? "syncing" : s.needsLogin ? "login" : s.offline ? "offline" : s.error ? "error" : "idle";
  const line1 = s.pending ? t("status_pending", { n: s.pending })
    : s.refused ? t("status_refused_only", { n: s.refused }) : t("status_none_pending");
  const refused = s.pending && s.refused ? t("status_refused", { n: s.refused }) : "";
  let line2;
  if (s.running) line2 = t("status_syncing");
  else if (s.needsLogin) line2 = t("status_login");
  else if (s.offline) line2 = t("status_offline");
  else line2 = s.lastSync ? t("status_last", { time: fmtTime(s.lastSync) }) : t("status_never");
  clear(statusEl).append(
    h("span", { class: "line1" }, line1, refused ? h("span", { class: "refused" }, ` · ${refused}`) : null),
    h("span", { class: "line2" }, line2, s.lastSync && (s.running || s.offline || s.needsLogin) ? ` · ${t("status_last", { time: fmtTime(s.lastSync) })}` : ""),
  );
  syncButton.classList.toggle("busy", !!s.running);
  syncButton.textContent = s.running ? t("syncing_short") : t("sync_now");
  renderBanners(s);
  renderTabs(s);
}

let bannerKey = "";
function renderBanners(s) {
  // Rebuilt only when what they say changes, so screen readers do not hear them again each time.
  const key = JSON.stringify([!!ui.waitingWorker, s.needsLogin, s.offline, !s.running && s.error, s.nextRetryAt,
    lang(), location.hash, db.volatile]);
  if (key === bannerKey) return;
  bannerKey = key;
  clear(bannersEl);
  if (db.volatile) {
    // Not dismissible: every draft typed here is lost when the page closes. (Storage that is kept
    // but not persistent is said on Today and in the settings, without pushing the page down.)
    bannersEl.append(h("div", { class: "banner error", role: "alert", "data-storage": "volatile" }, t("storage_volatile")));
  }
  if (ui.waitingWorker) {
    bannersEl.append(h("div", { class: "banner info", role: "status" }, h("span", {}, t("update_ready")),
      h("button", { type: "button", class: "small", "data-action": "reload", onclick: acceptUpdate }, t("update_reload"))));
  }
  if (s.needsLogin) {
    bannersEl.append(h("div", { class: "banner warn", role: "alert" }, h("span", {}, t("login_needed")),
      h("a", { class: "button small", href: `/login?next=${encodeURIComponent(`/app/${location.hash}`)}` }, t("login"))));
  } else if (s.offline) {
    bannersEl.append(h("div", { class: "banner muted-banner", role: "status" }, t("offline_note")));
  } else if (s.error && !s.running) {
    bannersEl.append(h("div", { class: "banner warn", role: "status" }, h("span", {}, pick(s.error, lang())),
      s.nextRetryAt ? h("span", {}, ` ${t("retry_at", { time: fmtTime(s.nextRetryAt) })}`) : null));
  }
}

let wasRunning = false;
let lastCounts = "";
let shownData = 0;
function onStatus(s) {
  renderStatus(s);
  const counts = `${s.pending}/${s.refused}`;
  const ended = wasRunning && !s.running;
  wasRunning = s.running;
  // A sync redraws the screen only if it brought something or failed (a redraw is the costliest
  // thing the app does on a cheap phone).
  const brought = ended && s.dataVersion !== shownData;
  if (ended) shownData = s.dataVersion;
  if (ended && ui.syncAsked) {
    ui.syncAsked = false;
    if (s.error && !s.needsLogin) toast(t(s.offline ? "sync_offline_toast" : "sync_failed_toast", { why: pick(s.error, lang()) }));
    else if (!s.error) toast(t("sync_done_toast"));
  }
  if (brought && current.tab !== "today") countToday();
  // Screens show what changed, but a form being filled in is never redrawn under the cadre's thumb.
  if ((brought || (ended && s.error) || counts !== lastCounts) && current.refresh && !current.isForm) current.refresh();
  lastCounts = counts;
  if (ended && s.needsLogin && navigator.onLine !== false && !current.isForm) {
    // A deactivated phone may be asked to erase itself first (checkErase): then no login page.
    checkErase().then(() => { if (!halted) location.assign(LOGIN_URL); });
  }
}

/** The Today tab's count while another screen shows (Today counts itself when drawn). */
function countToday() {
  cadreDay(ctx).then(({ day }) => ctx.setTodayCount(todayCount(day))).catch((err) => console.warn(err));
}

/** The sync button: offline it says so at once (nothing can leave); online it reports the outcome. */
function syncPressed() {
  if (navigator.onLine === false) {
    toast(t("sync_offline_toast"));
    engine.run("button");
    return;
  }
  ui.syncAsked = true;
  engine.run("button");
}

// ---- router ------------------------------------------------------------------------------------------

// Screens other than Today, loaded when first opened, each with the modules it needs that Today
// does not, side by side (on-demand.js).
const lazy = {
  households: () => onDemand("households-screen.js"),
  records: () => onDemand("records-screen.js"),
  settings: () => onDemand("settings.js"),
  form: () => onDemand("form-screen.js"),
};

function tabOf(name) {
  if (name === "households") return "households";
  if (name === "drafts") return "drafts";
  if (name === "outbox" || name === "returned") return "outbox";
  if (name === "settings") return "settings";
  return "today";
}

async function route() {
  if (halted || covered || (lock && lock.state === "locked")) return; // the lock screen shows until the PIN
  if (current.leave) current.leave();
  const token = ++navToken;
  const parts = (location.hash.replace(/^#\/?/, "") || "").split("/").filter(Boolean).map(decodeURIComponent);
  if (!parts.length) {
    history.replaceState(null, "", "#/today");
    parts.push("today");
  }
  current = { name: parts[0], tab: tabOf(parts[0]) };
  renderTabs(engine.status);
  renderBanners(engine.status);
  window.scrollTo(0, 0);
  try {
    const [where, id, sub, form] = parts;
    if (where === "households" && id && sub === "forms" && form) await (await lazy.form()).openNewForm(ctx, token, id, form);
    else if (where === "households" && id) await (await lazy.households()).showHousehold(ctx, token, id);
    else if (where === "households") await (await lazy.households()).showHouseholds(ctx, token);
    else if (where === "drafts" && id) await (await lazy.form()).openDraft(ctx, token, id);
    else if (where === "drafts") await (await lazy.records()).showDrafts(ctx, token);
    else if (where === "outbox" && id) await (await lazy.records()).showItem(ctx, token, id);
    else if (where === "outbox") await (await lazy.records()).showOutbox(ctx, token);
    else if (where === "returned" && id && sub === "fix") await (await lazy.form()).fixReturned(ctx, token, id);
    else if (where === "returned") await (await lazy.records()).showReturned(ctx, token);
    else if (where === "settings") await (await lazy.settings()).showSettings(ctx, token);
    else await showToday(ctx, token);
  } catch (err) {
    console.error(err);
    if (token !== navToken) return;
    // A screen's module not on the phone yet (opened for the first time, offline, before the
    // service worker kept the app) is not a bug: say what to do.
    const notKept = err instanceof TypeError && /import|module/i.test(String(err.message)) && navigator.onLine === false;
    setMain(page(t("error_title"), h("p", { class: "error" }, notKept ? t("screen_not_kept") : String(err && err.message)),
      h("a", { class: "button", href: "#/today" }, t("tab_today"))));
  }
}

// ---- the app PIN and the erase (issue 24) ------------------------------------------------------------

const lockScreens = () => onDemand("lock-screen.js");
const device = () => onDemand("sync/device.js").then(({ Device }) => new Device({
  transport: engine.transport, storage: localStore, fetch: (...args) => globalThis.fetch(...args),
}));
let idleWatch = null;
let unlocking = null;
let eraseCheck = null;
let covered = false; // a lock screen shows: no screen may draw (route, refresh) until it goes

/** Shows lock screens (show() resolves when they are done); the screen behind is gone. */
async function cover(show) {
  if (current.leave) current.leave();
  current = { name: "locked" };
  navToken += 1; // a screen still drawing finds itself no longer the one shown
  covered = true;
  try {
    return await show(await lockScreens());
  } finally {
    covered = false;
  }
}

/** After each bootstrap: this phone's device token, and the PIN when the county requires one. */
async function lockGate(settings) {
  device().then((d) => d.register(engine.session.user)).catch((err) => console.warn("device not registered", err));
  const required = !!(settings.phone_lock && settings.phone_lock.required);
  if (!lock && !required && !lockKept()) return; // no PIN here and none asked: lock.js not needed
  if (!(await phoneLock()).applySettings(settings.phone_lock)) return;
  setJournaling(false);
  await cover((screens) => screens.setupPin(lock));
  recoverJournal(db).catch((err) => console.warn(err)); // drafts journaled before the PIN, now encrypted
  watchIdle();
  if (!halted) route();
}

function watchIdle() {
  if (idleWatch || !lock || !lock.enabled) return;
  idleWatch = lockScreens().then((s) => s.watchIdle(() => lock.idleMinutes, lockNow));
}

/** Locks now (idle): the key and the decrypted records are forgotten, the screen behind is gone. */
async function lockNow() {
  if (!lock || lock.state !== "unlocked" || unlocking || covered || halted) return;
  if (current.leave) current.leave();
  lock.lock();
  engine.forms.forget();
  await unlockFlow();
  if (!halted) route();
}

/** The lock screen until the PIN is right (after ten wrong ones: a fresh login first). */
function unlockFlow() {
  if (!unlocking) {
    unlocking = cover(async (screens) => {
      for (;;) {
        if ((lock.record || {}).needs_login) {
          await screens.loginAgain(lock, engine);
          continue;
        }
        const outcome = await screens.unlockPin(lock);
        if (outcome.unlocked) return;
      }
    }).finally(() => { unlocking = null; });
  }
  return unlocking;
}

/**
 * At a contact that says the login is gone (or at start while locked): when the server asks this
 * phone to erase itself, it sends what is unsent (through its device token; under a PIN, once the
 * PIN is given), then erases everything and says so. Ten wrong PINs here erase without sending.
 */
function checkErase() {
  if (!eraseCheck && !halted) eraseCheck = eraseIfAsked().finally(() => { eraseCheck = null; });
  return eraseCheck || Promise.resolve();
}

async function eraseIfAsked() {
  try {
    const phone = await device();
    if (!(await phone.eraseRequested())) return;
    const token = phone.token;
    engine.stop();
    let send = true;
    if (lockKept()) await phoneLock();
    const wasLocked = !!lock && lock.state === "locked";
    if (wasLocked && (lock.record || {}).needs_login) {
      // Ten wrong PINs already: only a fresh login could open the outbox, and a deactivated
      // account has none. It goes with the rest.
      send = false;
    } else if (wasLocked) {
      // The PIN screen says why; the one shown before is replaced (its promise is left waiting).
      const outcome = await (await lockScreens()).unlockPin(lock, { mode: "erase" });
      send = !outcome.erased;
    }
    if (send) {
      try {
        await phone.sendLast({ db, now: () => new Date() });
      } catch (err) {
        console.warn("last push did not go; erasing at the next contact", err);
        if (wasLocked) location.reload(); // back to a plain start (locked, the erase asked again)
        return;
      }
    }
    halted = true;
    if (current.leave) current.leave();
    current = { name: "erased" };
    navToken += 1;
    await (await phoneLock()).eraseAll();
    clearJournal();
    if (globalThis.caches) await caches.delete("jiedui-forms").catch(() => {});
    await phone.confirmErased(token);
    (await lockScreens()).showErased();
  } catch (err) {
    console.warn("erase check failed", err);
  }
}

// ---- service worker: offline shell and the "new version" prompt ---------------------------------------

function acceptUpdate() {
  if (!ui.waitingWorker) return;
  ui.updateAccepted = true;
  ui.waitingWorker.postMessage({ type: "skip-waiting" });
}

async function registerServiceWorker() {
  if (!("serviceWorker" in navigator) || !window.isSecureContext) return;
  try {
    const reg = await navigator.serviceWorker.register("/app/sw.js", { scope: "/app/" });
    const offer = (worker) => {
      ui.waitingWorker = worker;
      renderBanners(engine.status);
    };
    if (reg.waiting && navigator.serviceWorker.controller) offer(reg.waiting);
    reg.addEventListener("updatefound", () => {
      const worker = reg.installing;
      if (!worker) return;
      worker.addEventListener("statechange", () => {
        if (worker.state === "installed" && navigator.serviceWorker.controller) offer(worker);
      });
    });
    navigator.serviceWorker.addEventListener("controllerchange", () => {
      if (ui.updateAccepted) location.reload(); // only when the cadre asked (drafts are saved anyway)
    });
    engine.subscribe((s) => { if (!s.running && s.lastSync && !s.error) reg.update().catch(() => {}); });
  } catch (err) {
    console.warn("service worker not registered", err);
  }
}

// ---- start ---------------------------------------------------------------------------------------------

async function start() {
  // What the first screen needs, side by side: the texts (English is fetched only for phones that
  // read it), whether IndexedDB works (if not, the app runs on memory and the banner says so) and
  // whether storage is persistent (known before the first screen, so nothing moves later).
  const [, , persisted] = await Promise.all([loadLanguage(lang()), db.probe(), isPersisted()]);
  ui.persisted = persisted;
  onLangChange(() => {
    renderChrome();
    if (current.relang) current.relang();
    else route();
  });
  document.addEventListener("click", (e) => {
    if (e.target.closest("header [data-action=sync]")) syncPressed();
    else if (e.target.closest("[data-action=sync-again]")) syncPressed();
    else if (e.target.closest("[data-action=switch-language]")) setLang(lang() === "zh" ? "en" : "zh");
  });
  renderChrome();
  if (lockKept()) lockScreens().catch(() => {}); // the PIN screen's modules alongside the lock's
  if (lockKept() && (await phoneLock()).enabled) {
    // Locked at start: the PIN before anything is read (the erase check needs no PIN).
    setJournaling(false);
    window.addEventListener("online", () => { if (lock.state === "locked") checkErase(); });
    checkErase();
    await unlockFlow();
    watchIdle();
  }
  if (halted) return;
  await Promise.all([engine.load(), recoverJournal(db).catch((err) => console.warn(err))]);
  engine.subscribe(onStatus);
  syncButton.disabled = false;
  window.addEventListener("hashchange", route);
  window.addEventListener("online", () => engine.run("online"));
  window.addEventListener("offline", () => engine.emit({ offline: true }));
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible" && !engine.current && (engine.status.pending || engine.status.error)) engine.run("visible");
  });
  await route();
  if (current.tab !== "today") countToday();
  // The first sync starts once the first screen is on the glass (two frames, then a moment for
  // the frame to be shown): nothing it fetches is needed to paint what the phone already holds.
  await new Promise((resolve) => requestAnimationFrame(() => requestAnimationFrame(() => setTimeout(resolve, 50))));
  const firstSync = engine.run("start");
  askToPersist().then((persisted) => {
    ui.persisted = persisted;
    if (persisted) for (const note of document.querySelectorAll("[data-storage=not-persistent]")) note.remove();
  });
  collectPhotos(db).catch((err) => console.warn(err));
  // The worker's install downloads the whole shell for offline use: after the first sync, so on
  // a slow network it does not compete with the households and forms the cadre is waiting for.
  firstSync.finally(registerServiceWorker);
}

start();
