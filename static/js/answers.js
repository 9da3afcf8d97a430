// What the phone does with answers, without the DOM: relevance, client-side checks (a convenience;
// the server is the guard), the cleaned answers a submission carries, and the attachments it names.
// Messages are returned as i18n keys (or the form's own {zh, en} texts) so the caller picks the language.

import { computeAll, evaluate, isAnswered, isNumber } from "./conditions.js";
import { lang, pick, t } from "./i18n.js";
import { flatFields, formShape } from "./form-shape.js";
import { isObject, normalizePath } from "./util.js";

const ISO_DATE_RE = /^\d{4}-\d{2}-\d{2}$/;
const NO_ANSWER_TYPES = new Set(["note"]);
export const FILE_TYPES = new Set(["photo", "signature"]);

export { normalizePath, pick }; // where the other modules have always found them

/**
 * Message text for an error from validateAnswers ({key, params, custom}) or the server ({message}).
 * Next to its field (inline) the server's leading "「label」：" / "“label”: " is dropped.
 */
export function errorText(e, inline = false) {
  if (e.custom) return pick(e.custom, lang());
  if (e.message) {
    const text = pick(e.message, lang());
    return inline ? text.replace(/^「.*?」：/, "").replace(/^“.*?”: /, "") || text : text;
  }
  return t(e.key, e.params);
}

/** Numbers typed on a phone: full-width digits (Chinese keyboards), spaces and thousands commas allowed. */
export function parseNumber(raw, type) {
  if (typeof raw === "number") return raw;
  if (typeof raw !== "string") return null;
  const s = raw.replace(/[\uff10-\uff19]/g, (c) => String.fromCharCode(c.charCodeAt(0) - 0xfee0))
    .replace(/[\uff0e\u3002]/g, ".").replace(/[\uff0d\u2212]/g, "-").replace(/[\s,\uff0c]/g, "");
  if (s === "") return null;
  const re = type === "integer" ? /^-?\d+$/ : /^-?(\d+\.?\d*|\.\d+)$/;
  if (!re.test(s)) return undefined; // not a number: kept as typed, reported by validation
  const n = Number(s);
  return Number.isFinite(n) ? n : undefined;
}

function validDate(s) {
  if (typeof s !== "string" || !ISO_DATE_RE.test(s)) return false;
  const d = new Date(`${s}T00:00:00Z`);
  return !Number.isNaN(d.getTime()) && d.toISOString().slice(0, 10) === s;
}

function problem(list, field, key, params = {}, custom = null) {
  list.push({ field, key, params, custom });
}

function checkValue(field, value, path, ctx, list) {
  const { type } = field;
  const lenOf = (s) => Array.from(s).length;
  switch (type) {
    case "integer":
    case "decimal":
      if (!isNumber(value) || (type === "integer" && !Number.isInteger(value))) {
        problem(list, path, type === "integer" ? "err_integer" : "err_number");
        return false;
      }
      if (isNumber(field.min) && value < field.min) problem(list, path, "err_min", { min: field.min });
      else if (isNumber(field.max) && value > field.max) problem(list, path, "err_max", { max: field.max });
      break;
    case "text":
    case "textarea":
      if (typeof value !== "string") { problem(list, path, "err_text"); return false; }
      if (isNumber(field.max) && lenOf(value) > field.max) problem(list, path, "err_max_length", { max: field.max });
      else if (isNumber(field.min) && lenOf(value.trim()) < field.min) {
        problem(list, path, "err_min_length", { min: field.min });
      }
      break;
    case "date":
      if (!validDate(value)) { problem(list, path, "err_date"); return false; }
      if (typeof field.min === "string" && value < field.min) problem(list, path, "err_date_min", { min: field.min });
      else if (typeof field.max === "string" && value > field.max) problem(list, path, "err_date_max", { max: field.max });
      break;
    case "select_one":
      if (!(field.choices || []).some((c) => c.name === value)) { problem(list, path, "err_choice"); return false; }
      break;
    case "select_multiple":
      if (!Array.isArray(value) || !value.every((v) => (field.choices || []).some((c) => c.name === v))) {
        problem(list, path, "err_choice");
        return false;
      }
      break;
    case "geopoint":
      if (!isObject(value) || !isNumber(value.lat) || !isNumber(value.lon)) { problem(list, path, "err_geopoint"); return false; }
      break;
    case "photo":
    case "signature":
      if (typeof value !== "string") { problem(list, path, "err_file"); return false; }
      break;
    default:
      break;
  }
  return true;
}

function checkConstraint(field, value, path, answers, entry, ctx, list) {
  if (!field.constraint) return;
  let ok = true;
  try {
    ok = evaluate(field.constraint, answers, { self: value, entry, today: ctx.today });
  } catch (_) {
    return; // a malformed condition is the server's to report
  }
  if (!ok) problem(list, path, "err_constraint", {}, field.constraint_message || null);
}

function relevantHere(field, answers, entry, today) {
  try {
    return evaluate(field.relevant, answers, { entry, today });
  } catch (_) {
    return true;
  }
}

/**
 * Problems with the answers, as [{field: "members.0.name", key, params, custom}], in form order.
 * Only relevant fields are checked; computed fields are filled in first, as the server does.
 * options: {settings, today}.
 */
export function validateAnswers(definition, answers, options = {}) {
  const ctx = { today: options.today };
  const full = computeAll(definition, isObject(answers) ? answers : {}, { settings: options.settings, today: ctx.today });
  const working = { ...full };
  const list = [];
  for (const field of flatFields(definition)) {
    const name = field.name;
    if (!relevantHere(field, working, null, ctx.today)) { delete working[name]; continue; }
    if (NO_ANSWER_TYPES.has(field.type) || field.compute !== undefined) continue;
    const value = working[name];
    if (field.type === "repeat") {
      checkRepeat(field, value, name, working, ctx, list);
      continue;
    }
    if (field.readonly) continue;
    if (!isAnswered(value)) {
      if (field.required) problem(list, name, "err_required");
      continue;
    }
    if (checkValue(field, value, name, ctx, list)) checkConstraint(field, value, name, working, null, ctx, list);
  }
  return list;
}

function checkRepeat(field, value, name, top, ctx, list) {
  const entries = Array.isArray(value) ? value : [];
  const min = isNumber(field.min_count) ? field.min_count : (field.required ? 1 : 0);
  if (entries.length < min) problem(list, name, "err_min_count", { min });
  if (isNumber(field.max_count) && entries.length > field.max_count) {
    problem(list, name, "err_max_count", { max: field.max_count });
  }
  entries.forEach((entry, i) => {
    const scope = {};
    for (const child of field.fields || []) scope[child.name] = isObject(entry) && entry[child.name] !== undefined ? entry[child.name] : null;
    for (const child of field.fields || []) {
      const path = `${name}.${i}.${child.name}`;
      if (!relevantHere(child, top, scope, ctx.today)) { scope[child.name] = null; continue; }
      if (NO_ANSWER_TYPES.has(child.type) || child.compute !== undefined || child.readonly) continue;
      const v = scope[child.name];
      if (!isAnswered(v)) {
        if (child.required) problem(list, path, "err_required");
        continue;
      }
      if (checkValue(child, v, path, ctx, list)) checkConstraint(child, v, path, top, scope, ctx, list);
    }
  });
}

/**
 * The answers a submission carries: computed fields filled in, fields that are not relevant,
 * notes and unanswered values dropped (also inside repeat entries). The input is not changed.
 */
export function cleanAnswers(definition, answers, options = {}) {
  const full = computeAll(definition, isObject(answers) ? answers : {}, options);
  const working = { ...full };
  const out = {};
  for (const field of flatFields(definition)) {
    const name = field.name;
    if (!relevantHere(field, working, null, options.today)) { delete working[name]; continue; }
    if (NO_ANSWER_TYPES.has(field.type)) continue;
    const value = working[name];
    if (field.type === "repeat") {
      if (!Array.isArray(value)) continue;
      out[name] = value.map((entry) => cleanEntry(field, entry, working, options.today));
      continue;
    }
    if (isAnswered(value)) out[name] = value;
  }
  return out;
}

function cleanEntry(field, entry, top, today) {
  const scope = {};
  for (const child of field.fields || []) scope[child.name] = isObject(entry) && entry[child.name] !== undefined ? entry[child.name] : null;
  const out = {};
  for (const child of field.fields || []) {
    if (!relevantHere(child, top, scope, today)) { scope[child.name] = null; continue; }
    if (NO_ANSWER_TYPES.has(child.type)) continue;
    if (isAnswered(scope[child.name])) out[child.name] = scope[child.name];
  }
  return out;
}

/** Attachment names the (cleaned) answers refer to: photo and signature answers, also in repeats. */
export function attachmentNames(definition, answers) {
  const names = [];
  const walk = (fields, values) => {
    for (const field of fields || []) {
      const v = isObject(values) ? values[field.name] : undefined;
      if (FILE_TYPES.has(field.type) && typeof v === "string" && v) names.push(v);
      if (field.type === "repeat" && Array.isArray(v)) v.forEach((entry) => walk(field.fields, entry));
    }
  };
  walk(flatFields(definition), answers);
  return names;
}

/** The field definition a path like "members.0.name" points at (null when there is none). */
export function fieldAt(definition, path) {
  const parts = normalizePath(path).split(".");
  let fields = flatFields(definition);
  let found = null;
  for (const part of parts) {
    if (/^\d+$/.test(part)) continue;
    found = fields.find((f) => f.name === part) || null;
    if (!found) return null;
    fields = found.fields || [];
  }
  return found;
}

/**
 * Which fields show: a Map from path ("risk_reason", "members.0.name") to true/false, with the
 * same rule as validation (a field that is not relevant counts as unanswered for later ones).
 * `sections` maps each section of a sectioned form to whether it applies (its group is relevant,
 * decided where the group stands in the form, like any question).
 */
export function relevance(definition, answers, options = {}) {
  const full = computeAll(definition, isObject(answers) ? answers : {}, { settings: options.settings, today: options.today });
  const working = { ...full };
  const shown = new Map();
  const sections = new Map();
  const groups = new Map(formShape(definition).sections.map((s) => [s.name, s]));
  for (const field of flatFields(definition)) {
    if (field.section && !sections.has(field.section)) {
      sections.set(field.section, relevantHere(groups.get(field.section), working, null, options.today));
    }
    const on = relevantHere(field, working, null, options.today);
    shown.set(field.name, on);
    if (!on) { delete working[field.name]; continue; }
    if (field.type !== "repeat" || !Array.isArray(working[field.name])) continue;
    working[field.name].forEach((entry, i) => {
      const scope = {};
      for (const child of field.fields || []) scope[child.name] = isObject(entry) && entry[child.name] !== undefined ? entry[child.name] : null;
      for (const child of field.fields || []) {
        const childOn = relevantHere(child, working, scope, options.today);
        shown.set(`${field.name}.${i}.${child.name}`, childOn);
        if (!childOn) scope[child.name] = null;
      }
    });
  }
  return { shown, sections, computed: full };
}

function moveValue(old, field, value, path, dropped) {
  if (field.type === "select_one") {
    if ((field.choices || []).some((c) => c.name === value)) return value;
    dropped.push({ path, label: old.label || null });
    return undefined;
  }
  if (field.type === "select_multiple") {
    const kept = (Array.isArray(value) ? value : []).filter((v) => (field.choices || []).some((c) => c.name === v));
    if (kept.length !== (Array.isArray(value) ? value.length : 0)) dropped.push({ path, label: old.label || null });
    return kept.length ? kept : undefined;
  }
  return value;
}

/**
 * Answers typed on one version of a form, moved to another: an answer is kept where the new
 * version has a question of that name and type (inside a repeat, the same for each entry's
 * questions) and, for a choice, that choice; the rest is dropped and listed as [{path, label}]
 * (the old version's label) so the cadre sees what did not carry over. Computed answers are not
 * listed: the new version computes its own.
 */
export function moveAnswers(from, to, answers) {
  const byName = (fields) => new Map((fields || []).map((f) => [f.name, f]));
  const oldTop = byName(flatFields(from));
  const newTop = byName(flatFields(to));
  const out = {};
  const dropped = [];
  const answered = (v) => isAnswered(v);
  for (const [name, value] of Object.entries(isObject(answers) ? answers : {})) {
    const old = oldTop.get(name);
    const now = newTop.get(name);
    if (!answered(value) || (old && old.compute !== undefined)) continue;
    if (!old || !now || old.type !== now.type || now.compute !== undefined || now.type === "note") {
      dropped.push({ path: name, label: old ? old.label || null : null });
      continue;
    }
    if (now.type !== "repeat") {
      const v = moveValue(old, now, value, name, dropped);
      if (v !== undefined) out[name] = v;
      continue;
    }
    const oldKids = byName(old.fields);
    const newKids = byName(now.fields);
    const lost = new Set();
    out[name] = (Array.isArray(value) ? value : []).map((entry, i) => {
      const kept = {};
      for (const [child, v] of Object.entries(isObject(entry) ? entry : {})) {
        const o = oldKids.get(child);
        const n = newKids.get(child);
        if (!answered(v) || (o && o.compute !== undefined)) continue;
        if (!o || !n || o.type !== n.type || n.compute !== undefined) {
          if (!lost.has(child)) dropped.push({ path: `${name}.${child}`, label: o ? o.label || null : null, repeat: old.label || null });
          lost.add(child);
          continue;
        }
        const moved = moveValue(o, n, v, `${name}.${i}.${child}`, dropped);
        if (moved !== undefined) kept[child] = moved;
      }
      return kept;
    });
  }
  return { answers: out, dropped };
}
