// The form page: a new form for a household (promises carried forward), a draft resumed (flagged
// when made on an older form version, and moved to the new one on request), a correction of a
// returned visit (the supervisor's comments beside the answers). Autosaves every change; submits
// to the outbox.

import { h } from "./dom.js";
import { lang, pick, t } from "./i18n.js";
import { FormView } from "./form.js";
import { fillMeta, moveDraft, newDraft, startCorrection } from "./drafts.js";
import { forgetJournal, isOutdated, makeSaver } from "./records.js";
import { fmtTime, getHousehold, householdLabel, page, phoneState, setMain, toast } from "./ui.js";
import { promisesToCarry } from "./visits.js";

/** The form definition: stored, else (online) the one the first sync or the server brings. */
async function getForm(ctx, formId, version = null) {
  const { engine } = ctx;
  let def = await engine.formDefinition(formId, version);
  if (!def && engine.current) {
    await engine.current;
    def = await engine.formDefinition(formId, version);
  }
  if (!def && navigator.onLine !== false) {
    if (version === null) {
      await engine.run("form");
      def = await engine.formDefinition(formId);
    } else {
      def = await engine.fetchDefinition(formId, version); // an older version this phone never had
    }
  }
  return def;
}

async function carried(ctx, hh) {
  if (!hh) return [];
  const state = await phoneState(ctx.db, ctx.engine);
  return promisesToCarry(hh, [...state.outbox, ...state.sent], state.catalog, state.pulledAt);
}

function cannotOpen(text) {
  setMain(page(t("cannot_open"), h("p", {}, text),
    h("button", { type: "button", class: "secondary", "data-action": "sync-again" }, t("sync_now")),
    h("a", { class: "button", href: "#/households" }, t("back_home"))));
}

export async function openNewForm(ctx, token, householdId, formId) {
  setMain(h("p", { class: "loading" }, t("loading")));
  const [hh, def] = await Promise.all([getHousehold(ctx, householdId), getForm(ctx, formId)]);
  if (!ctx.live(token)) return;
  if (!def || !hh) {
    cannotOpen(!def ? t("form_missing") : t("household_missing", { id: householdId }));
    return;
  }
  const draft = newDraft(def, hh, { promises: await carried(ctx, hh) });
  if (!ctx.live(token)) return;
  await showForm(ctx, token, draft, def, hh, true);
}

export async function openDraft(ctx, token, draftId) {
  const draft = await ctx.db.get("drafts", draftId);
  if (!ctx.live(token)) return;
  if (!draft) {
    setMain(page(t("not_found"), h("p", {}, t("draft_missing")), h("a", { class: "button", href: "#/drafts" }, t("tab_drafts"))));
    return;
  }
  const [def, hh] = await Promise.all([getForm(ctx, draft.form, draft.form_version), ctx.db.get("households", draft.household_id)]);
  if (!ctx.live(token)) return;
  if (def) {
    await showForm(ctx, token, draft, def, hh || null, false);
    return;
  }
  // The version it was made on is neither on the phone nor reachable: offer the current one.
  const current = await getForm(ctx, draft.form);
  if (!ctx.live(token)) return;
  if (!current) {
    cannotOpen(t("form_missing"));
    return;
  }
  const moved = moveDraft(draft, current, current, { promises: await carried(ctx, hh) });
  await ctx.db.put("drafts", moved.id, moved);
  await showForm(ctx, token, moved, current, hh || null, false);
}

/**
 * Fixing a returned visit: the draft already started for it, or a new one holding the returned
 * answers (photos fetched again when the phone no longer has them); then the form.
 */
export async function fixReturned(ctx, token, recordUuid) {
  const record = await ctx.db.get("sent", recordUuid);
  if (!ctx.live(token)) return;
  if (!record) {
    setMain(page(t("not_found"), h("a", { class: "button", href: "#/returned" }, t("returned_title"))));
    return;
  }
  const [hh, def] = await Promise.all([ctx.db.get("households", record.household_id), getForm(ctx, record.form, record.form_version)]);
  const { draft, missing } = await startCorrection(ctx.db, ctx.engine, record, hh || null, def);
  if (!ctx.live(token)) return;
  if (missing.length) toast(t("photos_missing", { n: missing.length }), 8000);
  location.replace(`#/drafts/${draft.id}`); // Back returns to the list, not to this step
}

/** "Family · Members / Name" for a dropped answer (the old version's labels). */
function droppedLabel(d) {
  const label = d.label ? pick(d.label, lang()) : d.path;
  return d.repeat ? `${pick(d.repeat, lang())} · ${label}` : label;
}

export async function showForm(ctx, token, draft, def, hh, isNew) {
  const { db, engine } = ctx;
  const [settings, catalog] = await Promise.all([db.get("meta", "settings"), engine.catalog()]);
  if (!ctx.live(token)) return;
  const saveState = h("span", { class: "save-state", "aria-live": "polite" });
  let saved = !isNew;
  let submitted = false;
  const saver = makeSaver(db, draft, {
    onSaved: () => {
      saveState.textContent = t("autosaved", { time: fmtTime(draft.updated_at) });
      saveState.classList.remove("warn-text");
    },
    onFailed: () => {
      saveState.textContent = t("save_failed");
      saveState.classList.add("warn-text");
    },
  });
  const promises = [...(draft.followups || [])];
  fillMeta(def, draft.answers = draft.answers || {}, "open");
  const view = new FormView({
    definition: def, answers: draft.answers, settings: { ...(settings || {}) }, db, household: hh,
    serverErrors: draft.server_errors || [], promises, reviewNotes: (draft.review && draft.review.fields) || {},
    section: draft.section || null,
    onSection: (name) => {
      draft.section = name; // reopening the draft returns here
      if (saved) saver.save();
    },
    onChange: (answers) => {
      draft.answers = answers;
      if (!saved) {
        saved = true;
        history.replaceState(null, "", `#/drafts/${draft.id}`); // a reload resumes this draft
      }
      if (draft.server_errors && draft.server_errors.length) draft.server_errors = [...view.serverErrors.values(), ...view.otherErrors];
      saver.save();
    },
  });
  const saveDraft = async () => {
    draft.answers = view.getAnswers();
    await saver.save();
    await saver.flush();
    toast(t("draft_saved"));
    location.hash = "#/drafts";
  };
  const submit = async (event) => {
    const button = event.currentTarget;
    const problems = view.validate();
    if (problems.length) {
      toast(t("fix_first", { n: problems.length }));
      return;
    }
    button.disabled = true;
    try {
      draft.answers = fillMeta(def, view.getAnswers(), "end");
      await saver.flush();
      await engine.submitDraft(draft, def, hh);
      forgetJournal(draft.id);
      submitted = true;
      toast(t("queued"));
      location.hash = "#/outbox";
      engine.run("submit");
    } catch (err) {
      toast(t("submit_failed", { why: err && err.message }));
    } finally {
      button.disabled = false;
    }
  };
  const currentVersion = catalog.currentVersion(draft.form);
  const move = async (event) => {
    event.currentTarget.disabled = true;
    const to = await getForm(ctx, draft.form);
    if (!to || to.version === def.version) {
      toast(t("move_unavailable"));
      event.currentTarget.disabled = false;
      return;
    }
    draft.answers = view.getAnswers();
    const moved = moveDraft(draft, def, to, { promises: await carried(ctx, hh) });
    for (const key of Object.keys(draft)) delete draft[key];
    Object.assign(draft, moved); // the saver holds this object
    saved = true;
    await saver.save();
    await saver.flush();
    view.destroy();
    history.replaceState(null, "", `#/drafts/${draft.id}`);
    await showForm(ctx, ctx.token(), draft, to, hh, false);
    window.scrollTo(0, 0);
  };
  const review = draft.review || null;
  const notices = [
    (draft.server_errors || []).length ? h("p", { class: "notice error" }, t("was_refused")) : null,
    draft.supersedes ? h("div", { class: "notice warn", "data-supersedes": draft.supersedes },
      h("p", {}, t("correction_notice"), review && review.by ? ` · ${t("review_by", { who: review.by })}` : ""),
      review && review.comment ? h("p", { class: "review-comment" }, h("strong", {}, `${t("review_comment")}：`), review.comment) : null,
      // Each comment on an answer opens that answer's section and puts the cursor in it.
      Object.keys((review && review.fields) || {}).length ? h("ul", { class: "review-links" }, Object.entries(review.fields).map(([path, text]) =>
        h("li", {}, h("button", { type: "button", class: "link", "data-review-link": path, onclick: () => view.focusPath(path) },
          `${view.wraps.has(path) ? view.pathLabel(path) : path}：${text}`)))) : null) : null,
    isOutdated(draft, currentVersion) ? h("div", { class: "notice warn", "data-outdated": "true" },
      h("p", {}, t("old_version", { from: draft.form_version, to: currentVersion })),
      h("button", { type: "button", class: "secondary", "data-action": "move-version", onclick: move }, t("move_version"))) : null,
    draft.moved ? h("p", { class: "notice", "data-moved": String(draft.moved.dropped.length) }, draft.moved.dropped.length
      ? t("moved_note", { to: draft.moved.to, list: draft.moved.dropped.map(droppedLabel).join("、") })
      : t("moved_all_kept", { to: draft.moved.to })) : null,
  ];
  const sectioned = view.sectioned;
  setMain(h("div", { class: "form-page" },
    h("p", { class: "crumb" }, h("a", { href: hh ? `#/households/${encodeURIComponent(hh.id)}` : "#/today" }, `‹ ${householdLabel(hh, draft.household_id)}`)),
    h("h1", { class: "page-title" }, pick(def.title, lang())),
    h("p", { class: "muted" }, hh ? [hh.head_name, hh.group, hh.id].filter(Boolean).join(" · ") : draft.household_id),
    notices,
    view.el,
    h("div", { class: `actionbar${sectioned ? " sectioned" : ""}` }, saveState,
      h("div", { class: "row" },
        sectioned ? view.prevButton : null,
        h("button", { type: "button", class: "secondary", "data-action": "save-draft", onclick: saveDraft }, t("save_draft")),
        h("button", { type: "button", class: sectioned ? "secondary submit" : "primary", "data-action": "submit", onclick: submit }, t("submit")),
        sectioned ? view.nextButton : null))));
  ctx.screen.isForm = true;
  ctx.screen.leave = () => {
    view.destroy();
    if (!submitted) saver.flush();
  };
  ctx.screen.relang = () => {
    view.destroy();
    draft.answers = view.getAnswers();
    draft.section = view.nav.current;
    showForm(ctx, ctx.token(), draft, def, hh, !saved);
  };
}
