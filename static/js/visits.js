// What the phone knows about a household's visits and promises, from what was last pulled plus this
// phone's own records (outbox items and sent records), and the cadre's day built from it (Today).
// The one "last visit" rule of the phone lives here. Forms declare what their answers mean
// (`effects:` in the form file): which date dates a visit, which repeat holds promises made and
// which holds answers to earlier promises; nothing here names a field of a particular form.
// DOM-free (node --test). `catalog` is {get(id, version), current(id)} over stored definitions.

import { compareText, isObject } from "./util.js";

export const NOT_VISITED_DAYS = 30;
export const DUE_SOON_DAYS = 7;
export const CLOSED = new Set(["done", "dropped"]);
const ISO_DATE = /^\d{4}-\d{2}-\d{2}$/;

/**
 * One declared effect of a record's form (`effects.<key>`), from the version the record was made
 * on, else from the form's current version (a version that predates the declaration).
 */
function effectOf(record, catalog, key) {
  for (const def of [catalog.get(record.form, record.form_version), catalog.current(record.form)]) {
    if (def && isObject(def.effects) && def.effects[key] !== undefined) return def.effects[key];
  }
  return null;
}

const isDate = (v) => typeof v === "string" && ISO_DATE.test(v);

/** ISO date `days` after an ISO date (calendar arithmetic, no time zone involved). */
export function addDays(iso, days) {
  const d = new Date(`${iso}T00:00:00Z`);
  d.setUTCDate(d.getUTCDate() + days);
  return d.toISOString().slice(0, 10);
}

/** Whole days from one ISO date to another (b - a). */
export function daysBetween(a, b) {
  return Math.round((Date.parse(`${b}T00:00:00Z`) - Date.parse(`${a}T00:00:00Z`)) / 86400000);
}

/** The date an own record says its household was visited (the form's `effects.visit_date`), or null. */
export function visitDateOf(record, catalog) {
  const field = effectOf(record, catalog, "visit_date");
  const value = typeof field === "string" && isObject(record.answers) ? record.answers[field] : null;
  return isDate(value) ? value : null;
}

/**
 * A household's last visit: the server's `last_visit_date` (as last pulled), or a later visit
 * among this phone's own records of that household (sent or still waiting). Null: never visited.
 */
export function lastVisitDate(household, ownRecords, catalog) {
  let last = household && isDate(household.last_visit_date) ? household.last_visit_date : null;
  for (const record of ownRecords) {
    if (household && record.household_id !== household.id) continue;
    const date = visitDateOf(record, catalog);
    if (date && (!last || date > last)) last = date;
  }
  return last;
}

/** Last visit per household id, for lists (one pass over the records). */
export function lastVisits(households, ownRecords, catalog) {
  const byHousehold = new Map();
  for (const record of ownRecords) {
    const date = visitDateOf(record, catalog);
    if (date && (!byHousehold.has(record.household_id) || date > byHousehold.get(record.household_id))) {
      byHousehold.set(record.household_id, date);
    }
  }
  const out = new Map();
  for (const hh of households) {
    const own = byHousehold.get(hh.id) || null;
    const server = isDate(hh.last_visit_date) ? hh.last_visit_date : null;
    out.set(hh.id, own && (!server || own > server) ? own : server);
  }
  return out;
}

/** Promises a record makes (`effects.followups`), shaped like the server's `open_followups`. */
export function promisesMade(record, catalog) {
  const spec = effectOf(record, catalog, "followups");
  if (!isObject(spec) || !isObject(record.answers)) return [];
  const entries = Array.isArray(record.answers[spec.repeat]) ? record.answers[spec.repeat] : [];
  const visitDate = visitDateOf(record, catalog);
  return entries.map((entry, i) => ({
    id: `${record.uuid}:${i}`,
    action: isObject(entry) ? entry[spec.action] || "" : "",
    due_date: isObject(entry) && isDate(entry[spec.due]) ? entry[spec.due] : null,
    submission: record.uuid,
    visit_date: visitDate,
    cadre_id: record.user_id || null,
    status: "open",
    note: "",
    local: true,
  })).filter((p) => p.action && p.due_date); // the server opens only promises with both
}

/** Answers a record gives to earlier promises (`effects.followup_answers`): [{id, status, note}]. */
export function promiseAnswers(record, catalog) {
  const spec = effectOf(record, catalog, "followup_answers");
  if (!isObject(spec) || !isObject(record.answers)) return [];
  const entries = Array.isArray(record.answers[spec.repeat]) ? record.answers[spec.repeat] : [];
  return entries.filter((e) => isObject(e) && typeof e[spec.id] === "string" && typeof e[spec.status] === "string")
    .map((e) => ({ id: e[spec.id], status: e[spec.status], note: typeof e[spec.note] === "string" ? e[spec.note] : "" }));
}

/**
 * Whether the households as last pulled already hold what a record did. The server applies a
 * visit's effects when it stores the visit, and a sync pulls households after pushing, so a
 * record sent before the last households pull started is reflected; one still waiting is not.
 */
export function isReflected(record, pulledAt) {
  return !!(record.sent_at && pulledAt && pulledAt >= record.sent_at);
}

/**
 * A household's open promises as this phone knows them: the server's `open_followups` as last
 * pulled, with this phone's records that the pull does not reflect yet applied in the order they
 * were made (promises they made added; their answers applied: done or dropped ones removed, ones
 * in progress updated).
 */
export function openPromises(household, ownRecords, catalog, pulledAt = null) {
  const open = new Map();
  for (const p of (household && Array.isArray(household.open_followups) ? household.open_followups : [])) {
    if (isObject(p) && p.id && !CLOSED.has(p.status)) open.set(p.id, { ...p });
  }
  const pending = ownRecords.filter((r) => r.household_id === household.id && !isReflected(r, pulledAt))
    .sort((a, b) => compareText(a.created_at || "", b.created_at || ""));
  for (const record of pending) {
    for (const answer of promiseAnswers(record, catalog)) {
      if (!open.has(answer.id)) continue;
      if (CLOSED.has(answer.status)) open.delete(answer.id);
      else open.set(answer.id, { ...open.get(answer.id), status: answer.status, note: answer.note });
    }
    for (const p of promisesMade(record, catalog)) open.set(p.id, p);
  }
  return [...open.values()].sort((a, b) => compareText(a.due_date || "9999", b.due_date || "9999"));
}

/**
 * The promises a new visit carries forward: every promise open as this phone knows it, including
 * ones made in a visit still waiting in the outbox. The outbox sends in the order visits were
 * made, and the server checks each answer against the household as the earlier visits left it,
 * so a promise made this morning can be closed this afternoon without signal in between. (If the
 * earlier visit is refused, the answer is refused beside its entry, which can then be dropped.)
 */
export function promisesToCarry(household, ownRecords, catalog, pulledAt = null) {
  return openPromises(household, ownRecords, catalog, pulledAt);
}

const sentState = (r) => (r.superseded_by ? "superseded" : (r.review && r.review.state) || "received");

/** Returned records (has_issues) not yet corrected: no correction sent or waiting for them. */
export function returnedRecords(sent, outbox) {
  const corrected = new Set([...sent, ...outbox].map((r) => r.supersedes).filter(Boolean));
  return sent.filter((r) => sentState(r) === "has_issues" && !corrected.has(r.uuid))
    .sort((a, b) => compareText(b.review && b.review.at || b.sent_at || "", a.review && a.review.at || a.sent_at || ""));
}

/** The word for a sent record's state: received | has_issues | approved | superseded. */
export const reviewState = sentState;

/**
 * The cadre's day: promises overdue or due within DUE_SOON_DAYS (on the cadre's households),
 * returned visits to fix, and households not visited for NOT_VISITED_DAYS (never visited first).
 * households: as pulled; records: own outbox items and sent records; today: ISO date.
 */
export function agenda({ households, userId = null, outbox = [], sent = [], catalog, pulledAt = null, today }) {
  const records = [...outbox, ...sent];
  const byHousehold = new Map();
  for (const r of records) {
    if (!byHousehold.has(r.household_id)) byHousehold.set(r.household_id, []);
    byHousehold.get(r.household_id).push(r);
  }
  const paired = (hh) => !userId || (hh.cadre_ids || []).includes(userId);
  const overdue = [];
  const dueSoon = [];
  const notVisited = [];
  const horizon = addDays(today, DUE_SOON_DAYS - 1);
  const visits = lastVisits(households, records, catalog);
  for (const hh of households) {
    const own = byHousehold.get(hh.id) || [];
    const promises = openPromises(hh, own, catalog, pulledAt);
    const mine = paired(hh);
    for (const p of promises) {
      if (!p.due_date || (!mine && p.cadre_id !== userId)) continue;
      const item = { ...p, household: hh };
      if (p.due_date < today) overdue.push({ ...item, days: daysBetween(p.due_date, today) });
      else if (p.due_date <= horizon) dueSoon.push({ ...item, days: daysBetween(today, p.due_date) });
    }
    if (!mine) continue;
    const last = visits.get(hh.id);
    const days = last ? daysBetween(last, today) : null;
    if (days === null || days >= NOT_VISITED_DAYS) notVisited.push({ household: hh, last, days });
  }
  const byDue = (a, b) => compareText(a.due_date, b.due_date) || compareText(a.household.id, b.household.id);
  overdue.sort(byDue);
  dueSoon.sort(byDue);
  notVisited.sort((a, b) => (b.days === null ? Infinity : b.days) - (a.days === null ? Infinity : a.days)
    || compareText(a.household.id, b.household.id));
  return { overdue, dueSoon, notVisited, returned: returnedRecords(sent, outbox) };
}
