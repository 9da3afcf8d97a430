// The cadre's own records: drafts, the outbox (waiting, refused, sent with the review state in
// words), one record with its answers (labels, choice texts, photo thumbnails from the phone) and
// returned visits with the supervisor's comments beside the answers they name.

import { errorText } from "./answers.js";
import { h } from "./dom.js";
import { lang, pick, t } from "./i18n.js";
import { deleteDraft, isOutdated, thumbKey } from "./records.js";
import { formShape } from "./form-shape.js";
import { PENDING_STATES } from "./sync.js";
import { returnedCard } from "./today.js";
import { fmtDate, fmtTime, formTitleOf, householdLabel, page, phoneState, recordRow, setMain, stateWords, toast } from "./ui.js";
import { compareText } from "./util.js";
import { promisesMade, returnedRecords, visitDateOf } from "./visits.js";

// ---- answers as a cadre reads them -----------------------------------------------------------------

/** Object URLs of thumbnails shown on the current screen, revoked when it is left. */
function photoUrls(ctx) {
  const urls = new Set();
  const previous = ctx.screen.leave;
  ctx.screen.leave = () => {
    if (previous) previous();
    urls.forEach((u) => URL.revokeObjectURL(u));
    urls.clear();
  };
  return urls;
}

/** A thumbnail of a photo or signature from the phone (its thumbnail, else the photo itself). */
function photoThumb(ctx, urls, name, label) {
  const box = h("span", { class: "thumb", "data-photo": name }, h("span", { class: "muted small" }, "…"));
  (async () => {
    const blob = (await ctx.db.get("photos", thumbKey(name))) || (await ctx.db.get("photos", name));
    if (!blob) {
      box.replaceChildren(h("span", { class: "muted small" }, t("photo_on_server")));
      return;
    }
    const url = URL.createObjectURL(blob);
    urls.add(url);
    box.replaceChildren(h("img", { src: url, alt: label, width: 120, height: 90, loading: "lazy" }));
  })().catch(() => box.replaceChildren(h("span", { class: "muted small" }, t("photo_on_server"))));
  return box;
}

function choiceText(field, value) {
  const c = (field.choices || []).find((x) => x.name === value);
  return c ? pick(c.label, lang()) : String(value);
}

function valueText(field, value) {
  if (value === undefined || value === null || value === "") return "—";
  switch (field.type) {
    case "select_one":
      return choiceText(field, value);
    case "select_multiple":
    case "rank":
      return (Array.isArray(value) ? value : []).map((v) => choiceText(field, v)).join("、");
    case "date":
      return fmtDate(value);
    case "geopoint":
      return t("geo_value", { lat: value.lat, lon: value.lon, acc: Math.round(value.accuracy || 0) });
    case "geotrace":
    case "geoshape":
      return t("trace_count", { n: value.length });
    default:
      return typeof value === "object" ? JSON.stringify(value) : String(value); // a repeat inside a repeat
  }
}

/**
 * The answers of a record with their labels, section by section; photos as thumbnails; promise
 * answers under the promise's text; a reviewer's comment beside the answer it names.
 * options: {record, review, promises (id -> {action, due_date}), urls}
 */
export function answerList(ctx, def, answers, { review = null, promises = new Map(), urls } = {}) {
  const notes = new Map(Object.entries((review && review.fields) || {}));
  const used = new Set();
  const note = (path) => {
    if (!notes.has(path)) return null;
    used.add(path);
    return h("p", { class: "review-note", "data-review-field": path }, t("field_comment", { text: notes.get(path) }));
  };
  const label = (f) => pick(f.label, lang()) || f.name;
  const valueEl = (field, value, path) => (field.type === "photo" || field.type === "signature") && typeof value === "string"
    ? photoThumb(ctx, urls, value, label(field)) : valueText(field, value);
  const rows = (fields) => {
    const out = [];
    for (const field of fields) {
      const value = answers[field.name];
      if (field.type === "note" || (value === undefined && !notes.has(field.name))) continue;
      if (field.type === "repeat") {
        const entries = Array.isArray(value) ? value : [];
        const idField = field.prefill ? (field.fields || []).find((c) => c.readonly) : null;
        out.push(h("dt", {}, label(field)), h("dd", { "data-answer": field.name }, note(field.name), h("ol", {}, entries.map((entry, i) => {
          const promise = idField && promises.get(entry[idField.name]);
          return h("li", {},
            promise ? h("strong", { class: "promise-text" }, `${promise.action}${promise.due_date ? `（${fmtDate(promise.due_date)}）` : ""}`) : null,
            (field.fields || []).filter((c) => c.name in entry && c !== idField).map((c) => h("span", { class: "entry-answer" },
              `${label(c)}：`, valueEl(c, entry[c.name], `${field.name}.${i}.${c.name}`), " ", note(`${field.name}.${i}.${c.name}`))));
        }))));
      } else {
        out.push(h("dt", {}, label(field)), h("dd", { "data-answer": field.name }, valueEl(field, value, field.name), note(field.name)));
      }
    }
    return out;
  };
  const shape = formShape(def);
  const blocks = shape.sections.length
    ? shape.sections.map((s) => {
      const inner = rows(shape.fields.filter((f) => f.section === s.name));
      return inner.length ? [h("h3", { class: "answers-section" }, pick(s.label, lang())), h("dl", { class: "facts answers" }, inner)] : null;
    })
    : [h("dl", { class: "facts answers" }, rows(shape.fields))];
  const orphans = [...notes.keys()].filter((p) => !used.has(p));
  return h("div", { class: "answer-list" },
    orphans.length ? h("ul", { class: "review-orphans" }, orphans.map((p) => h("li", {}, `${p}：${notes.get(p)}`))) : null,
    blocks);
}

/** Promise texts by id for a record's promise answers: its own copy, the household's, or own visits. */
function promiseTexts(record, state) {
  const map = new Map();
  for (const r of [...state.sent, ...state.outbox]) for (const p of promisesMade(r, state.catalog)) map.set(p.id, p);
  const hh = state.households.find((x) => x.id === record.household_id);
  for (const p of (hh && hh.open_followups) || []) map.set(p.id, p);
  for (const p of record.followups || []) map.set(p.id, p);
  return map;
}

// ---- drafts --------------------------------------------------------------------------------------

export async function showDrafts(ctx, token) {
  const state = await phoneState(ctx.db, ctx.engine);
  if (!ctx.live(token)) return;
  const households = new Map(state.households.map((x) => [x.id, x]));
  const drafts = [...state.drafts].sort((a, b) => compareText(b.updated_at || b.created_at, a.updated_at || a.created_at));
  const rows = drafts.map((d) => h("li", { class: "card draft", "data-draft": d.id },
    h("p", { class: "rec-title" }, `${formTitleOf(state.catalog, d.form, d.form_version)} · ${householdLabel(households.get(d.household_id), d.household_id)}`),
    h("p", { class: "muted" }, t("edited_at", { time: fmtTime(d.updated_at || d.created_at) })),
    h("p", { class: "badges" },
      (d.server_errors || []).length ? h("span", { class: "pill bad" }, t("draft_was_refused")) : null,
      isOutdated(d, state.catalog.currentVersion(d.form)) ? h("span", { class: "pill warn", "data-outdated": "true" }, t("draft_old_badge")) : null,
      d.supersedes ? h("span", { class: "pill warn" }, t("draft_correction_badge")) : null),
    h("div", { class: "row" },
      h("a", { class: "button primary", href: `#/drafts/${d.id}` }, t("resume")),
      h("button", { type: "button", class: "link danger", onclick: async () => {
        if (!window.confirm(t("delete_draft_confirm"))) return;
        await deleteDraft(ctx.db, d.id);
        toast(t("draft_deleted"));
        showDrafts(ctx, ctx.token());
      } }, t("delete")))));
  setMain(page(t("tab_drafts"), h("p", { class: "muted" }, t("drafts_help")),
    rows.length ? h("ul", { class: "plain" }, rows) : h("p", { class: "card empty" }, t("no_drafts"))));
}

// ---- outbox, one record, returned ------------------------------------------------------------------

function refusedCard(ctx, item, state) {
  const hh = state.households.find((x) => x.id === item.household_id);
  const reasons = (item.errors || []).map((e) => h("li", {}, errorText(e)));
  return h("li", { class: "card refused-card", "data-uuid": item.uuid, "data-state": "refused" },
    h("p", { class: "rec-title" }, `${formTitleOf(state.catalog, item.form, item.form_version)} · ${householdLabel(hh, item.household_id)}`),
    h("p", { class: "pill bad" }, t("state_refused")),
    h("ul", { class: "reasons" }, reasons.length ? reasons : h("li", {}, t("refused_no_reason"))),
    h("div", { class: "row" },
      h("button", { type: "button", class: "primary", "data-action": "fix", onclick: async () => {
        const draft = await ctx.engine.reopen(item.uuid);
        if (draft) location.hash = `#/drafts/${draft.id}`;
      } }, t("fix_and_resend")),
      h("button", { type: "button", class: "link danger", "data-action": "discard", onclick: async () => {
        if (!window.confirm(t("discard_confirm"))) return;
        await ctx.engine.discard(item.uuid);
        toast(t("discarded"));
        if (ctx.screen.refresh) ctx.screen.refresh();
      } }, t("discard"))));
}

export async function showOutbox(ctx, token) {
  ctx.screen.refresh = () => showOutbox(ctx, ctx.token());
  const state = await phoneState(ctx.db, ctx.engine);
  if (!ctx.live(token)) return;
  const households = new Map(state.households.map((x) => [x.id, x]));
  const byTime = (a, b) => compareText(b.queued_at || b.sent_at || "", a.queued_at || a.sent_at || "");
  const refused = state.outbox.filter((i) => i.state === "refused").sort(byTime);
  const pending = state.outbox.filter((i) => PENDING_STATES.has(i.state)).sort(byTime);
  // household edits (sync/edits.js): their state is on the household's screen
  const edits = state.edits.map((i) => h("li", { class: "record", "data-uuid": i.uuid, "data-state": i.state },
    h("a", { href: `#/households/${encodeURIComponent(i.household_id)}` }, `${t("plots_title")} · ${householdLabel(households.get(i.household_id), i.household_id)}`,
      h("span", { class: `pill ${i.state === "refused" ? "bad" : "wait"}` }, t(i.state === "refused" ? "state_refused" : "plots_unsent")))));
  const done = [...state.sent].sort((a, b) => compareText(b.sent_at, a.sent_at)).slice(0, 50);
  const returned = returnedRecords(state.sent, state.outbox);
  const syncing = ctx.engine.status.running;
  const row = (item) => recordRow(item, {
    catalog: state.catalog, syncing, who: householdLabel(households.get(item.household_id), item.household_id),
    visitDate: visitDateOf(item, state.catalog),
  });
  setMain(page(t("tab_outbox"),
    h("p", { class: "muted" }, t("outbox_help")),
    returned.length ? h("a", { class: "notice error", href: "#/returned" }, `${t("today_returned", { n: returned.length })} ›`) : null,
    refused.length ? h("section", {}, h("h2", {}, t("section_refused", { n: refused.length })),
      h("ul", { class: "plain" }, refused.map((i) => refusedCard(ctx, i, state)))) : null,
    h("section", { class: "card" }, h("h2", {}, t("section_pending", { n: pending.length })),
      pending.length || edits.length ? h("ul", { class: "plain records" }, pending.map(row), edits) : h("p", { class: "muted" }, t("nothing_pending")),
      h("button", { type: "button", class: "secondary", "data-action": "sync-again" }, t("sync_now"))),
    h("section", { class: "card" }, h("h2", {}, t("section_sent")),
      done.length ? h("ul", { class: "plain records" }, done.map(row)) : h("p", { class: "muted" }, t("nothing_sent")))));
}

export async function showItem(ctx, token, itemUuid) {
  ctx.screen.refresh = () => showItem(ctx, ctx.token(), itemUuid);
  const item = (await ctx.db.get("outbox", itemUuid)) || (await ctx.db.get("sent", itemUuid));
  const state = await phoneState(ctx.db, ctx.engine);
  if (!ctx.live(token)) return;
  if (!item) {
    setMain(page(t("not_found"), h("a", { class: "button", href: "#/outbox" }, t("tab_outbox"))));
    return;
  }
  const urls = photoUrls(ctx);
  const def = state.catalog.get(item.form, item.form_version) || state.catalog.current(item.form);
  const hh = state.households.find((x) => x.id === item.household_id);
  const words = stateWords(item, ctx.engine.status.running);
  const isReturned = returnedRecords(state.sent, state.outbox).some((r) => r.uuid === item.uuid);
  const answers = def ? h("section", { class: "card" }, h("h2", {}, t("answers_title")),
    answerList(ctx, def, item.answers || {}, { review: isReturned ? item.review : null, promises: promiseTexts(item, state), urls })) : null;
  setMain(
    h("p", { class: "crumb" }, h("a", { href: "#/outbox" }, `‹ ${t("tab_outbox")}`)),
    h("h1", { class: "page-title" }, formTitleOf(state.catalog, item.form, item.form_version)),
    h("p", {}, householdLabel(hh, item.household_id), " · ", item.household_id),
    h("p", { "data-state": words.state, "data-review": words.review || null }, h("span", { class: `pill ${words.cls}` }, words.text)),
    item.supersedes ? h("p", { class: "muted" }, t("draft_correction_badge")) : null,
    words.extra.length && !isReturned ? h("ul", { class: "extra" }, words.extra.map((x) => h("li", {}, x))) : null,
    item.state === "refused" ? h("ul", { class: "plain" }, refusedCard(ctx, item, state)) : null,
    isReturned ? h("ul", { class: "plain" }, returnedCard(ctx, item, state, { full: answers })) : answers,
    h("p", { class: "muted small" }, `uuid ${item.uuid}`),
  );
}

export async function showReturned(ctx, token) {
  ctx.screen.refresh = () => showReturned(ctx, ctx.token());
  const state = await phoneState(ctx.db, ctx.engine);
  if (!ctx.live(token)) return;
  const urls = photoUrls(ctx);
  const returned = returnedRecords(state.sent, state.outbox);
  const cards = returned.map((r) => {
    const def = state.catalog.get(r.form, r.form_version) || state.catalog.current(r.form);
    const full = def ? answerList(ctx, def, r.answers || {}, { review: r.review, promises: promiseTexts(r, state), urls }) : null;
    return returnedCard(ctx, r, state, { full });
  });
  setMain(
    h("p", { class: "crumb" }, h("a", { href: "#/outbox" }, `‹ ${t("tab_outbox")}`)),
    page(t("returned_title"), h("p", { class: "muted" }, t("returned_help")),
      cards.length ? h("ul", { class: "plain" }, cards) : h("p", { class: "card empty" }, t("returned_none"))));
}
