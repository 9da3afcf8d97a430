// Pieces every screen of the phone app shares: dates and times in the cadre's language, the main
// area and page titles, the toast, household cards, the words for a record's state, and one read of
// what the phone holds (households in scope, own records, form definitions).

import { append, clear, h } from "./dom.js";
import { lang, pick, t } from "./i18n.js";
import { PENDING_STATES } from "./sync.js";
import { isEdit } from "./sync/edits.js";
import { daysSince } from "./util.js";
import { NOT_VISITED_DAYS, reviewState } from "./visits.js";

const main = () => document.getElementById("main");

// Dates are written by hand rather than with Intl.DateTimeFormat: the first formatter a page makes
// loads the locale's calendar data, which took tens of milliseconds of the main thread here (more
// on a cheap phone), and these four shapes are all the app needs.
const MONTHS_EN = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
const two = (n) => String(n).padStart(2, "0");
function format(kind, d) {
  const [y, m, day] = [d.getFullYear(), d.getMonth(), d.getDate()];
  const zh = lang() === "zh";
  const time = `${two(d.getHours())}:${two(d.getMinutes())}`;
  const md = zh ? `${m + 1}月${day}日` : `${day} ${MONTHS_EN[m]}`;
  if (kind === "time") return time;
  if (kind === "dayTime") return `${md} ${time}`;
  if (kind === "date") return zh ? `${y}年${md}` : `${md} ${y}`;
  return md;
}

export function fmtTime(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  return format(d.toDateString() === new Date().toDateString() ? "time" : "dayTime", d);
}

export function fmtDate(isoDate) {
  if (!isoDate) return "";
  const d = new Date(`${String(isoDate).slice(0, 10)}T00:00:00`);
  if (Number.isNaN(d.getTime())) return isoDate;
  return format("date", d);
}

/** A short date without the year, for lists ("5月6日", "6 May"). */
export function fmtDay(isoDate) {
  const d = new Date(`${String(isoDate).slice(0, 10)}T00:00:00`);
  if (Number.isNaN(d.getTime())) return isoDate || "";
  return format("day", d);
}

let toastTimer = null;
/** A message at the bottom of the screen for a few seconds (read out by screen readers). */
export function toast(text, ms = 5000) {
  const el = document.getElementById("toast");
  el.textContent = text;
  el.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { el.hidden = true; }, ms);
}

export function setMain(...children) {
  append(clear(main()), children);
}

export function page(title, ...children) {
  return [h("h1", { class: "page-title" }, title), ...children];
}

const CATEGORIES = ["tuopin", "jiance", "dibao", "ordinary"];
export function categoryBadge(c) {
  if (!c) return null;
  const known = CATEGORIES.includes(c) ? c : "ordinary";
  return h("span", { class: `badge cat-${known}` }, t(`cat_${known}`));
}

export const householdLabel = (hh, id) => (hh ? `${hh.head_name || id}` : id);

export function formTitleOf(catalog, formId, version = null) {
  const def = (version !== null && catalog.get(formId, version)) || catalog.current(formId);
  return def ? pick(def.title, lang()) : formId;
}

/** "Last visit ..." for a household, from the one last-visit rule's date (visits.js). */
export function visitLine(last) {
  const days = daysSince(last);
  if (days === null) return h("p", { class: "visit overdue" }, t("visit_never"));
  if (days >= NOT_VISITED_DAYS) return h("p", { class: "visit overdue" }, t("visit_overdue", { n: days }));
  return h("p", { class: "visit" }, t(days === 0 ? "visit_today" : "visit_last", { date: fmtDate(last), n: days }));
}

/** A household in a list: one tap opens it (or `href`, e.g. straight to a new visit). */
export function householdCard(hh, last, href = null, extra = null) {
  return h("a", { class: "hh-card", href: href || `#/households/${encodeURIComponent(hh.id)}`, "data-household": hh.id },
    h("span", { class: "hh-top" }, h("span", { class: "hh-name" }, hh.head_name || hh.id), categoryBadge(hh.category)),
    h("span", { class: "hh-meta" }, [hh.group, hh.address, Number.isInteger(hh.population) ? t("people", { n: hh.population }) : null].filter(Boolean).join(" · ")),
    visitLine(last), extra);
}

const REVIEW_CLASS = { received: "ok", has_issues: "warn", approved: "ok", superseded: "muted-pill" };

/** The words for an outbox item's or a sent record's state, so a cadre never sends twice in doubt. */
export function stateWords(item, syncing = false) {
  if (!item.state) { // a sent record (the outbox's items always have a state)
    const review = reviewState(item);
    const failed = (item.attachments || []).filter((a) => a.failed);
    const words = { received: t("review_received"), has_issues: t("review_issues"), approved: t("review_approved"), superseded: t("review_superseded") };
    return {
      state: "sent", review, cls: REVIEW_CLASS[review] || "ok",
      text: `${t("state_sent", { time: fmtTime(item.sent_at) })} · ${words[review] || review}`,
      extra: [
        ...(review === "has_issues" && item.review.comment ? [`${t("review_comment")}：${item.review.comment}`] : []),
        ...failed.map((a) => t("photo_not_uploaded", { why: pick(a.failed, lang()) })),
      ],
    };
  }
  const state = item.state === "sending" && !syncing ? "waiting" : item.state; // an interrupted send
  switch (state) {
    case "waiting":
      return { state, cls: "wait", text: t("state_waiting"), extra: item.last_error ? [t("state_last_error", { why: pick(item.last_error, lang()) })] : [] };
    case "sending":
      return { state, cls: "wait", text: t("state_sending"), extra: [] };
    case "uploading": {
      const atts = item.attachments || [];
      return { state, cls: "wait", text: t("state_uploading", { done: atts.filter((a) => a.uploaded).length, total: atts.length }), extra: [] };
    }
    case "refused":
      return { state, cls: "bad", text: t("state_refused"), extra: [] };
    default:
      return { state: item.state, cls: "wait", text: String(item.state), extra: [] };
  }
}

/** One record in a list: what, when, its state in words; one tap opens it. */
export function recordRow(item, { catalog, who = null, syncing = false, visitDate = null }) {
  const words = stateWords(item, syncing);
  const when = visitDate ? fmtDate(visitDate) : fmtTime(item.created_at);
  const title = [who, formTitleOf(catalog, item.form, item.form_version), when].filter(Boolean).join(" · ");
  return h("li", { class: `record state-${words.state}`, "data-uuid": item.uuid, "data-state": words.state, "data-review": words.review || null },
    h("a", { href: `#/outbox/${item.uuid}` }, h("span", { class: "rec-title" }, title),
      h("span", { class: `pill ${words.cls}` }, words.text),
      item.supersedes ? h("span", { class: "muted small" }, t("draft_correction_badge")) : null),
    words.extra.length ? h("ul", { class: "extra" }, words.extra.map((x) => h("li", {}, x))) : null);
}

/**
 * What the phone holds, read once for a screen: households in the cadre's scope, the user, this
 * cadre's outbox items (visits; household edits apart) and sent records, drafts, the stored form definitions, and when households
 * were last pulled (visits.js uses it to tell what the server already reflects).
 */
export async function phoneState(db, engine) {
  const [all, villages, user, outbox, sent, drafts, pulledAt, catalog] = await Promise.all([
    db.all("households"), db.get("meta", "villages"), db.get("meta", "user"), db.all("outbox"), db.all("sent"),
    db.all("drafts"), db.get("meta", "pulledAt"), engine.catalog(),
  ]);
  const scope = Array.isArray(villages) && villages.length ? new Set(villages.map((v) => v.id)) : null;
  const mine = (r) => !r.user_id || !user || r.user_id === user.id;
  return {
    households: all.filter((hh) => !scope || scope.has(hh.village_id)),
    user: user || null,
    // the visits waiting; household edits (sync/edits.js) are their own list, counted as pending too
    outbox: outbox.filter((i) => mine(i) && !isEdit(i)),
    edits: outbox.filter((i) => mine(i) && isEdit(i)),
    pending: outbox.filter((i) => mine(i) && PENDING_STATES.has(i.state)),
    sent: sent.filter(mine),
    drafts,
    pulledAt: pulledAt || null,
    catalog,
  };
}

/** The form a visit is made with: the one whose answers close promises (declared), else the first. */
export function visitFormId(catalog) {
  const forms = catalog.forms || [];
  const closing = forms.find((f) => {
    const def = catalog.current(f.id);
    return def && def.effects && def.effects.followup_answers;
  });
  const dated = forms.find((f) => {
    const def = catalog.current(f.id);
    return def && def.effects && def.effects.visit_date;
  });
  return (closing || dated || forms[0] || { id: "household_visit" }).id;
}

/** The household from the phone, else (online) from the server, kept for offline use. */
export async function getHousehold(ctx, id) {
  let hh = await ctx.db.get("households", id);
  if (!hh && ctx.engine.current) {
    await ctx.engine.current; // the first sync may be bringing it
    hh = await ctx.db.get("households", id);
  }
  if (!hh && navigator.onLine !== false) {
    try {
      hh = await ctx.engine.request("GET", `/api/v1/households/${encodeURIComponent(id)}`);
      if (hh && hh.id) await ctx.db.put("households", hh.id, hh);
    } catch (_) {
      hh = null;
    }
  }
  return hh || null;
}
