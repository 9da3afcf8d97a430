// A photo: taken with the camera, scaled down on the phone and kept in its photos store (with a
// small copy that outlives it, for the sent visit); the answer is the photo's file name.

import { clear, h, idFor } from "../dom.js";
import { t } from "../i18n.js";
import { downscaleImage } from "../media.js";
import { thumbKey } from "../records.js";
import { shortId } from "../util.js";

const THUMB_SIDE = 240;

/** A photo's file name on the phone and the server: its field's path, and a short random id. */
export function fileNameFor(path, ext) {
  return `${String(path).replace(/\./g, "_")}-${shortId()}.${ext}`;
}

export function renderPhoto(view, field, path) {
  const id = idFor("i", path);
  const input = h("input", { type: "file", accept: "image/*", capture: "environment", id, name: path, class: "file-input" });
  const preview = h("div", { class: "photo-preview" });
  const status = h("p", { class: "photo-status", "aria-live": "polite" });
  const pickLabel = h("label", { for: id, class: "button secondary" });
  const removeBtn = h("button", { type: "button", class: "small link" }, t("photo_remove"));
  const show = async (name) => {
    clear(preview);
    pickLabel.textContent = t(name ? "photo_retake" : "photo_take");
    removeBtn.hidden = !name;
    if (!name) return;
    const blob = view.db ? await view.db.get("photos", name) : null;
    if (!blob) { preview.append(h("p", { class: "warn-text" }, t("photo_missing"))); return; }
    const url = URL.createObjectURL(blob);
    view.objectUrls.add(url);
    preview.append(h("img", { src: url, alt: view.labelOf(field), width: 120, height: 90 }),
      h("span", { class: "muted" }, t("photo_saved", { kb: Math.max(1, Math.round(blob.size / 1024)) })));
  };
  input.addEventListener("change", async () => {
    const file = input.files && input.files[0];
    if (!file) return;
    clear(status).append(t("photo_working"));
    try {
      const blob = await downscaleImage(file);
      const name = fileNameFor(path, "jpg");
      await view.db.put("photos", name, blob);
      // A small copy, kept after the photo itself is freed, shows the sent visit offline.
      try { await view.db.put("photos", thumbKey(name), await downscaleImage(blob, THUMB_SIDE, 0.7)); } catch (_) { /* the photo is enough */ }
      view.set(path, name);
      clear(status);
      await show(name);
      view.changed(path);
    } catch (err) {
      clear(status).append(h("span", { class: "warn-text" }, t("photo_failed")));
    } finally {
      input.value = "";
    }
  });
  removeBtn.addEventListener("click", () => {
    view.set(path, undefined);
    show(null);
    view.changed(path);
  });
  show(view.get(path));
  const error = view.errorEl(path);
  const wrap = h("div", { class: "field field-photo", id: idFor("f", path), "data-field": path },
    h("label", { for: id, class: "label" }, view.labelParts(field)), view.hintEl(field, path),
    input, preview, h("div", { class: "row" }, pickLabel, removeBtn), status, error);
  view.register(path, field, wrap, error, pickLabel);
  return wrap;
}
