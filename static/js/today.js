// The home screen: the cadre's day, from what the phone last pulled plus its own records, so it
// works without signal. Promises overdue or due within a week, visits a supervisor returned, and
// households not visited for 30 days, each one tap from the form that deals with it.

import { h } from "./dom.js";
import { t } from "./i18n.js";
import { fmtDate, fmtDay, fmtTime, formTitleOf, householdCard, householdLabel, page, phoneState, setMain, visitFormId } from "./ui.js";
import { dayOf, localDate } from "./util.js";
import { agenda, visitDateOf } from "./visits.js";

const NOT_VISITED_SHOWN = 8;

/** What the Today tab counts: promises overdue or due this week, and returned visits to fix. */
export function todayCount(day) {
  return { n: day.overdue.length + day.dueSoon.length + day.returned.length, urgent: day.overdue.length + day.returned.length > 0 };
}

export async function cadreDay(ctx) {
  const state = await phoneState(ctx.db, ctx.engine);
  const day = agenda({ ...state, userId: state.user ? state.user.id : null, today: localDate() });
  return { state, day };
}

function promiseItem(p, formHref, overdue) {
  const when = overdue ? t("overdue_days", { n: p.days }) : p.days === 0 ? t("due_today") : t("due_in", { n: p.days });
  const hh = p.household;
  return h("li", { class: `promise${overdue ? " overdue" : ""}`, "data-followup": p.id, "data-household": hh.id, "data-due": p.due_date },
    h("a", { href: formHref(hh.id) },
      h("span", { class: "promise-action" }, p.action || t("promise_unknown", { id: p.id })),
      h("span", { class: "promise-meta" }, [householdLabel(hh, hh.id), hh.group].filter(Boolean).join(" · ")),
      h("span", { class: "promise-when" },
        h("span", { class: `pill ${overdue ? "bad" : "wait"}` }, when),
        ` ${t("due_on", { date: fmtDay(p.due_date) })}`,
        p.status === "in_progress" ? h("span", { class: "pill ok" }, t("promise_in_progress")) : null,
        p.local ? h("span", { class: "pill muted-pill" }, t("promise_not_sent")) : null),
      h("span", { class: "go", "aria-hidden": "true" }, t("go_visit"))));
}

/** A returned visit: who, when, the supervisor's comment, and the button that fixes it. */
export function returnedCard(ctx, record, state, { full = null } = {}) {
  const hh = state.households.find((x) => x.id === record.household_id);
  const review = record.review || {};
  const date = visitDateOf(record, state.catalog) || dayOf(record.created_at);
  const draft = state.drafts.find((d) => d.supersedes === record.uuid);
  const fieldNotes = Object.keys(review.fields || {}).length;
  return h("li", { class: "card returned-card", "data-review": "has_issues", "data-uuid": record.uuid },
    h("p", { class: "rec-title" }, [householdLabel(hh, record.household_id), formTitleOf(state.catalog, record.form, record.form_version),
      fmtDate(date)].join(" · ")),
    h("p", {}, h("span", { class: "pill warn" }, t("review_issues")),
      review.by ? h("span", { class: "muted small" }, ` ${t("review_by", { who: review.by })} ${fmtTime(review.at)}`) : null),
    review.comment ? h("p", { class: "review-comment" }, h("strong", {}, `${t("review_comment")}：`), review.comment) : null,
    !full && fieldNotes ? h("p", { class: "muted small" }, t("section_errors", { n: fieldNotes })) : null,
    full,
    h("div", { class: "row" },
      h("a", { class: "button primary", "data-action": "fix", href: `#/returned/${encodeURIComponent(record.uuid)}/fix` }, t(draft ? "fix_continue" : "fix")),
      full ? null : h("a", { class: "button secondary", href: `#/outbox/${record.uuid}` }, t("answers_in_form"))));
}

export async function showToday(ctx, token) {
  ctx.screen.refresh = () => showToday(ctx, ctx.token());
  const { state, day } = await cadreDay(ctx);
  if (!ctx.live(token)) return;
  ctx.setTodayCount(todayCount(day));
  const formId = visitFormId(state.catalog);
  const formHref = (hid) => `#/households/${encodeURIComponent(hid)}/forms/${encodeURIComponent(formId)}`;
  const lastSync = ctx.engine.status.lastSync;
  const refused = [...state.outbox, ...state.edits].filter((i) => i.state === "refused").length;
  const notices = [
    refused ? h("a", { class: "notice error", href: "#/outbox" }, t("notice_refused", { n: refused })) : null,
    state.drafts.length ? h("a", { class: "notice", href: "#/drafts" }, t("notice_drafts", { n: state.drafts.length })) : null,
  ];
  if (!state.households.length) {
    const first = ctx.engine.status.running || (!lastSync && navigator.onLine !== false && !ctx.engine.status.error);
    setMain(page(t("today_title"), notices, h("div", { class: "card empty" },
      h("p", {}, first ? t("first_sync") : state.user ? t("no_households") : t("first_run")),
      state.user ? null : h("a", { class: "button primary", href: "/login?next=%2Fapp%2F" }, t("login")),
      h("button", { type: "button", class: "secondary", "data-action": "sync-again" }, t("sync_now")))));
    return;
  }
  const promises = day.overdue.length || day.dueSoon.length ? [
    day.overdue.length ? h("section", { class: "today-block", "aria-labelledby": "today-overdue" },
      h("h2", { id: "today-overdue", class: "alert-title" }, t("today_overdue", { n: day.overdue.length })),
      h("ul", { class: "plain promises" }, day.overdue.map((p) => promiseItem(p, formHref, true)))) : null,
    day.dueSoon.length ? h("section", { class: "today-block", "aria-labelledby": "today-soon" },
      h("h2", { id: "today-soon" }, t("today_due_soon", { n: day.dueSoon.length })),
      h("ul", { class: "plain promises" }, day.dueSoon.map((p) => promiseItem(p, formHref, false)))) : null,
  ] : h("p", { class: "card muted" }, t("today_nothing_due"));
  const returned = day.returned.length ? h("section", { class: "today-block", "aria-labelledby": "today-returned" },
    h("h2", { id: "today-returned", class: "alert-title" }, t("today_returned", { n: day.returned.length })),
    h("ul", { class: "plain" }, day.returned.map((r) => returnedCard(ctx, r, state)))) : null;
  const list = h("ul", { class: "hh-list" });
  const fill = (n) => {
    list.replaceChildren(...day.notVisited.slice(0, n).map((x) => h("li", {}, householdCard(x.household, x.last, formHref(x.household.id)))));
  };
  fill(NOT_VISITED_SHOWN);
  const more = day.notVisited.length > NOT_VISITED_SHOWN ? h("button", {
    type: "button", class: "secondary wide", onclick: (e) => { fill(day.notVisited.length); e.currentTarget.remove(); },
  }, t("show_all_n", { n: day.notVisited.length })) : null;
  setMain(page(t("today_title"),
    h("p", { class: "muted as-of" }, lastSync ? t("today_as_of", { time: fmtTime(lastSync) }) : t("today_never_synced")),
    notices, promises, returned,
    h("section", { class: "today-block", "aria-labelledby": "today-visits" },
      h("h2", { id: "today-visits" }, t("today_not_visited", { n: day.notVisited.length })),
      day.notVisited.length ? [list, more] : h("p", { class: "card muted" },
        t(pairedWith(state).length ? "today_all_visited" : "today_none_paired"))),
    storageNote(ctx)));
}

function pairedWith(state) {
  const me = state.user && state.user.id;
  return state.households.filter((hh) => !me || (hh.cadre_ids || []).includes(me));
}

/** Storage the browser may clear: said at the end of the day's list (never pushing it down). */
function storageNote(ctx) {
  if (ctx.persisted !== false || ctx.db.volatile) return null;
  return h("p", { class: "notice warn", "data-storage": "not-persistent" }, t("storage_not_persistent"), " ",
    h("a", { href: "#/settings" }, t("storage_settings_link")));
}
