// Renders any form definition (forms/*.yaml as JSON) into a phone form and keeps its answers.
// Every input has a <label> and name = the field's path ("visit_date", "members.0.name").
// Relevance and computed values update live (conditions.js); errors appear next to their field:
// the phone's own checks once a field was touched or on submit, the server's when it refused.
// A form in sections shows one section at a time (the inputs of the others stay in the page,
// hidden), with a progress bar, previous/next, a list to jump to any section, and an error
// summary whose links open the section of the answer to fix. Promises carried forward
// (`prefill: open_followups`) are entries the cadre answers but cannot add or remove.
// Each kind of question is a widget (widgets/*.js): a function (view, field, path) that builds
// its part of the page through what this view offers them (get/set/changed/touch the answers,
// labelParts/hintEl/errorEl/register the field); FormView composes them, and keeps relevance,
// errors and sections.

import { errorText, normalizePath, pick, relevance, validateAnswers } from "./answers.js";
import { clear, h, idFor } from "./dom.js";
import { formShape } from "./form-shape.js";
import { lang, t } from "./i18n.js";
import { SectionNav, sectionOfPath } from "./sections.js";
import { clone, isObject } from "./util.js";
import { renderChoices } from "./widgets/choices.js";
import { renderDate } from "./widgets/date.js";
import { renderGeopoint } from "./widgets/geopoint.js";
import { renderNumber } from "./widgets/number.js";
import { renderPhoto } from "./widgets/photo.js";
import { renderRepeat } from "./widgets/repeat.js";
import { renderSignature } from "./widgets/signature.js";
import { renderNote, renderReadonly, renderText } from "./widgets/text.js";

/** The widget of each question type (a type not listed is typed as text). */
// XLSForm's values nobody types (docs/forms.md): shown, never edited.
const UNSEEN_TYPES = new Set(["calculate", "hidden", "start", "end", "today", "deviceid"]);

const WIDGETS = {
  text: renderText, textarea: renderText, integer: renderNumber, decimal: renderNumber, date: renderDate,
  select_one: renderChoices, select_multiple: renderChoices, geopoint: renderGeopoint,
  photo: renderPhoto, signature: renderSignature,
};

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

  /** The widget of a question (widgets/): its input named by `path`, its label, hint and error. */
  renderField(field, path) {
    if (field.type === "note") return renderNote(this, field, path);
    if (field.type === "repeat") return renderRepeat(this, field, path);
    if (field.compute !== undefined || field.readonly || UNSEEN_TYPES.has(field.type)) return renderReadonly(this, field, path);
    return (WIDGETS[field.type] || renderText)(this, field, path);
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
