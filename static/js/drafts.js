// Making drafts: a new visit with the household's open promises carried forward, a correction of a
// returned visit, a draft moved to a new version of its form. Loaded with the form screen (it
// needs the form's structure and answers); DOM-free, so `node --test` drives it.

import { attachmentNames, moveAnswers } from "./answers.js";
import { ensurePhotos } from "./records.js";
import { flatFields } from "./form-shape.js";
import { clone, isObject, isoNow, uuid } from "./util.js";

export const PREFILL_FOLLOWUPS = "open_followups";

/** The child of a promises repeat that holds the follow-up's id (declared in effects, else named so). */
export function followupIdField(definition, repeat) {
  const spec = definition && isObject(definition.effects) ? definition.effects.followup_answers : null;
  if (isObject(spec) && spec.repeat === repeat.name && typeof spec.id === "string") return spec.id;
  const children = repeat.fields || [];
  const named = children.find((c) => c.name === "followup_id");
  const readonly = children.find((c) => c.readonly && c.type === "text");
  return (named || readonly || { name: "followup_id" }).name;
}

/** Repeats the phone fills from the household's open promises (`prefill: open_followups`). */
export const prefilledRepeats = (definition) => flatFields(definition)
  .filter((f) => f.type === "repeat" && f.prefill === PREFILL_FOLLOWUPS);

/**
 * One entry per promise carried forward, in each `prefill: open_followups` repeat the answers do not
 * hold yet, and a copy of the promises (action, due date) kept with the draft for the headings.
 */
export function prefill(definition, draft, promises = []) {
  const repeats = prefilledRepeats(definition);
  if (!repeats.length) return draft;
  draft.answers = isObject(draft.answers) ? draft.answers : {};
  const known = new Map((draft.followups || []).map((p) => [p.id, p]));
  for (const p of promises) known.set(p.id, p);
  for (const repeat of repeats) {
    if (Array.isArray(draft.answers[repeat.name]) && draft.answers[repeat.name].length) continue;
    const idField = followupIdField(definition, repeat);
    if (promises.length) draft.answers[repeat.name] = promises.map((p) => ({ [idField]: p.id }));
  }
  draft.followups = [...known.values()].map(({ id, action, due_date, status, note, visit_date, cadre_id }) =>
    ({ id, action, due_date, status, note, visit_date, cadre_id }));
  return draft;
}

/** A new, empty draft for a household (promises carried forward into it). */
export function newDraft(definition, household, { promises = [], now = new Date() } = {}) {
  return prefill(definition, {
    id: uuid(), form: definition.id, form_version: definition.version, household_id: household.id,
    base_version: Number.isInteger(household.version) ? household.version : null,
    created_at: isoNow(now), updated_at: null, answers: {},
  }, promises);
}

/**
 * A new draft correcting a returned visit: the returned answers (photos included: the names stay,
 * the bytes are in IndexedDB or fetched again), the supervisor's comments to show beside the
 * answers, and `supersedes` naming the visit it replaces.
 */
export function correctionDraft(record, household, { now = new Date() } = {}) {
  return {
    id: uuid(), form: record.form, form_version: record.form_version, household_id: record.household_id,
    base_version: household && Number.isInteger(household.version) ? household.version : null,
    created_at: isoNow(now), updated_at: null, answers: clone(record.answers || {}),
    supersedes: record.uuid, review: clone(record.review || null),
  };
}

/**
 * A draft made on an older version of its form, moved to the new one: the answers whose questions
 * still exist carry over, the rest is listed in `moved.dropped`; promises are carried forward into
 * the new version's promises repeat if it has one.
 */
export function moveDraft(draft, from, to, { promises = [] } = {}) {
  const { answers, dropped } = moveAnswers(from, to, draft.answers || {});
  const moved = {
    ...draft, form_version: to.version, answers, server_errors: [],
    moved: { from: from.version, to: to.version, dropped, at: isoNow() },
  };
  return prefill(to, moved, promises);
}

/**
 * Opens a returned visit for correction: the draft already started for it, or a new one (saved at
 * once). Photos it names that the phone no longer holds are fetched from the server when online;
 * `missing` lists those still absent (the form asks for them again).
 */
export async function startCorrection(db, engine, record, household, definition) {
  const drafts = await db.all("drafts");
  const existing = drafts.find((d) => d.supersedes === record.uuid);
  const draft = existing || correctionDraft(record, household);
  if (!existing) await db.put("drafts", draft.id, draft);
  const names = definition ? attachmentNames(definition, draft.answers) : [];
  const missing = await ensurePhotos(db, names, (name) => engine.fetchPhoto(record.uuid, name));
  return { draft, missing, existing: !!existing };
}
