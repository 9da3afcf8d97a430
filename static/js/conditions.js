// The condition language shared by the phone and the server (see docs/forms.md).
// server/conditions.py is the same evaluator in Python; tests/vectors/conditions.json is run by
// both, so a change here needs the same change there (and a vector that shows it).
// Plain ES module without DOM access: importable by `node --test`. Standalone: it imports only
// form-shape.js (which imports nothing), to walk a form in sections as one flat list.

import { flatFields } from "./form-shape.js";
import { XPathError, computedValue, evaluate as xpathValue, references, toBool, toNumber } from "./xpath.js";

export const OPS = ["eq", "ne", "gt", "ge", "lt", "le", "in", "contains", "answered"];
const NAME_RE = /^[a-z][a-z0-9_]{0,63}$/;
const ISO_DATE_RE = /^\d{4}-\d{2}-\d{2}$/;
const MAX_DEPTH = 32;
const MAX_TODAY_OFFSET = 36500;
const MAX_ROUND_DIGITS = 6;
// The characters that make a text "blank"; spelled out so Python and JS agree exactly.
const BLANK_RE = /^[ \t\n\r\f\v\u00a0\u3000]*$/;

export class ConditionError extends Error {
  constructor(message) {
    super(message);
    this.name = "ConditionError";
  }
}

const has = (obj, key) => Object.prototype.hasOwnProperty.call(obj, key);
const isObject = (v) => v !== null && typeof v === "object" && !Array.isArray(v);

// ---------------------------------------------------------------------------------------------
// Values

/** A JSON number (finite); booleans are not numbers. */
export function isNumber(value) {
  return typeof value === "number" && Number.isFinite(value);
}

/** Whether a value counts as an answer: not null, not a blank text, not an empty list/object. */
export function isAnswered(value) {
  if (value === null || value === undefined) return false;
  if (typeof value === "string") return !BLANK_RE.test(value);
  if (Array.isArray(value)) return value.length > 0;
  if (typeof value === "object") return Object.keys(value).length > 0;
  return true;
}

/** Equality of JSON values: no coercion ("1" != 1, true != 1), deep for lists and objects. */
export function jsonEqual(a, b) {
  if (a === null || a === undefined || b === null || b === undefined) {
    return (a === null || a === undefined) && (b === null || b === undefined);
  }
  if (typeof a === "boolean" || typeof b === "boolean") return a === b;
  if (typeof a === "number" && typeof b === "number") return a === b;
  if (typeof a === "string" && typeof b === "string") return a === b;
  if (Array.isArray(a) && Array.isArray(b)) {
    return a.length === b.length && a.every((x, i) => jsonEqual(x, b[i]));
  }
  if (isObject(a) && isObject(b)) {
    const ka = Object.keys(a);
    const kb = Object.keys(b);
    return ka.length === kb.length && ka.every((k) => has(b, k) && jsonEqual(a[k], b[k]));
  }
  return false;
}

function order(a, b) {
  if ((isNumber(a) && isNumber(b)) || (typeof a === "string" && typeof b === "string")) {
    return a > b ? 1 : a < b ? -1 : 0;
  }
  return null;
}

/** Today's local date as YYYY-MM-DD (the phone's calendar day). */
export function todayISO(now = new Date()) {
  const pad = (n, w = 2) => String(n).padStart(w, "0");
  return `${pad(now.getFullYear(), 4)}-${pad(now.getMonth() + 1)}-${pad(now.getDate())}`;
}

function parseToday(today) {
  const iso = today === undefined || today === null ? todayISO() : today;
  if (typeof iso === "string" && ISO_DATE_RE.test(iso)) {
    const ms = Date.UTC(Number(iso.slice(0, 4)), Number(iso.slice(5, 7)) - 1, Number(iso.slice(8, 10)));
    const d = new Date(ms);
    if (d.toISOString().slice(0, 10) === iso) return ms;
  }
  throw new ConditionError(`today must be an ISO date, not ${JSON.stringify(today)}`);
}

// ---------------------------------------------------------------------------------------------
// Structure checks

function isLiteral(value, depth = 0) {
  if (depth > MAX_DEPTH) return false;
  if (value === null || typeof value === "boolean" || typeof value === "string") return true;
  if (typeof value === "number") return Number.isFinite(value);
  if (Array.isArray(value)) return value.every((v) => isLiteral(v, depth + 1));
  return false;
}

const isOffset = (v) => Number.isInteger(v) && Math.abs(v) <= MAX_TODAY_OFFSET;
const isFieldRef = (v) => typeof v === "string" && (v === "." || NAME_RE.test(v));
const show = (v) => (v === undefined ? "undefined" : JSON.stringify(v));

function checkOperand(value, path, problems, names) {
  if (isObject(value)) {
    const keys = Object.keys(value);
    if (keys.length !== 1) {
      problems.push(`${path}: an operand object has exactly one key: field, today or today_year`);
      return;
    }
    const key = keys[0];
    const arg = value[key];
    if (key === "field") {
      if (!isFieldRef(arg)) problems.push(`${path}.field: ${show(arg)} is not a field name`);
      else names.push(arg);
    } else if (key === "today" || key === "today_year") {
      if (!isOffset(arg)) problems.push(`${path}.${key}: must be a whole number of days/years, not ${show(arg)}`);
    } else {
      problems.push(`${path}: unknown operand ${show(key)} (expected field, today or today_year)`);
    }
  } else if (!isLiteral(value)) {
    problems.push(`${path}: a value is null, a boolean, a number, a text or a list of those`);
  }
}

function check(cond, path, problems, names, depth) {
  if (depth > MAX_DEPTH) {
    problems.push(`${path}: nested too deeply`);
    return;
  }
  if (!isObject(cond)) {
    problems.push(`${path}: a condition is an object`);
    return;
  }
  if (has(cond, "xpath")) {
    checkXpath(cond, path, problems, names);
    return;
  }
  if (has(cond, "field")) {
    const extra = Object.keys(cond).filter((k) => !["field", "op", "value"].includes(k));
    if (extra.length) problems.push(`${path}: unknown keys ${show(extra.sort())}`);
    if (!isFieldRef(cond.field)) problems.push(`${path}.field: ${show(cond.field)} is not a field name`);
    else names.push(cond.field);
    const op = cond.op;
    if (!OPS.includes(op)) {
      problems.push(`${path}.op: ${show(op)} is not one of ${OPS.join(", ")}`);
    } else if (op === "answered") {
      if (has(cond, "value") && typeof cond.value !== "boolean") {
        problems.push(`${path}.value: answered takes true or false`);
      }
    } else if (!has(cond, "value")) {
      problems.push(`${path}: op ${op} needs a value`);
    } else {
      checkOperand(cond.value, `${path}.value`, problems, names);
    }
    return;
  }
  const keys = Object.keys(cond);
  if (keys.length !== 1) {
    problems.push(`${path}: expected one of field, all, any, not (got ${show(keys.sort())})`);
    return;
  }
  const key = keys[0];
  const arg = cond[key];
  if (key === "all" || key === "any") {
    if (!Array.isArray(arg)) {
      problems.push(`${path}.${key}: must be a list of conditions`);
      return;
    }
    arg.forEach((sub, i) => check(sub, `${path}.${key}.${i}`, problems, names, depth + 1));
  } else if (key === "not") {
    check(arg, `${path}.not`, problems, names, depth + 1);
  } else {
    problems.push(`${path}: unknown key ${show(key)} (expected field, all, any or not)`);
  }
}

// {"xpath": "..."}: ODK's XPath dialect (xpath.js), as server/forms/conditions.py checks it.
function checkXpath(node, path, problems, names) {
  if (Object.keys(node).length !== 1 || typeof node.xpath !== "string") {
    problems.push(`${path}: an XPath node is exactly {"xpath": "..."}`);
    return;
  }
  try {
    const refs = references(node.xpath);
    names.push(...refs.names);
    if (refs.dot) names.push(".");
  } catch (exc) {
    if (!(exc instanceof XPathError)) throw exc;
    problems.push(`${path}: ${exc.en}`);
  }
}

const isXpath = (node) => isObject(node) && has(node, "xpath");

/** {problems, names}: what is wrong with a condition, and the field names it refers to. */
export function checkCondition(cond, path = "condition") {
  const problems = [];
  const names = [];
  check(cond, path, problems, names, 0);
  return { problems, names };
}

function checkExpr(expr, path, problems, names, settings, depth) {
  if (depth > MAX_DEPTH) {
    problems.push(`${path}: nested too deeply`);
    return;
  }
  if (typeof expr === "number") {
    if (!Number.isFinite(expr)) problems.push(`${path}: not a finite number`);
    return;
  }
  if (isXpath(expr)) {
    checkXpath(expr, path, problems, names);
    return;
  }
  if (typeof expr === "string") {
    if (NAME_RE.test(expr)) names.push(expr);
    else problems.push(`${path}: ${show(expr)} is not a field name`);
    return;
  }
  if (!isObject(expr) || Object.keys(expr).length !== 1) {
    problems.push(`${path}: an expression is a number, a field name or one of sum, mul, round, setting`);
    return;
  }
  const key = Object.keys(expr)[0];
  const arg = expr[key];
  if (key === "sum" || key === "mul") {
    if (!Array.isArray(arg) || arg.length === 0) {
      problems.push(`${path}.${key}: must be a non-empty list`);
      return;
    }
    arg.forEach((sub, i) => checkExpr(sub, `${path}.${key}.${i}`, problems, names, settings, depth + 1));
  } else if (key === "round") {
    if (!Array.isArray(arg) || arg.length !== 2 || !Number.isInteger(arg[1])
        || arg[1] < 0 || arg[1] > MAX_ROUND_DIGITS) {
      problems.push(`${path}.round: must be [expression, digits 0..${MAX_ROUND_DIGITS}]`);
      return;
    }
    checkExpr(arg[0], `${path}.round.0`, problems, names, settings, depth + 1);
  } else if (key === "setting") {
    if (typeof arg !== "string" || !NAME_RE.test(arg)) {
      problems.push(`${path}.setting: ${show(arg)} is not a setting name`);
    } else if (settings && !has(settings, arg)) {
      problems.push(`${path}.setting: ${show(arg)} is not declared under the form's settings`);
    }
  } else {
    problems.push(`${path}: unknown operator ${show(key)} (expected sum, mul, round or setting)`);
  }
}

/** {problems, names} for a compute expression; settings, when given, are the declared ones. */
export function checkExpression(expr, path = "compute", settings = null) {
  const problems = [];
  const names = [];
  checkExpr(expr, path, problems, names, settings, 0);
  return { problems, names };
}

// ---------------------------------------------------------------------------------------------
// Evaluation

function makeScope(answers, entry, selfValue, today) {
  const top = isObject(answers) ? answers : {};
  const ent = isObject(entry) ? entry : null;
  return {
    today,
    answers: top,
    entry: ent,
    self: selfValue,
    lookup(name) {
      let v;
      if (name === ".") v = selfValue;
      else if (ent !== null && has(ent, name)) v = ent[name];
      else v = has(top, name) ? top[name] : null;
      return v === undefined ? null : v;
    },
  };
}

function operand(value, scope) {
  if (isObject(value)) {
    const key = Object.keys(value)[0];
    const arg = value[key];
    if (key === "field") return scope.lookup(arg);
    const ms = parseToday(scope.today);
    if (key === "today") return new Date(ms + arg * 86400000).toISOString().slice(0, 10);
    return new Date(ms).getUTCFullYear() + arg; // today_year
  }
  return value;
}

function xpathContext(scope) {
  return { answers: scope.answers, entry: scope.entry, dot: scope.self, today: scope.today || todayISO() };
}

function evalCond(cond, scope) {
  if (has(cond, "xpath")) return toBool(xpathValue(cond.xpath, xpathContext(scope)));
  if (has(cond, "field")) {
    const left = scope.lookup(cond.field);
    const op = cond.op;
    if (op === "answered") return isAnswered(left) === (has(cond, "value") ? cond.value : true);
    const right = operand(cond.value, scope);
    switch (op) {
      case "eq": return jsonEqual(left, right);
      case "ne": return !jsonEqual(left, right);
      case "in": return Array.isArray(right) && right.some((r) => jsonEqual(left, r));
      case "contains":
        if (Array.isArray(left)) return left.some((item) => jsonEqual(item, right));
        return typeof left === "string" && typeof right === "string" && left.includes(right);
      default: {
        const o = order(left, right);
        if (o === null) return false;
        return { gt: o > 0, ge: o >= 0, lt: o < 0, le: o <= 0 }[op];
      }
    }
  }
  const key = Object.keys(cond)[0];
  const arg = cond[key];
  if (key === "all") return arg.every((sub) => evalCond(sub, scope));
  if (key === "any") return arg.some((sub) => evalCond(sub, scope));
  return !evalCond(arg, scope);
}

/**
 * true/false for a condition; null/undefined (no condition) is true.
 * options: {entry} the current repeat entry, {self} the field's own value ("."),
 * {today} "YYYY-MM-DD" (default: the phone's local date).
 * Throws ConditionError when the condition itself is malformed (never because of the answers).
 */
export function evaluate(cond, answers, options = {}) {
  if (cond === null || cond === undefined) return true;
  const { problems } = checkCondition(cond);
  if (problems.length) throw new ConditionError(problems.join("; "));
  return evalCond(cond, makeScope(answers, options.entry, options.self, options.today));
}

function computeExpr(expr, scope, settings) {
  if (typeof expr === "number") return expr;
  if (isXpath(expr)) {
    const n = toNumber(xpathValue(expr.xpath, xpathContext(scope)));
    return Number.isFinite(n) ? n : null;
  }
  if (typeof expr === "string") {
    const v = scope.lookup(expr);
    return isNumber(v) ? v : null;
  }
  const key = Object.keys(expr)[0];
  const arg = expr[key];
  if (key === "setting") {
    const v = isObject(settings) && has(settings, arg) ? settings[arg] : null;
    return isNumber(v) ? v : null;
  }
  if (key === "round") {
    const v = computeExpr(arg[0], scope, settings);
    if (v === null) return null;
    const factor = 10 ** arg[1];
    const rounded = Math.floor(Math.abs(v) * factor + 0.5) / factor;
    return rounded === 0 ? 0 : (v < 0 ? -rounded : rounded);
  }
  const values = arg.map((sub) => computeExpr(sub, scope, settings));
  if (key === "sum") {
    const present = values.filter((v) => v !== null);
    if (present.length === 0) return null;
    let total = 0;
    for (const v of present) total += v;
    return total;
  }
  if (values.some((v) => v === null)) return null; // mul
  let product = 1;
  for (const v of values) product *= v;
  return product;
}

/**
 * The value of a compute expression, or null when an input it needs is not answered.
 * sum skips unanswered terms (null only when all are); mul needs every factor.
 * options: {entry} the current repeat entry, {settings} e.g. {pv_yield_kwh_per_kw: 1100}.
 */
export function compute(expr, answers, options = {}) {
  const { problems } = checkExpression(expr);
  if (problems.length) throw new ConditionError(problems.join("; "));
  const v = computeExpr(expr, makeScope(answers, options.entry, undefined, undefined), options.settings || {});
  return v === null || !Number.isFinite(v) ? null : v;
}

/**
 * Answers with every computed field filled in (or removed when it cannot be computed), as the
 * server stores them. Walks the fields in order; a field that is not relevant counts as
 * unanswered for what follows, as the server's validation does. The input is not changed.
 * options: {settings} override the definition's settings; {today} as for evaluate.
 */
export function computeAll(definition, answers, options = {}) {
  const settings = { ...(definition.settings || {}), ...(options.settings || {}) };
  const today = options.today;
  const result = isObject(answers) ? { ...answers } : {};
  const working = { ...result };
  for (const field of flatFields(definition)) { // sections dissolved: answers are flat
    const name = field.name;
    if (!evaluate(field.relevant, working, { today })) {
      delete working[name];
      if (has(field, "compute")) delete result[name]; // a stale computed value would mislead
      continue;
    }
    if (has(field, "compute")) {
      const value = computeField(field, working, null, settings, today, result[name]);
      for (const target of [result, working]) {
        if (value === null) delete target[name];
        else target[name] = value;
      }
    } else if (field.type === "repeat" && Array.isArray(result[name])) {
      const entries = result[name].map((entry) =>
        (isObject(entry) ? computeEntry(field, entry, working, settings, today) : entry));
      result[name] = entries;
      working[name] = entries;
    }
  }
  return result;
}

// A computed field's value: a JSON expression (a number), or XPath (held as the field's type holds
// it; once() keeps the value it had, as on the server).
function computeField(field, top, entry, settings, today, previous) {
  if (!isXpath(field.compute)) return compute(field.compute, top, { entry, settings });
  const raw = xpathValue(field.compute.xpath, { answers: top, entry, today: today || todayISO(), previous });
  return computedValue(field.type, raw);
}

function computeEntry(field, entry, top, settings, today) {
  const out = { ...entry };
  const children = field.fields || [];
  const scopeEntry = {};
  for (const child of children) scopeEntry[child.name] = has(entry, child.name) ? entry[child.name] : null;
  for (const child of children) {
    const name = child.name;
    if (!evaluate(child.relevant, top, { entry: scopeEntry, today })) {
      scopeEntry[name] = null;
      if (has(child, "compute")) delete out[name];
      continue;
    }
    if (has(child, "compute")) {
      const value = computeField(child, top, scopeEntry, settings, today, entry[name]);
      scopeEntry[name] = value;
      if (value === null) delete out[name];
      else out[name] = value;
    }
  }
  return out;
}
