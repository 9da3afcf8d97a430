// Renders any form definition (forms/*.yaml as JSON) into a phone form and keeps its answers.
// Every input has a <label> and name = the field's path ("visit_date", "members.0.name").
// Relevance and computed values update live (conditions.js); errors appear next to their field:
// the phone's own checks once a field was touched or on submit, the server's when it refused.
// A form in sections shows one section at a time (the inputs of the others stay in the page,
// hidden), with a progress bar, previous/next, a list to jump to any section, and an error
// summary whose links open the section of the answer to fix. Promises carried forward
// (`prefill: open_followups`) are entries the cadre answers but cannot add or remove.

import { FILE_TYPES, errorText, normalizePath, parseNumber, pick, relevance, validateAnswers } from "./answers.js";
import { isAnswered, todayISO } from "./conditions.js";

// XLSForm's values nobody types (docs/forms.md): shown, never edited.
const UNSEEN_TYPES = new Set(["calculate", "hidden", "start", "end", "today", "deviceid"]);
import { clear, h, idFor } from "./dom.js";
import { lang, t } from "./i18n.js";
import { downscaleImage, locate } from "./media.js";
import { PREFILL_FOLLOWUPS, followupIdField } from "./drafts.js";
import { thumbKey } from "./records.js";
import { SectionNav, formShape, sectionOfPath } from "./sections.js";
import { fmtDay } from "./ui.js";
import { clone, isObject, shortId } from "./util.js";

const THUMB_SIDE = 240;

const GOOD_ACCURACY_M = 50;

const splitPath = (path) => String(path).split(".").map((p) => (/^\d+$/.test(p) ? Number(p) : p));

function getPath(obj, path) {
  let cur = obj;
  for (const part of splitPath(path)) {
    if (cur === null || cur === undefined) return undefined;
    cur = cur[part];
  }
  return cur;
}

function setPath(obj, path, value) {
  const parts = splitPath(path);
  let cur = obj;
  for (let i = 0; i < parts.length - 1; i++) {
    if (!isObject(cur[parts[i]]) && !Array.isArray(cur[parts[i]])) cur[parts[i]] = typeof parts[i + 1] === "number" ? [] : {};
    cur = cur[parts[i]];
  }
  const last = parts[parts.length - 1];
  if (value === undefined) delete cur[last];
  else cur[last] = value;
}

export class FormView {
  /**
   * options: definition, answers, settings (form settings from the server), db (photos store),
   * household (to copy its members into a repeat), serverErrors [{field, message}], onChange(answers),
   * promises [{id, action, due_date, status, note}] (headings of carried-forward entries),
   * reviewNotes {path: text} (a supervisor's comments, shown beside the answers they name),
   * section (the section to show first), onSection(name) (the cadre moved to another section).
   */
  constructor({
    definition, answers = {}, settings = {}, db, household = null, serverErrors = [], onChange = () => {},
    promises = [], reviewNotes = {}, section = null, onSection = () => {},
  }) {
    this.def = definition;
    this.answers = isObject(answers) ? clone(answers) : {};
    this.settings = settings;
    this.db = db;
    this.household = household;
    this.onChange = onChange;
    this.onSection = onSection;
    this.promises = new Map((promises || []).map((p) => [p.id, p]));
    this.reviewNotes = new Map(Object.entries(isObject(reviewNotes) ? reviewNotes : {}));
    this.touched = new Set();
    this.showAll = false;
    this.objectUrls = new Set();
    this.nav = new SectionNav(definition, section);
    this.applies = () => true;
    // Kept across re-renders: the page puts them in its action bar.
    this.prevButton = h("button", {
      type: "button", class: "secondary nav-prev", "data-action": "prev-section", "aria-label": t("prev_section"),
      onclick: () => this.goSection(this.nav.neighbour(-1, this.applies)),
    }, h("span", { "aria-hidden": "true" }, "‹"));
    this.nextButton = h("button", {
      type: "button", class: "primary nav-next", "data-action": "next-section",
      onclick: () => this.goSection(this.nav.neighbour(1, this.applies)),
    }, t("next_section"), h("span", { "aria-hidden": "true" }, " ›"));
    this.setServerErrors(serverErrors, false);
    this.el = h("form", { class: "form", novalidate: true, onsubmit: (e) => e.preventDefault() });
    this.render();
  }

  /** Whether the form shows one section at a time. */
  get sectioned() { return this.nav.enabled; }

  get(path) { return getPath(this.answers, path); }

  set(path, value) { setPath(this.answers, path, value); }

  /** The answers as typed (not cleaned: non-relevant answers are kept so they come back if relevant again). */
  getAnswers() { return clone(this.answers); }

  render() {
    this.destroy();
    clear(this.el);
    this.wraps = new Map();
    this.summary = h("div", { class: "error-summary", role: "alert", tabindex: "-1", hidden: true });
    this.summaryKey = "";
    this.el.append(this.summary);
    const shape = formShape(this.def);
    this.sectionEls = new Map();
    if (!this.sectioned) {
      for (const field of shape.fields) this.el.append(this.renderField(field, field.name));
    } else {
      this.el.append(this.renderSectionHead(shape));
      for (const section of shape.sections) {
        const titleId = idFor("s", section.name);
        const hint = pick(section.hint, lang());
        const skipped = h("p", { class: "muted section-skipped", hidden: true }, t("section_skipped"));
        const el = h("section", { class: "form-section", "data-section": section.name, "aria-labelledby": titleId },
          h("h2", { class: "section-title", id: titleId, tabindex: "-1" }, pick(section.label, lang()) || section.name),
          hint ? h("p", { class: "hint" }, hint) : null, skipped,
          shape.fields.filter((f) => f.section === section.name).map((f) => this.renderField(f, f.name)));
        el.skippedNote = skipped;
        this.sectionEls.set(section.name, el);
        this.el.append(el);
      }
    }
    this.refresh();
  }

  /** Where the cadre is: "part 2 of 6 · Family", a progress bar, and every part to jump to. */
  renderSectionHead(shape) {
    this.progressText = h("p", { class: "section-progress", "aria-live": "polite" });
    this.progressBar = h("div", { class: "progress-bar", role: "progressbar", "aria-valuemin": "1" }, h("span", {}));
    this.sectionLinks = new Map();
    const list = h("ol", { class: "section-list" }, shape.sections.map((section) => {
      const state = h("span", { class: "section-state" });
      const button = h("button", {
        type: "button", class: "link", "data-action": "goto-section", "data-section": section.name,
        onclick: () => { menu.open = false; this.goSection(section.name); },
      }, pick(section.label, lang()) || section.name, state);
      this.sectionLinks.set(section.name, { button, state });
      return h("li", {}, button);
    }));
    const menu = h("details", { class: "section-menu" }, h("summary", {}, t("sections_menu")), list);
    return h("div", { class: "section-head" }, h("div", { class: "section-head-row" }, this.progressText, menu), this.progressBar);
  }

  /** Shows one section (the others stay in the page, hidden) and takes the cadre to its top. */
  goSection(name, { focus = true } = {}) {
    if (!this.nav.go(name)) return;
    this.refresh();
    this.onSection(name);
    if (focus) {
      const title = this.sectionEls.get(name).querySelector(".section-title");
      this.el.scrollIntoView({ block: "start" });
      title.focus({ preventScroll: true });
    }
  }

  destroy() {
    for (const url of this.objectUrls) URL.revokeObjectURL(url);
    this.objectUrls.clear();
  }

  /** After any change: relevance, computed values, errors; then tell the page (autosave). */
  changed(path, touch = true) {
    if (touch) this.touched.add(path);
    this.serverErrors.delete(path);
    this.refresh();
    this.onChange(this.getAnswers());
  }

  touch(path) {
    if (this.touched.has(path)) return;
    this.touched.add(path);
    this.refresh();
  }

  register(path, field, wrap, error, focusEl) {
    this.wraps.set(path, { wrap, field, error, focusEl });
    if (this.reviewNotes.has(path)) {
      const note = h("p", { class: "review-note", "data-review-field": path }, t("field_comment", { text: this.reviewNotes.get(path) }));
      if (error && error.parentNode === wrap) wrap.insertBefore(note, error);
      else wrap.append(note);
    }
  }

  labelOf(field) { return pick(field.label, lang()) || field.name; }

  labelParts(field) {
    return [this.labelOf(field), field.required ? h("span", { class: "req", title: t("required") }, " *") : null];
  }

  hintEl(field, path) {
    const hint = pick(field.hint, lang());
    return hint ? h("p", { class: "hint", id: idFor("h", path) }, hint) : null;
  }

  describedBy(field, path) {
    return [pick(field.hint, lang()) ? idFor("h", path) : null, idFor("e", path)].filter(Boolean).join(" ");
  }

  errorEl(path) {
    return h("p", { class: "field-error", id: idFor("e", path), hidden: true });
  }

  renderField(field, path) {
    if (field.type === "note") {
      const note = h("div", { class: "field note", id: idFor("f", path) },
        h("p", { class: "note-title" }, this.labelOf(field)), this.hintEl(field, path));
      this.register(path, field, note, null, null);
      return note;
    }
    if (field.type === "repeat") return this.renderRepeat(field, path);
    if (field.compute !== undefined || field.readonly || UNSEEN_TYPES.has(field.type)) return this.renderReadonly(field, path);
    if (field.type === "select_one" || field.type === "select_multiple") return this.renderChoices(field, path);
    if (field.type === "geopoint") return this.renderGeopoint(field, path);
    if (FILE_TYPES.has(field.type)) {
      return field.type === "photo" ? this.renderPhoto(field, path) : this.renderSignature(field, path);
    }
    return this.renderInput(field, path);
  }

  renderInput(field, path) {
    const id = idFor("i", path);
    const cur = this.get(path);
    const common = {
      id, name: path, "aria-describedby": this.describedBy(field, path), required: !!field.required,
      onblur: () => this.touch(path), onchange: () => this.touch(path),
    };
    let input;
    const extra = [];
    if (field.type === "textarea") {
      input = h("textarea", { ...common, rows: 3, maxlength: field.max || null });
      input.value = typeof cur === "string" ? cur : "";
      input.addEventListener("input", () => { this.set(path, input.value === "" ? undefined : input.value); this.changed(path, false); });
    } else if (field.type === "integer" || field.type === "decimal") {
      input = h("input", {
        ...common, type: "text", inputmode: field.type === "integer" ? "numeric" : "decimal", autocomplete: "off",
        value: cur === undefined || cur === null ? "" : String(cur),
      });
      input.addEventListener("input", () => {
        const parsed = parseNumber(input.value, field.type);
        this.set(path, parsed === null ? undefined : parsed === undefined ? input.value : parsed);
        this.changed(path, false);
      });
    } else if (field.type === "date") {
      input = h("input", {
        ...common, type: "date", value: typeof cur === "string" ? cur : "",
        min: typeof field.min === "string" ? field.min : null, max: typeof field.max === "string" ? field.max : null,
      });
      input.addEventListener("input", () => { this.set(path, input.value || undefined); this.changed(path, false); });
      extra.push(h("button", {
        type: "button", class: "small", onclick: () => {
          input.value = todayISO();
          this.set(path, input.value);
          this.changed(path);
        },
      }, t("today")));
    } else {
      input = h("input", { ...common, type: "text", autocomplete: "off", value: typeof cur === "string" ? cur : "", maxlength: field.max || null });
      input.addEventListener("input", () => { this.set(path, input.value === "" ? undefined : input.value); this.changed(path, false); });
    }
    const error = this.errorEl(path);
    const wrap = h("div", { class: `field field-${field.type}`, id: idFor("f", path), "data-field": path },
      h("label", { for: id }, this.labelParts(field)), this.hintEl(field, path),
      extra.length ? h("div", { class: "with-button" }, input, extra) : input, error);
    this.register(path, field, wrap, error, input);
    return wrap;
  }

  renderReadonly(field, path) {
    const id = idFor("i", path);
    const input = h("input", { id, name: path, type: "text", readonly: true, class: "computed", "aria-describedby": this.describedBy(field, path) });
    const error = this.errorEl(path);
    const wrap = h("div", { class: "field field-computed", id: idFor("f", path), "data-field": path },
      h("label", { for: id }, this.labelOf(field)), this.hintEl(field, path), input, error);
    this.register(path, field, wrap, error, input);
    wrap.computedInput = input;
    return wrap;
  }

  renderChoices(field, path) {
    const multiple = field.type === "select_multiple";
    const cur = this.get(path);
    const selected = new Set(multiple ? (Array.isArray(cur) ? cur : []) : (cur !== undefined ? [cur] : []));
    const error = this.errorEl(path);
    const legendId = idFor("l", path);
    const inputs = [];
    const sync = () => { for (const i of inputs) i.parentElement.classList.toggle("on", i.checked); };
    const options = (field.choices || []).map((choice, n) => {
      const id = idFor("i", `${path}.${n}`);
      const input = h("input", {
        type: multiple ? "checkbox" : "radio", id, name: path, value: choice.name, checked: selected.has(choice.name),
        onchange: () => {
          const values = inputs.filter((i) => i.checked).map((i) => i.value);
          this.set(path, multiple ? (values.length ? values : undefined) : values[0]);
          sync();
          this.changed(path);
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
        this.set(path, undefined);
        this.changed(path);
      },
    }, t("clear_choice")) : null;
    const wrap = h("fieldset", {
      class: `field choices${(field.choices || []).length > 4 ? " many" : ""}`, id: idFor("f", path), "data-field": path,
      "aria-describedby": this.describedBy(field, path),
    }, h("legend", { id: legendId }, this.labelParts(field)), this.hintEl(field, path),
    h("div", { class: "options", role: multiple ? "group" : "radiogroup", "aria-labelledby": legendId }, options), clearBtn, error);
    this.register(path, field, wrap, error, inputs[0]);
    return wrap;
  }

  renderGeopoint(field, path) {
    const cur = this.get(path);
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
        this.set(path, p);
        hidden.value = JSON.stringify(p);
        show(p);
        button.textContent = t("geo_retry");
        this.changed(path);
      } catch (err) {
        clear(status).append(h("span", { class: "warn-text" },
          t(err && err.code === 1 ? "geo_denied" : err && err.code === 3 ? "geo_timeout" : "geo_unavailable")));
      } finally {
        button.disabled = false;
      }
    });
    const error = this.errorEl(path);
    const legendId = idFor("l", path);
    const wrap = h("fieldset", { class: "field field-geopoint", id: idFor("f", path), "data-field": path, "aria-describedby": this.describedBy(field, path) },
      h("legend", { id: legendId }, this.labelParts(field)), this.hintEl(field, path), hidden, status, button, error);
    this.register(path, field, wrap, error, button);
    return wrap;
  }

  fileNameFor(path, ext) {
    return `${String(path).replace(/\./g, "_")}-${shortId()}.${ext}`;
  }

  renderPhoto(field, path) {
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
      const blob = this.db ? await this.db.get("photos", name) : null;
      if (!blob) { preview.append(h("p", { class: "warn-text" }, t("photo_missing"))); return; }
      const url = URL.createObjectURL(blob);
      this.objectUrls.add(url);
      preview.append(h("img", { src: url, alt: this.labelOf(field), width: 120, height: 90 }),
        h("span", { class: "muted" }, t("photo_saved", { kb: Math.max(1, Math.round(blob.size / 1024)) })));
    };
    input.addEventListener("change", async () => {
      const file = input.files && input.files[0];
      if (!file) return;
      clear(status).append(t("photo_working"));
      try {
        const blob = await downscaleImage(file);
        const name = this.fileNameFor(path, "jpg");
        await this.db.put("photos", name, blob);
        // A small copy, kept after the photo itself is freed, shows the sent visit offline.
        try { await this.db.put("photos", thumbKey(name), await downscaleImage(blob, THUMB_SIDE, 0.7)); } catch (_) { /* the photo is enough */ }
        this.set(path, name);
        clear(status);
        await show(name);
        this.changed(path);
      } catch (err) {
        clear(status).append(h("span", { class: "warn-text" }, t("photo_failed")));
      } finally {
        input.value = "";
      }
    });
    removeBtn.addEventListener("click", () => {
      this.set(path, undefined);
      show(null);
      this.changed(path);
    });
    show(this.get(path));
    const error = this.errorEl(path);
    const wrap = h("div", { class: "field field-photo", id: idFor("f", path), "data-field": path },
      h("label", { for: id, class: "label" }, this.labelParts(field)), this.hintEl(field, path),
      input, preview, h("div", { class: "row" }, pickLabel, removeBtn), status, error);
    this.register(path, field, wrap, error, pickLabel);
    return wrap;
  }

  renderSignature(field, path) {
    const canvas = h("canvas", { class: "sig-pad", role: "img", "aria-label": this.labelOf(field) });
    const hidden = h("input", { type: "hidden", name: path, value: this.get(path) || "" });
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
      const name = this.get(path);
      const blob = name && this.db ? await this.db.get("photos", name) : null;
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
        const name = this.get(path) || this.fileNameFor(path, "png");
        await this.db.put("photos", name, blob);
        await this.db.put("photos", thumbKey(name), blob); // small already; shows the sent visit
        this.set(path, name);
        hidden.value = name;
        this.changed(path);
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
      this.set(path, undefined);
      hidden.value = "";
      this.changed(path);
    });
    const error = this.errorEl(path);
    const wrap = h("fieldset", { class: "field field-signature", id: idFor("f", path), "data-field": path, "aria-describedby": this.describedBy(field, path) },
      h("legend", {}, this.labelParts(field)), this.hintEl(field, path), hidden, canvas,
      h("div", { class: "row" }, h("span", { class: "muted" }, t("sig_help")), clearBtn), error);
    this.register(path, field, wrap, error, clearBtn);
    return wrap;
  }

  /**
   * Promises carried forward: one entry per open promise, headed by what was promised and when it
   * is due; the cadre answers each (done, in progress, dropped, with a note) but cannot add or
   * remove them. The entry's id field travels as a hidden input; a refusal naming the entry or its
   * id (a promise the household no longer has open) shows under the heading.
   */
  renderPromises(field, path) {
    const entries = Array.isArray(this.get(path)) ? this.get(path) : [];
    const label = this.labelOf(field);
    const idName = followupIdField(this.def, field);
    const error = this.errorEl(path);
    const titleId = idFor("l", path);
    const statusLabel = (status) => {
      const statusField = (field.fields || []).find((c) => c.type === "select_one" && (c.choices || []).some((x) => x.name === status));
      const choice = statusField && statusField.choices.find((x) => x.name === status);
      return choice ? pick(choice.label, lang()) : status;
    };
    const list = entries.map((entry, i) => {
      const entryPath = `${path}.${i}`;
      const id = isObject(entry) ? entry[idName] : null;
      const promise = this.promises.get(id) || (this.household && (this.household.open_followups || []).find((p) => p.id === id));
      const headId = idFor("l", entryPath);
      const entryError = this.errorEl(entryPath);
      const idError = this.errorEl(`${entryPath}.${idName}`);
      const idWrap = h("div", { class: "field promise-id", id: idFor("f", `${entryPath}.${idName}`), "data-field": `${entryPath}.${idName}` },
        h("input", { type: "hidden", name: `${entryPath}.${idName}`, value: id || "" }), idError);
      // The server refused this entry and the household (as pulled since) no longer has the promise
      // open: it was closed from elsewhere. The cadre may drop the entry; never a live one.
      const refused = this.serverErrors.has(entryPath) || this.serverErrors.has(`${entryPath}.${idName}`);
      const stillOpen = this.household && (this.household.open_followups || []).some((p) => p.id === id);
      const drop = refused && !stillOpen ? h("button", {
        type: "button", class: "small secondary danger", "data-action": "remove-closed-promise",
        onclick: () => this.removeEntry(field, path, i),
      }, t("promise_remove_closed")) : null;
      const last = promise && promise.status === "in_progress"
        ? t("promise_last", { status: `${statusLabel("in_progress")}${promise.note ? ` · ${promise.note}` : ""}` }) : null;
      const section = h("section", { class: "entry promise-entry", "aria-labelledby": headId, "data-followup": id || "" },
        h("div", { class: "promise-head" },
          h("h3", { id: headId }, promise ? promise.action : t("promise_unknown", { id })),
          h("p", { class: "muted small" }, [promise && promise.due_date ? t("promise_due", { due: fmtDay(promise.due_date) }) : null,
            promise && promise.visit_date ? t("promised_on", { date: fmtDay(promise.visit_date) }) : null].filter(Boolean).join(" · ")),
          last ? h("p", { class: "muted small" }, last) : null),
        entryError, idWrap, drop,
        (field.fields || []).filter((c) => c.name !== idName).map((child) => this.renderField(child, `${entryPath}.${child.name}`)));
      this.register(entryPath, { ...field, label: promise ? { zh: promise.action, en: promise.action } : field.label, type: "entry" }, section, entryError, null);
      this.register(`${entryPath}.${idName}`, { name: idName, type: "text", label: field.label, readonly: true }, idWrap, idError, null);
      return section;
    });
    const wrap = h("div", { class: "field repeat promises", id: idFor("f", path), "data-field": path, role: "group", "aria-labelledby": titleId },
      h("p", { class: "label", id: titleId }, this.labelParts(field)), this.hintEl(field, path), error,
      list.length ? h("div", { class: "entries" }, list) : h("p", { class: "muted" }, t("promises_none")));
    this.register(path, field, wrap, error, null);
    return wrap;
  }

  renderRepeat(field, path) {
    if (field.prefill === PREFILL_FOLLOWUPS) return this.renderPromises(field, path);
    const entries = Array.isArray(this.get(path)) ? this.get(path) : [];
    const label = this.labelOf(field);
    const error = this.errorEl(path);
    const list = h("div", { class: "entries" });
    entries.forEach((entry, i) => {
      const entryPath = `${path}.${i}`;
      const head = h("div", { class: "entry-head" },
        h("h3", {}, t("repeat_entry", { n: i + 1 })),
        h("button", {
          type: "button", class: "small link danger", "data-action": "remove-repeat",
          "aria-label": t("repeat_remove_label", { n: i + 1, what: label }),
          onclick: () => {
            const filled = Object.values(this.get(`${entryPath}`) || {}).some((v) => isAnswered(v));
            if (filled && !window.confirm(t("repeat_remove_confirm", { n: i + 1 }))) return;
            this.removeEntry(field, path, i);
          },
        }, t("repeat_remove")));
      list.append(h("section", { class: "entry", "aria-label": t("repeat_entry", { n: i + 1 }) }, head,
        (field.fields || []).map((child) => this.renderField(child, `${entryPath}.${child.name}`))));
    });
    const full = Number.isInteger(field.max_count) && entries.length >= field.max_count;
    const add = h("button", {
      type: "button", class: "secondary add", "data-action": "add-repeat", "data-repeat": path, disabled: full,
      "aria-label": t("repeat_add_label", { what: label }), onclick: () => this.addEntry(field, path),
    }, h("span", { "aria-hidden": "true" }, "＋"), t("repeat_add"));
    // The repeat the form declares as the household's member list starts from the list it has.
    const effects = isObject(this.def.effects) ? this.def.effects : {};
    const source = this.household && effects.members === field.name && Array.isArray(this.household.members)
      ? this.household.members : null;
    const copy = source && source.length && !entries.length ? h("button", {
      type: "button", class: "secondary", "data-action": "copy-household",
      onclick: () => {
        const names = (field.fields || []).map((c) => c.name);
        this.set(path, source.map((row) => Object.fromEntries(names.filter((n) => row[n] !== undefined && row[n] !== null && row[n] !== "").map((n) => [n, row[n]]))));
        this.rerenderRepeat(field, path);
        this.changed(path);
      },
    }, t("repeat_copy", { n: source.length })) : null;
    const titleId = idFor("l", path);
    const wrap = h("div", { class: "field repeat", id: idFor("f", path), "data-field": path, role: "group", "aria-labelledby": titleId },
      h("p", { class: "label", id: titleId }, this.labelParts(field)), this.hintEl(field, path), error, list,
      h("div", { class: "row" }, add, copy));
    this.register(path, field, wrap, error, add);
    return wrap;
  }

  /** Removes entry i of a repeat; the server's errors of later entries move up with them. */
  removeEntry(field, path, i) {
    const list = this.get(path) || [];
    list.splice(i, 1);
    this.set(path, list.length ? list : undefined);
    const prefix = `${path}.`;
    const moved = new Map();
    for (const [key, e] of this.serverErrors) {
      if (!key.startsWith(prefix)) { moved.set(key, e); continue; }
      const [n, ...rest] = key.slice(prefix.length).split(".");
      const index = Number(n);
      if (index === i) continue;
      const now = [path, index > i ? index - 1 : index, ...rest].join(".");
      moved.set(now, { ...e, field: now });
    }
    this.serverErrors = moved;
    this.rerenderRepeat(field, path);
    this.changed(path);
  }

  rerenderRepeat(field, path) {
    const old = this.wraps.get(path).wrap;
    for (const key of [...this.wraps.keys()]) if (key.startsWith(`${path}.`)) this.wraps.delete(key);
    const fresh = this.renderRepeat(field, path);
    old.replaceWith(fresh);
    return fresh;
  }

  addEntry(field, path) {
    const list = Array.isArray(this.get(path)) ? this.get(path) : [];
    if (Number.isInteger(field.max_count) && list.length >= field.max_count) return;
    list.push({});
    this.set(path, list);
    const fresh = this.rerenderRepeat(field, path);
    this.changed(path, false);
    const entries = fresh.querySelectorAll(".entry");
    const last = entries[entries.length - 1];
    const first = last && last.querySelector("input:not([type=hidden]), textarea");
    if (first) first.focus();
  }

  /** Server errors [{field, message}] shown next to their fields (others at the top) until changed. */
  setServerErrors(errors, refresh = true) {
    this.serverErrors = new Map();
    this.otherErrors = [];
    for (const e of errors || []) {
      const path = normalizePath(e.field);
      if (path && !this.serverErrors.has(path)) this.serverErrors.set(path, e);
      else if (!path) this.otherErrors.push(e);
    }
    if (refresh && this.wraps) {
      for (const [path, e] of [...this.serverErrors]) {
        if (!this.wraps.has(path)) { this.serverErrors.delete(path); this.otherErrors.push(e); }
      }
      this.showAll = true;
      this.refresh();
    }
  }

  refresh() {
    const { shown, sections, computed } = relevance(this.def, this.answers, { settings: this.settings });
    this.applies = (name) => sections.get(name) !== false;
    const problems = validateAnswers(this.def, this.answers, { settings: this.settings });
    const first = new Map();
    for (const p of problems) if (!first.has(p.field)) first.set(p.field, p);
    const visible = [];
    for (const [path, info] of this.wraps) {
      const on = shown.get(path) !== false;
      info.wrap.hidden = !on;
      if (info.wrap.computedInput) {
        const v = getPath(computed, path);
        info.wrap.computedInput.value = v === undefined || v === null ? "" : String(v);
      }
      if (!info.error) continue;
      const server = this.serverErrors.get(path);
      const local = (this.showAll || this.touched.has(path)) ? first.get(path) : null;
      const e = on ? (server || local) : null;
      info.error.hidden = !e;
      info.error.textContent = e ? errorText(e, true) : "";
      info.wrap.classList.toggle("has-error", !!e);
      for (const input of info.wrap.querySelectorAll(":scope > input, :scope > textarea, :scope > .with-button > input")) {
        if (e) input.setAttribute("aria-invalid", "true");
        else input.removeAttribute("aria-invalid");
      }
      if (e) visible.push({ path, info, e });
    }
    // Errors for a path with no field on screen (e.g. the server names one this version lacks).
    const unplaced = [...this.serverErrors].filter(([path]) => !this.wraps.has(path)).map(([, e]) => e);
    const top = [...this.otherErrors, ...unplaced];
    // Rebuilt only when what it says changes: a tap on one of its links blurs an input, which
    // refreshes the form; replacing the link under the finger would swallow the tap.
    const show = (this.showAll && visible.length) || top.length;
    const key = show ? JSON.stringify([lang(), top.map((e) => errorText(e)), visible.map(({ path, e }) => [path, errorText(e, true)])]) : "";
    if (key !== this.summaryKey) {
      this.summaryKey = key;
      clear(this.summary);
      this.summary.hidden = !show;
      if (show) {
        if (visible.length) this.summary.append(h("p", { class: "summary-title" }, t("fix_count", { n: visible.length })));
        const items = [
          ...top.map((e) => h("li", {}, errorText(e))),
          ...visible.map(({ path, e }) => h("li", {}, h("button", {
            type: "button", class: "link", "data-path": path, onclick: () => this.focusPath(path),
          }, `${this.pathLabel(path)}：${errorText(e, true)}`))),
        ];
        this.summary.append(h("ul", {}, items));
      }
    }
    if (this.sectioned) this.refreshSections(visible);
    return problems.filter((p) => shown.get(p.field) !== false);
  }

  /** One section shown; progress, the jump list (what is skipped, what needs fixing), prev/next. */
  refreshSections(visible) {
    const current = this.nav.current;
    const errors = new Map();
    for (const { path } of visible) {
      const section = sectionOfPath(this.def, path);
      errors.set(section, (errors.get(section) || 0) + 1);
    }
    for (const [name, el] of this.sectionEls) {
      el.hidden = name !== current;
      el.skippedNote.hidden = this.applies(name);
      const link = this.sectionLinks.get(name);
      link.button.classList.toggle("current", name === current);
      if (name === current) link.button.setAttribute("aria-current", "step");
      else link.button.removeAttribute("aria-current");
      const n = errors.get(name) || 0;
      link.state.textContent = n ? ` · ${t("section_errors", { n })}` : !this.applies(name) ? ` · ${t("section_skipped")}` : "";
      link.button.classList.toggle("has-error", n > 0);
    }
    const { position, total } = this.nav.progress(this.applies);
    const label = pick(formShape(this.def).sections[this.nav.indexOf(current)].label, lang());
    this.progressText.textContent = t("section_progress", { n: position, total });
    this.progressText.title = label;
    this.progressBar.setAttribute("aria-valuenow", String(position));
    this.progressBar.setAttribute("aria-valuemax", String(total));
    this.progressBar.setAttribute("aria-label", t("section_progress", { n: position, total }));
    this.progressBar.firstChild.style.width = `${Math.round((position / Math.max(1, total)) * 100)}%`;
    this.prevButton.disabled = this.nav.isFirst(this.applies);
    this.nextButton.hidden = this.nav.isLast(this.applies);
    this.el.dataset.section = current;
    this.el.dataset.lastSection = String(this.nav.isLast(this.applies));
  }

  /** "姓名" for a top field; "家庭成员 第 2 项 · 姓名" inside a repeat. */
  pathLabel(path) {
    const parts = String(path).split(".");
    const own = this.labelOf(this.wraps.get(path).field);
    if (parts.length < 3) return own;
    const repeat = this.wraps.get(parts.slice(0, -2).join("."));
    const what = repeat ? this.labelOf(repeat.field) : parts[0];
    return `${what} ${t("repeat_entry", { n: Number(parts[parts.length - 2]) + 1 })} · ${own}`;
  }

  /** Opens the section of the answer at `path` and puts the cursor in it. */
  focusPath(path) {
    const info = this.wraps.get(path);
    if (!info) return;
    const section = this.sectioned ? sectionOfPath(this.def, path) : null;
    if (section && section !== this.nav.current) this.goSection(section, { focus: false });
    this.focusField(info);
  }

  focusField(info) {
    info.wrap.scrollIntoView({ block: "center" });
    const target = info.focusEl || info.wrap.querySelector("input, textarea, button");
    if (target && typeof target.focus === "function") target.focus({ preventScroll: true });
  }

  /** Shows every problem and moves to the first; returns them ([] when the form may be submitted). */
  validate() {
    this.showAll = true;
    const problems = this.refresh();
    const firstPath = [...this.wraps.keys()].find((p) => this.wraps.get(p).error && !this.wraps.get(p).error.hidden);
    if (problems.length || this.serverErrors.size) {
      if (firstPath) this.focusPath(firstPath);
      else this.summary.focus();
    }
    return problems;
  }
}
