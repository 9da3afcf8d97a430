// The phone app: hash routes, the screens (households, a household, a form, drafts, outbox), the
// always-visible sync status, and the service worker's "new version" prompt.
//
// Routes: #/  #/households/<id>  #/households/<id>/forms/<form> (a NEW form; test hook)
//         #/drafts  #/drafts/<id>  #/outbox  #/outbox/<uuid>

import { errorText, openSections, pick } from "./answers.js";
import { getDatabase } from "./db.js";
import { append, clear, h } from "./dom.js";
import { lang, onLangChange, setLang, t } from "./i18n.js";
import { PENDING_STATES, SyncEngine } from "./sync.js";
import { clone, daysSince, isoNow, uuid } from "./util.js";

const LOGIN_URL = "/login?next=%2Fapp%2F";
const OVERDUE_DAYS = 30;
const LIST_PAGE = 60;

const db = getDatabase();
const engine = new SyncEngine({ db });
const main = document.getElementById("main");
const statusEl = document.getElementById("sync-status");
const bannersEl = document.getElementById("banners");
const toastEl = document.getElementById("toast");

let current = { name: "none" }; // the screen shown: {name, leave(), isForm, refresh()}
let navToken = 0;
const ui = { filter: null, search: "", shown: LIST_PAGE, waitingWorker: null, updateAccepted: false };

// ---- small helpers -------------------------------------------------------------------------------

function fmtTime(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  const locale = lang() === "zh" ? "zh-CN" : "en-GB";
  const sameDay = d.toDateString() === new Date().toDateString();
  const opts = sameDay ? { hour: "2-digit", minute: "2-digit" } : { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" };
  return new Intl.DateTimeFormat(locale, opts).format(d);
}

function fmtDate(isoDate) {
  if (!isoDate) return "";
  const d = new Date(`${String(isoDate).slice(0, 10)}T00:00:00`);
  if (Number.isNaN(d.getTime())) return isoDate;
  return new Intl.DateTimeFormat(lang() === "zh" ? "zh-CN" : "en-GB", { year: "numeric", month: "short", day: "numeric" }).format(d);
}

let toastTimer = null;
function toast(text) {
  toastEl.textContent = text;
  toastEl.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { toastEl.hidden = true; }, 4000);
}

const CATEGORIES = ["tuopin", "jiance", "dibao", "ordinary"];
const categoryBadge = (c) => (c ? h("span", { class: `badge cat-${CATEGORIES.includes(c) ? c : "ordinary"}` }, t(`cat_${CATEGORIES.includes(c) ? c : "ordinary"}`)) : null);

async function formTitle(formId, version = null) {
  const def = await engine.formDefinition(formId, version) || await engine.formDefinition(formId);
  return def ? pick(def.title, lang()) : formId;
}

const householdLabel = (hh, id) => (hh ? `${hh.head_name || id}` : id);

function setMain(...children) {
  append(clear(main), children);
}

function page(title, ...children) {
  return [h("h1", { class: "page-title" }, title), ...children];
}

/** Last visit dates per household: the server's (reviews sync) and this phone's own visits. */
async function lastVisits() {
  const [visits, outbox, sent] = await Promise.all([db.get("meta", "visits"), db.all("outbox"), db.all("sent")]);
  const map = new Map();
  const note = (hid, date) => { if (date && (!map.has(hid) || date > map.get(hid))) map.set(hid, date); };
  for (const [hid, v] of Object.entries(visits || {})) note(hid, v && v.last_visit);
  for (const item of [...outbox, ...sent]) {
    if (item.form === "household_visit" && item.answers) note(item.household_id, item.answers.visit_date);
  }
  return map;
}

function visitLine(hh, last) {
  const known = last || hh.last_visit_date || hh.last_visit || null;
  const days = daysSince(known);
  if (days === null) return h("p", { class: "visit overdue" }, t("visit_never"));
  if (days >= OVERDUE_DAYS) return h("p", { class: "visit overdue" }, t("visit_overdue", { n: days }));
  return h("p", { class: "visit" }, t(days === 0 ? "visit_today" : "visit_last", { date: fmtDate(known), n: days }));
}

// ---- status bar, banners, tabs ---------------------------------------------------------------------

function renderChrome() {
  document.title = t("app_title");
  document.querySelector(".brand").textContent = t("brand");
  document.querySelector("[data-action=sync]").textContent = t("sync_now");
  const langBtn = document.getElementById("lang-switch");
  langBtn.textContent = lang() === "zh" ? "English" : "中文";
  langBtn.setAttribute("lang", lang() === "zh" ? "en" : "zh-CN");
  langBtn.title = t("switch_language");
  document.querySelector("[data-tab=households]").textContent = t("tab_households");
  document.querySelector("nav.tabs").setAttribute("aria-label", t("main_menu"));
  renderStatus(engine.status);
}

async function renderTabs(status) {
  const drafts = (await db.keys("drafts")).length;
  const tabs = {
    households: null,
    drafts: drafts || null,
    outbox: status.pending + status.refused || null,
  };
  for (const [name, count] of Object.entries(tabs)) {
    const tab = document.querySelector(`[data-tab=${name}]`);
    if (name !== "households") {
      clear(tab).append(t(`tab_${name}`), count ? h("span", { class: `count${name === "outbox" && status.refused ? " alert" : ""}` }, String(count)) : "");
    }
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
  const btn = document.querySelector("[data-action=sync]");
  btn.classList.toggle("busy", !!s.running);
  btn.textContent = s.running ? t("syncing_short") : t("sync_now");
  renderBanners(s);
  renderTabs(s);
}

let bannerKey = "";
function renderBanners(s) {
  // Rebuilt only when what they say changes, so screen readers do not hear them again each time.
  const key = JSON.stringify([!!ui.waitingWorker, s.needsLogin, s.offline, !s.running && s.error, s.nextRetryAt, lang(), location.hash]);
  if (key === bannerKey) return;
  bannerKey = key;
  clear(bannersEl);
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
      s.nextRetryAt ? h("span", { class: "muted" }, ` ${t("retry_at", { time: fmtTime(s.nextRetryAt) })}`) : null));
  }
}

let wasRunning = false;
let lastCounts = "";
function onStatus(s) {
  renderStatus(s);
  const counts = `${s.pending}/${s.refused}`;
  const finished = wasRunning && !s.running;
  wasRunning = s.running;
  if ((finished || counts !== lastCounts) && current.refresh) current.refresh();
  lastCounts = counts;
  if (finished && s.needsLogin && navigator.onLine !== false && !current.isForm) {
    location.assign(LOGIN_URL);
  }
}

// ---- households -------------------------------------------------------------------------------------

async function visibleHouseholds() {
  const [all, villages] = await Promise.all([db.all("households"), db.get("meta", "villages")]);
  const scope = Array.isArray(villages) && villages.length ? new Set(villages.map((v) => v.id)) : null;
  return all.filter((hh) => !scope || scope.has(hh.village_id));
}

async function showHouseholds(token) {
  current.refresh = () => showHouseholds(navToken);
  const [households, user, visits, drafts, outbox] = await Promise.all([
    visibleHouseholds(), db.get("meta", "user"), lastVisits(), db.all("drafts"), db.all("outbox"),
  ]);
  if (token !== navToken) return;
  const mine = user ? households.filter((hh) => (hh.cadre_ids || []).includes(user.id)) : [];
  if (!ui.filterChosen) ui.filter = mine.length ? "mine" : "all";
  const notices = [];
  const refused = outbox.filter((i) => i.state === "refused").length;
  if (refused) notices.push(h("a", { class: "notice error", href: "#/outbox" }, t("notice_refused", { n: refused })));
  if (drafts.length) notices.push(h("a", { class: "notice", href: "#/drafts" }, t("notice_drafts", { n: drafts.length })));

  if (!households.length) {
    setMain(page(t("tab_households"), notices, h("div", { class: "card empty" },
      h("p", {}, user ? t("no_households") : t("first_run")),
      user ? null : h("a", { class: "button primary", href: LOGIN_URL }, t("login")),
      h("button", { type: "button", class: "secondary", "data-action": "sync-again" }, t("sync_now")))));
    return;
  }
  const list = h("ul", { class: "hh-list" });
  const countEl = h("p", { class: "muted count-line", "aria-live": "polite" });
  const search = h("input", {
    type: "search", id: "hh-search", name: "q", value: ui.search, autocomplete: "off", placeholder: t("search_placeholder"),
    oninput: () => { ui.search = search.value; ui.shown = LIST_PAGE; fill(); },
  });
  const filterBtn = (value, label, n) => h("button", {
    type: "button", class: `seg${ui.filter === value ? " on" : ""}`, "aria-pressed": String(ui.filter === value),
    onclick: () => { ui.filter = value; ui.filterChosen = true; ui.shown = LIST_PAGE; showHouseholds(navToken); },
  }, `${label} (${n})`);
  const fill = () => {
    const q = ui.search.trim().toLowerCase();
    let rows = ui.filter === "mine" ? mine : households;
    if (q) {
      rows = rows.filter((hh) => [hh.head_name, hh.id, hh.address, hh.phone, hh.group, ...(hh.members || []).map((m) => m.name)]
        .some((v) => v && String(v).toLowerCase().includes(q)));
    }
    const days = (hh) => { const d = daysSince(visits.get(hh.id) || hh.last_visit_date); return d === null ? Infinity : d; };
    rows = [...rows].sort(ui.filter === "mine" ? (a, b) => days(b) - days(a) || a.id.localeCompare(b.id) : (a, b) => a.id.localeCompare(b.id));
    clear(list);
    for (const hh of rows.slice(0, ui.shown)) {
      list.append(h("li", {}, h("a", { class: "hh-card", href: `#/households/${encodeURIComponent(hh.id)}`, "data-household": hh.id },
        h("span", { class: "hh-top" }, h("span", { class: "hh-name" }, hh.head_name || hh.id), categoryBadge(hh.category)),
        h("span", { class: "hh-meta" }, [hh.group, hh.address, Number.isInteger(hh.population) ? t("people", { n: hh.population }) : null].filter(Boolean).join(" · ")),
        visitLine(hh, visits.get(hh.id)))));
    }
    clear(countEl).append(t("showing", { shown: Math.min(ui.shown, rows.length), total: rows.length }));
    more.hidden = rows.length <= ui.shown;
    if (!rows.length) list.append(h("li", { class: "muted empty-row" }, t("no_match")));
  };
  const more = h("button", { type: "button", class: "secondary wide", onclick: () => { ui.shown += LIST_PAGE; fill(); } }, t("show_more"));
  const hadFocus = document.activeElement && document.activeElement.id === "hh-search";
  setMain(page(t("tab_households"), notices,
    h("div", { class: "searchbar" }, h("label", { for: "hh-search", class: "visually-hidden" }, t("search_label")), search),
    mine.length ? h("div", { class: "segmented", role: "group", "aria-label": t("filter_label") },
      filterBtn("mine", t("filter_mine"), mine.length), filterBtn("all", t("filter_all"), households.length)) : null,
    countEl, list, more));
  fill();
  if (hadFocus) search.focus();
}

async function getHousehold(id) {
  let hh = await db.get("households", id);
  if (!hh && engine.current) {
    await engine.current;
    hh = await db.get("households", id);
  }
  if (!hh && navigator.onLine !== false) {
    try {
      hh = await engine.request("GET", `/api/v1/households/${encodeURIComponent(id)}`);
      if (hh && hh.id) await db.put("households", hh.id, hh);
    } catch (_) {
      hh = null;
    }
  }
  return hh || null;
}

async function getForm(formId, version = null) {
  let def = await engine.formDefinition(formId, version);
  if (!def && engine.current) {
    await engine.current;
    def = await engine.formDefinition(formId, version);
  }
  if (!def && navigator.onLine !== false) {
    await engine.run("form");
    def = await engine.formDefinition(formId, version);
  }
  if (!def && version !== null) def = await engine.formDefinition(formId);
  return def ? openSections(def) : def;
}

function factsList(pairs) {
  return h("dl", { class: "facts" }, pairs.filter(([, v]) => v !== null && v !== undefined && v !== "")
    .map(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]));
}

async function showHousehold(token, id) {
  current.refresh = () => showHousehold(navToken, id);
  const hh = await getHousehold(id);
  if (token !== navToken) return;
  if (!hh) {
    setMain(page(t("not_found"), h("p", {}, t("household_missing", { id })), h("a", { class: "button", href: "#/" }, t("back_home"))));
    return;
  }
  const [forms, drafts, outbox, sent, visits] = await Promise.all([
    db.get("meta", "forms"), db.all("drafts"), db.all("outbox"), db.all("sent"), lastVisits(),
  ]);
  if (token !== navToken) return;
  const formButtons = [];
  for (const f of forms || [{ id: "household_visit" }, { id: "pv_enrollment" }]) {
    formButtons.push(h("a", {
      class: `button ${f.id === "household_visit" ? "primary" : "secondary"} wide`, "data-form": f.id,
      href: `#/households/${encodeURIComponent(hh.id)}/forms/${encodeURIComponent(f.id)}`,
    }, `＋ ${await formTitle(f.id, f.version)}`));
  }
  const mineDrafts = drafts.filter((d) => d.household_id === hh.id);
  const records = [...outbox, ...sent].filter((i) => i.household_id === hh.id)
    .sort((a, b) => String(b.created_at).localeCompare(String(a.created_at)));
  const members = (hh.members || []).map((m) => h("li", {},
    h("strong", {}, m.name || "—"), " ", [m.relation, m.sex ? t(`sex_${m.sex}`) : null, m.birth_year ? t("born", { y: m.birth_year }) : null, m.health, m.work].filter(Boolean).join(" · ")));
  const plots = (hh.plots || []).map((p) => h("li", {},
    h("strong", {}, p.name || "—"), ` ${t("mu", { n: p.area_mu })} · `,
    t("bounds", { e: p.east || "—", w: p.west || "—", s: p.south || "—", n: p.north || "—" }), " · ",
    p.contract_signed ? t("contract_yes") : h("span", { class: "warn-text" }, t("contract_no"))));
  const pv = hh.pv_status;
  setMain(
    h("p", { class: "crumb" }, h("a", { href: "#/" }, `‹ ${t("tab_households")}`)),
    h("div", { class: "title-row" }, h("h1", { class: "page-title" }, hh.head_name || hh.id), categoryBadge(hh.category)),
    visitLine(hh, visits.get(hh.id)),
    h("div", { class: "actions" }, formButtons,
      // The profile is rendered by the server, so it needs the network; offline, say so instead.
      navigator.onLine !== false
        ? h("a", { class: "button secondary wide", "data-action": "print-profile", target: "_blank", rel: "noopener",
          href: `/households/${encodeURIComponent(hh.id)}/profile.pdf?lang=${lang()}` }, t("print_profile"))
        : h("p", { class: "muted" }, t("print_offline"))),
    mineDrafts.length ? h("section", { class: "card" }, h("h2", {}, t("drafts_here")),
      h("ul", { class: "plain" }, await Promise.all(mineDrafts.map(async (d) => h("li", {},
        h("a", { href: `#/drafts/${d.id}`, class: "button secondary wide" }, `${await formTitle(d.form, d.form_version)} · ${t("edited_at", { time: fmtTime(d.updated_at || d.created_at) })}`)))))) : null,
    records.length ? h("section", { class: "card" }, h("h2", {}, t("records_here")),
      h("ul", { class: "plain records" }, await Promise.all(records.slice(0, 20).map((r) => recordRow(r))))) : null,
    h("section", { class: "card" }, h("h2", {}, t("basic_facts")), factsList([
      [t("f_id"), hh.id], [t("f_group"), hh.group], [t("f_address"), hh.address],
      [t("f_phone"), hh.phone ? h("a", { href: `tel:${hh.phone}` }, hh.phone) : null],
      [t("f_population"), hh.population],
    ])),
    h("section", { class: "card" }, h("h2", {}, t("members_title", { n: (hh.members || []).length })),
      members.length ? h("ul", { class: "plain lines" }, members) : h("p", { class: "muted" }, t("none"))),
    plots.length ? h("section", { class: "card" }, h("h2", {}, t("plots_title")), h("ul", { class: "plain lines" }, plots)) : null,
    pv ? h("section", { class: "card" }, h("h2", {}, t("pv_title")), factsList([
      [t("pv_stage"), pv.stage], [t("pv_capacity"), pv.capacity_kw ? `${pv.capacity_kw} kW` : null],
      [t("pv_kwh"), pv.expected_kwh_year ? `${pv.expected_kwh_year} kWh` : null], [t("pv_funding"), pv.funding_mode],
    ])) : null,
  );
}

// ---- outbox and sent records -------------------------------------------------------------------

function stateWords(item) {
  if (item.review) {
    const review = { received: t("review_received"), has_issues: t("review_issues"), approved: t("review_approved") }[item.review.state] || item.review.state;
    const failed = (item.attachments || []).filter((a) => a.failed);
    return {
      state: "sent", cls: item.review.state === "has_issues" ? "warn" : item.review.state === "approved" ? "ok" : "ok",
      text: `${t("state_sent", { time: fmtTime(item.sent_at) })} · ${review}`,
      extra: [
        ...(item.review.comments || []).map((c) => `${c.by || ""}：${c.text}`),
        ...failed.map((a) => t("photo_not_uploaded", { why: pick(a.failed, lang()) })),
      ],
    };
  }
  const state = item.state === "sending" && !engine.status.running ? "waiting" : item.state; // interrupted
  switch (state) {
    case "waiting":
      return { state: "waiting", cls: "wait", text: t("state_waiting"), extra: item.last_error ? [t("state_last_error", { why: pick(item.last_error, lang()) })] : [] };
    case "sending":
      return { state: "sending", cls: "wait", text: t("state_sending"), extra: [] };
    case "uploading": {
      const atts = item.attachments || [];
      return { state: "uploading", cls: "wait", text: t("state_uploading", { done: atts.filter((a) => a.uploaded).length, total: atts.length }), extra: [] };
    }
    case "refused":
      return { state: "refused", cls: "bad", text: t("state_refused"), extra: [] };
    default:
      return { state: item.state, cls: "wait", text: item.state, extra: [] };
  }
}

async function recordRow(item, who = null) {
  const words = stateWords(item);
  const date = item.answers && item.answers.visit_date ? fmtDate(item.answers.visit_date) : fmtTime(item.created_at);
  const title = [who, await formTitle(item.form, item.form_version), date].filter(Boolean).join(" · ");
  return h("li", { class: `record state-${words.state}`, "data-uuid": item.uuid, "data-state": words.state },
    h("a", { href: `#/outbox/${item.uuid}` }, h("span", { class: "rec-title" }, title),
      h("span", { class: `pill ${words.cls}` }, words.text)),
    words.extra.length ? h("ul", { class: "extra" }, words.extra.map((x) => h("li", {}, x))) : null);
}

async function refusedCard(item, households) {
  const def = await engine.formDefinition(item.form, item.form_version) || await engine.formDefinition(item.form);
  const hh = households.get(item.household_id);
  const reasons = (item.errors || []).map((e) => h("li", {}, errorText(e)));
  return h("li", { class: "card refused-card", "data-uuid": item.uuid, "data-state": "refused" },
    h("p", { class: "rec-title" }, `${def ? pick(def.title, lang()) : item.form} · ${householdLabel(hh, item.household_id)}`),
    h("p", { class: "pill bad" }, t("state_refused")),
    h("ul", { class: "reasons" }, reasons.length ? reasons : h("li", {}, t("refused_no_reason"))),
    h("div", { class: "row" },
      h("button", { type: "button", class: "primary", "data-action": "fix", onclick: async () => {
        const draft = await engine.reopen(item.uuid);
        if (draft) location.hash = `#/drafts/${draft.id}`;
      } }, t("fix_and_resend")),
      h("button", { type: "button", class: "link danger", "data-action": "discard", onclick: async () => {
        if (!window.confirm(t("discard_confirm"))) return;
        await engine.discard(item.uuid);
        toast(t("discarded"));
        current.refresh && current.refresh();
      } }, t("discard"))));
}

async function showOutbox(token) {
  current.refresh = () => showOutbox(navToken);
  const [outbox, sent, householdsList] = await Promise.all([db.all("outbox"), db.all("sent"), db.all("households")]);
  if (token !== navToken) return;
  const households = new Map(householdsList.map((x) => [x.id, x]));
  const byTime = (a, b) => String(b.queued_at || b.sent_at || "").localeCompare(String(a.queued_at || a.sent_at || ""));
  const refused = outbox.filter((i) => i.state === "refused").sort(byTime);
  const pending = outbox.filter((i) => PENDING_STATES.has(i.state)).sort(byTime);
  const done = sent.sort((a, b) => String(b.sent_at).localeCompare(String(a.sent_at))).slice(0, 50);
  const withHousehold = (item) => recordRow(item, householdLabel(households.get(item.household_id), item.household_id));
  setMain(page(t("tab_outbox"),
    h("p", { class: "muted" }, t("outbox_help")),
    refused.length ? h("section", {}, h("h2", {}, t("section_refused", { n: refused.length })),
      h("ul", { class: "plain" }, await Promise.all(refused.map((i) => refusedCard(i, households))))) : null,
    h("section", { class: "card" }, h("h2", {}, t("section_pending", { n: pending.length })),
      pending.length ? h("ul", { class: "plain records" }, await Promise.all(pending.map(withHousehold)))
        : h("p", { class: "muted" }, t("nothing_pending")),
      h("button", { type: "button", class: "secondary", "data-action": "sync-again" }, t("sync_now"))),
    h("section", { class: "card" }, h("h2", {}, t("section_sent")),
      done.length ? h("ul", { class: "plain records" }, await Promise.all(done.map(withHousehold)))
        : h("p", { class: "muted" }, t("nothing_sent")))));
}

function answerText(field, value) {
  if (value === undefined || value === null || value === "") return "—";
  switch (field.type) {
    case "select_one": {
      const c = (field.choices || []).find((x) => x.name === value);
      return c ? pick(c.label, lang()) : String(value);
    }
    case "select_multiple":
      return (Array.isArray(value) ? value : []).map((v) => {
        const c = (field.choices || []).find((x) => x.name === v);
        return c ? pick(c.label, lang()) : v;
      }).join("、");
    case "geopoint":
      return t("geo_value", { lat: value.lat, lon: value.lon, acc: Math.round(value.accuracy || 0) });
    default:
      return String(value);
  }
}

function answerList(def, answers) {
  const rows = [];
  for (const field of def.fields || []) {
    if (field.type === "note" || !(field.name in answers)) continue;
    if (field.type === "repeat") {
      const entries = answers[field.name] || [];
      rows.push(h("dt", {}, pick(field.label, lang())), h("dd", {}, h("ol", {}, entries.map((e) => h("li", {},
        (field.fields || []).filter((c) => c.name in e).map((c) => `${pick(c.label, lang())}：${answerText(c, e[c.name])}`).join("；"))))));
    } else {
      rows.push(h("dt", {}, pick(field.label, lang())), h("dd", {}, answerText(field, answers[field.name])));
    }
  }
  return h("dl", { class: "facts answers" }, rows);
}

async function showItem(token, itemUuid) {
  current.refresh = () => showItem(navToken, itemUuid);
  const item = await db.get("outbox", itemUuid) || await db.get("sent", itemUuid);
  if (token !== navToken) return;
  if (!item) {
    setMain(page(t("not_found"), h("a", { class: "button", href: "#/outbox" }, t("tab_outbox"))));
    return;
  }
  const def = await engine.formDefinition(item.form, item.form_version) || await engine.formDefinition(item.form);
  const hh = await db.get("households", item.household_id);
  const words = stateWords(item);
  setMain(
    h("p", { class: "crumb" }, h("a", { href: "#/outbox" }, `‹ ${t("tab_outbox")}`)),
    h("h1", { class: "page-title" }, def ? pick(def.title, lang()) : item.form),
    h("p", {}, householdLabel(hh, item.household_id), " · ", item.household_id),
    h("p", { "data-state": words.state }, h("span", { class: `pill ${words.cls}` }, words.text)),
    words.extra.length ? h("ul", { class: "extra" }, words.extra.map((x) => h("li", {}, x))) : null,
    item.state === "refused" ? await refusedCard(item, new Map([[item.household_id, hh]])) : null,
    def ? h("section", { class: "card" }, h("h2", {}, t("answers_title")), answerList(def, item.answers || {})) : null,
    h("p", { class: "muted small" }, `uuid ${item.uuid}`),
  );
}

// ---- drafts and forms --------------------------------------------------------------------------------

async function showDrafts(token) {
  const [drafts, householdsList] = await Promise.all([db.all("drafts"), db.all("households")]);
  if (token !== navToken) return;
  const households = new Map(householdsList.map((x) => [x.id, x]));
  drafts.sort((a, b) => String(b.updated_at || b.created_at).localeCompare(String(a.updated_at || a.created_at)));
  const rows = await Promise.all(drafts.map(async (d) => h("li", { class: "card draft", "data-draft": d.id },
    h("p", { class: "rec-title" }, `${await formTitle(d.form, d.form_version)} · ${householdLabel(households.get(d.household_id), d.household_id)}`),
    h("p", { class: "muted" }, t("edited_at", { time: fmtTime(d.updated_at || d.created_at) })),
    (d.server_errors || []).length ? h("p", { class: "pill bad" }, t("draft_was_refused")) : null,
    h("div", { class: "row" },
      h("a", { class: "button primary", href: `#/drafts/${d.id}` }, t("resume")),
      h("button", { type: "button", class: "link danger", onclick: async () => {
        if (!window.confirm(t("delete_draft_confirm"))) return;
        await db.delete("drafts", d.id);
        forgetJournal(d.id);
        toast(t("draft_deleted"));
        showDrafts(navToken);
      } }, t("delete"))))));
  setMain(page(t("tab_drafts"), h("p", { class: "muted" }, t("drafts_help")),
    rows.length ? h("ul", { class: "plain" }, rows) : h("p", { class: "card empty" }, t("no_drafts"))));
  renderTabs(engine.status);
  current.refresh = null;
}

async function openNewForm(token, householdId, formId) {
  setMain(h("p", { class: "loading" }, t("loading")));
  const [hh, def] = await Promise.all([getHousehold(householdId), getForm(formId)]);
  if (token !== navToken) return;
  if (!def || !hh) {
    setMain(page(t("cannot_open"), h("p", {}, !def ? t("form_missing") : t("household_missing", { id: householdId })),
      h("button", { type: "button", class: "secondary", "data-action": "sync-again" }, t("sync_now")),
      h("a", { class: "button", href: "#/" }, t("back_home"))));
    return;
  }
  const draft = {
    id: uuid(), form: def.id, form_version: def.version, household_id: hh.id,
    base_version: Number.isInteger(hh.version) ? hh.version : null,
    created_at: isoNow(), updated_at: null, answers: {},
  };
  await showForm(token, draft, def, hh, true);
}

async function openDraft(token, draftId) {
  const draft = await db.get("drafts", draftId);
  if (token !== navToken) return;
  if (!draft) {
    setMain(page(t("not_found"), h("p", {}, t("draft_missing")), h("a", { class: "button", href: "#/drafts" }, t("tab_drafts"))));
    return;
  }
  const [def, hh] = await Promise.all([getForm(draft.form, draft.form_version), db.get("households", draft.household_id)]);
  if (token !== navToken) return;
  if (!def) {
    setMain(page(t("cannot_open"), h("p", {}, t("form_missing"))));
    return;
  }
  await showForm(token, draft, def, hh || null, false);
}

// Drafts are written to IndexedDB after every change, one write at a time. Each change is first
// journaled synchronously in localStorage, so a change made just before the page dies (reload, the
// phone killing the browser) is not lost: recoverJournal() writes it to IndexedDB on the next start.
const JOURNAL = "jiedui.journal.";

function journal(draft) {
  try { localStorage.setItem(JOURNAL + draft.id, JSON.stringify(draft)); } catch (_) { /* storage full or blocked */ }
}

function forgetJournal(id, upToRev = Infinity) {
  try {
    const raw = localStorage.getItem(JOURNAL + id);
    if (raw && (JSON.parse(raw).rev || 0) <= upToRev) localStorage.removeItem(JOURNAL + id);
  } catch (_) { /* nothing to forget */ }
}

async function recoverJournal() {
  let keys = [];
  try { keys = Object.keys(localStorage).filter((k) => k.startsWith(JOURNAL)); } catch (_) { return; }
  for (const key of keys) {
    try {
      const saved = JSON.parse(localStorage.getItem(key));
      const id = saved && saved.id;
      if (id && !(await db.get("outbox", id)) && !(await db.get("sent", id))) {
        await db.update("drafts", id, (old) => (!old || (old.rev || 0) < (saved.rev || 0) ? saved : old));
      }
      localStorage.removeItem(key);
    } catch (err) {
      console.warn("draft journal not recovered yet", key, err);
    }
  }
}

function makeSaver(draft, onSaved, onFailed) {
  let dirty = false;
  let running = null;
  const loop = async () => {
    while (dirty) {
      dirty = false;
      const copy = clone(draft);
      try {
        await db.put("drafts", draft.id, copy);
        forgetJournal(draft.id, copy.rev);
        onSaved();
      } catch (err) {
        dirty = true; // kept in memory and in the journal; try again shortly (db.js already retried)
        onFailed(err);
        await new Promise((r) => setTimeout(r, 2000));
      }
    }
    running = null;
  };
  return {
    save() {
      draft.rev = (draft.rev || 0) + 1;
      draft.updated_at = isoNow();
      journal(draft);
      dirty = true;
      if (!running) running = loop();
      return running;
    },
    flush() { return running || Promise.resolve(); },
  };
}

async function showForm(token, draft, def, hh, isNew) {
  const settings = { ...((await db.get("meta", "settings")) || {}) };
  if (token !== navToken) return;
  const saveState = h("span", { class: "save-state", "aria-live": "polite" });
  let saved = !isNew;
  let submitted = false;
  const saver = makeSaver(draft, () => {
    saveState.textContent = t("autosaved", { time: fmtTime(draft.updated_at) });
    saveState.classList.remove("warn-text");
  }, () => {
    saveState.textContent = t("save_failed");
    saveState.classList.add("warn-text");
  });
  const { FormView } = await import("./form.js"); // loaded when first needed (precached for offline)
  if (token !== navToken) return;
  const view = new FormView({
    definition: def, answers: draft.answers, settings, db, household: hh, serverErrors: draft.server_errors || [],
    onChange: (answers) => {
      draft.answers = answers;
      if (!saved) {
        saved = true;
        history.replaceState(null, "", `#/drafts/${draft.id}`); // a reload resumes this draft
      }
      if (draft.server_errors && draft.server_errors.length) draft.server_errors = view ? [...view.serverErrors.values(), ...view.otherErrors] : draft.server_errors;
      saver.save();
    },
  });
  const saveDraft = async () => {
    draft.answers = view.getAnswers();
    await saver.save();
    await saver.flush();
    toast(t("draft_saved"));
    location.hash = "#/drafts";
  };
  const submit = async (event) => {
    const button = event.currentTarget;
    const problems = view.validate();
    if (problems.length) {
      toast(t("fix_first", { n: problems.length }));
      return;
    }
    button.disabled = true;
    try {
      draft.answers = view.getAnswers();
      await saver.flush();
      await engine.submitDraft(draft, def, hh);
      forgetJournal(draft.id);
      submitted = true;
      toast(t("queued"));
      location.hash = "#/outbox";
      engine.run("submit");
    } catch (err) {
      toast(t("submit_failed", { why: err && err.message }));
    } finally {
      button.disabled = false;
    }
  };
  setMain(h("div", { class: "form-page" },
    h("p", { class: "crumb" }, h("a", { href: hh ? `#/households/${encodeURIComponent(hh.id)}` : "#/" }, `‹ ${householdLabel(hh, draft.household_id)}`)),
    h("h1", { class: "page-title" }, pick(def.title, lang())),
    h("p", { class: "muted" }, [hh ? [hh.head_name, hh.group, hh.id].filter(Boolean).join(" · ") : draft.household_id]),
    (draft.server_errors || []).length ? h("p", { class: "notice error" }, t("was_refused")) : null,
    view.el,
    h("div", { class: "actionbar" }, saveState,
      h("div", { class: "row" },
        h("button", { type: "button", class: "secondary", "data-action": "save-draft", onclick: saveDraft }, t("save_draft")),
        h("button", { type: "button", class: "primary", "data-action": "submit", onclick: submit }, t("submit"))))));
  current.isForm = true;
  current.leave = () => {
    view.destroy();
    if (!submitted) saver.flush();
  };
  current.relang = () => {
    view.destroy();
    draft.answers = view.getAnswers();
    showForm(navToken, draft, def, hh, !saved);
  };
}

// ---- router ------------------------------------------------------------------------------------------

async function route() {
  if (current.leave) current.leave();
  const token = ++navToken;
  const parts = (location.hash.replace(/^#\/?/, "") || "").split("/").filter(Boolean).map(decodeURIComponent);
  const tab = parts[0] === "drafts" ? "drafts" : parts[0] === "outbox" ? "outbox" : "households";
  current = { name: parts[0] || "home", tab };
  renderTabs(engine.status);
  window.scrollTo(0, 0);
  try {
    if (parts[0] === "households" && parts[1] && parts[2] === "forms" && parts[3]) await openNewForm(token, parts[1], parts[3]);
    else if (parts[0] === "households" && parts[1]) await showHousehold(token, parts[1]);
    else if (parts[0] === "drafts" && parts[1]) await openDraft(token, parts[1]);
    else if (parts[0] === "drafts") await showDrafts(token);
    else if (parts[0] === "outbox" && parts[1]) await showItem(token, parts[1]);
    else if (parts[0] === "outbox") await showOutbox(token);
    else await showHouseholds(token);
  } catch (err) {
    console.error(err);
    if (token === navToken) setMain(page(t("error_title"), h("p", { class: "error" }, String(err && err.message))));
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

/** Photos no draft or outbox item refers to any more (retaken, removed, discarded) are deleted. */
async function collectOrphanPhotos() {
  const [names, drafts, outbox] = await Promise.all([db.keys("photos"), db.all("drafts"), db.all("outbox")]);
  const used = new Set();
  const walk = (v) => {
    if (typeof v === "string") used.add(v);
    else if (Array.isArray(v)) v.forEach(walk);
    else if (v && typeof v === "object") Object.values(v).forEach(walk);
  };
  drafts.forEach((d) => walk(d.answers));
  outbox.forEach((i) => { walk(i.answers); (i.attachments || []).forEach((a) => used.add(a.name)); });
  const orphans = names.filter((n) => !used.has(n));
  if (orphans.length) await db.tx("photos", "readwrite", (o) => Promise.all(orphans.map((n) => o.delete("photos", n))));
}

// ---- start ---------------------------------------------------------------------------------------------

async function start() {
  document.getElementById("lang-switch").addEventListener("click", () => setLang(lang() === "zh" ? "en" : "zh"));
  onLangChange(() => {
    renderChrome();
    if (current.relang) current.relang();
    else route();
  });
  document.addEventListener("click", (e) => {
    const button = e.target.closest("[data-action=sync], [data-action=sync-again]"); // only the header one is "sync"
    if (button) engine.run("button");
  });
  renderChrome();
  await engine.load();
  engine.subscribe(onStatus);
  window.addEventListener("hashchange", route);
  window.addEventListener("online", () => engine.run("online"));
  window.addEventListener("offline", () => engine.emit({ offline: true }));
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible" && !engine.current && (engine.status.pending || engine.status.error)) engine.run("visible");
  });
  try { await recoverJournal(); } catch (err) { console.warn(err); }
  try { await collectOrphanPhotos(); } catch (err) { console.warn(err); }
  route();
  engine.run("start");
  registerServiceWorker();
}

start();
