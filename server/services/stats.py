"""The dashboard's numbers and the lists behind them, in two steps so a county page stays cheap:

1. `village_summary(village_id, db)`: one village's records folded into a small JSON-able summary
   (counts, and dates as {date: count}), a pure function of that village's households and
   submissions and independent of "today". Cached by (village, the village's change cursor), so an
   unchanged village is never read again; a persisted copy can stand in for it on a cold server.
2. `stats_from_summaries(summaries, today)`: DESIGN's /api/v1/stats figures from the summaries and
   the calendar day in JIEDUI_TIMEZONE.

The lists (`list_items`) walk the records themselves, with the same predicates the summary uses
(`is_visit`, `is_returned`, `open_followups`, ...), so a number and its list cannot disagree.

Attribution: household figures (households, never visited, not visited in 30 days) count for every
cadre the household is paired with; what a cadre did (visits, follow-ups promised, returned visits,
help given) counts for the cadre who did it.
"""

import threading
from datetime import date, timedelta

from server.core import clock
from server.forms import labels
from server.records import households, submissions, users, villages
from server.records.submissions import is_current, is_returned, is_visit  # noqa: F401 (lists use them)
from server.store import PartitionUnavailable, get_store

SUMMARY_VERSION = 3  # 2: the land ledger's figures; 3: and per group
NOT_VISITED_DAYS = 30
WEEKS = 12
# The land ledger's figures (DESIGN, turn 3): households in the ledger by the state they are in now,
# their plots and area. Each has a list kind "ledger_<figure>" (area_mu's list is the plots').
LEDGER_FIGURES = ("households", "plots", "area_mu", "boundaries_confirmed", "publicised",
                  "objections_open", "signed", "away", "confirmed_remote", "not_started")
LEDGER_STATE_OF = {"boundaries_confirmed": "boundaries_confirmed", "publicised": "publicised",
                   "objections_open": "objected", "signed": "signed", "away": "away",
                   "confirmed_remote": "confirmed_remote", "not_started": "not_started"}
LEDGER_KINDS = tuple(f"ledger_{f}" for f in LEDGER_FIGURES if f != "area_mu")
KINDS = ("households", "paired", "unpaired", "never_visited", "not_visited_30d", "visits",
         "visits_this_month", "overdue_followups", "returned", "pv", "help_value") + LEDGER_KINDS
HOUSEHOLD_KINDS = ("households", "paired", "unpaired", "never_visited", "not_visited_30d", "pv")
SUBMISSION_KINDS = ("visits", "visits_this_month", "returned", "help_value")


# ---- the predicates: one definition each, used by summaries and lists alike -----------------------


def help_of(sub):
    """Yuan of consumption help a current submission records (0 when none)."""
    value = sub.get("help_value")
    if not is_current(sub) or isinstance(value, bool) or not isinstance(value, (int, float)):
        return 0
    return value if value > 0 else 0


day_of = submissions.day_of  # the day a submission is about: its visit date, else the local day made


def open_followups(household):
    """Promises not done or dropped yet (the household keeps them; a later visit closes them)."""
    return [f for f in household.get("open_followups") or []
            if isinstance(f, dict) and f.get("status") not in ("done", "dropped")
            and isinstance(f.get("due_date"), str)]


def pv_stage(household):
    pv = household.get("pv_status")
    return pv.get("stage") if isinstance(pv, dict) and isinstance(pv.get("stage"), str) else None


def ledger_state(household):
    ledger = household.get("ledger")
    state = ledger.get("state") if isinstance(ledger, dict) else None
    return state if isinstance(state, str) and state else "not_started"


def in_ledger(household):
    """A household the land ledger covers: it has plots, or its ledger has begun."""
    return bool(household.get("plots")) or ledger_state(household) != "not_started"


def blank_ledger():
    return {f: 0 for f in LEDGER_FIGURES}


def ledger_keep(kind, household):
    """Whether `household` belongs in the list of the ledger figure `kind` ("ledger_<figure>")."""
    figure = kind[len("ledger_"):]
    if not in_ledger(household):
        return False
    if figure in ("households", "plots"):
        return True
    return ledger_state(household) == LEDGER_STATE_OF[figure]


def not_visited_cutoff(today):
    """A household visited on or after this day was visited in the last 30 days."""
    return (today - timedelta(days=NOT_VISITED_DAYS)).isoformat()


# ---- 1. one village -------------------------------------------------------------------------------


def _bump(counter, key, n=1):
    counter[key] = counter.get(key, 0) + n


def _blank_cadre():
    return {"households": 0, "last_visit": {}, "due": {}, "visits": {}, "help": {}, "returned": 0}


def village_summary(village_id, db):
    """A village folded into counts (a few KB, JSON-able, independent of today):
    {"version", "village_id", "households", "paired", "last_visit": {date or "": n},
     "due": {date: n}, "visits": {date: n}, "help": {"YYYY-MM": yuan}, "returned", "pv": {stage: n},
     "cadres": {cadre id: {"households", "last_visit", "due", "visits", "help", "returned"}}}.
    Reads each record once, as stored (no copies): a county of them is computed in seconds."""
    out = {"version": SUMMARY_VERSION, "village_id": village_id, "households": 0, "paired": 0,
           "last_visit": {}, "due": {}, "visits": {}, "help": {}, "returned": 0, "pv": {},
           "cadres": {}, "ledger": blank_ledger(), "ledger_groups": {}}
    cadres = out["cadres"]
    ledger = out["ledger"]
    ledger_groups = out["ledger_groups"]
    last = {}

    def cadre(cid):
        found = cadres.get(cid)
        if found is None:
            found = cadres[cid] = _blank_cadre()
        return found

    visits, help_by_month = out["visits"], out["help"]

    def on_submission(s):
        # is_visit, is_returned and help_of, unrolled: this runs for every visit of a county
        if s.get("superseded_by"):
            return
        cid = s.get("cadre_id")
        mine = cadre(cid) if isinstance(cid, str) else None
        day = s.get("visit_date")
        if day and isinstance(day, str):
            visits[day] = visits.get(day, 0) + 1
            if mine is not None:
                mine["visits"][day] = mine["visits"].get(day, 0) + 1
            hid = s.get("household_id")
            if day > last.get(hid, ""):
                last[hid] = day
        review = s.get("review")
        if review and review.get("state") == "has_issues":
            out["returned"] += 1
            if mine is not None:
                mine["returned"] += 1
        value = s.get("help_value")
        if value and not isinstance(value, bool) and isinstance(value, (int, float)) and value > 0:
            month = day_of(s)[:7]
            help_by_month[month] = help_by_month.get(month, 0) + value
            if mine is not None:
                mine["help"][month] = mine["help"].get(month, 0) + value

    def on_household(h):
        out["households"] += 1
        seen = last.get(h["id"], "")
        paired = [c for c in dict.fromkeys(h.get("cadre_ids") or []) if isinstance(c, str)]
        if paired:
            out["paired"] += 1
        _bump(out["last_visit"], seen)
        for cid in paired:
            c = cadre(cid)
            c["households"] += 1
            _bump(c["last_visit"], seen)
        for f in open_followups(h):
            _bump(out["due"], f["due_date"])
            if isinstance(f.get("cadre_id"), str):
                _bump(cadre(f["cadre_id"])["due"], f["due_date"])
        stage = pv_stage(h)
        if stage:
            _bump(out["pv"], stage)
        if in_ledger(h):
            group = h.get("group") or ""
            if group not in ledger_groups:
                ledger_groups[group] = blank_ledger()
            for counts in (ledger, ledger_groups[group]):  # the village's figures, and its group's
                counts["households"] += 1
                for p in h.get("plots") or ():
                    counts["plots"] += 1
                    area = p.get("area_mu")
                    if isinstance(area, (int, float)) and not isinstance(area, bool):
                        counts["area_mu"] += area
                state = ledger_state(h)
                for figure, wanted in LEDGER_STATE_OF.items():
                    if state == wanted:
                        counts[figure] += 1

    submissions.scan(village_id, on_submission, db=db)
    households.scan(village_id, on_household, db=db)
    return out


class PartitionSummaries:
    """Summaries by (village, store.partition_seq(village)): a village nobody wrote to since is
    never read again. The store keeps each beside the village's cursor (and across restarts), so
    a county page on a fresh server reads summaries, not villages. Thread-safe; two requests may
    compute the same summary once each, harmlessly."""

    def __init__(self, limit=5000):
        self._lock = threading.Lock()
        self._by_village = {}  # village id -> [seq, summary, {memo}]
        self.limit = limit
        self.computed = 0

    def _summary(self, village_id, db, name, build):
        """The summary `name` of a village, built by build() only when the village changed."""
        seq = db.partition_seq(village_id)
        with self._lock:
            hit = self._by_village.get(village_id)
        if hit is not None and hit[0] == seq:
            return hit[1]

        def compute():
            with self._lock:
                self.computed += 1
            return build()
        summary = db.summary(village_id, name, compute)
        with self._lock:
            if len(self._by_village) >= self.limit and village_id not in self._by_village:
                self._by_village.clear()
            self._by_village[village_id] = [seq, summary, {}]
        return summary


class SummaryCache(PartitionSummaries):
    """The dashboard's village summaries; beside each, its figures for the day asked (the same all
    day)."""

    def get(self, village_id, db):
        return self._summary(village_id, db, f"stats.{SUMMARY_VERSION}", lambda: village_summary(village_id, db))

    def figures_of(self, summary, today):
        """village_figures, kept for the summary's life (one entry per day asked, the last few)."""
        with self._lock:
            hit = self._by_village.get(summary["village_id"])
            memo = hit[2] if hit is not None and hit[1] is summary else None
            found = memo.get(today) if memo is not None else None
        if found is not None:
            return found
        found = village_figures(summary, today)
        if memo is not None:
            with self._lock:
                if len(memo) > 3:
                    memo.clear()
                memo[today] = found
        return found


def cache_of(app):
    cache = app.extensions.get("jiedui_stats_cache")
    if cache is None:
        cache = app.extensions.setdefault("jiedui_stats_cache", SummaryCache())
    return cache


# ---- 2. the figures ----------------------------------------------------------------------------------


def _sum(counter, keep):
    return sum(n for key, n in counter.items() if keep(key))


def figures(part, today):
    """The figures of one summary (or one cadre's part of it) for `today` (a date)."""
    day, month, cutoff = today.isoformat(), today.isoformat()[:7], not_visited_cutoff(today)
    last = part.get("last_visit", {})
    return {"households": part.get("households", 0),
            "never_visited": last.get("", 0),
            "not_visited_30d": _sum(last, lambda d: d < cutoff),  # "" (never) sorts first
            "visits_this_month": _sum(part.get("visits", {}), lambda d: d[:7] == month),
            "overdue_followups": _sum(part.get("due", {}), lambda d: d < day),
            "returned": part.get("returned", 0),
            "help_value": round(sum(part.get("help", {}).values()), 2)}


def weeks(today, count=WEEKS):
    """The Mondays of the last `count` weeks, oldest first, the current week last."""
    monday = today - timedelta(days=today.weekday())
    return [monday - timedelta(weeks=count - 1 - i) for i in range(count)]


def village_figures(summary, today):
    """Everything the stats need of one summary for one day: {"row", "cadres": {id: figures},
    "weeks": [visits per week, oldest first]}. Cheap to keep: the same all day for an unchanged
    village, so the cache holds it beside the summary."""
    row = figures(summary, today)
    row["paired"] = summary.get("paired", 0)
    row["unpaired"] = row["households"] - row["paired"]
    mondays = weeks(today)
    first, counts = mondays[0], [0] * len(mondays)
    for day, n in summary.get("visits", {}).items():
        if day >= first.isoformat():
            index = (date.fromisoformat(day) - first).days // 7
            if 0 <= index < len(counts):
                counts[index] += n
    ledger = dict(summary.get("ledger") or blank_ledger())
    ledger["area_mu"] = round(ledger["area_mu"], 4)
    row["ledger"] = ledger
    row["ledger_groups"] = {g: dict(c, area_mu=round(c["area_mu"], 4))
                            for g, c in sorted((summary.get("ledger_groups") or {}).items())}
    return {"row": row, "pv": dict(summary.get("pv", {})), "weeks": counts,
            "cadres": {cid: figures(part, today) for cid, part in summary.get("cadres", {}).items()}}


def stats_from_summaries(summaries, today, *, villages=None, cadre_names=None, cadre_ids=(),
                         stages=(), figures_of=village_figures):
    """DESIGN's /api/v1/stats body (less "as_of") from village summaries.
    villages: {id: village doc} for names; cadre_names: {id: name}; cadre_ids: cadres to list even
    with nothing to count; stages: PV stages to list even at 0, in order; figures_of: how to get
    village_figures (the cache passes a memoised one)."""
    villages = villages or {}
    cadre_names = cadre_names or {}
    rows, per_cadre = [], {}
    mondays = weeks(today)
    week_totals = [0] * len(mondays)
    for s in summaries:
        vid = s["village_id"]
        v = villages.get(vid) or {}
        f = figures_of(s, today)
        row = {"id": vid, "name": v.get("name") or vid, "township": v.get("township", "")}
        row.update(f["row"])
        row["ledger"] = dict(row["ledger"])
        pv = {stage: 0 for stage in stages}
        for stage, n in f["pv"].items():
            pv[stage] = pv.get(stage, 0) + n
        row["pv"] = pv
        rows.append(row)
        for i, n in enumerate(f["weeks"]):
            week_totals[i] += n
        for cid, part in f["cadres"].items():
            acc = per_cadre.get(cid)
            if acc is None:
                per_cadre[cid] = acc = dict(part, villages=[])
            else:
                for key, value in part.items():
                    acc[key] += value
            acc["villages"].append(vid)
    blank = dict(figures({}, today), villages=[])
    for cid in cadre_ids:
        per_cadre.setdefault(cid, dict(blank, villages=[]))
    cadres = []
    for cid in sorted(per_cadre, key=lambda c: (cadre_names.get(c, c), c)):
        acc = per_cadre[cid]
        acc["help_value"] = round(acc["help_value"], 2)
        cadres.append({"id": cid, "name": cadre_names.get(cid, cid), **acc})
    totals = {key: sum(r[key] for r in rows) for key in
              ("households", "paired", "unpaired", "never_visited", "not_visited_30d",
               "visits_this_month", "overdue_followups", "returned")}
    totals["help_value"] = round(sum(r["help_value"] for r in rows), 2)
    totals["ledger"] = {f: sum(r["ledger"][f] for r in rows) for f in LEDGER_FIGURES}
    totals["ledger"]["area_mu"] = round(totals["ledger"]["area_mu"], 4)
    totals["pv"] = {stage: 0 for stage in stages}
    for r in rows:
        for stage, n in r["pv"].items():
            totals["pv"][stage] = totals["pv"].get(stage, 0) + n
    return {"today": today.isoformat(), "month": today.isoformat()[:7], "villages": rows,
            "cadres": cadres, "totals": totals,
            "weeks": [{"start": m.isoformat(), "end": (m + timedelta(days=6)).isoformat(), "visits": n}
                      for m, n in zip(mondays, week_totals)]}


# ---- the lists behind the numbers ------------------------------------------------------------------


def _household_item(h, last):
    return {"id": h["id"], "village_id": h["village_id"], "head_name": h.get("head_name", ""),
            "group": h.get("group", ""), "category": h.get("category", ""),
            "cadre_ids": list(h.get("cadre_ids") or []), "last_visit_date": last.get(h["id"]) or None,
            "pv_stage": pv_stage(h)}


def _submission_item(s, heads):
    return {"uuid": s["uuid"], "household_id": s.get("household_id"), "village_id": s.get("village_id"),
            "head_name": heads.get(s.get("household_id"), ""), "cadre_id": s.get("cadre_id"),
            "form": s.get("form"), "form_version": s.get("form_version"), "day": day_of(s),
            "visit_date": s.get("visit_date"), "review_state": (s.get("review") or {}).get("state"),
            "help_value": help_of(s), "created_at": s.get("created_at")}


def list_items(village_ids, kind, today, *, db=None, cadre_id=None, stage=None, date_from=None,
               date_to=None, unavailable=None, group=None):
    """The records behind one number: households, submissions or follow-ups, across `village_ids`
    (already checked against the caller's scope), optionally of one cadre. Sorted for reading.
    Records are read as stored and only the ones listed are copied, so a county-wide list stays
    affordable. Given a list as `unavailable`, a village whose file cannot be read is added to it
    and left out instead of failing the whole list."""
    db = db or get_store()
    items = []
    for vid in village_ids:
        listed = len(items)
        try:
            _list_village(items, vid, kind, today, db, cadre_id, stage, date_from, date_to, group)
        except PartitionUnavailable:
            if unavailable is None:
                raise
            del items[listed:]
            unavailable.append(vid)
    if kind == "ledger_plots":
        items.sort(key=lambda i: (i["household_id"], i["code"] or "", i["name"]))
    elif kind == "overdue_followups":
        items.sort(key=lambda i: (i["due_date"], i["household_id"]))
    elif kind in SUBMISSION_KINDS:
        items.sort(key=lambda i: (i["day"], i["uuid"]), reverse=True)
    elif kind == "not_visited_30d":
        items.sort(key=lambda i: (i["last_visit_date"] or "", i["id"]))
    else:
        items.sort(key=lambda i: i["id"])
    return items


def _list_village(items, vid, kind, today, db, cadre_id, stage, date_from, date_to, group=None):
    """One village's part of list_items, appended to `items` (the ledger's lists: of one group when
    `group` is given, "" for households without one)."""
    day, month, cutoff = today.isoformat(), today.isoformat()[:7], not_visited_cutoff(today)
    if kind == "ledger_plots":
        def on_household(h, vid=vid):
            if ledger_keep(kind, h) and (group is None or (h.get("group") or "") == group):
                for p in h.get("plots") or ():
                    items.append({"household_id": h["id"], "village_id": vid,
                                  "head_name": h.get("head_name", ""), "group": h.get("group", ""),
                                  "id": p.get("id"), "code": p.get("code"), "name": p.get("name", ""),
                                  "area_mu": p.get("area_mu"), "state": p.get("state"),
                                  "ledger_state": ledger_state(h)})
        households.scan(vid, on_household, db=db)
    elif kind in LEDGER_KINDS:
        def on_household(h, vid=vid):
            if ledger_keep(kind, h) and (cadre_id is None or cadre_id in (h.get("cadre_ids") or [])) \
                    and (group is None or (h.get("group") or "") == group):
                item = _household_item(h, {})
                item.update(ledger_state=ledger_state(h), plots=len(h.get("plots") or ()))
                items.append(item)
        households.scan(vid, on_household, db=db)
    elif kind == "overdue_followups":
        def on_household(h, vid=vid):
            for f in open_followups(h):
                if f["due_date"] < day and (cadre_id is None or f.get("cadre_id") == cadre_id):
                    items.append({"id": f.get("id"), "household_id": h["id"], "village_id": vid,
                                  "head_name": h.get("head_name", ""), "cadre_id": f.get("cadre_id"),
                                  "action": f.get("action", ""), "due_date": f["due_date"],
                                  "status": f.get("status"), "submission": f.get("submission")})
        households.scan(vid, on_household, db=db)
    elif kind in HOUSEHOLD_KINDS:
        last = {}

        def on_visit(s, last=last):
            if is_visit(s) and s["visit_date"] > last.get(s.get("household_id"), ""):
                last[s.get("household_id")] = s["visit_date"]
        if kind in ("never_visited", "not_visited_30d", "households", "paired", "unpaired", "pv"):
            submissions.scan(vid, on_visit, db=db)

        def on_household(h, last=last):
            paired = h.get("cadre_ids") or []
            if cadre_id is not None and cadre_id not in paired:
                return
            seen = last.get(h["id"], "")
            keep = {"households": True, "paired": bool(paired), "unpaired": not paired,
                    "never_visited": seen == "",
                    "not_visited_30d": seen < cutoff,
                    "pv": pv_stage(h) is not None and (stage is None or pv_stage(h) == stage)}[kind]
            if keep:
                items.append(_household_item(h, last))
        households.scan(vid, on_household, db=db)
    else:
        heads = dict(households.scan(vid, lambda h: (h["id"], h.get("head_name", "")), db=db))

        def on_submission(s, heads=heads):
            if cadre_id is not None and s.get("cadre_id") != cadre_id:
                return
            if kind == "visits":
                keep = is_visit(s) and (not date_from or s["visit_date"] >= date_from) \
                    and (not date_to or s["visit_date"] <= date_to)
            elif kind == "visits_this_month":
                keep = is_visit(s) and s["visit_date"][:7] == month
            elif kind == "returned":
                keep = is_returned(s)
            else:  # help_value
                keep = help_of(s) > 0 and (not date_from or day_of(s) >= date_from) \
                    and (not date_to or day_of(s) <= date_to)
            if keep:
                items.append(_submission_item(s, heads))
        submissions.scan(vid, on_submission, db=db)


# ---- who the cadres are ---------------------------------------------------------------------------


def cadres_for(village_ids, db=None):
    """Cadre accounts working in any of the villages (listed even with nothing to count), and every
    account's display name."""
    return [u["id"] for u in users.cadres_in(village_ids, db=db)], users.display_names(db)


def compute_stats(user, cache, village=None, db=None):
    """The /api/v1/stats body for `user` (their scope, or one village of it)."""
    db = db or get_store()
    chosen = [village] if village else villages.in_scope(user, db)
    summaries, unavailable = [], []
    for v in chosen:
        try:
            summaries.append(cache.get(v["id"], db))
        except PartitionUnavailable:
            if village:   # the one village asked for: 503 naming it
                raise
            unavailable.append({"id": v["id"], "name": v.get("name") or v["id"]})
    broken = {u["id"] for u in unavailable}
    working = [v for v in chosen if v["id"] not in broken]
    cadre_ids, names = cadres_for([v["id"] for v in working], db)
    body = {"as_of": clock.now().astimezone(clock.zone()).isoformat(timespec="seconds")}
    body.update(stats_from_summaries(
        summaries, clock.today(), villages={v["id"]: v for v in working}, cadre_names=names,
        cadre_ids=cadre_ids, stages=[s for s, _ in labels.pv_stages()], figures_of=cache.figures_of))
    # A village whose file cannot be read is named, and the others are counted without it.
    body["unavailable"] = unavailable
    return body
