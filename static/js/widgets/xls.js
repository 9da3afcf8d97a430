// XLSForm's own types (docs/forms.md), answered as the server checks them: time "HH:MM:SS",
// datetime with its offset, acknowledge "OK", rank the names in order, geotrace/geoshape a list of
// points (locate()). barcode is typed (no scanning); audio/video/file come only from ODK Collect
// (the server keeps JPEG/PNG attachments): said so, left empty.

import { h, idFor } from "../dom.js";
import { t } from "../i18n.js";
import { locate } from "../media.js";
import { renderText, typedField } from "./text.js";

const pad = (n, w = 2) => String(n).padStart(w, "0");
const offsetOf = (d, m = -d.getTimezoneOffset()) => `${m < 0 ? "-" : "+"}${pad(Math.abs(m) / 60 | 0)}:${pad(Math.abs(m) % 60)}`;

export const timeAnswer = (v) => (v ? `${v}:00`.slice(0, 8) : undefined);

export function datetimeAnswer(v) {
  const s = `${v}:00`.slice(0, 19);
  return /^\d{4}(-\d\d){2}T\d\d:\d\d/.test(v) ? s + offsetOf(new Date(s)) : undefined;
}

export const nowAnswer = (d = new Date()) => `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}${offsetOf(d)}`;

export function moved(list, i, step) {
  const out = [...list];
  if (out[i + step] !== undefined) [out[i], out[i + step]] = [out[i + step], out[i]];
  return out;
}

export function renderTime(view, field, path) {
  const dt = field.type === "datetime";
  return typedField(view, field, path, (common, cur) => {
    const input = h("input", { ...common, type: dt ? "datetime-local" : "time", step: 1, value: typeof cur === "string" ? cur.slice(0, 19 - 11 * !dt) : "" });
    input.oninput = () => { view.set(path, (dt ? datetimeAnswer : timeAnswer)(input.value)); view.changed(path, false); };
    return { input };
  });
}

export function renderRange(view, field, path) {
  return typedField(view, field, path, (common, cur) => {
    const input = h("input", { ...common, type: "range", min: field.min ?? 1, max: field.max ?? 10, step: field.step ?? 1, value: cur });
    const out = h("output", { class: "range-value" }, cur ?? t("range_unset"));
    input.oninput = () => { view.set(path, Number(input.value)); out.textContent = input.value; view.changed(path, false); };
    return { input, extra: [out] };
  });
}

function frame(view, field, path, focus, ...body) {
  const error = view.errorEl(path);
  const wrap = h("fieldset", { class: `field field-${field.type}`, id: idFor("f", path), "data-field": path },
    h("legend", {}, view.labelParts(field)), view.hintEl(field, path), body, error);
  view.register(path, field, wrap, error, focus);
  return wrap;
}

export function renderAck(view, field, path) {
  const box = h("input", {
    type: "checkbox", name: path, checked: view.get(path) === "OK",
    onchange: () => { view.set(path, box.checked ? "OK" : undefined); view.changed(path); },
  });
  return frame(view, field, path, box, h("label", { class: "choice" }, box, t("ack")));
}

export function renderRank(view, field, path) {
  const names = (field.choices || []).map((c) => c.name);
  const label = (n) => view.labelOf(field.choices.find((c) => c.name === n));
  const list = h("ol", { class: "rank" });
  const hidden = h("input", { type: "hidden", name: path });
  const keep = h("button", { type: "button", class: "small secondary", "data-action": "rank-keep" }, t("rank_keep"));
  const set = (order) => { view.set(path, order); draw(); view.changed(path); };
  const button = (order, i, step) => h("button", {
    type: "button", class: "small", "data-action": step < 0 ? "rank-up" : "rank-down", "aria-label": `${label(order[i])} ${step < 0 ? "↑" : "↓"}`,
    disabled: order[i + step] === undefined, onclick: () => set(moved(order, i, step)),
  }, step < 0 ? "↑" : "↓");
  const draw = () => {
    const cur = Array.isArray(view.get(path)) ? view.get(path) : null;
    const order = cur ? [...cur, ...names.filter((n) => !cur.includes(n))] : names;
    hidden.value = cur ? cur.join(" ") : "";
    keep.hidden = !!cur;
    list.replaceChildren(...order.map((n, i) => h("li", { "data-choice": n }, h("span", {}, label(n)), button(order, i, -1), button(order, i, 1))));
  };
  keep.onclick = () => set(names);
  draw();
  return frame(view, field, path, keep, hidden, list, keep);
}

export function renderTrace(view, field, path) {
  const status = h("p", { class: "geo-status", "aria-live": "polite" });
  const hidden = h("input", { type: "hidden", name: path });
  const points = () => view.get(path) || [];
  const add = h("button", { type: "button", class: "secondary", "data-action": "add-point" }, t("trace_add"));
  const undo = h("button", { type: "button", class: "small link" }, t("trace_undo"));
  const show = (text) => {
    hidden.value = view.get(path) ? JSON.stringify(points()) : "";
    status.textContent = text || t("trace_count", { n: points().length });
    undo.disabled = !view.get(path);
  };
  const set = (p) => { view.set(path, p.length ? p : undefined); show(); view.changed(path); };
  add.onclick = async () => {
    add.disabled = true;
    show(t("geo_locating"));
    try {
      set([...points(), await locate()]);
    } catch (err) {
      show(t(err && err.code === 1 ? "geo_denied" : "geo_unavailable"));
    }
    add.disabled = false;
  };
  undo.onclick = () => set(points().slice(0, -1));
  show();
  return frame(view, field, path, add, hidden, status, h("div", { class: "row" }, add, undo));
}

export const renderMediaFile = (view, field, path) => frame(view, field, path, null, h("p", { class: "notice", "data-unsupported": field.type }, t("use_collect")));

export function renderBarcode(view, field, path) {
  const wrap = renderText(view, field, path);
  wrap.querySelector("label").after(h("p", { class: "hint" }, t("barcode_typed")));
  return wrap;
}
