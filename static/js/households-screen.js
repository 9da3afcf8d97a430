// The households in the cadre's scope (searchable list), and one household at a glance, offline:
// its facts, members, land plots with their four boundaries, PV status, its open promises and the
// last visits this phone holds; its plots edited as cards, offline (one save, synced as an edit).

import { parseNumber } from "./answers.js";
import { h } from "./dom.js";
import { lang, pick, t } from "./i18n.js";
import { flatFields } from "./form-shape.js";
import {
  categoryBadge, fmtDate, fmtDay, fmtTime, formTitleOf, getHousehold, householdCard, page, phoneState, setMain, stateWords, toast, visitFormId,
  visitLine,
} from "./ui.js";
import { compareText, dayOf } from "./util.js";
import { editKey, noticeKey, withPendingEdit } from "./sync/edits.js";
import { lastVisitDate, lastVisits, openPromises, visitDateOf } from "./visits.js";

const LIST_PAGE = 60;
const RECENT_VISITS = 5;
const visitsKey = (id) => `visits:${id}`;
const list = { filter: null, filterChosen: false, search: "", shown: LIST_PAGE };

export async function showHouseholds(ctx, token) {
  ctx.screen.refresh = () => showHouseholds(ctx, ctx.token());
  const state = await phoneState(ctx.db, ctx.engine);
  if (!ctx.live(token)) return;
  const { households, user } = state;
  const visits = lastVisits(households, [...state.outbox, ...state.sent], state.catalog);
  const mine = user ? households.filter((hh) => (hh.cadre_ids || []).includes(user.id)) : [];
  if (!list.filterChosen) list.filter = mine.length ? "mine" : "all";
  if (!households.length) {
    setMain(page(t("tab_households"), h("div", { class: "card empty" },
      h("p", {}, user ? t("no_households") : t("first_run")),
      h("button", { type: "button", class: "secondary", "data-action": "sync-again" }, t("sync_now")))));
    return;
  }
  const ul = h("ul", { class: "hh-list" });
  const countEl = h("p", { class: "muted count-line", "aria-live": "polite" });
  const search = h("input", {
    type: "search", id: "hh-search", name: "q", value: list.search, autocomplete: "off", placeholder: t("search_placeholder"),
    oninput: () => { list.search = search.value; list.shown = LIST_PAGE; fill(); },
  });
  const filterBtn = (value, label, n) => h("button", {
    type: "button", class: `seg${list.filter === value ? " on" : ""}`, "aria-pressed": String(list.filter === value),
    onclick: () => { list.filter = value; list.filterChosen = true; list.shown = LIST_PAGE; showHouseholds(ctx, ctx.token()); },
  }, `${label} (${n})`);
  const days = (hh) => {
    const last = visits.get(hh.id);
    return last ? Date.now() - Date.parse(last) : Infinity;
  };
  const more = h("button", { type: "button", class: "secondary wide", onclick: () => { list.shown += LIST_PAGE; fill(); } }, t("show_more"));
  const fill = () => {
    const q = list.search.trim().toLowerCase();
    let rows = list.filter === "mine" ? mine : households;
    if (q) {
      rows = rows.filter((hh) => [hh.head_name, hh.id, hh.address, hh.phone, hh.group, ...(hh.members || []).map((m) => m.name)]
        .some((v) => v && String(v).toLowerCase().includes(q)));
    }
    // My households: the longest unvisited first; all: by number.
    rows = [...rows].sort(list.filter === "mine" ? (a, b) => days(b) - days(a) || compareText(a.id, b.id) : (a, b) => compareText(a.id, b.id));
    ul.replaceChildren(...rows.slice(0, list.shown).map((hh) => h("li", {}, householdCard(hh, visits.get(hh.id)))));
    countEl.textContent = t("showing", { shown: Math.min(list.shown, rows.length), total: rows.length });
    more.hidden = rows.length <= list.shown;
    if (!rows.length) ul.append(h("li", { class: "muted empty-row" }, t("no_match")));
  };
  const hadFocus = document.activeElement && document.activeElement.id === "hh-search";
  setMain(page(t("tab_households"),
    h("div", { class: "searchbar" }, h("label", { for: "hh-search", class: "visually-hidden" }, t("search_label")), search),
    mine.length ? h("div", { class: "segmented", role: "group", "aria-label": t("filter_label") },
      filterBtn("mine", t("filter_mine"), mine.length), filterBtn("all", t("filter_all"), households.length)) : null,
    countEl, ul, more, printMine(mine)));
  fill();
  if (hadFocus) search.focus();
}

/** My households' profiles in one PDF, per village (the server renders them, so only online). */
function printMine(mine) {
  const villages = [...new Set(mine.map((hh) => hh.village_id).filter(Boolean))];
  if (!villages.length || navigator.onLine === false) return null;
  return h("div", { class: "actions" }, villages.map((vid) => h("a", {
    class: "button secondary wide", "data-action": "print-mine", target: "_blank", rel: "noopener",
    href: `/villages/${encodeURIComponent(vid)}/print?scope=mine`,
  }, t("print_mine", { n: mine.filter((hh) => hh.village_id === vid).length }))));
}

function factsList(pairs) {
  return h("dl", { class: "facts" }, pairs.filter(([, v]) => v !== null && v !== undefined && v !== "")
    .map(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]));
}

/** The label of a choice name in any current form (PV stages come from the PV form's choices). */
function choiceLabel(catalog, value) {
  for (const f of catalog.forms) {
    for (const field of flatFields(catalog.current(f.id) || {})) {
      const c = (field.choices || []).find((x) => x.name === value);
      if (c) return pick(c.label, lang());
    }
  }
  return value;
}

/** One line about a visit: the labels of what was discussed, promises made, help given. */
function visitSummary(record, def) {
  if (!def) return "";
  const answers = record.answers || {};
  const parts = [];
  for (const field of flatFields(def).filter((f) => f.type === "select_multiple" && Array.isArray(answers[f.name])).slice(0, 2)) {
    parts.push(answers[field.name].map((v) => {
      const c = (field.choices || []).find((x) => x.name === v);
      return c ? pick(c.label, lang()) : v;
    }).join("、"));
  }
  const effects = def.effects || {};
  const help = effects.help_value;
  if (help && Array.isArray(answers[help.repeat])) {
    const total = answers[help.repeat].reduce((sum, e) => sum + (Number(e[help.quantity]) || 0) * (Number(e[help.price]) || 0), 0);
    if (total) parts.push(t("help_total", { n: Math.round(total * 100) / 100 }));
  }
  return parts.filter(Boolean).join(" · ");
}

/**
 * The household's visits the server holds (other cadres' too), fetched when the page is opened
 * online and kept, so the page shows them without signal next time. Null when nothing is known.
 */
async function refreshServerVisits(ctx, id) {
  if (navigator.onLine === false) return null;
  try {
    const data = await ctx.engine.request("GET", `/api/v1/submissions?household_id=${encodeURIComponent(id)}`);
    const list = ((data && data.submissions) || [])
      .sort((a, b) => compareText(b.visit_date || b.created_at, a.visit_date || a.created_at))
      .slice(0, RECENT_VISITS)
      .map(({ uuid, form, form_version, household_id, cadre_id, created_at, answers, review, superseded_by }) =>
        ({ uuid, form, form_version, household_id, user_id: cadre_id, created_at, answers, review, superseded_by, sent_at: created_at }));
    const cached = { at: new Date().toISOString(), list };
    await ctx.db.put("meta", visitsKey(id), cached);
    return cached;
  } catch (_) {
    return null;
  }
}

/** What became of the phone's last plot edit: not sent yet, refused (why), or merged with a clash. */
function editNote(ctx, edit, notice, id) {
  const redraw = () => showHousehold(ctx, ctx.token(), id);
  const out = [];
  if (edit && edit.state === "refused") {
    out.push(h("div", { class: "notice error", role: "alert", "data-edit-state": "refused" },
      h("p", {}, t("plots_refused")),
      h("ul", {}, (edit.errors || []).map((e) => {
        const m = /^plots\.(\d+)\.?(\w*)/.exec(e.field); // the row and column named, as on the cards
        return h("li", {}, m ? `${t("plots_plot_n", { n: +m[1] + 1 })} ${m[2] ? t(`plot_f_${m[2]}`) : ""}：` : "", pick(e.message, lang()));
      })),
      h("button", { type: "button", class: "link danger", "data-action": "discard-edit", onclick: async () => {
        await ctx.engine.discard(edit.uuid);
        redraw();
      } }, t("plots_discard"))));
  } else if (edit) {
    out.push(h("p", { class: "pill wait", "data-edit-state": edit.state }, t("plots_unsent")));
  }
  if (notice) {
    out.push(h("div", { class: "notice", role: "status", "data-edit-clash": notice.kind },
      h("p", {}, t("plots_clash")),
      h("button", { type: "button", class: "secondary", "data-action": "clash-read", onclick: async () => {
        await ctx.db.delete("meta", noticeKey(id));
        redraw();
      } }, t("got_it"))));
  }
  return out;
}

export async function showHousehold(ctx, token, id) {
  ctx.screen.refresh = () => showHousehold(ctx, ctx.token(), id);
  const stored = await getHousehold(ctx, id);
  if (!ctx.live(token)) return;
  // An edit not yet on the server shows as made (a pull may have brought the older copy meanwhile).
  const [edit, notice] = stored ? await Promise.all([ctx.db.get("outbox", editKey(id)), ctx.db.get("meta", noticeKey(id))]) : [];
  if (!ctx.live(token)) return;
  const hh = withPendingEdit(stored, edit);
  if (!hh) {
    setMain(page(t("not_found"), h("p", {}, t("household_missing", { id })), h("a", { class: "button", href: "#/households" }, t("back_home"))));
    return;
  }
  const [state, cached] = await Promise.all([phoneState(ctx.db, ctx.engine), ctx.db.get("meta", visitsKey(id))]);
  if (!ctx.live(token)) return;
  const { catalog } = state;
  const own = [...state.outbox, ...state.sent].filter((r) => r.household_id === hh.id);
  const last = lastVisitDate(hh, own, catalog);
  const promises = openPromises(hh, own, catalog, state.pulledAt);
  const visitForm = visitFormId(catalog);
  const forms = catalog.forms.length ? catalog.forms : [{ id: "household_visit" }, { id: "pv_enrollment" }];
  const formButtons = forms.map((f) => h("a", {
    class: `button ${f.id === visitForm ? "primary" : "secondary"} wide`, "data-form": f.id,
    href: `#/households/${encodeURIComponent(hh.id)}/forms/${encodeURIComponent(f.id)}`,
  }, `＋ ${formTitleOf(catalog, f.id, f.version)}`));
  const drafts = state.drafts.filter((d) => d.household_id === hh.id);
  const syncing = ctx.engine.status.running;
  const me = state.user ? state.user.id : null;
  const visitsCard = (known) => {
    const mine = new Set(own.map((r) => r.uuid));
    const others = ((known && known.list) || []).filter((r) => !mine.has(r.uuid) && !r.superseded_by);
    const dated = [...own, ...others].map((r) => ({ r, date: visitDateOf(r, catalog) || dayOf(r.created_at) }))
      .sort((a, b) => compareText(b.date, a.date));
    const rows = dated.slice(0, RECENT_VISITS).map(({ r, date }) => {
      const def = catalog.get(r.form, r.form_version) || catalog.current(r.form);
      const summary = visitSummary(r, def);
      const title = `${fmtDate(date)} · ${formTitleOf(catalog, r.form, r.form_version)}`;
      if (!mine.has(r.uuid)) {
        return h("li", { class: "record visit-summary", "data-uuid": r.uuid },
          h("div", { class: "plain-row" }, h("span", { class: "rec-title" }, title),
            h("span", { class: "muted" }, r.user_id === me ? "" : t("visit_by_other", { who: r.user_id })),
            summary ? h("span", { class: "summary" }, summary) : null));
      }
      const words = stateWords(r, syncing);
      return h("li", { class: "record visit-summary", "data-uuid": r.uuid, "data-state": words.state },
        h("a", { href: `#/outbox/${r.uuid}` }, h("span", { class: "rec-title" }, title),
          summary ? h("span", { class: "summary" }, summary) : null,
          h("span", { class: `pill ${words.cls}` }, words.text)));
    });
    return h("section", { class: "card", "data-section": "visits" }, h("h2", {}, t("hh_recent_visits")),
      last ? h("p", { class: "muted" }, `${t("hh_last_visit")}：${fmtDate(last)}`) : null,
      rows.length ? h("ul", { class: "plain records" }, rows) : h("p", { class: "muted" }, t("hh_no_visits")),
      known && navigator.onLine === false ? h("p", { class: "muted small" }, t("hh_visits_cached", { time: fmtTime(known.at) })) : null);
  };
  let visitsEl = visitsCard(cached);
  const members = (hh.members || []).map((m) => h("li", {},
    h("strong", {}, m.name || "—"), " ", [m.relation, m.sex ? t(`sex_${m.sex}`) : null, m.birth_year ? t("born", { y: m.birth_year }) : null, m.health, m.schooling, m.work].filter(Boolean).join(" · ")));
  const plots = (hh.plots || []).map((p) => h("li", { "data-plot": p.id || "" },
    h("strong", {}, p.name || "—"), ` ${t("mu", { n: p.area_mu })}`, p.code ? ` · ${t("plot_code", { code: p.code })}` : "", h("br"),
    t("bounds", { e: p.east || "—", w: p.west || "—", s: p.south || "—", n: p.north || "—" }), " · ",
    p.contract_no ? p.contract_no : p.contract_signed ? t("contract_yes") : h("span", { class: "warn-text" }, t("contract_no"))));
  // The land ledger's state, as last synced (the land_ledger form changes it, offline too).
  const lg = hh.ledger || {};
  const ledgerLine = h("p", { class: "muted", "data-ledger-state": lg.state || "not_started" },
    [t("ledger_line", { state: t(`ledger_${lg.state || "not_started"}`) }),
      (lg.consultants || []).length ? t("ledger_consultants", { names: lg.consultants.join("、") }) : null,
      lg.signed_on ? t("ledger_signed_on", { date: fmtDay(lg.signed_on) }) : null,
      lg.away_at ? t("ledger_away_at", { place: lg.away_at }) : null,
      lg.objection ? t("ledger_objection", { text: lg.objection }) : null].filter(Boolean).join(" · "));
  const pv = hh.pv_status;
  const plotsSection = h("section", { class: "card", "data-section": "ledger" }, h("h2", {}, t("plots_title")), ledgerLine,
    editNote(ctx, edit, notice, hh.id),
    plots.length ? h("ul", { class: "plain lines" }, plots) : h("p", { class: "muted" }, t("none")),
    h("button", { type: "button", class: "secondary wide", "data-action": "edit-plots",
      onclick: () => editPlots(ctx, plotsSection, hh, () => showHousehold(ctx, ctx.token(), id)) }, t("plots_edit")));
  setMain(
    h("p", { class: "crumb" }, h("a", { href: "#/households" }, `‹ ${t("tab_households")}`)),
    h("div", { class: "title-row" }, h("h1", { class: "page-title" }, hh.head_name || hh.id), categoryBadge(hh.category)),
    visitLine(last),
    h("div", { class: "actions" }, formButtons,
      // The profile is rendered by the server, so it needs the network; offline, say so instead.
      navigator.onLine !== false
        ? h("a", { class: "button secondary wide", "data-action": "print-profile", target: "_blank", rel: "noopener",
          href: `/households/${encodeURIComponent(hh.id)}/profile.pdf?lang=${lang()}` }, t("print_profile"))
        : h("p", { class: "muted" }, t("print_offline"))),
    drafts.length ? h("section", { class: "card" }, h("h2", {}, t("drafts_here")),
      h("ul", { class: "plain" }, drafts.map((d) => h("li", {},
        h("a", { href: `#/drafts/${d.id}`, class: "button secondary wide" }, `${formTitleOf(catalog, d.form, d.form_version)} · ${t("edited_at", { time: fmtTime(d.updated_at || d.created_at) })}`))))) : null,
    h("section", { class: "card", "data-section": "promises" }, h("h2", {}, t("hh_open_promises", { n: promises.length })),
      promises.length ? h("ul", { class: "plain lines" }, promises.map((p) => h("li", { "data-followup": p.id, "data-due": p.due_date || "" },
        h("strong", {}, p.action || p.id), h("br"),
        h("span", { class: "muted" }, [p.due_date ? t("due_on", { date: fmtDay(p.due_date) }) : null,
          p.visit_date ? t("promised_on", { date: fmtDay(p.visit_date) }) : null,
          p.status === "in_progress" ? t("promise_in_progress") : null, p.note || null, p.local ? t("promise_not_sent") : null].filter(Boolean).join(" · ")))))
        : h("p", { class: "muted" }, t("none"))),
    visitsEl,
    h("section", { class: "card" }, h("h2", {}, t("basic_facts")), factsList([
      [t("f_id"), hh.id], [t("f_group"), hh.group], [t("f_address"), hh.address],
      [t("f_phone"), hh.phone ? h("a", { href: `tel:${hh.phone}` }, hh.phone) : null],
      [t("f_population"), hh.population],
    ])),
    h("section", { class: "card" }, h("h2", {}, t("members_title", { n: (hh.members || []).length })),
      members.length ? h("ul", { class: "plain lines" }, members) : h("p", { class: "muted" }, t("none"))),
    plotsSection,
    h("section", { class: "card" }, h("h2", {}, t("pv_title")), pv ? factsList([
      [t("pv_stage"), pv.stage ? choiceLabel(catalog, pv.stage) : null], [t("pv_capacity"), pv.capacity_kw ? `${pv.capacity_kw} kW` : null],
      [t("pv_kwh"), pv.expected_kwh_year ? `${pv.expected_kwh_year} kWh` : null],
      [t("pv_funding"), pv.funding_mode ? choiceLabel(catalog, pv.funding_mode) : null],
    ]) : h("p", { class: "muted" }, t("none"))),
  );
  const fresh = await refreshServerVisits(ctx, hh.id);
  if (fresh && ctx.live(token)) {
    const next = visitsCard(fresh);
    visitsEl.replaceWith(next);
    visitsEl = next;
  }
}

// ---- the plots edited offline (issue 25): a card a plot (nothing squeezed at 360 px), one save --------
// Rows are checked as the server does, so a bad area shows without signal; the server checks again.

const STATES = ["not_started", "surveyed", "boundaries_confirmed", "publicised", "objected", "signed", "away", "confirmed_remote"];
const BAD_TEXT = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/;
// field and its limit (text) or kind; the label is t(`plot_f_${field}`)
const FIELDS = [["name", 50], ["code", "code"], ["area_mu", "area"], ["east", 100], ["west", 100], ["south", 100],
  ["north", 100], ["contract_no", 50], ["state", "state"], ["note", 200]];

/** Rows as typed ([{plot, values}]) -> {plots, errors [{index, field, message}]}; empty new rows are dropped. */
export function plotsFromRows(rows) {
  const plots = [];
  const errors = [];
  rows.forEach(({ plot, values }, index) => {
    const text = (f) => String(values[f] || "").trim();
    if (!plot && FIELDS.every(([f]) => f === "state" || !text(f))) return;
    const out = { contract_signed: false, ...plot }; // a kept plot keeps its id and contract flag
    const bad = (field, key, params) => errors.push({ index, field, message: t(key, params) });
    for (const [f, kind] of FIELDS) {
      const v = text(f);
      if (kind === "area") {
        out.area_mu = v ? parseNumber(v) : null;
        if (v && !(out.area_mu > 0 && out.area_mu <= 10000)) bad(f, "plot_err_area");
      } else if (kind === "code") {
        if (v && !/^[A-Za-z0-9_-]{1,40}$/.test(v)) bad(f, "plot_err_code"); // twice in the table: the server says
        out.code = v;
      } else if (kind === "state") {
        out.state = STATES.includes(v) ? v : "";
      } else {
        if (v.length > kind || BAD_TEXT.test(v)) bad(f, "plot_err_text", { n: kind });
        out[f] = v;
      }
    }
    for (const f of ["code", "contract_no", "state", "note"]) if (!out[f]) delete out[f];
    plots.push(out);
  });
  return { plots, errors };
}

/** Draws the editor into `section` (the household's plots card); done() redraws the screen. */
export function editPlots(ctx, section, hh, done) {
  const cards = h("ul", { class: "plain plot-cards" });
  const renumber = () => [...cards.children].forEach((li, i) => { li.firstChild.textContent = t("plots_plot_n", { n: i + 1 }); });
  const card = (plot) => {
    const li = h("li", { class: "card plot-card", "data-plot-card": "", "data-plot": (plot && plot.id) || "" }, h("h3"));
    li.plot = plot;
    for (const [f, kind] of FIELDS) {
      const name = t(`plot_f_${f}`);
      const v = plot && plot[f] !== null && plot[f] !== undefined ? String(plot[f]) : "";
      const input = kind === "state"
        ? h("select", { "data-plot-field": f, "aria-label": name }, h("option", { value: "" }, "—"),
          STATES.map((s) => h("option", { value: s, selected: v === s }, t(`ledger_${s}`))))
        : h("input", { "data-plot-field": f, "aria-label": name, value: v, autocomplete: "off", inputmode: kind === "area" ? "decimal" : null,
          maxlength: typeof kind === "number" ? kind : kind === "code" ? 40 : null });
      li.append(h("div", { class: "field", "data-plot-cell": f }, h("span", { class: "label", "aria-hidden": "true" }, name), input,
        h("p", { class: "field-error", role: "alert" })));
    }
    li.append(h("button", { type: "button", class: "link danger", "data-action": "remove-plot", onclick: () => {
      const next = li.nextElementSibling || li.previousElementSibling;
      li.remove();
      renumber();
      ((next && next.querySelector("input")) || add).focus();
    } }, t("plots_remove")));
    return li;
  };
  const add = h("button", { type: "button", class: "secondary wide", "data-action": "add-plot", onclick: () => {
    const li = card(null);
    cards.append(li);
    renumber();
    li.querySelector("input").focus();
  } }, t("plots_add"));
  const save = h("button", { type: "button", class: "primary", "data-action": "save-plots", onclick: async () => {
    const lis = [...cards.children];
    const { plots, errors } = plotsFromRows(lis.map((li) => ({
      plot: li.plot, values: Object.fromEntries([...li.querySelectorAll("[data-plot-field]")].map((el) => [el.dataset.plotField, el.value])),
    })));
    for (const el of section.querySelectorAll("[data-plot-field]")) el.removeAttribute("aria-invalid");
    for (const p of section.querySelectorAll(".field-error")) p.textContent = "";
    if (errors.length) {
      for (const e of errors) {
        const cell = lis[e.index].querySelector(`[data-plot-cell="${e.field}"]`);
        cell.lastChild.textContent = e.message;
        cell.querySelector("[data-plot-field]").setAttribute("aria-invalid", "true");
      }
      section.querySelector("[aria-invalid]").focus();
      return;
    }
    await ctx.engine.queueEdit(hh, { plots });
    toast(t("plots_saved"));
    if (navigator.onLine !== false) ctx.engine.run("edit").then(() => ctx.screen.refresh && ctx.screen.refresh());
    done();
  } }, t("plots_save"));
  cards.append(...(hh.plots || []).map(card));
  renumber();
  section.replaceChildren(h("h2", {}, t("plots_title")), cards, add,
    h("div", { class: "row actions" }, save, h("button", { type: "button", class: "secondary", "data-action": "cancel-plots", onclick: done }, t("cancel"))));
  section.dataset.editing = "true";
}
