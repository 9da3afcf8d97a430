// ODK's XPath dialect (the subset XLSForm forms use): the phone's parser and evaluator.
// server/forms/xpath.py is the same in Python; tests/vectors/xpath.json is run by both, so a
// change here needs the same change there (and a vector that shows it).
// Standalone ES module: no imports, no DOM.
//
// Values: strings, numbers, booleans, and node-sets (arrays, for a name inside a repeat seen from
// outside it). Answers read as ODK reads them: numbers stay numbers, a select_multiple is its
// names joined by spaces, a geopoint "lat lon 0 accuracy", unanswered "". Dates are ISO strings;
// as numbers they are days since 1970-01-01 (a dateTime: fractional days, offset applied).

export const MAX_LENGTH = 4000;
const MAX_DEPTH = 40;

export class XPathError extends Error {
  constructor(en, zh, construct) {
    super(en);
    this.name = "XPathError";
    this.en = en;
    this.zh = zh || en;
    this.construct = construct === undefined ? null : construct;
  }
}

const TOKEN = /(\s+)|(\$\{([^}]*)\})|(\d+(?:\.\d*)?|\.\d+)|('[^']*'|"[^"]*")|(!=|<=|>=|\.\.|\/\/|[=<>+\-*(),/.|[\]@])|([A-Za-z_][A-Za-z0-9_.-]*(?::[A-Za-z_][A-Za-z0-9_.-]*)?)/y;
const REF_NAME_RE = /^[A-Za-z_][A-Za-z0-9_-]{0,63}$/;

export const FUNCTIONS = {
  "true": [0, 0], "false": [0, 0], "not": [1, 1], "boolean": [1, 1], "string": [0, 1],
  "number": [0, 1], "int": [1, 1], "round": [1, 2], "floor": [1, 1], "ceiling": [1, 1],
  "abs": [1, 1], "pow": [2, 2], "selected": [2, 2], "count-selected": [1, 1],
  "selected-at": [2, 2], "jr:choice-name": [2, 2], "count": [1, 1], "sum": [1, 1],
  "max": [1, null], "min": [1, null], "string-length": [0, 1], "substr": [2, 3],
  "substring": [2, 3], "concat": [0, null], "contains": [2, 2], "starts-with": [2, 2],
  "ends-with": [2, 2], "regex": [2, 2], "if": [3, 3], "coalesce": [2, 2], "today": [0, 0],
  "now": [0, 0], "date": [1, 1], "decimal-date-time": [1, 1], "format-date": [2, 2],
  "format-date-time": [2, 2], "position": [0, 1], "indexed-repeat": [3, 7], "once": [1, 1],
  "uuid": [0, 1], "normalize-space": [0, 1], "boolean-from-string": [1, 1], "join": [2, null],
  "translate": [3, 3],
};
export const VOLATILE = new Set(["today", "now", "uuid", "once"]);

function pyRepr(s) {
  // Python's repr of a short string, so both languages word errors the same way.
  return s.includes("'") && !s.includes('"') ? `"${s}"` : `'${s.replace(/\\/g, "\\\\").replace(/'/g, "\\'")}'`;
}

function tokens(text) {
  const out = [];
  let pos = 0;
  while (pos < text.length) {
    TOKEN.lastIndex = pos;
    const m = TOKEN.exec(text);
    if (!m) {
      const bit = text.slice(pos, pos + 10);
      throw new XPathError(`cannot read the expression at character ${pos + 1}: ${pyRepr(bit)}`,
        `表达式第 ${pos + 1} 个字符处无法解析：${pyRepr(bit)}`, bit);
    }
    pos = TOKEN.lastIndex;
    if (m[1] !== undefined) continue;
    if (m[2] !== undefined) {
      const name = m[3].trim();
      if (!REF_NAME_RE.test(name)) {
        throw new XPathError(`\${${name}} is not a question name`, `\${${name}} 不是问题名称`, "${" + name + "}");
      }
      out.push(["ref", name]);
    } else if (m[4] !== undefined) out.push(["num", parseFloat(m[4])]);
    else if (m[5] !== undefined) out.push(["str", m[5].slice(1, -1)]);
    else if (m[6] !== undefined) out.push(["op", m[6]]);
    else out.push(["name", m[7]]);
  }
  out.push(["end", null]);
  return out;
}

const LEVELS = [["or"], ["and"], ["=", "!="], ["<", "<=", ">", ">="], ["+", "-"], ["*", "div", "mod"]];
const ZH_WHAT = { "an operator or the end": "运算符或结尾", "')'": "「)」", "a value": "一个值" };

class Parser {
  constructor(text) {
    this.toks = tokens(text);
    this.i = 0;
    this.depth = 0;
  }
  peek() { return this.toks[this.i]; }
  next() { return this.toks[this.i++]; }
  fail(what) {
    const [kind, value] = this.peek();
    const shown = kind === "end" ? "the end" : pyRepr(kind === "num" ? numStr(value) : value);
    throw new XPathError(`expected ${what} but found ${shown}`, `此处应为${ZH_WHAT[what] || what}，却是 ${shown}`, shown);
  }
  isOp(...ops) { const [k, v] = this.peek(); return k === "op" && ops.includes(v); }
  isWord(...ws) { const [k, v] = this.peek(); return k === "name" && ws.includes(v); }
  parse() {
    const node = this.expr();
    if (this.peek()[0] !== "end") this.fail("an operator or the end");
    return node;
  }
  expr() {
    this.depth += 1;
    if (this.depth > MAX_DEPTH) throw new XPathError("the expression is nested too deeply", "表达式嵌套过深", "(");
    const node = this.binary(0);
    this.depth -= 1;
    return node;
  }
  binary(level) {
    if (level === LEVELS.length) return this.unary();
    let node = this.binary(level + 1);
    const ops = LEVELS[level];
    while (this.isOp(...ops) || this.isWord(...ops)) {
      const op = this.next()[1];
      node = ["bin", op, node, this.binary(level + 1)];
    }
    return node;
  }
  unary() {
    if (this.isOp("-")) {
      this.next();
      this.depth += 1;
      if (this.depth > MAX_DEPTH) throw new XPathError("the expression is nested too deeply", "表达式嵌套过深", "-");
      const node = ["neg", this.unary()];
      this.depth -= 1;
      return node;
    }
    const node = this.primary();
    if (this.isOp("|", "[", "/", "//")) {
      const v = this.peek()[1];
      throw new XPathError(`paths, filters and unions (${v}) are not supported: refer to questions as \${name}`,
        `不支持路径、筛选和并集（${v}）：请用 \${名称} 引用问题`, v);
    }
    return node;
  }
  primary() {
    const [kind, value] = this.peek();
    if (kind === "num" || kind === "str" || kind === "ref") { this.next(); return [kind, value]; }
    if (kind === "op" && value === "(") {
      this.next();
      const node = this.expr();
      if (!this.isOp(")")) this.fail("')'");
      this.next();
      return node;
    }
    if (kind === "op" && value === ".") { this.next(); return ["dot"]; }
    if (kind === "op" && value === "..") { this.next(); return ["dotdot"]; }
    if (kind === "name") {
      this.next();
      if (this.isOp("(")) return this.call(value);
      if (["and", "or", "div", "mod"].includes(value)) {
        throw new XPathError(`'${value}' needs something before it`, `「${value}」前缺少运算对象`, value);
      }
      return ["col", value];
    }
    if (kind === "op" && ["/", "//", "@"].includes(value)) {
      throw new XPathError(`paths (${value}...) are not supported: refer to questions as \${name}`,
        `不支持路径（${value}…）：请用 \${名称} 引用问题`, value);
    }
    return this.fail("a value");
  }
  call(name) {
    this.next();
    const args = [];
    if (!this.isOp(")")) {
      args.push(this.expr());
      while (this.isOp(",")) { this.next(); args.push(this.expr()); }
    }
    if (!this.isOp(")")) this.fail("')'");
    this.next();
    const arity = FUNCTIONS[name];
    if (!arity || !Object.prototype.hasOwnProperty.call(FUNCTIONS, name)) {
      throw new XPathError(`unknown function ${name}()`, `不支持的函数 ${name}()`, `${name}()`);
    }
    const [low, high] = arity;
    if (args.length < low || (high !== null && args.length > high)) {
      const want = low === high ? `${low}` : high === null ? `${low} or more` : `${low} to ${high}`;
      throw new XPathError(`${name}() takes ${want} arguments (got ${args.length})`,
        `${name}() 的参数个数不对（收到 ${args.length} 个）`, `${name}()`);
    }
    if (name === "position" && args.length && args[0][0] !== "dotdot") {
      throw new XPathError("position() takes only '..'", "position() 只接受 '..'", "position()");
    }
    if (name === "regex" && args[1][0] === "str") {
      try { new RegExp(args[1][1]); } catch (exc) {
        throw new XPathError(`regex() pattern does not compile: ${exc.message}`, `regex() 的正则表达式有误：${exc.message}`, "regex()");
      }
    }
    return ["call", name, args];
  }
}

const cache = new Map();

/** The syntax tree of an expression (arrays), cached. XPathError when it does not parse. */
export function parse(text) {
  if (typeof text !== "string") throw new XPathError("an expression must be text", "表达式必须是文字", null);
  const hit = cache.get(text);
  if (hit) return hit;
  if (text.length > MAX_LENGTH) {
    throw new XPathError(`the expression is longer than ${MAX_LENGTH} characters`, `表达式超过 ${MAX_LENGTH} 个字符`, null);
  }
  if (!text.trim()) throw new XPathError("the expression is empty", "表达式为空", null);
  const tree = new Parser(text).parse();
  if (treeDepth(tree) > MAX_TREE_DEPTH) { // evaluation recurses: 1+1+1+... must stay shallow
    throw new XPathError("the expression is nested too deeply", "表达式嵌套过深", null);
  }
  if (cache.size > 5000) cache.clear();
  cache.set(text, tree);
  return tree;
}

const MAX_TREE_DEPTH = 200;

function treeDepth(tree) {
  let deepest = 0;
  const stack = [[tree, 1]];
  while (stack.length) {
    const [node, d] = stack.pop();
    deepest = Math.max(deepest, d);
    if (d > MAX_TREE_DEPTH) break;
    const children = node[0] === "bin" ? [node[2], node[3]] : node[0] === "neg" ? [node[1]] : node[0] === "call" ? node[2] : [];
    for (const c of children) stack.push([c, d + 1]);
  }
  return deepest;
}

function* walk(tree) {
  yield tree;
  if (tree[0] === "bin") { yield* walk(tree[2]); yield* walk(tree[3]); }
  else if (tree[0] === "neg") yield* walk(tree[1]);
  else if (tree[0] === "call") for (const a of tree[2]) yield* walk(a);
}

/** {names, dot, columns, functions} of an expression. */
export function references(text) {
  const names = [];
  const columns = [];
  const functions = new Set();
  let dot = false;
  for (const node of walk(parse(text))) {
    if (node[0] === "ref" && !names.includes(node[1])) names.push(node[1]);
    else if (node[0] === "dot") dot = true;
    else if (node[0] === "col" && !columns.includes(node[1])) columns.push(node[1]);
    else if (node[0] === "call") functions.add(node[1]);
  }
  return { names, dot, columns, functions };
}

export function isVolatile(text) {
  return [...references(text).functions].some((f) => VOLATILE.has(f));
}

// ---------------------------------------------------------------------------------------------
// Values

const NUMBER_RE = /^[ \t\n\r]*-?([0-9]+(\.[0-9]*)?|\.[0-9]+)[ \t\n\r]*$/;
const DATE_RE = /^[ \t\n\r]*([0-9]{4})-([0-9]{2})-([0-9]{2})[ \t\n\r]*$/;
const DATETIME_RE = /^[ \t\n\r]*([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2})(?::([0-9]{2})(\.[0-9]+)?)?(Z|[+-][0-9]{2}(?::?[0-9]{2})?)?[ \t\n\r]*$/;
const SPACE_RE = /[ \t\n\r]+/;
const MIN_DAY = -719162;
const MAX_DAY = 2932896;

const words = (text) => text.split(SPACE_RE).filter((w) => w !== "");

function daysFromCivil(y, m, d) {
  // Howard Hinnant's algorithm: days since 1970-01-01 of a proleptic Gregorian date.
  y -= m <= 2 ? 1 : 0;
  const era = Math.floor(y / 400);
  const yoe = y - era * 400;
  const doy = Math.floor((153 * (m + (m > 2 ? -3 : 9)) + 2) / 5) + d - 1;
  const doe = yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy;
  return era * 146097 + doe - 719468;
}

function civilFromDays(z) {
  z += 719468;
  const era = Math.floor(z / 146097);
  const doe = z - era * 146097;
  const yoe = Math.floor((doe - Math.floor(doe / 1460) + Math.floor(doe / 36524) - Math.floor(doe / 146096)) / 365);
  const doy = doe - (365 * yoe + Math.floor(yoe / 4) - Math.floor(yoe / 100));
  const mp = Math.floor((5 * doy + 2) / 153);
  const d = doy - Math.floor((153 * mp + 2) / 5) + 1;
  const m = mp + (mp < 10 ? 3 : -9);
  return [yoe + era * 400 + (m <= 2 ? 1 : 0), m, d];
}

function days(y, m, d) {
  y = Number(y); m = Number(m); d = Number(d);
  const leap = (y % 4 === 0 && y % 100 !== 0) || y % 400 === 0;
  const lengths = [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
  if (y < 1 || y > 9999 || m < 1 || m > 12 || d < 1 || d > lengths[m - 1]) return null;
  return daysFromCivil(y, m, d);
}

export function toNumber(v) {
  if (Array.isArray(v)) v = v.length ? v[0] : "";
  if (typeof v === "boolean") return v ? 1 : 0;
  if (typeof v === "number") return v;
  if (NUMBER_RE.test(v)) return parseFloat(v);
  let m = DATE_RE.exec(v);
  if (m) {
    const n = days(m[1], m[2], m[3]);
    return n === null ? NaN : n;
  }
  m = DATETIME_RE.exec(v);
  if (m) {
    const n = days(m[1], m[2], m[3]);
    const [h, mi, s] = [Number(m[4]), Number(m[5]), Number(m[6] || 0)];
    if (n === null || h > 23 || mi > 59 || s > 59) return NaN;
    let seconds = h * 3600 + mi * 60 + s + parseFloat(m[7] || "0");
    const zone = m[8];
    if (zone && zone !== "Z") {
      const sign = zone[0] === "-" ? -1 : 1;
      const digits = zone.slice(1).replace(":", "");
      seconds -= sign * (Number(digits.slice(0, 2)) * 3600 + Number(digits.slice(2, 4) || 0) * 60);
    }
    return n + seconds / 86400;
  }
  return NaN;
}

function expandExponent(text) {
  // "1.5e-7" -> "0.00000015", "1e+23" -> "100000000000000000000000" (XPath never uses exponents).
  const m = /^(-?)(\d)(?:\.(\d+))?e([+-]\d+)$/.exec(text);
  if (!m) return text;
  const [, sign, lead, frac = "", expText] = m;
  const exp = Number(expText);
  const digits = lead + frac;
  const point = 1 + exp;
  let out;
  if (point <= 0) out = "0." + "0".repeat(-point) + digits;
  else if (point >= digits.length) out = digits + "0".repeat(point - digits.length);
  else out = digits.slice(0, point) + "." + digits.slice(point);
  return sign + out;
}

function numStr(x) {
  if (Number.isNaN(x)) return "NaN";
  if (!Number.isFinite(x)) return x > 0 ? "Infinity" : "-Infinity";
  if (Number.isInteger(x) && Math.abs(x) < 1e21) {
    return Math.abs(x) <= Number.MAX_SAFE_INTEGER ? String(x === 0 ? 0 : x) : BigInt(x).toString();
  }
  return expandExponent(String(x));
}

export function toString(v) {
  if (Array.isArray(v)) v = v.length ? v[0] : "";
  if (typeof v === "boolean") return v ? "true" : "false";
  if (typeof v === "number") return numStr(v);
  return v;
}

export function toBool(v) {
  if (Array.isArray(v)) return v.length > 0;
  if (typeof v === "boolean") return v;
  if (typeof v === "number") return !(v === 0 || Number.isNaN(v));
  return v !== "";
}

/** An answer (JSON) as the XPath value ODK would read for it. */
export function answerValue(answer) {
  if (answer === null || answer === undefined) return "";
  if (typeof answer === "boolean") return answer ? "true" : "false";
  if (typeof answer === "number") return answer;
  if (typeof answer === "string") return answer;
  if (Array.isArray(answer)) {
    if (answer.every((a) => typeof a === "string")) return answer.join(" ");
    return answer.map(() => "");
  }
  if (typeof answer === "object") {
    if ("lat" in answer) {
      return [answer.lat, answer.lon, 0, answer.accuracy === undefined ? 0 : answer.accuracy]
        .map((p) => toString(answerValue(p))).join(" ");
    }
    return "";
  }
  return "";
}

// ---------------------------------------------------------------------------------------------
// Evaluation
//
// A context: {answers, scopes, entry, dot, today, now, layout, labels, columns, previous}.
// scopes: the repeat entries around the expression, outermost first, each {repeat, index, values}
// (entry: a shorthand for one scope of unknown place); layout: {name: [repeat names]} for names
// inside repeats; labels(field, choice) -> label, for jr:choice-name().

const own = (obj, key) => obj !== null && typeof obj === "object" && Object.prototype.hasOwnProperty.call(obj, key);

function scopesOf(ctx) {
  if (Array.isArray(ctx.scopes)) return ctx.scopes;
  if (ctx.entry) return [{ repeat: null, index: null, values: ctx.entry }];
  return [];
}

function lookup(ctx, name) {
  const layout = ctx.layout || {};
  const path = own(layout, name) ? layout[name] : null;
  const scopes = scopesOf(ctx);
  const answers = ctx.answers || {};
  if (path === null) {
    for (let i = scopes.length - 1; i >= 0; i -= 1) {
      if (own(scopes[i].values, name)) return answerValue(scopes[i].values[name]);
    }
    return answerValue(own(answers, name) ? answers[name] : undefined);
  }
  let base = answers;
  let depth = 0;
  while (depth < path.length && depth < scopes.length && scopes[depth].repeat === path[depth]) {
    base = scopes[depth].values;
    depth += 1;
  }
  if (depth === path.length) return answerValue(own(base, name) ? base[name] : undefined);
  let values = [base];
  for (const repeat of path.slice(depth)) {
    const next = [];
    for (const v of values) {
      const entries = own(v, repeat) ? v[repeat] : null;
      if (Array.isArray(entries)) for (const e of entries) if (e && typeof e === "object" && !Array.isArray(e)) next.push(e);
    }
    values = next;
  }
  return values.map((v) => answerValue(own(v, name) ? v[name] : undefined));
}

function compare(op, a, b) {
  if (Array.isArray(a) || Array.isArray(b)) {
    if (typeof a === "boolean" || typeof b === "boolean") return compare(op, toBool(a), toBool(b));
    const left = Array.isArray(a) ? a : [a];
    const right = Array.isArray(b) ? b : [b];
    return left.some((x) => right.some((y) => compare(op, x, y)));
  }
  if (op === "=" || op === "!=") {
    let same;
    if (typeof a === "boolean" || typeof b === "boolean") same = toBool(a) === toBool(b);
    else if (typeof a === "number" || typeof b === "number") same = toNumber(a) === toNumber(b);
    else same = a === b;
    return op === "=" ? same : !same;
  }
  const x = toNumber(a);
  const y = toNumber(b);
  if (op === "<") return x < y;
  if (op === "<=") return x <= y;
  if (op === ">") return x > y;
  return x >= y;
}

function arith(op, a, b) {
  const x = toNumber(a);
  const y = toNumber(b);
  if (op === "+") return x + y;
  if (op === "-") return x - y;
  if (op === "*") return x * y;
  if (op === "div") return x / y;
  return x % y;
}

function roundTo(x, digits = 0) {
  if (!Number.isFinite(x)) return x;
  const factor = 10 ** (Number.isFinite(digits) ? Math.trunc(Math.max(-15, Math.min(15, digits))) : 0);
  const r = Math.floor(Math.abs(x) * factor + 0.5) / factor;
  return r === 0 ? 0 : (x < 0 ? -r : r);
}

function dateOf(v) {
  if (Array.isArray(v)) v = v.length ? v[0] : "";
  if (typeof v === "string") {
    const m = DATE_RE.exec(v) || DATETIME_RE.exec(v);
    if (m) {
      const n = days(m[1], m[2], m[3]);
      return n === null ? null : civilFromDays(n);
    }
    if (!NUMBER_RE.test(v)) return null;
  }
  const n = toNumber(v);
  if (Number.isNaN(n) || !Number.isFinite(n) || Math.floor(n) < MIN_DAY || Math.floor(n) > MAX_DAY) return null;
  return civilFromDays(Math.floor(n));
}

const pad = (n, w) => String(n).padStart(w, "0");
const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
const DAYS = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];

function isoDay([y, m, d]) {
  return `${pad(y, 4)}-${pad(m, 2)}-${pad(d, 2)}`;
}

function formatDate(v, fmt) {
  const day = dateOf(v);
  if (day === null) return "";
  const text = Array.isArray(v) ? (v.length ? v[0] : "") : v;
  let h = 0;
  let mi = 0;
  let s = 0;
  if (typeof text === "string") {
    const m = DATETIME_RE.exec(text);
    if (m) { h = Number(m[4]); mi = Number(m[5]); s = Number(m[6] || 0); }
  }
  const [y, mo, d] = day;
  const weekday = ((daysFromCivil(y, mo, d) % 7) + 7 + 3) % 7; // 1970-01-01 was a Thursday (3)
  const parts = {
    Y: pad(y, 4), y: pad(y % 100, 2), m: pad(mo, 2), n: String(mo), b: MONTHS[mo - 1], d: pad(d, 2),
    e: String(d), a: DAYS[weekday], H: pad(h, 2), h: String(h), M: pad(mi, 2), S: pad(s, 2), 3: "000", "%": "%",
  };
  return fmt.replace(/%([\s\S])/g, (all, c) => (own(parts, c) ? parts[c] : all));
}

const nodes = (v) => (Array.isArray(v) ? v : [v]);

function randomUuid() {
  const c = globalThis.crypto;
  if (c && typeof c.randomUUID === "function") return c.randomUUID();
  const b = new Uint8Array(16);
  if (c && c.getRandomValues) c.getRandomValues(b); else for (let i = 0; i < 16; i += 1) b[i] = Math.floor(Math.random() * 256);
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const h = [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

export function evaluateTree(node, ctx) {
  const kind = node[0];
  if (kind === "num" || kind === "str") return node[1];
  if (kind === "ref") return lookup(ctx, node[1]);
  if (kind === "dot") return answerValue(ctx.dot);
  if (kind === "dotdot") return "";
  if (kind === "col") return answerValue(own(ctx.columns, node[1]) ? ctx.columns[node[1]] : undefined);
  if (kind === "neg") return -toNumber(evaluateTree(node[1], ctx));
  if (kind === "bin") {
    const op = node[1];
    if (op === "or") return toBool(evaluateTree(node[2], ctx)) || toBool(evaluateTree(node[3], ctx));
    if (op === "and") return toBool(evaluateTree(node[2], ctx)) && toBool(evaluateTree(node[3], ctx));
    const a = evaluateTree(node[2], ctx);
    const b = evaluateTree(node[3], ctx);
    if (["=", "!=", "<", "<=", ">", ">="].includes(op)) return compare(op, a, b);
    return arith(op, a, b);
  }
  return call(node[1], node[2], ctx);
}

const dotValue = (ctx) => answerValue(ctx.dot);

function call(name, args, ctx) {
  const ev = (i) => evaluateTree(args[i], ctx);
  const s = (i) => toString(ev(i));
  const n = (i) => toNumber(ev(i));
  switch (name) {
    case "true": return true;
    case "false": return false;
    case "not": return !toBool(ev(0));
    case "boolean": return toBool(ev(0));
    case "string": return args.length ? s(0) : toString(dotValue(ctx));
    case "number": return args.length ? n(0) : toNumber(dotValue(ctx));
    case "int": { const x = n(0); return Number.isFinite(x) ? Math.trunc(x) : x; }
    case "round": return roundTo(n(0), args.length > 1 && !Number.isNaN(n(1)) ? n(1) : 0);
    case "floor": { const x = n(0); return Number.isFinite(x) ? Math.floor(x) : x; }
    case "ceiling": { const x = n(0); return Number.isFinite(x) ? Math.ceil(x) : x; }
    case "abs": return Math.abs(n(0));
    case "pow": return Math.pow(n(0), n(1));
    case "selected": return words(s(0)).includes(words(s(1)).join(" "));
    case "count-selected": return words(s(0)).length;
    case "selected-at": {
      const items = words(s(0));
      const i = n(1);
      return !Number.isNaN(i) && i >= 0 && i < items.length && Number.isInteger(i) ? items[i] : "";
    }
    case "jr:choice-name": {
      const m = /^\s*\$\{([A-Za-z_][A-Za-z0-9_-]*)\}\s*$/.exec(s(1));
      if (!m || typeof ctx.labels !== "function") return "";
      return ctx.labels(m[1], s(0)) || "";
    }
    case "count": { const v = ev(0); return Array.isArray(v) ? v.length : (v === "" ? 0 : 1); }
    case "sum": { let t = 0; for (const x of nodes(ev(0))) t = t + toNumber(x); return t; }
    case "max": case "min": {
      const values = [];
      for (let i = 0; i < args.length; i += 1) for (const x of nodes(ev(i))) values.push(toNumber(x));
      if (!values.length || values.some((x) => Number.isNaN(x))) return NaN;
      return name === "max" ? Math.max(...values) : Math.min(...values);
    }
    case "string-length": return Array.from(args.length ? s(0) : toString(dotValue(ctx))).length;
    case "substr": {
      const text = Array.from(s(0));
      let start = n(1);
      let end = args.length > 2 ? n(2) : text.length;
      if (Number.isNaN(start) || Number.isNaN(end)) return "";
      start = Math.max(0, Math.trunc(start));
      end = Math.min(text.length, Math.trunc(end));
      return start < end ? text.slice(start, end).join("") : "";
    }
    case "substring": {
      const text = Array.from(s(0));
      const start = roundTo(n(1));
      const end = args.length > 2 ? start + roundTo(n(2)) : Infinity;
      return text.filter((c, i) => start <= i + 1 && i + 1 < end).join("");
    }
    case "concat": {
      let out = "";
      for (let i = 0; i < args.length; i += 1) for (const x of nodes(ev(i))) out += toString(x);
      return out;
    }
    case "join": {
      const sep = s(0);
      const parts = [];
      for (let i = 1; i < args.length; i += 1) for (const x of nodes(ev(i))) parts.push(toString(x));
      return parts.join(sep);
    }
    case "contains": return s(0).includes(s(1));
    case "starts-with": return s(0).startsWith(s(1));
    case "ends-with": return s(0).endsWith(s(1));
    case "regex": try { return new RegExp(s(1)).test(s(0)); } catch (exc) { return false; }
    case "if": return toBool(ev(0)) ? ev(1) : ev(2);
    case "coalesce": { const first = s(0); return first !== "" ? first : s(1); }
    case "today": return ctx.today;
    case "now": return ctx.now || `${ctx.today}T00:00:00.000+08:00`;
    case "date": { const d = dateOf(ev(0)); return d === null ? "" : isoDay(d); }
    case "decimal-date-time": return n(0);
    case "format-date": case "format-date-time": return formatDate(ev(0), s(1));
    case "position": {
      const scopes = scopesOf(ctx);
      const index = scopes.length ? scopes[scopes.length - 1].index : null;
      return index ? index : NaN;
    }
    case "indexed-repeat": return indexedRepeat(args, ctx);
    case "once": {
      const prev = ctx.previous === undefined || ctx.previous === null ? dotValue(ctx) : answerValue(ctx.previous);
      return prev !== "" ? prev : ev(0);
    }
    case "uuid": return randomUuid();
    case "normalize-space": return words(args.length ? s(0) : toString(dotValue(ctx))).join(" ");
    case "boolean-from-string": return ["true", "1"].includes(s(0));
    case "translate": {
      const [text, src, dst] = [Array.from(s(0)), Array.from(s(1)), Array.from(s(2))];
      const table = new Map();
      src.forEach((c, i) => { if (!table.has(c)) table.set(c, i < dst.length ? dst[i] : null); });
      return text.map((c) => (table.has(c) ? table.get(c) : c)).filter((c) => c !== null).join("");
    }
    default: throw new XPathError(`unknown function ${name}()`, `不支持的函数 ${name}()`, `${name}()`);
  }
}

function indexedRepeat(args, ctx) {
  if (args[0][0] !== "ref" || args.length % 2 === 0) return "";
  for (let i = 1; i < args.length; i += 2) if (args[i][0] !== "ref") return "";
  let values = ctx.answers || {};
  for (let i = 1; i < args.length; i += 2) {
    const entries = own(values, args[i][1]) ? values[args[i][1]] : null;
    const index = toNumber(evaluateTree(args[i + 1], ctx));
    if (!Array.isArray(entries) || Number.isNaN(index) || index < 1 || index > entries.length) return "";
    values = entries[Math.trunc(index) - 1];
  }
  return values && typeof values === "object" ? answerValue(own(values, args[0][1]) ? values[args[0][1]] : undefined) : "";
}

/** The XPath value of an expression (string, number, boolean or an array for a node-set). */
export function evaluate(text, ctx = {}) {
  return evaluateTree(parse(text), { today: todayLocal(), ...ctx });
}

export function evaluateBool(text, ctx = {}) {
  return toBool(evaluate(text, ctx));
}

/** What a calculation stores: its string value ("" for NaN and infinities). */
export function resultString(value) {
  if (typeof value === "number" && !Number.isFinite(value)) return "";
  return toString(value);
}

function todayLocal(now = new Date()) {
  return `${pad(now.getFullYear(), 4)}-${pad(now.getMonth() + 1, 2)}-${pad(now.getDate(), 2)}`;
}

/** A computed XPath value as a question of `kind` stores it (null: empty, not a value). */
export function computedValue(kind, value) {
  if (kind === "integer" || kind === "decimal" || kind === "range") {
    let n = toNumber(value);
    if (!Number.isFinite(n) || Math.abs(n) > 1e15) return null;
    if (kind === "integer") n = Math.trunc(n);
    return n === 0 ? 0 : n;
  }
  if (kind === "date") {
    const d = dateOf(value);
    return d === null ? null : isoDay(d);
  }
  if (kind === "select_multiple") {
    const items = words(toString(value));
    return items.length ? items : null;
  }
  const text = resultString(value);
  return text !== "" ? text : null;
}
