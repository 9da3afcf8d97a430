// A repeat: entries the cadre adds and removes (household members, say), each with the repeat's
// questions, named "<repeat>.<n>.<question>"; the member list can start from the household's.
// Promises carried forward (`prefill: open_followups`) are a repeat whose entries are given.

import { isAnswered } from "../conditions.js";
import { h, idFor } from "../dom.js";
import { PREFILL_FOLLOWUPS, followupIdField } from "../drafts.js";
import { lang, pick, t } from "../i18n.js";
import { fmtDay } from "../ui.js";
import { isObject } from "../util.js";

export function renderRepeat(view, field, path) {
  if (field.prefill === PREFILL_FOLLOWUPS) return renderPromises(view, field, path);
  const entries = Array.isArray(view.get(path)) ? view.get(path) : [];
  const label = view.labelOf(field);
  const error = view.errorEl(path);
  const list = h("div", { class: "entries" });
  entries.forEach((entry, i) => {
    const entryPath = `${path}.${i}`;
    const head = h("div", { class: "entry-head" },
      h("h3", {}, t("repeat_entry", { n: i + 1 })),
      h("button", {
        type: "button", class: "small link danger", "data-action": "remove-repeat",
        "aria-label": t("repeat_remove_label", { n: i + 1, what: label }),
        onclick: () => {
          const filled = Object.values(view.get(`${entryPath}`) || {}).some((v) => isAnswered(v));
          if (filled && !window.confirm(t("repeat_remove_confirm", { n: i + 1 }))) return;
          removeEntry(view, field, path, i);
        },
      }, t("repeat_remove")));
    list.append(h("section", { class: "entry", "aria-label": t("repeat_entry", { n: i + 1 }) }, head,
      (field.fields || []).map((child) => view.renderField(child, `${entryPath}.${child.name}`))));
  });
  const full = Number.isInteger(field.max_count) && entries.length >= field.max_count;
  const add = h("button", {
    type: "button", class: "secondary add", "data-action": "add-repeat", "data-repeat": path, disabled: full,
    "aria-label": t("repeat_add_label", { what: label }), onclick: () => addEntry(view, field, path),
  }, h("span", { "aria-hidden": "true" }, "＋"), t("repeat_add"));
  // The repeat the form declares as the household's member list starts from the list it has.
  const effects = isObject(view.def.effects) ? view.def.effects : {};
  const source = view.household && effects.members === field.name && Array.isArray(view.household.members)
    ? view.household.members : null;
  const copy = source && source.length && !entries.length ? h("button", {
    type: "button", class: "secondary", "data-action": "copy-household",
    onclick: () => {
      const names = (field.fields || []).map((c) => c.name);
      view.set(path, source.map((row) => Object.fromEntries(names.filter((n) => row[n] !== undefined && row[n] !== null && row[n] !== "").map((n) => [n, row[n]]))));
      rerenderRepeat(view, field, path);
      view.changed(path);
    },
  }, t("repeat_copy", { n: source.length })) : null;
  const titleId = idFor("l", path);
  const wrap = h("div", { class: "field repeat", id: idFor("f", path), "data-field": path, role: "group", "aria-labelledby": titleId },
    h("p", { class: "label", id: titleId }, view.labelParts(field)), view.hintEl(field, path), error, list,
    h("div", { class: "row" }, add, copy));
  view.register(path, field, wrap, error, add);
  return wrap;
}

/**
 * Promises carried forward: one entry per open promise, headed by what was promised and when it
 * is due; the cadre answers each (done, in progress, dropped, with a note) but cannot add or
 * remove them. The entry's id field travels as a hidden input; a refusal naming the entry or its
 * id (a promise the household no longer has open) shows under the heading.
 */
export function renderPromises(view, field, path) {
  const entries = Array.isArray(view.get(path)) ? view.get(path) : [];
  const label = view.labelOf(field);
  const idName = followupIdField(view.def, field);
  const error = view.errorEl(path);
  const titleId = idFor("l", path);
  const statusLabel = (status) => {
    const statusField = (field.fields || []).find((c) => c.type === "select_one" && (c.choices || []).some((x) => x.name === status));
    const choice = statusField && statusField.choices.find((x) => x.name === status);
    return choice ? pick(choice.label, lang()) : status;
  };
  const list = entries.map((entry, i) => {
    const entryPath = `${path}.${i}`;
    const id = isObject(entry) ? entry[idName] : null;
    const promise = view.promises.get(id) || (view.household && (view.household.open_followups || []).find((p) => p.id === id));
    const headId = idFor("l", entryPath);
    const entryError = view.errorEl(entryPath);
    const idError = view.errorEl(`${entryPath}.${idName}`);
    const idWrap = h("div", { class: "field promise-id", id: idFor("f", `${entryPath}.${idName}`), "data-field": `${entryPath}.${idName}` },
      h("input", { type: "hidden", name: `${entryPath}.${idName}`, value: id || "" }), idError);
    // The server refused this entry and the household (as pulled since) no longer has the promise
    // open: it was closed from elsewhere. The cadre may drop the entry; never a live one.
    const refused = view.serverErrors.has(entryPath) || view.serverErrors.has(`${entryPath}.${idName}`);
    const stillOpen = view.household && (view.household.open_followups || []).some((p) => p.id === id);
    const drop = refused && !stillOpen ? h("button", {
      type: "button", class: "small secondary danger", "data-action": "remove-closed-promise",
      onclick: () => removeEntry(view, field, path, i),
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
      (field.fields || []).filter((c) => c.name !== idName).map((child) => view.renderField(child, `${entryPath}.${child.name}`)));
    view.register(entryPath, { ...field, label: promise ? { zh: promise.action, en: promise.action } : field.label, type: "entry" }, section, entryError, null);
    view.register(`${entryPath}.${idName}`, { name: idName, type: "text", label: field.label, readonly: true }, idWrap, idError, null);
    return section;
  });
  const wrap = h("div", { class: "field repeat promises", id: idFor("f", path), "data-field": path, role: "group", "aria-labelledby": titleId },
    h("p", { class: "label", id: titleId }, view.labelParts(field)), view.hintEl(field, path), error,
    list.length ? h("div", { class: "entries" }, list) : h("p", { class: "muted" }, t("promises_none")));
  view.register(path, field, wrap, error, null);
  return wrap;
}

/** Removes entry i of a repeat; the server's errors of later entries move up with them. */
export function removeEntry(view, field, path, i) {
  const list = view.get(path) || [];
  list.splice(i, 1);
  view.set(path, list.length ? list : undefined);
  const prefix = `${path}.`;
  const moved = new Map();
  for (const [key, e] of view.serverErrors) {
    if (!key.startsWith(prefix)) { moved.set(key, e); continue; }
    const [n, ...rest] = key.slice(prefix.length).split(".");
    const index = Number(n);
    if (index === i) continue;
    const now = [path, index > i ? index - 1 : index, ...rest].join(".");
    moved.set(now, { ...e, field: now });
  }
  view.serverErrors = moved;
  rerenderRepeat(view, field, path);
  view.changed(path);
}

export function rerenderRepeat(view, field, path) {
  const old = view.wraps.get(path).wrap;
  for (const key of [...view.wraps.keys()]) if (key.startsWith(`${path}.`)) view.wraps.delete(key);
  const fresh = renderRepeat(view, field, path);
  old.replaceWith(fresh);
  return fresh;
}

export function addEntry(view, field, path) {
  const list = Array.isArray(view.get(path)) ? view.get(path) : [];
  if (Number.isInteger(field.max_count) && list.length >= field.max_count) return;
  list.push({});
  view.set(path, list);
  const fresh = rerenderRepeat(view, field, path);
  view.changed(path, false);
  const entries = fresh.querySelectorAll(".entry");
  const last = entries[entries.length - 1];
  const first = last && last.querySelector("input:not([type=hidden]), textarea");
  if (first) first.focus();
}
