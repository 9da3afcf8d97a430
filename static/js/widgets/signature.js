// A signature: drawn with a finger on a canvas, kept as a PNG in the photos store a moment after
// the finger lifts; the answer is its file name, as for a photo.

import { h, idFor } from "../dom.js";
import { t } from "../i18n.js";
import { thumbKey } from "../records.js";
import { fileNameFor } from "./photo.js";

export function renderSignature(view, field, path) {
  const canvas = h("canvas", { class: "sig-pad", role: "img", "aria-label": view.labelOf(field) });
  const hidden = h("input", { type: "hidden", name: path, value: view.get(path) || "" });
  const clearBtn = h("button", { type: "button", class: "small secondary" }, t("sig_clear"));
  let ctx = null;
  let drawing = false;
  let saveTimer = null;
  const setup = async () => {
    const width = canvas.clientWidth;
    if (!width || ctx) return;
    const ratio = window.devicePixelRatio || 1;
    canvas.width = Math.round(width * ratio);
    canvas.height = Math.round(canvas.clientHeight * ratio);
    ctx = canvas.getContext("2d");
    ctx.scale(ratio, ratio);
    ctx.fillStyle = "#fff";
    ctx.fillRect(0, 0, width, canvas.clientHeight);
    ctx.lineWidth = 2.5;
    ctx.lineCap = "round";
    ctx.lineJoin = "round";
    ctx.strokeStyle = "#111";
    const name = view.get(path);
    const blob = name && view.db ? await view.db.get("photos", name) : null;
    if (blob) {
      const url = URL.createObjectURL(blob);
      const img = new Image();
      img.onload = () => { ctx.drawImage(img, 0, 0, width, canvas.clientHeight); URL.revokeObjectURL(url); };
      img.src = url;
    }
  };
  if (typeof ResizeObserver === "function") {
    const observer = new ResizeObserver(() => { if (canvas.clientWidth) { observer.disconnect(); setup(); } });
    observer.observe(canvas);
  } else {
    requestAnimationFrame(setup);
  }
  const point = (e) => {
    const r = canvas.getBoundingClientRect();
    return [e.clientX - r.left, e.clientY - r.top];
  };
  const save = () => {
    canvas.toBlob(async (blob) => {
      if (!blob) return;
      const name = view.get(path) || fileNameFor(path, "png");
      await view.db.put("photos", name, blob);
      await view.db.put("photos", thumbKey(name), blob); // small already; shows the sent visit
      view.set(path, name);
      hidden.value = name;
      view.changed(path);
    }, "image/png");
  };
  canvas.addEventListener("pointerdown", (e) => {
    if (!ctx) return;
    e.preventDefault();
    canvas.setPointerCapture(e.pointerId);
    drawing = true;
    clearTimeout(saveTimer);
    const [x, y] = point(e);
    ctx.beginPath();
    ctx.moveTo(x, y);
    ctx.lineTo(x + 0.1, y + 0.1);
    ctx.stroke();
  });
  canvas.addEventListener("pointermove", (e) => {
    if (!drawing) return;
    const [x, y] = point(e);
    ctx.lineTo(x, y);
    ctx.stroke();
  });
  const end = () => {
    if (!drawing) return;
    drawing = false;
    clearTimeout(saveTimer);
    saveTimer = setTimeout(save, 400);
  };
  canvas.addEventListener("pointerup", end);
  canvas.addEventListener("pointercancel", end);
  clearBtn.addEventListener("click", () => {
    clearTimeout(saveTimer);
    if (ctx) {
      ctx.fillStyle = "#fff";
      ctx.fillRect(0, 0, canvas.clientWidth, canvas.clientHeight);
    }
    view.set(path, undefined);
    hidden.value = "";
    view.changed(path);
  });
  const error = view.errorEl(path);
  const wrap = h("fieldset", { class: "field field-signature", id: idFor("f", path), "data-field": path, "aria-describedby": view.describedBy(field, path) },
    h("legend", {}, view.labelParts(field)), view.hintEl(field, path), hidden, canvas,
    h("div", { class: "row" }, h("span", { class: "muted" }, t("sig_help")), clearBtn), error);
  view.register(path, field, wrap, error, clearBtn);
  return wrap;
}
