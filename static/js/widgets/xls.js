// The question types XLSForm brings (docs/forms.md): time, datetime, range, acknowledge, rank,
// barcode (typed: no camera scanning), geotrace/geoshape (points from locate()), and audio/video/file,
// which the server takes only from ODK Collect (attachments are JPEG/PNG): said so, left empty.
// The value conversions are plain functions (node --test).

import { h, idFor } from "../dom.js";
import { t } from "../i18n.js";
import { locate } from "../media.js";
import { renderText, typedField } from "./text.js";

const pad = (n) => String(n).padStart(2, "0");

/** <input type=time> "HH:MM[:SS]" -> "HH:MM:SS" (the server's time), "" -> undefined. */
export const timeAnswer = (v) => (v ? (v.length === 5 ? `${v}:00` : v.slice(0, 8)) : undefined);

/** A local wall time "YYYY-MM-DDTHH:MM[:SS]" -> ISO with its offset ("…T08:30:00+08:00"). */
export function datetimeAnswer(v) {
  if (!v) return undefined;
  const s = v.length === 16 ? `${v}:00` : v.slice(0, 19);
  const d = new Date(s);
  return Number.isNaN(d.getTime()) ? undefined : s + offsetOf(d);
}

function offsetOf(d) {
  const m = -d.getTimezoneOffset();
  return `${m < 0 ? "-" : "+"}${pad(Math.floor(Math.abs(m) / 60))}:${pad(Math.abs(m) % 60)}`;
}

/** Now as the server's datetime (start, end): local time with milliseconds and offset. */
export function nowAnswer(d = new Date()) {
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${String(d.getMilliseconds()).padStart(3, "0")}${offsetOf(d)}`;
}

/** The list with item i moved by step (-1 up, 1 down); unchanged at either end. */
export function moved(list, i, step) {
  const out = [...list];
  const j = i + step;
  if (j < 0 || j >= out.length) return out;
  [out[i], out[j]] = [out[j], out[i]];
  return out;
}

const num = (v, d) => (typeof v === "number" && Number.isFinite(v) ? v : d);

export function renderTime(view, field, path) {
  const dt = field.type === "datetime";
  return typedField(view, field, path, (common, cur) => {
    const input = h("input", { ...common, type: dt ? "datetime-local" : "time", step: dt ? null : 1, value: typeof cur === "string" ? cur.slice(0, dt ? 16 : 8) : "" });
    input.addEventListener("input", () => { view.set(path, (dt ? datetimeAnswer : timeAnswer)(input.value)); view.changed(path, false); });
    return { input };
  });
}

export function renderRange(view, field, path) {
  return typedField(view, field, path, (common, cur) => {
    const has = typeof cur === "number";
    const input = h("input", { ...common, type: "range", min: num(field.min, 1), max: num(field.max, 10), step: num(field.step, 1), value: has ? cur : null });
    const out = h("output", { for: common.id, class: "range-value" }, has ? String(cur) : t("range_unset"));
    input.addEventListener("input", () => { view.set(path, Number(input.value)); out.textContent = input.value; view.changed(path, false); });
    return { input, extra: [out] };
  });
}

/** acknowledge: a checkbox; ticked is "OK", as in ODK. */
export function renderAck(view, field, path) {
  const id = idFor("i", path);
  const box = h("input", {
    type: "checkbox", id, name: path, value: "OK", checked: view.get(path) === "OK",
    onchange: () => { view.set(path, box.checked ? "OK" : undefined); view.changed(path); },
  });
  const error = view.errorEl(path);
  const wrap = h("div", { class: "field field-acknowledge", id: idFor("f", path), "data-field": path },
    h("label", { class: "choice", for: id }, box, h("span", {}, view.labelParts(field))), view.hintEl(field, path), error);
  view.register(path, field, wrap, error, box);
  return wrap;
}

/** rank: the choices in order, moved with up/down; the order is the answer once moved or kept. */
export function renderRank(view, field, path) {
  const names = (field.choices || []).map((c) => c.name);
  const labels = new Map((field.choices || []).map((c) => [c.name, view.labelOf(c)]));
  const list = h("ol", { class: "rank" });
  const hidden = h("input", { type: "hidden", name: path });
  const keep = h("button", { type: "button", class: "small secondary", "data-action": "rank-keep" }, t("rank_keep"));
  const set = (order) => { view.set(path, order); draw(); view.changed(path); };
  const draw = () => {
    const cur = view.get(path);
    const order = Array.isArray(cur) ? [...cur, ...names.filter((n) => !cur.includes(n))] : names;
    hidden.value = Array.isArray(cur) ? cur.join(" ") : "";
    keep.hidden = Array.isArray(cur);
    list.replaceChildren(...order.map((n, i) => h("li", { "data-choice": n }, h("span", {}, labels.get(n) || n),
      h("button", { type: "button", class: "small", "data-action": "rank-up", "aria-label": `↑ ${labels.get(n) || n}`, disabled: !i, onclick: () => set(moved(order, i, -1)) }, "↑"),
      h("button", { type: "button", class: "small", "data-action": "rank-down", "aria-label": `↓ ${labels.get(n) || n}`, disabled: i === order.length - 1, onclick: () => set(moved(order, i, 1)) }, "↓"))));
  };
  keep.onclick = () => set(names);
  draw();
  const error = view.errorEl(path);
  const wrap = h("fieldset", { class: "field field-rank", id: idFor("f", path), "data-field": path },
    h("legend", {}, view.labelParts(field)), view.hintEl(field, path), hidden, list, keep, error);
  view.register(path, field, wrap, error, keep);
  return wrap;
}

/** geotrace, geoshape: points added one by one where the cadre stands. */
export function renderTrace(view, field, path) {
  const status = h("p", { class: "geo-status", "aria-live": "polite" });
  const hidden = h("input", { type: "hidden", name: path });
  const points = () => (Array.isArray(view.get(path)) ? view.get(path) : []);
  const show = (text) => {
    hidden.value = points().length ? JSON.stringify(points()) : "";
    status.textContent = text || t("trace_count", { n: points().length });
    undo.disabled = !points().length;
  };
  const add = h("button", { type: "button", class: "secondary", "data-action": "add-point" }, t("trace_add"));
  const undo = h("button", { type: "button", class: "small link" }, t("trace_undo"));
  add.onclick = async () => {
    add.disabled = true;
    show(t("geo_locating"));
    try {
      view.set(path, [...points(), await locate()]);
      show();
      view.changed(path);
    } catch (err) {
      show(t(err && err.code === 1 ? "geo_denied" : "geo_unavailable"));
    } finally { add.disabled = false; }
  };
  undo.onclick = () => { const p = points().slice(0, -1); view.set(path, p.length ? p : undefined); show(); view.changed(path); };
  show();
  const error = view.errorEl(path);
  const wrap = h("fieldset", { class: "field field-trace", id: idFor("f", path), "data-field": path },
    h("legend", {}, view.labelParts(field)), view.hintEl(field, path), hidden, status, h("div", { class: "row" }, add, undo), error);
  view.register(path, field, wrap, error, add);
  return wrap;
}

/** audio, video, file: the server takes these only from ODK Collect; the answer stays empty. */
export function renderMediaFile(view, field, path) {
  const error = view.errorEl(path);
  const wrap = h("div", { class: "field", id: idFor("f", path), "data-field": path },
    h("p", { class: "label" }, view.labelParts(field)), view.hintEl(field, path),
    h("p", { class: "notice", "data-unsupported": field.type }, t("use_collect")), error);
  view.register(path, field, wrap, error, null);
  return wrap;
}

/** barcode: typed (this phone does not scan; ODK Collect does). */
export function renderBarcode(view, field, path) {
  const wrap = renderText(view, field, path);
  wrap.querySelector("label").after(h("p", { class: "hint" }, t("barcode_typed")));
  return wrap;
}
