// The households in the cadre's scope (searchable list), and one household at a glance, offline:
// its facts, members, land plots with their four boundaries, PV status, its open promises and the
// last visits this phone holds.

import { h } from "./dom.js";
import { lang, pick, t } from "./i18n.js";
import { flatFields } from "./form-shape.js";
import {
  categoryBadge, fmtDate, fmtDay, fmtTime, formTitleOf, getHousehold, householdCard, page, phoneState, setMain, stateWords, visitFormId, visitLine,
} from "./ui.js";
import { compareText, dayOf } from "./util.js";
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

export async function showHousehold(ctx, token, id) {
  ctx.screen.refresh = () => showHousehold(ctx, ctx.token(), id);
  const hh = await getHousehold(ctx, id);
  if (!ctx.live(token)) return;
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
  const plots = (hh.plots || []).map((p) => h("li", {},
    h("strong", {}, p.name || "—"), ` ${t("mu", { n: p.area_mu })}`, h("br"),
    t("bounds", { e: p.east || "—", w: p.west || "—", s: p.south || "—", n: p.north || "—" }), " · ",
    p.contract_signed ? t("contract_yes") : h("span", { class: "warn-text" }, t("contract_no"))));
  const pv = hh.pv_status;
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
    h("section", { class: "card" }, h("h2", {}, t("plots_title")),
      plots.length ? h("ul", { class: "plain lines" }, plots) : h("p", { class: "muted" }, t("none"))),
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
