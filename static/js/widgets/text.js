// Questions answered by typing text (text, textarea), a computed or read-only value, and a note
// (a heading with no answer). Number and date inputs share this one's frame (label, hint, error;
// the input named by the field's path).

import { h, idFor } from "../dom.js";

/**
 * The frame of a typed answer: `make(attributes, current answer)` returns {input, extra} (extra:
 * buttons beside the input); what every such input has (its id, name, description, required,
 * touched on blur) comes in `attributes`.
 */
export function typedField(view, field, path, make) {
  const id = idFor("i", path);
  const common = {
    id, name: path, "aria-describedby": view.describedBy(field, path), required: !!field.required,
    onblur: () => view.touch(path), onchange: () => view.touch(path),
  };
  const { input, extra = [] } = make(common, view.get(path));
  const error = view.errorEl(path);
  const wrap = h("div", { class: `field field-${field.type}`, id: idFor("f", path), "data-field": path },
    h("label", { for: id }, view.labelParts(field)), view.hintEl(field, path),
    extra.length ? h("div", { class: "with-button" }, input, extra) : input, error);
  view.register(path, field, wrap, error, input);
  return wrap;
}

/** text and textarea: the answer is what was typed (nothing typed: no answer). */
export function renderText(view, field, path) {
  return typedField(view, field, path, (common, cur) => {
    const input = field.type === "textarea"
      ? h("textarea", { ...common, rows: 3, maxlength: field.max || null })
      : h("input", { ...common, type: "text", autocomplete: "off", value: typeof cur === "string" ? cur : "", maxlength: field.max || null });
    if (field.type === "textarea") input.value = typeof cur === "string" ? cur : "";
    input.addEventListener("input", () => { view.set(path, input.value === "" ? undefined : input.value); view.changed(path, false); });
    return { input };
  });
}

/** A note: a heading and its hint, no answer. */
export function renderNote(view, field, path) {
  const note = h("div", { class: "field note", id: idFor("f", path) },
    h("p", { class: "note-title" }, view.labelOf(field)), view.hintEl(field, path));
  view.register(path, field, note, null, null);
  return note;
}

export function renderReadonly(view, field, path) {
  const id = idFor("i", path);
  const input = h("input", { id, name: path, type: "text", readonly: true, class: "computed", "aria-describedby": view.describedBy(field, path) });
  const error = view.errorEl(path);
  const wrap = h("div", { class: "field field-computed", id: idFor("f", path), "data-field": path },
    h("label", { for: id }, view.labelOf(field)), view.hintEl(field, path), input, error);
  view.register(path, field, wrap, error, input);
  wrap.computedInput = input;
  return wrap;
}
