// A place (geopoint): the phone's position on a tap, with its accuracy (a poor fix is said so);
// the answer travels in a hidden input named by the field's path, as JSON.

import { clear, h, idFor } from "../dom.js";
import { t } from "../i18n.js";
import { locate } from "../media.js";

const GOOD_ACCURACY_M = 50;

export function renderGeopoint(view, field, path) {
  const cur = view.get(path);
  const hidden = h("input", { type: "hidden", name: path, value: cur ? JSON.stringify(cur) : "" });
  const status = h("p", { class: "geo-status", "aria-live": "polite" });
  const show = (p) => {
    clear(status);
    if (!p) { status.append(t("geo_none")); return; }
    status.append(t("geo_value", { lat: p.lat, lon: p.lon, acc: Math.round(p.accuracy) }));
    if (p.accuracy > GOOD_ACCURACY_M) status.append(h("span", { class: "warn-text" }, ` ${t("geo_poor")}`));
  };
  show(cur);
  const button = h("button", { type: "button", class: "secondary", "data-action": "locate" }, t(cur ? "geo_retry" : "geo_get"));
  button.addEventListener("click", async () => {
    button.disabled = true;
    clear(status).append(t("geo_locating"));
    try {
      const p = await locate();
      view.set(path, p);
      hidden.value = JSON.stringify(p);
      show(p);
      button.textContent = t("geo_retry");
      view.changed(path);
    } catch (err) {
      clear(status).append(h("span", { class: "warn-text" },
        t(err && err.code === 1 ? "geo_denied" : err && err.code === 3 ? "geo_timeout" : "geo_unavailable")));
    } finally {
      button.disabled = false;
    }
  });
  const error = view.errorEl(path);
  const legendId = idFor("l", path);
  const wrap = h("fieldset", { class: "field field-geopoint", id: idFor("f", path), "data-field": path, "aria-describedby": view.describedBy(field, path) },
    h("legend", { id: legendId }, view.labelParts(field)), view.hintEl(field, path), hidden, status, button, error);
  view.register(path, field, wrap, error, button);
  return wrap;
}
