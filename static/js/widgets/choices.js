// select_one and select_multiple: one radio or checkbox per choice (name = the field's path,
// value = the choice's name), big enough to tap; a single choice that is not required can be
// cleared.

import { h, idFor } from "../dom.js";
import { lang, pick, t } from "../i18n.js";

export function renderChoices(view, field, path) {
  const multiple = field.type === "select_multiple";
  const cur = view.get(path);
  const selected = new Set(multiple ? (Array.isArray(cur) ? cur : []) : (cur !== undefined ? [cur] : []));
  const error = view.errorEl(path);
  const legendId = idFor("l", path);
  const inputs = [];
  const sync = () => { for (const i of inputs) i.parentElement.classList.toggle("on", i.checked); };
  const options = (field.choices || []).map((choice, n) => {
    const id = idFor("i", `${path}.${n}`);
    const input = h("input", {
      type: multiple ? "checkbox" : "radio", id, name: path, value: choice.name, checked: selected.has(choice.name),
      onchange: () => {
        const values = inputs.filter((i) => i.checked).map((i) => i.value);
        view.set(path, multiple ? (values.length ? values : undefined) : values[0]);
        sync();
        view.changed(path);
      },
    });
    inputs.push(input);
    return h("label", { class: "choice", for: id }, input, h("span", {}, pick(choice.label, lang()) || choice.name));
  });
  sync();
  const clearBtn = !multiple && !field.required ? h("button", {
    type: "button", class: "small link", onclick: () => {
      for (const i of inputs) i.checked = false;
      sync();
      view.set(path, undefined);
      view.changed(path);
    },
  }, t("clear_choice")) : null;
  const wrap = h("fieldset", {
    class: `field choices${(field.choices || []).length > 4 ? " many" : ""}`, id: idFor("f", path), "data-field": path,
    "aria-describedby": view.describedBy(field, path),
  }, h("legend", { id: legendId }, view.labelParts(field)), view.hintEl(field, path),
  h("div", { class: "options", role: multiple ? "group" : "radiogroup", "aria-labelledby": legendId }, options), clearBtn, error);
  view.register(path, field, wrap, error, inputs[0]);
  return wrap;
}
