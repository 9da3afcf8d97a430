// A date: the phone's date picker (within the field's min and max), and a "today" button.

import { todayISO } from "../conditions.js";
import { h } from "../dom.js";
import { t } from "../i18n.js";
import { typedField } from "./text.js";

export function renderDate(view, field, path) {
  return typedField(view, field, path, (common, cur) => {
    const input = h("input", {
      ...common, type: "date", value: typeof cur === "string" ? cur : "",
      min: typeof field.min === "string" ? field.min : null, max: typeof field.max === "string" ? field.max : null,
    });
    input.addEventListener("input", () => { view.set(path, input.value || undefined); view.changed(path, false); });
    const today = h("button", {
      type: "button", class: "small", onclick: () => {
        input.value = todayISO();
        view.set(path, input.value);
        view.changed(path);
      },
    }, t("today"));
    return { input, extra: [today] };
  });
}
