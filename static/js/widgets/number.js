// integer and decimal: typed as text (a phone keyboard's digits, full-width digits and separators
// all work), kept as a number once it reads as one; what does not read as one is kept as typed,
// so the cadre sees the error instead of losing the input.

import { parseNumber } from "../answers.js";
import { h } from "../dom.js";
import { typedField } from "./text.js";

export function renderNumber(view, field, path) {
  return typedField(view, field, path, (common, cur) => {
    const input = h("input", {
      ...common, type: "text", inputmode: field.type === "integer" ? "numeric" : "decimal", autocomplete: "off",
      value: cur === undefined || cur === null ? "" : String(cur),
    });
    input.addEventListener("input", () => {
      const parsed = parseNumber(input.value, field.type);
      view.set(path, parsed === null ? undefined : parsed === undefined ? input.value : parsed);
      view.changed(path, false);
    });
    return { input };
  });
}
